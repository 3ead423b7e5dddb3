/**
 * prices.fetch, prices.quote, prices.backfill and fx.rates through real BullMQ queues and workers
 * on a database of this file's own, with the synthetic provider (and, for the quarantine, a
 * provider that corrupts the synthetic one's rows the ways real feeds go wrong).
 */
import type { Job } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Clock, Deps } from '../core/deps.ts';
import { refreshQuote } from '../core/ingest/quotes.ts';
import {
  ProviderPermanentError,
  ProviderRateLimitError,
  type PriceProvider,
  type ProviderSet,
} from '../core/providers/types.ts';
import type { JobInput, JobName } from '../jobs/catalogue.ts';
import { createQueues, progressPercent, type QueueSet } from '../jobs/queues.ts';
import { startWorkers, type WorkerHost } from '../jobs/worker-host.ts';
import { loadTicks, oracle5m, toScaled } from './bars-oracle.ts';
import { insertSecurity } from './api-fixtures.ts';
import { createJobRunner, type JobRunner } from './job-runner.ts';
import { closeDeps, dropPrefix, scratchDatabase, testConfig, testDeps } from './support.ts';

/** A clock the test moves; the providers built with the deps read it too. */
const clock: Clock & { set(iso: string): void } = (() => {
  let t = new Date('2024-07-02T15:00:30Z');
  return {
    now: () => new Date(t),
    set(iso: string) {
      t = new Date(iso);
    },
  };
})();

let scratch: { url: string; drop: () => Promise<void> };
let deps: Deps;
let queues: QueueSet;
const hosts: WorkerHost[] = [];
const ids = new Map<string, number>();

async function addSecurity(ticker: string, currency = 'USD', provider = 'synthetic'): Promise<number> {
  const { id } = await insertSecurity(deps, { ticker, currency, provider });
  ids.set(ticker, id);
  return id;
}

/** One runner per (deps, queues) pair: the main one and the faulty provider's. */
const runners = new Map<QueueSet, JobRunner>();
function runnerFor(q: QueueSet, d: Deps): JobRunner {
  let r = runners.get(q);
  if (!r) {
    r = createJobRunner(d, q);
    runners.set(q, r);
  }
  return r;
}

/** Runs a job that must complete; a failure throws with its reason. */
async function run<N extends JobName>(
  q: QueueSet,
  d: Deps,
  name: N,
  payload: JobInput<N>,
): Promise<{ job: Job; result: unknown }> {
  const { job, state, result } = await runnerFor(q, d).run(name, payload);
  if (state !== 'completed') throw new Error(`${name} ended ${state}: ${job.failedReason}`);
  return { job, result };
}

async function until(check: () => Promise<boolean>, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 50));
  }
}

const count = async (sql: string, bindings: unknown[] = []): Promise<number> => {
  const res = await deps.db.raw<{ rows: { n: string }[] }>(sql, bindings as never);
  return Number(res.rows[0]?.n ?? 0);
};

beforeAll(async () => {
  scratch = await scratchDatabase();
  deps = testDeps({ config: testConfig({ DATABASE_URL: scratch.url }), clock });
  queues = createQueues(deps.config);
  for (const t of ['AAA', 'BBB', 'CCC']) await addSecurity(t);
  await addSecurity('EURCO', 'EUR');
  await addSecurity('JPYCO', 'JPY');
  await addSecurity('GBPCO', 'GBP');
});

afterAll(async () => {
  for (const h of hosts) await h.close();
  for (const r of runners.values()) await r.close();
  await queues?.close();
  await dropPrefix(deps);
  await closeDeps(deps);
  await scratch?.drop();
});

