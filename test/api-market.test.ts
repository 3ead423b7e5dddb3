/**
 * The market-data API as it runs: createApp with the real auth module and tokens from its own
 * client-credentials endpoint; ticks, bars and splits in the real tables; the analytics route over
 * what the real analytics jobs stored; /stocks/{symbol} through the real quote refresh. The only
 * double is a price provider that fails on purpose (the external world), to check how provider
 * failures are answered.
 */
import type express from 'express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeApp, createApp } from '../api/app.ts';
import { disableClient, enableClient } from '../api/auth/accounts.ts';
import { type Auth } from '../api/auth/index.ts';
import type { RouteDef } from '../api/http.ts';
import { analyticsRoutes } from '../api/routes/analytics.ts';
import { pricesRoutes } from '../api/routes/prices.ts';
import { stocksRoutes } from '../api/routes/stocks.ts';
import { watchlistRoutes } from '../api/routes/watchlist.ts';
import { NYSE_TIME_ZONE, sessionsBetween } from '../core/calendar/nyse.ts';
import type { Deps } from '../core/deps.ts';
import {
  type ProviderError,
  ProviderRateLimitError,
  ProviderTransientError,
  type PriceProvider,
  type ProviderSet,
} from '../core/providers/types.ts';
import { analyticsIndicators, analyticsRisk } from '../jobs/processors/analytics.ts';
import { type QueueSet } from '../jobs/queues.ts';
import { directContext } from '../jobs/types.ts';
import {
  clientToken,
  insertDailyBars,
  insertPriceFixture,
  insertSecurity,
  insertSplit,
  insertTicks,
  type PriceFixture,
  startTestApp,
  stopTestApp,
} from './api-fixtures.ts';
import { frozenClock, testConfig, testDeps } from './support.ts';

// Friday 2024-03-15, 11:00 in New York: the market is open.
const NOW = '2024-03-15T15:00:00Z';

let deps: Deps;
let queues: QueueSet;
let auth: Auth;
let app: express.Express;
let reader: string;
let writer: { header: string; clientId: string };
let fx: PriceFixture;
/** A security with ticks; the newest is 10 s old at NOW. */
let ticked: { id: number; ticker: string };

const TICKS = [
  { ts: '2024-02-29T20:59:00Z', price: '49.00000000', size: 5 },
  { ts: '2024-03-15T14:58:00Z', price: '50.10000000', size: 100, bid: '50.09', ask: '50.11' },
  { ts: '2024-03-15T14:59:00Z', seq: 0, price: '50.20000000', size: 200 },
  { ts: '2024-03-15T14:59:00Z', seq: 1, price: '50.25000000', size: 150 },
  { ts: '2024-03-15T14:59:30Z', price: '50.30000000', size: 300 },
  { ts: '2024-03-15T14:59:50Z', price: '50.35000000', size: 10, bid: '50.34', ask: '50.36' },
];

beforeAll(async () => {
  // These tests hold the routes' own reads (SQL, serialization) to the rows they just wrote, so
  // they run without the series cache, whose invalidation (a notification just after commit) has
  // its own tests with waits: test/series-cache.test.ts.
  deps = testDeps({
    config: testConfig({ RISK_WINDOW_DAYS: '20', API_SERIES_CACHE_MB: '0' }),
    clock: frozenClock(NOW),
  });
  ({ app, queues, auth } = await startTestApp(deps));
  reader = (await clientToken(deps, app, ['results:read'])).header;
  writer = await clientToken(deps, app, ['jobs:write']);
  fx = await insertPriceFixture(deps, { bars5m: 3, lastBucket: '2024-03-15T14:55:00Z', dates: [] });
  ticked = await insertSecurity(deps, { prefix: 'RT' });
  await insertTicks(deps, ticked.id, TICKS);
});

afterAll(async () => {
  await stopTestApp({ app, queues, auth }, deps);
});

const get = (path: string, token: string = reader) => request(app).get(path).set('Authorization', token);

/** The fields a 400 names, in order. */
const fieldsOf = (body: { error: { fields?: { path: string }[] } }) =>
  (body.error.fields ?? []).map((f) => f.path);

