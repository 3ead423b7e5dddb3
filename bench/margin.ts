/**
 * margin.nightly for N clients × P positions (issue 11: seconds, and the ratio to one bare SQL
 * aggregation of market value per client over the same positions; aim ≤ 3).
 *
 * Fills set-based (generate_series): 2,000 securities (a tenth in EUR, with an EUR→USD rate; 200
 * issuers; some non-marginable, some with a house rate, some under $5), their closes on the run
 * date, N clients each with one USD margin account (hashed cash and loan; about one in six
 * leveraged past the requirement) and P distinct positions (one in ten short). Then times the
 * whole job through real BullMQ queues and in-process workers: the planning job, the flow of
 * margin.batch jobs (MARGIN_BATCH_SIZE clients each) and the finalize step; a second run (the
 * same night re-run: snapshots replaced, calls updated) is timed too. The baseline is one
 * statement: sum(|quantity| × close × FX) per client over the same positions and closes.
 */
import { randomBytes } from 'node:crypto';
import { loadConfig } from '../core/config.ts';
import { buildDeps, closeDeps, type Deps } from '../core/deps.ts';
import type { MarginPlanResult, MarginRunResult } from '../jobs/processors/margin.ts';
import { createQueues } from '../jobs/queues.ts';
import { startWorkers } from '../jobs/worker-host.ts';
import { QueueEvents } from 'bullmq';
import { createRedis } from '../core/redis.ts';

const RUN_DATE = '2026-06-30';
const SECURITIES = 2000;

export interface MarginBenchResult {
  clients: number;
  positions: number;
  seconds: number;
  rerunSeconds: number;
  bareSeconds: number;
  ratio: number;
  calls: number;
  flagged: number;
  batches: number;
}

export async function benchMargin(opts: {
  databaseUrl: string;
  clients: number;
  positionsPerClient: number;
  log: (line: string) => void;
}): Promise<MarginBenchResult> {
  const config = loadConfig({
    ...process.env,
    LOG_LEVEL: 'warn',
    DATABASE_URL: opts.databaseUrl,
    QUEUE_PREFIX: `{bench-${randomBytes(3).toString('hex')}}`,
  });
  const deps = buildDeps({ name: 'bench-margin', config, poolMax: 8 });
  const queues = createQueues(config);
  const host = startWorkers(deps, { names: ['margin.nightly', 'margin.batch'] });
  // QueueEvents given a connection treats it as shared and leaves it open at close: quit it here
  // (an open socket kept `npm run bench` from exiting).
  const eventsConnection = createRedis(config, { forWorker: true });
  const events = new QueueEvents('margin.nightly', {
    connection: eventsConnection,
    prefix: config.queue.prefix,
  });
  try {
    await events.waitUntilReady();
    const t0 = process.hrtime.bigint();
    const positions = await fill(deps, opts.clients, opts.positionsPerClient);
    opts.log(
      `margin bench: ${opts.clients} clients x ${opts.positionsPerClient} positions = ${positions} positions filled in ${seconds(t0).toFixed(1)} s (batch size ${config.margin.batchSize}, worker concurrency ${config.queue.concurrency})`,
    );

    const runOnce = async (): Promise<{ seconds: number; result: MarginRunResult }> => {
      const t = process.hrtime.bigint();
      const planJob = await queues.enqueue('margin.nightly', { runDate: RUN_DATE });
      await planJob.waitUntilFinished(events, 3_600_000);
      const plan = (await queues.get('margin.nightly').getJob(planJob.id!))!.returnvalue as MarginPlanResult;
      const fin = (await queues.get('margin.nightly').getJob(plan.finalizeJobId!))!;
      await fin.waitUntilFinished(events, 3_600_000);
      const done = (await queues.get('margin.nightly').getJob(plan.finalizeJobId!))!;
      return { seconds: seconds(t), result: done.returnvalue as MarginRunResult };
    };
    const first = await runOnce();
    opts.log(
      `margin bench: nightly run ${first.seconds.toFixed(2)} s: ${first.result.snapshots} snapshots in ${first.result.batches} batches, ${first.result.calls} in call, ${first.result.flagged} flagged, ${first.result.issued} calls issued`,
    );
    const again = await runOnce();
    opts.log(
      `margin bench: re-run of the night ${again.seconds.toFixed(2)} s: ${again.result.updated} calls updated, ${again.result.issued} issued`,
    );

    // The floor: one statement, market value per client over the same positions and closes.
    let bare = Infinity;
    for (let i = 0; i < 3; i++) {
      const t = process.hrtime.bigint();
      await deps.db.raw(
        `select count(*), sum(mv) from (
           select a.client_id, sum(abs(p.quantity) * b.close * coalesce(f.rate, 1)) as mv
             from accounts a
             join positions p on p.account_id = a.id
             join securities s on s.id = p.security_id
             join bars_1d b on b.security_id = p.security_id and b.session_date = ?::date
             left join fx_rates f on f.from_currency = s.currency and f.to_currency = a.currency
                                 and f.rate_date = ?::date
            where a.account_type = 'MARGIN'
            group by a.client_id) x`,
        [RUN_DATE, RUN_DATE],
      );
      bare = Math.min(bare, seconds(t));
    }
    opts.log(`margin bench: bare aggregation of MV per client (best of 3) ${bare.toFixed(2)} s`);
    return {
      clients: opts.clients,
      positions,
      seconds: first.seconds,
      rerunSeconds: again.seconds,
      bareSeconds: bare,
      ratio: first.seconds / bare,
      calls: first.result.calls,
      flagged: first.result.flagged,
      batches: first.result.batches,
    };
  } finally {
    await host.close();
    await events.close();
    await eventsConnection.quit();
    await queues.close();
    // The bench's own queue prefix (no glob characters: a brace-wrapped hex tag) goes with it.
    let cursor = '0';
    do {
      const [next, keys] = await deps.redis.scan(cursor, 'MATCH', `${config.queue.prefix}:*`, 'COUNT', 500);
      cursor = next;
      if (keys.length) await deps.redis.del(...keys);
    } while (cursor !== '0');
    await closeDeps(deps);
  }
}

