/**
 * Set-based bar rollups, run inside PostgreSQL (no tick ever crosses into Node).
 *
 * 5-minute bars: buckets are [t, t+5m) aligned to the Unix epoch (`date_bin` with origin
 * 1970-01-01Z). Open and close are the first and last tick by (ts, seq). PostgreSQL 15 has no
 * first()/last() aggregate and `array_agg(... order by)` sorts every group, so we take the
 * min / max of a composite key `array[epoch, seq, price]`: arrays compare element by element, so
 * the minimum is the tick with the smallest (ts, seq) and its third element is that tick's price.
 * All elements are numeric, so nothing is rounded. (Measured, aggregation alone: 1.4x a bare GROUP BY
 * on 3.3M uniform ticks, 1.9x on 2.3M generated ticks; ordered array_agg 1.7x on the first. With
 * its writes the whole rollup is slower still: see ARCHITECTURE.md, "Known gaps".)
 *
 * Two ways to say what to recompute, one way to write it:
 * - a range (`rollup5m(from, to, ids)`, `rollup1d(from, to, ids)`): every bucket / session in it.
 *   The full recompute, and the sweep for ticks written by a path that recorded no bar_changes.
 * - the change log (`rollup5mChanges`, `rollup1dChanges`): consume `bar_changes` rows by deleting
 *   them in the transaction that rewrites their bars, merge overlapping ranges per security, widen
 *   them to whole buckets (or map them to sessions), recompute exactly those. The tick scan is a
 *   nested loop over the merged ranges into the (security_id, ts, seq) primary key of each
 *   partition, and the statement carries literal min/max bounds so the planner prunes partitions
 *   at plan time: the cost follows the new data, not the history in the table.
 * Either way the bars of what was recomputed are replaced exactly (upsert what the source gives,
 * delete bars whose source rows are gone), so re-runs, late, duplicate and corrected ticks leave
 * what one clean run would leave. Every 5-minute bar change (both modes) appends its range at level
 * '1d' to bar_changes, so the daily rollup follows the 5-minute bars without rescanning them.
 *
 * Runs of one level take turns on an advisory lock, so each sees what the previous one committed
 * and two runs never consume the same change. A writer's change row that is not committed yet is
 * invisible to the consuming delete and stays for the next run; since the tick scan is a later
 * statement (READ COMMITTED: a newer snapshot), it sees at least the ticks of every change consumed.
 *
 * Daily bars: 5-minute bars inside each NYSE regular session (market_sessions, so holidays and
 * 13:00 early closes are data, not code) grouped by session date; VWAP = sum(pv) / sum(volume),
 * which equals sum(vwap * volume) / sum(volume) without the rounding of each 5-minute VWAP.
 * The 5-minute level keeps only buckets inside a session too (IN_SESSION), so both levels agree on
 * what a session is: ticks at 16:00, on a holiday or after a 13:00 early close make no bar at all.
 * A day is complete when its 5-minute bars fill every bucket of the session (calendar.ts
 * sessionBuckets), partial otherwise (a day quoted from 11:00). A complete day's rollup replaces any
 * bars_1d row (source 'rollup' over a provider's); a partial day's only replaces a 'rollup' row or
 * fills an empty slot, never a provider's full-day bar. provider-bars.ts applies the converse
 * rule (a provider bar replaces a partial 'rollup' day), so whichever arrives last, a provider's
 * full day beats a partial rollup and a complete rollup beats a provider.
 */
import { NYSE_TIME_ZONE, sessionDateOf } from '../../calendar/nyse.ts';
import type { Knex } from '../knex.ts';
import { insertMissingSessions, NYSE_EXCHANGE, sessionBuckets } from './calendar.ts';

export interface RollupCounts {
  upserted: number;
  deleted: number;
  /** Tickers whose bars changed (inserted, updated or removed), sorted. */
  changedSymbols: string[];
}

export interface ChangeRollup5m extends RollupCounts {
  /** bar_changes rows (level '5m') consumed. */
  changes: number;
  /** Merged (security, bucket range) sets recomputed. */
  ranges: number;
  /** Earliest bucket start and latest bucket end recomputed, or null when nothing was pending. */
  from: Date | null;
  to: Date | null;
  /** EXPLAIN of the tick scan, when asked for (tests and the bench check the plan). */
  plan?: string;
}

