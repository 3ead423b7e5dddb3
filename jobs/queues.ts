/**
 * Queue handles for producers (API, CLI, demo, schedulers). One BullMQ queue per job name, all
 * under the configured prefix (a Redis Cluster hash tag).
 */
import { Queue, type Job, type JobsOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from '../core/config.ts';
import { createRedis } from '../core/redis.ts';
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

export interface QueueSet {
  get(name: JobName): Queue;
  all(): Queue[];
  /** Validates the payload against the catalogue, then adds the job with the table's default options. */
  enqueue<N extends JobName>(name: N, payload: JobInput<N>, opts?: JobsOptions): Promise<Job>;
  close(): Promise<void>;
}

export function createQueues(config: Pick<Config, 'redis' | 'queue'>, connection?: Redis): QueueSet {
  const ownConnection = connection ? undefined : createRedis(config);
  const conn = connection ?? ownConnection!;
  const queues = new Map<JobName, Queue>(
    jobNames.map((name) => [
      name,
      new Queue(name, {
        connection: conn,
        prefix: config.queue.prefix,
        defaultJobOptions: jobOptions[name].job,
      }),
    ]),
  );
  const get = (name: JobName): Queue => {
    const q = queues.get(name);
    if (!q) throw new Error(`no queue for job "${name}"`);
    return q;
  };
  return {
    get,
    all: () => [...queues.values()],
    async enqueue(name, payload, opts) {
      const data = parsePayload(name, payload);
      return get(name).add(name, data, opts);
    },
    async close() {
      await Promise.all([...queues.values()].map((q) => q.close()));
      await ownConnection?.quit();
    },
  };
}
