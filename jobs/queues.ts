/**
 * Queue handles for producers (API, CLI, demo, schedulers). One BullMQ queue per job name, all
 * under the configured prefix (a Redis Cluster hash tag); a laned job (jobs/options.ts `lanes`)
 * has one queue per provider instead, `<name>.<provider>`, picked by the payload's `provider`.
 */
import { Queue, type Job, type JobsOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from '../core/config.ts';
import type { Logger } from '../core/logger.ts';
import { createRedis, redisLogger, watchRedisErrors } from '../core/redis.ts';
import { PROVIDER_NAMES } from '../core/providers/types.ts';
import { jobNames, parsePayload, type JobInput, type JobName } from './catalogue.ts';
import { jobOptions } from './options.ts';

/** The states a BullMQ job can be in (what metrics count and the jobs API reports). */
export const JOB_STATES = [
  'waiting',
  'active',
  'delayed',
  'prioritized',
  'waiting-children',
  'completed',
  'failed',
] as const;
export type JobState = (typeof JOB_STATES)[number];

/** The queue names a job runs in: its own name, or one per provider for a laned job. */
export function queueNamesOf(name: JobName): string[] {
  return jobOptions[name].lanes === 'provider' ? PROVIDER_NAMES.map((p) => `${name}.${p}`) : [name];
}

/** Every queue of every job, in catalogue order. */
export const allQueueNames: string[] = jobNames.flatMap(queueNamesOf);

/** The queue a payload of job `name` goes to. */
export function queueNameFor(name: JobName, payload: unknown): string {
  if (jobOptions[name].lanes !== 'provider') return name;
  const lane = (payload as { provider?: unknown } | null)?.provider;
  if (typeof lane !== 'string' || !(PROVIDER_NAMES as readonly string[]).includes(lane))
    throw new Error(`${name}: payload needs a provider to pick its lane`);
  return `${name}.${lane}`;
}

/** The percentage of a job's stored progress (an object from `jobProgress`, or a bare number). */
export function progressPercent(progress: unknown): number {
  if (typeof progress === 'number') return progress;
  const p = (progress as { progress?: unknown } | null)?.progress;
  return typeof p === 'number' ? p : 0;
}

export interface QueueSet {
  /** The queue of a job; for a laned job, `lane` (a provider name) is required. */
  get(name: JobName, lane?: string): Queue;
  /** A queue by its own name (see allQueueNames). */
  byQueueName(queueName: string): Queue | undefined;
  all(): Queue[];
  /** Validates the payload against the catalogue, then adds the job with the table's default options. */
  enqueue<N extends JobName>(name: N, payload: JobInput<N>, opts?: JobsOptions): Promise<Job>;
  close(): Promise<void>;
}

export function createQueues(
  config: Pick<Config, 'redis' | 'queue' | 'logLevel'>,
  connection?: Redis,
  logger?: Logger,
): QueueSet {
  const log = redisLogger(config, logger);
  const ownConnection = connection ? undefined : createRedis(config, { logger: log, name: 'queues' });
  const conn = connection ?? ownConnection!;
  const queues = new Map<string, Queue>(
    jobNames.flatMap((name) =>
      queueNamesOf(name).map((queueName) => {
        const queue = new Queue(queueName, {
          connection: conn,
          prefix: config.queue.prefix,
          defaultJobOptions: jobOptions[name].job,
        });
        // Without a listener BullMQ prints every connection error to stderr.
        watchRedisErrors(queue, log, `queue ${queueName}`);
        return [queueName, queue] as const;
      }),
    ),
  );
  const get = (name: JobName, lane?: string): Queue => {
    const queueName = jobOptions[name].lanes === 'provider' ? `${name}.${lane}` : name;
    const q = queues.get(queueName);
    if (!q)
      throw new Error(`no queue "${queueName}" for job "${name}"${lane ? '' : ' (laned: give a lane)'}`);
    return q;
  };
  return {
    get,
    byQueueName: (queueName) => queues.get(queueName),
    all: () => [...queues.values()],
    async enqueue(name, payload, opts) {
      const data = parsePayload(name, payload);
      const q = queues.get(queueNameFor(name, data));
      if (!q) throw new Error(`no queue for job "${name}"`);
      return q.add(name, data, opts);
    },
    async close() {
      await Promise.all([...queues.values()].map((q) => q.close()));
      await ownConnection?.quit();
    },
  };
}