export interface ChangeRollup1d extends RollupCounts {
  /** bar_changes rows (level '1d') consumed. */
  changes: number;
  /** (security, session) pairs recomputed. */
  days: number;
  /** First and last session date recomputed (YYYY-MM-DD), or null. */
  from: string | null;
  to: string | null;
}

const EXCHANGE = NYSE_EXCHANGE;
const ORIGIN = `timestamptz '1970-01-01 00:00:00+00'`;

/** A literal for a statement: the planner prunes partitions on literals before it plans joins. */
const lit = (d: Date): string => `timestamptz '${d.toISOString()}'`;

/** Bars from the aggregated temp table, in BARS_5M_COLUMNS order. */
const BARS_5M_COLUMNS =
  'security_id, bucket, open, high, low, close, volume, pv, vwap, trade_count, updated_at';
const BARS_FROM_AGG = `
  select security_id, bucket, first_key[3], high, low, last_key[3], volume, pv,
         case when volume > 0 then round(pv / volume, 8) end, trade_count, now()
    from rollup_5m_agg`;
const AGG_5M_COLUMNS = `
  min(array[extract(epoch from t.ts), t.seq::numeric, t.price]) as first_key,
  max(array[extract(epoch from t.ts), t.seq::numeric, t.price]) as last_key,
  max(t.price) as high,
  min(t.price) as low,
  sum(t.size) as volume,
  sum(t.price * t.size) as pv,
  count(*) as trade_count`;
/** Upsert of rollup_5m_agg into bars_5m, touching only bars that differ; returns their keys. */
const UPSERT_5M = `
  insert into bars_5m as b (${BARS_5M_COLUMNS}) ${BARS_FROM_AGG}
  on conflict (security_id, bucket) do update
     set open = excluded.open, high = excluded.high, low = excluded.low, close = excluded.close,
         volume = excluded.volume, pv = excluded.pv, vwap = excluded.vwap,
         trade_count = excluded.trade_count, updated_at = excluded.updated_at
   where (b.open, b.high, b.low, b.close, b.volume, b.pv, b.trade_count)
         is distinct from
         (excluded.open, excluded.high, excluded.low, excluded.close, excluded.volume, excluded.pv, excluded.trade_count)
  returning b.security_id, b.bucket`;

const AGG_1D_COLUMNS = `
  min(array[extract(epoch from b.bucket), b.open]) as first_key,
  max(array[extract(epoch from b.bucket), b.close]) as last_key,
  max(b.high) as high, min(b.low) as low,
  sum(b.volume) as volume, sum(b.pv) as pv, sum(b.trade_count) as trade_count`;
/**
 * Whether a day's 5-minute bars (alias b, all inside the session aliased `s`) fill every bucket of
 * the session; see the header.
 */
const COMPLETE_1D = (s: string): string => `count(*) = max(${sessionBuckets(s)}) as complete`;

/**
 * Keeps the aggregated buckets (alias a) that lie in an NYSE regular session: sessions open and
 * close on 5-minute boundaries, so a bucket is in a session exactly when its ticks are. Ticks at
 * 16:00, on a holiday or after a 13:00 early close make no 5-minute bar, just as the daily rollup
 * leaves them out: both levels share market_sessions as the one definition of a session.
 */
const IN_SESSION = `exists (select 1 from market_sessions s
                      where s.exchange = '${EXCHANGE}' and s.open_at <= a.bucket
                        and s.open_at > a.bucket - interval '1 day' and s.close_at > a.bucket)`;
/**
 * Upsert of rollup_1d_agg into bars_1d (source 'rollup'); returns the securities changed. A row
 * from elsewhere (a provider) is replaced only by a complete day. A new row's adj_close starts as
 * its close, which it is unless an action follows: the database's trigger (migration
 * 20261204000200) then corrects just those rows, so a bulk roll does not rewrite every row.
 */
