/**
 * `npm run demo`: the whole product once, on a fresh machine. Creates and migrates the database,
 * starts the workers, runs data.generate -> bars.rollup-5m -> bars.rollup-1d ->
 * analytics.indicators -> analytics.risk -> corporate-actions.apply (as of the range's end) ->
 * holdings.snapshot (over the range) -> variance.quarterly (its last complete quarter) as one
 * BullMQ flow through the real queues with a progress display, prints each portfolio's variance
 * attribution for that quarter (workers/demo-summary.ts), puts a few equities on the watch list (prices.fetch quotes them every minute
 * in market hours, from the offline synthetic provider), then serves the API and Bull Board
 * (workers keep running, schedulers registered) and prints how to log in and get a token.
 *
 * On a terminal the JSON log goes to var/demo.log (or LOG_FILE), so that the progress bars and
 * plain lines are all a person sees; piped, the JSON log stays on stdout.
 *
 * Flags: --scale small|seed, --seed N, --securities N, --tick-sessions N, --years Y, --end-date YYYY-MM-DD,
 * --no-serve (exit after the pipeline).
 */
import { parseArgs } from 'node:util';
import type { Job } from 'bullmq';
import cliProgress from 'cli-progress';
import { loadConfig } from '../core/config.ts';
import { createDb, ensureDatabase } from '../core/db/knex.ts';
import { migrateLatest } from '../core/db/migrate.ts';
import { buildDeps, closeDeps } from '../core/deps.ts';
import { createRedis } from '../core/redis.ts';
import { closeApp, createApp } from '../api/app.ts';
import { createAuth } from '../api/auth/index.ts';
import { ensureDemoCredentials } from '../api/auth/cli.ts';
import { jobNames, type JobInput } from '../jobs/catalogue.ts';
import { datasetPlan, GeneratePayloadError } from '../core/generator/dataset.ts';
import { booksPeriod } from '../core/generator/periods.ts';
import { addGeneratePipeline, generatePipelineSteps } from '../jobs/flows.ts';
import { jobOptions } from '../jobs/options.ts';
import type { MarginPlanResult } from '../jobs/processors/margin.ts';
import { createQueues, progressPercent } from '../jobs/queues.ts';
import { startWorkers, upsertSchedulers } from '../jobs/worker-host.ts';
import { varianceSummaryLines } from './demo-summary.ts';
import { generateFlagOptions, generatePayloadFromFlags } from './generate-flags.ts';

const { values: args } = parseArgs({
  options: {
    ...generateFlagOptions,
    scale: { type: 'string', default: 'small' },
    seed: { type: 'string', default: '42' },
    'no-serve': { type: 'boolean', default: false },
  },
});

// Checked against the catalogue, strictly, before anything starts (workers/generate-flags.ts).
const bad: string[] = [];
const checked = generatePayloadFromFlags(args, bad);
if (bad.length > 0 || checked === undefined) {
  console.error(bad.join('\n'));
  process.exit(2);
}
let generate: JobInput<'data.generate'> = checked;

// A person at a terminal reads progress bars and plain lines; the JSON log goes to a file then
// (LOG_FILE, default var/demo.log). Piped or redirected, the JSON log stays on stdout.
const loaded = loadConfig();
const config =
  loaded.logFile === undefined && process.stdout.isTTY ? { ...loaded, logFile: 'var/demo.log' } : loaded;
if (config.logFile !== undefined) console.log(`JSON log: ${config.logFile}`);
const { created, name } = await ensureDatabase(config.db.url);
if (created) console.log(`created database ${name}`);
const migrator = createDb(config, { poolMax: 2 });
const applied = await migrateLatest(migrator);
await migrator.destroy();
console.log(applied.length ? `migrated: ${applied.join(', ')}` : 'schema up to date');

const deps = buildDeps({ name: 'demo', config });
// The range data.generate will cover (the dataset already in this database when no end date is
// given), so the books steps get their period explicitly: actions applied as of its end, daily
// books over it, the attribution of its last complete quarter.
let books: ReturnType<typeof booksPeriod>;
try {
  const { plan } = await datasetPlan(deps, checked);
  books = booksPeriod(plan);
  // The same end date, explicitly, so a session closing between now and the job cannot move it.
  generate = { ...checked, endDate: plan.to };
} catch (err) {
  if (!(err instanceof GeneratePayloadError)) throw err;
  console.error(err.message);
  await closeDeps(deps);
  process.exit(2);
}
const queues = createQueues(config);
// The demo runs the whole pipeline in this one process, whatever WORKER_GROUPS says.
const host = startWorkers(deps, { names: [...jobNames] });
await upsertSchedulers(queues);

