/**
 * Market data from providers: ticks, provider daily bars, corporate actions, FX rates, the
 * quarantine, and the reads the fetch/backfill jobs plan with.
 *
 * Ticks go in by COPY into a temporary staging table, then one `insert … on conflict do nothing`
 * into `ticks` that also appends the touched range per security to `bar_changes` (same
 * statement, same transaction), so a re-fetched row is counted as a duplicate, never stored
 * twice, and the incremental rollup sees every range that changed. When nothing is stored yet in
 * the batch's span (new history), the batch is COPYed straight into `ticks` under a savepoint
 * instead, falling back to the staging path on any key conflict (see insertTicksOn). `commitBatch` puts one unit of
 * work (a backfill chunk: its ticks or daily bars, corporate actions, quarantined rows and its
 * checkpoint) in one transaction, under an advisory lock on the checkpoint key: a crash loses at
 * most the batch in flight, and two workers never commit the same chunk.
 *
 * Every tick carries its origin (ticks.origin: 'quote', 'bar', 'generated', 'trade'); nothing is
 * inferred from seq, which only orders prints sharing a timestamp. A repeated key is a duplicate
 * when its values are the same, a correction (new values stored, old ones in tick_corrections)
 * when it comes from the same origin, and a quarantined conflicting duplicate when from another
 * (see insertTicksOn).
 *
 * Quotes and bar prints (core/ingest/load.ts): a quote is a seq-0 tick, a provider's intraday bar
 * four prints at its start with seq 1..4 and origin 'bar'. Both in the same 5-minute bucket would
 * be summed twice by the rollup, so a batch carrying bar prints first deletes, in the same
 * transaction, the security's ticks of other origins inside the minutes its bars cover, one
 * [bar start, bar start + interval) per bar (adjacent ones merged; never the nights or sessions
 * between two bars), appending those ranges to bar_changes too: the provider's bars are the
 * record of those minutes, the quotes were only a live view of them. The interval is the batch's
 * `barMinutes` when the caller gives it, else the gcd of the gaps under an hour between a
 * security's bar starts, else 1 minute (a single bar: the narrowest interval, so no tick outside a
 * bar is ever dropped).
 *
 * Complete and partial days: a session's 5-minute data is complete when it fills every 5-minute
 * bucket of the session (78, or 42 on a 13:00 early close: calendar.ts sessionBuckets), partial
 * otherwise (a day quoted from 11:00, or two ticks from the open). The same rule serves every place:
 * - "missing" planning (sessionsMissingBars): an intraday session needs fetching unless its buckets
 *   are all covered by bars_5m or stored ticks; a daily one unless it has a provider's bar or a
 *   complete rolled-up one;
 * - provider daily bars (upsertDailyBars) never overwrite a 'rollup' bar of a complete day (rolled
 *   up from stored ticks, it is authoritative), but do replace a partial one. A 'rollup' bar whose
 *   5-minute bars are gone (retention) cannot be judged and is kept;
 * - the daily rollup (rollups.ts) overwrites a provider's bar only for a complete day.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { rawTransaction, type Knex } from '../knex.ts';
import { sessionBuckets } from './calendar.ts';

const EXCHANGE = 'XNYS';

export interface IngestSecurity {
  id: number;
  ticker: string;
  currency: string;
  /** securities.price_provider (not checked against the known provider names here). */
  provider: string | null;
  status: string;
}

/**
 * Where a tick came from (ticks.origin): a provider quote, a provider intraday bar's prints, the
 * synthetic generator, or any other print. Stored, never inferred from seq (seq only orders prints
 * sharing a timestamp).
 */
export type TickOrigin = 'quote' | 'bar' | 'generated' | 'trade';

export interface TickInsert {
  securityId: number;
  ts: Date;
  seq: number;
  origin: TickOrigin;
  /** Decimal text (numeric). */
  price: string;
  size: number;
  bid: string | null;
  ask: string | null;
}

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

export interface ActionUpsert {
  actionId: string;
  securityId: number;
  actionType: 'STOCK_SPLIT' | 'REVERSE_SPLIT' | 'DIVIDEND';
  exDate: string;
  paymentDate: string | null;
  ratio: string | null;
  amount: string | null;
  currency: string | null;
  source: string;
}

export interface FxUpsert {
  from: string;
  to: string;
  date: string;
  /** Decimal text; with `invert`, the rate of to→from, stored as its reciprocal (in numeric). */
  rate: string;
  invert?: boolean;
  source: string;
}

export interface QuarantineInsert {
  source: string;
  jobName: string | null;
  jobId: string | null;
  entity: string;
  symbol: string | null;
  reason: string;
  raw: unknown;
}

export interface CheckpointWrite {
  jobName: string;
  key: string;
  state: Record<string, unknown>;
}

export interface TickCounts {
  /** Ticks offered and ticks newly stored. */
  ticks: number;
  ticksInserted: number;
  /** Provider rows (counted by their print with seq = countSeq) offered and newly stored. */
  rows: number;
  rowsInserted: number;
  /**
   * Ticks deleted because the batch's bar prints cover their minutes (quotes, generated ticks,
   * trades, and bar prints of another interval inside a bar; see the header).
   */
  quotesReplaced: number;
  /** Stored ticks of the same origin whose values the batch corrected (recorded in tick_corrections). */
  corrected: number;
  /** Ticks whose key is stored with other values from another origin: quarantined, not stored. */
  conflicts: number;
}

