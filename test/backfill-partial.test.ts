/**
 * prices.backfill over many symbols when a provider refuses some of them for good (a delisted
 * ticker): the others load, the refused ones are reported; and a daily backfill chains analytics.
 * Real PostgreSQL (a database of this file's own), real BullMQ queues and workers, the synthetic
 * provider with faults injected per symbol.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Deps } from '../core/deps.ts';
import {
  ProviderPermanentError,
  ProviderTransientError,
  type PriceProvider,
  type ProviderSet,
} from '../core/providers/types.ts';
import type { JobInput, JobName } from '../jobs/catalogue.ts';
import type { PricesBackfillResult } from '../jobs/processors/prices.ts';
import { createQueues, type QueueSet } from '../jobs/queues.ts';
import { startWorkers, type WorkerHost } from '../jobs/worker-host.ts';
import { insertSecurity } from './api-fixtures.ts';
import { closeJobTest, createJobRunner, type JobRunner } from './job-runner.ts';
import { frozenClock, scratchDatabase, testConfig, testDeps } from './support.ts';

let scratch: { url: string; drop: () => Promise<void> };
let deps: Deps;
let queues: QueueSet;
let host: WorkerHost;
let runner: JobRunner;
const ids = new Map<string, number>();
/** Daily requests the provider received, per symbol. */
const calls = new Map<string, number>();
let flakyFailures = 0;

// Quick retries, so a transient failure costs milliseconds rather than the production backoff.
const fastRetry = { attempts: 3, backoff: { type: 'fixed', delay: 50 } } as const;

/**
 * The synthetic provider, 10 calendar days per daily request (so a month is several chunks);
 * GONE* symbols are refused permanently with a Yahoo-like body, FLAKY fails once transiently.
 */
function faulty(real: PriceProvider): PriceProvider {
  return {
    ...real,
    name: 'synthetic',
    limits: { ...real.limits, dailyMaxSpanDays: 10 },
    async daily(symbol, from, to) {
      calls.set(symbol, (calls.get(symbol) ?? 0) + 1);
      if (symbol.startsWith('GONE'))
        throw new ProviderPermanentError('synthetic', `unknown symbol ${symbol}`, {
          chart: {
            result: null,
            error: { code: 'Not Found', description: 'No data found, symbol may be delisted' },
          },
        });
      if (symbol === 'FLAKY' && flakyFailures++ === 0)
        throw new ProviderTransientError('synthetic', 'HTTP 502 from upstream');
      return real.daily(symbol, from, to);
    },
  };
}

async function addSecurity(ticker: string): Promise<void> {
  ids.set(ticker, (await insertSecurity(deps, { ticker, provider: 'synthetic' })).id);
}

const run = <N extends JobName>(name: N, payload: JobInput<N>) => runner.run(name, payload, fastRetry);

const barCount = async (ticker: string): Promise<number> =>
  Number(
    (
      (await deps.db('bars_1d').where('security_id', ids.get(ticker)!).count({ n: '*' }).first()) as {
        n: string;
      }
    ).n,
  );

/** Analytics jobs pending in the queues (delayed by the debounce, or already waiting). */
async function pendingAnalytics(): Promise<{ name: string; data: unknown; dedup: string | undefined }[]> {
  const out: { name: string; data: unknown; dedup: string | undefined }[] = [];
  for (const name of ['analytics.indicators', 'analytics.risk'] as const) {
    for (const j of await queues.get(name).getJobs(['delayed', 'waiting']))
      out.push({ name, data: j.data, dedup: j.opts.deduplication?.id });
  }
  return out;
}

async function clearAnalytics(): Promise<void> {
  for (const name of ['analytics.indicators', 'analytics.risk'] as const) {
    const q = queues.get(name);
    for (const j of await q.getJobs(['delayed', 'waiting'])) {
      // Its deduplication key would otherwise collapse the next test's jobs into a removed one.
      if (j.opts.deduplication?.id) await q.removeDeduplicationKey(j.opts.deduplication.id);
      await j.remove();
    }
  }
}