const connection = createRedis(config);
const node = await addGeneratePipeline(config, connection, generate, undefined, books);
// A flow's root runs last: variance ← holdings ← actions ← risk ← indicators ← rollup-1d ←
// rollup-5m ← generate.
const chain: Job[] = [];
for (let n: typeof node | undefined = node; n; n = n.children?.[0]) chain.unshift(n.job);
const stepNames = generatePipelineSteps(generate, books).map((s) => s.name);
if (chain.length !== stepNames.length || chain.some((j, i) => j.name !== stepNames[i]))
  throw new Error('pipeline flow was not created as expected');
const steps: [string, Job][] = chain.map((job) => [job.name, job]);

const bars = new cliProgress.MultiBar(
  {
    format: ' {step} |{bar}| {percentage}% {state}',
    hideCursor: true,
    clearOnComplete: false,
    noTTYOutput: true,
    notTTYSchedule: 5000,
  },
  cliProgress.Presets.shades_classic,
);
const bar = new Map(
  steps.map(([step]) => [step, bars.create(100, 0, { step: step.padEnd(24), state: 'waiting' })]),
);
const started = Date.now();
let failure: string | undefined;
for (;;) {
  const states = await Promise.all(
    steps.map(async ([step, job]) => {
      const fresh = await queues.byQueueName(step)!.getJob(job.id!);
      const state = fresh ? await fresh.getState() : 'unknown';
      const progress = progressPercent(fresh?.progress);
      bar.get(step)?.update(state === 'completed' ? 100 : progress, { state });
      if (state === 'failed') failure = `${step} failed: ${fresh?.failedReason ?? 'unknown reason'}`;
      return state;
    }),
  );
  if (failure || states.every((s) => s === 'completed')) break;
  await new Promise((r) => setTimeout(r, 500));
}
bars.stop();

const shutdownAll = async (): Promise<void> => {
  await host.close();
  await queues.close();
  await connection.quit();
  await closeDeps(deps);
};
if (failure) {
  console.error(`\n${failure}\nOpen Bull Board (npm run start:api) to read the job's log.`);
  await shutdownAll();
  process.exit(1);
}
const results = await Promise.all(
  steps.map(
    async ([step, job]) =>
      [step, summary((await queues.byQueueName(step)!.getJob(job.id!))?.returnvalue)] as const,
  ),
);
console.log(`\npipeline finished in ${((Date.now() - started) / 1000).toFixed(1)} s`);
for (const [step, result] of results) console.log(`  ${step}: ${JSON.stringify(result)}`);
console.log('');
const summaryRows = books.quarter === null ? [] : await deps.repos.generator.varianceSummary(books.quarter);
for (const line of varianceSummaryLines(books.quarter, summaryRows)) console.log(`  ${line}`);

// The nightly margin run for the range's last session, as the 17:15 schedule would run it: the
// planning job adds the flow of batches, whose parent sums them.
const marginDate = generate.endDate ?? books.asOf;
const marginOutcome = await runAndWait(
  await queues.enqueue('margin.nightly', { runDate: marginDate }, jobOptions['margin.nightly'].job),
);
const finalizeId = (marginOutcome.result as MarginPlanResult | undefined)?.finalizeJobId;
const finalOutcome =
  marginOutcome.failure === undefined && finalizeId !== undefined
    ? await runAndWait(await queues.get('margin.nightly').getJob(finalizeId))
    : marginOutcome;
if (finalOutcome.failure !== undefined) {
  console.error(`\nmargin.nightly failed: ${finalOutcome.failure}`);
} else {
  const night = await deps.repos.margin.nightSummary(marginDate);
  const called = night.filter((n) => n.inCall);
  const flagged = night.filter((n) => n.flag !== null);
  console.log(
    `\n  margin ${marginDate}: ${night.length} clients, ${called.length} in call` +
      (called.length ? ` (${called.map((n) => `${n.clientCode} ${n.shortfall}`).join(', ')})` : '') +
      (flagged.length
        ? `, ${flagged.length} flagged (${flagged.map((n) => `${n.clientCode}: ${n.flag}`).join(', ')})`
        : ''),
  );
}

