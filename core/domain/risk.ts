/**
 * Risk measures per security (SPEC §8 "Risk"), pure functions over daily closes.
 *
 * Definitions used throughout:
 * - Returns are simple daily returns r_t = C_t / C_{t−1} − 1 between consecutive stored daily
 *   bars, on split-adjusted closes (SPEC §8): the caller passes closes already divided by the
 *   cumulative split factor (core/db/repositories/analytics.ts dailyCloses, from the database's
 *   price_adjustments(), the one definition indicators and adj_close use too), so a 4:1 split is
 *   not a −75% day.
 * - Volatility = sample standard deviation (n − 1) of the window's daily returns × √252.
 * - Quantiles are Hyndman–Fan type 7 (R's default, Excel PERCENTILE.INC, PostgreSQL's
 *   percentile_cont): sorted x_0..x_{n−1}, h = (n − 1)p, Q = x_⌊h⌋ + (h − ⌊h⌋)(x_⌊h⌋+1 − x_⌊h⌋).
 * - Historical VaR at confidence a is the loss at the (1 − a) quantile: VaR_a = −Q_{1−a}(r),
 *   floored at 0 (a window whose worst 5% are still gains has no loss to report).
 * - Expected shortfall ES_a = −mean{ r_t : r_t ≤ Q_{1−a}(r) }, the mean of the returns at or
 *   below the (interpolated) VaR quantile, floored at 0. The set is never empty (Q ≥ min r), and
 *   ES_a ≥ VaR_a always.
 * - Beta = cov(r, r_b) / var(r_b) (both sample, so the n − 1 cancels) over returns aligned by
 *   session date: closes are joined on the dates both have, and returns are taken between
 *   consecutive joined dates, so a missing session in either series never pairs a one-day
 *   return with a two-day one.
 * - The window is the last `windowDays` returns (config.risk.windowDays, default 250). With fewer
 *   than MIN_RETURNS returns a measure is null rather than a number from a handful of days.
 */

export const TRADING_DAYS_PER_YEAR = 252;
/** Fewest returns behind any reported measure (volatility, VaR, ES, beta). */
export const MIN_RETURNS = 20;

/** Daily closes of one security, oldest first, split-adjusted. */
export interface CloseSeries {
  /** Session dates 'YYYY-MM-DD', strictly increasing. */
  dates: readonly string[];
  closes: readonly number[];
}

/** Simple returns between consecutive closes: r_i = closes[i+1] / closes[i] − 1; one fewer element. */
export function simpleReturns(closes: ArrayLike<number>): number[] {
  const out: number[] = [];
  for (let i = 1; i < closes.length; i++) out.push(closes[i]! / closes[i - 1]! - 1);
  return out;
}

/** Simple returns of a series, each with the date it ends on. */
export function returnsOf(series: CloseSeries): { dates: string[]; returns: number[] } {
  return { dates: series.dates.slice(1), returns: simpleReturns(series.closes) };
}

/** Hyndman–Fan type 7 quantile (Excel PERCENTILE.INC) of unsorted values; p in [0, 1]. */
export function quantileType7(values: readonly number[], p: number): number {
  if (values.length === 0) throw new RangeError('quantileType7: no values');
  if (!(p >= 0 && p <= 1)) throw new RangeError(`quantileType7: p must be in [0, 1], got ${p}`);
  const x = [...values].sort((a, b) => a - b);
  let h = (x.length - 1) * p;
  // (n − 1)·p that should be a whole number (20 × (1 − 0.95)) can land an ulp off it; snap, so the
  // quantile is exactly that observation and "at or below the quantile" includes it.
  if (Math.abs(h - Math.round(h)) < 1e-9) h = Math.round(h);
  const lo = Math.floor(h);
  const hi = Math.min(lo + 1, x.length - 1);
  return x[lo]! + (h - lo) * (x[hi]! - x[lo]!);
}

export function mean(values: readonly number[]): number {
  let sum = 0;
  for (const v of values) sum += v;
  return sum / values.length;
}

/** Sample standard deviation (n − 1); NaN with fewer than 2 values. */
export function sampleStd(values: readonly number[]): number {
  const n = values.length;
  if (n < 2) return NaN;
  const m = mean(values);
  let ss = 0;
  for (const v of values) ss += (v - m) * (v - m);
  return Math.sqrt(ss / (n - 1));
}