describe('access and docs', () => {
  const mine = (): RouteDef[] => [
    ...pricesRoutes(deps),
    ...stocksRoutes(deps, queues),
    ...analyticsRoutes(deps),
    ...watchlistRoutes(deps),
  ];
  const concrete = (path: string) => path.replace('{symbol}', 'AAPL');
  const market = [
    ['get', '/api/v2/realtime/prices/{symbol}', 'results:read'],
    ['get', '/api/v2/intraday/prices/{symbol}', 'results:read'],
    ['get', '/api/v2/historical/prices/{symbol}', 'results:read'],
    ['get', '/api/v2/analytics/{symbol}', 'results:read'],
    ['get', '/stocks/{symbol}', 'results:read'],
    ['get', '/stocks', 'results:read'],
    ['get', '/api/watchlist', 'results:read'],
    ['put', '/api/watchlist/{symbol}', 'jobs:write'],
    ['delete', '/api/watchlist/{symbol}', 'jobs:write'],
  ] as const;

  it('declares every market route with the scope it needs', () => {
    const declared = mine().map((r) => [r.method, r.path, r.access]);
    for (const m of market) expect(declared).toContainEqual([...m]);
    expect(declared).toHaveLength(market.length);
  });

  it('every market route is 401 without a token or with a forged one, and 403 without its scope', async () => {
    const wrong = { 'results:read': writer.header, 'jobs:write': reader } as const;
    for (const [method, path, scope] of market) {
      const call = () => request(app)[method](concrete(path));
      await call().expect(401);
      await call().set('Authorization', 'Bearer e30.e30.c2ln').expect(401);
      const refused = await call().set('Authorization', wrong[scope]).expect(403);
      expect(refused.body.error).toBe('insufficient_scope');
    }
  });

  it('/docs/openapi.json lists every market route with its scope', async () => {
    const doc = (await request(app).get('/docs/openapi.json').expect(200)).body as {
      paths: Record<string, Record<string, { security?: unknown; responses: Record<string, unknown> }>>;
    };
    for (const [method, path, scope] of market) {
      const op = doc.paths[path]?.[method];
      expect(op, `${method} ${path}`).toBeDefined();
      expect(op?.security).toEqual([{ bearerAuth: [] }, { oauth2: [scope] }]);
    }
    expect(Object.keys(doc.paths['/stocks/{symbol}']!.get!.responses)).toEqual(
      expect.arrayContaining(['200', '400', '401', '403', '404', '502', '503']),
    );
    expect(Object.keys(doc.paths['/api/watchlist/{symbol}']!.put!.responses)).toEqual(
      expect.arrayContaining(['200', '201', '404']),
    );
  });
});

describe('GET /api/v2/realtime/prices/{symbol}', () => {
  const url = () => `/api/v2/realtime/prices/${ticked.ticker}`;
  const newestFirst = [...TICKS].reverse();

  it('returns the newest ticks first, by time then sequence, across months', async () => {
    const res = await get(url()).expect(200);
    expect(res.body.symbol).toBe(ticked.ticker);
    expect(res.body.count).toBe(TICKS.length);
    expect(res.body.data.map((d: { timestamp: string; seq: number }) => [d.timestamp, d.seq])).toEqual(
      newestFirst.map((t) => [new Date(t.ts).toISOString(), t.seq ?? 0]),
    );
    expect(res.body.data[0]).toEqual({
      timestamp: '2024-03-15T14:59:50.000Z',
      seq: 0,
      price: 50.35,
      size: 10,
      bid: 50.34,
      ask: 50.36,
    });
    expect(res.body.data[1]).toMatchObject({ price: 50.3, bid: null, ask: null });
  });

  it('limit takes the newest n; the symbol may be any case', async () => {
    const res = await get(`/api/v2/realtime/prices/${ticked.ticker.toLowerCase()}?limit=3`).expect(200);
    expect(res.body.symbol).toBe(ticked.ticker);
    expect(res.body.count).toBe(3);
    expect(res.body.data.map((d: { price: number }) => d.price)).toEqual([50.35, 50.3, 50.25]);
    const one = await get(`${url()}?limit=1`).expect(200);
    expect(one.body.data).toHaveLength(1);
  });

  it('a symbol without ticks has an empty list', async () => {
    const res = await get(`/api/v2/realtime/prices/${fx.ticker}`).expect(200);
    expect(res.body).toEqual({ symbol: fx.ticker, count: 0, data: [] });
  });

  it.each([
    ['limit=0', 'query.limit'],
    ['limit=1001', 'query.limit'],
    ['limit=ten', 'query.limit'],
    ['since=1', 'query.since'],
  ])('400 for %s naming %s', async (qs, field) => {
    const res = await get(`${url()}?${qs}`).expect(400);
    expect(fieldsOf(res.body)).toEqual([field]);
    expect(res.body.error.message).toContain(field);
  });

  it('404 for an unknown symbol, 400 for one that cannot be a ticker', async () => {
    const res = await get('/api/v2/realtime/prices/NOSUCHRT').expect(404);
    expect(res.body.error.message).toBe('unknown symbol "NOSUCHRT"');
    const bad = await get('/api/v2/realtime/prices/A%20B').expect(400);
    expect(fieldsOf(bad.body)).toEqual(['params.symbol']);
  });
});

describe('GET /api/v2/intraday/prices/{symbol}', () => {
  it('answers in its shape', async () => {
    const res = await get(`/api/v2/intraday/prices/${fx.ticker}?interval=5min`).expect(200);
    expect(res.body).toMatchObject({ symbol: fx.ticker, interval: '5min', count: 3 });
    expect(Object.keys(res.body.data[0]).sort()).toEqual(
      ['close', 'high', 'low', 'open', 'timestamp', 'trade_count', 'volume', 'vwap'].sort(),
    );
  });
});

