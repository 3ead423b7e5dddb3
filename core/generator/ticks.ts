/**
 * 20-second ticks as COPY text, written byte by byte into large buffers: no per-row strings or
 * objects, so Node produces rows far faster than PostgreSQL can parse them and the load runs at
 * the server's speed.
 *
 * Each session's path is a Brownian bridge in log price from that day's open to its close, so
 * the last tick equals the daily close and a rollup of the ticks agrees with the daily path.
 * Every session draws from its own stream (seed, security, session), which makes any chunk
 * reproducible on its own: a resumed run writes exactly the rows a clean run would.
 */
import type { Session } from '../calendar/nyse.ts';
import { PRICE_SCALE, type DailyPath } from './paths.ts';
import { createRng, Stream, streamKey } from './prng.ts';
import type { Plan, SecuritySpec } from './universe.ts';

export const TICK_SECONDS = 20;
export const TICK_COLUMNS = ['security_id', 'ts', 'seq', 'price', 'size', 'bid', 'ask'] as const;
const BUFFER_BYTES = 1 << 18;
/** Longest row: id, timestamp, seq, three prices of up to 12 integer digits, size. */
const MAX_ROW_BYTES = 160;

/** Ticks in a session: one every 20 s from the open, the last strictly before the close. */
export function ticksInSession(session: Session): number {
  return Math.ceil((session.closeAt.getTime() - session.openAt.getTime()) / (TICK_SECONDS * 1000));
}

function writeUInt(buf: Buffer, pos: number, value: number): number {
  let len = 1;
  for (let t = value; t >= 10; t = Math.floor(t / 10)) len++;
  let p = pos + len;
  let t = value;
  do {
    const q = Math.floor(t / 10);
    buf[--p] = 48 + (t - q * 10);
    t = q;
  } while (p > pos);
  return pos + len;
}

function writePrice(buf: Buffer, pos: number, scaledPrice: number): number {
  const ip = Math.floor(scaledPrice / PRICE_SCALE);
  const fp = scaledPrice - ip * PRICE_SCALE;
  let p = writeUInt(buf, pos, ip);
  buf[p++] = 46;
  buf[p++] = 48 + Math.floor(fp / 1000);
  buf[p++] = 48 + (Math.floor(fp / 100) % 10);
  buf[p++] = 48 + (Math.floor(fp / 10) % 10);
  buf[p++] = 48 + (fp % 10);
  return p;
}

function write2(buf: Buffer, pos: number, v: number): number {
  buf[pos] = 48 + Math.floor(v / 10);
  buf[pos + 1] = 48 + (v % 10);
  return pos + 2;
}

/**
 * COPY-text buffers of one security's ticks over the given session indices (all within the
 * security's priced range). `dbId` is securities.id, the ticks' key.
 */
export function* tickBuffers(
  plan: Plan,
  spec: SecuritySpec,
  path: DailyPath,
  dbId: number,
  sessionIndices: readonly number[],
): Generator<Buffer, void, undefined> {
  let buf = Buffer.allocUnsafe(BUFFER_BYTES);
  let pos = 0;
  const lot =
    spec.type === 'EQUITY'
      ? 100
      : spec.type === 'BOND' || spec.type === 'CLO' || spec.type === 'ABS'
        ? 10
        : 1;
  const spreadBp = spec.type === 'EQUITY' ? 0.0002 : 0.0005;
  const prefix = Buffer.from(`${dbId}\t0000-00-00 `, 'latin1');
  // The bridge belongs to this generator alone: generators of concurrent COPY lanes are suspended
  // mid-session at every yield, so a buffer shared between them (a module-level one was) would be
  // overwritten by the other lane and the rest of the session's prices would come from its path.
  let bridge = new Float64Array(2048);
  for (const s of sessionIndices) {
    const session = plan.sessions[s];
    if (session === undefined) continue;
    prefix.write(session.date, prefix.length - 11, 'latin1');
    const n = ticksInSession(session);
    if (bridge.length < n) bridge = new Float64Array(n);
    const rng = createRng(streamKey(plan.seed, Stream.ticks, spec.index, s));
    const openS = path.open[s] ?? PRICE_SCALE;
    const closeS = path.close[s] ?? PRICE_SCALE;
    const lo = Math.log(openS / PRICE_SCALE);
    const target = Math.log(closeS / PRICE_SCALE) - lo;
    const sigma = (spec.vol * 0.8) / Math.sqrt(n);
    let w = 0;
    bridge[0] = 0;
    for (let i = 1; i < n; i++) {
      w += sigma * rng.normal();
      bridge[i] = w;
    }
    const pull = n > 1 ? (w - target) / (n - 1) : 0;
    const openSec = Math.round(session.openAt.getTime() / 1000) % 86_400;
    for (let i = 0; i < n; i++) {
      if (pos > BUFFER_BYTES - MAX_ROW_BYTES) {
        yield buf.subarray(0, pos);
        buf = Buffer.allocUnsafe(BUFFER_BYTES);
        pos = 0;
      }
      const price =
        i === 0
          ? openS
          : i === n - 1
            ? closeS
            : Math.max(1, Math.round(Math.exp(lo + (bridge[i] ?? 0) - pull * i) * PRICE_SCALE));
      const half = Math.max(1, Math.round(price * spreadBp));
      const size = lot * (1 + Math.floor(rng.next() * 20));
      for (let k = 0; k < prefix.length; k++) buf[pos++] = prefix[k] ?? 48;
      const t = openSec + i * TICK_SECONDS;
      const hh = Math.floor(t / 3600);
      const mm = Math.floor((t - hh * 3600) / 60);
      pos = write2(buf, pos, hh);
      buf[pos++] = 58;
      pos = write2(buf, pos, mm);
      buf[pos++] = 58;
      pos = write2(buf, pos, t - hh * 3600 - mm * 60);
      // "+00\t0\t": UTC offset, then seq 0.
      buf[pos++] = 43;
      buf[pos++] = 48;
      buf[pos++] = 48;
      buf[pos++] = 9;
      buf[pos++] = 48;
      buf[pos++] = 9;
      pos = writePrice(buf, pos, price);
      buf[pos++] = 9;
      pos = writeUInt(buf, pos, size);
      buf[pos++] = 9;
      pos = writePrice(buf, pos, Math.max(1, price - half));
      buf[pos++] = 9;
      pos = writePrice(buf, pos, price + half);
      buf[pos++] = 10;
    }
  }
  if (pos > 0) yield buf.subarray(0, pos);
}