describe('prices.fetch and prices.quote', () => {
  const lane = () => queues.get('prices.quote', 'synthetic');

  beforeAll(async () => {
    hosts.push(startWorkers(deps, { names: ['prices.fetch'] }));
    await deps.db('watchlist').insert(['AAA', 'BBB', 'CCC'].map((t) => ({ security_id: ids.get(t) })));
  });

  it.each([
    ['2024-07-06T15:00:00Z', /2024-07-06 is not an NYSE trading day/], // Saturday
    ['2024-07-04T15:00:00Z', /2024-07-04 is not an NYSE trading day/], // Independence Day
    ['2024-07-02T13:00:00Z', /before the 2024-07-02 open/], // 09:00 New York
    ['2024-07-03T17:30:00Z', /after the 2024-07-03 close .*early close/], // 13:30 on an early close
    ['2024-07-02T20:00:00Z', /after the 2024-07-02 close/], // 16:00
  ])('does nothing while the market is closed (%s)', async (iso, why) => {
    clock.set(iso);
    const { job, result } = await run(queues, deps, 'prices.fetch', {});
    expect(result).toMatchObject({ skipped: true, enqueued: 0 });
    expect((result as { reason: string }).reason).toMatch(why);
    expect((await lane().getJobCounts()).waiting).toBe(0);
    const logs = await queues.get('prices.fetch').getJobLogs(job.id!);
    expect(logs.logs.join('\n')).toMatch(/market closed/);
  });

  it('enqueues one quote per watch-list symbol; duplicate triggers collapse into the pending jobs', async () => {
    clock.set('2024-07-02T15:00:30Z');
    const first = await run(queues, deps, 'prices.fetch', {});
    expect(first.result).toMatchObject({ skipped: false, symbols: 3, enqueued: 3, collapsed: 0 });
    const again = await run(queues, deps, 'prices.fetch', {});
    expect(again.result).toMatchObject({ enqueued: 0, collapsed: 3 });
    const waiting = await lane().getWaiting();
    expect(waiting.map((j) => (j.data as { symbol: string }).symbol).sort()).toEqual(['AAA', 'BBB', 'CCC']);
    // The lane's limiter and the provider are the security's: synthetic.
    expect(waiting.every((j) => (j.data as { provider: string }).provider === 'synthetic')).toBe(true);

    hosts.push(startWorkers(deps, { names: ['prices.quote'] }));
    await until(async () => (await lane().getJobCounts()).completed === 3);
    const ticks = await deps.db('ticks').select('security_id', 'ts', 'seq', 'size').orderBy('security_id');
    expect(ticks).toHaveLength(3);
    for (const t of ticks as { ts: Date; seq: number }[]) {
      expect(t.ts.toISOString()).toBe('2024-07-02T15:00:00.000Z');
      expect(t.seq).toBe(0);
    }
    // Each tick write recorded its range for the incremental rollup.
    expect(
      await count(
        `select count(*) as n from bar_changes where level = '5m' and from_ts = '2024-07-02T15:00:00Z'
            and to_ts = '2024-07-02T15:00:00.001Z'`,
      ),
    ).toBe(3);
  });

  it('stores a re-fetched quote once, and sizes new ticks by the session volume traded since', async () => {
    // Same minute: the same last trade, so a duplicate.
    clock.set('2024-07-02T15:00:50Z');
    await run(queues, deps, 'prices.fetch', {});
    await until(async () => (await lane().getJobCounts()).completed === 6);
    const done = await lane().getCompleted();
    const dupes = done.filter((j) => (j.returnvalue as { duplicates: number }).duplicates === 1);
    expect(dupes).toHaveLength(3);
    expect(await count('select count(*) as n from ticks')).toBe(3);

    clock.set('2024-07-02T15:05:10Z');
    await run(queues, deps, 'prices.fetch', { symbols: ['AAA'] });
    await until(async () => (await lane().getJobCounts()).completed === 7);
    const sizes = await deps
      .db('ticks')
      .where('security_id', ids.get('AAA'))
      .orderBy('ts')
      .select('ts', 'size');
    expect(sizes).toHaveLength(2);
    const q = await deps.providers.get('synthetic').quote('AAA');
    // The first quote of the session carried the volume traded since the open; the sizes add up.
    expect(sizes.reduce((a, r: { size: string }) => a + Number(r.size), 0)).toBe(q.volume);
    expect(Number((sizes[1] as { size: string }).size)).toBeGreaterThan(0);
  });

  it('runs when forced while closed, and names unknown symbols', async () => {
    clock.set('2024-07-06T15:00:00Z');
    const { result } = await run(queues, deps, 'prices.fetch', { force: true, symbols: ['BBB', 'NOPE'] });
    expect(result).toMatchObject({ skipped: false, enqueued: 1, unknown: ['NOPE'] });
    await until(async () => (await lane().getJobCounts()).completed === 8);
  });

  it('refreshQuote answers from storage while fresh, fetches and stores when stale', async () => {
    expect(await refreshQuote(deps, 'NOPE')).toBeUndefined();
    clock.set('2024-07-02T15:05:20Z');
    const fresh = await refreshQuote(deps, 'AAA');
    expect(fresh).toMatchObject({ source: 'stored', timestamp: new Date('2024-07-02T15:05:00Z') });
    clock.set('2024-07-02T15:07:30Z');
    const fetched = await refreshQuote(deps, 'AAA', { maxAgeSeconds: 60 });
    expect(fetched).toMatchObject({ source: 'fetched', timestamp: new Date('2024-07-02T15:07:00Z') });
    const q = await deps.providers.get('synthetic').quote('AAA');
    expect(Number(fetched!.price)).toBe(q.price);
    expect(await count('select count(*) as n from ticks where security_id = ?', [ids.get('AAA')])).toBe(3);
  });
});

