/**
 * The shared zod building blocks for input at every door: job payloads (jobs/catalogue.ts, so the
 * API, the CLIs, the Job Schedulers and the worker all check the same thing) and the API's path
 * and query parsers (api/http.ts, api/routes/*). What a value means is checked here, where the
 * schema is, so a bad value is a 4xx (or a CLI usage error) naming the field, never an accepted
 * job that fails later.
 *
 * - `calendarDate`: a real date `YYYY-MM-DD` (no 2024-02-30, no month 13) between MIN_DATE and
 *   MAX_DATE; `instant`: an ISO-8601 date-time with an offset whose date part is real, too.
 * - `dateRange()`: the refinement for an object's from/to pair: from ≤ to (from < to for a
 *   half-open instant range) and a maximum span.
 * - `strictObject()`: unknown keys are refused, `__proto__` and `constructor` included (zod sees
 *   them as the own keys JSON.parse makes them; never run a body through a schema that copies
 *   keys, e.g. z.record, before this one sees it: assigning `__proto__` drops the key).
 * - `decimalInt()` / `decimalNumber()`: numbers written as text (query strings, CLI flags), strictly
 *   decimal: `0x10`, `1e3`, `" 5"`, `"5 "`, `""`, `05` and repeated parameters are refused,
 *   where Number() and z.coerce.number() accept most of them.
 */
import { z } from './zod.ts';

export const MIN_DATE = '1900-01-01';
export const MAX_DATE = '2099-12-31';

/**
 * The message for a value that is not a date: a repeated query parameter, not a string, the wrong
 * form, or the right form naming no such day (2024-02-30, month 13) or time (25:00).
 */
function dateError(form: string, shape: RegExp, real: string): (iss: { input?: unknown }) => string {
  return (iss) => {
    if (Array.isArray(iss.input)) return `must be given once, as a string: ${form}`;
    if (typeof iss.input !== 'string') return `must be a string: ${form}`;
    return shape.test(iss.input) ? `must be ${real}` : `must be ${form}`;
  };
}

/** A real calendar date YYYY-MM-DD within [MIN_DATE, MAX_DATE]. */
export const calendarDate = z.iso
  .date({ error: dateError('a date YYYY-MM-DD', /^\d{4}-\d{2}-\d{2}$/, 'a real calendar date'), abort: true })
  .refine((d) => d >= MIN_DATE && d <= MAX_DATE, {
    message: `must be between ${MIN_DATE} and ${MAX_DATE}`,
    abort: true,
  });

/** An ISO-8601 date-time with `Z` or an offset (zod checks the date part is a real date). */
export const instant = z.iso
  .datetime({
    offset: true,
    error: dateError(
      'an ISO-8601 date-time with Z or an offset',
      /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})$/,
      'a real calendar date and time',
    ),
    abort: true,
  })
  .refine(
    (s) => {
      const d = new Date(Date.parse(s)).toISOString().slice(0, 10);
      return d >= MIN_DATE && d <= MAX_DATE;
    },
    { message: `must be between ${MIN_DATE} and ${MAX_DATE}`, abort: true },
  );

/** An object that refuses keys it does not declare (reported per key as "unknown field"). */
export function strictObject<S extends z.core.$ZodLooseShape>(shape: S): z.ZodObject<S, z.core.$strict> {
  return z.strictObject(shape);
}

function addYears(ms: number, years: number): number {
  const d = new Date(ms);
  const day = d.getUTCDate();
  d.setUTCDate(1);
  d.setUTCFullYear(d.getUTCFullYear() + years);
  // Feb 29 plus a year is Feb 28, not Mar 1.
  const last = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 0)).getUTCDate();
  d.setUTCDate(Math.min(day, last));
  return d.getTime();
}

/**
 * The refinement of a from/to pair on an object schema (`schema.superRefine(dateRange(...))`).
 * Dates are inclusive (from ≤ to); instants are half-open [from, to), so from < to. The span is
 * at most `maxYears` calendar years. Issues are reported on the `from` field. A missing bound is
 * the job's own default and is not checked here.
 */