async function fill(deps: Deps, clients: number, perClient: number): Promise<number> {
  const h = (expr: string, salt: number) =>
    `((hashint8extended((${expr})::bigint, ${salt}) & 1048575) / 1048576.0)`;
  await deps.db.raw(
    `insert into issuers (issuer_id, issuer_name, country, sector)
     select 'ISS-' || (7000 + g), 'Margin bench issuer ' || g, 'US', 'Bench' from generate_series(0, 199) g
     on conflict do nothing`,
  );
  await deps.db.raw(
    `insert into securities (security_id, ticker, security_name, security_type, asset_class, currency, exchange,
                             issuer_id, marginable, house_margin_rate)
     select 'SEC-' || (800000 + g), 'MGB' || lpad(g::text, 4, '0'), 'Margin bench ' || g, 'EQUITY', 'Equity',
            case when g % 10 = 0 then 'EUR' else 'USD' end, 'XNYS', 'ISS-' || (7000 + g % 200),
            g % 17 <> 0, case when g % 13 = 0 then 0.35 end
       from generate_series(1, ?::int) g
     on conflict do nothing`,
    [SECURITIES],
  );
  await deps.db.raw(
    `insert into bars_1d (security_id, session_date, open, high, low, close, volume, source)
     select s.id, ?::date, c, c, c, c, 1000, 'bench'
       from securities s
       cross join lateral (select round((case when s.id % 19 = 0 then 1 + 4 * ${h('s.id', 1)}
                                              else 5 + 295 * ${h('s.id', 1)} end)::numeric, 4) as c) x
      where s.ticker ~ '^MGB[0-9]{4}$'
     on conflict do nothing`,
    [RUN_DATE],
  );
  await deps.db.raw(
    `insert into fx_rates (from_currency, to_currency, rate_date, rate, source)
     values ('EUR', 'USD', ?::date, 1.0850000000, 'bench') on conflict do nothing`,
    [RUN_DATE],
  );
  await deps.db.raw(
    `insert into clients (client_code, name)
     select 'MB-' || lpad(g::text, 7, '0'), 'Margin bench ' || g from generate_series(1, ?::int) g
     on conflict do nothing`,
    [clients],
  );
  await deps.db.raw(
    `insert into accounts (client_id, account_type, currency, cash_balance, loan_balance)
     select c.id, 'MARGIN', 'USD', 0, 0 from clients c where c.client_code like 'MB-%'
     on conflict do nothing`,
  );
  const res = await deps.db.raw<{ rowCount: number }>(
    `with secs as (select id, row_number() over (order by id) - 1 as k from securities where ticker ~ '^MGB[0-9]{4}$')
     insert into positions (account_id, security_id, quantity, cost_basis)
     select a.id, s.id,
            (case when ${h('a.id * 100 + j', 2)} < 0.1 then -1 else 1 end) * (1 + floor(1000 * ${h('a.id * 100 + j', 3)})),
            10
       from accounts a
       cross join generate_series(0, ?::int - 1) j
       join secs s on s.k = (a.id * 37 + j * 211) % ${SECURITIES}
      where a.currency = 'USD' and a.client_id in (select id from clients where client_code like 'MB-%')
     on conflict do nothing`,
    [perClient],
  );
  // Balances from the book: cash covers the shorts' proceeds; loans leave about one client in six
  // below the requirement (equity 5–20% of the long MV) and the rest well above it (loan ≤ 40%).
  await deps.db.raw(
    `with mv as (
       select p.account_id,
              sum(case when p.quantity > 0 then p.quantity * b.close * coalesce(f.rate, 1) else 0 end) as lmv,
              sum(case when p.quantity < 0 then -p.quantity * b.close * coalesce(f.rate, 1) else 0 end) as smv
         from positions p join securities s on s.id = p.security_id
         join bars_1d b on b.security_id = p.security_id and b.session_date = ?::date
         left join fx_rates f on f.from_currency = s.currency and f.to_currency = 'USD' and f.rate_date = ?::date
        group by p.account_id)
     update accounts a set
       cash_balance = round(mv.smv * 1.6, 2),
       loan_balance = round(case when a.id % 6 = 0 then mv.lmv * (0.80 + 0.15 * ${h('a.id', 4)})
                                 else mv.lmv * 0.4 * ${h('a.id', 5)} end, 2)
       from mv where mv.account_id = a.id`,
    [RUN_DATE, RUN_DATE],
  );
  await deps.db.raw('vacuum analyze securities, bars_1d, clients, accounts, positions, fx_rates');
  return res.rowCount;
}

function seconds(since: bigint): number {
  return Number(process.hrtime.bigint() - since) / 1e9;
}
