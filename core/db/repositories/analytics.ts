/**
 * Analytics storage: bars in (as doubles, per security, split-adjusted by the database's
 * price_adjustments(): SPEC §8), indicator_values and risk_metrics out.
 *
 * Indicator writes touch only what changed, set-based, per batch of securities in one
 * transaction under a per-security advisory lock. Every stored row carries input_hash, a hash of
 * the (adjusted) bars from the start of its series up to that bar, so it covers the split factor:
 * a split learned later changes the adjusted bars before it, and every row from the first of them.
 * Per security, one row is read (the stored last row): if the new series has a bar at that time
 * with the same hash and the same values, nothing before it changed, and only the bars after it
 * are appended. Otherwise the stored (ts, hash) pairs are read to find the first bar that differs
 * (a corrected bar, a bar that vanished, a new split, or a new window start), and the security's
 * rows from there on are deleted and written again. Indicators are causal (a value depends only on bars up to it), so nothing earlier can
 * have changed, and a second run writes nothing. Rows go in by binary COPY (bit-exact doubles, no
 * formatting or parsing of 16 numbers per row); bars come out the same way.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { newYorkTime, NYSE_TIME_ZONE, sessionFor } from '../../calendar/nyse.ts';
import { INDICATOR_NAMES, type IndicatorSet } from '../../domain/indicators.ts';
import type { CloseSeries } from '../../domain/risk.ts';
import type { Knex } from '../knex.ts';

export type IndicatorInterval = '1d' | '5m';

/** One security's bars as doubles, oldest first; `ts` is epoch ms as stored in indicator_values. */
export interface BarSeries {
  securityId: number;
  ts: Float64Array;
  high: Float64Array;
  low: Float64Array;
  close: Float64Array;
}

/** One security's computed indicators to store: rows `from` .. end of the bars. */
export interface IndicatorWrite {
  /** The bars the values were computed from (the whole input, warm-up included). */
  bars: BarSeries;
  values: IndicatorSet;
  /** First index to store (earlier bars are warm-up input only). */
  from: number;
}

export interface IndicatorWriteResult {
  rowsWritten: number;
  rowsDeleted: number;
  /** Securities whose stored rows changed (or were first written). */
  securitiesChanged: number;
}

export interface RiskRow {
  securityId: number;
  asOf: string;
  windowDays: number;
  volatility: number | null;
  var95: number | null;
  var99: number | null;
  es95: number | null;
  es99: number | null;
  beta: number | null;
  benchmarkId: number | null;
}

export interface StoredRisk {
  asOf: string;
  windowDays: number;
  volatility: number | null;
  var95: number | null;
  var99: number | null;
  es95: number | null;
  es99: number | null;
  beta: number | null;
  benchmark: string | null;
}

const COLUMNS = ['security_id', 'interval', 'ts', ...INDICATOR_NAMES, 'input_hash'] as const;
const COLUMN_LIST = COLUMNS.join(', ');
/** Advisory-lock class for indicator writes (pg_advisory_xact_lock(int, int) with the security id). */
const INDICATOR_LOCK_CLASS = 0x1d1c;
/**
 * Part of every input_hash: bump it when an indicator's definition changes, so the next run
 * rewrites every stored row instead of keeping values computed the old way.
 */
const INDICATOR_ALGORITHM_VERSION = 1;

// --- input hashes: two 32-bit murmur3-style lanes over the bars' bits, 53 bits kept (exact in a
// double and in int8). Collisions are 2^-53 per comparison.

const f64 = new Float64Array(1);
const u32 = new Uint32Array(f64.buffer);

