/**
 * The issue's done-when: a backfill interrupted halfway (the worker killed) and resumed gives the
 * same rows as an uninterrupted one.
 *
 * Two scratch databases with the same securities. In B one in-process worker runs an intraday
 * and a daily backfill undisturbed. In A the same two jobs run in worker processes (node with the
 * worker host for prices.backfill only, a queue prefix of their own): the first process is
 * SIGKILLed once the intraday job has committed a few chunks, a second one takes the daily job and
 * is sent SIGTERM (it hands the job back at the next chunk and exits), and a third finishes both through BullMQ's stalled-job recovery. A SIGKILLed worker's job lock would expire by itself after the
 * lock duration (JOB_LOCK_MS, 30 s) and the stalled check runs once per 15 s; the test deletes
 * those keys instead of waiting, which is all the passing time would do.
 * Then every ticks, bars_1d and corporate_actions row of A must equal B's, and the jobs' results
 * (which count resumed chunks from their checkpoints) must agree too.
 */
import type { ChildProcess } from 'node:child_process';
import { QueueEvents, type Job } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Knex } from '../core/db/knex.ts';
import type { Deps } from '../core/deps.ts';
import { createRedis } from '../core/redis.ts';
import type { JobInput } from '../jobs/catalogue.ts';
import { backfillRunKey } from '../jobs/processors/prices.ts';
import { parsePayload } from '../jobs/catalogue.ts';
import { createQueues, type QueueSet } from '../jobs/queues.ts';
import { startWorkers } from '../jobs/worker-host.ts';
import { closeDeps, dropPrefix, scratchDatabase, testConfig, testDeps, uniquePrefix } from './support.ts';
import { kill, killAll, startWorkerEntry, startWorkerProcess, until } from './worker-process.ts';

const TICKERS = ['RSA', 'RSB', 'RSC'];
const intraday: JobInput<'prices.backfill'> = {
  symbols: TICKERS,
  from: '2023-07-03',
  to: '2024-06-28',
  interval: '5m',
};
const daily: JobInput<'prices.backfill'> = { symbols: TICKERS, from: '2004-01-02', to: '2024-06-28' };

let a: { url: string; drop: () => Promise<void> };
let b: { url: string; drop: () => Promise<void> };
let depsA: Deps;
let depsB: Deps;

async function addSecurities(db: Knex): Promise<void> {
  await db('securities').insert(
    TICKERS.map((ticker, i) => ({
      security_id: `SEC-${String(i + 1).padStart(4, '0')}`,
      ticker,
      security_name: ticker,
      security_type: 'EQUITY',
      asset_class: 'Equity',
      currency: 'USD',
      exchange: 'NYSE',
      price_provider: 'synthetic',
    })),
  );
}

/** A worker process for prices.backfill on database A and A's queue prefix. */
function startChild(prefix: string): ChildProcess {
  return startWorkerProcess({ DATABASE_URL: a.url, QUEUE_PREFIX: prefix }, { names: ['prices.backfill'] });
}

async function checkpoints(db: Knex, payload: JobInput<'prices.backfill'>): Promise<number> {
  const key = backfillRunKey(parsePayload('prices.backfill', payload));
  const res = await db.raw<{ rows: { n: string }[] }>(
    `select count(*) as n from job_checkpoints where job_name = 'prices.backfill' and checkpoint_key like ?`,
    [`${key}:%`],
  );
  return Number(res.rows[0]?.n ?? 0);
}

/** Every row of the three tables, keyed by ticker, in a stable order (no ids, no timestamps of writing). */
async function contents(
  db: Knex,
): Promise<{ ticks: string[]; bars_1d: string[]; corporate_actions: string[] }> {
  const q = async (sql: string): Promise<string[]> =>
    (await db.raw<{ rows: { r: string }[] }>(sql)).rows.map((x) => x.r);
  return {
    ticks: await q(
      `select concat_ws('|', s.ticker, t.ts, t.seq, t.price, t.size, t.bid, t.ask) as r
         from ticks t join securities s on s.id = t.security_id order by s.ticker, t.ts, t.seq`,
    ),
    bars_1d: await q(
      `select concat_ws('|', s.ticker, b.session_date, b.open, b.high, b.low, b.close, b.adj_close, b.volume, b.pv,
                        b.vwap, b.trade_count, b.source) as r
         from bars_1d b join securities s on s.id = b.security_id order by s.ticker, b.session_date`,
    ),
    corporate_actions: await q(
      `select concat_ws('|', c.action_id, s.ticker, c.action_type, c.ex_date, c.record_date, c.payment_date, c.ratio,
                        c.amount, c.currency, c.source) as r
         from corporate_actions c join securities s on s.id = c.security_id order by c.action_id`,
    ),
  };
}

beforeAll(async () => {
  [a, b] = await Promise.all([scratchDatabase(), scratchDatabase()]);
  depsA = testDeps({ config: testConfig({ DATABASE_URL: a.url, QUEUE_PREFIX: uniquePrefix() }) });
  depsB = testDeps({ config: testConfig({ DATABASE_URL: b.url }) });
  await addSecurities(depsA.db);
  await addSecurities(depsB.db);
});

afterAll(async () => {
  await killAll();
  for (const d of [depsA, depsB]) {
    if (!d) continue;
    await dropPrefix(d);
    await closeDeps(d);
  }
  await a?.drop();
  await b?.drop();
});

