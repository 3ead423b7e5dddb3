/**
 * The one table of job options: attempts, backoff, tolerated worker losses, retention of finished
 * jobs, concurrency and schedules. Schedules are cron patterns in the exchange time zone (Job
 * Schedulers, upserted at worker boot). Read this file to know how any job retries and when it runs.
 *
 * Faults every job must ride out unattended:
 * - an outage (PostgreSQL, Redis, a provider) of minutes: failures back off along RETRY_SPAN
 *   (`capped` backoff: doubling from the table's delay up to RETRY_CAP_MS, then once per cap), so
 *   attempts are spread over about ten minutes rather than spent in seconds;
 * - worker loss (kill -9, OOM, a deploy's SIGKILL after its grace period): a job whose worker is gone
 *   goes back to waiting once its lock expires (JOB_LOCK_MS + JOB_STALLED_CHECK_MS) and resumes
 *   from its checkpoints; `stalls` is how many such losses one job survives (BullMQ's
 *   maxStalledCount, default 1, would fail a job on its second loss).
 * A step of the data.generate flow that still fails for good leaves the steps above it in
 * waiting-children; retrying that one failed job (Bull Board) carries the flow to its end.
 */
import type { JobsOptions, MinimalJob } from 'bullmq';
import { NYSE_TIME_ZONE } from '../core/calendar/nyse.ts';
import type { JobName } from './catalogue.ts';

export interface JobSchedule {
  /** Scheduler id; stable so upserting at every boot replaces rather than duplicates. */
  id: string;
  /** Cron pattern with seconds omitted, evaluated in `tz`. */
  pattern: string;
  tz: string;
  /** Payload the scheduler enqueues (validated against the catalogue at boot). */
  payload: Record<string, unknown>;
}

export interface JobTableEntry {
  job: JobsOptions;
  /**
   * Worker losses one job survives (BullMQ maxStalledCount): each time its worker dies the job is
   * taken over and resumes; one more loss than this fails it ("job stalled more than allowable limit").
   */
  stalls: number;
  /**
   * Long resumable jobs: when their worker shuts down (SIGTERM) they are asked (ctx.shutdown) to
   * stop at the next checkpoint and go back to waiting, instead of holding the shutdown for hours
   * until the supervisor's SIGKILL.
   */
  handsOff?: boolean;
  /** Jobs of this name one worker process runs at once (default: WORKER_CONCURRENCY). */
  concurrency?: number;
  schedules: JobSchedule[];
  /**
   * Laned jobs run in one queue per provider (`<name>.<provider>`, chosen by the payload's
   * `provider`), each with its own BullMQ limiter, so one provider's quota is shared by every
   * worker and a throttled provider pauses only its own lane.
   */
  lanes?: 'provider';
  /**
   * A BullMQ limiter on this job's workers. Jobs that call providers need one even when their own
   * pace is no concern: BullMQ's workers honour a `queue.rateLimit()` pause (what a 429 triggers)
   * only when they have a limiter, and without it another worker would take the job straight back.
   */
  limiter?: { max: number; duration: number };
}

/** Schedules run in the exchange calendar's time zone (the one source: core/calendar/nyse.ts). */
const NY = NYSE_TIME_ZONE;
const keep = { removeOnComplete: { age: 7 * 24 * 3600, count: 1000 }, removeOnFail: { age: 30 * 24 * 3600 } };
/** Longest wait between two attempts of the `capped` backoff. */
export const RETRY_CAP_MS = 60_000;
/** What the retries of a job that must converge unattended cover at least: minutes, not seconds. */
export const RETRY_SPAN_MS = 10 * 60_000;

/**
 * The `capped` backoff (the workers' backoffStrategy): the table's delay doubling per attempt up to
 * RETRY_CAP_MS, then once per cap. 15 attempts from 2 s: 2, 4, 8, 16, 32, then 60 s x 9 = 602 s.
 */
