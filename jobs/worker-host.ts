/**
 * Runs one BullMQ Worker per queue in this process, each calling its processor as a plain
 * function of (deps, payload, ctx). Validates every payload at the door (a bad one fails the job
 * permanently with the fields named), upserts the Job Schedulers, and closes cleanly: `close()`
 * stops taking new jobs and waits for the active ones to finish, except long resumable ones
 * (jobs/options.ts `handsOff`), which stop at their next checkpoint and go back to waiting.
 */
import { UnrecoverableError, WaitingError, Worker, type Job, type Queue } from 'bullmq';
import { ZodError } from 'zod';
import type { Deps } from '../core/deps.ts';
import { describeIssues } from '../core/input.ts';
import { createRedis, isRedisUnavailable, reportRedisError } from '../core/redis.ts';
import { ProviderError, ProviderRateLimitError, type ProviderName } from '../core/providers/types.ts';
import { jobNames, parsePayload, type JobName } from './catalogue.ts';
import { resolveWorkerGroups } from './groups.ts';
import { laneLimiter } from './lane-quota.ts';
import { backoffDelay, jobOptions } from './options.ts';
import { createQueues, queueNamesOf, type QueueSet } from './queues.ts';
import { buildRegistry } from './registry.ts';
import type { JobContext } from './types.ts';

export interface WorkerHost {
  workers: Worker[];
  close(): Promise<void>;
}

/**
 * JobContext.enqueue over real queues. With deduplication BullMQ hands back the pending job
 * instead of adding one; with a jobId of the caller's own that shows as a different id, reported
 * as undefined (collapsed).
 */
export function enqueueVia(queues: QueueSet): JobContext['enqueue'] {
  return async (name, payload, opts) => {
    const added = await queues.enqueue(name, payload, opts);
    return opts?.jobId && added.id !== opts.jobId ? undefined : added.id;
  };
}

/**
 * What a job stores as its progress: an object, because Bull Board's Progress tab shows only an
 * object (a bare number reads "No progress data available") and its ring reads the object's
 * `progress` field. Read the percentage back with `progressPercent`.
 */
export function jobProgress(
  percent: number,
  detail: Readonly<Record<string, string | number>> | undefined,
  now: Date,
): { progress: number; updatedAt: string } & Record<string, string | number> {
  return {
    ...detail,
    progress: Math.max(0, Math.min(100, Math.round(percent))),
    updatedAt: now.toISOString(),
  };
}

/** The abort reason a shutting-down host gives the jobs that hand themselves back. */
const SHUTDOWN = 'worker shutting down: job handed back';

function contextFor(job: Job, queues: QueueSet, shutdown: AbortSignal | undefined): JobContext {
  return {
    ...(shutdown ? { shutdown } : {}),
    enqueue: enqueueVia(queues),
    id: job.id ?? 'unknown',
    attemptsMade: job.attemptsMade,
    progress: (percent, detail) => job.updateProgress(jobProgress(percent, detail, new Date())),
    log: async (line) => {
      await job.log(`${new Date().toISOString()} ${line}`);
    },
    upstreamResults: async () => Object.values(await job.getChildrenValues()),
  };
}

/** Upserts every schedule of the options table (idempotent: same id, same pattern, no duplicates). */
export async function upsertSchedulers(queues: QueueSet): Promise<number> {
  let n = 0;
  for (const name of jobNames) {
    for (const s of jobOptions[name].schedules) {
      const data = parsePayload(name, s.payload);
      await queues
        .get(name)
        .upsertJobScheduler(
          s.id,
          { pattern: s.pattern, tz: s.tz },
          { name, data, opts: jobOptions[name].job },
        );
      n += 1;
    }
  }
  return n;
}

/**
 * Starts a Worker for each queue this process serves: every queue of `opts.names` when given (tests,
 * the demo), otherwise the queues of the config's WORKER_GROUPS (jobs/groups.ts; default all).
 * An unknown group or queue name throws before any connection is made.
 */