describe('GET /api/v2/historical/prices/{symbol} with split adjustment', () => {
  let single: { id: number; ticker: string };
  let double: { id: number; ticker: string };

  beforeAll(async () => {
    // One 4:1 split, ex-date Monday 2024-03-11.
    single = await insertSecurity(deps, { prefix: 'SPL' });
    await insertDailyBars(deps, single.id, [
      { date: '2024-03-07', open: '396', high: '399', low: '394', close: '398', volume: 2_000_000 },
      {
        date: '2024-03-08',
        open: '401.00000002',
        high: '404',
        low: '400',
        close: '402.5',
        volume: 1_000_001,
        adjClose: '100.1',
        vwap: '401.11111111',
        tradeCount: 5000,
      },
      { date: '2024-03-11', open: '100.5', high: '101.5', low: '99.5', close: '101', volume: 3_000_000 },
      {
        date: '2024-03-12',
        open: '101',
        high: '102',
        low: '100',
        close: '101.5',
        volume: 2_500_000,
        vwap: '101.25',
        tradeCount: 7000,
      },
    ]);
    await insertSplit(deps, single.id, '2024-03-11', '4');

    // 2:1 on 03-05 and 4:1 on 03-11 compound to 8 before 03-05; a 2:1 announced for 04-01 (after
    // "today") adjusts nothing yet.
    double = await insertSecurity(deps, { prefix: 'SPL' });
    await insertDailyBars(deps, double.id, [
      { date: '2024-03-04', open: '800', high: '808', low: '792', close: '804', volume: 1000 },
      { date: '2024-03-05', open: '402', high: '404', low: '400', close: '401', volume: 1500 },
      { date: '2024-03-11', open: '100', high: '101', low: '99', close: '100.5', volume: 7000 },
    ]);
    await insertSplit(deps, double.id, '2024-03-05', '2');
    await insertSplit(deps, double.id, '2024-03-11', '4');
    await insertSplit(deps, double.id, '2024-04-01', '2');
  });

  const hist = (ticker: string, qs: string) =>
    get(`/api/v2/historical/prices/${ticker}?start_date=2024-03-01&end_date=2024-03-15&${qs}`);

  it('adjusted=split divides prices before the ex-date by 4 and multiplies volume by 4; after is unchanged', async () => {
    const res = await hist(single.ticker, 'adjusted=split').expect(200);
    expect(res.body).toMatchObject({
      symbol: single.ticker,
      start_date: '2024-03-01',
      end_date: '2024-03-15',
      adjusted: 'split',
      count: 4,
    });
    expect(res.body.data).toEqual([
      {
        date: '2024-03-07',
        open: 99,
        high: 99.75,
        low: 98.5,
        close: 99.5,
        adj_close: 99.5,
        volume: 8_000_000,
        vwap: null,
        trade_count: null,
      },
      {
        // 401.00000002 / 4 = 100.250000005 → 100.25000001 (decimal, half away from zero), and
        // 401.11111111 / 4 = 100.2777777775 → 100.27777778. adj_close is the stored adjusted close
        // (the provider's 100.1 replaced: one rule for every row).
        date: '2024-03-08',
        open: 100.25000001,
        high: 101,
        low: 100,
        close: 100.625,
        adj_close: 100.625,
        volume: 4_000_004,
        vwap: 100.27777778,
        trade_count: 5000,
      },
      {
        date: '2024-03-11',
        open: 100.5,
        high: 101.5,
        low: 99.5,
        close: 101,
        adj_close: 101,
        volume: 3_000_000,
        vwap: null,
        trade_count: null,
      },
      {
        date: '2024-03-12',
        open: 101,
        high: 102,
        low: 100,
        close: 101.5,
        adj_close: 101.5,
        volume: 2_500_000,
        vwap: 101.25,
        trade_count: 7000,
      },
    ]);
  });

  it('the default (and adjusted=none) returns the bars as stored', async () => {
    const raw = await hist(single.ticker, '').expect(200);
    const none = await hist(single.ticker, 'adjusted=none').expect(200);
    expect(raw.body.adjusted).toBe('none');
    expect(none.body).toEqual(raw.body);
    expect(raw.body.data[1]).toMatchObject({
      open: 401.00000002,
      close: 402.5,
      volume: 1_000_001,
      vwap: 401.11111111,
    });
  });

  it('splits compound backwards; a future ex-date adjusts nothing; a range after the split starts unadjusted', async () => {
    const res = await hist(double.ticker, 'adjusted=split').expect(200);
    expect(
      res.body.data.map((d: { date: string; open: number; close: number; volume: number }) => [
        d.date,
        d.open,
        d.close,
        d.volume,
      ]),
    ).toEqual([
      ['2024-03-04', 100, 100.5, 8000],
      ['2024-03-05', 100.5, 100.25, 6000],
      ['2024-03-11', 100, 100.5, 7000],
    ]);
    const later = await get(
      `/api/v2/historical/prices/${double.ticker}?start_date=2024-03-05&end_date=2024-03-11&adjusted=split`,
    ).expect(200);
    expect(later.body.data.map((d: { open: number }) => d.open)).toEqual([100.5, 100]);
  });

  it('adjusted=all also takes dividends out (× 1 − amount ÷ previous close), so close is adj_close', async () => {
    const div = await insertSecurity(deps, { prefix: 'SPL' });
    await insertDailyBars(deps, div.id, [
      { date: '2024-03-06', open: '198', high: '202', low: '196', close: '200', volume: 1000 },
      { date: '2024-03-07', open: '99', high: '100', low: '97', close: '98', volume: 2000 },
      { date: '2024-03-08', open: '98', high: '99.5', low: '97.5', close: '99', volume: 2200 },
    ]);
    await insertSplit(deps, div.id, '2024-03-07', '2');
    // $0.98 on 98 → × 0.99 before 03-08.
    await deps.db('corporate_actions').insert({
      action_id: `CA-TEST-DIV-${div.id}`,
      security_id: div.id,
      action_type: 'DIVIDEND',
      ex_date: '2024-03-08',
      payment_date: '2024-03-20',
      amount: '0.98',
      currency: 'USD',
      source: 'test',
    });
    const all = await get(
      `/api/v2/historical/prices/${div.ticker}?start_date=2024-03-01&end_date=2024-03-15&adjusted=all`,
    ).expect(200);
    expect(all.body.adjusted).toBe('all');
    expect(
      all.body.data.map(
        (d: { date: string; open: number; close: number; adj_close: number; volume: number }) => [
          d.date,
          d.open,
          d.close,
          d.adj_close,
          d.volume,
        ],
      ),
    ).toEqual([
      ['2024-03-06', 98.01, 99, 99, 2000], // 198 × 0.99 ÷ 2, 200 × 0.99 ÷ 2
      ['2024-03-07', 98.01, 97.02, 97.02, 2000],
      ['2024-03-08', 98, 99, 99, 2200],
    ]);
    const split = await get(
      `/api/v2/historical/prices/${div.ticker}?start_date=2024-03-01&end_date=2024-03-15&adjusted=split`,
    ).expect(200);
    expect(split.body.data.map((d: { close: number }) => d.close)).toEqual([100, 98, 99]);
    expect(split.body.data.map((d: { adj_close: number }) => d.adj_close)).toEqual([99, 97.02, 99]);
  });

  it('adjusts in decimal: 12-digit prices divide exactly and round half away from zero at 8 places', async () => {
    // Beyond what a double carries (19-20 significant digits), so only numeric arithmetic gets these.
    const big = await insertSecurity(deps, { prefix: 'SPL' });
    await insertDailyBars(deps, big.id, [
      {
        date: '2024-03-08',
        open: '123456789012.34567890',
        high: '123456789012.34567891',
        low: '123456789012.34567889',
        close: '123456789012.34567890',
        volume: 2_251_799_813_685_249,
      },
    ]);
    await insertSplit(deps, big.id, '2024-03-11', '4');
    const [bar] = await deps.repos.bars.daily(big.id, '2024-03-08', '2024-03-08', {
      adjust: 'split',
      asOf: '2024-03-15',
    });
    expect(bar).toMatchObject({
      open: '30864197253.08641973', // …725 → …73
      high: '30864197253.08641973', // …7275 → …73
      low: '30864197253.08641972', // …7225 → …72
      volume: '9007199254740996', // past 2^53: still exact
    });
  });

  it.each([
    ['adjusted=yes', 'query.adjusted'],
    ['start_date=2024-03-15&end_date=2024-03-01', 'query.start_date'],
    ['end_date=2024-13-01', 'query.end_date'],
  ])('400 for %s naming %s', async (qs, field) => {
    const res = await get(`/api/v2/historical/prices/${single.ticker}?${qs}`).expect(400);
    expect(fieldsOf(res.body)).toEqual([field]);
  });

  it('404 for an unknown symbol', async () => {
    const res = await get('/api/v2/historical/prices/NOSUCHH?adjusted=split').expect(404);
    expect(res.body.error.message).toBe('unknown symbol "NOSUCHH"');
  });
});

