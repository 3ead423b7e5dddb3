/**
 * The Alpha Vantage provider end to end over HTTP against test/provider-server.ts (request URLs
 * built by the `alphavantage` package, bodies in AV's real shapes): daily with split and
 * dividend columns, intraday by month with US/Eastern times across DST, quote, FX, and every
 * error and throttle body AV sends with HTTP 200.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { sessionsBetween } from '../core/calendar/nyse.ts';
import { createAlphaVantageProvider, wallTimeToUtc } from '../core/providers/alphavantage.ts';
import {
  ProviderPermanentError,
  ProviderRateLimitError,
  ProviderTransientError,
  type PriceProvider,
} from '../core/providers/types.ts';
import { avFixtureBody, respond, startProviderServer, type ProviderServer } from './provider-server.ts';
import { frozenClock, testConfig } from './support.ts';

const KEY = 'TESTKEY123';
let server: ProviderServer;
let av: PriceProvider;

const make = (overrides: Record<string, string> = {}, clockIso?: string): PriceProvider =>
  createAlphaVantageProvider(
    // A timeout long enough for a loaded CI machine; the hang and stall cases use a short one.
    testConfig({ ALPHAVANTAGE_API_KEY: KEY, PROVIDER_TIMEOUT_MS: '5000', ...overrides }),
    {
      fetch: server.fetch,
      ...(clockIso ? { clock: frozenClock(clockIso) } : {}),
    },
  );

beforeAll(async () => {
  server = await startProviderServer();
  av = make();
});
afterAll(async () => {
  await server.close();
});
beforeEach(() => {
  server.reset();
});

describe('alphavantage daily', () => {
  it('parses daily adjusted: as-traded bars in date order, the 4:1 split and the dividend', async () => {
    const h = await av.daily('AAPL', '2020-08-24', '2020-11-06');
    expect(h.provider).toBe('alphavantage');
    expect(h.currency).toBeNull();
    expect(h.bars.map((b) => b.date)).toEqual(sessionsBetween('2020-08-24', '2020-11-06').map((s) => s.date));
    expect(h.bars.find((b) => b.date === '2020-08-28')).toMatchObject({
      open: 504.05,
      high: 505.77,
      low: 498.31,
      close: 499.23,
      adjClose: 121.6996,
      volume: 46907479,
      raw: { '2020-08-28': { '4. close': '499.2300', '8. split coefficient': '1.0' } },
    });
    expect(h.bars.find((b) => b.date === '2020-08-31')).toMatchObject({ close: 129.04, volume: 225702700 });
    expect(h.events).toEqual([
      expect.objectContaining({ kind: 'split', exDate: '2020-08-31', ratio: 4, amount: null }),
      expect.objectContaining({ kind: 'dividend', exDate: '2020-11-06', ratio: null, amount: 0.205 }),
    ]);

    const [req] = server.requestsFor('alphavantage');
    const p = req!.url.searchParams;
    expect(req!.url.origin + req!.url.pathname).toBe('https://www.alphavantage.co/query');
    expect(Object.fromEntries(p)).toEqual({
      apikey: KEY,
      function: 'TIME_SERIES_DAILY_ADJUSTED',
      symbol: 'AAPL',
      outputsize: 'full',
      datatype: 'json',
    });
  });

  it('keeps only the dates asked for, and asks for the compact series when it reaches back far enough', async () => {
    const recent = make({}, '2020-11-09T15:00:00Z');
    const h = await recent.daily('AAPL', '2020-09-01', '2020-09-04');
    expect(h.bars.map((b) => b.date)).toEqual(['2020-09-01', '2020-09-02', '2020-09-03', '2020-09-04']);
    expect(h.events).toEqual([]);
    expect(server.requestsFor('alphavantage')[0]!.url.searchParams.get('outputsize')).toBe('compact');
  });

  it('falls back to TIME_SERIES_DAILY when the adjusted series is premium-only, and remembers it', async () => {
    const p = make();
    server.script('alphavantage', respond.avPremium());
    const h = await p.daily('AAPL', '2020-08-28', '2020-09-01');
    expect(h.bars.map((b) => [b.date, b.close, b.adjClose, b.volume])).toEqual([
      ['2020-08-28', 499.23, null, 46907479],
      ['2020-08-31', 129.04, null, 225702700],
      ['2020-09-01', 134.18, null, 151948100],
    ]);
    expect(h.events).toEqual([]);
    await p.daily('AAPL', '2020-08-28', '2020-09-01');
    expect(server.requests.map((r) => r.avFunction)).toEqual([
      'TIME_SERIES_DAILY_ADJUSTED',
      'TIME_SERIES_DAILY',
      'TIME_SERIES_DAILY',
    ]);
  });

  it('keeps what AV said: a missing field is null, a non-number is NaN (validation rejects it later)', async () => {
    const body = avFixtureBody('TIME_SERIES_DAILY_ADJUSTED_AAPL') as {
      'Time Series (Daily)': Record<string, Record<string, string>>;
    };
    delete body['Time Series (Daily)']['2020-09-01']!['6. volume'];
    body['Time Series (Daily)']['2020-09-02']!['4. close'] = 'n/a';
    server.script('alphavantage', respond.json(body));
    const h = await av.daily('AAPL', '2020-09-01', '2020-09-02');
    expect(h.bars[0]).toMatchObject({ date: '2020-09-01', volume: null, close: 134.18 });
    expect(h.bars[1]!.close).toBeNaN();
  });
});

describe('alphavantage intraday', () => {
  it('requests each month touched and converts US/Eastern times across the March DST change', async () => {
    const from = new Date('2024-02-29T20:50:00Z');
    const to = new Date('2024-03-11T19:55:00Z');
    const h = await av.intraday('AAPL', from, to, 5);
    const reqs = server.requestsFor('alphavantage').map((r) => Object.fromEntries(r.url.searchParams));
    expect(reqs).toEqual(
      ['2024-02', '2024-03'].map((month) => ({
        apikey: KEY,
        function: 'TIME_SERIES_INTRADAY',
        symbol: 'AAPL',
        interval: '5min',
        month,
        outputsize: 'full',
        adjusted: 'false',
        extended_hours: 'false',
        datatype: 'json',
      })),
    );
    const stamps = h.bars.map((b) => b.ts.toISOString());
    // 2024-02-29 15:45 EST is before `from`; 2024-03-11 15:55 EDT is `to` (exclusive).
    expect(stamps[0]).toBe('2024-02-29T20:50:00.000Z');
    expect(stamps).toContain('2024-03-08T14:30:00.000Z'); // 09:30 EST
    expect(stamps).toContain('2024-03-11T13:30:00.000Z'); // 09:30 EDT
    expect(stamps.at(-1)).toBe('2024-03-11T19:50:00.000Z');
    expect(stamps).toHaveLength(2 + 9 + 8);
    expect([...stamps].sort()).toEqual(stamps);
    const first = h.bars.find((b) => b.ts.toISOString() === '2024-03-08T14:30:00.000Z')!;
    const raw = (
      avFixtureBody('TIME_SERIES_INTRADAY_AAPL_5min_2024-03') as Record<
        string,
        Record<string, Record<string, string>>
      >
    )['Time Series (5min)']!['2024-03-08 09:30:00']!;
    expect(first).toMatchObject({
      open: Number(raw['1. open']),
      high: Number(raw['2. high']),
      low: Number(raw['3. low']),
      close: Number(raw['4. close']),
      volume: Number(raw['5. volume']),
      raw: { '2024-03-08 09:30:00': raw, timeZone: 'US/Eastern' },
    });
  });

  it('converts 1min bars across the November DST change', async () => {
    const h = await av.intraday(
      'AAPL',
      new Date('2024-11-01T12:00:00Z'),
      new Date('2024-11-05T00:00:00Z'),
      1,
    );
    expect(h.bars.map((b) => b.ts.toISOString())).toEqual([
      '2024-11-01T13:30:00.000Z',
      '2024-11-01T13:31:00.000Z',
      '2024-11-01T13:32:00.000Z',
      '2024-11-01T13:33:00.000Z',
      '2024-11-04T14:30:00.000Z',
      '2024-11-04T14:31:00.000Z',
      '2024-11-04T14:32:00.000Z',
      '2024-11-04T14:33:00.000Z',
    ]);
    expect(server.requestsFor('alphavantage').map((r) => r.url.searchParams.get('month'))).toEqual([
      '2024-11',
    ]);
  });

  it('reads exchange wall times as the NYSE calendar does, every session of three years', () => {
    for (const s of sessionsBetween('2023-01-01', '2025-12-31')) {
      expect(wallTimeToUtc(`${s.date} 09:30:00`, 'US/Eastern')!.toISOString()).toBe(s.openAt.toISOString());
    }
    expect(wallTimeToUtc('not a time', 'US/Eastern')).toBeNull();
  });

  it('refuses an interval it does not serve for us', async () => {
    await expect(av.intraday('AAPL', new Date('2024-11-01'), new Date('2024-11-02'), 15)).rejects.toThrow(
      ProviderPermanentError,
    );
    expect(server.requests).toHaveLength(0);
  });
});

describe('alphavantage quote and FX', () => {
  it('parses GLOBAL_QUOTE; stamped with the fetch time during the session, the close after it', async () => {
    const q = await av.quote('AAPL');
    expect(q).toMatchObject({
      symbol: 'AAPL',
      price: 244.6,
      volume: 40896227,
      currency: null,
      bid: null,
      ask: null,
    });
    expect(q.ts?.toISOString()).toBe('2025-02-14T21:00:00.000Z');
    expect(server.requestsFor('alphavantage')[0]!.avFunction).toBe('GLOBAL_QUOTE');

    const during = await make({}, '2025-02-14T18:00:00Z').quote('AAPL');
    expect(during.price).toBe(244.6);
    expect(during.ts?.toISOString()).toBe('2025-02-14T18:00:00.000Z');

    // The close itself is past the session: the close stamp (validation keeps it as the closing print).
    const atClose = await make({}, '2025-02-14T21:00:00Z').quote('AAPL');
    expect(atClose.ts?.toISOString()).toBe('2025-02-14T21:00:00.000Z');
    // A day whose session has not opened yet by our clock: no time we could vouch for.
    const early = await make({}, '2025-02-14T14:00:00Z').quote('AAPL');
    expect(early.ts).toBeNull();
  });

  it('an empty Global Quote is an unknown symbol', async () => {
    await expect(av.quote('NOPE')).rejects.toSatisfy(
      (e) => e instanceof ProviderPermanentError && /unknown symbol "NOPE"/.test(e.message),
    );
  });

  it('reads FX_DAILY closes as rates', async () => {
    const rates = await av.fxDaily('EUR', 'USD', '2020-01-01', '2020-01-03');
    expect(rates.map((r) => [r.date, r.rate])).toEqual([
      ['2020-01-01', 1.1217],
      ['2020-01-02', 1.1173],
      ['2020-01-03', 1.1159],
    ]);
    expect(rates[0]!.raw).toEqual({ '2020-01-01': expect.objectContaining({ '4. close': '1.12170' }) });
    const p = server.requestsFor('alphavantage')[0]!.url.searchParams;
    expect([p.get('function'), p.get('from_symbol'), p.get('to_symbol')]).toEqual(['FX_DAILY', 'EUR', 'USD']);
  });
});

describe('alphavantage errors and throttling', () => {
  const fx = (p: PriceProvider = av): Promise<unknown> => p.fxDaily('EUR', 'USD', '2020-01-01', '2020-01-03');
  let quick: PriceProvider;
  beforeAll(() => {
    quick = make({ PROVIDER_TIMEOUT_MS: '300' });
  });

  it.each([
    ['429 with Retry-After', respond.rateLimited(9), ProviderRateLimitError, /HTTP 429/, 9000],
    ['429 without Retry-After', respond.rateLimited(), ProviderRateLimitError, /HTTP 429/, 60_000],
    [
      'a Note throttle body',
      respond.avNote(),
      ProviderRateLimitError,
      /throttled, Note.*call frequency/,
      60_000,
    ],
    [
      'an Information throttle body',
      respond.avInformation(),
      ProviderRateLimitError,
      /throttled, Information.*25 requests per day/,
      60_000,
    ],
    ['500', respond.serverError(500), ProviderTransientError, /HTTP 500/, null],
    ['a hang', respond.hang(), ProviderTransientError, /timeout after 300 ms/, null],
    ['a body that stalls', respond.stall(), ProviderTransientError, /timeout after 300 ms/, null],
    ['malformed JSON', respond.malformedJson(), ProviderTransientError, /malformed JSON/, null],
    ['a connection reset', respond.reset(), ProviderTransientError, /network error/, null],
    [
      'an Error Message',
      respond.avErrorMessage('FX_DAILY'),
      ProviderPermanentError,
      /Error Message.*Invalid API call/,
      null,
    ],
    [
      'a plain string body',
      respond.json('Invalid API call.'),
      ProviderPermanentError,
      /error.*Invalid API call/,
      null,
    ],
    ['a premium-endpoint Information', respond.avPremium(), ProviderPermanentError, /premium endpoint/, null],
    [
      'a body without the series',
      respond.json({ 'Meta Data': {} }),
      ProviderPermanentError,
      /no "Time Series FX \(Daily\)"/,
      null,
    ],
  ])('%s → the right error class and cause', async (_name, fault, errorClass, message, retryAfter) => {
    server.script('alphavantage', fault);
    const err = await fx(/timeout/.test(String(message)) ? quick : av).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(errorClass);
    expect((err as Error).message).toMatch(/^alphavantage: /);
    expect((err as Error).message).toMatch(message);
    expect((err as Error).message).not.toContain(KEY);
    if (retryAfter !== null) expect((err as ProviderRateLimitError).retryAfterMs).toBe(retryAfter);
    expect(server.pendingScripts()).toBe(0);
    await expect(fx()).resolves.toHaveLength(3);
  });

  it('checks the body of every function, not only the time series', async () => {
    server.script(
      'alphavantage',
      respond.avNote(),
      respond.avErrorMessage('TIME_SERIES_INTRADAY'),
      respond.avInformation(),
    );
    await expect(av.quote('AAPL')).rejects.toThrow(ProviderRateLimitError);
    await expect(av.intraday('AAPL', new Date('2024-11-01'), new Date('2024-11-02'), 1)).rejects.toThrow(
      ProviderPermanentError,
    );
    await expect(av.daily('AAPL', '2020-09-01', '2020-09-02')).rejects.toThrow(ProviderRateLimitError);
  });

  it('a missing API key fails the call, not construction, and sends nothing', async () => {
    const p = createAlphaVantageProvider(testConfig({ ALPHAVANTAGE_API_KEY: '' }), { fetch: server.fetch });
    expect(p.name).toBe('alphavantage');
    await expect(p.daily('AAPL', '2020-09-01', '2020-09-02')).rejects.toSatisfy(
      (e) =>
        e instanceof ProviderPermanentError && e.message === 'alphavantage: ALPHAVANTAGE_API_KEY is not set',
    );
    await expect(p.quote('AAPL')).rejects.toThrow(ProviderPermanentError);
    expect(server.requests).toHaveLength(0);
  });
});