export interface DailyCounts {
  inserted: number;
  updated: number;
  unchanged: number;
  /** Complete sessions already rolled up from ticks: left as they are. */
  keptRollup: number;
}

export interface BatchResult {
  /** The checkpoint already existed: nothing was written. */
  skipped: boolean;
  ticks: TickCounts;
  daily: DailyCounts;
  actions: { inserted: number; existing: number };
  quarantined: number;
}

export interface IngestBatch {
  /**
   * `table`: a scratch copy of ticks, for benchmarks only (default ticks). `barMinutes`: the
   * interval of the provider bars whose prints these are (inferred when absent; see the header).
   */
  ticks?: { rows: readonly TickInsert[]; countSeq: number; table?: string; barMinutes?: number };
  dailyBars?: readonly DailyBarUpsert[];
  actions?: readonly ActionUpsert[];
  quarantine?: readonly QuarantineInsert[];
  /** Written last, in the same transaction; when it already exists the batch is skipped. */
  checkpoint?: CheckpointWrite;
}

/** Last quote volume seen per security (for tick sizes from cumulative volume). */
export interface QuoteWatermark {
  session: string;
  volume: number;
  ts: string;
}

const IDENT = /^[a-z_][a-z0-9_]*$/;
function ident(name: string): string {
  if (!IDENT.test(name)) throw new Error(`not a plain table name: ${name}`);
  return name;
}

const col = <T, K extends keyof T>(rows: readonly T[], key: K): T[K][] => rows.map((r) => r[key]);

/** JSON for jsonb: non-finite numbers kept as text (JSON has none), NUL characters removed. */
export function jsonForQuarantine(raw: unknown): string {
  const text = JSON.stringify(raw === undefined ? null : raw, (_k, v: unknown) => {
    if (typeof v === 'number' && !Number.isFinite(v)) return String(v);
    if (typeof v === 'string') return v.replaceAll('\u0000', '');
    if (typeof v === 'bigint') return v.toString();
    if (v === undefined) return null;
    return v;
  });
  return text ?? 'null';
}

const COPY_BUFFER = 1 << 18;

/**
 * COPY text of ticks (columns security_id, ts, seq, price, size, bid, ask, origin), written straight into
 * buffers of 256 KB: no per-row strings besides the fields themselves.
 */
export function* tickCopyText(rows: readonly TickInsert[]): Generator<Buffer> {
  let buf = Buffer.allocUnsafe(COPY_BUFFER);
  let pos = 0;
  const ascii = (text: string): void => {
    for (let i = 0; i < text.length; i++) buf[pos++] = text.charCodeAt(i);
  };
  const uint = (value: number): void => {
    if (value < 10) {
      buf[pos++] = 48 + value;
      return;
    }
    ascii(String(value));
  };
  // A bar's prints share one timestamp: format it once.
  let lastMs = Number.NaN;
  let lastIso = '';
  for (const r of rows) {
    const ms = r.ts.getTime();
    if (ms !== lastMs) {
      lastMs = ms;
      lastIso = r.ts.toISOString();
    }
    const bid = r.bid ?? '\\N';
    const ask = r.ask ?? '\\N';
    // Integers print in at most 20 characters; the rest is measured.
    const need = 80 + lastIso.length + r.price.length + bid.length + ask.length + r.origin.length;
    if (pos + need > buf.length) {
      if (pos > 0) yield buf.subarray(0, pos);
      buf = Buffer.allocUnsafe(Math.max(COPY_BUFFER, need));
      pos = 0;
    }
    uint(r.securityId);
    buf[pos++] = 9;
    ascii(lastIso);
    buf[pos++] = 9;
    uint(r.seq);
    buf[pos++] = 9;
    ascii(r.price);
    buf[pos++] = 9;
    uint(r.size);
    buf[pos++] = 9;
    ascii(bid);
    buf[pos++] = 9;
    ascii(ask);
    buf[pos++] = 9;
    ascii(r.origin);
    buf[pos++] = 10;
  }
  if (pos > 0) yield buf.subarray(0, pos);
}

/**
 * A raw pg client (pg-copy-streams needs one). The staging table ingest_ticks is a session temp
 * table emptied at each commit, so each transaction may stage one batch of ticks.
 */
type Conn = pg.Client;

/** Per security, the first and last tick time of a batch. */
function boundsOf(rows: readonly TickInsert[]): Map<number, { min: number; max: number }> {
  const bounds = new Map<number, { min: number; max: number }>();
  for (const r of rows) {
    const t = r.ts.getTime();
    const b = bounds.get(r.securityId);
    if (!b) bounds.set(r.securityId, { min: t, max: t });
    else if (t < b.min) b.min = t;
    else if (t > b.max) b.max = t;
  }
  return bounds;
}