describe('history serialized by PostgreSQL (issue 8)', () => {
  // What the routes printed before: pg's strings through Number(), JSON.stringify'd.
  const num = (v: string | null): number | null => (v === null ? null : Number(v));
  const asPrinted = <T>(value: T): T => JSON.parse(JSON.stringify(value)) as T;
  const viaRecords = async (id: number, from: string, to: string, adjust: 'none' | 'split' | 'all') =>
    asPrinted(
      (await deps.repos.bars.daily(id, from, to, { adjust, asOf: '2024-03-15' })).map((b) => ({
        date: b.sessionDate,
        open: num(b.open),
        high: num(b.high),
        low: num(b.low),
        close: num(b.close),
        adj_close: num(b.adjClose),
        volume: num(b.volume),
        vwap: num(b.vwap),
        trade_count: b.tradeCount,
      })),
    );

  it('prints the same numbers as Number() on the stored strings: 15+ digits, tiny, round, null', async () => {
    const sec = await insertSecurity(deps, { prefix: 'JS' });
    await insertDailyBars(deps, sec.id, [
      // >= 10^7: 16-20 significant digits, through float8 (Number() rounds them).
      {
        date: '2024-03-04',
        open: '123456789012.34567890',
        high: '123456789012.34567891',
        low: '9999999.99999999',
        close: '10000000.00000001',
        volume: 2_251_799_813_685,
        vwap: '12345678.12345678',
        tradeCount: 1,
      },
      // < 10^7: the decimal itself, trailing zeros trimmed.
      {
        date: '2024-03-05',
        open: '0.00000001',
        high: '9999999.99999998',
        low: '0.00000001',
        close: '0.10000000',
        volume: 0,
        adjClose: '0.12345678',
      },
      { date: '2024-03-06', open: '100', high: '187.12345678', low: '99.99', close: '150.5', volume: 7 },
      {
        date: '2024-03-07',
        open: '1.5',
        high: '2000000.5',
        low: '1.00000001',
        close: '1999999.99999999',
        volume: 1,
      },
      // numeric can hold NaN (the checks let it through); JSON.stringify printed null for it.
      { date: '2024-03-08', open: 'NaN', high: 'NaN', low: 'NaN', close: 'NaN', volume: 1, vwap: 'NaN' },
    ]);
    await insertSplit(deps, sec.id, '2024-03-06', '3');
    for (const adjusted of ['none', 'split', 'all'] as const) {
      const res = await get(
        `/api/v2/historical/prices/${sec.ticker}?start_date=2024-03-01&end_date=2024-03-15&adjusted=${adjusted}`,
      ).expect(200);
      expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
      expect(res.body).toEqual({
        symbol: sec.ticker,
        start_date: '2024-03-01',
        end_date: '2024-03-15',
        adjusted,
        count: 5,
        data: await viaRecords(sec.id, '2024-03-01', '2024-03-15', adjusted),
      });
      // Same keys in the same order as the objects the route built before.
      expect(Object.keys(res.body.data[0])).toEqual([
        'date',
        'open',
        'high',
        'low',
        'close',
        'adj_close',
        'volume',
        'vwap',
        'trade_count',
      ]);
    }
    const empty = await get(
      `/api/v2/historical/prices/${sec.ticker}?start_date=2023-01-01&end_date=2023-12-31`,
    ).expect(200);
    expect(empty.body).toEqual({
      symbol: sec.ticker,
      start_date: '2023-01-01',
      end_date: '2023-12-31',
      adjusted: 'none',
      count: 0,
      data: [],
    });
  });

  it('intraday prints what mapping latest5m printed', async () => {
    const res = await get(`/api/v2/intraday/prices/${fx.ticker.toLowerCase()}?limit=2`).expect(200);
    const bars = await deps.repos.bars.latest5m(fx.id, 2);
    expect(res.body).toEqual({
      symbol: fx.ticker,
      interval: '5min',
      timezone: NYSE_TIME_ZONE,
      count: 2,
      data: bars.map((b) => ({
        timestamp: b.bucket.toISOString(),
        open: Number(b.open),
        high: Number(b.high),
        low: Number(b.low),
        close: Number(b.close),
        volume: Number(b.volume),
        vwap: num(b.vwap),
        trade_count: b.tradeCount,
      })),
    });
    const none = await insertSecurity(deps, { prefix: 'JS' });
    expect((await get(`/api/v2/intraday/prices/${none.ticker}`).expect(200)).body).toEqual({
      symbol: none.ticker,
      interval: '5min',
      timezone: NYSE_TIME_ZONE,
      count: 0,
      data: [],
    });
    const missing = await get('/api/v2/intraday/prices/NOSUCHI').expect(404);
    expect(missing.body.error.message).toBe('unknown symbol "NOSUCHI"');
  });

  it('without the series cache, a new security and new bars are served at once', async () => {
    const sec = await insertSecurity(deps, { prefix: 'JS' });
    const url = `/api/v2/historical/prices/${sec.ticker}?start_date=2024-03-01&end_date=2024-03-15`;
    expect((await get(url).expect(200)).body.count).toBe(0);
    await insertDailyBars(deps, sec.id, [
      { date: '2024-03-11', open: '10', high: '11', low: '9', close: '10.5', volume: 100 },
    ]);
    expect((await get(url).expect(200)).body.data.map((d: { close: number }) => d.close)).toEqual([10.5]);
    await deps.db('bars_1d').where({ security_id: sec.id }).update({ close: '10.25' });
    expect((await get(url).expect(200)).body.data.map((d: { close: number }) => d.close)).toEqual([10.25]);
  });

  it('a disabled client is refused at the next request although its token was verified (and cached) before', async () => {
    const own = await clientToken(deps, app, ['results:read']);
    const url = `/api/v2/intraday/prices/${fx.ticker}`;
    await get(url, own.header).expect(200);
    await get(url, own.header).expect(200);
    await disableClient(deps, own.clientId);
    const refused = await get(url, own.header).expect(401);
    expect(refused.headers['www-authenticate']).toContain('error="invalid_token"');
    await enableClient(deps, own.clientId);
    await get(url, own.header).expect(200);
  });
});

