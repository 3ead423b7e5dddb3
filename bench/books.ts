/**
 * Books (issue 9), at seed 2's shape: 7 portfolios × ~150 positions over 5 years of NYSE sessions
 * (about 1.4M daily holdings, like seed 2's holdings_history), in USD, EUR, GBP and JPY, a fifth of
 * them bonds, with an opening buy and a trade about every quarter per position.
 *
 * 1. holdings.snapshot over the 5 years (the processor end to end: replaying trades and ledger,
 *    64 month transactions with checkpoints, valuing, weighting, flagging) against an
 *    `INSERT … SELECT` of the same rows into holdings itself (same keys, indexes, foreign keys).
 * 2. variance.quarterly for each of the 21 quarters in range over the books written by 1 (the
 *    processor end to end: checking both snapshot days against the trades and closes, reading
 *    inputs, attribute()/inCents() per row, replacing the rows) against
 *    a bare SQL aggregation over the same holdings rows: per quarter, a full join of the two
 *    snapshot days computing the four effects in numeric (no splits, distributions or flags) into
 *    a scratch table.
 * Each figure is the faster of two runs (warm cache for all).
 */
import { addDays } from '../core/calendar/nyse.ts';
import type { Deps } from '../core/deps.ts';
import { resolvePeriod } from '../core/domain/periods.ts';
import { holdingsSnapshot, varianceQuarterly } from '../jobs/processors/holdings.ts';
import { directContext } from '../jobs/types.ts';

export interface BooksBench {
  holdings: number;
  snapshotSeconds: number;
  insertSelectSeconds: number;
  snapshotRatio: number;
  quarters: number;
  varianceRows: number;
  varianceSeconds: number;
  aggregationSeconds: number;
  varianceRatio: number;
  /** Replacing the same rows in variance_rows per quarter (DELETE + INSERT … SELECT from a copy). */
  writeFloorSeconds: number;
}

/** 2020-09-30 is the d0 of 2020Q4: the 21 quarters 2020Q4..2025Q4 chain over the range. */
const FROM = '2020-09-30';
const TO = '2025-12-31';

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

const best = async (run: () => Promise<number>): Promise<number> => Math.min(await run(), await run());

