/**
 * Seed 2's securities-platform endpoints at seed 2's shape, through the real app (auth included):
 * 1,000 securities of 209 issuers, 7 portfolios × 150 holdings × every weekday of five years
 * (≈1.36M holdings rows, as seed 2's holdings_history), 7 × 150 × 20 quarters of variance rows,
 * 300 corporate actions with ledger entries, 9 currencies of daily FX. Prints the median and p95
 * latency of each endpoint over sequential requests. Runs in a scratch database it creates and
 * drops; Redis keys under a prefix of its own are removed at the end.
 *
 *   ./scripts/with-node.sh node bench/platform-api.ts        (BENCH_PLATFORM_RUNS, default 40;
 *   BENCH_PLATFORM_KEEP=1 keeps the database for EXPLAIN and prints its URL)
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import request from 'supertest';
import { closeApp, createApp } from '../api/app.ts';
import { createClient } from '../api/auth/accounts.ts';
import { createAuth } from '../api/auth/index.ts';
import { loadConfig } from '../core/config.ts';
import { createDb, dropDatabase, ensureDatabase } from '../core/db/knex.ts';
import { migrateLatest } from '../core/db/migrate.ts';
import { buildDeps, closeDeps } from '../core/deps.ts';
import { createQueues } from '../jobs/queues.ts';

const runs = Number(process.env.BENCH_PLATFORM_RUNS ?? 40);
const base = loadConfig({ ...process.env, LOG_LEVEL: 'warn' });
const url = new URL(base.db.url);
url.pathname = `/mdw_platbench_${randomBytes(4).toString('hex')}`;
const prefix = `{pb${randomBytes(4).toString('hex')}}`;

const FILL = `
insert into issuers (issuer_id, issuer_name, country, sector)
select 'ISS-' || lpad(i::text, 3, '0'), 'Issuer ' || i,
       (array['US','GB','DE','FR','JP','CA','AU','CH','NL','SE','IT','ES','KR','SG','HK'])[1 + i % 15],
       (array['Technology','Healthcare','Financials','Energy','Industrials','Utilities','Materials'])[1 + i % 7]
  from generate_series(1, 209) i;

insert into securities (security_id, ticker, isin, security_name, security_type, asset_class, currency, exchange,
                        issuer_id, maturity_date, face_value, coupon_rate, coupon_frequency)
select 'SEC-' || lpad(i::text, 4, '0'), 'T' || i, 'US' || lpad(i::text, 9, '0') || '0', 'Security ' || i,
       case when i % 10 < 6 then 'EQUITY' when i % 10 < 9 then 'BOND' else 'FUTURE' end,
       case when i % 10 < 6 then 'Equity' when i % 10 < 9 then 'Fixed Income' else 'Derivative' end,
       (array['USD','USD','USD','EUR','GBP','JPY','CHF','CAD','AUD','SEK'])[1 + i % 10],
       'NYSE', 'ISS-' || lpad((1 + i % 209)::text, 3, '0'),
       case when i % 10 between 6 and 8 then date '2030-06-30' end,
       case when i % 10 between 6 and 8 then 100 end,
       case when i % 10 between 6 and 8 then 0.045 end,
       case when i % 10 between 6 and 8 then 2 end
  from generate_series(1, 1000) i;

insert into portfolios (portfolio_id, portfolio_name, portfolio_type, inception_date, base_currency)
select 'PORT-' || lpad(p::text, 3, '0'), 'Portfolio ' || p,
       (array['EQUITY','EQUITY','EQUITY','FIXED_INCOME','FIXED_INCOME','MIXED','HEDGE'])[p], '2019-12-31', 'USD'
  from generate_series(1, 7) p;

insert into holdings (portfolio_id, security_id, as_of_date, quantity, local_price, fx_rate, market_value, weight,
                      cost_basis, accrued_interest, flag)
select 'PORT-' || lpad(p::text, 3, '0'), s.id, d::date, 1000 + k, 50 + (k % 97) + extract(doy from d) / 100, 1,
       (1000 + k) * (50 + (k % 97) + extract(doy from d) / 100), 0.00666667, (1000 + k) * 50, 0, null
  from generate_series(1, 7) p
  cross join generate_series(1, 150) k
  join securities s on s.security_id = 'SEC-' || lpad((1 + (p * 137 + k * 7) % 1000)::text, 4, '0')
  cross join generate_series(date '2020-01-01', date '2024-12-31', interval '1 day') d
 where extract(isodow from d) < 6;

insert into variance_rows (portfolio_id, security_id, period_label, period_from, period_to, qty_start, qty_end,
                           price_start, price_end, fx_start, fx_end, mv_start, mv_end, price_effect, qty_effect,
                           fx_effect, corp_action_effect, total_pnl)
select 'PORT-' || lpad(p::text, 3, '0'), s.id, (2020 + q / 4) || 'Q' || (1 + q % 4),
       (date '2020-01-01' + make_interval(months => q * 3))::date - 1,
       (date '2020-01-01' + make_interval(months => q * 3 + 3))::date - 1,
       1000, 1000 + k, 50, 51, 1, 1, 50000, 51000 + 51 * k, 1000.01, 51 * k - 0.01, 0, 0, 1000 + 51 * k
  from generate_series(1, 7) p
  cross join generate_series(1, 150) k
  join securities s on s.security_id = 'SEC-' || lpad((1 + (p * 137 + k * 7) % 1000)::text, 4, '0')
  cross join generate_series(0, 19) q;

insert into corporate_actions (action_id, security_id, action_type, ex_date, payment_date, amount, source)
select 'CA-' || lpad(i::text, 4, '0'), s.id, 'DIVIDEND', date '2020-02-03' + i * 6, date '2020-02-13' + i * 6, 0.25, 'bench'
  from generate_series(1, 300) i join securities s on s.security_id = 'SEC-' || lpad((1 + i * 3 % 1000)::text, 4, '0');

insert into corporate_action_ledger (action_id, action_revision, portfolio_id, entry, action_type, ex_date,
                                     payment_date, amount, currency, quantity_held, cash_amount, paid_at)
select ca.id, 1, 'PORT-' || lpad(p::text, 3, '0'), 'APPLY', 'DIVIDEND', ca.ex_date, ca.payment_date, 0.25, 'USD',
       1000, 250, ca.payment_date
  from corporate_actions ca cross join generate_series(1, 7) p;

insert into fx_rates (from_currency, to_currency, rate_date, rate, source)
select c, 'USD', d::date, 1 + ascii(c) / 1000.0 + extract(doy from d) / 100000.0, 'bench'
  from unnest(array['EUR','GBP','JPY','CHF','CAD','AUD','SEK','NOK','DKK']) c
  cross join generate_series(date '2020-01-01', date '2024-12-31', interval '1 day') d;

analyze;
`;

async function main(): Promise<void> {
  await ensureDatabase(url.toString());
  const config = loadConfig({
    ...process.env,
    LOG_LEVEL: 'warn',
    DATABASE_URL: url.toString(),
    QUEUE_PREFIX: prefix,
    API_SERIES_CACHE_MB: '0',
  });
  const db = createDb(config, { poolMax: 1 });
  try {
    await migrateLatest(db);
    const t0 = performance.now();
    await db.raw(FILL);
    const { n } = (await db.raw<{ rows: { n: string }[] }>('select count(*) as n from holdings')).rows[0]!;
    console.log(`filled in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${n} holdings rows`);
  } catch (err) {
    await db.destroy();
    await dropDatabase(url.toString());
    throw err;
  }
  await db.destroy();
  const deps = buildDeps({
    name: 'bench-platform',
    config,
    clock: { now: () => new Date('2025-02-15T15:00:00Z') },
  });
  const queues = createQueues(config);
  const auth = await createAuth(deps);
  const app = await createApp(deps, { queues, auth });
  try {
    const client = await createClient(deps, { name: 'bench', scopes: ['results:read'] });
    const tok = await request(app)
      .post('/oauth/token')
      .auth(client.clientId, client.clientSecret)
      .type('form')
      .send({ grant_type: 'client_credentials' });
    const header = `Bearer ${tok.body.access_token as string}`;

    const paths = [
      '/health',
      '/api/securities',
      '/api/securities?sector=Technology&currency=USD&limit=500',
      '/api/securities/SEC-0500',
      '/api/portfolios',
      '/api/holdings',
      '/api/holdings?period=8&limit=500',
      '/api/holdings?portfolio_id=PORT-003&as_of=2023-06-30&limit=500',
      '/api/variance/portfolio/PORT-001',
      '/api/variance/portfolio/PORT-001?quarter=2021Q3',
      '/api/variance/portfolio/PORT-001?from=2021-07-01&to=2021-09-30',
      '/api/variance/top-movers',
      '/api/variance/top-movers?quarter=2022Q2&currency=EUR&limit=100',
      '/api/corporate-actions',
      '/api/corporate-actions?action_type=DIVIDEND&from=2021-01-01&to=2021-12-31',
      '/api/corporate-actions/CA-0100/ledger',
      '/api/fx-rates',
      '/api/fx-rates?from_currency=GBP&from=2023-01-01&to=2023-12-31&limit=500',
    ];
    console.log(`${'endpoint'.padEnd(72)} median ms   p95 ms   bytes`);
    for (const path of paths) {
      const times: number[] = [];
      let bytes = 0;
      for (let i = 0; i < runs + 3; i++) {
        const t = performance.now();
        const res = await request(app).get(path).set('Authorization', header);
        const ms = performance.now() - t;
        if (res.status !== 200) throw new Error(`${path}: ${res.status} ${res.text}`);
        bytes = res.text.length;
        if (i >= 3) times.push(ms); // the first three warm the pool and the plans
      }
      times.sort((a, b) => a - b);
      const median = times[Math.floor(times.length / 2)]!;
      const p95 = times[Math.min(times.length - 1, Math.ceil(times.length * 0.95) - 1)]!;
      console.log(
        `${path.padEnd(72)} ${median.toFixed(1).padStart(9)} ${p95.toFixed(1).padStart(8)} ${String(bytes).padStart(7)}`,
      );
    }
  } finally {
    await closeApp(app);
    await queues.close();
    await auth.close();
    let cursor = '0';
    do {
      const [next, keys] = await deps.redis.scan(cursor, 'MATCH', `*${prefix}*`, 'COUNT', 500);
      cursor = next;
      if (keys.length) await deps.redis.del(...keys);
    } while (cursor !== '0');
    await closeDeps(deps);
    if (process.env.BENCH_PLATFORM_KEEP === '1') console.log(`kept ${url.toString()}`);
    else await dropDatabase(url.toString());
  }
}

await main();
