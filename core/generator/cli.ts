/**
 * `npm run generate -- [--scale small|seed] [--seed N] [--securities N] [--years Y]
 * [--tick-sessions N] [--end-date YYYY-MM-DD] [--concurrency N]`: runs data.generate in this
 * process with a progress bar. Creates and migrates the database first if needed; rerunning an
 * interrupted large run resumes where it stopped.
 */
import { parseArgs } from 'node:util';
import cliProgress from 'cli-progress';
import { buildDeps, closeDeps } from '../deps.ts';
import { ensureDatabase } from '../db/knex.ts';
import { migrateLatest } from '../db/migrate.ts';
import { jobCatalogue } from '../../jobs/catalogue.ts';
import { issuesOf, parseDecimal } from '../input.ts';
import { dataGenerate } from '../../jobs/processors/data-generate.ts';
import { directContext, type JobContext } from '../../jobs/types.ts';

const { values } = parseArgs({
  options: {
    scale: { type: 'string' },
    seed: { type: 'string' },
    securities: { type: 'string' },
    years: { type: 'string' },
    'tick-sessions': { type: 'string' },
    'end-date': { type: 'string' },
    concurrency: { type: 'string' },
  },
  strict: true,
});

// Numbers are read strictly (core/input.ts): `0x10`, `1e3`, ` 5` and `` are usage errors naming
// the field, not 16, 1000, 5 and 0. Every bad flag is reported, then the catalogue's own checks.
const problems: string[] = [];
function numeric(field: string, text: string | undefined, integer: boolean): number | undefined {
  if (text === undefined) return undefined;
  const n = parseDecimal(text, { integer });
  if (n === undefined)
    problems.push(`${field}: must be ${integer ? 'an integer' : 'a number'} in decimal digits`);
  return n;
}
const given = {
  scale: values.scale,
  seed: numeric('seed', values.seed, true),
  securities: numeric('securities', values.securities, true),
  years: numeric('years', values.years, false),
  tickSessions: numeric('tickSessions', values['tick-sessions'], true),
  endDate: values['end-date'],
};
const concurrency = numeric('concurrency', values.concurrency, true);
if (concurrency !== undefined && (concurrency < 1 || concurrency > 64))
  problems.push('concurrency: must be from 1 to 64');
const parsed = jobCatalogue['data.generate'].schema.safeParse(
  Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined)),
);
if (!parsed.success)
  for (const issue of issuesOf(parsed.error)) problems.push(`${issue.path || 'arguments'}: ${issue.message}`);
if (problems.length > 0 || !parsed.success) {
  for (const line of problems) process.stderr.write(`${line}\n`);
  process.exit(2);
}
const payload = parsed.data;

const deps = buildDeps({ name: 'generate', poolMax: 4 });
await ensureDatabase(deps.config.db.url);
await migrateLatest(deps.db);

// The bar draws on a terminal only; piped output gets plain lines instead.
const tty = process.stderr.isTTY;
const bars = new cliProgress.MultiBar(
  { format: 'data.generate [{bar}] {percentage}%', hideCursor: true, clearOnComplete: false },
  cliProgress.Presets.shades_classic,
);
const bar = tty ? bars.create(100, 0) : null;
let lastTenth = -1;
const ctx: JobContext = {
  ...directContext(),
  async progress(percent) {
    if (bar) bar.update(percent);
    else if (Math.floor(percent / 10) !== lastTenth) {
      lastTenth = Math.floor(percent / 10);
      process.stderr.write(`progress ${Math.floor(percent)}%\n`);
    }
  },
  async log(line) {
    if (bar) bars.log(`${line}\n`);
    else process.stderr.write(`${line}\n`);
  },
};

let code = 0;
try {
  const result = await dataGenerate(deps, payload, ctx, concurrency === undefined ? {} : { concurrency });
  bars.stop();
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
} catch (err) {
  bars.stop();
  process.stderr.write(`data.generate failed: ${err instanceof Error ? err.message : String(err)}\n`);
  code = 1;
} finally {
  await closeDeps(deps);
}
process.exit(code);
