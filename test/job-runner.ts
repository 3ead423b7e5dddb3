/**
 * Runs jobs through real BullMQ queues to their end, for tests: enqueue (validated, laned jobs to
 * their provider's queue), wait for completion or failure on the queue's events, and hand back
 * the job as it ended. One QueueEvents per queue, opened on first use; `close()` closes them.
 */
import { QueueEvents, type Job, type JobsOptions } from 'bullmq';
import type { Deps } from '../core/deps.ts';
import { createRedis } from '../core/redis.ts';
import type { JobInput, JobName } from '../jobs/catalogue.ts';
import { queueNameFor, type QueueSet } from '../jobs/queues.ts';
import { closeDeps, dropPrefix } from './support.ts';

export interface JobRun {
  /** The job re-read after it ended (attemptsMade, failedReason, returnvalue are current). */
  job: Job;
  state: string;
  /** The processor's return value; undefined when the job failed. */
  result: unknown;
}

export interface JobRunner {
  run<N extends JobName>(name: N, payload: JobInput<N>, opts?: JobsOptions): Promise<JobRun>;
  /** The (ready) events of a queue, for tests that wait on a job themselves. */
  events(queueName: string): Promise<QueueEvents>;
  close(): Promise<void>;
}

export function createJobRunner(deps: Deps, queues: QueueSet, timeoutMs = 60_000): JobRunner {
  const open = new Map<string, QueueEvents>();
  const events = async (queueName: string): Promise<QueueEvents> => {
    let e = open.get(queueName);
    if (!e) {
      e = new QueueEvents(queueName, {
        connection: createRedis(deps.config, { forWorker: true }),
        prefix: deps.config.queue.prefix,
      });
      open.set(queueName, e);
    }
    await e.waitUntilReady();
    return e;
  };
  return {
    events,
    async run(name, payload, opts) {
      const queueName = queueNameFor(name, payload);
      const e = await events(queueName);
      const added = await queues.enqueue(name, payload, opts);
      try {
        await added.waitUntilFinished(e, timeoutMs);
      } catch {
        // A failed job rejects here; its state and reason are read back below.
      }
      const job = (await queues.byQueueName(queueName)!.getJob(added.id!))!;
      const state = await job.getState();
      return { job, state, result: state === 'completed' ? (job.returnvalue as unknown) : undefined };
    },
    async close() {
      for (const e of open.values()) await e.close();
      open.clear();
    },
  };
}

/**
 * Ends a worker test in order: its workers, the runner's events, the queues, the test's queue keys
 * and connections, then its scratch database. Any part may be missing (a setup that failed early).
 */
export async function closeJobTest(parts: {
  host?: { close(): Promise<void> } | undefined;
  runner?: JobRunner | undefined;
  queues?: QueueSet | undefined;
  deps?: Deps | undefined;
  scratch?: { drop(): Promise<void> } | undefined;
}): Promise<void> {
  await parts.host?.close();
  await parts.runner?.close();
  await parts.queues?.close();
  if (parts.deps) {
    await dropPrefix(parts.deps);
    await closeDeps(parts.deps);
  }
  await parts.scratch?.drop();
}