const UPSERT_1D = `
  insert into bars_1d as d (security_id, session_date, open, high, low, close, adj_close, volume, pv, vwap, trade_count,
                            source, updated_at)
  select security_id, session_date, first_key[2], high, low, last_key[2], last_key[2], volume, pv,
         case when volume > 0 then round(pv / volume, 8) end, trade_count, 'rollup', now()
    from rollup_1d_agg
  on conflict (security_id, session_date) do update
     set open = excluded.open, high = excluded.high, low = excluded.low, close = excluded.close,
         volume = excluded.volume, pv = excluded.pv, vwap = excluded.vwap,
         trade_count = excluded.trade_count, source = excluded.source, updated_at = excluded.updated_at
   where (d.source = 'rollup'
          or exists (select 1 from rollup_1d_agg a
                      where a.security_id = excluded.security_id and a.session_date = excluded.session_date
                        and a.complete))
     and (d.open, d.high, d.low, d.close, d.volume, d.pv, d.trade_count, d.source)
         is distinct from
         (excluded.open, excluded.high, excluded.low, excluded.close, excluded.volume, excluded.pv, excluded.trade_count, excluded.source)
  returning d.security_id`;

/** Tickers of the securities in a `changed` CTE, sorted. */
const CHANGED_SYMBOLS = `coalesce((select array_agg(s.ticker order by s.ticker) from securities s
                                     where s.id in (select security_id from changed)), '{}') as symbols`;

interface CountsRow {
  upserted: string;
  deleted: string;
  symbols: string[];
}
const toCounts = (row: CountsRow | undefined): RollupCounts => ({
  upserted: Number(row?.upserted ?? 0),
  deleted: Number(row?.deleted ?? 0),
  changedSymbols: row?.symbols ?? [],
});

/**
 * Stores the NYSE sessions of [from, to) that market_sessions lacks, in the rollup's transaction:
 * the 5-minute rollup keeps only buckets inside a stored session, so a missing calendar row must
 * never look like a day without a session.
 */
async function ensureSessionsOn(trx: Knex.Transaction, from: Date, to: Date): Promise<void> {
  await insertMissingSessions(trx, sessionDateOf(from), sessionDateOf(new Date(to.getTime() - 1)));
}

/**
 * One lock order for every rollup transaction: the level's advisory lock first, table locks after
 * it (creating a bars_5m partition locks bars_5m exclusively). A transaction that took a table
 * lock and then waited for the advisory lock deadlocks with one that holds the advisory lock and
 * reaches for the table, so every rollup opens its transaction here and nowhere else.
 */
function rollupTransaction<T>(
  db: Knex,
  level: 'bars_5m' | 'bars_1d',
  fn: (trx: Knex.Transaction) => Promise<T>,
) {
  return db.transaction(async (trx) => {
    await trx.raw(`select pg_advisory_xact_lock(hashtext(?))`, [`rollup:${level}`]);
    return fn(trx);
  });
}

