/**
 * Technical indicators exactly as TA-Lib (0.6, default compatibility, no unstable period) defines
 * them (SPEC §8). Pure functions over a price series: each returns arrays as long as its input,
 * with NaN where TA-Lib gives no value (its lookback, or a series too short for any value).
 *
 * Each function follows TA-Lib's C code operation for operation (same running sums, same order of
 * additions, same divisions), so on the same doubles the results are not just within 1e-9 but
 * bit-for-bit TA-Lib's. That matters most for the running sums of SMA, STDDEV and Bollinger:
 * TA-Lib keeps a running sum of x and x² and subtracts the value leaving the window, and a
 * "more accurate" recomputation of each window would differ from it by more than the rounding.
 *
 * Degenerate cases follow TA-Lib: RSI is 0 when there was neither gain nor loss in the window
 * (a flat series), the stochastic's %K is 0 when the window's high equals its low, and a variance
 * below 1e-14 (or negative by rounding) gives a standard deviation of exactly 0.
 */

/** A price series: plain arrays or typed arrays. */
export type Series = ArrayLike<number>;

/** TA-Lib's TA_EPSILON (ta_utility.h): its zero test for RSI and its variance floor. */
const TA_EPSILON = 1e-14;

function checkPeriod(name: string, period: number, min: number): void {
  if (!Number.isInteger(period) || period < min || period > 100_000) {
    throw new RangeError(`${name}: period must be an integer from ${min} to 100000, got ${period}`);
  }
}

function filled(n: number): Float64Array {
  return new Float64Array(n).fill(NaN);
}

/**
 * TA-Lib's INT_SMA over src[begin..end]: running sum started at `begin`, first value at
 * begin + period - 1, written into out at the same indexes.
 */
function smaInto(src: Series, begin: number, end: number, period: number, out: Float64Array): void {
  const first = begin + period - 1;
  if (first > end) return;
  let total = 0;
  let i = begin;
  let trailing = begin;
  while (i < first) total += src[i++]!;
  while (i <= end) {
    total += src[i++]!;
    const windowTotal = total;
    total -= src[trailing++]!;
    out[i - 1] = windowTotal / period;
  }
}

/**
 * TA-Lib's INT_EMA with the default (classic) seed, its first output at `start`: the seed is the
 * simple mean of src[start - period + 1 .. start], then prev = (x - prev) * k + prev.
 */
function emaInto(
  src: Series,
  start: number,
  end: number,
  period: number,
  k: number,
  out: Float64Array,
): void {
  if (start < period - 1 || start > end) return;
  let today = start - period + 1;
  let sum = 0;
  for (let i = period; i-- > 0;) sum += src[today++]!;
  let prev = sum / period;
  out[start] = prev;
  while (today <= end) {
    prev = (src[today]! - prev) * k + prev;
    out[today++] = prev;
  }
}

/** TA-Lib's PER_TO_K. */
const perToK = (period: number): number => 2.0 / (period + 1);

/** Simple moving average (TA_SMA): first value at period - 1. */
export function sma(values: Series, period: number): Float64Array {
  checkPeriod('sma', period, 1);
  const out = filled(values.length);
  smaInto(values, 0, values.length - 1, period, out);
  return out;
}

/**
 * Exponential moving average (TA_EMA), k = 2 / (period + 1), seeded with the simple mean of the
 * first `period` values (TA-Lib's default compatibility): first value at period - 1.
 */
export function ema(values: Series, period: number): Float64Array {
  checkPeriod('ema', period, 1);
  const out = filled(values.length);
  emaInto(values, period - 1, values.length - 1, period, perToK(period), out);
  return out;
}

/**
 * Relative strength index (TA_RSI), Wilder's: the first value (at index `period`) uses the mean
 * gain and mean loss of the first `period` changes; then each is smoothed as
 * (prev × (period − 1) + today) / period. RSI = 100 × gain / (gain + loss), and 0 when
 * gain + loss is within TA_EPSILON of zero (TA-Lib's convention for a flat series).
 */