export async function fillBooks(deps: Deps, securities: number, log: (l: string) => void): Promise<void> {
  const db = deps.db;
  await deps.repos.calendar.ensureSessions(addDays(FROM, -10), TO);
  await db.raw(`select setseed(0.42)`);
  await db.raw(
    `insert into securities (security_id, ticker, security_name, security_type, asset_class, currency, exchange,
                             maturity_date, face_value, coupon_rate, coupon_frequency)
     select format('SEC-%s', lpad(g::text, 6, '0')), 'BKB' || g, 'Bench ' || g,
            case when g % 5 = 0 then 'BOND' else 'EQUITY' end,
            case when g % 5 = 0 then 'Fixed Income' else 'Equity' end,
            (array['EUR', 'GBP', 'JPY', 'USD', 'USD', 'USD', 'USD', 'USD'])[g % 8 + 1],
            case when g % 5 = 0 then 'OTC' else 'NYSE' end,
            case when g % 5 = 0 then date '2035-06-15' + g end,
            case when g % 5 = 0 then 100 end,
            case when g % 5 = 0 then 0.02 + (g % 7) * 0.005 end,
            case when g % 5 = 0 then 2 end
       from generate_series(1, ?) g`,
    [securities],
  );
  await db.raw(
    `insert into portfolios (portfolio_id, portfolio_name, portfolio_type, inception_date, base_currency)
     select format('PORT-%s', lpad(p::text, 3, '0')), 'Bench ' || p, 'MIXED', date '2015-01-02', 'USD'
       from generate_series(1, 7) p`,
  );
  const t0 = Date.now();
  await db.raw(
    `insert into bars_1d (security_id, session_date, open, high, low, close, volume, source)
     select s.id, m.session_date, c, c, c, c, 1000, 'bench'
       from securities s
       join market_sessions m on m.session_date between ?::date and ?::date
      cross join lateral (select round((case when s.security_type = 'BOND' then 100 else 50 end
              * (1 + 0.2 * sin(s.id + (m.session_date - date '2020-01-01') / 40.0)))::numeric, 4) as c) x
      where s.security_id like 'SEC-%' and m.exchange = 'XNYS'`,
    [addDays(FROM, -10), TO],
  );
  await db.raw(
    `insert into fx_rates (from_currency, to_currency, rate_date, rate, source)
     select c.ccy, 'USD', m.session_date,
            round((c.base * (1 + 0.05 * sin((m.session_date - date '2020-01-01') / 60.0 + c.k)))::numeric, 10), 'bench'
       from (values ('EUR', 1.1, 1), ('GBP', 1.27, 2), ('JPY', 0.0075, 3)) c(ccy, base, k)
       join market_sessions m on m.exchange = 'XNYS' and m.session_date between ?::date and ?::date`,
    [addDays(FROM, -10), TO],
  );
  // Each portfolio holds the securities with (id + 37·p) % k = 0 (~150 each): an opening buy on the
  // first session, then a trade about every quarter (buys and partial sells).
  const k = Math.max(1, Math.round(securities / 150));
  await db.raw(
    `with pos as (
       select p.portfolio_id, s.id, s.currency, row_number() over () as n
         from portfolios p
         join securities s on (s.id + 37 * substr(p.portfolio_id, 6)::int) % ? = 0
     ), days as (
       select session_date as d, row_number() over (order by session_date) as i
         from market_sessions where exchange = 'XNYS' and session_date between ?::date and ?::date
     ), trades as (
       select pos.*, days.d, days.i,
              case when days.i = 1 then 1000 + (pos.n % 9) * 100 else 50 + (pos.n + days.i) % 7 * 10 end as q,
              case when days.i = 1 or (pos.n + days.i) % 3 <> 0 then 'BUY' else 'SELL' end as t
         from pos join days on days.i = 1 or (days.i + pos.n) % 63 = 0
     )
     insert into transactions (txn_id, portfolio_id, security_id, txn_type, quantity, price, txn_date,
                               settlement_date, fees, currency)
     select format('TXN-B-%s-%s', tr.n, tr.i), tr.portfolio_id, tr.id, tr.t, tr.q, b.close, tr.d, tr.d, 1.25, tr.currency
       from trades tr join bars_1d b on b.security_id = tr.id and b.session_date = tr.d`,
    [k, FROM, TO],
  );
  await db.raw('vacuum analyze');
  log(`books bench: data filled in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

export async function benchBooks(
  deps: Deps,
  opts: { securities?: number; log: (line: string) => void },
): Promise<BooksBench> {
  await fillBooks(deps, opts.securities ?? 1050, opts.log);
  return measureBooks(deps);
}

/** The two figures over books filled by fillBooks (exported for profiling on a kept database). */
export async function measureBooks(deps: Deps): Promise<BooksBench> {
  const ids = (await deps.repos.books.portfolios()).found.map((p) => p.portfolioId);

  const snapshotSeconds = await best(() =>
    timed(() => holdingsSnapshot(deps, { from: FROM, to: TO, portfolioIds: ids }, directContext())),
  );
  const count = await deps.db.raw<{ rows: { n: number }[] }>('select count(*)::int as n from holdings');
  const holdings = count.rows[0]?.n ?? 0;
  // The write floor: the same rows inserted into holdings itself (same keys, indexes and foreign
  // keys), from a copy, by one INSERT … SELECT; the table emptied (untimed) before each run.
  await deps.db.raw('drop table if exists bench_holdings');
  await deps.db.raw('create table bench_holdings as select * from holdings');
  const insertSelectSeconds = await best(async () => {
    await deps.db.raw('truncate holdings');
    return timed(() => deps.db.raw('insert into holdings select * from bench_holdings'));
  });
  await deps.db.raw('drop table if exists bench_holdings');
  await deps.db.raw('vacuum analyze holdings');
  return {
    holdings,
    snapshotSeconds,
    insertSelectSeconds,
    snapshotRatio: snapshotSeconds / insertSelectSeconds,
    ...(await measureVariance(deps)),
  };
}

/** variance.quarterly over the 21 quarters vs the bare aggregation, over books already written. */
export async function measureVariance(deps: Deps): Promise<{
  quarters: number;
  varianceRows: number;
  varianceSeconds: number;
  aggregationSeconds: number;
  varianceRatio: number;
  writeFloorSeconds: number;
}> {
  const ids = (await deps.repos.books.portfolios()).found.map((p) => p.portfolioId);
  const chain: string[] = ['2020Q4'];
  for (let y = 2021; y <= 2025; y++) for (let q = 1; q <= 4; q++) chain.push(`${y}Q${q}`);
  let varianceRows = 0;
  const varianceSeconds = await best(() =>
    timed(async () => {
      varianceRows = 0;
      for (const quarter of chain) {
        const r = await varianceQuarterly(deps, { quarter, portfolioIds: ids }, directContext());
        if (!('skipped' in r)) varianceRows += r.rows;
      }
    }),
  );
  const aggregationSeconds = await best(async () => {
    await deps.db.raw('drop table if exists bench_variance');
    await deps.db.raw(
      `create table bench_variance (portfolio_id text, security_id int, label text, mv0 numeric, mv1 numeric,
         qty numeric, price numeric, fx numeric, total numeric)`,
    );
    return timed(async () => {
      for (const quarter of chain) {
        const p = resolvePeriod({ quarter });
        await deps.db.raw(
          `insert into bench_variance
           select coalesce(h0.portfolio_id, h1.portfolio_id), coalesce(h0.security_id, h1.security_id), ?,
                  round(coalesce(h0.market_value, 0), 2), round(coalesce(h1.market_value, 0), 2),
                  round((coalesce(h1.quantity, 0) - coalesce(h0.quantity, 0)) * h0.local_price * h0.fx_rate, 2),
                  round(coalesce(h1.quantity, 0) * (h1.local_price - h0.local_price) * h0.fx_rate, 2),
                  round(coalesce(h1.quantity, 0) * h1.local_price * (h1.fx_rate - h0.fx_rate), 2),
                  coalesce(h1.market_value, 0) - coalesce(h0.market_value, 0)
             from (select * from holdings where portfolio_id = any(?::text[]) and as_of_date = ?::date) h0
             full join (select * from holdings where portfolio_id = any(?::text[]) and as_of_date = ?::date) h1
               on h1.portfolio_id = h0.portfolio_id and h1.security_id = h0.security_id`,
          [p.label, ids, p.d0, ids, p.d1],
        );
      }
    });
  });
  await deps.db.raw('drop table if exists bench_variance');
  // The write floor of variance.quarterly: per quarter, one transaction replacing the period's rows
  // of variance_rows (its keys, indexes and foreign keys) by the same rows from a copy.
  await deps.db.raw('drop table if exists bench_variance_rows');
  await deps.db.raw('create table bench_variance_rows as select * from variance_rows');
  const writeFloorSeconds = await best(() =>
    timed(async () => {
      for (const quarter of chain) {
        const p = resolvePeriod({ quarter });
        await deps.db.transaction(async (trx) => {
          await trx.raw('delete from variance_rows where period_from = ?::date and period_to = ?::date', [
            p.start,
            p.end,
          ]);
          await trx.raw(
            'insert into variance_rows select * from bench_variance_rows where period_from = ?::date and period_to = ?::date',
            [p.start, p.end],
          );
        });
      }
    }),
  );
  await deps.db.raw('drop table if exists bench_variance_rows');
  return {
    writeFloorSeconds,
    quarters: chain.length,
    varianceRows,
    varianceSeconds,
    aggregationSeconds,
    varianceRatio: varianceSeconds / aggregationSeconds,
  };
}
