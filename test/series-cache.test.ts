/**
 * The API's series cache (api/series-cache.ts) against the real thing: the real app and auth,
 * the real tables and their notify triggers (migrations/20261204000500_series_notify.ts), a real
 * LISTEN connection. Each test first shows the body is served from the cache (a hit), then
 * changes the data the way the system does and polls until the API answers the new body: without
 * the invalidation the poll times out.
 */
import type express from 'express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeApp, createApp, seriesCacheOf } from '../api/app.ts';
import { type Auth } from '../api/auth/index.ts';
import type { SeriesCache } from '../api/series-cache.ts';
import type { Deps } from '../core/deps.ts';
import { rollup1d, rollup5m } from '../jobs/processors/bars-rollup.ts';
import { type QueueSet } from '../jobs/queues.ts';
import { directContext } from '../jobs/types.ts';
import {
  clientToken,
  insertDailyBars,
  insertSecurity,
  insertSplit,
  insertTicks,
  type DailyRow,
  startTestApp,
  stopTestApp,
} from './api-fixtures.ts';
import { closeDeps, frozenClock, testConfig, testDeps } from './support.ts';

const NOW = '2024-03-15T15:00:00Z';

let deps: Deps;
let queues: QueueSet;
let auth: Auth;
let app: express.Express;
let cache: SeriesCache;
let reader: string;

const bar = (date: string, close: string): DailyRow => ({
  date,
  open: close,
  high: close,
  low: close,
  close,
  volume: 1000,
});
const DATES = ['2024-03-04', '2024-03-05', '2024-03-06', '2024-03-07', '2024-03-08'];

async function until<T>(fn: () => Promise<T>, ok: (v: T) => boolean, ms = 3000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (ok(v) || Date.now() > deadline) return v;
    await new Promise((r) => setTimeout(r, 5));
  }
}

const get = (path: string) => request(app).get(path).set('authorization', reader);
const history = (ticker: string, q = '') =>
  get(`/api/v2/historical/prices/${ticker}?start_date=2024-03-01&end_date=2024-03-15${q}`);

/** Requests twice and checks the second came from the cache; returns the body. */
async function cached(path: string): Promise<Awaited<ReturnType<typeof get>>> {
  const first = await get(path);
  const hits = cache.stats().hits;
  const second = await get(path);
  expect(second.text).toBe(first.text);
  expect(cache.stats().hits).toBe(hits + 1);
  return second;
}

async function newSecurityWithBars(): Promise<{ id: number; ticker: string }> {
  const sec = await insertSecurity(deps, { prefix: 'SC' });
  await insertDailyBars(
    deps,
    sec.id,
    DATES.map((d, i) => bar(d, `${100 + i}`)),
  );
  return sec;
}

beforeAll(async () => {
  deps = testDeps({ clock: frozenClock(NOW) });
  // Slow reconnects, so a test can act while the listener is down.
  ({ app, queues, auth } = await startTestApp(deps, { seriesCache: { retryMs: 1500 } }));
  cache = seriesCacheOf(app)!;
  reader = (await clientToken(deps, app, ['results:read'])).header;
  await cache.listening();
});

afterAll(async () => {
  await stopTestApp({ app, queues, auth }, deps);
});