/** Annualised volatility: sample std of daily simple returns × √252; null below MIN_RETURNS. */
export function volatility(returns: readonly number[]): number | null {
  if (returns.length < MIN_RETURNS) return null;
  return sampleStd(returns) * Math.sqrt(TRADING_DAYS_PER_YEAR);
}

/** Historical VaR at `confidence` (0.95, 0.99) as a positive loss: max(0, −Q_{1−a}); null below MIN_RETURNS. */
export function historicalVar(returns: readonly number[], confidence: number): number | null {
  if (returns.length < MIN_RETURNS) return null;
  return Math.max(0, -quantileType7(returns, 1 - confidence));
}

/**
 * Expected shortfall at `confidence`: max(0, −mean of the returns ≤ Q_{1−a}), Q the type-7
 * quantile VaR uses; null below MIN_RETURNS.
 */
export function expectedShortfall(returns: readonly number[], confidence: number): number | null {
  if (returns.length < MIN_RETURNS) return null;
  const q = quantileType7(returns, 1 - confidence);
  const tail = returns.filter((r) => r <= q);
  return Math.max(0, -mean(tail));
}

/** cov(r, r_b) / var(r_b) over equally long, aligned returns; null below MIN_RETURNS or when var(r_b) = 0. */
export function beta(returns: readonly number[], benchmark: readonly number[]): number | null {
  if (returns.length !== benchmark.length) {
    throw new RangeError(`beta: ${returns.length} returns against ${benchmark.length} benchmark returns`);
  }
  const n = returns.length;
  if (n < MIN_RETURNS) return null;
  const ma = mean(returns);
  const mb = mean(benchmark);
  let cov = 0;
  let varB = 0;
  for (let i = 0; i < n; i++) {
    const db = benchmark[i]! - mb;
    cov += (returns[i]! - ma) * db;
    varB += db * db;
  }
  return varB === 0 ? null : cov / varB;
}

/**
 * Returns of two series over the session dates both have (joined closes, then consecutive
 * returns).
 */
export function alignedReturns(
  a: CloseSeries,
  b: CloseSeries,
): { dates: string[]; returns: number[]; benchmark: number[] } {
  const closesB = new Map<string, number>();
  b.dates.forEach((d, i) => closesB.set(d, b.closes[i]!));
  const dates: string[] = [];
  const ca: number[] = [];
  const cb: number[] = [];
  a.dates.forEach((d, i) => {
    const v = closesB.get(d);
    if (v !== undefined) {
      dates.push(d);
      ca.push(a.closes[i]!);
      cb.push(v);
    }
  });
  return {
    dates: dates.slice(1),
    returns: simpleReturns(ca),
    benchmark: simpleReturns(cb),
  };
}

export interface RiskMetrics {
  /** Session date of the last close in the window. */
  asOf: string;
  windowDays: number;
  /** Returns in the window (≤ windowDays). */
  returnsUsed: number;
  volatility: number | null;
  var95: number | null;
  var99: number | null;
  es95: number | null;
  es99: number | null;
  beta: number | null;
  /** Aligned returns behind beta (0 without a benchmark). */
  betaReturns: number;
}

/**
 * All measures for one security as of its last close in `series` (the caller cuts the series at
 * the as-of date). `benchmark` undefined or empty gives beta null.
 */
export function riskMetrics(
  series: CloseSeries,
  benchmark: CloseSeries | undefined,
  windowDays: number,
): RiskMetrics | undefined {
  const n = series.dates.length;
  if (n === 0) return undefined;
  const from = Math.max(0, n - 1 - windowDays);
  const window: CloseSeries = {
    dates: series.dates.slice(from),
    closes: series.closes.slice(from),
  };
  const { returns } = returnsOf(window);
  let b: number | null = null;
  let betaReturns = 0;
  if (benchmark && benchmark.dates.length > 0) {
    const aligned = alignedReturns(window, benchmark);
    betaReturns = aligned.returns.length;
    b = beta(aligned.returns, aligned.benchmark);
  }
  return {
    asOf: series.dates[n - 1]!,
    windowDays,
    returnsUsed: returns.length,
    volatility: volatility(returns),
    var95: historicalVar(returns, 0.95),
    var99: historicalVar(returns, 0.99),
    es95: expectedShortfall(returns, 0.95),
    es99: expectedShortfall(returns, 0.99),
    beta: b,
    betaReturns,
  };
}