describe('prices.backfill', () => {
  beforeAll(async () => {
    clock.set('2024-07-02T15:00:00Z');
    hosts.push(startWorkers(deps, { names: ['prices.backfill'] }));
    await addSecurity('DDD');
  });

  it('loads daily bars as the provider gives them, never over a rolled-up bar, and idempotently', async () => {
    const aaa = ids.get('AAA')!;
    // A bar rolled up from ticks is authoritative: the provider must not replace it.
    await deps.db('bars_1d').insert({
      security_id: aaa,
      session_date: '2024-06-03',
      open: 1,
      high: 2,
      low: 1,
      close: 2,
      volume: 10,
      source: 'rollup',
    });
    const payload = {
      symbols: ['AAA', 'BBB'],
      from: '2024-05-01',
      to: '2024-06-28',
      interval: '1d' as const,
    };
    const { job, result } = await run(queues, deps, 'prices.backfill', payload);
    const sessions = 41; // May 1 – June 28, 2024 (Memorial Day and Juneteenth closed)
    expect(result).toMatchObject({ accepted: 2 * sessions - 1, duplicates: 1, quarantined: 0 });
    expect(progressPercent((await queues.get('prices.backfill').getJob(job.id!))?.progress)).toBe(100);

    const provider = deps.providers.get('synthetic');
    for (const t of ['AAA', 'BBB']) {
      const want = await provider.daily(t, '2024-05-01', '2024-06-28');
      const got = await deps
        .db('bars_1d')
        .where({ security_id: ids.get(t), source: 'synthetic' })
        .orderBy('session_date')
        .select<
          {
            session_date: string;
            open: string;
            high: string;
            low: string;
            close: string;
            adj_close: string;
            volume: string;
          }[]
        >('session_date', 'open', 'high', 'low', 'close', 'adj_close', 'volume');
      const expected = want.bars.filter((b) => !(t === 'AAA' && b.date === '2024-06-03'));
      expect(got.map((r) => r.session_date)).toEqual(expected.map((b) => b.date));
      got.forEach((r, i) => {
        const b = expected[i]!;
        expect([r.open, r.high, r.low, r.close, r.adj_close].map(Number)).toEqual([
          b.open,
          b.high,
          b.low,
          b.close,
          b.adjClose,
        ]);
        expect(Number(r.volume)).toBe(b.volume);
      });
    }
    const kept = await deps.db('bars_1d').where({ security_id: aaa, session_date: '2024-06-03' }).first();
    expect(kept).toMatchObject({ source: 'rollup', open: '1.00000000', volume: '10' });

    const again = await run(queues, deps, 'prices.backfill', payload);
    expect(again.result).toMatchObject({ accepted: 0, duplicates: 2 * sessions, quarantined: 0 });
  });

  it('in "missing" mode fetches only the sessions without bars', async () => {
    const bbb = ids.get('BBB')!;
    const before = await deps.db('bars_1d').where('security_id', bbb).orderBy('session_date');
    await deps
      .db('bars_1d')
      .where('security_id', bbb)
      .whereIn('session_date', ['2024-05-07', '2024-05-08', '2024-06-12'])
      .delete();
    const { result } = await run(queues, deps, 'prices.backfill', {
      symbols: ['AAA', 'BBB'],
      from: '2024-05-01',
      to: '2024-06-28',
      mode: 'missing',
    });
    expect(result).toMatchObject({
      accepted: 3,
      duplicates: 0,
      chunks: { total: 2, fetched: 2, resumed: 0 },
    });
    const after = await deps.db('bars_1d').where('security_id', bbb).orderBy('session_date');
    const strip = (rows: Record<string, unknown>[]) => rows.map(({ updated_at: _u, ...r }) => r);
    expect(strip(after)).toEqual(strip(before));
  });

  it('stores intraday bars as ticks whose 5-minute rollup is the provider’s own 5-minute bars', async () => {
    const ddd = ids.get('DDD')!;
    const { result } = await run(queues, deps, 'prices.backfill', {
      symbols: ['DDD'],
      from: '2024-05-20',
      to: '2024-06-26',
      interval: '1m',
    });
    // 26 sessions (Memorial Day, Juneteenth closed) of 390 one-minute bars, in 2 chunks of at most
    // the synthetic provider's 31 days per request.
    expect(result).toMatchObject({ accepted: 26 * 390, duplicates: 0, chunks: { total: 2, fetched: 2 } });
    expect(await count('select count(*) as n from ticks where security_id = ?', [ddd])).toBe(4 * 26 * 390);

    const want = await deps.providers
      .get('synthetic')
      .intraday('DDD', new Date('2024-05-20T13:30:00Z'), new Date('2024-06-26T20:00:00Z'), 5);
    const got = oracle5m(await loadTicks(deps.db, [ddd]));
    expect(got.size).toBe(want.bars.length);
    // The volume rides on each 1-minute bar's close print: Σ(price·size) of a bucket is Σ close·volume.
    const minutes = await deps.providers
      .get('synthetic')
      .intraday('DDD', new Date('2024-05-20T13:30:00Z'), new Date('2024-06-26T20:00:00Z'), 1);
    const pv = new Map<number, bigint>();
    for (const m of minutes.bars) {
      const bucket = Math.floor(m.ts.getTime() / 300_000) * 300_000;
      pv.set(bucket, (pv.get(bucket) ?? 0n) + toScaled(String(m.close)) * BigInt(m.volume!));
    }
    for (const b of want.bars) {
      const g = got.get(`${ddd}|${BigInt(b.ts.getTime()) * 1000n}`);
      expect(g, b.ts.toISOString()).toBeDefined();
      expect([g!.open, g!.high, g!.low, g!.close]).toEqual(
        [b.open, b.high, b.low, b.close].map((x) => toScaled(String(x))),
      );
      expect(g!.volume).toBe(BigInt(b.volume!));
      expect(g!.count).toBe(20); // 5 one-minute bars x 4 prints
      expect(g!.pv).toBe(pv.get(b.ts.getTime()));
    }
    // Every tick range is in bar_changes, per chunk.
    const changes = await deps.db('bar_changes').where({ security_id: ddd, level: '5m' }).orderBy('from_ts');
    expect(changes).toHaveLength(2);
    expect((changes[0] as { from_ts: Date }).from_ts.toISOString()).toBe('2024-05-20T13:30:00.000Z');
    expect((changes[1] as { to_ts: Date }).to_ts.toISOString()).toBe('2024-06-26T19:59:00.001Z');

    // Re-running changes nothing and says so.
    const again = await run(queues, deps, 'prices.backfill', {
      symbols: ['DDD'],
      from: '2024-05-20',
      to: '2024-06-26',
      interval: '1m',
    });
    expect(again.result).toMatchObject({ accepted: 0, duplicates: 26 * 390 });
    expect(await count('select count(*) as n from bar_changes where security_id = ?', [ddd])).toBe(2);
  });

  it('stores corporate actions from the provider once', async () => {
    // A symbol whose synthetic history has a dividend in the window.
    const provider = deps.providers.get('synthetic');
    let ticker = '';
    for (let i = 0; i < 40 && !ticker; i++) {
      const h = await provider.daily(`DIV${i}`, '2024-04-01', '2024-06-28');
      if (h.events.some((e) => e.kind === 'dividend')) ticker = `DIV${i}`;
    }
    expect(ticker).not.toBe('');
    const id = await addSecurity(ticker);
    const want = (await provider.daily(ticker, '2024-04-01', '2024-06-28')).events;
    const payload = { symbols: [ticker], from: '2024-04-01', to: '2024-06-28' };
    const first = await run(queues, deps, 'prices.backfill', payload);
    expect(first.result).toMatchObject({ actionsStored: want.length, actionsExisting: 0 });
    const second = await run(queues, deps, 'prices.backfill', payload);
    expect(second.result).toMatchObject({ actionsStored: 0, actionsExisting: want.length });
    const rows = await deps.db('corporate_actions').where('security_id', id).orderBy('ex_date');
    expect(rows).toHaveLength(want.length);
    for (const [i, e] of want.entries()) {
      const r = rows[i] as Record<string, string | null>;
      expect(r.ex_date).toBe(e.exDate);
      if (e.kind === 'dividend') {
        expect(r).toMatchObject({
          action_id: `synthetic:${ticker}:DIVIDEND:${e.exDate}`,
          action_type: 'DIVIDEND',
          payment_date: e.exDate,
          currency: 'USD',
          source: 'synthetic',
        });
        expect(Number(r.amount)).toBe(e.amount);
      } else {
        expect(r.action_type).toBe(e.ratio! < 1 ? 'REVERSE_SPLIT' : 'STOCK_SPLIT');
      }
    }
  });

  it('fails permanently on bad input, naming the field', async () => {
    const e = await runnerFor(queues, deps).events('prices.backfill');
    const unknown = await queues.enqueue('prices.backfill', {
      symbols: ['NOPE'],
      from: '2024-05-01',
      to: '2024-05-02',
    });
    await expect(unknown.waitUntilFinished(e, 30_000)).rejects.toThrow(/symbols: unknown tickers NOPE/);
    // A reversed range is refused at the door (the catalogue), before anything is queued.
    await expect(
      queues.enqueue('prices.backfill', { symbols: ['AAA'], from: '2024-05-02', to: '2024-05-01' }),
    ).rejects.toThrow(/must be on or before to/);
    const beyond = await queues.enqueue('prices.backfill', {
      symbols: ['AAA'],
      from: '1990-01-02',
      to: '1990-02-01',
      interval: '5m',
    });
    await expect(beyond.waitUntilFinished(e, 30_000)).rejects.toThrow(
      /wholly beyond synthetic's 5-minute history/,
    );
  });
});