describe('series cache invalidation', () => {
  it('serves a new or updated daily bar as soon as it is committed', async () => {
    const sec = await newSecurityWithBars();
    const path = `/api/v2/historical/prices/${sec.ticker}?start_date=2024-03-01&end_date=2024-03-15`;
    expect((await cached(path)).body.count).toBe(5);

    await insertDailyBars(deps, sec.id, [bar('2024-03-11', '110')]);
    const added = await until(
      () => get(path),
      (r) => r.body.count === 6,
    );
    expect(added.body.count).toBe(6);

    await cached(path);
    await deps.db('bars_1d').where({ security_id: sec.id, session_date: '2024-03-11' }).update({
      close: '109',
      low: '109',
    });
    const updated = await until(
      () => get(path),
      (r) => r.body.data[5].close === 109,
    );
    expect(updated.body.data[5].close).toBe(109);
  });

  it('serves bars the rollups write (5-minute and daily) as soon as they commit', async () => {
    const sec = await newSecurityWithBars();
    const daily = `/api/v2/historical/prices/${sec.ticker}?start_date=2024-03-01&end_date=2024-03-15`;
    const intraday = `/api/v2/intraday/prices/${sec.ticker}?limit=10`;
    expect((await cached(daily)).body.count).toBe(5);
    expect((await cached(intraday)).body.count).toBe(0);
    // Monday 2024-03-11, 10:30-10:40 in New York (EDT).
    await insertTicks(deps, sec.id, [
      { ts: '2024-03-11T14:30:05Z', price: '111.00000000', size: 10 },
      { ts: '2024-03-11T14:36:00Z', price: '112.00000000', size: 20 },
    ]);
    const ctx = directContext();
    await rollup5m(
      deps,
      { symbols: [sec.ticker], from: '2024-03-11T00:00:00Z', to: '2024-03-12T00:00:00Z' },
      ctx,
    );
    expect(
      (
        await until(
          () => get(intraday),
          (r) => r.body.count === 2,
        )
      ).body.count,
    ).toBe(2);
    await rollup1d(deps, { symbols: [sec.ticker], from: '2024-03-11', to: '2024-03-11' }, ctx);
    const rolled = await until(
      () => get(daily),
      (r) => r.body.count === 6,
    );
    expect(rolled.body.data[5]).toMatchObject({ date: '2024-03-11', open: 111, close: 112, volume: 30 });
  });

  it('does not see an uncommitted change, and sees it at commit', async () => {
    const sec = await newSecurityWithBars();
    const path = `/api/v2/historical/prices/${sec.ticker}?start_date=2024-03-01&end_date=2024-03-15`;
    await cached(path);
    const trx = await deps.db.transaction();
    try {
      await trx('bars_1d').insert({
        security_id: sec.id,
        session_date: '2024-03-12',
        open: '1',
        high: '1',
        low: '1',
        close: '1',
        volume: 1,
        source: 'test',
      });
      await new Promise((r) => setTimeout(r, 50));
      expect((await get(path)).body.count).toBe(5);
      await trx.commit();
    } catch (err) {
      await trx.rollback();
      throw err;
    }
    expect(
      (
        await until(
          () => get(path),
          (r) => r.body.count === 6,
        )
      ).body.count,
    ).toBe(6);
  });

  it('serves a split at once: adjusted prices and the stored adj_close', async () => {
    const sec = await newSecurityWithBars();
    const split = await cached(
      `/api/v2/historical/prices/${sec.ticker}?start_date=2024-03-01&end_date=2024-03-15&adjusted=split`,
    );
    expect(split.body.data[0].close).toBe(100);
    const none = await cached(
      `/api/v2/historical/prices/${sec.ticker}?start_date=2024-03-01&end_date=2024-03-15`,
    );
    expect(none.body.data[0].adj_close).toBe(100);

    await insertSplit(deps, sec.id, '2024-03-06', '2');
    const after = await until(
      () => history(sec.ticker, '&adjusted=split'),
      (r) => r.body.data[0].close === 50,
    );
    expect(after.body.data[0].close).toBe(50);
    expect(after.body.data[0].volume).toBe(2000);
    const stored = await until(
      () => history(sec.ticker),
      (r) => r.body.data[0].adj_close === 50,
    );
    expect(stored.body.data[0].adj_close).toBe(50);
  });

  it('answers 404 once a ticker is renamed or its security deleted', async () => {
    const sec = await newSecurityWithBars();
    const path = (t: string) => `/api/v2/historical/prices/${t}?start_date=2024-03-01&end_date=2024-03-15`;
    await cached(path(sec.ticker));
    const renamed = `${sec.ticker}R`;
    await deps.db('securities').where({ id: sec.id }).update({ ticker: renamed });
    expect(
      (
        await until(
          () => get(path(sec.ticker)),
          (r) => r.status === 404,
        )
      ).status,
    ).toBe(404);
    expect((await get(path(renamed))).body.symbol).toBe(renamed);

    const bare = await insertSecurity(deps, { prefix: 'SC' });
    expect((await cached(path(bare.ticker))).body.count).toBe(0);
    await deps.db('securities').where({ id: bare.id }).delete();
    expect(
      (
        await until(
          () => get(path(bare.ticker)),
          (r) => r.status === 404,
        )
      ).status,
    ).toBe(404);
  });

  it('forgets 5-minute bars whose partition retention dropped', async () => {
    const sec = await insertSecurity(deps, { prefix: 'SC' });
    // A month no other test uses, so its partition can be dropped.
    await deps.db.raw(
      `select ensure_month_partitions('bars_5m', '2011-03-01'::timestamptz, '2011-04-01'::timestamptz)`,
    );
    await deps.db.raw(
      `insert into bars_5m (security_id, bucket, open, high, low, close, volume, pv, vwap, trade_count)
       select ?, timestamptz '2011-03-15 15:00:00+00' + i * interval '5 minutes', 10, 10, 10, 10, 1, 10, 10, 1
         from generate_series(0, 2) i`,
      [sec.id],
    );
    const path = `/api/v2/intraday/prices/${sec.ticker}?limit=10`;
    expect((await cached(path)).body.count).toBe(3);
    const parts = await deps.repos.retention.partitions('bars_5m');
    const march = parts.find((p) => p.from?.toISOString() === '2011-03-01T00:00:00.000Z');
    expect(march).toBeDefined();
    await deps.repos.retention.dropPartitions('bars_5m', [march!.name]);
    expect(
      (
        await until(
          () => get(path),
          (r) => r.body.count === 0,
        )
      ).body.count,
    ).toBe(0);
  });

  it('does not store a result read before a change whose notification came during the read', async () => {
    const sec = await newSecurityWithBars();
    const path = `/api/v2/historical/prices/${sec.ticker}?start_date=2024-03-01&end_date=2024-03-15`;
    const bars = deps.repos.bars;
    const read = bars.dailyJson;
    let hook: (() => Promise<void>) | undefined;
    bars.dailyJson = async (...args) => {
      const out = await read(...args);
      const h = hook;
      hook = undefined;
      if (h) await h();
      return out;
    };
    try {
      // The read has its (old) rows; then a change commits and its notification is processed
      // before the route stores what it read.
      hook = async () => {
        const heard = cache.stats().notifications;
        await insertDailyBars(deps, sec.id, [bar('2024-03-13', '120')]);
        await until(
          async () => cache.stats().notifications,
          (n) => n > heard,
        );
      };
      const refused = cache.stats().refused;
      const stale = await get(path);
      expect(stale.body.count).toBe(5); // what was read before the change
      expect(cache.stats().refused).toBe(refused + 1);
      // Not stored: the next request reads again and sees the change.
      expect((await get(path)).body.count).toBe(6);
    } finally {
      bars.dailyJson = read;
    }
  });

  it('is bypassed while the listening connection is down, and flushed when it is back', async () => {
    const sec = await newSecurityWithBars();
    const path = `/api/v2/historical/prices/${sec.ticker}?start_date=2024-03-01&end_date=2024-03-15`;
    expect((await cached(path)).body.count).toBe(5);
    const pid = cache.stats().pid;
    expect(pid).toBeDefined();
    await deps.db.raw('select pg_terminate_backend(?)', [pid!]);
    await until(
      async () => cache.stats().listening,
      (l) => !l,
    );
    expect(cache.stats().listening).toBe(false);

    // Nobody hears this change: the cache must not answer while it cannot hear.
    await insertDailyBars(deps, sec.id, [bar('2024-03-14', '130')]);
    expect((await get(path)).body.count).toBe(6);

    await cache.listening();
    expect(cache.stats().pid).not.toBe(pid);
    expect((await cached(path)).body.count).toBe(6);
  });
});

