/**
 * The indicators against TA-Lib itself (the npm `talib` package, TA-Lib 0.6 C code, a dev-only
 * dependency imported dynamically): random walks from several seeds, series with missing sessions
 * (price gaps), flat runs, a constant series, tiny and large price scales, and series shorter than
 * each lookback. Every value must agree to 1e-9 (absolute + relative), and NaN must sit exactly
 * where TA-Lib gives no value.
 */
import type TalibModule from 'talib';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  atr,
  bollinger,
  computeIndicators,
  ema,
  INDICATOR_NAMES,
  macd,
  rsi,
  sma,
  stddev,
  stochastic,
} from '../core/domain/indicators.ts';
import { sessionsBetween } from '../core/calendar/nyse.ts';
import { fiveMinuteWindow } from '../jobs/processors/analytics.ts';
import { talibIndicators } from './talib-oracle.ts';
import { prng } from './support.ts';

type Talib = typeof TalibModule;
let talib: Talib;

beforeAll(async () => {
  try {
    talib = ((await import('talib')) as unknown as { default: Talib }).default;
  } catch (err) {
    throw new Error(
      `the TA-Lib oracle (npm "talib", a dev dependency built by node-gyp) did not load: ${(err as Error).message}`,
      { cause: err },
    );
  }
});

interface Bars {
  name: string;
  high: number[];
  low: number[];
  close: number[];
}

const round = (x: number, places: number): number => Math.round(x * 10 ** places) / 10 ** places;

/** A daily random walk with highs and lows around the close, prices rounded like stored bars. */
function walk(seed: number, n: number, opts: { start?: number; vol?: number; places?: number } = {}): Bars {
  const r = prng(seed);
  const places = opts.places ?? 4;
  let p = opts.start ?? 100;
  const bars: Bars = { name: `walk seed ${seed} n ${n}`, high: [], low: [], close: [] };
  for (let i = 0; i < n; i++) {
    p *= Math.exp((r() - 0.5) * (opts.vol ?? 0.04));
    const c = round(p, places);
    bars.close.push(c);
    bars.high.push(round(c + p * 0.01 * r(), places));
    bars.low.push(round(c - p * 0.01 * r(), places));
  }
  return bars;
}

/** Drops ~15% of sessions at random and adds a jump after each gap (missing sessions). */
function withGaps(b: Bars, seed: number): Bars {
  const r = prng(seed);
  const out: Bars = { name: `${b.name} with gaps`, high: [], low: [], close: [] };
  let jump = 1;
  for (let i = 0; i < b.close.length; i++) {
    if (r() < 0.15) {
      jump *= 1 + (r() - 0.5) * 0.2;
      continue;
    }
    out.close.push(round(b.close[i]! * jump, 4));
    out.high.push(round(b.high[i]! * jump, 4));
    out.low.push(round(b.low[i]! * jump, 4));
  }
  return out;
}

/** Flat runs: stretches where high = low = close stays put (a halted or illiquid security). */
function withFlatRuns(b: Bars): Bars {
  const out: Bars = {
    name: `${b.name} with flat runs`,
    high: [...b.high],
    low: [...b.low],
    close: [...b.close],
  };
  for (const [from, len] of [
    [40, 30],
    [200, 60],
    [400, 16],
  ] as const) {
    const level = out.close[from - 1]!;
    for (let i = from; i < Math.min(from + len, out.close.length); i++) {
      out.close[i] = level;
      out.high[i] = level;
      out.low[i] = level;
    }
  }
  return out;
}

function constant(n: number, level: number): Bars {
  return {
    name: `constant ${level} n ${n}`,
    high: Array(n).fill(level),
    low: Array(n).fill(level),
    close: Array(n).fill(level),
  };
}

function scaled(b: Bars, factor: number): Bars {
  return {
    name: `${b.name} x ${factor}`,
    high: b.high.map((x) => x * factor),
    low: b.low.map((x) => x * factor),
    close: b.close.map((x) => x * factor),
  };
}

