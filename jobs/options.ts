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
      { id: 'bars.rollup-1d:hourly', pattern: '7 * * * *', tz: NY, payload: {} },
      // After the close (16:00) and after early closes' late prints have landed.
      { id: 'bars.rollup-1d:after-close', pattern: '20 16 * * 1-5', tz: NY, payload: {} },
    ],
  },
};