export function rsi(values: Series, period = 14): Float64Array {
  checkPeriod('rsi', period, 2);
  const n = values.length;
  const out = filled(n);
  if (n - 1 < period) return out;
  let prevValue = values[0]!;
  let gain = 0;
  let loss = 0;
  let today = 1;
  for (let i = period; i > 0; i--) {
    const v = values[today++]!;
    const change = v - prevValue;
    prevValue = v;
    if (change < 0) loss -= change;
    else gain += change;
  }
  loss /= period;
  gain /= period;
  const write = (idx: number): void => {
    const total = gain + loss;
    out[idx] = -TA_EPSILON < total && total < TA_EPSILON ? 0.0 : 100.0 * (gain / total);
  };
  write(period);
  while (today < n) {
    const v = values[today]!;
    const change = v - prevValue;
    prevValue = v;
    loss *= period - 1;
    gain *= period - 1;
    if (change < 0) loss -= change;
    else gain += change;
    loss /= period;
    gain /= period;
    write(today++);
  }
  return out;
}

export interface Macd {
  macd: Float64Array;
  signal: Float64Array;
  hist: Float64Array;
}

/**
 * MACD (TA_MACD) with TA-Lib's seeding: both EMAs start at index slow − 1 (25), the slow one
 * seeded with the mean of values[0..25], the fast one with the mean of the `fast` values ending
 * there (values[14..25]); the signal is an EMA of (fast − slow) seeded with the mean of its first
 * `signal` values. All three outputs start at (slow − 1) + (signal − 1) = 33, as TA-Lib's do.
 */
export function macd(values: Series, fast = 12, slow = 26, signal = 9): Macd {
  checkPeriod('macd fast', fast, 2);
  checkPeriod('macd slow', slow, 2);
  checkPeriod('macd signal', signal, 1);
  // TA-Lib swaps the periods when slow < fast.
  if (slow < fast) [fast, slow] = [slow, fast];
  const n = values.length;
  const out: Macd = { macd: filled(n), signal: filled(n), hist: filled(n) };
  const lookbackSignal = signal - 1;
  const start = slow - 1 + lookbackSignal;
  if (start > n - 1) return out;
  const emaStart = start - lookbackSignal;
  const slowEma = filled(n);
  const fastEma = filled(n);
  emaInto(values, emaStart, n - 1, slow, perToK(slow), slowEma);
  emaInto(values, emaStart, n - 1, fast, perToK(fast), fastEma);
  const diff = filled(n);
  for (let i = emaStart; i < n; i++) diff[i] = fastEma[i]! - slowEma[i]!;
  const sig = filled(n);
  emaInto(diff, emaStart + lookbackSignal, n - 1, signal, perToK(signal), sig);
  for (let i = start; i < n; i++) {
    out.macd[i] = diff[i]!;
    out.signal[i] = sig[i]!;
    out.hist[i] = diff[i]! - sig[i]!;
  }
  return out;
}

export interface Bands {
  upper: Float64Array;
  middle: Float64Array;
  lower: Float64Array;
}

/**
 * Bollinger bands (TA_BBANDS with an SMA): middle = SMA(period); the population standard
 * deviation is sqrt(mean(x²) − SMA²) from a running sum of squares (0 when that is below
 * TA_EPSILON); upper/lower = middle ± nbDev × stddev.
 */
export function bollinger(values: Series, period = 20, nbDev = 2): Bands {
  checkPeriod('bollinger', period, 2);
  const n = values.length;
  const out: Bands = { upper: filled(n), middle: filled(n), lower: filled(n) };
  if (period - 1 > n - 1) return out;
  smaInto(values, 0, n - 1, period, out.middle);
  // TA_INT_stddev_using_precalc_ma
  let total2 = 0;
  for (let i = 0; i < period - 1; i++) {
    const v = values[i]!;
    total2 += v * v;
  }
  for (let end = period - 1, trailing = 0; end < n; end++, trailing++) {
    const v = values[end]!;
    total2 += v * v;
    let mean2 = total2 / period;
    const t = values[trailing]!;
    total2 -= t * t;
    const m = out.middle[end]!;
    mean2 -= m * m;
    const sd = mean2 < TA_EPSILON ? 0.0 : Math.sqrt(mean2);
    const width = nbDev === 1.0 ? sd : sd * nbDev;
    out.upper[end] = m + width;
    out.lower[end] = m - width;
  }
  return out;
}