function mixWord(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function finish(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** input_hash of every bar: a hash of bars[0..i] (time, high, low, close) and the algorithm version. */
export function inputHashes(bars: BarSeries): Float64Array {
  const n = bars.ts.length;
  const out = new Float64Array(n);
  let a = 0x9747b28c ^ INDICATOR_ALGORITHM_VERSION;
  let b = 0x5bd1e995 ^ INDICATOR_ALGORITHM_VERSION;
  const mix = (x: number): void => {
    f64[0] = x;
    a = mixWord(a, u32[0]!);
    a = mixWord(a, u32[1]!);
    b = mixWord(b, u32[1]! ^ 0x2545f491);
    b = mixWord(b, u32[0]!);
  };
  for (let i = 0; i < n; i++) {
    mix(bars.ts[i]!);
    mix(bars.high[i]!);
    mix(bars.low[i]!);
    mix(bars.close[i]!);
    out[i] = finish(a) * 2 ** 21 + (finish(b) >>> 11);
  }
  return out;
}

// --- binary COPY (https://www.postgresql.org/docs/current/sql-copy.html, "Binary Format")

const COPY_SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
const COPY_HEADER = Buffer.concat([COPY_SIGNATURE, Buffer.alloc(8)]);
const COPY_TRAILER = Buffer.from([0xff, 0xff]);
/** timestamptz travels as microseconds since 2000-01-01 UTC, date as days since then. */
const PG_EPOCH_MS = 946_684_800_000;
const DAY_MS = 86_400_000;
const TWO_32 = 2 ** 32;

/** An int8 (any integer exact in a double), big-endian, at o. */
function setInt64(dv: DataView, o: number, v: number): void {
  const hi = Math.floor(v / TWO_32);
  dv.setInt32(o, hi);
  dv.setUint32(o + 4, v - hi * TWO_32);
}

function getInt64(dv: DataView, o: number): number {
  return dv.getInt32(o) * TWO_32 + dv.getUint32(o + 4);
}

interface PlannedWrite {
  item: IndicatorWrite;
  hashes: Float64Array;
  /** First bar to insert (== bars length: nothing to insert). */
  insertFrom: number;
  /** Stored rows at or after this go (null: none). */
  deleteFrom: Date | string | null;
}

function* encodeIndicatorRows(
  interval: IndicatorInterval,
  plans: readonly PlannedWrite[],
  count: { rows: number },
): Generator<Buffer> {
  const intervalBytes = Buffer.from(interval, 'utf8');
  const rowMax = 2 + 8 + 4 + intervalBytes.length + 12 + INDICATOR_NAMES.length * 12 + 12;
  yield COPY_HEADER;
  for (const { item, hashes, insertFrom } of plans) {
    const { ts } = item.bars;
    const n = ts.length;
    if (insertFrom >= n) continue;
    const buf = Buffer.allocUnsafe((n - insertFrom) * rowMax);
    // DataView setters (big-endian by default) cost a fraction of Buffer.writeXxBE per field.
    const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    const columns = INDICATOR_NAMES.map((name) => item.values[name]);
    const id = item.bars.securityId;
    let o = 0;
    for (let i = insertFrom; i < n; i++) {
      dv.setInt16(o, COLUMNS.length);
      dv.setInt32(o + 2, 4);
      dv.setInt32(o + 6, id);
      dv.setInt32(o + 10, intervalBytes.length);
      o += 14;
      for (let c = 0; c < intervalBytes.length; c++) buf[o++] = intervalBytes[c]!;
      dv.setInt32(o, 8);
      // Exact in a double: |µs| < 2^53 for any date this side of year 2255.
      setInt64(dv, o + 4, (ts[i]! - PG_EPOCH_MS) * 1000);
      o += 12;
      for (const col of columns) {
        const v = col[i]!;
        // NaN is TA-Lib's "no value yet" (warm-up): stored as null, as is anything non-finite.
        if (Number.isFinite(v)) {
          dv.setInt32(o, 8);
          dv.setFloat64(o + 4, v);
          o += 12;
        } else {
          dv.setInt32(o, -1);
          o += 4;
        }
      }
      dv.setInt32(o, 8);
      setInt64(dv, o + 4, hashes[i]!);
      o += 12;
      count.rows++;
    }
    yield buf.subarray(0, o);
  }
  yield COPY_TRAILER;
}

async function copyOut(conn: pg.Client, sql: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of conn.query(copyTo(sql))) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Offset of the first tuple of a binary COPY output (after the signature, flags and extension). */
function firstTuple(buf: Buffer): number {
  if (buf.length < 19 || !buf.subarray(0, 11).equals(COPY_SIGNATURE)) {
    throw new Error('binary COPY: bad signature');
  }
  return 19 + buf.readUInt32BE(15);
}

/**
 * Tuples of (int4 security_id, date|timestamptz, float8 high, float8 low, float8 close), ordered by
 * security, into per-security series; `stamp` turns the time field into the stored ts.
 */
function parseBars(buf: Buffer, time: 'date' | 'timestamptz'): BarSeries[] {
  const timeLen = time === 'date' ? 4 : 8;
  const tupleLen = 2 + 8 + 4 + timeLen + 36;
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let o = firstTuple(buf);
  const rows = Math.floor((buf.length - o - 2) / tupleLen);
  const ids = new Int32Array(rows);
  const ts = new Float64Array(rows);
  const high = new Float64Array(rows);
  const low = new Float64Array(rows);
  const close = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    if (dv.getInt16(o) !== 5 || dv.getInt32(o + 2) !== 4 || dv.getInt32(o + 10) !== timeLen) {
      throw new Error('binary COPY: unexpected bar tuple');
    }
    ids[r] = dv.getInt32(o + 6);
    o += 14;
    ts[r] = time === 'date' ? sessionCloseMs(dv.getInt32(o)) : getInt64(dv, o) / 1000 + PG_EPOCH_MS;
    o += timeLen + 4;
    high[r] = dv.getFloat64(o);
    low[r] = dv.getFloat64(o + 12);
    close[r] = dv.getFloat64(o + 24);
    o += 32;
  }
  if (dv.getInt16(o) !== -1) throw new Error('binary COPY: bars did not end where expected');
  const out: BarSeries[] = [];
  for (let i = 0; i < rows;) {
    let j = i;
    while (j < rows && ids[j] === ids[i]) j++;
    out.push({
      securityId: ids[i]!,
      ts: ts.slice(i, j),
      high: high.slice(i, j),
      low: low.slice(i, j),
      close: close.slice(i, j),
    });
    i = j;
  }
  return out;
}

/** Tuples of (int4 security_id, timestamptz ts, int8 input_hash) into per-security lists. */
function parseStoredHashes(buf: Buffer): Map<number, { ts: number[]; hash: number[] }> {
  const out = new Map<number, { ts: number[]; hash: number[] }>();
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let o = firstTuple(buf);
  while (dv.getInt16(o) !== -1) {
    const id = dv.getInt32(o + 6);
    const ts = getInt64(dv, o + 14) / 1000 + PG_EPOCH_MS;
    const hash = getInt64(dv, o + 26);
    o += 34;
    let s = out.get(id);
    if (!s) out.set(id, (s = { ts: [], hash: [] }));
    s.ts.push(ts);
    s.hash.push(hash);
  }
  return out;
}

/** An int[] literal for COPY (which takes no parameters); ids are checked to be integers. */
function intArrayLiteral(ids: readonly number[]): string {
  if (!ids.every((id) => Number.isSafeInteger(id))) throw new Error('security ids must be integers');
  return `'{${ids.join(',')}}'::int[]`;
}

/**
 * The exchange time zone (the calendar's, the one source) as an SQL string literal: a 5-minute
 * bar's session date, for its adjustment factor. The statements that use it run under COPY, which
 * takes no bind parameters, so the calendar's constant is quoted here after checking it is a plain
 * IANA name.
 */
const EXCHANGE_TZ = ((tz: string): string => {
  if (!/^[A-Za-z][A-Za-z0-9_+/-]*$/.test(tz)) throw new Error(`not an IANA time zone name: ${tz}`);
  return `'${tz}'`;
})(NYSE_TIME_ZONE);

/**
 * high, low, close of a bar (alias b) joined to price_adjustments() (alias f) as float8 on the
 * split-adjusted basis (SPEC §8: prices before an ex-date ÷ the cumulative ratio). The quotient is
 * taken in numeric and converted once, so it is the double nearest the exact adjusted price; a bar
 * with no split after it converts as stored (bit for bit what an unadjusted read gives).
 */
function SPLIT_ADJUSTED(...cols: string[]): string {
  return cols
    .map((c) => `case when f.split_factor is null then ${c}::float8 else (${c} / f.split_factor)::float8 end`)
    .join(', ');
}

// --- daily bars are stamped at their session's close (16:00 New York, 13:00 on early closes)

const closeAtCache = new Map<number, number>();
/** The session close (epoch ms) of a date given as days since 2000-01-01. */
function sessionCloseMs(pgDay: number): number {
  let ms = closeAtCache.get(pgDay);
  if (ms === undefined) {
    const date = new Date(PG_EPOCH_MS + pgDay * DAY_MS).toISOString().slice(0, 10);
    // A bar on a date NYSE did not trade (a foreign listing, say) gets 16:00 New York all the same.
    ms = (sessionFor(date)?.closeAt ?? newYorkTime(date, 16, 0)).getTime();
    closeAtCache.set(pgDay, ms);
  }
  return ms;
}

/** Index of `t` in the sorted `ts`, or -1. */
function indexOfTs(ts: Float64Array, t: number): number {
  let lo = 0;
  let hi = ts.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const v = ts[mid]!;
    if (v === t) return mid;
    if (v < t) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

type StoredLastRow = { security_id: number; ts: Date; input_hash: string } & Record<string, number | null>;

/** Stored value (null for none) equals the computed one (NaN for none), exactly. */
function sameValue(computed: number, stored: number | null): boolean {
  return Number.isFinite(computed) ? computed === stored : stored === null;
}

export function createAnalyticsRepository(db: Knex) {
  /**
   * Runs fn on a connection of its own (COPY needs one), optionally inside a transaction. A
   * connection whose rollback failed is closed instead of going back to the pool.
   */
  async function withConnection<T>(
    fn: (conn: pg.Client) => Promise<T>,
    opts: { transaction?: boolean } = {},
  ): Promise<T> {
    const conn = (await db.client.acquireConnection()) as pg.Client;
    let healthy = true;
    try {
      if (!opts.transaction) return await fn(conn);
      await conn.query('begin');
      try {
        const out = await fn(conn);
        await conn.query('commit');
        return out;
      } catch (err) {
        await conn.query('rollback').catch(() => {
          healthy = false;
        });
        throw err;
      }
    } finally {
      if (!healthy) await conn.end().catch(() => undefined);
      await db.client.releaseConnection(conn);
    }
  }

  return {
    /** Ids of the securities with at least one bar at the interval (5m: at or after `since`), ascending. */
    async securityIdsWithBars(interval: IndicatorInterval, since?: Date): Promise<number[]> {
      const res =
        interval === '1d'
          ? await db.raw<{ rows: { id: number }[] }>(
              `select s.id from securities s
                where exists (select 1 from bars_1d b where b.security_id = s.id) order by s.id`,
            )
          : await db.raw<{ rows: { id: number }[] }>(
              `select s.id from securities s
                where exists (select 1 from bars_5m b where b.security_id = s.id and b.bucket >= ?) order by s.id`,
              [since ?? new Date(0)],
            );
      return res.rows.map((r) => r.id);
    },

    /**
     * The newest 5-minute bucket of the given securities (all when omitted), or undefined. One
     * backward probe of the (security_id, bucket) key per security: bars_5m has no index on bucket
     * alone, so a bare max(bucket) would read every partition.
     */
    async latestBucket(ids?: number[]): Promise<Date | undefined> {
      const res = await db.raw<{ rows: { t: Date | null }[] }>(
        `select max(b.t) as t
           from (${ids ? 'select unnest(?::int[]) as id' : 'select id from securities'}) s
           cross join lateral (select max(bucket) as t from bars_5m where security_id = s.id) b`,
        ids ? [ids] : [],
      );
      return res.rows[0]?.t ?? undefined;
    },

    /**
     * Daily bars (high, low, close as float8) of the securities, by session date, split-adjusted
     * (see SPLIT_ADJUSTED); ts = the session's close. Securities without bars are absent.
     */
    async dailyBars(ids: number[]): Promise<BarSeries[]> {
      if (ids.length === 0) return [];
      const list = intArrayLiteral(ids);
      return withConnection(async (conn) =>
        parseBars(
          await copyOut(
            conn,
            `copy (select b.security_id, b.session_date, ${SPLIT_ADJUSTED('b.high', 'b.low', 'b.close')}
                     from bars_1d b
                     left join price_adjustments(${list}) f
                       on f.security_id = b.security_id
                      and b.session_date >= f.valid_from and b.session_date < f.valid_to
                    where b.security_id = any(${list})
                    order by b.security_id, b.session_date) to stdout (format binary)`,
          ),
          'date',
        ),
      );
    },

    /**
     * 5-minute bars (as float8, split-adjusted by their New York session date) of the securities
     * with bucket >= from, by bucket; ts = bucket.
     */
    async fiveMinuteBars(ids: number[], from: Date): Promise<BarSeries[]> {
      if (ids.length === 0) return [];
      const list = intArrayLiteral(ids);
      return withConnection(async (conn) =>
        parseBars(
          await copyOut(
            conn,
            `copy (select b.security_id, b.bucket, ${SPLIT_ADJUSTED('b.high', 'b.low', 'b.close')}
                     from bars_5m b
                     left join price_adjustments(${list}) f
                       on f.security_id = b.security_id
                      and (b.bucket at time zone ${EXCHANGE_TZ})::date >= f.valid_from
                      and (b.bucket at time zone ${EXCHANGE_TZ})::date < f.valid_to
                    where b.security_id = any(${list})
                      and b.bucket >= '${from.toISOString()}'::timestamptz
                    order by b.security_id, b.bucket) to stdout (format binary)`,
          ),
          'timestamptz',
        ),
      );
    },

    /**
     * Stores computed indicators for a batch of securities, writing only what changed (see the
     * header): rows at or after `scopeFrom` (default: all) are compared with the new ones and
     * replaced from the first bar that differs; stored rows before it are never touched.
     */
    async writeIndicators(
      interval: IndicatorInterval,
      items: readonly IndicatorWrite[],
      opts: { scopeFrom?: Date } = {},
    ): Promise<IndicatorWriteResult> {
      const result: IndicatorWriteResult = { rowsWritten: 0, rowsDeleted: 0, securitiesChanged: 0 };
      if (items.length === 0) return result;
      const ids = items.map((i) => i.bars.securityId).sort((a, b) => a - b);
      // '-infinity' is a valid timestamptz where a JS Date is not.
      const scopeFrom: Date | string = opts.scopeFrom ?? '-infinity';
      return withConnection(
        async (conn) => {
          // Two jobs over the same security take turns (ids in order, so never a deadlock).
          await conn.query(
            `select pg_advisory_xact_lock(${INDICATOR_LOCK_CLASS}, id) from (select unnest($1::int[]) as id order by 1) s`,
            [ids],
          );
          const last = await conn.query<StoredLastRow>(
            `select s.id as security_id, l.*
             from unnest($2::int[]) s(id)
             cross join lateral (
               select ts, input_hash, ${INDICATOR_NAMES.join(', ')} from indicator_values
                where security_id = s.id and interval = $1 and ts >= $3
                order by ts desc limit 1) l`,
            [interval, ids, scopeFrom],
          );
          const lastOf = new Map(last.rows.map((r) => [r.security_id, r]));

          // Per security: the first bar to insert, and the time from which stored rows go.
          const plans: PlannedWrite[] = [];
          const unsure: PlannedWrite[] = [];
          for (const item of items) {
            const hashes = inputHashes(item.bars);
            const plan: PlannedWrite = { item, hashes, insertFrom: item.from, deleteFrom: null };
            plans.push(plan);
            const stored = lastOf.get(item.bars.securityId);
            if (!stored) continue; // nothing stored yet: insert everything
            const k = indexOfTs(item.bars.ts, stored.ts.getTime());
            if (k < item.from || hashes[k] !== Number(stored.input_hash)) {
              unsure.push(plan); // some bar up to the stored last one changed: find which below
            } else if (
              INDICATOR_NAMES.every((name) => sameValue(item.values[name][k]!, stored[name] ?? null))
            ) {
              plan.insertFrom = k + 1; // unchanged up to the stored last row: append the rest
            } else {
              plan.deleteFrom = scopeFrom; // same bars, other values: definitions changed; redo all
            }
          }
          if (unsure.length) {
            const storedHashes = parseStoredHashes(
              await copyOut(
                conn,
                `copy (select security_id, ts, input_hash from indicator_values
                      where interval = '${interval}'
                        and security_id = any(${intArrayLiteral(unsure.map((p) => p.item.bars.securityId))})
                        and ts >= '${typeof scopeFrom === 'string' ? scopeFrom : scopeFrom.toISOString()}'::timestamptz
                      order by security_id, ts) to stdout (format binary)`,
              ),
            );
            for (const plan of unsure) {
              const stored = storedHashes.get(plan.item.bars.securityId) ?? { ts: [], hash: [] };
              const { from } = plan.item;
              const { ts } = plan.item.bars;
              let j = 0;
              while (
                j < stored.ts.length &&
                from + j < ts.length &&
                stored.ts[j] === ts[from + j] &&
                stored.hash[j] === plan.hashes[from + j]
              ) {
                j++;
              }
              plan.insertFrom = from + j;
              if (j < stored.ts.length) plan.deleteFrom = new Date(stored.ts[j]!);
            }
          }

          const deleting = plans.filter((p) => p.deleteFrom !== null);
          if (deleting.length) {
            const del = await conn.query(
              `delete from indicator_values v
               using unnest($2::int[], $3::timestamptz[]) as d(id, from_ts)
              where v.interval = $1 and v.security_id = d.id and v.ts >= d.from_ts`,
              [interval, deleting.map((p) => p.item.bars.securityId), deleting.map((p) => p.deleteFrom)],
            );
            result.rowsDeleted = del.rowCount ?? 0;
          }
          const inserting = plans.filter((p) => p.insertFrom < p.item.bars.ts.length);
          if (inserting.length) {
            const count = { rows: 0 };
            await pipeline(
              Readable.from(encodeIndicatorRows(interval, inserting, count), { objectMode: false }),
              conn.query(copyFrom(`copy indicator_values (${COLUMN_LIST}) from stdin (format binary)`)),
            );
            result.rowsWritten = count.rows;
          }
          result.securitiesChanged = plans.filter(
            (p) => p.deleteFrom !== null || p.insertFrom < p.item.bars.ts.length,
          ).length;
          return result;
        },
        { transaction: true },
      );
    },

    /**
     * Daily closes (float8, split-adjusted: see SPLIT_ADJUSTED) of the securities up to `asOf`
     * (inclusive; all when omitted), the newest `count` per security (all when omitted), oldest
     * first. Splits after `asOf` scale a whole window alike, so returns do not depend on them.
     */
    async dailyCloses(
      ids: number[],
      opts: { asOf?: string; count?: number } = {},
    ): Promise<Map<number, CloseSeries>> {
      const res = await db.raw<{ rows: { id: number; session_date: string; close: number }[] }>(
        `select s.id, b.session_date, ${SPLIT_ADJUSTED('b.close')} as close
           from unnest(?::int[]) s(id)
           cross join lateral (
             select session_date, close from bars_1d
              where security_id = s.id and session_date <= ?::date
              order by session_date desc limit ?) b
           left join price_adjustments(?::int[]) f
             on f.security_id = s.id and b.session_date >= f.valid_from and b.session_date < f.valid_to
          order by s.id, b.session_date`,
        [ids, opts.asOf ?? '9999-12-31', opts.count ?? null, ids],
      );
      const out = new Map<number, { dates: string[]; closes: number[] }>();
      for (const r of res.rows) {
        let s = out.get(r.id);
        if (!s) {
          s = { dates: [], closes: [] };
          out.set(r.id, s);
        }
        s.dates.push(r.session_date);
        s.closes.push(r.close);
      }
      return out;
    },

    /**
     * Upserts risk rows on (security, as-of date, window); a row whose values are unchanged is
     * left alone (computed_at included). Returns rows inserted or changed.
     */
    async writeRisk(rows: readonly RiskRow[]): Promise<number> {
      if (rows.length === 0) return 0;
      const col = <K extends keyof RiskRow>(k: K): RiskRow[K][] => rows.map((r) => r[k]);
      const res = await db.raw<{ rowCount: number }>(
        `insert into risk_metrics (security_id, as_of_date, window_days, volatility, var_95, var_99, es_95, es_99,
                                   beta, benchmark_id)
         select * from unnest(?::int[], ?::date[], ?::int[], ?::float8[], ?::float8[], ?::float8[], ?::float8[],
                              ?::float8[], ?::float8[], ?::int[])
         on conflict (security_id, as_of_date, window_days) do update
            set volatility = excluded.volatility, var_95 = excluded.var_95, var_99 = excluded.var_99,
                es_95 = excluded.es_95, es_99 = excluded.es_99, beta = excluded.beta,
                benchmark_id = excluded.benchmark_id, computed_at = now()
          where (risk_metrics.volatility, risk_metrics.var_95, risk_metrics.var_99, risk_metrics.es_95,
                 risk_metrics.es_99, risk_metrics.beta, risk_metrics.benchmark_id)
                is distinct from
                (excluded.volatility, excluded.var_95, excluded.var_99, excluded.es_95, excluded.es_99,
                 excluded.beta, excluded.benchmark_id)`,
        [
          col('securityId'),
          col('asOf'),
          col('windowDays'),
          col('volatility'),
          col('var95'),
          col('var99'),
          col('es95'),
          col('es99'),
          col('beta'),
          col('benchmarkId'),
        ] as Knex.RawBinding[],
      );
      return res.rowCount;
    },

    /**
     * Stored indicator rows of one security at one interval with ts in [from, to], newest last;
     * with `limit`, the newest `limit` of them.
     */
    async indicatorSeries(
      securityId: number,
      interval: IndicatorInterval,
      opts: { from?: Date; to?: Date; limit?: number } = {},
    ): Promise<{ ts: Date; values: Record<string, number | null> }[]> {
      const q = db('indicator_values')
        .select(['ts', ...INDICATOR_NAMES])
        .where({ security_id: securityId, interval });
      if (opts.from) q.where('ts', '>=', opts.from);
      if (opts.to) q.where('ts', '<=', opts.to);
      if (opts.limit !== undefined) q.orderBy('ts', 'desc').limit(opts.limit);
      else q.orderBy('ts', 'asc');
      const rows = (await q) as ({ ts: Date } & Record<string, number | null>)[];
      if (opts.limit !== undefined) rows.reverse();
      return rows.map((r) => ({
        ts: r.ts,
        values: Object.fromEntries(INDICATOR_NAMES.map((name) => [name, r[name] ?? null])),
      }));
    },

    /** The newest risk row of a security (latest as-of date), with the benchmark's ticker. */
    async latestRisk(securityId: number): Promise<StoredRisk | undefined> {
      const res = await db.raw<{
        rows: {
          as_of_date: string;
          window_days: number;
          volatility: number | null;
          var_95: number | null;
          var_99: number | null;
          es_95: number | null;
          es_99: number | null;
          beta: number | null;
          benchmark: string | null;
        }[];
      }>(
        `select r.as_of_date, r.window_days, r.volatility, r.var_95, r.var_99, r.es_95, r.es_99, r.beta,
                b.ticker as benchmark
           from risk_metrics r left join securities b on b.id = r.benchmark_id
          where r.security_id = ?
          order by r.as_of_date desc, r.computed_at desc
          limit 1`,
        [securityId],
      );
      const r = res.rows[0];
      return r
        ? {
            asOf: r.as_of_date,
            windowDays: r.window_days,
            volatility: r.volatility,
            var95: r.var_95,
            var99: r.var_99,
            es95: r.es_95,
            es99: r.es_99,
            beta: r.beta,
            benchmark: r.benchmark,
          }
        : undefined;
    },
  };
}

export type AnalyticsRepository = ReturnType<typeof createAnalyticsRepository>;