// The quarter's workbook, rendered by the flow's last step (reports.variance-excel).
const report = results.find(([step]) => step === 'reports.variance-excel')?.[1] as
  { runId: number; period: string; rows: number; bytes: number } | undefined;
if (report?.runId !== undefined)
  console.log(
    `  report: ${report.period} workbook, run ${report.runId}, ${report.rows} rows, ${report.bytes} bytes`,
  );

const watched = await deps.repos.watchlist.list();
if (watched.length === 0) {
  for (const id of await deps.repos.bars.sampleEquityIds(5)) await deps.repos.watchlist.add(id, 'demo');
}
const watchlist = (await deps.repos.watchlist.list()).map((w) => w.ticker);
console.log(`  watch list (prices.fetch every minute in market hours): ${watchlist.join(', ')}`);

if (args['no-serve']) {
  await shutdownAll();
  process.exit(0);
}

const auth = await createAuth(deps);
const app = await createApp(deps, { queues, auth });
const creds = await ensureDemoCredentials(deps);
const sampleSymbol = await deps.repos.bars.sampleSymbolWith5m();
const server = app.listen(config.api.port, config.api.host, () => {
  const base = config.api.publicUrl;
  console.log(`
API and Bull Board: ${base}   (docs: ${base}/docs)
Bull Board:  ${base}/admin/queues   log in as "${creds.operator.username}" / "${creds.operator.password}"
Token:       curl -s -u '${creds.client.clientId}:${creds.client.clientSecret}' -d grant_type=client_credentials ${base}/oauth/token
Bars:        curl -s -H "Authorization: Bearer $TOKEN" ${base}/api/v2/intraday/prices/${sampleSymbol ?? 'SYMBOL'}?interval=5min\\&limit=5
Analytics:   curl -s -H "Authorization: Bearer $TOKEN" ${base}/api/v2/analytics/${sampleSymbol ?? 'SYMBOL'}
Price:       curl -s -H "Authorization: Bearer $TOKEN" ${base}/stocks/${watchlist[0] ?? 'SYMBOL'}
Variance:    curl -s -H "Authorization: Bearer $TOKEN" ${base}/api/variance/portfolio/PORT-001${books.quarter ? `?quarter=${books.quarter}` : ''}
Margin:      curl -s -H "Authorization: Bearer $TOKEN" ${base}/margin/1   (calls: ${base}/api/margin/calls)${
    report
      ? `
Report:      curl -s -H "Authorization: Bearer $TOKEN" -OJ ${base}/api/reports/${report.runId}/download   (${report.period}, ${report.rows} rows, ${report.bytes} bytes)`
      : ''
  }
Workers keep running with their schedules; Ctrl-C stops everything cleanly.`);
});

/** Waits for a job to complete or fail for good (polling, like the progress display). */
async function runAndWait(job: Job | undefined): Promise<{ result?: unknown; failure?: string }> {
  if (!job?.id) return { failure: 'the job was not created' };
  for (;;) {
    const fresh = await queues.byQueueName(job.queueName)!.getJob(job.id);
    const state = fresh ? await fresh.getState() : 'unknown';
    if (state === 'completed') return { result: fresh?.returnvalue };
    if (state === 'failed' || state === 'unknown')
      return { failure: fresh?.failedReason ?? `job ${job.id} is ${state}` };
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** A job result for the terminal: long per-symbol maps cut down to their size. */
function summary(result: unknown): unknown {
  if (typeof result !== 'object' || result === null) return result;
  return Object.fromEntries(
    Object.entries(result).map(([k, v]) =>
      Array.isArray(v) && v.length > 5 ? [k, `${v.length} items`] : [k, v],
    ),
  );
}

let stopping = false;
const stop = async (signal: string): Promise<void> => {
  if (stopping) return;
  stopping = true;
  console.log(`\n${signal}: stopping`);
  await new Promise<void>((r) => server.close(() => r()));
  await closeApp(app);
  await auth.close();
  await shutdownAll();
  process.exit(0);
};
process.on('SIGINT', () => void stop('SIGINT'));
process.on('SIGTERM', () => void stop('SIGTERM'));