const MINUTE_MS = 60_000;
/** Gaps between bar starts at least this long (a night, a weekend) say nothing about the interval. */
const MAX_INFERRED_MS = 60 * MINUTE_MS;

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

/** Per security, the distinct start times (ms) of the batch's bar prints, ascending. */
function barStarts(rows: readonly TickInsert[]): Map<number, number[]> {
  const starts = new Map<number, Set<number>>();
  for (const r of rows) {
    if (r.origin !== 'bar') continue;
    let set = starts.get(r.securityId);
    if (!set) starts.set(r.securityId, (set = new Set()));
    set.add(r.ts.getTime());
  }
  return new Map([...starts].map(([id, set]) => [id, [...set].sort((a, b) => a - b)]));
}

/**
 * The minutes the batch's bar prints (origin 'bar') cover: one [start, start + interval) per bar,
 * per security, adjacent ones merged. Interval: `barMinutes`, else the gcd of the gaps under an
 * hour between a security's distinct bar starts, else 1 minute (the narrowest, so a lone bar never
 * covers a minute it does not describe). Gaps between sessions are never covered.
 */
export function barPrintSpans(
  rows: readonly TickInsert[],
  barMinutes?: number,
): Map<number, { from: Date; to: Date }[]> {
  const out = new Map<number, { from: Date; to: Date }[]>();
  for (const [id, ts] of barStarts(rows)) {
    let step = 0;
    for (let i = 1; i < ts.length; i++) {
      const gap = ts[i]! - ts[i - 1]!;
      if (gap < MAX_INFERRED_MS) step = gcd(gap, step);
    }
    const interval = barMinutes !== undefined && barMinutes > 0 ? barMinutes * MINUTE_MS : step || MINUTE_MS;
    const spans: { from: number; to: number }[] = [];
    for (const t of ts) {
      const last = spans.at(-1);
      if (last && t <= last.to) last.to = Math.max(last.to, t + interval);
      else spans.push({ from: t, to: t + interval });
    }
    out.set(
      id,
      spans.map((x) => ({ from: new Date(x.from), to: new Date(x.to) })),
    );
  }
  return out;
}

/**
 * Deletes what the batch's bar prints replace, inside the minutes their bars cover (barPrintSpans):
 * every tick of another origin, and bar prints at other instants than the batch's bar starts (a
 * finer interval's prints inside a coarser bar). Prints at a batch bar's own start stay, to be
 * compared key by key (duplicate or correction). Records the deleted range per security in
 * bar_changes; returns how many ticks were deleted.
 */
async function replaceCoveredOn(
  conn: Conn,
  table: string,
  rows: readonly TickInsert[],
  barMinutes: number | undefined,
): Promise<number> {
  const spans = barPrintSpans(rows, barMinutes);
  if (spans.size === 0) return 0;
  const ids: number[] = [];
  const from: string[] = [];
  const to: string[] = [];
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (const [id, list] of spans) {
    for (const x of list) {
      ids.push(id);
      from.push(x.from.toISOString());
      to.push(x.to.toISOString());
      min = Math.min(min, x.from.getTime());
      max = Math.max(max, x.to.getTime());
    }
  }
  // The batch's bar starts, once each (a bar has four prints at its start).
  const ownIds: number[] = [];
  const ownTs: string[] = [];
  for (const [id, list] of barStarts(rows)) {
    for (const t of list) {
      ownIds.push(id);
      ownTs.push(new Date(t).toISOString());
    }
  }
  // The literal bounds let the planner prune ticks partitions before it plans the join.
  const res = await conn.query<{ n: number }>(
    `with span as (
       select * from unnest($1::int[], $2::timestamptz[], $3::timestamptz[]) as s(id, lo, hi)
     ), own as (
       select id, ts from unnest($4::int[], $5::timestamptz[]) as b(id, ts)
     ), gone as (
       delete from ${table} t using span s
        where t.security_id = s.id and t.ts >= s.lo and t.ts < s.hi
          and t.ts >= timestamptz '${new Date(min).toISOString()}' and t.ts < timestamptz '${new Date(max).toISOString()}'
          and (t.origin <> 'bar'
               or not exists (select 1 from own o where o.id = t.security_id and o.ts = t.ts))
       returning t.security_id, t.ts
     ), changed as (
       insert into bar_changes (level, security_id, from_ts, to_ts)
       select '5m', security_id, min(ts), max(ts) + interval '1 millisecond' from gone group by security_id
       returning 1
     )
     select count(*)::int as n, (select count(*) from changed)::int as changes from gone`,
    [ids, from, to, ownIds, ownTs],
  );
  return res.rows[0]?.n ?? 0;
}

