/**
 * The job registry and worker host: a missing or duplicate processor stops boot with a message
 * saying what to add; an invalid payload fails the job permanently, naming the field; Job
 * Schedulers are upserted idempotently with their cron pattern and time zone.
 */
import { Queue, QueueEvents } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NYSE_TIME_ZONE } from '../core/calendar/nyse.ts';
import type { Deps } from '../core/deps.ts';
import { createRedis } from '../core/redis.ts';
import { jobNames } from '../jobs/catalogue.ts';
import { jobOptions } from '../jobs/options.ts';
import { createQueues, type QueueSet } from '../jobs/queues.ts';
import { buildRegistry, registrations } from '../jobs/registry.ts';
import { startWorkers, upsertSchedulers, type WorkerHost } from '../jobs/worker-host.ts';
import { closeDeps, dropPrefix, testDeps } from './support.ts';

let deps: Deps;
let queues: QueueSet;
beforeAll(() => {
  deps = testDeps();
  queues = createQueues(deps.config);
});
afterAll(async () => {
  await queues.close();
  await dropPrefix(deps);
  await closeDeps(deps);
});

describe('job registry', () => {
  it('has exactly one processor per catalogue name', () => {
    expect([...buildRegistry().keys()].sort()).toEqual([...jobNames].sort());
  });

  it('refuses a missing processor, naming what to add', () => {
    expect(() => buildRegistry(registrations.filter((r) => r.name !== 'bars.rollup-1d'))).toThrow(
      /"bars.rollup-1d" has no processor: add register\('bars.rollup-1d'/,
    );
  });

  it('refuses a duplicate processor', () => {
    expect(() => buildRegistry([...registrations, registrations[0]!])).toThrow(/has two processors/);
  });
});

describe('worker host', () => {
  let host: WorkerHost;
  afterAll(async () => {
    await host?.close();
  });

  it('fails a job with an invalid payload permanently, naming the field', async () => {
    host = startWorkers(deps, { names: ['bars.rollup-5m'] });
    const events = new QueueEvents('bars.rollup-5m', {
      connection: createRedis(deps.config, { forWorker: true }),
      prefix: deps.config.queue.prefix,
    });
    await events.waitUntilReady();
    // Bypass the producer-side validation to prove the worker validates too.
    const raw = new Queue('bars.rollup-5m', {
      connection: createRedis(deps.config),
      prefix: deps.config.queue.prefix,
    });
    const job = await raw.add('bars.rollup-5m', { from: 'yesterday' }, { attempts: 3 });
    await expect(job.waitUntilFinished(events, 30_000)).rejects.toThrow(/invalid payload: from:/);
    const failed = await queues.get('bars.rollup-5m').getJob(job.id!);
    expect(failed?.attemptsMade).toBe(1);
    await raw.close();
    await events.close();
  });

  it('validates payloads at the producer too', async () => {
    await expect(queues.enqueue('data.generate', { scale: 'huge' } as never)).rejects.toThrow(/scale/);
  });

  it('upserts every Job Scheduler idempotently, with pattern and time zone', async () => {
    const expected = jobNames.flatMap((n) => jobOptions[n].schedules.map((s) => s.id)).sort();
    await upsertSchedulers(queues);
    await upsertSchedulers(queues);
    const found = (await Promise.all(queues.all().map((q) => q.getJobSchedulers(0, -1, true)))).flat();
    expect(found.map((s) => s.key).sort()).toEqual(expected);
    const fiveMin = found.find((s) => s.key === 'bars.rollup-5m:every-5-minutes');
    expect(fiveMin).toMatchObject({ pattern: '*/5 * * * *', tz: NYSE_TIME_ZONE });
  });
});
