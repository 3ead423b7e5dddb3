/**
 * The one typed catalogue of jobs: each name maps to its payload schema (validated at the door,
 * by the API, the CLI and the worker alike) and a description. Processors take their argument
 * type from here (`JobPayload<'bars.rollup-5m'>`), never `any`.
 */
import { calendarDate as isoDate, dateRange, instant as isoDateTime, strictObject } from '../core/input.ts';
import { z } from '../core/zod.ts';

/**
 * The longest from/to range a job payload may name. Twice the 20 years data.generate can make;
 * a longer history is loaded as several jobs (each checkpointed on its own).
 */
export const MAX_RANGE_YEARS = 40;
const dates = dateRange({ kind: 'date', maxYears: MAX_RANGE_YEARS });
// Rollup ranges are half-open instants [from, to).
const instants = dateRange({ kind: 'instant', maxYears: MAX_RANGE_YEARS });
const currency = z.string().regex(/^[A-Z]{3}$/, 'must be an ISO 4217 code like EUR');
const ticker = z.string().regex(/^[A-Z0-9._=^-]{1,20}$/, 'must be an upper-case ticker');
const provider = z.enum(['synthetic', 'yahoo', 'alphavantage']);
const portfolioIds = z
  .array(z.string().regex(/^PORT-[0-9]{3,}$/, 'must be a portfolio id like PORT-001'))
  .min(1)
  .max(1000);
/** An accounting period: a quarter, a month, or an inclusive from/to; none = the job's default. */
const period = {
  quarter: z
    .string()
    .regex(/^[0-9]{4}Q[1-4]$/, 'must be a quarter like 2025Q1')
    .optional(),
  month: z
    .string()
    .regex(/^[0-9]{4}-(0[1-9]|1[0-2])$/, 'must be a month like 2025-03')
    .optional(),
  from: isoDate.optional(),
  to: isoDate.optional(),
  portfolioIds: portfolioIds.optional(),
};
/** At most one of quarter, month and from/to; from and to come together. */
function onePeriod(value: Record<string, unknown>, ctx: z.RefinementCtx): void {
  const given = ['quarter', 'month', 'from', 'to'].filter((k) => value[k] !== undefined);
  if (given.includes('quarter') && given.length > 1)
    ctx.addIssue({
      code: 'custom',
      path: ['quarter'],
      message: `give one of quarter, month or from/to, not ${given.join(' and ')}`,
    });
  else if (given.includes('month') && given.length > 1)
    ctx.addIssue({
      code: 'custom',
      path: ['month'],
      message: `give one of quarter, month or from/to, not ${given.join(' and ')}`,
    });
  else if (given.length === 1 && (given[0] === 'from' || given[0] === 'to'))
    ctx.addIssue({
      code: 'custom',
      path: [given[0] === 'from' ? 'to' : 'from'],
      message: 'from and to come together',
    });
  else dates(value, ctx);
}
const symbols = z
  .array(z.string().regex(/^[A-Z0-9._=^-]{1,20}$/, 'must be an upper-case ticker'))
  .min(1)
  .max(5000);

