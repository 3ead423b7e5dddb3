/**
 * `npm run generate -- [--scale small|seed] [--seed N] [--securities N] [--years Y]
 * [--tick-sessions N] [--end-date YYYY-MM-DD] [--concurrency N]`: runs data.generate in this
 * process with a progress bar. Creates and migrates the database first if needed; rerunning an
 * interrupted large run resumes where it stopped.
 */
import { parseArgs } from 'node:util';
import cliProgress from 'cli-progress';
import { ZodError } from 'zod';
import { loadConfig } from '../core/config.ts';
import { buildDeps, closeDeps } from '../core/deps.ts';
import { ensureDatabase } from '../core/db/knex.ts';
import { migrateLatest } from '../core/db/migrate.ts';
import { parsePayload } from '../jobs/catalogue.ts';
import { dataGenerate } from '../jobs/processors/data-generate.ts';
import { directContext, type JobContext } from '../jobs/types.ts';

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

const num = (v: string | undefined): number | undefined => (v === undefined ? undefined : Number(v));
let payload;
try {
  payload = parsePayload('data.generate', {
    ...(values.scale !== undefined && { scale: values.scale }),
    ...(values.seed !== undefined && { seed: num(values.seed) }),
    ...(values.securities !== undefined && { securities: num(values.securities) }),
    ...(values.years !== undefined && { years: num(values.years) }),
    ...(values['tick-sessions'] !== undefined && { tickSessions: num(values['tick-sessions']) }),
    ...(values['end-date'] !== undefined && { endDate: values['end-date'] }),
  });
} catch (err) {
  if (!(err instanceof ZodError)) throw err;
  for (const issue of err.issues)
    process.stderr.write(`${issue.path.join('.') || 'arguments'}: ${issue.message}\n`);
  process.exit(2);
}

// On a terminal the JSON log goes to a file (LOG_FILE, default var/generate.log) so that it does
// not interleave with the progress bar.
const loaded = loadConfig();
const config =
  loaded.logFile === undefined && process.stderr.isTTY ? { ...loaded, logFile: 'var/generate.log' } : loaded;
const deps = buildDeps({ name: 'generate', poolMax: 4, config });
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
  const concurrency = num(values.concurrency);
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
