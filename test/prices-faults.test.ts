/**
 * Provider faults at the job level: the real yahoo-finance2 client (core/providers/yahoo.ts) talks
 * HTTP to the local provider server (test/provider-server.ts), and prices.backfill / prices.quote
 * run through real BullMQ queues and workers on a database of this file's own. For each fault the
 * job must do what the worker host promises: a 429 pauses the queue and retries without using an
 * attempt; a 5xx, a timeout or malformed JSON is retried with backoff; a validation failure fails
 * the job at once with the cause named. And no accepted row is lost or stored twice.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { sessionsBetween } from '../core/calendar/nyse.ts';
import type { Deps } from '../core/deps.ts';
import type { JobInput, JobName } from '../jobs/catalogue.ts';
import { createQueues, type QueueSet } from '../jobs/queues.ts';
import { startWorkers, type WorkerHost } from '../jobs/worker-host.ts';
import { insertSecurity } from './api-fixtures.ts';
import { createJobRunner, type JobRunner } from './job-runner.ts';
import {
  respond,
  startProviderServer,
  yahooChartBody,
  type ChartRow,
  type ProviderServer,
  type RecordedRequest,
} from './provider-server.ts';
import { closeDeps, dropPrefix, frozenClock, scratchDatabase, testConfig, testDeps } from './support.ts';

let scratch: { url: string; drop: () => Promise<void> };
let server: ProviderServer;
let deps: Deps;
let queues: QueueSet;
let host: WorkerHost;
let runner: JobRunner;

// Quick retries, so a test waits milliseconds rather than the production backoff.
const fastRetry = { attempts: 4, backoff: { type: 'fixed', delay: 50 } } as const;

const run = <N extends JobName>(name: N, payload: JobInput<N>) => runner.run(name, payload, fastRetry);

const count = async (sql: string): Promise<number> => {
  const res = await deps.db.raw<{ rows: { n: string }[] }>(sql);
  return Number(res.rows[0]?.n ?? 0);
};

const param = (r: RecordedRequest, k: string): string | null => r.url.searchParams.get(k);
/** Chart requests for bars (not the splits-only follow-up the client makes for past windows). */
const barsRequest =
  (interval: string, from?: number, to?: number) =>
  (r: RecordedRequest): boolean => {
    if (r.kind !== 'chart' || param(r, 'interval') !== interval) return false;
    const p1 = Number(param(r, 'period1'));
    return (from === undefined || p1 >= from) && (to === undefined || p1 < to);
  };

/** One-minute bars for every minute of the regular sessions from..to, deterministic. */
function minuteRows(from: string, to: string): ChartRow[] {
  const rows: ChartRow[] = [];
  let p = 170;
  for (const s of sessionsBetween(from, to)) {
    for (let t = s.openAt.getTime(); t < s.closeAt.getTime(); t += 60_000) {
      const open = p;
      p = Math.round((p + Math.sin(t / 7_000_000) * 0.07) * 100) / 100;
      const close = p;
      rows.push({
        ts: new Date(t),
        open,
        high: Math.max(open, close) + 0.02,
        low: Math.min(open, close) - 0.02,
        close,
        volume: 1000 + ((t / 60_000) % 500),
      });
    }
  }
  return rows;
}

beforeAll(async () => {
  scratch = await scratchDatabase();
  server = await startProviderServer();
  deps = testDeps({
    config: testConfig({
      DATABASE_URL: scratch.url,
      PROVIDER_TIMEOUT_MS: '400',
      PRICE_PROVIDER_FALLBACK: 'yahoo',
    }),
    clock: frozenClock('2024-03-25T20:30:00Z'),
    fetch: server.fetch,
  });
  await insertSecurity(deps, { ticker: 'AAPL', provider: 'yahoo' });
  queues = createQueues(deps.config);
  runner = createJobRunner(deps, queues);
  host = startWorkers(deps, { names: ['prices.backfill', 'prices.quote'] });
});

afterAll(async () => {
  await host?.close();
  await runner?.close();
  await queues?.close();
  await dropPrefix(deps);
  await closeDeps(deps);
  await server?.close();
  await scratch?.drop();
});

beforeEach(async () => {
  server.reset();
  server.always(splitsRequest, respond.yahooFixture('chart-AAPL-2020-08-31-to-2020-11-07'));
  await deps.db.raw(
    'truncate bars_1d, ticks, bar_changes, quarantined_rows, corporate_action_ledger, corporate_action_processed, corporate_actions, job_checkpoints',
  );
});

// The recorded 2020-01-02 bar; Yahoo's prices are split-adjusted, and the client restores them to
// as traded from the splits after the window (answered with the recording holding the 4:1 split).
const daily: JobInput<'prices.backfill'> = {
  symbols: ['AAPL'],
  from: '2020-01-02',
  to: '2020-01-02',
  interval: '1d',
};
const splitsRequest = (r: RecordedRequest): boolean => r.kind === 'chart' && param(r, 'interval') === '3mo';

