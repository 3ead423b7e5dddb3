/**
 * All indicators for N securities × Y years of daily bars (issue 3: aim under 10 s for 1,000 × 5):
 * fills bars_1d set-based (one INSERT … SELECT over generate_series-style input: a deterministic
 * random walk per security from a hash of (security, day)), then times the analytics.indicators
 * processor for interval '1d' over every security, end to end: reading the bars, computing the
 * sixteen series, writing indicator_values. A second run (nothing changed) is logged as well.
 */
import { loadConfig } from '../core/config.ts';
import { sessionsBetween } from '../core/calendar/nyse.ts';
import { buildDeps, closeDeps, type Deps } from '../core/deps.ts';
import { analyticsIndicators } from '../jobs/processors/analytics.ts';
import { directContext } from '../jobs/types.ts';

/** The bench's last session date (fixed, so the walk and the calendar are the same on every run). */
const END_DATE = '2026-06-30';

export async function benchIndicators(opts: {
  databaseUrl: string;
  securities: number;
  years: number;
  log: (line: string) => void;
}): Promise<{ seconds: number; rowsWritten: number }> {
  const config = loadConfig({ ...process.env, LOG_LEVEL: 'warn', DATABASE_URL: opts.databaseUrl });
  const deps = buildDeps({ name: 'bench-indicators', config, poolMax: 4 });
  try {
    const from = `${Number(END_DATE.slice(0, 4)) - Math.floor(opts.years)}${END_DATE.slice(4)}`;
    const sessions = sessionsBetween(from, END_DATE).map((s) => s.date);
    const t0 = process.hrtime.bigint();
    const filled = await fillDailyBars(deps, opts.securities, sessions);
    opts.log(
      `indicators bench: ${opts.securities} securities x ${sessions.length} sessions = ${filled} daily bars filled in ${seconds(t0).toFixed(1)} s`,
    );

    const t1 = process.hrtime.bigint();
    const first = await analyticsIndicators(deps, { interval: '1d' }, directContext());
    const elapsed = seconds(t1);
    opts.log(
      `indicators bench: first run ${elapsed.toFixed(2)} s, ${first.rowsWritten} rows written for ${first.securities} securities`,
    );
    const t2 = process.hrtime.bigint();
    const again = await analyticsIndicators(deps, { interval: '1d' }, directContext());
    opts.log(
      `indicators bench: second run (no bar changed) ${seconds(t2).toFixed(2)} s, ${again.rowsWritten} rows written`,
    );
    return { seconds: elapsed, rowsWritten: first.rowsWritten };
  } finally {
    await closeDeps(deps);
  }
}

/**
 * Securities IXB0001… (ids SEC-900001…, clear of the generator's SEC-0001…) and one daily bar per
 * session each: close = 100·exp(Σ 0.02·(u − ½)) with u from hashint8extended(security, day), high
 * and low a hashed 0–1% around it, open between them; prices rounded to 4 places. Idempotent.
 */
async function fillDailyBars(deps: Deps, securities: number, sessions: string[]): Promise<number> {
  await deps.db.raw(
    `insert into securities (security_id, ticker, security_name, security_type, asset_class, currency, exchange)
     select 'SEC-' || (900000 + g), 'IXB' || lpad(g::text, 4, '0'), 'Indicator bench ' || g, 'EQUITY', 'Equity',
            'USD', 'XNYS'
       from generate_series(1, ?::int) g
     on conflict do nothing`,
    [securities],
  );
  const res = await deps.db.raw<{ rowCount: number }>(
    `with days as (select d, i from unnest(?::date[]) with ordinality as t(d, i)),
          secs as (select id from securities where ticker ~ '^IXB[0-9]{4}$' order by id limit ?),
          noise as (
            select s.id, days.d, days.i,
                   (hashint8extended(s.id::bigint * 100000 + days.i, 1) & 1048575) / 1048576.0 as u1,
                   (hashint8extended(s.id::bigint * 100000 + days.i, 2) & 1048575) / 1048576.0 as u2,
                   (hashint8extended(s.id::bigint * 100000 + days.i, 3) & 1048575) / 1048576.0 as u3,
                   (hashint8extended(s.id::bigint * 100000 + days.i, 4) & 1048575) / 1048576.0 as u4
              from secs s cross join days),
          walk as (
            select id, d, u2, u3, u4,
                   round((100 * exp(sum(0.02 * (u1 - 0.5)) over (partition by id order by i)))::numeric, 4) as c
              from noise),
          bars as (
            select id, d, c, round(c * (1 + 0.01 * u2::numeric), 4) as h, round(c * (1 - 0.01 * u3::numeric), 4) as l, u4
              from walk)
     insert into bars_1d (security_id, session_date, open, high, low, close, volume, source)
     select id, d, round(l + (h - l) * u4::numeric, 4), h, l, c, 1000 + (u4 * 100000)::bigint, 'bench'
       from bars
     on conflict do nothing`,
    [sessions, securities],
  );
  await deps.db.raw('vacuum analyze bars_1d');
  return res.rowCount;
}

function seconds(since: bigint): number {
  return Number(process.hrtime.bigint() - since) / 1e9;
}
