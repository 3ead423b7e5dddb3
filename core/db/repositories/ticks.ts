/**
 * Ticks (`ticks`, with `tick_corrections` and the `bar_changes` their writes append): the tick
 * write path every ingest shares (`insertTicksOn`), quotes stored with their volume watermark,
 * and the tick reads the quote path needs.
 *
 * Ticks go in by COPY into a temporary staging table, then one `insert … on conflict do nothing`
 * into `ticks` that also appends the touched range per security to `bar_changes` (same
 * statement, same transaction), so a re-fetched row is counted as a duplicate, never stored
 * twice, and the incremental rollup sees every range that changed. When nothing is stored yet in
 * the batch's span (new history), the batch is COPYed straight into `ticks` under a savepoint
 * instead, falling back to the staging path on any key conflict (see insertTicksOn). A backfill
 * chunk's ticks commit with the rest of its unit of work through ingest.ts (commitBatch).
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
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { from as copyFrom } from 'pg-copy-streams';
import { rawTransaction, type Knex } from '../knex.ts';
import { checkpointStateOn, lockKeyOn, writeCheckpointOn } from './checkpoints.ts';
import { insertQuarantineOn, type QuarantineInsert } from './quarantine.ts';
import type { Conn } from './sql.ts';

/** The job whose checkpoints hold the quote volume watermarks ('volume:<security id>'). */
const QUOTE_JOB = 'prices.quote';

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

/** Counts of a write that offered no ticks. */
export const emptyTickCounts = (): TickCounts => ({
  ticks: 0,
  ticksInserted: 0,
  rows: 0,
  rowsInserted: 0,
  quotesReplaced: 0,
  corrected: 0,
  conflicts: 0,
});

/** Last quote volume seen per security (for tick sizes from cumulative volume). */
export interface QuoteWatermark {
  session: string;
  volume: number;
  ts: string;
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
function barPrintSpans(
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
export async function insertTicksOn(
  conn: Conn,
  table: string,
  rows: readonly TickInsert[],
  countSeq: number,
  barMinutes?: number,
): Promise<TickCounts> {
  const counts: TickCounts = {
    ...emptyTickCounts(),
    ticks: rows.length,
    rows: rows.reduce((n, r) => n + (r.seq === countSeq ? 1 : 0), 0),
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
    // Prices staged as the ticks columns store them (numeric(20,8)), so a re-sent value with more
    // digits than the column keeps (a float's expansion) compares equal to what was stored.
    `create temp table if not exists ingest_ticks
       (security_id integer, ts timestamptz, seq integer, price numeric(20,8), size bigint,
        bid numeric(20,8), ask numeric(20,8), origin tick_origin)
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

/** Monthly ticks partitions covering the batch (own statement, before the transaction). */
export async function ensureTickPartitionsOn(
  conn: Conn,
  table: string,
  rows: readonly { ts: Date }[],
): Promise<void> {
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

export function createTicksRepository(db: Knex) {
  return {
    /** The latest tick of a security by (ts, seq), or undefined. */
    async latest(securityId: number): Promise<{ ts: Date; seq: number; price: string } | undefined> {
      const res = await db.raw<{ rows: { ts: Date; seq: number; price: string }[] }>(
        `select ts, seq, price::text as price from ticks where security_id = ? order by ts desc, seq desc limit 1`,
        [securityId],
      );
      return res.rows[0];
    },

    /** One tick by its natural key. */
    async at(
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
     * Ticks in one transaction of their own, appending bar_changes (ingest.ts commitBatch does the
     * same inside a unit of work). `countSeq` names the print that stands for one provider row; bar
     * prints replace the ticks of other origins in the minutes they cover (`barMinutes`: their
     * bars' interval), and repeated keys are duplicates, corrections or conflicts (header).
     */
    async insert(
      rows: readonly TickInsert[],
      opts: { countSeq?: number; barMinutes?: number } = {},
    ): Promise<TickCounts> {
      return rawTransaction(
        db,
        (conn) => insertTicksOn(conn, 'ticks', rows, opts.countSeq ?? 0, opts.barMinutes),
        (conn) => ensureTickPartitionsOn(conn, 'ticks', rows),
      );
    },

    /**
     * Stores one quote as a tick. Under a lock on the security, `build` sees the last quote volume
     * watermark and returns the tick to store and the next watermark; the watermark moves only when
     * the tick is new. Quarantined rows of the same fetch go in the same transaction. `corrected`:
     * the stored quote at that time had another price (now replaced, see tick_corrections);
     * `conflict`: a tick of another origin holds the key with other values (quarantined).
     */
    async storeQuote(input: {
      securityId: number;
      build: (prev: QuoteWatermark | undefined) => { tick: TickInsert; next: QuoteWatermark };
      quarantine?: readonly QuarantineInsert[];
      /** The quote's market time (to create its month partition before the transaction). */
      ts: Date;
    }): Promise<{ inserted: boolean; corrected: boolean; conflict: boolean; tick: TickInsert }> {
      const key = `volume:${input.securityId}`;
      return rawTransaction(
        db,
        async (conn) => {
          await lockKeyOn(conn, `${QUOTE_JOB}:${key}`);
          const prev = await checkpointStateOn<QuoteWatermark>(conn, QUOTE_JOB, key);
          const { tick, next } = input.build(prev);
          const counts = await insertTicksOn(conn, 'ticks', [tick], tick.seq);
          if (counts.ticksInserted > 0) await writeCheckpointOn(conn, QUOTE_JOB, key, next);
          if (input.quarantine) await insertQuarantineOn(conn, input.quarantine);
          return {
            inserted: counts.ticksInserted > 0,
            corrected: counts.corrected > 0,
            conflict: counts.conflicts > 0,
            tick,
          };
        },
        (conn) => ensureTickPartitionsOn(conn, 'ticks', [input]),
      );
    },
  };
}

export type TicksRepository = ReturnType<typeof createTicksRepository>;
