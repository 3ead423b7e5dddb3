/**
 * The offline synthetic provider: deterministic prices for any symbol, no network, no key.
 *
 * Same model as the dataset generator (core/generator): a mean-reverting geometric walk of the
 * economic value per session (splits show as real jumps in raw prices) drawn from the seeded
 * streams of core/generator/prng.ts, and inside each session a Brownian bridge in log price from
 * the day's open to its close. The symbol is hashed into the stream key, so a symbol always gets
 * the same history whoever asks, in whatever chunks, in whatever order.
 *
 * Everything derives from 1-minute bars: 5-minute bars aggregate five of them, and the daily bar
 * aggregates the session's minutes (open = first open, close = last close, high/low the extremes,
 * volume the sum). So a daily backfill and an intraday backfill plus rollup agree exactly.
 *
 * Time comes from the injected clock: only completed bars and sessions are served, and quote()
 * returns the last trade at the clock's time (the open of the current minute during the regular
 * session; after the close, the session's closing price stamped one second before the close).
 * Prices carry four decimals; the provider reports no currency (its prices are in whatever
 * currency the security master says).
 */
import {
  addDays,
  dayOfWeek,
  lastCompletedSession,
  sessionDateOf,
  sessionFor,
  sessionsBetween,
  type Session,
} from '../calendar/nyse.ts';
import type { Config } from '../config.ts';
import type { Clock } from '../deps.ts';
import { PRICE_SCALE } from '../generator/paths.ts';
import { createRng, streamKey } from '../generator/prng.ts';
import { FX_START } from '../generator/universe.ts';
import type { ProviderOptions } from './index.ts';
import type {
  PriceProvider,
  ProviderDailyBar,
  ProviderEvent,
  ProviderFxRate,
  ProviderHistory,
  ProviderIntradayBar,
  ProviderLimits,
  ProviderQuote,
} from './types.ts';

/** First session of every synthetic history (a symbol "lists" here). */
export const SYNTHETIC_EPOCH = '2000-01-03';
/** Seed of the provider's streams (distinct from any dataset seed, which is per database). */
const SEED = 0x5e7a11c;
/** Stream purposes of this module (kept apart from the generator's Stream numbers). */
const S = { params: 101, daily: 102, minutes: 103, fx: 104 } as const;
const MINUTE_MS = 60_000;

export const SYNTHETIC_LIMITS: ProviderLimits = {
  intradayIntervals: [1, 5],
  // Generous but finite, so chunking is exercised the same way as for real sources.
  intradayLookbackDays: { 1: 3650, 5: 3650 },
  intradayMaxSpanDays: { 1: 31, 5: 31 },
  dailyMaxSpanDays: 366,
};