export function dateRange(opts: {
  from?: string;
  to?: string;
  maxYears: number;
  kind: 'date' | 'instant';
}): (value: Record<string, unknown>, ctx: z.RefinementCtx) => void {
  const fromKey = opts.from ?? 'from';
  const toKey = opts.to ?? 'to';
  return (value, ctx) => {
    const from = value[fromKey];
    const to = value[toKey];
    if (typeof from !== 'string' || typeof to !== 'string') return;
    const a = Date.parse(opts.kind === 'date' ? `${from}T00:00:00Z` : from);
    const b = Date.parse(opts.kind === 'date' ? `${to}T00:00:00Z` : to);
    if (!Number.isFinite(a) || !Number.isFinite(b)) return;
    if (opts.kind === 'date' ? a > b : a >= b) {
      ctx.addIssue({
        code: 'custom',
        path: [fromKey],
        message: `must be ${opts.kind === 'date' ? 'on or before' : 'before'} ${toKey} (${to})`,
      });
    } else if (b > addYears(a, opts.maxYears)) {
      ctx.addIssue({
        code: 'custom',
        path: [fromKey],
        message: `range to ${toKey} must not exceed ${opts.maxYears} years`,
      });
    }
  };
}

const INT_TEXT = /^(?:0|-?[1-9][0-9]*)$/;
const NUMBER_TEXT = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?$/;

/** Reads a number written as text, strictly decimal; undefined when it is not one. */
export function parseDecimal(text: string, opts: { integer?: boolean } = {}): number | undefined {
  if (!(opts.integer ? INT_TEXT : NUMBER_TEXT).test(text)) return undefined;
  const n = Number(text);
  if (!Number.isFinite(n) || (opts.integer && !Number.isSafeInteger(n))) return undefined;
  return n;
}

interface DecimalOptions {
  min: number;
  max: number;
  /** Used when the parameter is absent (documented as the default). */
  default?: number;
}

function decimalText(opts: DecimalOptions, integer: boolean) {
  const what = integer ? 'an integer' : 'a number';
  const range = `must be ${what} from ${opts.min} to ${opts.max}`;
  return (
    z
      .string({
        error: (iss) =>
          Array.isArray(iss.input) ? 'must be given once' : `must be ${what} in decimal digits`,
      })
      .regex(integer ? INT_TEXT : NUMBER_TEXT, {
        message: `must be ${what} in decimal digits (no sign other than -, spaces, exponent or hex)`,
        abort: true,
      })
      .transform(Number)
      .pipe(z.number().min(opts.min, range).max(opts.max, range))
      // The document shows the parsed value (a number with its bounds), not the text pattern.
      .meta({
        type: integer ? 'integer' : 'number',
        minimum: opts.min,
        maximum: opts.max,
        ...(opts.default === undefined ? {} : { default: opts.default }),
      } as Record<string, unknown>)
  );
}

type DecimalText = ReturnType<typeof decimalText>;

function decimal(
  opts: DecimalOptions,
  integer: boolean,
): z.ZodDefault<DecimalText> | z.ZodOptional<DecimalText> {
  const text = decimalText(opts, integer);
  return opts.default === undefined ? text.optional() : text.default(opts.default);
}

/**
 * The one strict integer parser for numbers that arrive as text (query strings, CLI flags):
 * decimal digits with an optional leading `-`, within [min, max]; a repeated query parameter
 * (`?limit=1&limit=2`, an array) is refused. Optional unless `default` is given.
 */
export function decimalInt(opts: DecimalOptions & { default: number }): z.ZodDefault<DecimalText>;
export function decimalInt(opts: DecimalOptions): z.ZodOptional<DecimalText>;
export function decimalInt(opts: DecimalOptions): z.ZodDefault<DecimalText> | z.ZodOptional<DecimalText> {
  return decimal(opts, true);
}

/** As decimalInt, for numbers that may have a fractional part (`0.5`, never `.5` or `5.`). */
export function decimalNumber(opts: DecimalOptions & { default: number }): z.ZodDefault<DecimalText>;
export function decimalNumber(opts: DecimalOptions): z.ZodOptional<DecimalText>;
export function decimalNumber(opts: DecimalOptions): z.ZodDefault<DecimalText> | z.ZodOptional<DecimalText> {
  return decimal(opts, false);
}

export interface FieldIssue {
  /** Dotted path of the field (`symbols.3`), empty for the whole input. */
  path: string;
  message: string;
}

/** Zod issues as one entry per field; an unknown key is reported as its own field. */
export function issuesOf(error: z.ZodError): FieldIssue[] {
  return error.issues.flatMap((issue) => {
    const at = issue.path.map(String).join('.');
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => ({ path: at ? `${at}.${key}` : key, message: 'unknown field' }));
    }
    return [{ path: at, message: issue.message }];
  });
}

/** `field: message; field: message`, for logs, job failures and CLI errors. */
export function describeIssues(error: z.ZodError, whole = '(payload)'): string {
  return issuesOf(error)
    .map((i) => `${i.path || whole}: ${i.message}`)
    .join('; ');
}