export function startWorkers(deps: Deps, opts: { names?: JobName[]; concurrency?: number } = {}): WorkerHost {
  const served = new Set(
    opts.names
      ? opts.names.flatMap(queueNamesOf)
      : resolveWorkerGroups(deps.config.queue.groups).queues.map((q) => q.queueName),
  );
  const servedQueuesOf = (name: JobName): string[] => queueNamesOf(name).filter((q) => served.has(q));
  const names = jobNames.filter((name) => servedQueuesOf(name).length > 0);
  const registry = buildRegistry();
  const connection = createRedis(deps.config, { forWorker: true, logger: deps.logger, name: 'workers' });
  // Producer side for follow-on jobs and queue.rateLimit (a non-blocking connection).
  const producer = createRedis(deps.config, { logger: deps.logger, name: 'producer' });
  const queues = createQueues(deps.config, producer, deps.logger);
  const handsOff = new Set<Worker>();
  const workers = names.flatMap((name) =>
    servedQueuesOf(name).map((queueName) => {
      const processor = registry.get(name)!;
      const lane =
        jobOptions[name].lanes === 'provider' ? (queueName.split('.').pop() as ProviderName) : undefined;
      const worker = new Worker(
        queueName,
        async (job: Job, token?: string, signal?: AbortSignal) => {
          let payload: unknown;
          try {
            payload = parsePayload(name, job.data);
          } catch (err) {
            if (err instanceof ZodError)
              throw new UnrecoverableError(`invalid payload: ${describeIssues(err)}`);
            throw err;
          }
          const started = Date.now();
          deps.logger.info({ job: name, jobId: job.id, attempt: job.attemptsMade + 1 }, 'job started');
          try {
            const result = await processor(
              deps,
              payload as never,
              contextFor(job, queues, jobOptions[name].handsOff ? signal : undefined),
            );
            deps.logger.info({ job: name, jobId: job.id, ms: Date.now() - started }, 'job finished');
            return result;
          } catch (err) {
            if (signal?.aborted && signal.reason === SHUTDOWN && token) {
              // Stopped at a checkpoint because this process is shutting down: back to waiting for
              // another worker, no attempt used.
              await job.moveToWait(token);
              await job.log(`${new Date().toISOString()} ${SHUTDOWN}`);
              deps.logger.info({ job: name, jobId: job.id }, 'job handed back at shutdown');
              throw new WaitingError();
            }
            throw await mapProviderError(err, job, queues.byQueueName(queueName)!, deps);
          }
        },
        {
          connection,
          prefix: deps.config.queue.prefix,
          concurrency: jobOptions[name].concurrency ?? opts.concurrency ?? deps.config.queue.concurrency,
          // Worker loss (jobs/options.ts): the lock is renewed every half of JOB_LOCK_MS while the
          // job runs (long SQL statements are awaited, so the event loop keeps renewing it); when its
          // worker dies the job is back in waiting within JOB_LOCK_MS + JOB_STALLED_CHECK_MS and
          // resumes, up to `stalls` times.
          lockDuration: deps.config.queue.lockMs,
          stalledInterval: deps.config.queue.stalledCheckMs,
          maxStalledCount: jobOptions[name].stalls,
          settings: { backoffStrategy: backoffDelay },
          // A provider lane's quota, shared by every worker of the lane (BullMQ's global limiter) and
          // by the API's own provider calls (jobs/lane-quota.ts);
          // other provider-calling jobs get the table's limiter, so a queue.rateLimit binds them all.
          ...(lane
            ? { limiter: laneLimiter(deps.config, lane) }
            : jobOptions[name].limiter
              ? { limiter: jobOptions[name].limiter }
              : {}),
        },
      );
      worker.on('failed', (job, err) => {
        deps.logger.warn(
          { job: name, jobId: job?.id, attempt: job?.attemptsMade, err: err.message },
          'job failed',
        );
      });
      // Connection errors (a Redis outage: one per reconnect attempt and blocking call) are
      // throttled with every other Redis error of the process.
      worker.on('error', (err) => {
        if (isRedisUnavailable(err)) reportRedisError(deps.logger, `worker ${queueName}`, err);
        else deps.logger.error({ queue: queueName, err: err.message }, 'worker error');
      });
      if (jobOptions[name].handsOff) handsOff.add(worker);
      return worker;
    }),
  );
  return {
    workers,
    async close() {
      // Long resumable jobs stop at their next checkpoint and go back to waiting; the others finish.
      for (const w of workers) if (handsOff.has(w)) w.cancelAllJobs(SHUTDOWN);
      await Promise.all(workers.map((w) => w.close()));
      await queues.close();
      await Promise.allSettled([connection.quit(), producer.quit()]);
    },
  };
}

/**
 * What a provider failure does to the job: throttled → the whole queue waits `retryAfterMs`
 * (queue.rateLimit) and the job goes back to waiting without using an attempt; permanent → the
 * job fails now, naming the cause; transient → an ordinary failure, retried with backoff.
 */
async function mapProviderError(err: unknown, job: Job, queue: Queue, deps: Deps): Promise<unknown> {
  if (err instanceof ProviderRateLimitError) {
    await job.log(`${new Date().toISOString()} ${err.message}; queue paused ${err.retryAfterMs} ms`);
    deps.logger.warn({ queue: queue.name, ms: err.retryAfterMs, err: err.message }, 'provider throttled');
    await queue.rateLimit(err.retryAfterMs);
    return Worker.RateLimitError();
  }
  if (err instanceof ProviderError && err.kind === 'permanent') return new UnrecoverableError(err.message);
  return err;
}