export function backoffDelay(attemptsMade: number, type?: string, _err?: Error, job?: MinimalJob): number {
  const backoff = job?.opts.backoff;
  const base = typeof backoff === 'object' ? (backoff.delay ?? 1_000) : (backoff ?? 1_000);
  if (type !== 'capped') throw new Error(`unknown backoff type "${type}"`);
  return Math.min(RETRY_CAP_MS, base * 2 ** Math.max(0, attemptsMade - 1));
}

/** Total wait between the first and the last attempt of a job's options (how long an outage it rides out). */
export function retrySpanMs(opts: JobsOptions): number {
  const attempts = opts.attempts ?? 1;
  const b = opts.backoff;
  let total = 0;
  for (let n = 1; n < attempts; n++) {
    if (b === undefined) break;
    if (typeof b === 'number') total += b;
    else if (b.type === 'capped')
      total += backoffDelay(n, 'capped', undefined, { opts: { backoff: b } } as unknown as MinimalJob);
    else if (b.type === 'exponential') total += (b.delay ?? 0) * 2 ** (n - 1);
    else total += b.delay ?? 0;
  }
  return total;
}

const retrying = { attempts: 15, backoff: { type: 'capped', delay: 2_000 } } as const;
/** Jobs that checkpoint and resume: each worker loss costs at most the chunk in flight. */
const RESUMABLE_STALLS = 50;
/** Idempotent jobs of seconds to minutes: a redo is cheap, but a job that kills its worker every time must stop. */
const STALLS = 10;

