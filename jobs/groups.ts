/**
 * Worker groups: which queues a worker process serves (WORKER_GROUPS), so heavy rollups and
 * analytics scale apart from the minute-by-minute quotes. One table; every job belongs to exactly
 * one group (the record is typed by the catalogue's names, and a test checks the partition).
 *
 * A WORKER_GROUPS entry is a group below, `all`, a job name (all its queues: `prices.quote` = every
 * provider lane) or one queue name (`prices.quote.yahoo`). Anything else refuses to start.
 */
import { jobNames, type JobName } from './catalogue.ts';
import { allQueueNames, queueNamesOf } from './queues.ts';

export const WORKER_GROUPS = [
  'quotes',
  'ingest',
  'rollups',
  'analytics',
  'books',
  'margin',
  'reports',
  'maintenance',
] as const;
export type WorkerGroup = (typeof WORKER_GROUPS)[number];

export const groupOf: Record<JobName, WorkerGroup> = {
  // Every minute in market hours, light and latency-bound: the minute's quote must not queue
  // behind a month-sized rollup.
  'prices.fetch': 'quotes',
  'prices.quote': 'quotes',
  // Long, bulk loads.
  'data.generate': 'ingest',
  'prices.backfill': 'ingest',
  'fx.rates': 'ingest',
  // Set-based SQL over every symbol: database-heavy.
  'bars.rollup-5m': 'rollups',
  'bars.rollup-1d': 'rollups',
  // CPU-heavy in the worker (indicators, risk).
  'analytics.indicators': 'analytics',
  'analytics.risk': 'analytics',
  // Portfolio accounting: set-based SQL in decimal, daily and quarterly.
  'corporate-actions.apply': 'books',
  'holdings.snapshot': 'books',
  'variance.quarterly': 'books',
  // The nightly margin run fans out over client batches; hosts of this group share it.
  'margin.nightly': 'margin',
  'margin.batch': 'margin',
  // Memory- and time-bounded rendering, kept apart from the rest.
  'reports.variance-excel': 'reports',
  'maintenance.retention': 'maintenance',
};

/** The jobs of a group, in catalogue order. */
export function jobsOfGroup(group: WorkerGroup): JobName[] {
  return jobNames.filter((n) => groupOf[n] === group);
}

export interface WorkerSelection {
  /** The entries as given (for the startup log). */
  groups: string[];
  /** The queues this process serves, in catalogue order, each with its job. */
  queues: { job: JobName; queueName: string }[];
}

/**
 * The queues a process serves for WORKER_GROUPS entries, or an Error naming every unknown entry
 * (and what is accepted) so a typo refuses to start rather than leaving a queue unserved.
 */
export function resolveWorkerGroups(entries: readonly string[]): WorkerSelection {
  const wanted = new Set<string>();
  const unknown: string[] = [];
  for (const entry of entries) {
    if (entry === 'all') for (const q of allQueueNames) wanted.add(q);
    else if ((WORKER_GROUPS as readonly string[]).includes(entry))
      for (const job of jobsOfGroup(entry as WorkerGroup)) for (const q of queueNamesOf(job)) wanted.add(q);
    else if ((jobNames as readonly string[]).includes(entry))
      for (const q of queueNamesOf(entry as JobName)) wanted.add(q);
    else if (allQueueNames.includes(entry)) wanted.add(entry);
    else unknown.push(entry);
  }
  if (unknown.length > 0 || entries.length === 0) {
    const what =
      unknown.length > 0 ? `unknown group or queue ${unknown.map((u) => `"${u}"`).join(', ')}` : 'empty';
    throw new Error(
      `Invalid configuration:\n  WORKER_GROUPS: ${what}; use groups (all, ${WORKER_GROUPS.join(', ')}), ` +
        `job names or queue names (${allQueueNames.join(', ')})`,
    );
  }
  return {
    groups: [...entries],
    queues: jobNames.flatMap((job) =>
      queueNamesOf(job)
        .filter((q) => wanted.has(q))
        .map((queueName) => ({ job, queueName })),
    ),
  };
}