describe('ticks repository', () => {
  const batch = (securityId: number, from: number, n: number) =>
    Array.from({ length: n }, (_, i) => ({
      securityId,
      ts: new Date(Date.parse('2024-03-04T15:00:00Z') + (from + i) * 1000),
      seq: 0,
      origin: 'quote' as const,
      price: (100 + (from + i) / 100).toFixed(2), // a key always has the same values
      size: 100,
      bid: null,
      ask: null,
    }));

  it('counts duplicates instead of storing them, whichever way the batch goes in', async () => {
    const id = await addSecurity('TKA');
    const first = await deps.repos.ticks.insert(batch(id, 0, 500));
    expect(first).toMatchObject({ ticks: 500, ticksInserted: 500 });
    // Half already stored: the staging path inserts the rest and counts the others.
    const second = await deps.repos.ticks.insert(batch(id, 250, 500));
    expect(second).toMatchObject({ ticks: 500, ticksInserted: 250, corrected: 0, conflicts: 0 });
    expect(await count('select count(*) as n from ticks where security_id = ?', [id])).toBe(750);
    const changes = await deps.db('bar_changes').where('security_id', id).orderBy('id');
    expect(
      changes.map((c: { from_ts: Date; to_ts: Date }) => [c.from_ts.toISOString(), c.to_ts.toISOString()]),
    ).toEqual([
      ['2024-03-04T15:00:00.000Z', '2024-03-04T15:08:19.001Z'],
      ['2024-03-04T15:08:20.000Z', '2024-03-04T15:12:29.001Z'],
    ]);
  });

  it('stores a batch once when two writers race with it', async () => {
    const id = await addSecurity('TKB');
    const rows = batch(id, 0, 2000);
    const [a, b] = await Promise.all([deps.repos.ticks.insert(rows), deps.repos.ticks.insert(rows)]);
    expect(a.ticksInserted + b.ticksInserted).toBe(2000);
    expect(await count('select count(*) as n from ticks where security_id = ?', [id])).toBe(2000);
  });
});

