/**
 * The one table of job options: attempts, backoff, retention of finished jobs, concurrency and
 * schedules. Schedules are cron patterns in the exchange time zone (Job Schedulers, upserted at
 * worker boot). Read this file to know how any job retries and when it runs.
 */
import type { JobsOptions } from 'bullmq';
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

const NY = 'America/New_York';
const keep = { removeOnComplete: { age: 7 * 24 * 3600, count: 1000 }, removeOnFail: { age: 30 * 24 * 3600 } };
const retrying = { attempts: 5, backoff: { type: 'exponential', delay: 5_000 } } as const;

export const jobOptions: Record<JobName, JobTableEntry> = {
  'data.generate': {
    // Long and resumable: a retry continues from the last checkpoint rather than starting over.
    job: { ...keep, attempts: 3, backoff: { type: 'exponential', delay: 10_000 } },
    concurrency: 1,
    schedules: [],
  },
  'bars.rollup-5m': {
    job: { ...keep, ...retrying },
    // One rollup at a time per process: runs are set-based and cover every symbol.
    concurrency: 1,
    schedules: [{ id: 'bars.rollup-5m:every-5-minutes', pattern: '*/5 * * * *', tz: NY, payload: {} }],
  },
  'bars.rollup-1d': {
    job: { ...keep, ...retrying },
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
    concurrency: 4,
    schedules: [],
    lanes: 'provider',
  },
  'prices.backfill': {
    // Resumable from its checkpoint, so retries are cheap; transient provider faults back off.
    job: { ...keep, attempts: 8, backoff: { type: 'exponential', delay: 10_000 } },
    concurrency: 1,
    schedules: [],
    limiter: { max: 60, duration: 60_000 },
  },
  'fx.rates': {
    job: { ...keep, ...retrying },
    concurrency: 1,
    limiter: { max: 60, duration: 60_000 },
    // After the 16:00 close, when providers publish the day's rates.
    schedules: [{ id: 'fx.rates:daily', pattern: '30 17 * * 1-5', tz: NY, payload: {} }],
  },
  'analytics.indicators': {
    job: { ...keep, ...retrying },
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
    concurrency: 1,
    schedules: [{ id: 'analytics.risk:after-close', pattern: '45 16 * * 1-5', tz: NY, payload: {} }],
  },
  'maintenance.retention': {
    job: { ...keep, ...retrying },
    concurrency: 1,
    schedules: [{ id: 'maintenance.retention:daily', pattern: '15 2 * * *', tz: NY, payload: {} }],
  },
};
