/**
 * Issue 7 §3: the policies that make jobs converge unattended, read from the one options table,
 * and what an operator does after a step of the data.generate flow failed for good.
 */
import { QueueEvents, UnrecoverableError, Worker } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Deps } from '../core/deps.ts';
import { createRedis } from '../core/redis.ts';
import { jobNames } from '../jobs/catalogue.ts';
import { addGeneratePipeline } from '../jobs/flows.ts';
import { jobOptions, RETRY_SPAN_MS, retrySpanMs } from '../jobs/options.ts';
import { createQueues, type QueueSet } from '../jobs/queues.ts';
import { startWorkers, type WorkerHost } from '../jobs/worker-host.ts';
import { closeDeps, dropPrefix, scratchDatabase, testConfig, testDeps } from './support.ts';

/** Real-time jobs whose retries are worth seconds only: the next minute's run supersedes them. */
const REAL_TIME = new Set(['prices.fetch', 'prices.quote']);

describe('the options table', () => {
  it('spreads the retries of every job that must converge over minutes of outage', () => {
    const short = jobNames
      .filter((n) => !REAL_TIME.has(n))
      .map((n) => [n, retrySpanMs(jobOptions[n].job)] as const)
      .filter(([, ms]) => ms < RETRY_SPAN_MS);
    expect(short).toEqual([]);
    expect(retrySpanMs(jobOptions['data.generate'].job)).toBeGreaterThanOrEqual(10 * 60_000);
  });

  it('lets every job survive repeated worker loss, long resumable ones many times', () => {
    for (const n of jobNames) expect(jobOptions[n].stalls, n).toBeGreaterThanOrEqual(5);
    expect(jobOptions['data.generate'].stalls).toBeGreaterThanOrEqual(20);
    expect(jobOptions['prices.backfill'].stalls).toBeGreaterThanOrEqual(20);
  });
});

describe('a flow step that failed for good', () => {
  let deps: Deps;
  let queues: QueueSet;
  let host: WorkerHost | undefined;
  let scratch: { url: string; drop: () => Promise<void> };

  beforeAll(async () => {
    scratch = await scratchDatabase();
    deps = testDeps({ config: testConfig({ DATABASE_URL: scratch.url }) });
    queues = createQueues(deps.config, deps.redis);
  });

  afterAll(async () => {
    await host?.close();
    await queues?.close();
    await dropPrefix(deps);
    await closeDeps(deps);
    await scratch?.drop();
  });

  it(
    "holds the steps above it, and the operator's single retry carries the flow to its end",
    { timeout: 120_000 },
    async () => {
      const { prefix } = deps.config.queue;
      const node = await addGeneratePipeline(deps.config, deps.redis, {
        seed: 5,
        securities: 3,
        tickSessions: 2,
        years: 0.1,
        endDate: '2024-07-05',
      });
      let leaf = node;
      while (leaf.children?.[0]) leaf = leaf.children[0];
      // The step fails for good (a full disk, attempts used up, too many worker losses).
      const broken = new Worker(
        'data.generate',
        async () => {
          throw new UnrecoverableError('could not extend file: No space left on device');
        },
        { connection: createRedis(deps.config, { forWorker: true }), prefix },
      );
      const generate = queues.get('data.generate');
      for (let i = 0; (await generate.getJobState(leaf.job.id!)) !== 'failed'; i++) {
        if (i > 500) throw new Error('the step never failed');
        await new Promise((r) => setTimeout(r, 20));
      }
      await broken.close();
      expect(await node.job.getState()).toBe('waiting-children');

      // The cause is mended; the operator presses "retry" on the failed job in Bull Board, which
      // calls job.retry('failed') (@bull-board/api handlers/retryJob).
      host = startWorkers(deps);
      const events = new QueueEvents('analytics.risk', {
        connection: createRedis(deps.config, { forWorker: true }),
        prefix,
      });
      await events.waitUntilReady();
      try {
        const failed = (await generate.getJob(leaf.job.id!))!;
        await failed.retry('failed');
        await node.job.waitUntilFinished(events, 90_000);
        expect(await node.job.getState()).toBe('completed');
      } finally {
        await events.close();
      }
    },
  );
});
