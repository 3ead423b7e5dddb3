/**
 * `npm run generate -- [--scale small|seed] [--seed N] [--securities N] [--years Y]
 * [--tick-sessions N] [--end-date YYYY-MM-DD] [--concurrency N]`: runs data.generate in this
 * process with a progress bar. Creates and migrates the database first if needed; rerunning an
 * interrupted large run resumes where it stopped.
 */
import { parseArgs } from 'node:util';
import cliProgress from 'cli-progress';
import { loadConfig } from '../core/config.ts';
import { buildDeps, closeDeps } from '../core/deps.ts';
import { ensureDatabase } from '../core/db/knex.ts';
import { migrateLatest } from '../core/db/migrate.ts';
import { dataGenerate } from '../jobs/processors/data-generate.ts';
import { directContext, type JobContext } from '../jobs/types.ts';
import { generateFlagOptions, generatePayloadFromFlags, numericFlag } from './generate-flags.ts';

const { values } = parseArgs({
  options: { ...generateFlagOptions, concurrency: { type: 'string' } },
  strict: true,
});

const problems: string[] = [];
const generated = generatePayloadFromFlags(values, problems);
const concurrency = numericFlag(problems, 'concurrency', values.concurrency, true);
if (concurrency !== undefined && (concurrency < 1 || concurrency > 64))
  problems.push('concurrency: must be from 1 to 64');
if (problems.length > 0 || generated === undefined) {
  for (const line of problems) process.stderr.write(`${line}\n`);
  process.exit(2);
}
const payload = generated;

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