async function runBoth(queues: QueueSet): Promise<[Job, Job]> {
  return [await queues.enqueue('prices.backfill', intraday), await queues.enqueue('prices.backfill', daily)];
}

describe('prices.backfill killed halfway and resumed', () => {
  it('leaves exactly the rows of an uninterrupted run', { timeout: 300_000 }, async () => {
    // B: undisturbed.
    const queuesB = createQueues(depsB.config);
    const eventsB = new QueueEvents('prices.backfill', {
      connection: createRedis(depsB.config, { forWorker: true }),
      prefix: depsB.config.queue.prefix,
    });
    const hostB = startWorkers(depsB, { names: ['prices.backfill'] });
    const jobsB = await runBoth(queuesB);
    const resultsB = [
      await jobsB[0].waitUntilFinished(eventsB, 120_000),
      await jobsB[1].waitUntilFinished(eventsB, 120_000),
    ];
    await hostB.close();
    await eventsB.close();
    await queuesB.close();

    // A: two kills.
    const prefix = depsA.config.queue.prefix;
    const queuesA = createQueues(depsA.config);
    const eventsA = new QueueEvents('prices.backfill', {
      connection: createRedis(depsA.config, { forWorker: true }),
      prefix,
    });
    await eventsA.waitUntilReady();
    const jobsA = await runBoth(queuesA);
    const lockOf = (job: Job): string => `${prefix}:prices.backfill:${job.id}:lock`;

    // The first process takes the intraday job and is killed a few chunks in; the second takes the
    // daily job (the intraday one is still held by the dead worker) and is killed the same way.
    const first = startChild(prefix);
    await until(async () => (await checkpoints(depsA.db, intraday)) >= 2, 120_000);
    await kill(first);
    // The second (the real worker entry point, serving only this queue) is stopped the way a deploy
    // stops it (SIGTERM): it hands the daily job back at the next chunk boundary (no attempt used)
    // and exits promptly instead of finishing 20 years.
    const second = startWorkerEntry({
      DATABASE_URL: a.url,
      QUEUE_PREFIX: prefix,
      WORKER_GROUPS: 'prices.backfill',
    });
    await until(async () => (await checkpoints(depsA.db, daily)) >= 2, 120_000);
    const secondExit = new Promise<number | null>((r) => second.once('exit', (code) => r(code)));
    second.kill('SIGTERM');
    expect(await secondExit).toBe(0);
    expect(await jobsA[0].getState()).toBe('active');
    const handedBack = (await queuesA.get('prices.backfill').getJob(jobsA[1].id!))!;
    expect(await handedBack.getState()).toBe('waiting');
    expect(handedBack.attemptsMade).toBe(0);
    for (const [i] of jobsA.entries()) {
      const done = await checkpoints(depsA.db, i === 0 ? intraday : daily);
      expect(done).toBeLessThan((resultsB[i] as { chunks: { total: number } }).chunks.total);
    }
    // Fast-forward what time would do: the dead workers' locks expire, and the once-per-interval
    // stalled check becomes due. The new worker's stalled checker then marks the orphaned jobs
    // and, one interval (JOB_STALLED_CHECK_MS) later, moves them back to wait, and they resume.
    await depsA.redis.del(lockOf(jobsA[0]), lockOf(jobsA[1]), `${prefix}:prices.backfill:stalled-check`);
    startChild(prefix);
    const resultsA = [
      await jobsA[0].waitUntilFinished(eventsA, 150_000),
      await jobsA[1].waitUntilFinished(eventsA, 150_000),
    ];
    await eventsA.close();
    await queuesA.close();

    const [rowsA, rowsB] = [await contents(depsA.db), await contents(depsB.db)];
    expect(rowsB.ticks.length).toBeGreaterThan(100_000);
    expect(rowsB.bars_1d.length).toBeGreaterThan(10_000);
    expect(rowsB.corporate_actions.length).toBeGreaterThan(0);
    for (const table of ['ticks', 'bars_1d', 'corporate_actions'] as const) {
      expect(rowsA[table].length, table).toBe(rowsB[table].length);
      // Compare in one go (a per-row expect on 200k rows would be slow); show the first difference.
      const diff = rowsA[table].findIndex((r, i) => r !== rowsB[table][i]);
      expect(diff === -1 ? null : [rowsA[table][diff], rowsB[table][diff]], table).toBeNull();
    }

    // The resumed jobs really resumed, and report the whole job's counts all the same. (Which of
    // the two jobs stored a dividend first depends on the order they ran in, so only the events
    // each job saw and the total stored are compared.)
    type Result = Record<string, number> & { chunks: { resumed: number; total: number } };
    const [ra, rb] = [resultsA as Result[], resultsB as Result[]];
    for (const i of [0, 1]) {
      expect(ra[i]!.chunks.resumed).toBeGreaterThan(0);
      expect(ra[i]!.chunks.total).toBe(rb[i]!.chunks.total);
      const pick = (r: Result) => ({
        accepted: r.accepted,
        duplicates: r.duplicates,
        quarantined: r.quarantined,
        events: r.actionsStored! + r.actionsExisting!,
      });
      expect(pick(ra[i]!)).toEqual(pick(rb[i]!));
    }
    const stored = (rs: Result[]) => rs.reduce((n, r) => n + r.actionsStored!, 0);
    expect(stored(ra)).toBe(stored(rb));
  });
});