const long = [1, 2, 3, 4, 5].map((seed) => walk(seed, 300 + seed * 250));
const cases: Bars[] = [
  ...long,
  walk(11, 1260, { vol: 0.08 }),
  withGaps(walk(6, 900), 60),
  withGaps(walk(7, 600, { vol: 0.1 }), 70),
  withFlatRuns(walk(8, 700)),
  constant(300, 42.5),
  constant(60, 0.01),
  scaled(walk(9, 800), 1e-6),
  scaled(walk(10, 800), 1e5),
  // Shorter than the lookbacks (14 RSI/ATR, 17 stochastic, 19 SMA20/BB/STDDEV, 33 MACD, 199 SMA200).
  ...[1, 2, 5, 13, 14, 15, 17, 18, 19, 20, 25, 33, 34, 199, 200].map((n) => {
    const b = walk(100 + n, n);
    return { ...b, name: `short n ${n}` };
  }),
];

/** A TA-Lib output placed at its input indexes, NaN before its begIndex. */
function oracle(name: string, inputs: Record<string, unknown>, output: string, n: number): Float64Array {
  const out = new Float64Array(n).fill(NaN);
  const res = talib.execute({ name, startIdx: 0, endIdx: n - 1, ...inputs });
  if ('error' in res) throw new Error(`talib ${name}: ${String((res as { error: unknown }).error)}`);
  const values = res.result[output];
  if (!values) throw new Error(`talib ${name}: no output ${output}`);
  for (let j = 0; j < res.nbElement; j++) out[res.begIndex + j] = values[j]!;
  return out;
}

/** Equal to 1e-9 (absolute + relative), NaN exactly where the reference has none. */
function expectClose(actual: Float64Array, expected: Float64Array, label: string): void {
  expect(actual.length, `${label}: length`).toBe(expected.length);
  const bad: string[] = [];
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    const ok = Number.isNaN(e) ? Number.isNaN(a) : Math.abs(a - e) <= 1e-9 * (1 + Math.abs(e));
    if (!ok && bad.length < 5) bad.push(`[${i}] got ${a}, TA-Lib ${e}`);
  }
  expect(bad, label).toEqual([]);
}

describe.each(cases)('$name', (b) => {
  const n = b.close.length;
  const hlc = { high: b.high, low: b.low, close: b.close };

  it('SMA and EMA', () => {
    for (const p of [20, 50, 200]) {
      expectClose(
        sma(b.close, p),
        oracle('SMA', { inReal: b.close, optInTimePeriod: p }, 'outReal', n),
        `SMA ${p}`,
      );
    }
    for (const p of [12, 26]) {
      expectClose(
        ema(b.close, p),
        oracle('EMA', { inReal: b.close, optInTimePeriod: p }, 'outReal', n),
        `EMA ${p}`,
      );
    }
  });

  it('RSI(14)', () => {
    expectClose(
      rsi(b.close, 14),
      oracle('RSI', { inReal: b.close, optInTimePeriod: 14 }, 'outReal', n),
      'RSI',
    );
  });

  it('MACD(12, 26, 9)', () => {
    const m = macd(b.close, 12, 26, 9);
    const opts = { inReal: b.close, optInFastPeriod: 12, optInSlowPeriod: 26, optInSignalPeriod: 9 };
    expectClose(m.macd, oracle('MACD', opts, 'outMACD', n), 'MACD');
    expectClose(m.signal, oracle('MACD', opts, 'outMACDSignal', n), 'MACD signal');
    expectClose(m.hist, oracle('MACD', opts, 'outMACDHist', n), 'MACD hist');
  });

  it('Bollinger(20, 2) and STDDEV(20, 1)', () => {
    const bb = bollinger(b.close, 20, 2);
    const opts = { inReal: b.close, optInTimePeriod: 20, optInNbDevUp: 2, optInNbDevDn: 2, optInMAType: 0 };
    expectClose(bb.upper, oracle('BBANDS', opts, 'outRealUpperBand', n), 'BB upper');
    expectClose(bb.middle, oracle('BBANDS', opts, 'outRealMiddleBand', n), 'BB middle');
    expectClose(bb.lower, oracle('BBANDS', opts, 'outRealLowerBand', n), 'BB lower');
    expectClose(
      stddev(b.close, 20, 1),
      oracle('STDDEV', { inReal: b.close, optInTimePeriod: 20, optInNbDev: 1 }, 'outReal', n),
      'STDDEV',
    );
  });

  it('ATR(14)', () => {
    expectClose(
      atr(b.high, b.low, b.close, 14),
      oracle('ATR', { ...hlc, optInTimePeriod: 14 }, 'outReal', n),
      'ATR',
    );
  });

  it('slow stochastic (14, 3, 3) with SMA', () => {
    const st = stochastic(b.high, b.low, b.close, 14, 3, 3);
    const opts = {
      ...hlc,
      optInFastK_Period: 14,
      optInSlowK_Period: 3,
      optInSlowK_MAType: 0,
      optInSlowD_Period: 3,
      optInSlowD_MAType: 0,
    };
    expectClose(st.slowk, oracle('STOCH', opts, 'outSlowK', n), 'slow %K');
    expectClose(st.slowd, oracle('STOCH', opts, 'outSlowD', n), 'slow %D');
  });
});

