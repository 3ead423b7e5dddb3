/**
 * The one typed catalogue of jobs: each name maps to its payload schema (validated at the door,
 * by the API, the CLI and the worker alike) and a description. Processors take their argument
 * type from here (`JobPayload<'bars.rollup-5m'>`), never `any`.
 */
import { z } from '../core/zod.ts';

const isoDate = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'must be a date YYYY-MM-DD');
const isoDateTime = z.iso.datetime({ offset: true });
const currency = z.string().regex(/^[A-Z]{3}$/, 'must be an ISO 4217 code like EUR');
const ticker = z.string().regex(/^[A-Z0-9._=^-]{1,20}$/, 'must be an upper-case ticker');
const provider = z.enum(['synthetic', 'yahoo', 'alphavantage']);
const symbols = z
  .array(z.string().regex(/^[A-Z0-9._=^-]{1,20}$/, 'must be an upper-case ticker'))
  .min(1)
  .max(5000);

export const jobCatalogue = {
  'data.generate': {
    description:
      'Generates a deterministic synthetic dataset (reference data, clients, FX, corporate actions, daily prices, 20-second ticks).',
    schema: z
      .object({
        seed: z
          .number()
          .int()
          .min(0)
          .max(2 ** 31 - 1)
          .default(42),
        scale: z.enum(['small', 'seed']).default('small'),
        securities: z.number().int().min(1).max(5000).optional(),
        years: z.number().min(0.1).max(20).optional(),
        tickSessions: z.number().int().min(0).max(5000).optional(),
        endDate: isoDate.optional(),
      })
      .strict(),
  },
  'bars.rollup-5m': {
    description: 'Rolls ticks into epoch-aligned 5-minute OHLCV+VWAP bars (set-based, idempotent).',
    schema: z
      .object({
        from: isoDateTime.optional(),
        to: isoDateTime.optional(),
        symbols: symbols.optional(),
      })
      .strict(),
  },
  'bars.rollup-1d': {
    description: 'Rolls 5-minute bars into daily bars by New York session date (regular session only).',
    schema: z
      .object({
        from: isoDate.optional(),
        to: isoDate.optional(),
        symbols: symbols.optional(),
      })
      .strict(),
  },
  'prices.fetch': {
    description:
      'Every minute in market hours: enqueues one prices.quote job per watch-list symbol into its provider lane (deduplicated per symbol).',
    schema: z
      .object({
        symbols: symbols.optional(),
        /** Run even when the NYSE regular session is closed (manual trigger). */
        force: z.boolean().default(false),
      })
      .strict(),
  },
  'prices.quote': {
    description:
      'Fetches the latest price of one symbol from its provider (lane queue, rate-limited per provider) and stores it as a tick.',
    schema: z.object({ symbol: ticker, provider }).strict(),
  },
  'prices.backfill': {
    description:
      'Loads price history over a date range in provider-sized chunks, checkpointed and resumable; mode "missing" fetches only sessions without bars.',
    schema: z
      .object({
        symbols,
        from: isoDate,
        to: isoDate,
        interval: z.enum(['1d', '5m', '1m']).default('1d'),
        mode: z.enum(['all', 'missing']).default('all'),
        /** Override the securities' own providers (still never falls back to synthetic). */
        provider: provider.optional(),
      })
      .strict(),
  },
  'fx.rates': {
    description: 'Loads daily FX rates to the base currency (direct pairs, triangulated crosses).',
    schema: z
      .object({
        from: isoDate.optional(),
        to: isoDate.optional(),
        currencies: z.array(currency).min(1).max(200).optional(),
        provider: provider.optional(),
      })
      .strict(),
  },
  'analytics.indicators': {
    description:
      'Computes SMA, EMA, RSI, MACD, Bollinger, ATR, slow stochastic and rolling standard deviation (TA-Lib definitions) from bars.',
    schema: z
      .object({
        symbols: symbols.optional(),
        interval: z.enum(['1d', '5m']).default('1d'),
      })
      .strict(),
  },
  'analytics.risk': {
    description:
      'Computes volatility, historical VaR 95/99 (type 7), expected shortfall and beta against the benchmark from daily bars.',
    schema: z
      .object({
        symbols: symbols.optional(),
        asOf: isoDate.optional(),
      })
      .strict(),
  },
  'maintenance.retention': {
    description:
      'Creates monthly partitions ahead of time and drops partitions wholly past each table’s retention.',
    schema: z.object({ dryRun: z.boolean().default(false) }).strict(),
  },
} as const satisfies Record<string, { description: string; schema: z.ZodType }>;

export type JobName = keyof typeof jobCatalogue;
export type JobPayload<N extends JobName> = z.output<(typeof jobCatalogue)[N]['schema']>;
export type JobInput<N extends JobName> = z.input<(typeof jobCatalogue)[N]['schema']>;
export const jobNames = Object.keys(jobCatalogue) as JobName[];

export function isJobName(name: string): name is JobName {
  return Object.hasOwn(jobCatalogue, name);
}

/** Validates a payload for a job, throwing a ZodError whose issues name the bad fields. */
export function parsePayload<N extends JobName>(name: N, payload: unknown): JobPayload<N> {
  return jobCatalogue[name].schema.parse(payload ?? {}) as JobPayload<N>;
}
