/**
 * An independent recomputation of bars from ticks, in TypeScript with exact decimal arithmetic
 * (BigInt scaled by 1e8), sharing no code with the SQL rollups it checks.
 */
import type { Knex } from 'knex';

const SCALE = 100_000_000n;
const BUCKET_US = 300_000_000n;

export const toScaled = (s: string): bigint => {
  const neg = s.startsWith('-');
  const [int = '0', frac = ''] = (neg ? s.slice(1) : s).split('.');
  const v = BigInt(int) * SCALE + BigInt((frac + '00000000').slice(0, 8));
  return neg ? -v : v;
};

/** round(a / b) half away from zero, for non-negative a and positive b. */
const roundDiv = (a: bigint, b: bigint): bigint => {
  const q = a / b;
  return (a % b) * 2n >= b ? q + 1n : q;
};

export interface OracleBar {
  key: string; // `${security_id}|${bucket or date}`
  open: bigint;
  high: bigint;
  low: bigint;
  close: bigint;
  volume: bigint;
  pv: bigint; // scaled by 1e8
  vwap: bigint | null;
  count: number;
}

interface TickRow {
  security_id: number;
  us: string;
  seq: number;
  price: string;
  size: string;
}

export async function loadTicks(db: Knex, securityIds: number[]): Promise<TickRow[]> {
  const res = await db.raw<{ rows: TickRow[] }>(
    `select security_id, (extract(epoch from ts) * 1000000)::bigint::text as us, seq, price::text, size::text
       from ticks where security_id = any(?::int[])`,
    [securityIds],
  );
  return res.rows;
}

function fold(groups: Map<string, TickRow[]>): Map<string, OracleBar> {
  const out = new Map<string, OracleBar>();
  for (const [key, rows] of groups) {
    rows.sort((a, b) => {
      const d = BigInt(a.us) - BigInt(b.us);
      return d !== 0n ? (d < 0n ? -1 : 1) : a.seq - b.seq;
    });
    let high = -1n;
    let low = -1n;
    let volume = 0n;
    let pv = 0n;
    for (const r of rows) {
      const p = toScaled(r.price);
      if (high < 0n || p > high) high = p;
      if (low < 0n || p < low) low = p;
      volume += BigInt(r.size);
      pv += p * BigInt(r.size);
    }
    out.set(key, {
      key,
      open: toScaled(rows[0]!.price),
      close: toScaled(rows[rows.length - 1]!.price),
      high,
      low,
      volume,
      pv,
      vwap: volume > 0n ? roundDiv(pv, volume) : null,
      count: rows.length,
    });
  }
  return out;
}

export interface OracleSession {
  date: string;
  openAt: Date;
  closeAt: Date;
}

/** The session whose regular hours [open, close) hold the tick, if any. */
function sessionOf(t: TickRow, sessions: readonly OracleSession[]): OracleSession | undefined {
  const ms = Number(BigInt(t.us) / 1000n);
  return sessions.find((x) => ms >= x.openAt.getTime() && ms < x.closeAt.getTime());
}

/**
 * 5-minute bars keyed `${security_id}|${bucket epoch microseconds}`. Given `sessions`, only ticks
 * inside a regular session count (the rule the daily bars use too: 16:00, holidays and the hours
 * after a 13:00 early close make no bar).
 */
export function oracle5m(ticks: TickRow[], sessions?: readonly OracleSession[]): Map<string, OracleBar> {
  const groups = new Map<string, TickRow[]>();
  for (const t of ticks) {
    if (sessions && !sessionOf(t, sessions)) continue;
    const bucket = (BigInt(t.us) / BUCKET_US) * BUCKET_US;
    const key = `${t.security_id}|${bucket}`;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = []));
    g.push(t);
  }
  return fold(groups);
}