/** FNV-1a of the symbol's characters, so any string gets its own stream key. */
function symbolKey(symbol: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < symbol.length; i++) h = Math.imul(h ^ symbol.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

interface SymbolParams {
  key: number;
  p0: number;
  vol: number;
  reversion: number;
  baseVolume: number;
  /** Annual dividend yield; 0 for non-payers. */
  dividendYield: number;
  /** Session index offset of the quarterly dividend cycle. */
  dividendPhase: number;
}

function paramsOf(symbol: string): SymbolParams {
  const key = symbolKey(symbol);
  const rng = createRng(streamKey(SEED, S.params, key));
  return {
    key,
    p0: Math.exp(Math.log(10) + rng.next() * Math.log(50)),
    vol: 0.01 + rng.next() * 0.02,
    reversion: 0.002 + rng.next() * 0.01,
    baseVolume: Math.exp(Math.log(2e5) + rng.next() * Math.log(50)),
    dividendYield: rng.chance(0.5) ? 0.01 + rng.next() * 0.03 : 0,
    dividendPhase: rng.int(0, 62),
  };
}

const scaled = (price: number): number => Math.max(1, Math.round(price * PRICE_SCALE));
const unscale = (v: number): number => v / PRICE_SCALE;

/** Sessions from the epoch on, computed once and extended as later dates are asked for. */
let sessionCache: Session[] = [];
let sessionCacheTo = addDays(SYNTHETIC_EPOCH, -1);
function sessionsThrough(to: string): Session[] {
  if (to > sessionCacheTo) {
    // Extend a year at a time so a clock creeping forward does not recompute day by day.
    const target = addDays(to, 366);
    sessionCache = sessionCache.concat(sessionsBetween(addDays(sessionCacheTo, 1), target));
    sessionCacheTo = target;
  }
  return sessionCache;
}

/** Index of the first session with date >= `date` (sessions.length when none). */
function indexOnOrAfter(sessions: readonly Session[], date: string): number {
  let lo = 0;
  let hi = sessions.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((sessions[mid]?.date ?? '') < date) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

interface DayPath {
  /** Scaled opens and closes per session index 0..n-1. */
  open: Float64Array;
  close: Float64Array;
  /** Split factor in force on each session. */
  factor: Float64Array;
  /** Unscaled target volume per session (the minutes' volumes are drawn around it). */
  volume: Float64Array;
  splits: { index: number; ratio: number }[];
  dividends: { index: number; amount: number }[];
}

/**
 * The daily walk from the epoch through session index `last` (inclusive). Each session draws a
 * fixed number of values from one sequential stream, so session i's values never depend on how
 * far the walk goes.
 */
function dayPath(p: SymbolParams, sessions: readonly Session[], last: number): DayPath {
  const n = last + 1;
  const path: DayPath = {
    open: new Float64Array(n),
    close: new Float64Array(n),
    factor: new Float64Array(n),
    volume: new Float64Array(n),
    splits: [],
    dividends: [],
  };
  const rng = createRng(streamKey(SEED, S.daily, p.key));
  const anchor = Math.log(p.p0);
  let x = anchor;
  let factor = 1;
  for (let s = 0; s < n; s++) {
    const uSplit = rng.next();
    const pick = rng.next();
    const shock = rng.normal();
    const gap = rng.normal();
    const vz = rng.normal();
    if (s > 0) {
      const rawBefore = Math.exp(x) / factor;
      let ratio = 0;
      if (uSplit < 1 / 2000) ratio = [2, 3, 2, 4][Math.floor(pick * 4)] ?? 2;
      else if (rawBefore < 3 && uSplit < 1 / 100) ratio = 0.1;
      if (ratio > 0) {
        factor *= ratio;
        path.splits.push({ index: s, ratio });
      }
    }
    const prev = x;
    if (s > 0) x = x + p.reversion * (anchor - x) + 0.0002 + p.vol * shock;
    path.open[s] = scaled(Math.exp(prev + (s === 0 ? 0 : p.vol * 0.3 * gap)) / factor);
    path.close[s] = scaled(Math.exp(x) / factor);
    path.factor[s] = factor;
    path.volume[s] = p.baseVolume * Math.exp(0.4 * vz) * factor;
    if (p.dividendYield > 0 && s > 0 && s % 63 === p.dividendPhase) {
      const before = unscale(path.close[s - 1] ?? PRICE_SCALE);
      path.dividends.push({
        index: s,
        amount: Math.max(0.01, Math.round(((before * p.dividendYield) / 4) * 100) / 100),
      });
    }
  }
  return path;
}

const pathCache = new Map<string, DayPath>();
/**
 * The daily walk through at least session index `last`, from a small cache (a backfill asks for
 * the same symbol chunk after chunk): walked once through `through` (at least `last`), reused
 * while it reaches far enough. A longer walk has the same values on the shared indices.
 */
function cachedPath(
  symbol: string,
  p: SymbolParams,
  sessions: readonly Session[],
  last: number,
  through: number,
) {
  const hit = pathCache.get(symbol);
  if (hit && hit.open.length > last) {
    pathCache.delete(symbol);
    pathCache.set(symbol, hit);
    return hit;
  }
  const path = dayPath(p, sessions, Math.max(last, through));
  pathCache.set(symbol, path);
  if (pathCache.size > 32) pathCache.delete(pathCache.keys().next().value as string);
  return path;
}

/** Lets the event loop run (a worker's lock renewal, a COPY in flight) during long generation. */
const breathe = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

interface Minutes {
  /** Scaled OHLC and volume of each 1-minute bar of the session. */
  open: Float64Array;
  high: Float64Array;
  low: Float64Array;
  close: Float64Array;
  volume: Float64Array;
}

/** The session's 1-minute bars: a bridge in log price from the day's open to its close. */
function minutesOf(p: SymbolParams, session: Session, index: number, path: DayPath): Minutes {
  const n = Math.round((session.closeAt.getTime() - session.openAt.getTime()) / MINUTE_MS);
  const rng = createRng(streamKey(SEED, S.minutes, p.key, index));
  const openS = path.open[index] ?? PRICE_SCALE;
  const closeS = path.close[index] ?? PRICE_SCALE;
  const lo = Math.log(unscale(openS));
  const target = Math.log(unscale(closeS)) - lo;
  const sigma = (p.vol * 0.8) / Math.sqrt(n);
  // Boundary prices b[0..n]: b[0] the open, b[n] the close.
  const walk = new Float64Array(n + 1);
  for (let k = 1; k <= n; k++) walk[k] = (walk[k - 1] ?? 0) + sigma * rng.normal();
  const pull = ((walk[n] ?? 0) - target) / n;
  const boundary = new Float64Array(n + 1);
  boundary[0] = openS;
  boundary[n] = closeS;
  for (let k = 1; k < n; k++) boundary[k] = scaled(Math.exp(lo + (walk[k] ?? 0) - pull * k));
  const m: Minutes = {
    open: new Float64Array(n),
    high: new Float64Array(n),
    low: new Float64Array(n),
    close: new Float64Array(n),
    volume: new Float64Array(n),
  };
  const weights = new Float64Array(n);
  let total = 0;
  for (let k = 0; k < n; k++) {
    const o = boundary[k] ?? openS;
    const c = boundary[k + 1] ?? closeS;
    const up = Math.abs(rng.normal()) * sigma * 0.5;
    const down = Math.min(0.5, Math.abs(rng.normal()) * sigma * 0.5);
    m.open[k] = o;
    m.close[k] = c;
    m.high[k] = Math.max(o, c, scaled(unscale(Math.max(o, c)) * (1 + up)));
    m.low[k] = Math.min(o, c, scaled(unscale(Math.min(o, c)) * (1 - down)));
    // U-shaped intraday volume: busy at the open and the close.
    const t = n > 1 ? k / (n - 1) - 0.5 : 0;
    const w = (1 + 6 * t * t) * Math.exp(0.3 * rng.normal());
    weights[k] = w;
    total += w;
  }
  const dayVolume = path.volume[index] ?? 0;
  for (let k = 0; k < n; k++) m.volume[k] = Math.max(0, Math.round((dayVolume * (weights[k] ?? 0)) / total));
  return m;
}

function aggregate(
  m: Minutes,
  from: number,
  to: number,
): { o: number; h: number; l: number; c: number; v: number } {
  let h = 0;
  let l = Number.POSITIVE_INFINITY;
  let v = 0;
  for (let k = from; k < to; k++) {
    h = Math.max(h, m.high[k] ?? 0);
    l = Math.min(l, m.low[k] ?? Number.POSITIVE_INFINITY);
    v += m.volume[k] ?? 0;
  }
  return { o: m.open[from] ?? 0, h, l, c: m.close[to - 1] ?? 0, v };
}

/** The USD value of one unit of a currency on each weekday from the FX epoch through `to`. */
function usdValues(currency: string, to: string): Map<string, number> {
  const out = new Map<string, number>();
  if (currency === 'USD') return out;
  const key = symbolKey(`FX:${currency}`);
  const rng = createRng(streamKey(SEED, S.fx, key));
  const start = FX_START[currency] ?? Math.exp(Math.log(0.01) + rng.next() * Math.log(200));
  const anchor = Math.log(start);
  let x = anchor;
  for (let d = SYNTHETIC_EPOCH; d <= to; d = addDays(d, 1)) {
    if (dayOfWeek(d) === 0 || dayOfWeek(d) === 6) continue;
    x = x + 0.01 * (anchor - x) + 0.005 * rng.normal();
    out.set(d, Math.exp(x));
  }
  return out;
}

/** Index of the last session completed at `now` within `sessions` (-1 when none). */
function completedIndex(now: Date, sessions: readonly Session[]): number {
  const done = lastCompletedSession(now).date;
  const i = indexOnOrAfter(sessions, done);
  return i < sessions.length && sessions[i]?.date === done ? i : Math.min(i, sessions.length) - 1;
}

export function createSyntheticProvider(_config: Config, opts: ProviderOptions): PriceProvider {
  const clock: Clock = opts.clock ?? { now: () => new Date() };

  /** Sessions through the last one completed at the clock's time, and that session's index. */
  const completed = (): { sessions: Session[]; last: number } => {
    const done = lastCompletedSession(clock.now());
    const sessions = sessionsThrough(done.date);
    return { sessions, last: indexOnOrAfter(sessions, done.date) };
  };

  const eventsBetween = (
    path: DayPath,
    sessions: readonly Session[],
    from: number,
    to: number,
  ): ProviderEvent[] => {
    const events: ProviderEvent[] = [];
    for (const s of path.splits) {
      if (s.index < from || s.index > to) continue;
      const exDate = sessions[s.index]?.date ?? '';
      events.push({ kind: 'split', exDate, ratio: s.ratio, amount: null, raw: { split: s.ratio, exDate } });
    }
    for (const d of path.dividends) {
      if (d.index < from || d.index > to) continue;
      const exDate = sessions[d.index]?.date ?? '';
      events.push({
        kind: 'dividend',
        exDate,
        ratio: null,
        amount: d.amount,
        raw: { dividend: d.amount, exDate },
      });
    }
    return events.sort((a, b) => (a.exDate < b.exDate ? -1 : a.exDate > b.exDate ? 1 : 0));
  };

  return {
    name: 'synthetic',
    limits: SYNTHETIC_LIMITS,

    async quote(symbol) {
      const now = clock.now();
      const p = paramsOf(symbol);
      const today = sessionFor(sessionDateOf(now));
      const live = today && today.openAt <= now && now < today.closeAt ? today : undefined;
      const session = live ?? lastCompletedSession(now);
      const sessions = sessionsThrough(session.date);
      const index = indexOnOrAfter(sessions, session.date);
      if (index >= sessions.length || session.date < SYNTHETIC_EPOCH)
        return { symbol, price: null, ts: null, currency: null, volume: null, bid: null, ask: null, raw: {} };
      const path = cachedPath(symbol, p, sessions, index, index);
      const m = minutesOf(p, session, index, path);
      let price: number;
      let ts: Date;
      let volume = 0;
      if (live) {
        const k = Math.floor((now.getTime() - live.openAt.getTime()) / MINUTE_MS);
        price = m.open[k] ?? 0;
        ts = new Date(live.openAt.getTime() + k * MINUTE_MS);
        for (let j = 0; j < k; j++) volume += m.volume[j] ?? 0;
      } else {
        price = path.close[index] ?? 0;
        ts = new Date(session.closeAt.getTime() - 1000);
        for (let j = 0; j < m.volume.length; j++) volume += m.volume[j] ?? 0;
      }
      const half = Math.max(1, Math.round(price * 0.0002));
      const quote: ProviderQuote = {
        symbol,
        price: unscale(price),
        ts,
        currency: null,
        volume,
        bid: unscale(Math.max(1, price - half)),
        ask: unscale(price + half),
        raw: { symbol, price: unscale(price), time: ts.toISOString(), volume },
      };
      return quote;
    },

    async daily(symbol, from, to): Promise<ProviderHistory<ProviderDailyBar>> {
      const history: ProviderHistory<ProviderDailyBar> = {
        provider: 'synthetic',
        symbol,
        currency: null,
        bars: [],
        events: [],
      };
      const { sessions, last } = completed();
      const first = indexOnOrAfter(sessions, from);
      let end = indexOnOrAfter(sessions, addDays(to, 1)) - 1;
      end = Math.min(end, last);
      if (end < first) return history;
      const p = paramsOf(symbol);
      const path = cachedPath(symbol, p, sessions, end, last);
      for (let s = first; s <= end; s++) {
        if ((s - first) % 8 === 7) await breathe();
        const session = sessions[s];
        if (!session) continue;
        const m = minutesOf(p, session, s, path);
        const a = aggregate(m, 0, m.open.length);
        history.bars.push({
          date: session.date,
          open: unscale(a.o),
          high: unscale(a.h),
          low: unscale(a.l),
          close: unscale(a.c),
          adjClose: null,
          volume: a.v,
          raw: {
            date: session.date,
            o: unscale(a.o),
            h: unscale(a.h),
            l: unscale(a.l),
            c: unscale(a.c),
            v: a.v,
          },
        });
      }
      // Adjusted close as Yahoo defines it: back-adjusted for every split and dividend up to the
      // last completed session (so it depends on the clock, as the real one does).
      const full = cachedPath(symbol, p, sessions, last, last);
      for (const bar of history.bars) {
        const s = indexOnOrAfter(sessions, bar.date);
        let adj = 1;
        for (const sp of full.splits) if (sp.index > s) adj /= sp.ratio;
        for (const d of full.dividends) {
          if (d.index <= s) continue;
          const prevClose = unscale(full.close[d.index - 1] ?? PRICE_SCALE);
          adj *= Math.max(0, 1 - d.amount / prevClose);
        }
        const close = bar.close ?? 0;
        bar.adjClose = adj === 1 ? close : Math.round(close * adj * 1e8) / 1e8;
      }
      history.events = eventsBetween(path, sessions, first, end);
      return history;
    },

    async intraday(symbol, from, to, intervalMinutes): Promise<ProviderHistory<ProviderIntradayBar>> {
      if (!SYNTHETIC_LIMITS.intradayIntervals.includes(intervalMinutes))
        throw new Error(`synthetic: no ${intervalMinutes}-minute bars`);
      const history: ProviderHistory<ProviderIntradayBar> = {
        provider: 'synthetic',
        symbol,
        currency: null,
        bars: [],
        events: [],
      };
      const now = clock.now().getTime();
      const end = Math.min(to.getTime(), now);
      if (end <= from.getTime()) return history;
      const lastDate = sessionDateOf(new Date(end - 1));
      const sessions = sessionsThrough(lastDate);
      const first = indexOnOrAfter(sessions, sessionDateOf(from));
      const last = indexOnOrAfter(sessions, addDays(lastDate, 1)) - 1;
      if (last < first) return history;
      const p = paramsOf(symbol);
      const done = completedIndex(clock.now(), sessions);
      const path = cachedPath(symbol, p, sessions, last, done);
      const step = intervalMinutes * MINUTE_MS;
      for (let s = first; s <= last; s++) {
        if (s > first) await breathe();
        const session = sessions[s];
        if (!session) continue;
        const m = minutesOf(p, session, s, path);
        for (let k = 0; k + intervalMinutes <= m.open.length; k += intervalMinutes) {
          const start = session.openAt.getTime() + k * MINUTE_MS;
          // Only bars wholly inside [from, to) and already finished at the clock's time.
          if (start < from.getTime() || start >= to.getTime() || start + step > now) continue;
          const a = aggregate(m, k, k + intervalMinutes);
          const ts = new Date(start);
          history.bars.push({
            ts,
            open: unscale(a.o),
            high: unscale(a.h),
            low: unscale(a.l),
            close: unscale(a.c),
            volume: a.v,
            // The source's fragment: epoch milliseconds, as chart APIs send them.
            raw: {
              t: start,
              o: unscale(a.o),
              h: unscale(a.h),
              l: unscale(a.l),
              c: unscale(a.c),
              v: a.v,
            },
          });
        }
      }
      const firstBar = history.bars[0];
      const lastBar = history.bars.at(-1);
      if (firstBar && lastBar)
        history.events = eventsBetween(
          path,
          sessions,
          indexOnOrAfter(sessions, sessionDateOf(firstBar.ts)),
          indexOnOrAfter(sessions, sessionDateOf(lastBar.ts)),
        );
      return history;
    },

    async fxDaily(base, quote, from, to): Promise<ProviderFxRate[]> {
      const today = sessionDateOf(clock.now());
      const end = to < today ? to : today;
      const b = usdValues(base, end);
      const q = usdValues(quote, end);
      const out: ProviderFxRate[] = [];
      for (let d = from < SYNTHETIC_EPOCH ? SYNTHETIC_EPOCH : from; d <= end; d = addDays(d, 1)) {
        if (dayOfWeek(d) === 0 || dayOfWeek(d) === 6) continue;
        const vb = base === 'USD' ? 1 : b.get(d);
        const vq = quote === 'USD' ? 1 : q.get(d);
        if (vb === undefined || vq === undefined) continue;
        const rate = Number((vb / vq).toPrecision(10));
        out.push({ date: d, rate, raw: { pair: `${base}${quote}`, date: d, rate } });
      }
      return out;
    },
  };
}