beforeAll(async () => {
  scratch = await scratchDatabase();
  deps = testDeps({
    config: testConfig({ DATABASE_URL: scratch.url }),
    clock: frozenClock('2024-07-02T15:00:00Z'),
  });
  const broken = faulty(deps.providers.get('synthetic'));
  const set: ProviderSet = {
    get: () => broken,
    chainFor: () => [broken],
    async withFallback(_primary, call) {
      return { provider: 'synthetic', value: await call(broken) };
    },
  };
  deps.providers = set;
  queues = createQueues(deps.config);
  runner = createJobRunner(deps, queues);
  host = startWorkers(deps, { names: ['prices.backfill'] });
  for (const t of ['GOOD', 'GONE', 'GOOD2', 'GONE2', 'GONE3', 'FLAKY']) await addSecurity(t);
});

afterAll(async () => {
  await closeJobTest({ host, runner, queues, deps, scratch });
});

describe('prices.backfill with a symbol the provider refuses', () => {
  const sessions = 19; // June 3 – 28, 2024, less Juneteenth

  it('loads the other symbols, skips the refused one’s remaining chunks and reports it', async () => {
    calls.clear();
    await clearAnalytics();
    const { job, state } = await run('prices.backfill', {
      symbols: ['GOOD', 'GONE', 'GOOD2'],
      from: '2024-06-03',
      to: '2024-06-28',
    });
    expect(state).toBe('completed');
    expect(job.attemptsMade).toBe(1); // not retried: the refusal is permanent
    const result = job.returnvalue as PricesBackfillResult;
    expect(result.failed).toEqual([
      {
        symbol: 'GONE',
        error: expect.stringMatching(/^synthetic: GONE 2024-06-03\.\.\S+: unknown symbol GONE$/),
      },
    ]);
    expect(result).toMatchObject({ accepted: 2 * sessions, duplicates: 0, quarantined: 0, enqueued: 2 });
    // Analytics follow for the symbols that loaded, not for the refused one.
    expect((await pendingAnalytics()).map((p) => [p.name, p.data])).toEqual([
      ['analytics.indicators', { symbols: ['GOOD', 'GOOD2'], interval: '1d' }],
      ['analytics.risk', { symbols: ['GOOD', 'GOOD2'] }],
    ]);
    expect(result.perSymbol.GOOD).toMatchObject({ accepted: sessions });
    expect(result.perSymbol.GOOD2).toMatchObject({ accepted: sessions });
    expect(result.perSymbol.GONE).toMatchObject({ accepted: 0, chunks: 0 });
    expect(await barCount('GOOD')).toBe(sessions);
    expect(await barCount('GOOD2')).toBe(sessions);
    expect(await barCount('GONE')).toBe(0);
    // Four-week range in 10-day requests: GOOD and GOOD2 take every chunk, GONE only its first.
    expect(calls.get('GOOD')).toBeGreaterThan(1);
    expect(calls.get('GOOD2')).toBe(calls.get('GOOD'));
    expect(calls.get('GONE')).toBe(1);
    // Its error body is quarantined; the job log says what happened.
    const q = await deps.db('quarantined_rows').where({ job_name: 'prices.backfill', job_id: job.id! });
    expect(q).toHaveLength(1);
    expect(q[0]).toMatchObject({
      symbol: 'GONE',
      entity: 'response',
      reason: expect.stringMatching(/^error_body: /),
    });
    expect(q[0].raw).toMatchObject({ chart: { error: { code: 'Not Found' } } });
    const logs = (await queues.get('prices.backfill').getJobLogs(job.id!)).logs.join('\n');
    expect(logs).toMatch(/GONE failed permanently .*unknown symbol GONE.*remaining chunks skipped/);
    expect(logs).toMatch(/1 symbols failed: GONE/);
    // No checkpoint is left behind: the run finished.
    expect(await deps.db('job_checkpoints').where('job_name', 'prices.backfill').count({ n: '*' })).toEqual([
      { n: '0' },
    ]);
  });

  it('fails permanently, naming every symbol and its cause, when every symbol is refused', async () => {
    calls.clear();
    await clearAnalytics();
    const { job, state } = await run('prices.backfill', {
      symbols: ['GONE2', 'GONE3'],
      from: '2024-06-03',
      to: '2024-06-28',
    });
    expect(state).toBe('failed');
    expect(job.attemptsMade).toBe(1);
    expect(job.failedReason).toMatch(/^symbols: every symbol failed: /);
    expect(job.failedReason).toMatch(/GONE2 \(synthetic: GONE2 2024-06-03\.\.\S+: unknown symbol GONE2\)/);
    expect(job.failedReason).toMatch(/GONE3 \(synthetic: GONE3 2024-06-03\.\.\S+: unknown symbol GONE3\)/);
    expect([calls.get('GONE2'), calls.get('GONE3')]).toEqual([1, 1]);
    expect(await pendingAnalytics()).toEqual([]);
  });

  it('still retries a transient error, and the symbol then loads', async () => {
    const { job, state } = await run('prices.backfill', {
      symbols: ['FLAKY'],
      from: '2024-06-03',
      to: '2024-06-28',
    });
    expect(state).toBe('completed');
    expect(job.attemptsMade).toBe(2);
    expect(job.returnvalue).toMatchObject({ accepted: sessions, failed: [] });
    expect(await barCount('FLAKY')).toBe(sessions);
  });
});