/**
 * Inserts ticks, counting new ones and duplicates, replacing what its bar prints cover, and appends
 * bar_changes per security ([first, last + 1 ms) of what was written). General path: COPY into the
 * staging table, then, against the stored ticks with the same key:
 * - same values: a duplicate (nothing written);
 * - same origin, other values: a correction (a provider's corrected bar, a re-stamped quote):
 *   the stored tick takes the new values and tick_corrections keeps the old ones. A quote's size
 *   is ours (derived from the provider's cumulative volume), not the provider's, so a quote
 *   correction changes price, bid and ask and keeps the stored size;
 * - another origin, other values: a conflicting duplicate, quarantined (reason
 *   `conflicting_duplicate`, the offered and the stored tick in raw), the stored tick kept;
 * then `insert … on conflict do nothing` of the rest. Fast path, when the table holds nothing yet
 * in the batch's time span for its securities (a backfill of new history, the usual case): COPY
 * straight into the table under a savepoint, which costs what a bare COPY costs; should a
 * concurrent writer have stored one of the keys meanwhile, the unique violation rolls back to the
 * savepoint and the general path runs instead, so the result is the same either way.
 */
async function insertTicksOn(
  conn: Conn,
  table: string,
  rows: readonly TickInsert[],
  countSeq: number,
  barMinutes?: number,
): Promise<TickCounts> {
  const counts: TickCounts = {
    ticks: rows.length,
    ticksInserted: 0,
    rows: rows.reduce((n, r) => n + (r.seq === countSeq ? 1 : 0), 0),
    rowsInserted: 0,
    quotesReplaced: 0,
    corrected: 0,
    conflicts: 0,
  };
  if (rows.length === 0) return counts;
  // First, so the fast path below sees a span emptied of the ticks it replaces.
  counts.quotesReplaced = await replaceCoveredOn(conn, table, rows, barMinutes);
  const bounds = boundsOf(rows);
  const ids = [...bounds.keys()];
  const lo = ids.map((id) => new Date(bounds.get(id)!.min).toISOString());
  const hi = ids.map((id) => new Date(bounds.get(id)!.max).toISOString());
  const overlap = await conn.query<{ any: boolean }>(
    `select exists (select 1 from unnest($1::int[], $2::timestamptz[], $3::timestamptz[]) as b(id, lo, hi)
                     join ${table} t on t.security_id = b.id and t.ts between b.lo and b.hi) as any`,
    [ids, lo, hi],
  );
  if (!overlap.rows[0]?.any) {
    await conn.query('savepoint ingest_ticks_copy');
    try {
      const copy = conn.query(
        copyFrom(`copy ${table} (security_id, ts, seq, price, size, bid, ask, origin) from stdin`),
      );
      await pipeline(Readable.from(tickCopyText(rows), { objectMode: false }), copy);
      await conn.query('release savepoint ingest_ticks_copy');
      await conn.query(
        `insert into bar_changes (level, security_id, from_ts, to_ts)
         select '5m', id, lo, hi + interval '1 millisecond'
           from unnest($1::int[], $2::timestamptz[], $3::timestamptz[]) as b(id, lo, hi)`,
        [ids, lo, hi],
      );
      return { ...counts, ticksInserted: counts.ticks, rowsInserted: counts.rows };
    } catch (err) {
      if ((err as { code?: string }).code !== '23505') throw err;
      await conn.query('rollback to savepoint ingest_ticks_copy');
    }
  }
  await conn.query(
    `create temp table if not exists ingest_ticks
       (security_id integer, ts timestamptz, seq integer, price numeric, size bigint, bid numeric, ask numeric,
        origin tick_origin)
       on commit delete rows`,
  );
  const copy = conn.query(copyFrom('copy ingest_ticks from stdin'));
  await pipeline(Readable.from(tickCopyText(rows), { objectMode: false }), copy);
  let minTs = Number.POSITIVE_INFINITY;
  let maxTs = Number.NEGATIVE_INFINITY;
  for (const b of bounds.values()) {
    minTs = Math.min(minTs, b.min);
    maxTs = Math.max(maxTs, b.max);
  }
  // Staged ticks whose key is stored with other values, with the stored values (locked), found by
  // one primary-key probe per staged tick: the lateral subquery is kept from being flattened into
  // a hash join over whole partitions by `offset 0`, and its literal bounds prune partitions at
  // plan time. Usually empty.
  await conn.query(
    `create temp table if not exists ingest_clash
       (security_id integer, ts timestamptz, seq integer, origin tick_origin, price numeric, size bigint,
        bid numeric, ask numeric, stored_origin tick_origin, stored_price numeric, stored_size bigint,
        stored_bid numeric, stored_ask numeric)
       on commit delete rows`,
  );
  const clash = await conn.query(
    `insert into ingest_clash
     select i.security_id, i.ts, i.seq, i.origin, i.price, i.size, i.bid, i.ask,
            o.origin, o.price, o.size, o.bid, o.ask
       from ingest_ticks i
       cross join lateral (
         select o.origin, o.price, o.size, o.bid, o.ask
           from ${table} o
          where o.security_id = i.security_id and o.ts = i.ts and o.seq = i.seq
            and o.ts >= timestamptz '${new Date(minTs).toISOString()}'
            and o.ts <= timestamptz '${new Date(maxTs).toISOString()}'
          offset 0
          for update
       ) o
      where (o.price, o.bid, o.ask) is distinct from (i.price, i.bid, i.ask)
         or (o.origin <> 'quote' and o.size <> i.size)`,
  );
  if ((clash.rowCount ?? 0) === 0) return insertStagedOn(conn, table, countSeq, counts);
  await conn.query('analyze ingest_clash');
  // Same origin: a correction. A quote's size is ours (from the cumulative volume): it stays.
  const fixed = await conn.query<{ n: number }>(
    `with cur as (
       select security_id, ts, seq, origin, stored_price as old_price, stored_size as old_size,
              stored_bid as old_bid, stored_ask as old_ask, price,
              case when origin = 'quote' then stored_size else size end as size, bid, ask
         from ingest_clash where origin = stored_origin
     ), fixed as (
       update ${table} t set price = c.price, size = c.size, bid = c.bid, ask = c.ask
         from cur c
        where t.security_id = c.security_id and t.ts = c.ts and t.seq = c.seq
          and t.ts >= timestamptz '${new Date(minTs).toISOString()}'
          and t.ts <= timestamptz '${new Date(maxTs).toISOString()}'
        returning t.security_id, t.ts
     ), logged as (
       insert into tick_corrections
              (security_id, ts, seq, origin, old_price, old_size, old_bid, old_ask, price, size, bid, ask)
       select security_id, ts, seq, origin, old_price, old_size, old_bid, old_ask, price, size, bid, ask from cur
       returning 1
     ), changed as (
       insert into bar_changes (level, security_id, from_ts, to_ts)
       select '5m', security_id, min(ts), max(ts) + interval '1 millisecond' from fixed group by security_id
       returning 1
     )
     select count(*)::int as n, (select count(*) from logged)::int as logged,
            (select count(*) from changed)::int as changes
       from fixed`,
  );
  counts.corrected = fixed.rows[0]?.n ?? 0;
  // Another origin: a conflicting duplicate, quarantined; the stored tick stays.
  const conflicts = await conn.query<{ n: number }>(
    `insert into quarantined_rows (source, job_name, job_id, entity, symbol, reason, raw)
     select b.origin::text, null, null, 'tick', s.ticker,
            'conflicting_duplicate: a ' || b.origin || ' tick has the key of a stored ' || b.stored_origin
              || ' tick with other values',
            jsonb_build_object(
              'offered', jsonb_build_object('security_id', b.security_id, 'ts', b.ts, 'seq', b.seq,
                'origin', b.origin, 'price', b.price::text, 'size', b.size, 'bid', b.bid::text, 'ask', b.ask::text),
              'stored', jsonb_build_object('origin', b.stored_origin, 'price', b.stored_price::text,
                'size', b.stored_size, 'bid', b.stored_bid::text, 'ask', b.stored_ask::text))
       from ingest_clash b left join securities s on s.id = b.security_id
      where b.origin <> b.stored_origin`,
  );
  counts.conflicts = conflicts.rowCount ?? 0;
  return insertStagedOn(conn, table, countSeq, counts);
}