describe('fx.rates', () => {
  beforeAll(() => {
    clock.set('2024-07-02T22:00:00Z');
    hosts.push(startWorkers(deps, { names: ['fx.rates'] }));
  });

  /** round(a / b, 10) half away from zero, exactly, from decimal strings. */
  const crossOf = (a: string, b: string): string => {
    const s = (x: string): bigint => {
      const [i = '0', f = ''] = x.split('.');
      return BigInt(i) * 10n ** 10n + BigInt((f + '0000000000').slice(0, 10));
    };
    const num = s(a) * 10n ** 10n;
    const den = s(b);
    let q = num / den;
    if ((num % den) * 2n >= den) q += 1n;
    const str = q.toString().padStart(11, '0');
    return `${str.slice(0, -10)}.${str.slice(-10)}`;
  };

  it('loads direct rates to the base and triangulates crosses in decimal, idempotently', async () => {
    const { result } = await run(queues, deps, 'fx.rates', { from: '2024-06-24', to: '2024-06-28' });
    expect(result).toMatchObject({
      base: 'USD',
      currencies: ['EUR', 'GBP', 'JPY'],
      direct: { inserted: 15, updated: 0, unchanged: 0 },
      crosses: { inserted: 30, updated: 0, unchanged: 0 },
      quarantined: 0,
    });
    const rate = async (f: string, t: string, d: string): Promise<string> =>
      (await deps.db('fx_rates').where({ from_currency: f, to_currency: t, rate_date: d }).first()).rate;
    const eur = await deps.providers.get('synthetic').fxDaily('EUR', 'USD', '2024-06-24', '2024-06-28');
    for (const r of eur) expect(Number(await rate('EUR', 'USD', r.date))).toBe(r.rate);
    for (const d of ['2024-06-24', '2024-06-28']) {
      const eurusd = await rate('EUR', 'USD', d);
      const jpyusd = await rate('JPY', 'USD', d);
      expect(await rate('EUR', 'JPY', d)).toBe(crossOf(eurusd, jpyusd));
      expect(await rate('JPY', 'EUR', d)).toBe(crossOf(jpyusd, eurusd));
    }
    expect(
      (await deps.db('fx_rates').where({ from_currency: 'EUR', to_currency: 'JPY' }).first()).source,
    ).toBe('triangulated');

    const again = await run(queues, deps, 'fx.rates', { from: '2024-06-24', to: '2024-06-28' });
    expect(again.result).toMatchObject({
      direct: { inserted: 0, updated: 0, unchanged: 15 },
      crosses: { inserted: 0, updated: 0, unchanged: 30 },
    });
  });

  it('defaults to the last five days through today', async () => {
    const { result } = await run(queues, deps, 'fx.rates', { currencies: ['EUR'] });
    expect(result).toMatchObject({ from: '2024-06-27', to: '2024-07-02', currencies: ['EUR'] });
    // Weekdays only: 06-27, 06-28 (already stored), 07-01, 07-02.
    expect(result).toMatchObject({ direct: { inserted: 2, unchanged: 2 } });
  });
});

