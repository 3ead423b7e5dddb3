/**
 * The offline pipeline end to end through real BullMQ queues and workers, in a database of this
 * file's own: data.generate -> bars.rollup-5m -> bars.rollup-1d -> analytics.indicators ->
 * analytics.risk as one flow. The bars must equal an independent recomputation from the ticks,
 * the analytics steps must have run on them, and running the flow again must change no bar.
 */
import { QueueEvents } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Deps } from '../core/deps.ts';
import { createRedis } from '../core/redis.ts';
import { addGeneratePipeline } from '../jobs/flows.ts';
import { createQueues, progressPercent, type QueueSet } from '../jobs/queues.ts';
import { startWorkers, type WorkerHost } from '../jobs/worker-host.ts';
import { loadTicks, oracle1d, oracle5m, printable, stored1d, stored5m } from './bars-oracle.ts';
import { closeDeps, dropPrefix, scratchDatabase, testConfig, testDeps } from './support.ts';

let deps: Deps;
let queues: QueueSet;
let host: WorkerHost;
let events: QueueEvents;
let scratch: { url: string; drop: () => Promise<void> };

beforeAll(async () => {
  scratch = await scratchDatabase();
  deps = testDeps({ config: testConfig({ DATABASE_URL: scratch.url }) });
  queues = createQueues(deps.config);
  host = startWorkers(deps);
  events = new QueueEvents('analytics.risk', {
    connection: createRedis(deps.config, { forWorker: true }),
    prefix: deps.config.queue.prefix,
  });
  await events.waitUntilReady();
});

afterAll(async () => {
  await host?.close();
  await events?.close();
  await queues?.close();
  await dropPrefix(deps);
  await closeDeps(deps);
  await scratch?.drop();
});

const payload = { seed: 11, securities: 4, tickSessions: 3, years: 0.1, endDate: '2024-07-05' };

/** Runs the flow to its root's end; returns the daily rollup's result and the root's. */
async function runFlow(): Promise<{ rollup1d: unknown; risk: unknown }> {
  const connection = createRedis(deps.config);
  try {
    const node = await addGeneratePipeline(deps.config, connection, payload);
    const risk: unknown = await node.job.waitUntilFinished(events, 120_000);
    const rollup1dId = node.children?.[0]?.children?.[0]?.job.id;
    const rollup1d: unknown = (await queues.get('bars.rollup-1d').getJob(rollup1dId!))?.returnvalue;
    return { rollup1d, risk };
  } finally {
    await connection.quit();
  }
}

describe('data.generate -> rollups -> analytics through the queues', () => {
  it('produces bars equal to an independent recomputation from the ticks', async () => {
    const result = (await runFlow()).rollup1d as { from: string; to: string; upserted: number };
    // The window ends on 2024-07-05 and includes the 2024-07-03 13:00 early close.
    expect(result.to).toBe('2024-07-05');
    expect(result.upserted).toBeGreaterThan(0);

    const ids = (await deps.db('securities').select('id')).map((r: { id: number }) => r.id);
    const ticks = await loadTicks(deps.db, ids);
    expect(ticks.length).toBeGreaterThan(1000);
    const sessions = await deps.repos.calendar.sessionsBetween(result.from, result.to);
    expect(sessions.map((s) => s.date)).toEqual(
      ['2024-07-01', '2024-07-02', '2024-07-03', '2024-07-05'].filter((d) => d >= result.from),
    );

    const want5m = oracle5m(ticks);
    expect(want5m.size).toBeGreaterThan(0);
    expect(printable(await stored5m(deps.db, ids))).toEqual(printable(want5m));
    expect(printable(await stored1d(deps.db, ids))).toEqual(printable(oracle1d(ticks, sessions)));

    // The analytics steps ran on those bars: one indicator row per daily bar, one risk row each.
    const daily = await deps.db('bars_1d').count<{ n: string }[]>({ n: '*' });
    const indicatorRows = await deps
      .db('indicator_values')
      .where({ interval: '1d' })
      .count<{ n: string }[]>({ n: '*' });
    expect(Number(indicatorRows[0]!.n)).toBe(Number(daily[0]!.n));
    const risk = await deps.db('risk_metrics').countDistinct<{ n: string }[]>({ n: 'security_id' });
    expect(Number(risk[0]!.n)).toBe(ids.length);
    // The generated benchmark: with the default RISK_BENCHMARK (SPY) every equity has a beta.
    expect(deps.config.risk.benchmark).toBe('SPY');
    const betas = await deps.db.raw<{ rows: { ticker: string; beta: number | null }[] }>(
      `select s.ticker, r.beta from risk_metrics r join securities s on s.id = r.security_id
        where s.security_type = 'EQUITY' and s.ticker <> 'SPY'`,
    );
    expect(betas.rows.length).toBeGreaterThan(0);
    expect(betas.rows.filter((r) => r.beta === null)).toEqual([]);

    // Bull Board shows progress and logs: both were written through the real job.
    const done = await queues.get('bars.rollup-5m').getCompleted();
    expect(progressPercent(done[0]?.progress)).toBe(100);
    // An object, so Bull Board's Progress tab shows it (it shows nothing for a bare number).
    expect(done[0]?.progress).toMatchObject({ progress: 100, updatedAt: expect.any(String) });
    const logs = await queues.get('bars.rollup-5m').getJobLogs(done[0]!.id!);
    expect(logs.logs.join('\n')).toMatch(/bars written/);
  });

  it('changes nothing when the whole flow runs again', async () => {
    const before = printable(
      await stored5m(
        deps.db,
        (await deps.db('securities').select('id')).map((r: { id: number }) => r.id),
      ),
    );
    const again = (await runFlow()).rollup1d as { upserted: number; deleted: number };
    expect([again.upserted, again.deleted]).toEqual([0, 0]);
    const after = printable(
      await stored5m(
        deps.db,
        (await deps.db('securities').select('id')).map((r: { id: number }) => r.id),
      ),
    );
    expect(after).toEqual(before);
  });
});