describe('GET /stocks/{symbol} and GET /stocks (seed 0)', () => {
  it('returns the stored price when it is fresh, in the seed shape', async () => {
    const res = await get(`/stocks/${ticked.ticker}`).expect(200);
    expect(res.body).toEqual({
      symbol: ticked.ticker,
      timestamp: '2024-03-15T14:59:50Z',
      current_price: 50.35,
    });
    // Nothing was fetched: the newest tick is still the stored one.
    const ticks = await get(`/api/v2/realtime/prices/${ticked.ticker}?limit=1`).expect(200);
    expect(ticks.body.data[0].timestamp).toBe('2024-03-15T14:59:50.000Z');
  });

  it('fetches, stores and returns a fresh quote when the stored one is stale (synthetic provider)', async () => {
    const stale = await insertSecurity(deps, { prefix: 'STL' });
    await insertTicks(deps, stale.id, [{ ts: '2024-03-14T19:59:40Z', price: '20.00000000', size: 1 }]);
    const res = await get(`/stocks/${stale.ticker}`).expect(200);
    expect(Object.keys(res.body).sort()).toEqual(['current_price', 'symbol', 'timestamp']);
    expect(res.body.symbol).toBe(stale.ticker);
    expect(res.body.timestamp).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z$/);
    const at = Date.parse(res.body.timestamp);
    expect(at).toBeGreaterThan(Date.parse('2024-03-14T19:59:40Z'));
    expect(at).toBeLessThanOrEqual(Date.parse(NOW));
    expect(typeof res.body.current_price).toBe('number');
    expect(res.body.current_price).toBeGreaterThan(0);
    // Stored: the next call answers from the database with the same quote, and it is the newest tick.
    const again = await get(`/stocks/${stale.ticker}`).expect(200);
    expect(again.body).toEqual(res.body);
    const ticks = await get(`/api/v2/realtime/prices/${stale.ticker}?limit=1`).expect(200);
    expect(Date.parse(ticks.body.data[0].timestamp)).toBe(at);
    expect(ticks.body.data[0].price).toBe(res.body.current_price);
  });

  it('404 for an unknown symbol; 400 naming params.symbol for a bad one', async () => {
    const res = await get('/stocks/NOSUCHST').expect(404);
    expect(res.body.error.message).toBe('unknown symbol "NOSUCHST"');
    const bad = await get('/stocks/AA*B').expect(400);
    expect(fieldsOf(bad.body)).toEqual(['params.symbol']);
  });

  describe('provider failures', () => {
    let failing: express.Express;
    let next: ProviderError;
    let yahooStock: { id: number; ticker: string };

    beforeAll(async () => {
      // A provider double that fails as told: the outside world, not our code.
      const provider: PriceProvider = {
        name: 'yahoo',
        limits: {
          intradayIntervals: [5],
          intradayLookbackDays: {},
          intradayMaxSpanDays: {},
          dailyMaxSpanDays: 365,
        },
        quote: () => Promise.reject(next),
        daily: () => Promise.reject(next),
        intraday: () => Promise.reject(next),
        fxDaily: () => Promise.reject(next),
      };
      const providers: ProviderSet = {
        get: () => provider,
        chainFor: () => [provider],
        withFallback: async (_primary, call) => ({ provider: 'yahoo', value: await call(provider) }),
      };
      failing = await createApp({ ...deps, providers }, { queues, auth });
      yahooStock = await insertSecurity(deps, { prefix: 'YF', provider: 'yahoo' });
    });

    afterAll(async () => {
      await closeApp(failing);
    });

    it('a throttled provider is 503 with Retry-After', async () => {
      next = new ProviderRateLimitError('yahoo', 'HTTP 429 Too Many Requests', 29_200);
      const res = await request(failing)
        .get(`/stocks/${yahooStock.ticker}`)
        .set('Authorization', reader)
        .expect(503);
      expect(res.headers['retry-after']).toBe('30');
      expect(res.body.error.code).toBe('provider_rate_limited');
      expect(res.body.error.message).toContain(yahooStock.ticker);
      expect(res.body.error.message).toContain('HTTP 429');
      // The provider's throttle pauses its lane for the workers too (as their own 429 would).
      expect(await queues.get('prices.quote', 'yahoo').getRateLimitTtl()).toBeGreaterThan(0);
    });

    it('any other provider failure is 502 naming the cause', async () => {
      // Lift the pause the 429 above left on the lane, or the call would not reach the provider.
      await queues.get('prices.quote', 'yahoo').removeRateLimitKey();
      next = new ProviderTransientError('yahoo', 'HTTP 500 Internal Server Error');
      const res = await request(failing)
        .get(`/stocks/${yahooStock.ticker}`)
        .set('Authorization', reader)
        .expect(502);
      expect(res.headers['retry-after']).toBeUndefined();
      expect(res.body.error).toMatchObject({ status: 502, code: 'provider_error' });
      expect(res.body.error.message).toContain('yahoo: HTTP 500');
    });
  });

  it('GET /stocks lists equities with their newest stored price (null when none), pages by limit and offset', async () => {
    const bare = await insertSecurity(deps, { prefix: 'RT' });
    const bond = await insertSecurity(deps, { prefix: 'RT', type: 'BOND' });
    await insertTicks(deps, bond.id, [{ ts: '2024-03-15T14:00:00Z', price: '99.50000000', size: 1 }]);

    const all: { symbol: string; timestamp: string | null; current_price: number | null }[] = [];
    for (let offset = 0; ; offset += 500) {
      const page = await get(`/stocks?limit=500&offset=${offset}`).expect(200);
      expect(Array.isArray(page.body)).toBe(true);
      all.push(...page.body);
      if (page.body.length < 500) break;
    }
    const symbols = all.map((s) => s.symbol);
    expect(symbols).toEqual([...symbols].sort());
    expect(all.find((s) => s.symbol === ticked.ticker)).toEqual({
      symbol: ticked.ticker,
      timestamp: '2024-03-15T14:59:50Z',
      current_price: 50.35,
    });
    expect(all.find((s) => s.symbol === bare.ticker)).toEqual({
      symbol: bare.ticker,
      timestamp: null,
      current_price: null,
    });
    expect(symbols).not.toContain(bond.ticker);

    // Rows are only ever added concurrently, so the row at the old index is ours or sorts before it.
    const i = symbols.indexOf(ticked.ticker);
    const page = await get(`/stocks?limit=5&offset=${i}`).expect(200);
    expect(page.body.length).toBeLessThanOrEqual(5);
    expect(page.body[0].symbol <= ticked.ticker).toBe(true);
    expect(page.body.map((s: { symbol: string }) => s.symbol)).toContain(ticked.ticker);
  });

  it.each([
    ['limit=501', 'query.limit'],
    ['limit=0', 'query.limit'],
    ['offset=-1', 'query.offset'],
    ['page=2', 'query.page'],
  ])('GET /stocks 400 for %s naming %s', async (qs, field) => {
    const res = await get(`/stocks?${qs}`).expect(400);
    expect(fieldsOf(res.body)).toEqual([field]);
  });
});