describe('prices.backfill chains analytics', () => {
  it('enqueues analytics.indicators {1d} and analytics.risk for the symbols with new daily bars', async () => {
    await clearAnalytics();
    await deps
      .db('bars_1d')
      .where('security_id', ids.get('GOOD2')!)
      .where('session_date', '2024-06-10')
      .delete();
    // GOOD: all duplicates; GOOD2: one bar back; GONE: refused. Only GOOD2 has new daily bars.
    const { job, state } = await run('prices.backfill', {
      symbols: ['GOOD', 'GONE', 'GOOD2'],
      from: '2024-06-03',
      to: '2024-06-28',
    });
    expect(state).toBe('completed');
    expect(job.returnvalue).toMatchObject({ accepted: 1, enqueued: 2, failed: [{ symbol: 'GONE' }] });
    const pending = await pendingAnalytics();
    expect(pending).toEqual([
      {
        name: 'analytics.indicators',
        data: { symbols: ['GOOD2'], interval: '1d' },
        dedup: expect.stringMatching(/^analytics\.indicators:1d:[0-9a-f]{40}$/),
      },
      {
        name: 'analytics.risk',
        data: { symbols: ['GOOD2'] },
        dedup: expect.stringMatching(/^analytics\.risk:-:[0-9a-f]{40}$/),
      },
    ]);

    // Nothing new, nothing enqueued.
    await clearAnalytics();
    const again = await run('prices.backfill', {
      symbols: ['GOOD', 'GOOD2'],
      from: '2024-06-03',
      to: '2024-06-28',
    });
    expect(again.job.returnvalue).toMatchObject({ accepted: 0, enqueued: 0 });
    expect(await pendingAnalytics()).toEqual([]);
  });

  it('leaves intraday backfills to the rollups’ chain', async () => {
    await clearAnalytics();
    const { job, state } = await run('prices.backfill', {
      symbols: ['GOOD'],
      from: '2024-06-27',
      to: '2024-06-28',
      interval: '5m',
    });
    expect(state).toBe('completed');
    expect(job.returnvalue).toMatchObject({ accepted: 2 * 78, enqueued: 0 });
    expect(await pendingAnalytics()).toEqual([]);
  });
});