describe('prices.backfill against faults of the real Yahoo client', () => {
  it('a 429 pauses the queue for Retry-After and retries without using an attempt', async () => {
    server.script(barsRequest('1d'), respond.rateLimited(1));
    const { job, state } = await run('prices.backfill', daily);
    expect(state).toBe('completed');
    // BullMQ counts finished attempts: the completing one only; the throttled run was not one.
    expect(job.attemptsMade).toBe(1);
    expect(server.requestsFor(barsRequest('1d'))).toHaveLength(2);
    const logs = (await queues.get('prices.backfill').getJobLogs(job.id!)).logs.join('\n');
    expect(logs).toMatch(/HTTP 429.*queue paused 1000 ms/);
    expect(await count('select count(*) n from bars_1d')).toBe(1);
  });

  it('while a 429 pauses the queue, no other worker takes the job back', async () => {
    const second = startWorkers(deps, { names: ['prices.backfill'] });
    try {
      server.script(barsRequest('1d'), respond.rateLimited(3));
      const queue = queues.get('prices.backfill');
      const job = await queues.enqueue('prices.backfill', daily, fastRetry);
      await expect
        .poll(async () => (await queue.getJobLogs(job.id!)).logs.join('\n'), { timeout: 10_000 })
        .toMatch(/queue paused 3000 ms/);
      expect(await queue.getRateLimitTtl()).toBeGreaterThan(0);
      // For the next second of the pause, two idle workers leave the job waiting.
      const states = new Set<string>();
      for (let i = 0; i < 10; i += 1) {
        states.add(await job.getState());
        await new Promise((r) => setTimeout(r, 100));
      }
      expect([...states]).toEqual(['waiting']);
      expect(server.requestsFor(barsRequest('1d'))).toHaveLength(1);
      await expect.poll(() => job.getState(), { timeout: 20_000 }).toBe('completed');
      expect(server.requestsFor(barsRequest('1d'))).toHaveLength(2);
    } finally {
      await second.close();
    }
  });

  it.each([
    ['HTTP 500', respond.serverError(500)],
    ['a timeout', respond.hang()],
    ['malformed JSON', respond.malformedJson()],
  ])('%s is retried with backoff, and the rows land once', async (_what, fault) => {
    server.script(barsRequest('1d'), fault);
    const { job, state } = await run('prices.backfill', daily);
    expect(state).toBe('completed');
    expect(job.attemptsMade).toBe(2);
    expect(job.returnvalue).toMatchObject({ accepted: 1, duplicates: 0, quarantined: 0 });
    const rows = await deps.db('bars_1d').select('session_date', 'close', 'volume', 'source');
    expect(rows).toEqual([
      { session_date: '2020-01-02', close: '300.35000000', volume: '33870100', source: 'yahoo' },
    ]);
  });

  it('a validation failure fails the job at once, naming the cause', async () => {
    server.always(barsRequest('1d'), respond.yahooInvalidChart());
    const { job, state } = await run('prices.backfill', daily);
    expect(state).toBe('failed');
    expect(job.attemptsMade).toBe(1);
    expect(job.failedReason).toMatch(/yahoo.*(valid|schema)/i);
    expect(job.failedReason).toMatch(/currency/);
    expect(await count('select count(*) n from bars_1d')).toBe(0);
  });

  it('a fault in the middle of a chunked intraday backfill loses and duplicates nothing', async () => {
    const from = '2024-03-04';
    const to = '2024-03-22';
    const rows = minuteRows(from, to);
    // Learn the chunk periods the backfill asks for (the provider's 1m limit is 8 days a
    // request), then answer each period with exactly its minutes.
    const probe = server.always(
      barsRequest('1m'),
      respond.json(yahooChartBody({ symbol: 'AAPL', interval: '1m', rows: [] })),
    );
    const probed = await run('prices.backfill', { symbols: ['AAPL'], from, to, interval: '1m' });
    expect(probed.state).toBe('completed');
    probe();
    const periods = server
      .requestsFor(barsRequest('1m'))
      .map((r) => [Number(param(r, 'period1')), Number(param(r, 'period2'))] as const);
    expect(periods.length).toBeGreaterThanOrEqual(3);
    for (const [p1, p2] of periods) {
      const inPeriod = rows.filter((r) => r.ts.getTime() / 1000 >= p1 && r.ts.getTime() / 1000 < p2);
      server.always(
        barsRequest('1m', p1, p1 + 1),
        respond.json(yahooChartBody({ symbol: 'AAPL', interval: '1m', rows: inPeriod })),
      );
    }
    await deps.db.raw('truncate ticks, bar_changes, job_checkpoints');
    const clean = await run('prices.backfill', { symbols: ['AAPL'], from, to, interval: '1m' });
    expect(clean.state).toBe('completed');
    const chunkRequests = server.requestsFor(barsRequest('1m')).slice(periods.length);
    expect(chunkRequests).toHaveLength(periods.length);
    const want = await deps.db.raw<{ rows: unknown[] }>(
      'select ts, seq, price, size from ticks order by ts, seq',
    );
    expect(want.rows).toHaveLength(rows.length * 4);

    // Again from nothing, with the second chunk failing once with a 502.
    await deps.db.raw('truncate ticks, bar_changes, job_checkpoints, quarantined_rows');
    const second = Number(param(chunkRequests[1]!, 'period1'));
    const first = Number(param(chunkRequests[0]!, 'period1'));
    const firstBefore = server.requestsFor(barsRequest('1m', first, first + 1)).length;
    server.script(barsRequest('1m', second, second + 1), respond.serverError(502));
    const faulty = await run('prices.backfill', { symbols: ['AAPL'], from, to, interval: '1m' });
    expect(faulty.state).toBe('completed');
    expect(faulty.job.attemptsMade).toBe(2);
    // The first chunk was committed before the fault and not fetched again on the retry.
    expect(server.requestsFor(barsRequest('1m', first, first + 1))).toHaveLength(firstBefore + 1);
    expect(faulty.job.returnvalue).toMatchObject({ accepted: rows.length, duplicates: 0, quarantined: 0 });
    const got = await deps.db.raw<{ rows: unknown[] }>(
      'select ts, seq, price, size from ticks order by ts, seq',
    );
    expect(got.rows).toEqual(want.rows);
  });

  it('bad rows in a real-shaped response are quarantined with their reason; the good ones load', async () => {
    const day = '2024-03-18';
    const good = minuteRows(day, day).slice(0, 6);
    const at = (i: number): Date => good[i]!.ts;
    const bad: [string, ChartRow][] = [
      ['null_field', { ...good[1]!, ts: new Date(at(5).getTime() + 60_000), close: null }],
      ['non_positive_price', { ...good[1]!, ts: new Date(at(5).getTime() + 120_000), low: -1 }],
      [
        'high_below_low',
        { ts: new Date(at(5).getTime() + 180_000), open: 10, high: 9, low: 11, close: 10, volume: 5 },
      ],
      ['outside_session', { ...good[1]!, ts: new Date(Date.parse(`${day}T12:00:00Z`)) }],
      ['duplicate', { ...good[2]!, close: good[2]!.close! + 0.01, high: good[2]!.high! + 0.01 }],
    ];
    const rows = [...good, ...bad.map(([, r]) => r)].sort((a, b) => a.ts.getTime() - b.ts.getTime());
    server.always(barsRequest('1m'), respond.json(yahooChartBody({ symbol: 'AAPL', interval: '1m', rows })));
    const { job, state } = await run('prices.backfill', {
      symbols: ['AAPL'],
      from: day,
      to: day,
      interval: '1m',
    });
    expect(state).toBe('completed');
    expect(job.returnvalue).toMatchObject({ accepted: good.length, quarantined: bad.length });
    const q = await deps
      .db('quarantined_rows')
      .select('reason', 'raw', 'symbol', 'job_name', 'job_id', 'source')
      .orderBy('id');
    const codes = q.map((r: { reason: string }) => r.reason.split(':')[0]).sort();
    // A repeated key with other values: the first stays, the later one is quarantined.
    expect(codes).toEqual(bad.map(([c]) => c).sort());
    for (const r of q as {
      raw: unknown;
      symbol: string;
      job_name: string;
      job_id: string;
      source: string;
    }[]) {
      expect(r).toMatchObject({
        symbol: 'AAPL',
        job_name: 'prices.backfill',
        job_id: job.id,
        source: 'yahoo',
      });
      expect(r.raw).toBeTruthy();
    }
    expect(await count('select count(*) n from ticks')).toBe(good.length * 4);
  });

  it("a provider's corrected bars, fetched again, replace the stored prints and are counted", async () => {
    const day = '2024-03-19';
    const rows = minuteRows(day, day).slice(0, 6);
    const backfill = { symbols: ['AAPL'], from: day, to: day, interval: '1m' as const };
    const original = server.always(
      barsRequest('1m'),
      respond.json(yahooChartBody({ symbol: 'AAPL', interval: '1m', rows })),
    );
    const first = await run('prices.backfill', backfill);
    original();
    expect(first.job.returnvalue).toMatchObject({ accepted: rows.length, ticksCorrected: 0 });
    // The provider revises one bar's close (and so its high): two of its four prints change.
    const revised = rows.map((r, i) => (i === 2 ? { ...r, close: r.high! + 0.5, high: r.high! + 0.5 } : r));
    server.always(
      barsRequest('1m'),
      respond.json(yahooChartBody({ symbol: 'AAPL', interval: '1m', rows: revised })),
    );
    const second = await run('prices.backfill', backfill);
    expect(second.state).toBe('completed');
    expect(second.job.returnvalue).toMatchObject({ accepted: 0, ticksCorrected: 2, ticksConflicting: 0 });
    expect(await count('select count(*) n from tick_corrections')).toBe(2);
  });
});