describe('GET /api/v2/analytics/{symbol}', () => {
  let sec: { id: number; ticker: string };

  beforeAll(async () => {
    // 60 sessions of a wavy, drifting path with a flat run, then the real analytics jobs.
    sec = await insertSecurity(deps, { prefix: 'ANL' });
    const sessions = sessionsBetween('2023-12-01', '2024-03-14').slice(-60);
    let prev = 100;
    await insertDailyBars(
      deps,
      sec.id,
      sessions.map((s, i) => {
        const close = i >= 30 && i < 36 ? prev : 100 + 8 * Math.sin(i / 4) + i * 0.15;
        const open = prev;
        prev = close;
        return {
          date: s.date,
          open: open.toFixed(4),
          high: (Math.max(open, close) + 0.5).toFixed(4),
          low: (Math.min(open, close) - 0.5).toFixed(4),
          close: close.toFixed(4),
          volume: 1_000_000 + i * 1000,
        };
      }),
    );
    await analyticsIndicators(deps, { symbols: [sec.ticker], interval: '1d' }, directContext());
    await analyticsRisk(deps, { symbols: [sec.ticker], asOf: '2024-03-14' }, directContext());
  });

  it('returns the newest indicator rows, oldest first, and the latest risk, as the repository holds them', async () => {
    const res = await get(`/api/v2/analytics/${sec.ticker}?interval=1d&limit=5`).expect(200);
    const series = await deps.repos.analytics.indicatorSeries(sec.id, '1d', { limit: 5 });
    const risk = await deps.repos.analytics.latestRisk(sec.id);
    expect(series).toHaveLength(5);
    expect(risk).toBeDefined();
    expect(res.body).toEqual({
      symbol: sec.ticker,
      interval: '1d',
      count: 5,
      indicators: series.map((r) => ({ timestamp: r.ts.toISOString(), values: r.values })),
      risk: {
        as_of: risk!.asOf,
        window_days: 20,
        volatility: risk!.volatility,
        var_95: risk!.var95,
        var_99: risk!.var99,
        es_95: risk!.es95,
        es_99: risk!.es99,
        beta: risk!.beta,
        benchmark: risk!.benchmark,
      },
    });
    const stamps = res.body.indicators.map((r: { timestamp: string }) => Date.parse(r.timestamp));
    expect(stamps).toEqual([...stamps].sort((a, b) => a - b));
    const latest = res.body.indicators.at(-1).values as Record<string, number | null>;
    expect(Object.values(latest).some((v) => typeof v === 'number' && Number.isFinite(v))).toBe(true);
    expect(res.body.risk.var_95).toBeGreaterThanOrEqual(0);
    expect(res.body.risk.var_99).toBeGreaterThanOrEqual(res.body.risk.var_95);
  });

  it('defaults to the latest row at the daily interval', async () => {
    const one = await get(`/api/v2/analytics/${sec.ticker}`).expect(200);
    const five = await get(`/api/v2/analytics/${sec.ticker}?limit=5`).expect(200);
    expect(one.body.interval).toBe('1d');
    expect(one.body.count).toBe(1);
    expect(one.body.indicators).toEqual(five.body.indicators.slice(-1));
  });
});

