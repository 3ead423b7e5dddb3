/**
 * Issue 7 §3 "every job converges unattended", run as real worker processes on private scratch
 * databases and queue prefixes (the shared PostgreSQL and Redis stay up):
 *
 * - two clean runs of the data.generate flow with the default two COPY lanes give byte-for-byte
 *   the same ticks, bars, daily bars and indicators (A and B);
 * - kill -9 twice in one data.generate job: a second and a third process take it over and the
 *   flow ends with exactly A's data (C);
 * - PostgreSQL unreachable for a minute in the middle of the job (a TCP proxy between the worker
 *   process and PostgreSQL refuses and drops connections): the retries ride it out and the flow
 *   ends with exactly A's data (D).
 * Every run leaves no level-'1d' bar_changes behind. The worker processes run with a 2 s job lock
 * and a 1 s stalled check (JOB_LOCK_MS, JOB_STALLED_CHECK_MS), so a killed worker's job is taken
 * over in seconds; the retry policy is the production one.
 */
import type { ChildProcess } from 'node:child_process';
import { QueueEvents, type Job } from 'bullmq';
import { afterAll, describe, expect, it } from 'vitest';
import type { Deps } from '../core/deps.ts';
import { createRedis } from '../core/redis.ts';
import { addGeneratePipeline } from '../jobs/flows.ts';
import { createQueues, type QueueSet } from '../jobs/queues.ts';
import type { JobInput } from '../jobs/catalogue.ts';
import { closeDeps, dropPrefix, scratchDatabase, testConfig, testDeps, uniquePrefix } from './support.ts';
import { kill, killAll, startWorkerEntry, startWorkerProcess, tcpProxy, until } from './worker-process.ts';

const payload: JobInput<'data.generate'> = {
  seed: 77,
  scale: 'small',
  securities: 16,
  years: 0.4,
  tickSessions: 45,
  endDate: '2024-12-27',
};
const FAST_LOCKS = { JOB_LOCK_MS: '2000', JOB_STALLED_CHECK_MS: '1000' };

interface Run {
  deps: Deps;
  queues: QueueSet;
  drop: () => Promise<void>;
  url: string;
}
const runs: Run[] = [];

async function newRun(): Promise<Run> {
  const scratch = await scratchDatabase();
  const deps = testDeps({ config: testConfig({ DATABASE_URL: scratch.url, QUEUE_PREFIX: uniquePrefix() }) });
  const run = { deps, queues: createQueues(deps.config, deps.redis), drop: scratch.drop, url: scratch.url };
  runs.push(run);
  return run;
}

afterAll(async () => {
  await killAll();
  for (const r of runs) {
    await r.queues.close();
    await dropPrefix(r.deps);
    await closeDeps(r.deps);
    await r.drop();
  }
});

/** Adds the flow; returns its root and data.generate jobs and a promise of the root's end. */
async function addFlow(
  run: Run,
): Promise<{ root: Job; generate: Job; done: Promise<unknown>; close: () => Promise<void> }> {
  const events = new QueueEvents('analytics.risk', {
    connection: createRedis(run.deps.config, { forWorker: true }),
    prefix: run.deps.config.queue.prefix,
  });
  await events.waitUntilReady();
  const node = await addGeneratePipeline(run.deps.config, run.deps.redis, payload);
  let leaf = node;
  while (leaf.children?.[0]) leaf = leaf.children[0];
  const done = node.job.waitUntilFinished(events, 240_000);
  done.catch(() => undefined);
  return { root: node.job, generate: leaf.job, done, close: () => events.close() };
}

async function tickChunks(deps: Deps): Promise<number> {
  const res = await deps.db.raw<{ rows: { n: string }[] }>(
    `select count(*) as n from job_checkpoints where job_name = 'data.generate' and checkpoint_key like '%:ticks:%'`,
  );
  return Number(res.rows[0]?.n ?? 0);
}

/** Everything the flow produces, as digests: the generator's tables, 5-minute bars, indicators. */
async function digest(deps: Deps): Promise<Record<string, string>> {
  const q = async (sql: string): Promise<string> =>
    (await deps.db.raw<{ rows: { d: string }[] }>(sql)).rows[0]?.d ?? '';
  return {
    ...(await deps.repos.generator.fingerprint()),
    bars_5m:
      await q(`select md5(string_agg(concat_ws('|', s.security_id, b.bucket, b.open, b.high, b.low, b.close,
        b.volume, b.pv, b.vwap, b.trade_count), ',' order by s.security_id, b.bucket)) as d
        from bars_5m b join securities s on s.id = b.security_id`),
    indicator_values:
      await q(`select md5(string_agg(s.security_id || (to_jsonb(v) - 'computed_at' - 'security_id')::text, ','
        order by s.security_id, v.interval, v.ts)) as d from indicator_values v join securities s on s.id = v.security_id`),
    risk_metrics:
      await q(`select md5(string_agg(s.security_id || (to_jsonb(r) - 'computed_at' - 'security_id')::text, ','
        order by s.security_id, r.as_of_date)) as d from risk_metrics r join securities s on s.id = r.security_id`),
  };
}

async function pending1d(deps: Deps): Promise<number> {
  const res = await deps.db.raw<{ rows: { n: string }[] }>(
    `select count(*) as n from bar_changes where level = '1d'`,
  );
  return Number(res.rows[0]?.n ?? 0);
}

let clean: Record<string, string>;