export const jobOptions: Record<JobName, JobTableEntry> = {
  'data.generate': {
    // Long and resumable: a retry or a takeover after worker loss continues from the last
    // checkpoint rather than starting over. A seed-scale run lasts hours, past any deploy's grace.
    job: { ...keep, ...retrying },
    stalls: RESUMABLE_STALLS,
    handsOff: true,
    concurrency: 1,
    schedules: [],
  },
  'bars.rollup-5m': {
    job: { ...keep, ...retrying },
    stalls: STALLS,
    // One rollup at a time per process: runs are set-based and cover every symbol.
    concurrency: 1,
    schedules: [{ id: 'bars.rollup-5m:every-5-minutes', pattern: '*/5 * * * *', tz: NY, payload: {} }],
  },
  'bars.rollup-1d': {
    job: { ...keep, ...retrying },
    stalls: STALLS,
    concurrency: 1,
    schedules: [
      // Incremental: a run costs in proportion to the 5-minute bars changed since the last, so
      // daily bars (and the analytics they trigger) follow one minute behind each 5-minute rollup.
      { id: 'bars.rollup-1d:every-5-minutes', pattern: '1-59/5 * * * *', tz: NY, payload: {} },
      // After the close (16:00) and after early closes' late prints have landed.
      { id: 'bars.rollup-1d:after-close', pattern: '20 16 * * 1-5', tz: NY, payload: {} },
    ],
  },
  'prices.fetch': {
    // A missed minute is not worth retrying: the next minute fetches newer prices.
    job: { removeOnComplete: { age: 3600, count: 200 }, removeOnFail: { age: 7 * 24 * 3600 }, attempts: 1 },
    stalls: STALLS,
    concurrency: 1,
    // Every minute 09:00–16:59 on weekdays; the processor checks the NYSE calendar (holidays,
    // early closes, the 09:30 open) and skips when the regular session is not open.
    schedules: [{ id: 'prices.fetch:every-minute', pattern: '* 9-16 * * 1-5', tz: NY, payload: {} }],
  },
  'prices.quote': {
    job: {
      removeOnComplete: { age: 3600, count: 5000 },
      removeOnFail: { age: 7 * 24 * 3600 },
      attempts: 3,
      backoff: { type: 'exponential', delay: 2_000 },
    },
    // Real time: a quote retried minutes later is stale, and the next minute's prices.fetch asks
    // again, so quotes (like prices.fetch) retry for seconds only.
    stalls: STALLS,
    concurrency: 4,
    schedules: [],
    lanes: 'provider',
  },
  'prices.backfill': {
    // Resumable from its checkpoint, so retries are cheap; transient provider faults back off. A
    // long history outlasts a deploy's grace period: at SIGTERM it stops between chunks and goes
    // back to waiting for another worker.
    job: { ...keep, ...retrying },
    stalls: RESUMABLE_STALLS,
    handsOff: true,
    concurrency: 1,
    schedules: [],
    limiter: { max: 60, duration: 60_000 },
  },
  'fx.rates': {
    job: { ...keep, ...retrying },
    stalls: STALLS,
    concurrency: 1,
    limiter: { max: 60, duration: 60_000 },
    // After the 16:00 close, when providers publish the day's rates.
    schedules: [{ id: 'fx.rates:daily', pattern: '30 17 * * 1-5', tz: NY, payload: {} }],
  },
  'analytics.indicators': {
    job: { ...keep, ...retrying },
    stalls: STALLS,
    concurrency: 1,
    // Normally chained by the rollups and daily backfills; this daily run is the safety net for a
    // chain lost between a rollup's commit and its enqueue. Cheap: only changed rows are written
    // (1,000 securities x 5 years with nothing changed: ~3 s).
    schedules: [
      {
        id: 'analytics.indicators:after-close',
        pattern: '40 16 * * 1-5',
        tz: NY,
        payload: { interval: '1d' },
      },
    ],
  },
  'analytics.risk': {
    job: { ...keep, ...retrying },
    stalls: STALLS,
    concurrency: 1,
    schedules: [{ id: 'analytics.risk:after-close', pattern: '45 16 * * 1-5', tz: NY, payload: {} }],
  },
  'corporate-actions.apply': {
    // Idempotent by its ledger: a retry, a second worker or a takeover skips what is applied.
    job: { ...keep, ...retrying },
    stalls: STALLS,
    concurrency: 1,
    // Before the open: actions going ex today change what the books hold from the first trade.
    // Cron cannot name trading days; on a holiday the run finds nothing new to apply.
    schedules: [{ id: 'corporate-actions.apply:pre-open', pattern: '0 8 * * 1-5', tz: NY, payload: {} }],
  },
  'holdings.snapshot': {
    job: { ...keep, ...retrying },
    stalls: STALLS,
    concurrency: 1,
    // After the close and the day's FX rates (17:30).
    schedules: [{ id: 'holdings.snapshot:after-close', pattern: '45 17 * * 1-5', tz: NY, payload: {} }],
  },
  'variance.quarterly': {
    job: { ...keep, ...retrying },
    stalls: STALLS,
    concurrency: 1,
    // "The first trading day after each quarter end, 06:00": cron fires on the first weekdays of
    // the quarter's first month and the job runs only on the first trading day (NYSE calendar).
    schedules: [
      {
        id: 'variance.quarterly:after-quarter-end',
        pattern: '0 6 1-7 1,4,7,10 1-5',
        tz: NY,
        payload: {},
      },
    ],
  },
  'margin.nightly': {
    job: { ...keep, ...retrying },
    stalls: STALLS,
    concurrency: 1,
    schedules: [{ id: 'margin.nightly:after-close', pattern: '15 17 * * 1-5', tz: NY, payload: {} }],
  },
  'margin.batch': {
    job: { ...keep, ...retrying },
    stalls: STALLS,
    // Each batch is one transaction that also waits on commits and Redis: four per host keep two
    // cores busy (bench/margin.ts: 100k clients ~15-25% faster than two on the 2-core machine).
    concurrency: 4,
    schedules: [],
  },
  'reports.variance-excel': {
    job: { ...keep, ...retrying },
    stalls: STALLS,
    // One render per process: each holds a streaming workbook and a database cursor.
    concurrency: 1,
    // Monthly, the first trading day at 07:00 for the month just ended (the job checks the day).
    schedules: [{ id: 'reports.variance-excel:monthly', pattern: '0 7 1-7 * 1-5', tz: NY, payload: {} }],
  },
  'maintenance.retention': {
    job: { ...keep, ...retrying },
    stalls: STALLS,
    concurrency: 1,
    schedules: [{ id: 'maintenance.retention:daily', pattern: '15 2 * * *', tz: NY, payload: {} }],
  },
};
