/**
 * Worker groups (issue 8 §4): a process serves only the queues of its WORKER_GROUPS, so quotes and
 * rollups scale apart; bad groups refuse to start, naming the entry. Real Redis, real Workers.
 */
import type { Job, Worker } from 'bullmq';
import { afterAll, describe, expect, it } from 'vitest';
import type { Deps } from '../core/deps.ts';
import { jobNames } from '../jobs/catalogue.ts';
import { groupOf, jobsOfGroup, resolveWorkerGroups, WORKER_GROUPS } from '../jobs/groups.ts';
import { allQueueNames, createQueues } from '../jobs/queues.ts';
import { startWorkers, type WorkerHost } from '../jobs/worker-host.ts';
import { closeDeps, dropPrefix, frozenClock, testConfig, testDeps, uniquePrefix } from './support.ts';
import { collectLines, killAll, startWorkerEntry, until } from './worker-process.ts';

const QUOTE_QUEUES = [
  'prices.fetch',
  'prices.quote.synthetic',
  'prices.quote.yahoo',
  'prices.quote.alphavantage',
];

describe('the group table', () => {
  it('puts every job in exactly one group, and every group has jobs', () => {
    expect(Object.keys(groupOf).sort()).toEqual([...jobNames].sort());
    for (const g of WORKER_GROUPS) expect(jobsOfGroup(g).length).toBeGreaterThan(0);
    expect(WORKER_GROUPS.flatMap(jobsOfGroup).sort()).toEqual([...jobNames].sort());
  });

  it('resolves groups, job names and single queues to queues; all (the default) is every queue', () => {
    const queues = (entries: string[]) => resolveWorkerGroups(entries).queues.map((q) => q.queueName);
    expect(queues(['quotes'])).toEqual(QUOTE_QUEUES);
    expect(queues(['rollups'])).toEqual(['bars.rollup-5m', 'bars.rollup-1d']);
    expect(queues(['prices.quote.yahoo', 'maintenance'])).toEqual([
      'prices.quote.yahoo',
      'maintenance.retention',
    ]);
    expect(queues(['all'])).toEqual(allQueueNames);
    expect(testConfig().queue.groups).toEqual(['all']);
    expect(testConfig({ WORKER_GROUPS: ' quotes , rollups ' }).queue.groups).toEqual(['quotes', 'rollups']);
  });

  it('refuses an unknown group or queue, naming it', () => {
    expect(() => resolveWorkerGroups(['quotes', 'rolups', 'prices.quote.nasdaq'])).toThrow(
      /WORKER_GROUPS: unknown group or queue "rolups", "prices.quote.nasdaq"/,
    );
    expect(() => testConfig({ WORKER_GROUPS: ' , ' })).toThrow(/WORKER_GROUPS/);
  });
});

describe('hosts with different groups on one prefix', () => {
  const prefix = uniquePrefix();
  // A Saturday: prices.fetch finds the market closed and completes at once.
  const clock = frozenClock('2026-12-05T15:00:00Z');
  const depsFor = (groups: string): Deps =>
    testDeps({ config: testConfig({ QUEUE_PREFIX: prefix, WORKER_GROUPS: groups }), clock });
  const quotesDeps = depsFor('quotes');
  const maintenanceDeps = depsFor('maintenance');
  const queues = createQueues(quotesDeps.config);
  const hosts: WorkerHost[] = [];
  const ran: string[] = [];

  function watch(label: string, host: WorkerHost): WorkerHost {
    for (const w of host.workers as Worker[])
      w.on('completed', (job: Job) => ran.push(`${label}:${job.name}`));
    hosts.push(host);
    return host;
  }

  afterAll(async () => {
    await Promise.all(hosts.map((h) => h.close()));
    await queues.close();
    await dropPrefix(quotesDeps);
    await closeDeps(quotesDeps);
    await closeDeps(maintenanceDeps);
  });

  it('each host takes only its own queues’ jobs; a queue no host serves waits', async () => {
    const quotes = watch('quotes', startWorkers(quotesDeps));
    expect(quotes.workers.map((w) => w.name)).toEqual(QUOTE_QUEUES);

    const retention = await queues.enqueue('maintenance.retention', { dryRun: true });
    const fetch = await queues.enqueue('prices.fetch', {});
    await until(async () => ran.includes('quotes:prices.fetch'), 20_000, 'prices.fetch on the quotes host');
    expect(await fetch.getState()).toBe('completed');
    // The quotes host is up and idle, and still leaves the retention job alone.
    await new Promise((r) => setTimeout(r, 1_000));
    expect(await retention.getState()).toBe('waiting');

    const maintenance = watch('maintenance', startWorkers(maintenanceDeps));
    expect(maintenance.workers.map((w) => w.name)).toEqual(['maintenance.retention']);
    await until(
      async () => ran.includes('maintenance:maintenance.retention'),
      30_000,
      'maintenance.retention on the maintenance host',
    );
    const second = await queues.enqueue('prices.fetch', {});
    await until(async () => (await second.getState()) === 'completed', 20_000, 'second prices.fetch');
    expect(ran.sort()).toEqual([
      'maintenance:maintenance.retention',
      'quotes:prices.fetch',
      'quotes:prices.fetch',
    ]);
  });
});

describe('the worker process', () => {
  afterAll(killAll);

  async function exitOf(env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
    const child = startWorkerEntry(env, { capture: true });
    const lines = collectLines(child);
    const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    return { code, stderr: lines.stderr.join('\n') };
  }

  it('refuses to start with an unknown group, naming it', { timeout: 60_000 }, async () => {
    const { code, stderr } = await exitOf({ WORKER_GROUPS: 'quotes,rolups', QUEUE_PREFIX: uniquePrefix() });
    expect(code).not.toBe(0);
    expect(stderr).toMatch(/WORKER_GROUPS: unknown group or queue "rolups"/);
  });

  it(
    'refuses to start with MARKET_TIMEZONE set to another zone than the calendar’s',
    { timeout: 60_000 },
    async () => {
      const { code, stderr } = await exitOf({
        MARKET_TIMEZONE: 'Europe/London',
        QUEUE_PREFIX: uniquePrefix(),
      });
      expect(code).not.toBe(0);
      expect(stderr).toMatch(/MARKET_TIMEZONE: .*exchange calendar \(NYSE\) fixes the time zone/);
    },
  );

  it('logs at startup the groups and the queues it serves', { timeout: 60_000 }, async () => {
    const child = startWorkerEntry(
      { WORKER_GROUPS: 'rollups', LOG_LEVEL: 'info', QUEUE_PREFIX: uniquePrefix() },
      { capture: true },
    );
    const lines = collectLines(child);
    const started = () =>
      lines.stdout.map((l) => JSON.parse(l) as { msg?: string }).find((l) => l.msg === 'workers started');
    await until(async () => started() !== undefined, 30_000, 'the startup log line');
    expect(started()).toMatchObject({ groups: ['rollups'], queues: ['bars.rollup-5m', 'bars.rollup-1d'] });
    const exited = new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
