/**
 * Risk measures, one named scenario each: hand-worked type-7 quantiles (Excel PERCENTILE.INC),
 * VaR and expected shortfall on a known series, volatility, returns (split-adjusted closes come from
 * the database's price_adjustments(): test/analytics-jobs.test.ts checks them), beta of a
 * series that is exactly 1.5× its benchmark, beta aligned by session date, and beta without a
 * benchmark.
 */
import { describe, expect, it } from 'vitest';
import {
  alignedReturns,
  beta,
  expectedShortfall,
  historicalVar,
  MIN_RETURNS,
  quantileType7,
  riskMetrics,
  simpleReturns,
  volatility,
  type CloseSeries,
} from '../core/domain/risk.ts';

/** Consecutive weekday dates from 2024-01-01, enough for any test series. */
function dates(n: number, from = '2024-01-01'): string[] {
  const out: string[] = [];
  for (let t = Date.parse(`${from}T00:00:00Z`); out.length < n; t += 86_400_000) {
    const day = new Date(t).getUTCDay();
    if (day !== 0 && day !== 6) out.push(new Date(t).toISOString().slice(0, 10));
  }
  return out;
}

/** Closes that produce exactly the given returns from a start of 100. */
function closesFor(returns: number[], start = 100): number[] {
  const out = [start];
  for (const r of returns) out.push(out[out.length - 1]! * (1 + r));
  return out;
}

describe('type-7 quantile (PERCENTILE.INC)', () => {
  it('PERCENTILE.INC({1,2,3,4,5}, 0.3) = 2.2 and ({15,20,35,40,50}, 0.4) = 29', () => {
    // h = (5 − 1)·0.3 = 1.2 → x1 + 0.2·(x2 − x1) = 2 + 0.2·1
    expect(quantileType7([5, 3, 1, 4, 2], 0.3)).toBeCloseTo(2.2, 12);
    // h = 1.6 → 20 + 0.6·(35 − 20) = 29
    expect(quantileType7([50, 15, 40, 20, 35], 0.4)).toBeCloseTo(29, 12);
  });

  it('the ends and an exact order statistic', () => {
    const x = [-0.03, 0.01, -0.01, 0.02, 0];
    expect(quantileType7(x, 0)).toBe(-0.03);
    expect(quantileType7(x, 1)).toBe(0.02);
    expect(quantileType7(x, 0.5)).toBe(0); // h = 2 exactly: the median
    expect(quantileType7([7], 0.05)).toBe(7);
  });

  it('refuses an empty set and p outside [0, 1]', () => {
    expect(() => quantileType7([], 0.5)).toThrow(/no values/);
    expect(() => quantileType7([1, 2], 1.5)).toThrow(/p must be/);
  });
});

describe('VaR and expected shortfall on a known series', () => {
  // 21 returns: −10%, −9%, …, −1%, 0, +1%, …, +10% (shuffled). Sorted x_k = (k − 10)%.
  const returns = Array.from({ length: 21 }, (_, k) => (k - 10) / 100).sort(
    (a, b) => Math.sin(a * 7) - Math.sin(b * 7),
  );

  it('VaR 95: h = 20·0.05 = 1 → x1 = −9% → 0.09; VaR 99: h = 0.2 → −10% + 0.2·1% → 0.098', () => {
    expect(historicalVar(returns, 0.95)).toBeCloseTo(0.09, 12);
    expect(historicalVar(returns, 0.99)).toBeCloseTo(0.098, 12);
  });

  it('ES 95 = mean loss of the returns at or below −9%: (10% + 9%) / 2; ES 99 = the worst, 10%', () => {
    expect(expectedShortfall(returns, 0.95)).toBeCloseTo(0.095, 12);
    // Q = −9.8%: only −10% is at or below it.
    expect(expectedShortfall(returns, 0.99)).toBeCloseTo(0.1, 12);
  });

  it('a window of gains only reports no loss (0), never a negative VaR', () => {
    const gains = Array.from({ length: 25 }, (_, k) => 0.001 * (k + 1));
    expect(historicalVar(gains, 0.95)).toBe(0);
    expect(expectedShortfall(gains, 0.99)).toBe(0);
  });

  it(`fewer than ${MIN_RETURNS} returns give null`, () => {
    expect(historicalVar(returns.slice(0, MIN_RETURNS - 1), 0.95)).toBeNull();
    expect(expectedShortfall(returns.slice(0, MIN_RETURNS - 1), 0.95)).toBeNull();
    expect(volatility(returns.slice(0, MIN_RETURNS - 1))).toBeNull();
  });
});