export const jobCatalogue = {
  'data.generate': {
    description:
      'Generates a deterministic synthetic dataset (reference data, clients, FX, corporate actions, daily prices, 20-second ticks).',
    schema: strictObject({
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
    }),
  },
  'bars.rollup-5m': {
    description: 'Rolls ticks into epoch-aligned 5-minute OHLCV+VWAP bars (set-based, idempotent).',
    schema: strictObject({
      from: isoDateTime.optional(),
      to: isoDateTime.optional(),
      symbols: symbols.optional(),
    }).superRefine(instants),
  },
  'bars.rollup-1d': {
    description: 'Rolls 5-minute bars into daily bars by New York session date (regular session only).',
    schema: strictObject({
      from: isoDate.optional(),
      to: isoDate.optional(),
      symbols: symbols.optional(),
    }).superRefine(dates),
  },
  'prices.fetch': {
    description:
      'Every minute in market hours: enqueues one prices.quote job per watch-list symbol into its provider lane (deduplicated per symbol).',
    schema: strictObject({
      symbols: symbols.optional(),
      /** Run even when the NYSE regular session is closed (manual trigger). */
      force: z.boolean().default(false),
    }),
  },
  'prices.quote': {
    description:
      'Fetches the latest price of one symbol from its provider (lane queue, rate-limited per provider) and stores it as a tick.',
    schema: strictObject({ symbol: ticker, provider }),
  },
  'prices.backfill': {
    description:
      'Loads price history over a date range in provider-sized chunks, checkpointed and resumable; mode "missing" fetches only sessions without bars.',
    schema: strictObject({
      symbols,
      from: isoDate,
      to: isoDate,
      interval: z.enum(['1d', '5m', '1m']).default('1d'),
      mode: z.enum(['all', 'missing']).default('all'),
      /** Override the securities' own providers (still never falls back to synthetic). */
      provider: provider.optional(),
    }).superRefine(dates),
  },
  'fx.rates': {
    description: 'Loads daily FX rates to the base currency (direct pairs, triangulated crosses).',
    schema: strictObject({
      from: isoDate.optional(),
      to: isoDate.optional(),
      currencies: z.array(currency).min(1).max(200).optional(),
      provider: provider.optional(),
    }).superRefine(dates),
  },
  'analytics.indicators': {
    description:
      'Computes SMA, EMA, RSI, MACD, Bollinger, ATR, slow stochastic and rolling standard deviation (TA-Lib definitions) from bars.',
    schema: strictObject({
      symbols: symbols.optional(),
      interval: z.enum(['1d', '5m']).default('1d'),
    }),
  },
  'analytics.risk': {
    description:
      'Computes volatility, historical VaR 95/99 (type 7), expected shortfall and beta against the benchmark from daily bars.',
    schema: strictObject({
      symbols: symbols.optional(),
      asOf: isoDate.optional(),
    }),
  },
  'corporate-actions.apply': {
    description:
      'Applies every corporate action whose date has come (splits, dividends, coupons, maturities) to portfolios and client accounts, exactly once per action revision (ledger), reversing corrected or cancelled ones.',
    schema: strictObject({
      asOf: isoDate.optional(),
      actionIds: z.array(z.string().min(1).max(200)).min(1).max(5000).optional(),
    }),
  },
  'holdings.snapshot': {
    description:
      'Derives each portfolio’s daily holdings from its trades and applied corporate actions, valued at the day’s close and FX in the base currency.',
    schema: strictObject({
      date: isoDate.optional(),
      from: isoDate.optional(),
      to: isoDate.optional(),
      portfolioIds: portfolioIds.optional(),
    }).superRefine((value, ctx) => {
      if (value.date !== undefined && (value.from !== undefined || value.to !== undefined))
        ctx.addIssue({ code: 'custom', path: ['date'], message: 'give date or from/to, not both' });
      else if ((value.from === undefined) !== (value.to === undefined))
        ctx.addIssue({
          code: 'custom',
          path: [value.from === undefined ? 'from' : 'to'],
          message: 'from and to come together',
        });
      else dates(value, ctx);
    }),
  },
  'variance.quarterly': {
    description:
      'Attributes each holding’s change in market value over a period to corporate-action, quantity, price and FX effects (SPEC §8, decimal, to the cent).',
    schema: strictObject(period).superRefine(onePeriod),
  },
  'margin.nightly': {
    description:
      'After the close: margin per client (FINRA 4210 + house rules) as a flow over client batches; writes snapshots and issues, updates or closes margin calls.',
    schema: strictObject({
      runDate: isoDate.optional(),
      clientIds: z.array(z.number().int().min(1).max(2_147_483_647)).min(1).max(100_000).optional(),
      // Set only on the flow parent the run adds over its margin.batch children: it sums them.
      finalize: z.literal(true).optional(),
    }),
  },
  'margin.batch': {
    description:
      'One batch of margin.nightly: the snapshots of a range of clients for one run date (set-based SQL).',
    schema: strictObject({
      runDate: isoDate,
      clientIds: z.array(z.number().int().min(1).max(2_147_483_647)).min(1).max(100_000),
    }),
  },
  'reports.variance-excel': {
    description:
      'Renders the variance attribution of a period as an Excel workbook (streamed), stores it and catalogues it in report_runs.',
    schema: strictObject(period).superRefine(onePeriod),
  },
  'maintenance.retention': {
    description:
      'Creates monthly partitions ahead of time and drops partitions wholly past each table’s retention.',
    schema: strictObject({ dryRun: z.boolean().default(false) }),
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
