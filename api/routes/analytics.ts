/**
 * Analytics per symbol (seed 1's "analytics per symbol"; the seed gives no response body, so the
 * shape is ours): the newest `limit` rows of stored indicators at one interval, oldest first,
 * and the latest risk metrics. Indicator values are double precision in the database (TA-Lib's
 * arithmetic) and leave as JSON numbers unchanged; a value an indicator does not define yet
 * (warm-up) is null.
 */
import { z } from 'zod';
import type { Deps } from '../../core/deps.ts';
import { decimalInt } from '../../core/input.ts';
import { defineRoute, type RouteDef } from '../http.ts';
import { securityOr404, symbolParams } from './prices.ts';

const IndicatorRow = z
  .object({
    timestamp: z.string().openapi({
      example: '2024-03-01T21:00:00.000Z',
      description: 'The bar the values were computed at (its timestamp as stored), UTC.',
    }),
    values: z.record(z.string(), z.number().nullable()).openapi({
      example: { sma_20: 187.3, rsi_14: 55.1, macd: 1.2, macd_signal: 0.9 },
      description: 'Indicator name → value; null where the indicator is still warming up.',
    }),
  })
  .openapi('IndicatorRow');

const Risk = z
  .object({
    as_of: z.string().openapi({ example: '2024-03-01', description: 'Last session in the window.' }),
    window_days: z.number().int().openapi({ example: 250 }),
    volatility: z
      .number()
      .nullable()
      .openapi({ description: 'Volatility of the daily returns in the window.' }),
    var_95: z.number().nullable().openapi({ description: 'Historical 1-day VaR at 95%, a positive loss.' }),
    var_99: z.number().nullable(),
    es_95: z.number().nullable().openapi({ description: 'Expected shortfall beyond VaR 95%.' }),
    es_99: z.number().nullable(),
    beta: z.number().nullable(),
    benchmark: z.string().nullable().openapi({ example: 'SPY' }),
  })
  .openapi('RiskMetrics');

const Analytics = z
  .object({
    symbol: z.string().openapi({ example: 'AAPL' }),
    interval: z.enum(['1d', '5m']),
    count: z.number().int(),
    indicators: z.array(IndicatorRow).openapi({ description: 'Oldest first; the last row is the latest.' }),
    risk: Risk.nullable().openapi({ description: 'Latest risk metrics; null when none are computed yet.' }),
  })
  .openapi('Analytics');

export function analyticsRoutes(deps: Deps): RouteDef[] {
  const { repos } = deps;

  return [
    defineRoute({
      method: 'get',
      path: '/api/v2/analytics/{symbol}',
      summary: 'Latest indicators and risk',
      description:
        'The newest `limit` (default 1: just the latest) rows of stored indicators (SMA, EMA, RSI, MACD, Bollinger, ATR, slow stochastic, rolling standard deviation) on daily (`1d`) or 5-minute (`5m`) bars, oldest first, and the latest risk metrics (volatility, historical VaR and expected shortfall at 95/99%, beta against the benchmark).',
      tags: ['analytics'],
      access: 'results:read',
      params: symbolParams,
      query: z
        .object({
          interval: z.enum(['1d', '5m']).default('1d'),
          limit: decimalInt({ min: 1, max: 5000, default: 1 }),
        })
        .strict(),
      response: Analytics,
      errors: [404],
      async handler({ params, query }) {
        const sec = await securityOr404(deps, params.symbol);
        const [series, risk] = await Promise.all([
          repos.analytics.indicatorSeries(sec.id, query.interval, { limit: query.limit }),
          repos.analytics.latestRisk(sec.id),
        ]);
        return {
          symbol: sec.ticker,
          interval: query.interval,
          count: series.length,
          indicators: series.map((row) => ({ timestamp: row.ts.toISOString(), values: row.values })),
          risk: risk
            ? {
                as_of: risk.asOf,
                window_days: risk.windowDays,
                volatility: risk.volatility,
                var_95: risk.var95,
                var_99: risk.var99,
                es_95: risk.es95,
                es_99: risk.es99,
                beta: risk.beta,
                benchmark: risk.benchmark,
              }
            : null,
        };
      },
    }),
  ];
}