/**
 * Rolling population standard deviation (TA_STDDEV = sqrt of TA_VAR): running sums of x and x²
 * over the window, variance = mean(x²) − mean(x)², 0 when below TA_EPSILON, times nbDev.
 */
export function stddev(values: Series, period = 20, nbDev = 1): Float64Array {
  checkPeriod('stddev', period, 2);
  const n = values.length;
  const out = filled(n);
  if (period - 1 > n - 1) return out;
  let total1 = 0;
  let total2 = 0;
  let i = 0;
  let trailing = 0;
  while (i < period - 1) {
    const v = values[i++]!;
    total1 += v;
    total2 += v * v;
  }
  while (i < n) {
    const v = values[i++]!;
    total1 += v;
    total2 += v * v;
    const mean1 = total1 / period;
    const mean2 = total2 / period;
    const t = values[trailing++]!;
    total1 -= t;
    total2 -= t * t;
    const variance = mean2 - mean1 * mean1;
    const sd = variance < TA_EPSILON ? 0.0 : Math.sqrt(variance);
    out[i - 1] = nbDev === 1.0 ? sd : sd * nbDev;
  }
  return out;
}

/** True range (TA_TRANGE) from index 1: max(high − low, |prevClose − high|, |prevClose − low|). */
export function trueRange(high: Series, low: Series, close: Series): Float64Array {
  const n = sameLength('trueRange', high, low, close);
  const out = filled(n);
  for (let i = 1; i < n; i++) {
    const h = high[i]!;
    const l = low[i]!;
    const c = close[i - 1]!;
    let greatest = h - l;
    const v2 = Math.abs(c - h);
    if (v2 > greatest) greatest = v2;
    const v3 = Math.abs(c - l);
    if (v3 > greatest) greatest = v3;
    out[i] = greatest;
  }
  return out;
}

/**
 * Average true range (TA_ATR), Wilder's: the first value (at index `period`) is the simple mean
 * of the first `period` true ranges (indexes 1..period), then (prev × (period − 1) + TR) / period.
 */
export function atr(high: Series, low: Series, close: Series, period = 14): Float64Array {
  checkPeriod('atr', period, 2);
  const n = sameLength('atr', high, low, close);
  const out = filled(n);
  if (period > n - 1) return out;
  const tr = trueRange(high, low, close);
  const seed = filled(n);
  smaInto(tr, 1, period, period, seed);
  let prev = seed[period]!;
  out[period] = prev;
  for (let i = period + 1; i < n; i++) {
    prev *= period - 1;
    prev += tr[i]!;
    prev /= period;
    out[i] = prev;
  }
  return out;
}

export interface Stochastic {
  slowk: Float64Array;
  slowd: Float64Array;
}

/**
 * Slow stochastic (TA_STOCH with SMA smoothing): fast %K = (close − lowest low) / ((highest high −
 * lowest low) / 100) over `fastK` bars, 0 when the range is 0 (TA-Lib's flat-range convention);
 * slow %K = SMA(slowK) of fast %K; slow %D = SMA(slowD) of slow %K. Both outputs start at
 * (fastK − 1) + (slowK − 1) + (slowD − 1) = 17 for (14, 3, 3).
 */