export function createRollupsRepository(db: Knex) {
  return {
    /** Earliest and latest tick time, optionally for some securities (planning a full rollup). */
    async tickSpan(securityIds?: number[]): Promise<{ from: Date; to: Date } | undefined> {
      const q = db('ticks').min<{ min: Date | null; max: Date | null }>({ min: 'ts' }).max({ max: 'ts' });
      if (securityIds) q.whereIn('security_id', securityIds);
      const row = (await q.first()) as { min: Date | null; max: Date | null } | undefined;
      if (!row?.min || !row.max) return undefined;
      return { from: row.min, to: row.max };
    },

    /**
     * Rolls ticks with ts in [from, to) into bars_5m (the range mode). from and to must be
     * 5-minute aligned. Records the changed buckets at level '1d'.
     */
    async rollup5m(from: Date, to: Date, securityIds?: number[]): Promise<RollupCounts> {
      // Rollups of overlapping ranges (a manual run beside the scheduled one, several workers)
      // take turns, so each sees the bars the previous one committed.
      return rollupTransaction(db, 'bars_5m', async (trx) => {
        await trx.raw(`select ensure_month_partitions('bars_5m', ?, ?)`, [from, to]);
        await ensureSessionsOn(trx, from, to);
        const ids = securityIds ?? null;
        // Aggregate into a temp table first: a plain CREATE TABLE AS may use parallel workers, a
        // data-modifying CTE may not (measured: the aggregation is most of the run).
        await trx.raw(
          `
          create temp table rollup_5m_agg on commit drop as
          select * from (
            select t.security_id,
                   date_bin('5 minutes', t.ts, ${ORIGIN}) as bucket,
                   ${AGG_5M_COLUMNS}
              from ticks t
             where t.ts >= :from and t.ts < :to
               and (:ids::int[] is null or t.security_id = any(:ids::int[]))
             group by 1, 2
          ) a
          where ${IN_SESSION}
          `,
          { from, to, ids },
        );
        const existing = await trx.raw<{ rows: { any: boolean }[] }>(
          `select exists (select 1 from bars_5m
                           where bucket >= :from and bucket < :to
                             and (:ids::int[] is null or security_id = any(:ids::int[]))) as any`,
          { from, to, ids },
        );
        if (!existing.rows[0]?.any) {
          // First roll of this range: nothing to update or delete, so a plain insert (cheaper
          // than the upsert's conflict checks; the advisory lock rules out a racing writer).
          const inserted = await trx.raw(`insert into bars_5m (${BARS_5M_COLUMNS}) ${BARS_FROM_AGG}`);
          const marked = await trx.raw<{ rows: { symbols: string[] }[] }>(`
            with changed as (
              insert into bar_changes (level, security_id, from_ts, to_ts)
              select '1d', security_id, min(bucket), max(bucket) + interval '5 minutes'
                from rollup_5m_agg group by security_id
              returning security_id
            )
            select ${CHANGED_SYMBOLS}`);
          return {
            upserted: (inserted as { rowCount: number }).rowCount,
            deleted: 0,
            changedSymbols: marked.rows[0]?.symbols ?? [],
          };
        }
        const res = await trx.raw<{ rows: CountsRow[] }>(
          `
          with upserted as (${UPSERT_5M}),
          deleted as (
            delete from bars_5m b
             where b.bucket >= :from and b.bucket < :to
               and (:ids::int[] is null or b.security_id = any(:ids::int[]))
               and not exists (select 1 from rollup_5m_agg a where a.security_id = b.security_id and a.bucket = b.bucket)
            returning b.security_id, b.bucket
          ),
          changed as (
            insert into bar_changes (level, security_id, from_ts, to_ts)
            select '1d', c.security_id, min(c.bucket), max(c.bucket) + interval '5 minutes'
              from (select security_id, bucket from upserted union all select security_id, bucket from deleted) c
             group by c.security_id
            returning security_id
          )
          select (select count(*) from upserted) as upserted, (select count(*) from deleted) as deleted,
                 ${CHANGED_SYMBOLS}
          `,
          { from, to, ids },
        );
        return toCounts(res.rows[0]);
      });
    },

    /** Number of bar_changes rows waiting at a level (progress and lag reporting). */
    async pendingChanges(level: '5m' | '1d'): Promise<number> {
      const res = await db.raw<{ rows: { n: string }[] }>(
        `select count(*) as n from bar_changes where level = ?`,
        [level],
      );
      return Number(res.rows[0]?.n ?? 0);
    },

    /**
     * The incremental 5-minute rollup: consumes up to `limit` bar_changes rows of level '5m' (oldest
     * first) and recomputes exactly the buckets they touch, in one transaction.
     */
    async rollup5mChanges(opts: {
      limit: number;
      /** Ticks before this are gone (retention): changes are clipped to it, so bars outliving them stay. */
      notBefore?: Date | undefined;
      explain?: boolean;
    }): Promise<ChangeRollup5m> {
      return rollupTransaction(db, 'bars_5m', async (trx) => {
        // Small statements: JIT compilation would cost more than it saves (and vary run to run).
        await trx.raw('set local jit = off');
        await trx.raw(`
          create temp table rollup_5m_changes (
            security_id integer not null, from_ts timestamptz not null, to_ts timestamptz not null
          ) on commit drop`);
        const consumed = await trx.raw<{ rowCount: number }>(
          `
          with consumed as (
            delete from bar_changes
             where id in (select id from bar_changes where level = '5m' order by id limit :limit)
            returning security_id, from_ts, to_ts
          )
          insert into rollup_5m_changes select security_id, from_ts, to_ts from consumed
          `,
          { limit: opts.limit },
        );
        const changes = consumed.rowCount;
        const none: ChangeRollup5m = {
          changes,
          ranges: 0,
          from: null,
          to: null,
          upserted: 0,
          deleted: 0,
          changedSymbols: [],
        };
        if (changes === 0) return none;

        // Widen to whole buckets ([from_ts, to_ts) exclusive: the bucket of the last instant
        // before to_ts is the last one) and merge overlapping or adjacent ranges per security
        // (gaps and islands), so every bucket is recomputed once and the ranges are disjoint.
        await trx.raw(
          `
          create temp table rollup_5m_ranges on commit drop as
          with w as (
            select * from (
              select security_id,
                     greatest(date_bin('5 minutes', from_ts, ${ORIGIN}), :notBefore::timestamptz) as f,
                     date_bin('5 minutes', to_ts - interval '1 microsecond', ${ORIGIN}) + interval '5 minutes' as t
                from rollup_5m_changes
            ) w0 where t > f
          ),
          o as (
            select security_id, f, t,
                   max(t) over (partition by security_id order by f, t
                                rows between unbounded preceding and 1 preceding) as reach
              from w
          ),
          g as (
            select security_id, f, t,
                   count(*) filter (where reach is null or f > reach)
                     over (partition by security_id order by f, t rows unbounded preceding) as island
              from o
          )
          select security_id, min(f) as from_b, max(t) as to_b from g group by security_id, island`,
          { notBefore: opts.notBefore ?? null },
        );
        // Temp tables are never auto-analyzed: without statistics the planner would guess.
        await trx.raw('analyze rollup_5m_ranges');
        const span = await trx.raw<{ rows: { n: string; min: Date; max: Date }[] }>(
          `select count(*) as n, min(from_b) as min, max(to_b) as max from rollup_5m_ranges`,
        );
        const ranges = Number(span.rows[0]!.n);
        if (ranges === 0) return none;
        const from = span.rows[0]!.min;
        const to = span.rows[0]!.max;
        await trx.raw(`select ensure_month_partitions('bars_5m', ?, ?)`, [from, to]);

        // One index range scan per merged range (the lateral subquery, kept from being flattened
        // into a hash join by `offset 0`); the literal bounds prune partitions at plan time and the
        // per-range bounds prune the rest at run time.
        const tickScan = `
          select r.security_id,
                 date_bin('5 minutes', t.ts, ${ORIGIN}) as bucket,
                 ${AGG_5M_COLUMNS}
            from rollup_5m_ranges r
            cross join lateral (
              select k.ts, k.seq, k.price, k.size
                from ticks k
               where k.security_id = r.security_id and k.ts >= r.from_b and k.ts < r.to_b
                 and k.ts >= ${lit(from)} and k.ts < ${lit(to)}
              offset 0
            ) t
           group by 1, 2`;
        let plan: string | undefined;
        if (opts.explain) {
          const ex = await trx.raw<{ rows: { 'QUERY PLAN': string }[] }>(`explain ${tickScan}`);
          plan = ex.rows.map((r) => r['QUERY PLAN']).join('\n');
        }
        await ensureSessionsOn(trx, from, to);
        await trx.raw(
          `create temp table rollup_5m_agg on commit drop as select * from (${tickScan}) a where ${IN_SESSION}`,
        );
        // Bars of the ranges whose ticks are gone, found the same way (per-range index scans), so
        // the delete below joins a small table instead of planning over a whole partition.
        await trx.raw(`
          create temp table rollup_5m_gone on commit drop as
          select x.security_id, x.bucket
            from rollup_5m_ranges r
            cross join lateral (
              select v.security_id, v.bucket
                from bars_5m v
               where v.security_id = r.security_id and v.bucket >= r.from_b and v.bucket < r.to_b
                 and v.bucket >= ${lit(from)} and v.bucket < ${lit(to)}
              offset 0
            ) x
           where not exists (select 1 from rollup_5m_agg a where a.security_id = x.security_id and a.bucket = x.bucket)`);
        await trx.raw('analyze rollup_5m_gone');

        const writeSql = `
          with upserted as (${UPSERT_5M}),
          deleted as (
            delete from bars_5m b
             using rollup_5m_gone g
             where b.security_id = g.security_id and b.bucket = g.bucket
               and b.bucket >= ${lit(from)} and b.bucket < ${lit(to)}
            returning b.security_id, b.bucket
          ),
          changed as (
            -- One daily change per recomputed range that changed, spanning its changed buckets.
            insert into bar_changes (level, security_id, from_ts, to_ts)
            select '1d', c.security_id, min(c.bucket), max(c.bucket) + interval '5 minutes'
              from (select security_id, bucket from upserted union all select security_id, bucket from deleted) c
              join rollup_5m_ranges r
                on r.security_id = c.security_id and c.bucket >= r.from_b and c.bucket < r.to_b
             group by c.security_id, r.from_b
            returning security_id
          )
          select (select count(*) from upserted) as upserted, (select count(*) from deleted) as deleted,
                 ${CHANGED_SYMBOLS}`;
        if (opts.explain) {
          const ex = await trx.raw<{ rows: { 'QUERY PLAN': string }[] }>(`explain ${writeSql}`);
          plan = `${plan}\n\n${ex.rows.map((r) => r['QUERY PLAN']).join('\n')}`;
        }
        const res = await trx.raw<{ rows: CountsRow[] }>(writeSql);
        return { ...none, ranges, from, to, ...toCounts(res.rows[0]), ...(plan ? { plan } : {}) };
      });
    },

    /** First and last session dates that have 5-minute bars (planning a full daily rollup). */
    async barSessionSpan(): Promise<{ from: string; to: string } | undefined> {
      const res = await db.raw<{ rows: { from: string | null; to: string | null }[] }>(
        `select (min(bucket) at time zone :tz)::date::text as from,
                (max(bucket) at time zone :tz)::date::text as to
           from bars_5m`,
        { tz: NYSE_TIME_ZONE },
      );
      const row = res.rows[0];
      return row?.from && row.to ? { from: row.from, to: row.to } : undefined;
    },

    /** Rolls 5-minute bars of sessions from..to (inclusive dates) into bars_1d (source 'rollup'). */
    async rollup1d(from: string, to: string, securityIds?: number[]): Promise<RollupCounts> {
      return rollupTransaction(db, 'bars_1d', async (trx) => {
        const ids = securityIds ?? null;
        // This run recomputes every session of from..to, so the level-'1d' changes lying within
        // those New York days are done with (consumed before the aggregation reads bars_5m, as the
        // incremental path does); otherwise the next incremental run would redo them all.
        await trx.raw(
          `delete from bar_changes
            where level = '1d'
              and from_ts >= (:from::date)::timestamp at time zone :tz
              and to_ts <= (:to::date + 1)::timestamp at time zone :tz
              and (:ids::int[] is null or security_id = any(:ids::int[]))`,
          { from, to, ids, tz: NYSE_TIME_ZONE },
        );
        await trx.raw(
          `
          create temp table rollup_1d_agg on commit drop as
          select b.security_id, s.session_date, ${AGG_1D_COLUMNS}, ${COMPLETE_1D('s')}
            from market_sessions s
            join bars_5m b on b.bucket >= s.open_at and b.bucket < s.close_at
           where s.exchange = :exchange and s.session_date between :from::date and :to::date
             and (:ids::int[] is null or b.security_id = any(:ids::int[]))
           group by 1, 2
          `,
          { from, to, ids, exchange: EXCHANGE },
        );
        const res = await trx.raw<{ rows: CountsRow[] }>(
          `
          with upserted as (${UPSERT_1D}),
          deleted as (
            -- A rolled-up day whose 5-minute bars are all gone no longer exists.
            delete from bars_1d d
             where d.source = 'rollup' and d.session_date between :from::date and :to::date
               and (:ids::int[] is null or d.security_id = any(:ids::int[]))
               and not exists (select 1 from rollup_1d_agg a
                                where a.security_id = d.security_id and a.session_date = d.session_date)
            returning d.security_id
          ),
          changed as (select security_id from upserted union select security_id from deleted)
          select (select count(*) from upserted) as upserted, (select count(*) from deleted) as deleted,
                 ${CHANGED_SYMBOLS}
          `,
          { from, to, ids },
        );
        return toCounts(res.rows[0]);
      });
    },

    /**
     * Earliest start and latest end of the pending level-'1d' changes. The daily rollup makes sure
     * market_sessions covers these dates before consuming, and consumes only changes inside them.
     */
    async pending1dSpan(): Promise<{ from: Date; to: Date } | undefined> {
      const res = await db.raw<{ rows: { min: Date | null; max: Date | null }[] }>(
        `select min(from_ts) as min, max(to_ts) as max from bar_changes where level = '1d'`,
      );
      const row = res.rows[0];
      return row?.min && row.max ? { from: row.min, to: row.max } : undefined;
    },

    /**
     * The incremental daily rollup: consumes up to `limit` level-'1d' changes lying within `within`
     * (whose sessions the caller has ensured), maps them to (security, session) through
     * market_sessions and recomputes exactly those days from bars_5m.
     */
    async rollup1dChanges(opts: {
      limit: number;
      within: { from: Date; to: Date };
      /** 5-minute bars before this are gone (retention): sessions before it are left alone. */
      notBefore?: Date | undefined;
    }): Promise<ChangeRollup1d> {
      return rollupTransaction(db, 'bars_1d', async (trx) => {
        await trx.raw('set local jit = off');
        await trx.raw(`
          create temp table rollup_1d_changes (
            security_id integer not null, from_ts timestamptz not null, to_ts timestamptz not null
          ) on commit drop`);
        const consumed = await trx.raw<{ rowCount: number }>(
          `
          with consumed as (
            delete from bar_changes
             where id in (select id from bar_changes
                           where level = '1d' and from_ts >= :from and to_ts <= :to
                           order by id limit :limit)
            returning security_id, from_ts, to_ts
          )
          insert into rollup_1d_changes select security_id, from_ts, to_ts from consumed
          `,
          { limit: opts.limit, from: opts.within.from, to: opts.within.to },
        );
        const changes = consumed.rowCount;
        const none: ChangeRollup1d = {
          changes,
          days: 0,
          from: null,
          to: null,
          upserted: 0,
          deleted: 0,
          changedSymbols: [],
        };
        if (changes === 0) return none;

        // A change reaches the sessions it overlaps (a session is shorter than a day, so the
        // extra bound keeps the index scan on open_at short); pre- and post-market buckets reach none.
        await trx.raw(
          `
          create temp table rollup_1d_days on commit drop as
          select distinct c.security_id, s.session_date, s.open_at, s.close_at
            from rollup_1d_changes c
            join market_sessions s
              on s.exchange = :exchange
             and s.open_at < c.to_ts and s.open_at > c.from_ts - interval '1 day' and s.close_at > c.from_ts
           where :notBefore::timestamptz is null or s.open_at >= :notBefore::timestamptz
          `,
          { exchange: EXCHANGE, notBefore: opts.notBefore ?? null },
        );
        await trx.raw('analyze rollup_1d_days');
        const span = await trx.raw<{
          rows: {
            n: string;
            min: Date | null;
            max: Date | null;
            first: string | null;
            last: string | null;
          }[];
        }>(
          `select count(*) as n, min(open_at) as min, max(close_at) as max,
                  min(session_date)::text as first, max(session_date)::text as last
             from rollup_1d_days`,
        );
        const s = span.rows[0]!;
        if (!s.min || !s.max) return none;
        await trx.raw(`
          create temp table rollup_1d_agg on commit drop as
          select d.security_id, d.session_date, ${AGG_1D_COLUMNS}, ${COMPLETE_1D('d')}
            from rollup_1d_days d
            cross join lateral (
              select x.bucket, x.open, x.high, x.low, x.close, x.volume, x.pv, x.trade_count
                from bars_5m x
               where x.security_id = d.security_id and x.bucket >= d.open_at and x.bucket < d.close_at
                 and x.bucket >= ${lit(s.min)} and x.bucket < ${lit(s.max)}
              offset 0
            ) b
           group by 1, 2`);
        const res = await trx.raw<{ rows: CountsRow[] }>(`
          with upserted as (${UPSERT_1D}),
          deleted as (
            delete from bars_1d d
             using rollup_1d_days x
             where d.security_id = x.security_id and d.session_date = x.session_date and d.source = 'rollup'
               and not exists (select 1 from rollup_1d_agg a
                                where a.security_id = d.security_id and a.session_date = d.session_date)
            returning d.security_id
          ),
          changed as (select security_id from upserted union select security_id from deleted)
          select (select count(*) from upserted) as upserted, (select count(*) from deleted) as deleted,
                 ${CHANGED_SYMBOLS}`);
        return { ...none, days: Number(s.n), from: s.first, to: s.last, ...toCounts(res.rows[0]) };
      });
    },
  };
}

export type RollupsRepository = ReturnType<typeof createRollupsRepository>;
