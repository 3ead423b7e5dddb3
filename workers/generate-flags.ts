/**
 * The data.generate flags that `npm run generate` and `npm run demo` share, read strictly
 * (core/input.ts: `0x10`, `1e3`, ` 5` and `` are usage errors naming the flag, not 16, 1000, 5 and
 * 0), then checked by the catalogue's own schema. Every problem is reported, one line each.
 */
import { issuesOf, parseDecimal } from '../core/input.ts';
import { jobCatalogue, type JobPayload } from '../jobs/catalogue.ts';

/** parseArgs option declarations for the shared flags. */
export const generateFlagOptions = {
  scale: { type: 'string' },
  seed: { type: 'string' },
  securities: { type: 'string' },
  years: { type: 'string' },
  'tick-sessions': { type: 'string' },
  'end-date': { type: 'string' },
} as const;

export type GenerateFlags = Partial<Record<keyof typeof generateFlagOptions, string>>;

/** A number flag read strictly; a bad one is pushed onto `problems` as `<field>: …`. */
export function numericFlag(
  problems: string[],
  field: string,
  text: string | undefined,
  integer: boolean,
): number | undefined {
  if (text === undefined) return undefined;
  const n = parseDecimal(text, { integer });
  if (n === undefined)
    problems.push(`${field}: must be ${integer ? 'an integer' : 'a number'} in decimal digits`);
  return n;
}

export function generatePayloadFromFlags(
  flags: GenerateFlags,
  problems: string[],
): JobPayload<'data.generate'> | undefined {
  const given = {
    scale: flags.scale,
    seed: numericFlag(problems, 'seed', flags.seed, true),
    securities: numericFlag(problems, 'securities', flags.securities, true),
    years: numericFlag(problems, 'years', flags.years, false),
    tickSessions: numericFlag(problems, 'tickSessions', flags['tick-sessions'], true),
    endDate: flags['end-date'],
  };
  const parsed = jobCatalogue['data.generate'].schema.safeParse(
    Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined)),
  );
  if (!parsed.success) {
    for (const issue of issuesOf(parsed.error))
      problems.push(`${issue.path || 'arguments'}: ${issue.message}`);
    return undefined;
  }
  return parsed.data;
}