describe('GET /api/v2/analytics/{symbol} without computed analytics', () => {
  it('a symbol with nothing computed has no rows and null risk', async () => {
    const res = await get(`/api/v2/analytics/${fx.ticker}?interval=5m&limit=10`).expect(200);
    expect(res.body).toEqual({ symbol: fx.ticker, interval: '5m', count: 0, indicators: [], risk: null });
  });

  it.each([
    ['interval=1h', 'query.interval'],
    ['limit=0', 'query.limit'],
    ['limit=5001', 'query.limit'],
    ['window=5', 'query.window'],
  ])('400 for %s naming %s', async (qs, field) => {
    const res = await get(`/api/v2/analytics/${fx.ticker}?${qs}`).expect(400);
    expect(fieldsOf(res.body)).toEqual([field]);
  });

  it('404 for an unknown symbol', async () => {
    const res = await get('/api/v2/analytics/NOSUCHAN').expect(404);
    expect(res.body.error.message).toBe('unknown symbol "NOSUCHAN"');
  });
});

describe('watch list', () => {
  it('PUT adds (201, then 200 unchanged), GET lists it with provider and who added it, DELETE removes it', async () => {
    const sec = await insertSecurity(deps, { prefix: 'WL', provider: 'yahoo' });
    const put = () =>
      request(app).put(`/api/watchlist/${sec.ticker.toLowerCase()}`).set('Authorization', writer.header);
    expect((await put().expect(201)).body).toEqual({ symbol: sec.ticker, added: true });
    expect((await put().expect(200)).body).toEqual({ symbol: sec.ticker, added: false });

    const list = await get('/api/watchlist').expect(200);
    expect(list.body.count).toBe(list.body.data.length);
    const entry = list.body.data.find((e: { symbol: string }) => e.symbol === sec.ticker);
    expect(entry).toEqual({
      symbol: sec.ticker,
      provider: 'yahoo',
      added_at: expect.stringMatching(/Z$/),
      added_by: writer.clientId,
    });
    const symbols = list.body.data.map((e: { symbol: string }) => e.symbol);
    expect(symbols).toEqual([...symbols].sort());
    expect(await deps.repos.watchlist.list()).toContainEqual(
      expect.objectContaining({ securityId: sec.id, ticker: sec.ticker, addedBy: writer.clientId }),
    );

    const del = () => request(app).delete(`/api/watchlist/${sec.ticker}`).set('Authorization', writer.header);
    expect((await del().expect(200)).body).toEqual({ symbol: sec.ticker, removed: true });
    expect((await del().expect(200)).body).toEqual({ symbol: sec.ticker, removed: false });
    const after = await get('/api/watchlist').expect(200);
    expect(after.body.data.map((e: { symbol: string }) => e.symbol)).not.toContain(sec.ticker);
  });

  it('an unknown symbol is 404 and a bad one 400 naming params.symbol', async () => {
    const res = await request(app)
      .put('/api/watchlist/NOSUCHWL')
      .set('Authorization', writer.header)
      .expect(404);
    expect(res.body.error.message).toBe('unknown symbol "NOSUCHWL"');
    await request(app).delete('/api/watchlist/NOSUCHWL').set('Authorization', writer.header).expect(404);
    const bad = await request(app)
      .put('/api/watchlist/A%20B')
      .set('Authorization', writer.header)
      .expect(400);
    expect(fieldsOf(bad.body)).toEqual(['params.symbol']);
  });

  it('a results:read token cannot change it', async () => {
    const sec = await insertSecurity(deps, { prefix: 'WL' });
    await request(app).put(`/api/watchlist/${sec.ticker}`).set('Authorization', reader).expect(403);
    expect((await deps.repos.watchlist.list()).map((e) => e.ticker)).not.toContain(sec.ticker);
  });
});
