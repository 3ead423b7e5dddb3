/**
 * The one typed catalogue of jobs: each name maps to its payload schema (validated at the door,
 * by the API, the CLI and the worker alike) and a description. Processors take their argument
 * type from here (`JobPayload<'bars.rollup-5m'>`), never `any`.
 */
import { z } from 'zod';

const isoDate = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'must be a date YYYY-MM-DD');
const isoDateTime = z.iso.datetime({ offset: true });
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