/** Daily bars keyed `${security_id}|${YYYY-MM-DD}` from ticks inside the given sessions. */
export function oracle1d(ticks: TickRow[], sessions: readonly OracleSession[]): Map<string, OracleBar> {
  const groups = new Map<string, TickRow[]>();
  for (const t of ticks) {
    const s = sessionOf(t, sessions);
    if (!s) continue;
    const key = `${t.security_id}|${s.date}`;
    let g = groups.get(key);
    if (!g) groups.set(key, (g = []));
    g.push(t);
  }
  return fold(groups);
}

/**
 * Days (`${security_id}|${YYYY-MM-DD}`) whose ticks fill every 5-minute bucket of the session:
 * complete days. Anything less is partial: it never displaces a provider's daily bar.
 */
export function completeDays(ticks: TickRow[], sessions: readonly OracleSession[]): Set<string> {
  const buckets = new Map<string, Set<bigint>>();
  for (const t of ticks) {
    const s = sessionOf(t, sessions);
    if (!s) continue;
    const key = `${t.security_id}|${s.date}`;
    let set = buckets.get(key);
    if (!set) buckets.set(key, (set = new Set()));
    set.add(BigInt(t.us) / BUCKET_US);
  }
  const out = new Set<string>();
  for (const [key, set] of buckets) {
    const s = sessions.find((x) => key.endsWith(`|${x.date}`))!;
    if (set.size === (s.closeAt.getTime() - s.openAt.getTime()) / 300_000) out.add(key);
  }
  return out;
}

/**
 * The 'rollup' daily bars to expect: the oracle's day where it is complete or no provider's bar
 * (`providerDays`, same keys) holds the slot.
 */
export function oracleRollup1d(
  ticks: TickRow[],
  sessions: readonly OracleSession[],
  providerDays: ReadonlySet<string>,
): Map<string, OracleBar> {
  const complete = completeDays(ticks, sessions);
  const all = oracle1d(ticks, sessions);
  for (const key of [...all.keys()]) if (!complete.has(key) && providerDays.has(key)) all.delete(key);
  return all;
}

interface BarRow {
  security_id: number;
  k: string;
  open: string;
  high: string;
  low: string;
  close: string;
  volume: string;
  pv: string;
  vwap: string | null;
  trade_count: number;
}

const toBar = (r: BarRow): OracleBar => ({
  key: `${r.security_id}|${r.k}`,
  open: toScaled(r.open),
  high: toScaled(r.high),
  low: toScaled(r.low),
  close: toScaled(r.close),
  volume: BigInt(r.volume),
  pv: toScaled(r.pv),
  vwap: r.vwap === null ? null : toScaled(r.vwap),
  count: r.trade_count,
});

export async function stored5m(db: Knex, securityIds: number[]): Promise<Map<string, OracleBar>> {
  const res = await db.raw<{ rows: BarRow[] }>(
    `select security_id, (extract(epoch from bucket) * 1000000)::bigint::text as k, open::text, high::text, low::text,
            close::text, volume::text, pv::text, vwap::text, trade_count
       from bars_5m where security_id = any(?::int[])`,
    [securityIds],
  );
  return new Map(res.rows.map((r) => [`${r.security_id}|${r.k}`, toBar(r)]));
}

export async function stored1d(db: Knex, securityIds: number[]): Promise<Map<string, OracleBar>> {
  const res = await db.raw<{ rows: BarRow[] }>(
    `select security_id, session_date::text as k, open::text, high::text, low::text, close::text,
            volume::text, pv::text, vwap::text, trade_count
       from bars_1d where source = 'rollup' and security_id = any(?::int[])`,
    [securityIds],
  );
  return new Map(res.rows.map((r) => [`${r.security_id}|${r.k}`, toBar(r)]));
}

/** Sorted, printable form for a readable assertion diff. */
export const printable = (m: Map<string, OracleBar>): string[] =>
  [...m.values()]
    .map(
      (b) =>
        `${b.key} o=${b.open} h=${b.high} l=${b.low} c=${b.close} v=${b.volume} pv=${b.pv} vwap=${b.vwap} n=${b.count}`,
    )
    .sort();