describe('degenerate cases follow TA-Lib', () => {
  it('a constant series: RSI 0, stochastic 0, zero deviation and ATR, bands on the mean', () => {
    const b = constant(60, 42.5);
    const all = computeIndicators(b);
    expect(all.rsi_14[14]).toBe(0);
    expect(all.stoch_k[17]).toBe(0);
    expect(all.stoch_d[17]).toBe(0);
    expect(all.stddev_20[19]).toBe(0);
    expect(all.atr_14[14]).toBe(0);
    expect([all.bb_lower[59], all.bb_middle[59], all.bb_upper[59]]).toEqual([42.5, 42.5, 42.5]);
    expect(all.macd[33]).toBe(0);
  });

  it('first values sit at TA-Lib’s lookbacks', () => {
    const all = computeIndicators(walk(3, 250));
    const firstIndex = Object.fromEntries(
      INDICATOR_NAMES.map((name) => [name, all[name].findIndex((v) => !Number.isNaN(v))]),
    );
    expect(firstIndex).toEqual({
      sma_20: 19,
      sma_50: 49,
      sma_200: 199,
      ema_12: 11,
      ema_26: 25,
      rsi_14: 14,
      macd: 33,
      macd_signal: 33,
      macd_hist: 33,
      bb_upper: 19,
      bb_middle: 19,
      bb_lower: 19,
      atr_14: 14,
      stoch_k: 17,
      stoch_d: 17,
      stddev_20: 19,
    });
  });

  it('an empty series gives empty outputs', () => {
    const all = computeIndicators({ high: [], low: [], close: [] });
    expect(INDICATOR_NAMES.map((name) => all[name].length)).toEqual(INDICATOR_NAMES.map(() => 0));
  });

  it('refuses a bad period and mismatched inputs', () => {
    expect(() => sma([1, 2, 3], 0)).toThrow(/sma: period/);
    expect(() => rsi([1, 2, 3], 1.5)).toThrow(/rsi: period/);
    expect(() => atr([1, 2], [1], [1, 2])).toThrow(/same length/);
  });
});