describe('fault runs of the data.generate flow in worker processes', () => {
  it(
    'gives byte-for-byte the same data in two clean runs with the default concurrency',
    { timeout: 240_000 },
    async () => {
      const digests: Record<string, string>[] = [];
      for (let i = 0; i < 2; i++) {
        const run = await newRun();
        const worker = startWorkerProcess({
          DATABASE_URL: run.url,
          QUEUE_PREFIX: run.deps.config.queue.prefix,
        });
        const flow = await addFlow(run);
        await flow.done;
        await flow.close();
        await kill(worker);
        expect(await pending1d(run.deps)).toBe(0);
        digests.push(await digest(run.deps));
      }
      expect(digests[1]).toEqual(digests[0]);
      clean = digests[0]!;
    },
  );

  it(
    "survives kill -9 twice in one data.generate job and ends with the clean run's data",
    { timeout: 180_000 },
    async () => {
      const run = await newRun();
      const env = { DATABASE_URL: run.url, QUEUE_PREFIX: run.deps.config.queue.prefix, ...FAST_LOCKS };
      const flow = await addFlow(run);
      let worker: ChildProcess = startWorkerProcess(env);
      const recoveries: number[] = [];
      for (let k = 0; k < 2; k++) {
        const before = await tickChunks(run.deps);
        await until(async () => (await tickChunks(run.deps)) >= before + 3, 60_000, 'tick chunks');
        await kill(worker);
        const killedAt = Date.now();
        const atKill = await tickChunks(run.deps);
        worker = startWorkerProcess(env);
        await until(async () => (await tickChunks(run.deps)) > atKill, 60_000, 'the job to resume');
        recoveries.push(Date.now() - killedAt);
      }
      await flow.done;
      await flow.close();
      const generate = await run.queues.get('data.generate').getJob(flow.generate.id!);
      expect(await generate!.getState()).toBe('completed');
      expect(generate!.stalledCounter).toBe(2);
      expect(await flow.root.getState()).toBe('completed');
      console.info(
        `kill -9 -> job resumed in ${recoveries.map((ms) => `${(ms / 1000).toFixed(1)} s`).join(', ')}`,
      );
      expect(await pending1d(run.deps)).toBe(0);
      expect(await digest(run.deps)).toEqual(clean);
    },
  );

  it(
    'hands a running data.generate back at SIGTERM instead of holding the shutdown, and another worker finishes it',
    { timeout: 120_000 },
    async () => {
      const run = await newRun();
      const env = { DATABASE_URL: run.url, QUEUE_PREFIX: run.deps.config.queue.prefix };
      const flow = await addFlow(run);
      const first = startWorkerEntry(env);
      await until(async () => (await tickChunks(run.deps)) >= 3, 60_000, 'tick chunks');
      const exited = new Promise<number | null>((r) => first.once('exit', (code) => r(code)));
      const termAt = Date.now();
      first.kill('SIGTERM');
      expect(await exited).toBe(0);
      const stopMs = Date.now() - termAt;
      const generate = (await run.queues.get('data.generate').getJob(flow.generate.id!))!;
      expect(await generate.getState()).toBe('waiting');
      expect(generate.attemptsMade).toBe(0);
      const loaded = await tickChunks(run.deps);
      expect(loaded).toBeLessThan(48);
      console.info(
        `SIGTERM -> worker exited in ${(stopMs / 1000).toFixed(1)} s with ${loaded} of 48 chunks loaded`,
      );
      startWorkerProcess(env);
      await flow.done;
      await flow.close();
      expect(await flow.root.getState()).toBe('completed');
      expect(await digest(run.deps)).toEqual(clean);
    },
  );

  it(
    "rides out PostgreSQL unreachable for a minute and ends with the clean run's data",
    { timeout: 240_000 },
    async () => {
      const run = await newRun();
      const target = new URL(run.url);
      const proxy = await tcpProxy(target.hostname, Number(target.port || 5432));
      try {
        const viaProxy = new URL(run.url);
        viaProxy.hostname = '127.0.0.1';
        viaProxy.port = String(proxy.port);
        const flow = await addFlow(run);
        startWorkerProcess({ DATABASE_URL: viaProxy.toString(), QUEUE_PREFIX: run.deps.config.queue.prefix });
        await until(async () => (await tickChunks(run.deps)) >= 3, 60_000, 'tick chunks');
        proxy.cut();
        const cutAt = Date.now();
        await new Promise((r) => setTimeout(r, 60_000));
        proxy.restore();
        // A step that fails for good would leave the flow waiting forever: fail the test then.
        let failed: string | undefined;
        let ended = false;
        await Promise.race([
          flow.done.finally(() => (ended = true)),
          until(
            async () => {
              if (ended) return true;
              const job = await run.queues.get('data.generate').getJob(flow.generate.id!);
              if ((await job?.getState()) !== 'failed') return false;
              failed = `after ${job!.attemptsMade} attempts: ${job!.failedReason}`;
              return true;
            },
            240_000,
            'data.generate to fail',
          ),
        ]);
        expect(failed, 'data.generate failed for good').toBeUndefined();
        const generate = (await run.queues.get('data.generate').getJob(flow.generate.id!))!;
        console.info(
          `PostgreSQL down 60 s: data.generate completed after ${generate.attemptsMade} failed attempts, ` +
            `${((Date.now() - cutAt) / 1000).toFixed(1)} s after the cut`,
        );
        await flow.close();
        expect(await generate.getState()).toBe('completed');
        expect(generate.attemptsMade).toBeGreaterThan(1);
        expect(await pending1d(run.deps)).toBe(0);
        expect(await digest(run.deps)).toEqual(clean);
      } finally {
        await proxy.close();
      }
    },
  );
});