describe('volatility', () => {
  it('is the sample standard deviation of daily returns × √252', () => {
    // Alternating ±1%: mean 0, Σ(r − 0)² = 20·1e-4, sample variance = 20e-4 / 19.
    const r = Array.from({ length: 20 }, (_, k) => (k % 2 ? 0.01 : -0.01));
    expect(volatility(r)).toBeCloseTo(Math.sqrt(20e-4 / 19) * Math.sqrt(252), 14);
  });
});

describe('returns', () => {
  it('are simple returns between consecutive closes', () => {
    expect(simpleReturns([100, 110, 99])).toEqual([0.10000000000000009, -0.09999999999999998]);
  });
});

describe('beta', () => {
  const market = Array.from({ length: 60 }, (_, k) => 0.01 * Math.sin(k * 1.7) + 0.002 * Math.cos(k * 0.3));

  it('of a series whose returns are exactly 1.5× the benchmark’s is 1.5', () => {
    expect(
      beta(
        market.map((r) => 1.5 * r),
        market,
      ),
    ).toBeCloseTo(1.5, 12);
  });

  it('through riskMetrics, aligned by session date, with closes built from those returns', () => {
    const d = dates(61);
    const bench: CloseSeries = { dates: d, closes: closesFor(market) };
    const stock: CloseSeries = {
      dates: d,
      closes: closesFor(
        market.map((r) => 1.5 * r),
        37,
      ),
    };
    const m = riskMetrics(stock, bench, 250)!;
    expect(m.beta).toBeCloseTo(1.5, 10);
    expect(m.betaReturns).toBe(60);
    expect(m.asOf).toBe(d[60]);
  });

  it('aligns on the dates both series have, so a missing session pairs equal spans', () => {
    const d = dates(61);
    const bench: CloseSeries = { dates: d, closes: closesFor(market) };
    // The stock misses sessions 10 and 30: its returns across them span two days, as the
    // benchmark's aligned ones then do too.
    const keep = d.map((_, i) => i !== 10 && i !== 30);
    const stockCloses = closesFor(market.map((r) => 1.5 * r));
    const stock: CloseSeries = {
      dates: d.filter((_, i) => keep[i]),
      closes: stockCloses.filter((_, i) => keep[i]),
    };
    const a = alignedReturns(stock, bench);
    expect(a.returns).toHaveLength(58);
    expect(a.dates).not.toContain(d[10]);
    const across = a.dates.indexOf(d[11]!);
    expect(a.benchmark[across]).toBeCloseTo((1 + market[9]!) * (1 + market[10]!) - 1, 14);
  });

  it('is null without a benchmark, with a benchmark without bars, and below 20 aligned returns', () => {
    const d = dates(61);
    const stock: CloseSeries = { dates: d, closes: closesFor(market) };
    expect(riskMetrics(stock, undefined, 250)!.beta).toBeNull();
    expect(riskMetrics(stock, { dates: [], closes: [] }, 250)!.beta).toBeNull();
    const shortBench: CloseSeries = {
      dates: d.slice(0, MIN_RETURNS),
      closes: closesFor(market).slice(0, MIN_RETURNS),
    };
    expect(riskMetrics(stock, shortBench, 250)!.beta).toBeNull();
    expect(beta(market.slice(0, 19), market.slice(0, 19))).toBeNull();
  });
});

describe('riskMetrics window', () => {
  it('uses only the last windowDays returns', () => {
    // 30 calm days, then 25 days with one −20% crash in them: a 25-return window sees the crash.
    const r = [...Array(30).fill(0.001), ...Array(24).fill(0.002), -0.2];
    const series: CloseSeries = { dates: dates(r.length + 1), closes: closesFor(r) };
    const m = riskMetrics(series, undefined, 25)!;
    expect(m.returnsUsed).toBe(25);
    // Sorted window: −20%, then 24 × 0.2%. VaR 99: h = 24·0.01 = 0.24 → −0.2 + 0.24·0.202.
    expect(m.var99).toBeCloseTo(0.2 - 0.24 * 0.202, 12);
    expect(m.es99).toBeCloseTo(0.2, 12);
    const calm = riskMetrics(
      { ...series, dates: series.dates.slice(0, 31), closes: series.closes.slice(0, 31) },
      undefined,
      25,
    )!;
    expect(calm.var99).toBe(0);
  });
});