/**
 * 5-minute indicators are computed from a trailing window (jobs/processors/analytics.ts: at least
 * 5 sessions, 390 bars, of warm-up), not the full history. Two things separate them from
 * full-history TA-Lib, both proportional to the series' scale, so the tolerance is relative: to
 * the price level for price-like series, to 100 for RSI and the stochastic.
 * - The seed's trace in EMA, MACD, RSI and ATR: (25/27)^390 ≈ 1e-13 in EMA(26), (13/14)^390 ≈
 *   3e-13 in Wilder's RSI and ATR (SEEDED_REL_TOLERANCE).
 * - TA-Lib's running sums of x and x² (SMA, STDDEV, Bollinger) carry the rounding of every bar
 *   since the series began, and var = mean(x²) − mean(x)² cancels most of the digits: at 46,000
 *   that is ~1e-11 of the price in STDDEV and the bands (4e-7 absolute), more on calmer series
 *   (it grows with price ÷ standard deviation). WARMUP_REL_TOLERANCE bounds every series.
 * An absolute bound (ARCHITECTURE.md used to say 1e-13) cannot hold at such prices.
 */
const WARMUP_REL_TOLERANCE = 1e-10;
const SEEDED_REL_TOLERANCE = 1e-12;
const SEEDED = new Set(['ema_12', 'ema_26', 'rsi_14', 'macd', 'macd_signal', 'macd_hist', 'atr_14']);
const OSCILLATORS = new Set(['rsi_14', 'stoch_k', 'stoch_d']);

describe('5-minute indicators from the warm-up window against full-history TA-Lib', () => {
  // 60 sessions of 5-minute bars priced near 46,000; windows ending on five consecutive sessions, so
  // the week-anchored start gives every warm-up length from 5 to 9 sessions.
  const days = sessionsBetween('2024-03-01', '2024-06-28');
  const r = prng(46);
  const ts: number[] = [];
  const bars: Bars = { name: '5m near 46,000', high: [], low: [], close: [] };
  let p = 46_000;
  for (const s of days) {
    for (let t = s.openAt.getTime(); t < s.closeAt.getTime(); t += 300_000) {
      p *= Math.exp((r() - 0.5) * 0.004);
      ts.push(t);
      bars.close.push(round(p, 2));
      bars.high.push(round(p * (1 + 0.002 * r()), 2));
      bars.low.push(round(p * (1 - 0.002 * r()), 2));
    }
  }

  it.each(days.slice(-5).map((s) => s.date))('window ending %s', async (last) => {
    const w = fiveMinuteWindow(last);
    const from = ts.findIndex((t) => t >= w.readFrom.getTime());
    const storedFrom = ts.findIndex((t) => t >= w.storedFrom.getTime());
    const end = ts.findLastIndex((t) => t < days.find((s) => s.date === last)!.closeAt.getTime()) + 1;
    expect(storedFrom - from).toBeGreaterThanOrEqual(390);
    const windowed = computeIndicators({
      high: bars.high.slice(from, end),
      low: bars.low.slice(from, end),
      close: bars.close.slice(from, end),
    });
    const reference = await talibIndicators(bars);
    let worstAbs = 0;
    let worstRel = 0;
    const bad: string[] = [];
    const per: Record<string, number> = {};
    for (const name of INDICATOR_NAMES) {
      for (let i = storedFrom; i < end; i++) {
        const a = windowed[name][i - from]!;
        const e = reference[name]![i]!;
        const scale = OSCILLATORS.has(name) ? 100 : bars.close[i]!;
        const d = Math.abs(a - e);
        worstAbs = Math.max(worstAbs, d);
        worstRel = Math.max(worstRel, d / scale);
        per[name] = Math.max(per[name] ?? 0, d / scale);
        const tolerance = SEEDED.has(name) ? SEEDED_REL_TOLERANCE : WARMUP_REL_TOLERANCE;
        if (!(d <= tolerance * scale) && bad.length < 5) bad.push(`${name}[${i}] ${a} vs ${e}`);
      }
    }
    if (process.env.REPORT_DIFFS)
      console.log(`5m window ending ${last}: abs ${worstAbs}, rel ${worstRel}`, per);
    expect(bad).toEqual([]);
    // What ARCHITECTURE.md used to promise, an absolute 1e-13, does not hold at this price.
    expect(worstAbs).toBeGreaterThan(1e-13);
    expect(worstRel).toBeLessThan(WARMUP_REL_TOLERANCE);
  });
});