describe('series cache memory bound', () => {
  let small: express.Express;
  let smallDeps: Deps;
  let smallCache: SeriesCache;

  beforeAll(async () => {
    smallDeps = testDeps({ config: testConfig({ API_SERIES_CACHE_MB: '0.002' }), clock: frozenClock(NOW) });
    small = await createApp(smallDeps, { queues, auth });
    smallCache = seriesCacheOf(small)!;
    await smallCache.listening();
  });

  afterAll(async () => {
    await closeApp(small);
    await closeDeps(smallDeps);
  });

  it('evicts the least recently used bodies past API_SERIES_CACHE_MB', async () => {
    const sec = await newSecurityWithBars();
    const max = 0.002 * 1024 * 1024;
    const paths = DATES.map(
      (d) => `/api/v2/historical/prices/${sec.ticker}?start_date=2024-03-01&end_date=${d}`,
    );
    const one = async (p: string) => request(small).get(p).set('authorization', reader);
    for (const p of paths) {
      for (let i = 0; i < 2; i++) {
        const hits = smallCache.stats().hits;
        await one(p);
        if (i === 1) expect(smallCache.stats().hits).toBe(hits + 1);
      }
      expect(smallCache.stats().bytes).toBeLessThanOrEqual(max);
    }
    expect(smallCache.stats().evictions).toBeGreaterThan(0);
    // The first (least recently used) body went; the newest is still there.
    let hits = smallCache.stats().hits;
    await one(paths[paths.length - 1]!);
    expect(smallCache.stats().hits).toBe(hits + 1);
    hits = smallCache.stats().hits;
    await one(paths[0]!);
    expect(smallCache.stats().hits).toBe(hits);
  });

  it('is off with API_SERIES_CACHE_MB=0', async () => {
    const offDeps = testDeps({ config: testConfig({ API_SERIES_CACHE_MB: '0' }) });
    const off = await createApp(offDeps, { queues, auth });
    try {
      expect(seriesCacheOf(off)).toBeUndefined();
    } finally {
      await closeApp(off);
      await closeDeps(offDeps);
    }
  });
});