export function stochastic(
  high: Series,
  low: Series,
  close: Series,
  fastK = 14,
  slowK = 3,
  slowD = 3,
): Stochastic {
  checkPeriod('stochastic fastK', fastK, 1);
  checkPeriod('stochastic slowK', slowK, 1);
  checkPeriod('stochastic slowD', slowD, 1);
  const n = sameLength('stochastic', high, low, close);
  const out: Stochastic = { slowk: filled(n), slowd: filled(n) };
  const lookbackK = fastK - 1;
  const start = lookbackK + (slowK - 1) + (slowD - 1);
  if (start > n - 1) return out;

  const fast = filled(n);
  let lowestIdx = -1;
  let highestIdx = -1;
  let lowest = 0;
  let highest = 0;
  let diff = 0;
  for (let today = lookbackK, trailing = 0; today < n; today++, trailing++) {
    let tmp = low[today]!;
    if (lowestIdx < trailing) {
      lowestIdx = trailing;
      lowest = low[lowestIdx]!;
      for (let i = lowestIdx + 1; i <= today; i++) {
        tmp = low[i]!;
        if (tmp < lowest) {
          lowestIdx = i;
          lowest = tmp;
        }
      }
      diff = (highest - lowest) / 100.0;
    } else if (tmp <= lowest) {
      lowestIdx = today;
      lowest = tmp;
      diff = (highest - lowest) / 100.0;
    }
    tmp = high[today]!;
    if (highestIdx < trailing) {
      highestIdx = trailing;
      highest = high[highestIdx]!;
      for (let i = highestIdx + 1; i <= today; i++) {
        tmp = high[i]!;
        if (tmp > highest) {
          highestIdx = i;
          highest = tmp;
        }
      }
      diff = (highest - lowest) / 100.0;
    } else if (tmp >= highest) {
      highestIdx = today;
      highest = tmp;
      diff = (highest - lowest) / 100.0;
    }
    fast[today] = diff !== 0.0 ? (close[today]! - lowest) / diff : 0.0;
  }
  // TA_MA with period 1 copies its input; otherwise an SMA. Both start where their input starts.
  const smooth = (src: Float64Array, begin: number, period: number, dst: Float64Array): void => {
    if (period === 1) for (let i = begin; i < n; i++) dst[i] = src[i]!;
    else smaInto(src, begin, n - 1, period, dst);
  };
  const k = filled(n);
  smooth(fast, lookbackK, slowK, k);
  smooth(k, lookbackK + slowK - 1, slowD, out.slowd);
  for (let i = start; i < n; i++) out.slowk[i] = k[i]!;
  return out;
}

function sameLength(name: string, high: Series, low: Series, close: Series): number {
  if (high.length !== low.length || low.length !== close.length) {
    throw new RangeError(
      `${name}: high, low and close must have the same length (${high.length}, ${low.length}, ${close.length})`,
    );
  }
  return close.length;
}

/** The stored series, in the order of the indicator_values columns. */
export const INDICATOR_NAMES = [
  'sma_20',
  'sma_50',
  'sma_200',
  'ema_12',
  'ema_26',
  'rsi_14',
  'macd',
  'macd_signal',
  'macd_hist',
  'bb_upper',
  'bb_middle',
  'bb_lower',
  'atr_14',
  'stoch_k',
  'stoch_d',
  'stddev_20',
] as const;

export type IndicatorName = (typeof INDICATOR_NAMES)[number];
export type IndicatorSet = Record<IndicatorName, Float64Array>;

/**
 * Every stored indicator over one bar series (SPEC §8 parameters): SMA 20/50/200, EMA 12/26,
 * RSI 14, MACD (12, 26, 9), Bollinger (20, 2), ATR 14, slow stochastic (14, 3, 3) and
 * STDDEV (20, 1).
 */
export function computeIndicators(bars: { high: Series; low: Series; close: Series }): IndicatorSet {
  const { high, low, close } = bars;
  const m = macd(close, 12, 26, 9);
  const bb = bollinger(close, 20, 2);
  const st = stochastic(high, low, close, 14, 3, 3);
  return {
    sma_20: sma(close, 20),
    sma_50: sma(close, 50),
    sma_200: sma(close, 200),
    ema_12: ema(close, 12),
    ema_26: ema(close, 26),
    rsi_14: rsi(close, 14),
    macd: m.macd,
    macd_signal: m.signal,
    macd_hist: m.hist,
    bb_upper: bb.upper,
    bb_middle: bb.middle,
    bb_lower: bb.lower,
    atr_14: atr(high, low, close, 14),
    stoch_k: st.slowk,
    stoch_d: st.slowd,
    stddev_20: stddev(close, 20, 1),
  };
}