describe('quarantine', () => {
  let bad: Deps;
  let badQueues: QueueSet;
  let badHost: WorkerHost;
  let throttled = 0;

  /** The synthetic provider with the faults of real feeds injected into its responses. */
  function faulty(real: PriceProvider): PriceProvider {
    return {
      name: 'synthetic',
      limits: real.limits,
      async quote(symbol) {
        return { ...(await real.quote(symbol)), currency: 'EUR' };
      },
      async daily(symbol, from, to) {
        if (symbol === 'THR' && throttled++ === 0)
          throw new ProviderRateLimitError('synthetic', 'Note: 5 calls per minute', 200, {
            Note: 'Thank you for using Alpha Vantage! Our standard API rate limit is 5 requests per minute.',
          });
        const h = await real.daily(symbol, from, to);
        if (symbol !== 'QQQ') return h;
        const b = h.bars;
        b[1]!.close = Number.NaN;
        b[2]!.open = 0;
        b[3]!.high = null;
        [b[4]!.high, b[4]!.low] = [b[4]!.low, b[4]!.high];
        b[5]!.volume = -3;
        b.push({ ...b[0]!, date: '2024-06-08', raw: { date: '2024-06-08' } }); // a Saturday
        b.push({ ...b[6]! }); // an exact repeat
        b.push({ ...b[7]!, close: b[7]!.low, raw: { conflicting: b[7]!.date } }); // same day, other values
        b.push({ ...b[8]!, date: b[8]!.date, raw: { Note: 'Thank you for using Alpha Vantage!' } });
        b.splice(8, 1);
        return h;
      },
      async intraday(symbol, from, to, minutes) {
        return real.intraday(symbol, from, to, minutes);
      },
      async fxDaily(base, quote, from, to) {
        if (base === 'CHF')
          throw new ProviderPermanentError('synthetic', 'unknown pair CHFUSD', { error: 'no pair' });
        const r = await real.fxDaily(base, quote, from, to);
        if (base === 'EUR')
          r[1] = { ...r[1]!, rate: Number.NaN, raw: { ...(r[1]!.raw as object), rate: Number.NaN } };
        return r;
      },
    };
  }

  beforeAll(async () => {
    bad = testDeps({ config: testConfig({ DATABASE_URL: scratch.url }), clock });
    const broken = faulty(bad.providers.get('synthetic'));
    const set: ProviderSet = {
      get: () => broken,
      chainFor: () => [broken],
      async withFallback(_primary, call) {
        return { provider: 'synthetic', value: await call(broken) };
      },
    };
    bad.providers = set;
    badQueues = createQueues(bad.config);
    badHost = startWorkers(bad, { names: ['prices.backfill', 'prices.quote', 'fx.rates'] });
    await addSecurity('QQQ');
    await addSecurity('THR');
  });

  afterAll(async () => {
    await badHost?.close();
    await badQueues.close();
    await dropPrefix(bad);
    await closeDeps(bad);
  });

  const quarantined = async (jobName: string, jobId: string) =>
    (await deps.db('quarantined_rows').where({ job_name: jobName, job_id: jobId }).orderBy('id')) as {
      reason: string;
      raw: Record<string, unknown>;
      entity: string;
      symbol: string;
      source: string;
    }[];

  it('keeps every bad row with its reason and raw payload while the good rows load', async () => {
    clock.set('2024-07-02T15:00:00Z');
    const { job, result } = await run(badQueues, bad, 'prices.backfill', {
      symbols: ['QQQ'],
      from: '2024-06-03',
      to: '2024-06-28',
    });
    const sessions = 19; // June 3 – 28 less Juneteenth
    const q = await quarantined('prices.backfill', job.id!);
    expect(q.map((r) => r.reason.split(':')[0])).toEqual([
      'non_finite_price',
      'non_positive_price',
      'null_field',
      'high_below_low',
      'bad_volume',
      'not_trading_day',
      'error_body',
      'duplicate',
    ]);
    for (const r of q) expect(r).toMatchObject({ entity: 'bar_1d', symbol: 'QQQ', source: 'synthetic' });
    // The raw payload is the provider's own fragment, non-finite numbers kept as text.
    expect(q[0]!.raw).toMatchObject({ date: expect.any(String) });
    expect(q[5]!.raw).toEqual({ date: '2024-06-08' });
    expect(q[6]!.raw).toMatchObject({ Note: expect.stringMatching(/Alpha Vantage/) });
    expect(q[7]!.raw).toEqual({ conflicting: expect.any(String) });
    // 19 sessions, 5 corrupted, 1 replaced by an error body: 13 good rows load; 1 exact repeat.
    expect(result).toMatchObject({ accepted: sessions - 6, duplicates: 1, quarantined: 8 });
    expect(await count('select count(*) as n from bars_1d where security_id = ?', [ids.get('QQQ')])).toBe(
      sessions - 6,
    );
  });

  it('quarantines a throttle body, backs off and finishes without losing or doubling rows', async () => {
    const { job, result } = await run(badQueues, bad, 'prices.backfill', {
      symbols: ['THR'],
      from: '2024-06-03',
      to: '2024-06-28',
    });
    expect(throttled).toBe(2);
    expect(result).toMatchObject({ accepted: 19, duplicates: 0, quarantined: 0 });
    const q = await quarantined('prices.backfill', job.id!);
    expect(q).toHaveLength(1);
    expect(q[0]).toMatchObject({ entity: 'response', reason: expect.stringMatching(/^error_body: /) });
    expect(q[0]!.raw).toMatchObject({ Note: expect.stringMatching(/rate limit/) });
    expect(await count('select count(*) as n from bars_1d where security_id = ?', [ids.get('THR')])).toBe(19);
  });

  it('quarantines a quote in another currency and stores no tick', async () => {
    const before = await count('select count(*) as n from ticks');
    const { job, result } = await run(badQueues, bad, 'prices.quote', {
      symbol: 'QQQ',
      provider: 'synthetic',
    });
    expect(result).toMatchObject({ accepted: 0, quarantined: 1 });
    expect(await count('select count(*) as n from ticks')).toBe(before);
    const q = await quarantined('prices.quote', job.id!);
    expect(q[0]?.reason).toBe('currency_mismatch: response in EUR, QQQ is in USD');
  });

  it('quarantines bad FX rates and falls back to the inverse pair', async () => {
    clock.set('2024-07-02T22:00:00Z');
    const { job, result } = await run(badQueues, bad, 'fx.rates', {
      currencies: ['EUR', 'CHF'],
      from: '2024-07-01',
      to: '2024-07-02',
    });
    expect(result).toMatchObject({ inverted: ['CHF'], quarantined: 2, failed: [] });
    const q = await quarantined('fx.rates', job.id!);
    expect(q.map((r) => r.reason.split(':')[0])).toEqual(['error_body', 'bad_rate']);
    expect(q[1]!.raw).toMatchObject({ rate: 'NaN', date: '2024-07-02' });
    // CHF→USD stored as the reciprocal of USD→CHF, in numeric.
    const usdchf = (
      await bad.providers.get('synthetic').fxDaily('USD', 'CHF', '2024-07-01', '2024-07-01')
    )[0]!;
    const chf = await deps
      .db('fx_rates')
      .where({ from_currency: 'CHF', to_currency: 'USD', rate_date: '2024-07-01' })
      .first();
    expect(Math.abs(Number(chf.rate) - 1 / usdchf.rate!)).toBeLessThan(1e-9);
    expect(chf.rate).toBe(crossFromReciprocal(String(usdchf.rate)));
  });
});

/** round(1 / r, 10) half away from zero, exactly. */
function crossFromReciprocal(r: string): string {
  const [i = '0', f = ''] = r.split('.');
  const den = BigInt(i + f);
  const num = 10n ** BigInt(f.length) * 10n ** 10n;
  let q = num / den;
  if ((num % den) * 2n >= den) q += 1n;
  const s = q.toString().padStart(11, '0');
  return `${s.slice(0, -10)}.${s.slice(-10)}`;
}