/** The staged ticks whose keys are new: `insert … on conflict do nothing`, appending bar_changes. */
async function insertStagedOn(
  conn: Conn,
  table: string,
  countSeq: number,
  counts: TickCounts,
): Promise<TickCounts> {
  const res = await conn.query<{ ticks: number; rows: number }>(
    `with ins as (
       insert into ${table} (security_id, ts, seq, price, size, bid, ask, origin)
       select security_id, ts, seq, price, size, bid, ask, origin from ingest_ticks
       on conflict do nothing
       returning security_id, ts, seq
     ), changed as (
       insert into bar_changes (level, security_id, from_ts, to_ts)
       select '5m', security_id, min(ts), max(ts) + interval '1 millisecond' from ins group by security_id
       returning 1
     )
     select count(*)::int as ticks, (count(*) filter (where seq = $1))::int as rows,
            (select count(*) from changed)::int as changes
       from ins`,
    [countSeq],
  );
  counts.ticksInserted = res.rows[0]?.ticks ?? 0;
  counts.rowsInserted = res.rows[0]?.rows ?? 0;
  return counts;
}

/**
 * Provider daily bars. A stored 'rollup' bar is replaced only when its day is partial (see the
 * module header): its 5-minute bars do not fill the session.
 */
async function upsertDailyOn(conn: Conn, rows: readonly DailyBarUpsert[]): Promise<DailyCounts> {
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

async function upsertActionsOn(
  conn: Conn,
  rows: readonly ActionUpsert[],
): Promise<{ inserted: number; existing: number }> {
  if (rows.length === 0) return { inserted: 0, existing: 0 };
  // Any unique key conflicting (the same action_id, or the same security/type/ex-date from another
  // source) means the action is already known: the first source to report it wins.
  const res = await conn.query(
    `insert into corporate_actions (action_id, security_id, action_type, ex_date, payment_date, ratio, amount, currency, source)
     select * from unnest($1::text[], $2::int[], $3::text[], $4::date[], $5::date[], $6::numeric[], $7::numeric[],
                          $8::text[], $9::text[])
      order by 1
     on conflict do nothing`,
    [
      col(rows, 'actionId'),
      col(rows, 'securityId'),
      col(rows, 'actionType'),
      col(rows, 'exDate'),
      col(rows, 'paymentDate'),
      col(rows, 'ratio'),
      col(rows, 'amount'),
      col(rows, 'currency'),
      col(rows, 'source'),
    ],
  );
  const inserted = res.rowCount ?? 0;
  return { inserted, existing: rows.length - inserted };
}

async function insertQuarantineOn(conn: Conn, rows: readonly QuarantineInsert[]): Promise<number> {
  if (rows.length === 0) return 0;
  const res = await conn.query(
    `insert into quarantined_rows (source, job_name, job_id, entity, symbol, reason, raw)
     select * from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::jsonb[])`,
    [
      col(rows, 'source'),
      col(rows, 'jobName'),
      col(rows, 'jobId'),
      col(rows, 'entity'),
      col(rows, 'symbol'),
      col(rows, 'reason'),
      rows.map((r) => jsonForQuarantine(r.raw)),
    ],
  );
  return res.rowCount ?? 0;
}

/** Monthly ticks partitions covering the batch (own statement, before the transaction). */
async function ensureTickPartitionsOn(conn: Conn, table: string, rows: readonly TickInsert[]): Promise<void> {
  if (rows.length === 0) return;
  let min = Number.POSITIVE_INFINITY;
  let max = Number.NEGATIVE_INFINITY;
  for (const r of rows) {
    const t = r.ts.getTime();
    if (t < min) min = t;
    if (t > max) max = t;
  }
  await conn.query('select ensure_month_partitions($1::regclass, $2, $3)', [
    table,
    new Date(min).toISOString(),
    new Date(max + 1).toISOString(),
  ]);
}

export function createMarketRepository(db: Knex) {
  const transaction = <T>(fn: (conn: Conn) => Promise<T>, before?: (conn: Conn) => Promise<void>) =>
    rawTransaction(db, fn, before);

  async function lockKey(conn: Conn, key: string): Promise<void> {
    await conn.query('select pg_advisory_xact_lock(hashtextextended($1, 0))', [key]);
  }

  const emptyTicks = (): TickCounts => ({
    ticks: 0,
    ticksInserted: 0,
    rows: 0,
    rowsInserted: 0,
    quotesReplaced: 0,
    corrected: 0,
    conflicts: 0,
  });

  return {
    /** Securities by ticker with what ingest needs (currency, provider); unknown tickers are absent. */
    async securitiesByTicker(tickers: readonly string[]): Promise<Map<string, IngestSecurity>> {
      const rows = await db('securities')
        .select<
          { id: number; ticker: string; currency: string; price_provider: string | null; status: string }[]
        >('id', 'ticker', 'currency', 'price_provider', 'status')
        .whereIn('ticker', tickers as string[]);
      return new Map(
        rows.map((r) => [
          r.ticker,
          { id: r.id, ticker: r.ticker, currency: r.currency, provider: r.price_provider, status: r.status },
        ]),
      );
    },

    /** The watch list as prices.fetch needs it: active securities with their provider, by ticker. */
    async watchlistWithProviders(): Promise<
      { securityId: number; ticker: string; provider: string | null }[]
    > {
      const res = await db.raw<{ rows: { securityId: number; ticker: string; provider: string | null }[] }>(
        `select s.id as "securityId", s.ticker, s.price_provider as provider
           from watchlist w join securities s on s.id = w.security_id
          where s.status = 'ACTIVE'
          order by s.ticker`,
      );
      return res.rows;
    },

    /** Distinct currencies of the security master (what fx.rates loads by default). */
    async currenciesInUse(): Promise<string[]> {
      const rows = await db('securities').distinct<{ currency: string }[]>('currency').orderBy('currency');
      return rows.map((r) => r.currency);
    },

    /** The latest tick of a security by (ts, seq), or undefined. */
    async latestTick(securityId: number): Promise<{ ts: Date; seq: number; price: string } | undefined> {
      const res = await db.raw<{ rows: { ts: Date; seq: number; price: string }[] }>(
        `select ts, seq, price::text as price from ticks where security_id = ? order by ts desc, seq desc limit 1`,
        [securityId],
      );
      return res.rows[0];
    },

    /** One tick by its natural key. */
    async tickAt(
      securityId: number,
      ts: Date,
      seq: number,
    ): Promise<{ price: string; size: string } | undefined> {
      const res = await db.raw<{ rows: { price: string; size: string }[] }>(
        `select price::text as price, size::text as size from ticks where security_id = ? and ts = ? and seq = ?`,
        [securityId, ts.toISOString(), seq],
      );
      return res.rows[0];
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
    async sessionsMissingBars(
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

    /**
     * Ticks through the staging table (one transaction), appending bar_changes. `table` is for
     * benchmarks (a scratch copy of ticks); `countSeq` names the print that stands for one provider
     * row; bar prints replace the ticks of other origins in the minutes they cover (`barMinutes`:
     * their bars' interval), and repeated keys are duplicates, corrections or conflicts (header).
     */
    async insertTicks(
      rows: readonly TickInsert[],
      opts: { countSeq?: number; table?: string; barMinutes?: number } = {},
    ): Promise<TickCounts> {
      const table = ident(opts.table ?? 'ticks');
      return transaction(
        (conn) => insertTicksOn(conn, table, rows, opts.countSeq ?? 0, opts.barMinutes),
        (conn) => ensureTickPartitionsOn(conn, table, rows),
      );
    },

    /** Provider daily bars; a stored 'rollup' bar is left alone unless its day is partial (header). */
    async upsertDailyBars(rows: readonly DailyBarUpsert[]): Promise<DailyCounts> {
      return transaction((conn) => upsertDailyOn(conn, rows));
    },

    async upsertCorporateActions(
      rows: readonly ActionUpsert[],
    ): Promise<{ inserted: number; existing: number }> {
      return transaction((conn) => upsertActionsOn(conn, rows));
    },

    async insertQuarantine(rows: readonly QuarantineInsert[]): Promise<number> {
      return transaction((conn) => insertQuarantineOn(conn, rows));
    },

    /**
     * One unit of ingest in one transaction; see IngestBatch. A batch with a checkpoint commits
     * asynchronously (synchronous_commit off: no WAL flush wait per chunk). That is safe here: its
     * rows and its checkpoint are in the same transaction, so a database crash can only lose whole
     * recent batches together with their checkpoints, and a resumed job fetches them again. The
     * caller ends its run with an ordinary commit (prices.backfill deletes its checkpoints), which
     * flushes the WAL of every batch before it, so nothing a finished job reported can be lost.
     */
    async commitBatch(batch: IngestBatch): Promise<BatchResult> {
      const tickRows = batch.ticks?.rows ?? [];
      const table = ident(batch.ticks?.table ?? 'ticks');
      return transaction(
        async (conn) => {
          const result: BatchResult = {
            skipped: false,
            ticks: emptyTicks(),
            daily: { inserted: 0, updated: 0, unchanged: 0, keptRollup: 0 },
            actions: { inserted: 0, existing: 0 },
            quarantined: 0,
          };
          const cp = batch.checkpoint;
          if (cp) {
            await conn.query('set local synchronous_commit = off');
            await lockKey(conn, `${cp.jobName}:${cp.key}`);
            const done = await conn.query(
              'select 1 from job_checkpoints where job_name = $1 and checkpoint_key = $2',
              [cp.jobName, cp.key],
            );
            if (done.rowCount) return { ...result, skipped: true };
          }
          if (batch.ticks)
            result.ticks = await insertTicksOn(
              conn,
              table,
              tickRows,
              batch.ticks.countSeq,
              batch.ticks.barMinutes,
            );
          if (batch.dailyBars) result.daily = await upsertDailyOn(conn, batch.dailyBars);
          if (batch.actions) result.actions = await upsertActionsOn(conn, batch.actions);
          if (batch.quarantine) result.quarantined = await insertQuarantineOn(conn, batch.quarantine);
          if (cp) {
            await conn.query(
              `insert into job_checkpoints (job_name, checkpoint_key, state) values ($1, $2, $3)
               on conflict (job_name, checkpoint_key) do update set state = excluded.state, updated_at = now()`,
              [
                cp.jobName,
                cp.key,
                JSON.stringify({ ...cp.state, result: { ...result, skipped: undefined } }),
              ],
            );
          }
          return result;
        },
        (conn) => ensureTickPartitionsOn(conn, table, tickRows),
      );
    },

    /**
     * Stores one quote as a tick. Under a lock on the security, `build` sees the last quote volume
     * watermark and returns the tick to store and the next watermark; the watermark moves only when
     * the tick is new. Quarantined rows of the same fetch go in the same transaction. `corrected`:
     * the stored quote at that time had another price (now replaced, see tick_corrections);
     * `conflict`: a tick of another origin holds the key with other values (quarantined).
     */
    async storeQuoteTick(input: {
      securityId: number;
      build: (prev: QuoteWatermark | undefined) => { tick: TickInsert; next: QuoteWatermark };
      quarantine?: readonly QuarantineInsert[];
      /** The quote's market time (to create its month partition before the transaction). */
      ts: Date;
    }): Promise<{ inserted: boolean; corrected: boolean; conflict: boolean; tick: TickInsert }> {
      const key = `volume:${input.securityId}`;
      return transaction(
        async (conn) => {
          await lockKey(conn, `prices.quote:${key}`);
          const prev = await conn.query<{ state: QuoteWatermark }>(
            `select state from job_checkpoints where job_name = 'prices.quote' and checkpoint_key = $1`,
            [key],
          );
          const { tick, next } = input.build(prev.rows[0]?.state);
          const counts = await insertTicksOn(conn, 'ticks', [tick], tick.seq);
          if (counts.ticksInserted > 0) {
            await conn.query(
              `insert into job_checkpoints (job_name, checkpoint_key, state) values ('prices.quote', $1, $2)
               on conflict (job_name, checkpoint_key) do update set state = excluded.state, updated_at = now()`,
              [key, JSON.stringify(next)],
            );
          }
          if (input.quarantine) await insertQuarantineOn(conn, input.quarantine);
          return {
            inserted: counts.ticksInserted > 0,
            corrected: counts.corrected > 0,
            conflict: counts.conflicts > 0,
            tick,
          };
        },
        async (conn) => {
          await conn.query(`select ensure_month_partitions('ticks', $1, $2)`, [
            input.ts.toISOString(),
            new Date(input.ts.getTime() + 1).toISOString(),
          ]);
        },
      );
    },

    /**
     * FX rates to store (direct pairs, or reciprocals of the inverse pair computed in numeric), with
     * the quarantined rows of the same fetch. Idempotent: the same rate is left untouched.
     */
    async upsertFxRates(
      rows: readonly FxUpsert[],
      quarantine: readonly QuarantineInsert[] = [],
    ): Promise<{ inserted: number; updated: number; unchanged: number; quarantined: number }> {
      return transaction(async (conn) => {
        let inserted = 0;
        let updated = 0;
        if (rows.length) {
          const res = await conn.query<{ inserted: number; updated: number }>(
            `with input as (
               select f, t, d, case when inv then round(1::numeric(60,30) / r, 10) else round(r, 10) end as rate, src
                 from unnest($1::text[], $2::text[], $3::date[], $4::numeric[], $5::boolean[], $6::text[])
                      as x(f, t, d, r, inv, src)
             ), up as (
               insert into fx_rates as x (from_currency, to_currency, rate_date, rate, source)
               select f, t, d, rate, src from input
               on conflict (from_currency, to_currency, rate_date) do update
                  set rate = excluded.rate, source = excluded.source
                where (x.rate, x.source) is distinct from (excluded.rate, excluded.source)
               returning (xmax = 0) as inserted
             )
             select (count(*) filter (where inserted))::int as inserted,
                    (count(*) filter (where not inserted))::int as updated
               from up`,
            [
              col(rows, 'from'),
              col(rows, 'to'),
              col(rows, 'date'),
              col(rows, 'rate'),
              rows.map((r) => r.invert ?? false),
              col(rows, 'source'),
            ],
          );
          inserted = res.rows[0]?.inserted ?? 0;
          updated = res.rows[0]?.updated ?? 0;
        }
        const quarantined = await insertQuarantineOn(conn, quarantine);
        return { inserted, updated, unchanged: rows.length - inserted - updated, quarantined };
      });
    },

    /**
     * Cross rates A→B for every ordered pair of `currencies` (none the base) on every date from..to
     * where both A→base and B→base are stored: A→B = (A→base) / (B→base), divided in numeric at 30
     * decimal places and rounded to the column's 10, never through a binary float.
     */
    async triangulateFx(
      base: string,
      currencies: readonly string[],
      from: string,
      to: string,
      source: string,
    ): Promise<{ inserted: number; updated: number; unchanged: number }> {
      const res = await db.raw<{ rows: { inserted: number; updated: number; total: number }[] }>(
        `with input as (
           select a.from_currency as f, b.from_currency as t, a.rate_date as d,
                  round(a.rate::numeric(60,30) / b.rate, 10) as rate
             from fx_rates a
             join fx_rates b on b.rate_date = a.rate_date and b.to_currency = a.to_currency
            where a.to_currency = :base and a.from_currency = any(:ccy::text[]) and b.from_currency = any(:ccy::text[])
              and a.from_currency <> b.from_currency and a.rate_date between :from::date and :to::date
         ), up as (
           insert into fx_rates as x (from_currency, to_currency, rate_date, rate, source)
           select f, t, d, rate, :source from input
           on conflict (from_currency, to_currency, rate_date) do update
              set rate = excluded.rate, source = excluded.source
            where (x.rate, x.source) is distinct from (excluded.rate, excluded.source)
           returning (xmax = 0) as inserted
         )
         select (select count(*) from input)::int as total,
                (count(*) filter (where inserted))::int as inserted,
                (count(*) filter (where not inserted))::int as updated
           from up`,
        { base, ccy: currencies.filter((c) => c !== base), from, to, source },
      );
      const r = res.rows[0] ?? { inserted: 0, updated: 0, total: 0 };
      return { inserted: r.inserted, updated: r.updated, unchanged: r.total - r.inserted - r.updated };
    },

    /** States of a job's checkpoints whose key starts with `prefix`, by key. */
    async checkpointStates(jobName: string, prefix: string): Promise<Map<string, Record<string, unknown>>> {
      const rows = await db('job_checkpoints')
        .select<{ checkpoint_key: string; state: Record<string, unknown> }[]>('checkpoint_key', 'state')
        .where('job_name', jobName)
        .andWhereLike('checkpoint_key', `${prefix.replace(/[\\%_]/g, '\\$&')}%`);
      return new Map(rows.map((r) => [r.checkpoint_key, r.state]));
    },

    /** Deletes a job's checkpoints whose key starts with `prefix` (a finished run's resume points). */
    async deleteCheckpoints(jobName: string, prefix: string): Promise<number> {
      return db('job_checkpoints')
        .where('job_name', jobName)
        .andWhereLike('checkpoint_key', `${prefix.replace(/[\\%_]/g, '\\$&')}%`)
        .delete();
    },
  };
}

export type MarketRepository = ReturnType<typeof createMarketRepository>;
