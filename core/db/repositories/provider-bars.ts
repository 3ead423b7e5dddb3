/**
 * Provider daily bars (`bars_1d` rows with `source` = the provider) and the reads prices.backfill
 * plans with: which sessions a security lacks.
 *
 * Complete and partial days: a session's 5-minute data is complete when it fills every 5-minute
 * bucket of the session (78, or 42 on a 13:00 early close: calendar.ts sessionBuckets), partial
 * otherwise (a day quoted from 11:00, or two ticks from the open). The same rule serves every place:
 * - "missing" planning (sessionsMissing): an intraday session needs fetching unless its buckets
 *   are all covered by bars_5m or stored ticks; a daily one unless it has a provider's bar or a
 *   complete rolled-up one;
 * - provider daily bars (upsertDailyOn) never overwrite a 'rollup' bar of a complete day (rolled
 *   up from stored ticks, it is authoritative), but do replace a partial one. A 'rollup' bar whose
 *   5-minute bars are gone (retention) cannot be judged and is kept;
 * - the daily rollup (rollups.ts) overwrites a provider's bar only for a complete day.
 */
import { rawTransaction, type Knex } from '../knex.ts';
import { sessionBuckets } from './calendar.ts';
import { col, type Conn } from './sql.ts';

const EXCHANGE = 'XNYS';

export interface DailyBarUpsert {
  securityId: number;
  sessionDate: string;
  open: string;
  high: string;
  low: string;
  close: string;
  adjClose: string | null;
  volume: number;
  /** The provider's name. */
  source: string;
}

export interface DailyCounts {
  inserted: number;
  updated: number;
  unchanged: number;
  /** Complete sessions already rolled up from ticks: left as they are. */
  keptRollup: number;
}

/**
 * Provider daily bars. A stored 'rollup' bar is replaced only when its day is partial (see the
 * header): its 5-minute bars do not fill the session.
 */
export async function upsertDailyOn(conn: Conn, rows: readonly DailyBarUpsert[]): Promise<DailyCounts> {
  if (rows.length === 0) return { inserted: 0, updated: 0, unchanged: 0, keptRollup: 0 };
  const res = await conn.query<{ inserted: number; updated: number; kept: number }>(
    `with input as (
       select * from unnest($1::int[], $2::date[], $3::numeric[], $4::numeric[], $5::numeric[], $6::numeric[],
                            $7::numeric[], $8::bigint[], $9::text[])
                as x(security_id, session_date, open, high, low, close, adj_close, volume, source)
     ), partial as (
       -- Rolled-up days whose 5-minute bars do not cover the session (none left, after retention,
       -- cannot be judged: not partial).
       select d.security_id, d.session_date
         from input i
         join bars_1d d using (security_id, session_date)
         join market_sessions s on s.exchange = '${EXCHANGE}' and s.session_date = d.session_date
        where d.source = 'rollup'
          and (select count(*) from bars_5m b
                where b.security_id = d.security_id and b.bucket >= s.open_at and b.bucket < s.close_at)
              between 1 and ${sessionBuckets('s')} - 1
     ), up as (
       insert into bars_1d as d (security_id, session_date, open, high, low, close, adj_close, volume, source, updated_at)
       select security_id, session_date, open, high, low, close, adj_close, volume, source, now() from input
       on conflict (security_id, session_date) do update
          set open = excluded.open, high = excluded.high, low = excluded.low, close = excluded.close,
              adj_close = excluded.adj_close, volume = excluded.volume, pv = null, vwap = null,
              trade_count = null, source = excluded.source, updated_at = excluded.updated_at
        where (d.source <> 'rollup'
               or exists (select 1 from partial p
                           where p.security_id = d.security_id and p.session_date = d.session_date))
          and (d.open, d.high, d.low, d.close, d.adj_close, d.volume, d.source)
              is distinct from
              (excluded.open, excluded.high, excluded.low, excluded.close, excluded.adj_close, excluded.volume,
               excluded.source)
       returning (xmax = 0) as inserted
     )
     select (count(*) filter (where inserted))::int as inserted,
            (count(*) filter (where not inserted))::int as updated,
            (select count(*) from bars_1d d join input i using (security_id, session_date)
              where d.source = 'rollup'
                and not exists (select 1 from partial p
                                 where p.security_id = d.security_id and p.session_date = d.session_date))::int
              as kept
       from up`,
    [
      col(rows, 'securityId'),
      col(rows, 'sessionDate'),
      col(rows, 'open'),
      col(rows, 'high'),
      col(rows, 'low'),
      col(rows, 'close'),
      col(rows, 'adjClose'),
      col(rows, 'volume'),
      col(rows, 'source'),
    ],
  );
  const r = res.rows[0] ?? { inserted: 0, updated: 0, kept: 0 };
  return {
    inserted: r.inserted,
    updated: r.updated,
    keptRollup: r.kept,
    unchanged: rows.length - r.inserted - r.updated - r.kept,
  };
}

export function createProviderBarsRepository(db: Knex) {
  return {
    /** Provider daily bars; a stored 'rollup' bar is left alone unless its day is partial (header). */
    async upsertDaily(rows: readonly DailyBarUpsert[]): Promise<DailyCounts> {
      return rawTransaction(db, (conn) => upsertDailyOn(conn, rows));
    },

    /**
     * Sessions (market_sessions, from..to inclusive) the security lacks. '5m'/'1m': every session
     * whose 5-minute buckets are not all covered, by bars_5m or by stored ticks (bar prints not
     * rolled up yet count, so a second "missing" run before the rollup refetches nothing); a day
     * quoted from 11:00, or with two ticks, is missing and gets backfilled. '1d': sessions with no
     * bars_1d row, or only a 'rollup' row whose 5-minute bars do not cover the session (a partial
     * day, which a provider's bar replaces; one with no 5-minute bars left cannot be judged and
     * counts as present). See the header: one rule for complete days everywhere.
     */
    async sessionsMissing(
      securityId: number,
      from: string,
      to: string,
      interval: '1d' | '5m' | '1m',
    ): Promise<string[]> {
      const bars5m = `(select count(*) from bars_5m b
                        where b.security_id = :id and b.bucket >= s.open_at and b.bucket < s.close_at)`;
      const sql =
        interval === '1d'
          ? `select s.session_date::text as d from market_sessions s
              where s.exchange = :ex and s.session_date between :from::date and :to::date
                and not exists (select 1 from bars_1d b
                                 where b.security_id = :id and b.session_date = s.session_date
                                   and (b.source <> 'rollup' or ${bars5m} not between 1 and ${sessionBuckets('s')} - 1))
              order by 1`
          : `select s.session_date::text as d from market_sessions s
              where s.exchange = :ex and s.session_date between :from::date and :to::date
                and ${bars5m} < ${sessionBuckets('s')}
                and (select count(*) from (
                       select b.bucket from bars_5m b
                        where b.security_id = :id and b.bucket >= s.open_at and b.bucket < s.close_at
                       union
                       select date_bin('5 minutes', t.ts, timestamptz '1970-01-01 00:00:00+00') from ticks t
                        where t.security_id = :id and t.ts >= s.open_at and t.ts < s.close_at) c)
                    < ${sessionBuckets('s')}
              order by 1`;
      const res = await db.raw<{ rows: { d: string }[] }>(sql, { ex: EXCHANGE, id: securityId, from, to });
      return res.rows.map((r) => r.d);
    },
  };
}

export type ProviderBarsRepository = ReturnType<typeof createProviderBarsRepository>;
