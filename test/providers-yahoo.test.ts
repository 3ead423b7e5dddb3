/**
 * The real yahoo-finance2 client, end to end over HTTP against test/provider-server.ts: recorded
 * Yahoo responses parse into bars, events, quotes and FX rates, and every fault maps to the
 * error class (and message) the job host acts on. Yahoo's split-adjusted bars come back as traded:
 * prices × and volumes ÷ the splits after each bar (also those after the requested range, fetched
 * by one splits-only request), rounded to what the float32 source vouches for.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { sessionsBetween } from '../core/calendar/nyse.ts';
import { createYahooProvider, roundAsTraded } from '../core/providers/yahoo.ts';
import {
  ProviderPermanentError,
  ProviderRateLimitError,
  ProviderTransientError,
  type PriceProvider,
} from '../core/providers/types.ts';
import {
  respond,
  startProviderServer,
  yahooChartBody,
  yahooFixtureBody,
  type ChartRow,
  type ProviderServer,
  type RecordedRequest,
} from './provider-server.ts';
import { frozenClock, testConfig } from './support.ts';

interface ChartFixture {
  chart: {
    result: {
      timestamp: number[];
      indicators: {
        quote: Record<'open' | 'high' | 'low' | 'close' | 'volume', number[]>[];
        adjclose: { adjclose: number[] }[];
      };
    }[];
  };
}

/** When the recordings were made (their meta.regularMarketTime is 2025-02-19). */
const RECORDED_AT = '2025-02-20T12:00:00Z';
/** AAPL's 4:1 split, as Yahoo lists it in `events.splits` (keyed by the ex-date's session open). */
const AAPL_SPLIT_2020 = { date: 1598880600, numerator: 4, denominator: 1, splitRatio: '4:1' };

/** A Yahoo chart body with `events` added (yahooChartBody makes none). */
function withEvents(
  body: unknown,
  events: {
    splits?: { date: number; numerator: number; denominator: number; splitRatio: string }[];
    dividends?: { date: number; amount: number }[];
  },
  granularity?: string,
): unknown {
  const result = (body as { chart: { result: Record<string, unknown>[] } }).chart.result[0]!;
  const keyed = <T extends { date: number }>(xs: T[] | undefined): Record<string, T> | undefined =>
    xs ? Object.fromEntries(xs.map((x) => [String(x.date), x])) : undefined;
  result.events = { splits: keyed(events.splits), dividends: keyed(events.dividends) };
  if (granularity) (result.meta as Record<string, unknown>).dataGranularity = granularity;
  return body;
}

/** What Yahoo answers a splits-only request with: a few quarterly bars plus the split list. */
function splitsBody(
  symbol: string,
  splits: { date: number; numerator: number; denominator: number; splitRatio: string }[],
): unknown {
  const rows: ChartRow[] = [
    { ts: new Date('2020-07-01T13:30:00Z'), open: 91.28, high: 137.98, low: 89.14, close: 115.81, volume: 1 },
    {
      ts: new Date('2020-10-01T13:30:00Z'),
      open: 117.64,
      high: 138.79,
      low: 107.72,
      close: 132.69,
      volume: 1,
    },
  ];
  return withEvents(yahooChartBody({ symbol, interval: '1d', rows }), { splits }, '3mo');
}

const isSplitsRequest =
  (symbol: string) =>
  (r: RecordedRequest): boolean =>
    r.kind === 'chart' && r.symbol === symbol && r.url.searchParams.get('events') === 'split';

/** Yahoo stores adjusted prices as float32: what its chart shows for an as-traded price p after F. */
const yahooAdjusted = (p: number, factor: number): number => Math.fround(p / factor);

/** The float32 values on either side of a positive `a` (just `a` when it is one). */
function float32sAround(a: number): number[] {
  const f = new Float32Array([a]);
  if (f[0] === a) return [a];
  const nearest = f[0]!;
  new Uint32Array(f.buffer)[0]! += nearest < a ? 1 : -1;
  return [nearest, f[0]!];
}

let server: ProviderServer;
/** Parsing tests: a generous timeout, so a loaded machine cannot turn them into timeouts. */
let yahoo: PriceProvider;
/** Fault tests: a short timeout, so hangs fail fast. */
let faulty: PriceProvider;

/** A provider on the test server with its clock at `iso` (5 s timeout). */
const yahooAt = (iso: string): PriceProvider =>
  createYahooProvider(testConfig({ PROVIDER_TIMEOUT_MS: '5000' }), {
    fetch: server.fetch,
    clock: frozenClock(iso),
  });

beforeAll(async () => {
  server = await startProviderServer();
  yahoo = yahooAt(RECORDED_AT);
  faulty = createYahooProvider(testConfig({ PROVIDER_TIMEOUT_MS: '300' }), {
    fetch: server.fetch,
    clock: frozenClock(RECORDED_AT),
  });
});
afterAll(async () => {
  await server.close();
});
beforeEach(() => {
  server.reset();
  // AAPL's splits since any date up to now, as Yahoo would list them: only the 2020 one is left.
  server.always(isSplitsRequest('AAPL'), respond.json(splitsBody('AAPL', [AAPL_SPLIT_2020])));
});

describe('yahoo daily', () => {
  it('parses the recorded AAPL chart: session dates, values, the 4:1 split and the dividend', async () => {
    const h = await yahoo.daily('AAPL', '2020-08-31', '2020-11-06');
    const fx = (yahooFixtureBody('chart-AAPL-2020-08-31-to-2020-11-07') as ChartFixture).chart.result[0]!;
    const q = fx.indicators.quote[0]!;

    expect(h.provider).toBe('yahoo');
    expect(h.currency).toBe('USD');
    // Every bar is one NYSE session, in order, none missing (Labor Day and weekends absent).
    expect(h.bars.map((b) => b.date)).toEqual(sessionsBetween('2020-08-31', '2020-11-06').map((s) => s.date));
    expect(h.bars).toHaveLength(49);
    // After the split (none later in this clock's view): exactly Yahoo's values (no factor was
    // applied, so nothing is rounded: 127.58000183105469 stays).
    h.bars.forEach((b, i) => {
      expect(b).toMatchObject({
        open: q.open[i],
        high: q.high[i],
        low: q.low[i],
        close: q.close[i],
        volume: q.volume[i],
        adjClose: fx.indicators.adjclose[0]!.adjclose[i],
      });
      expect(b.raw).toMatchObject({ timestamp: fx.timestamp[i], close: q.close[i] });
    });
    expect(h.bars[0]).toMatchObject({
      date: '2020-08-31',
      open: 127.58000183105469,
      close: 129.0399932861328,
    });

    expect(h.events).toEqual([
      expect.objectContaining({ kind: 'split', exDate: '2020-08-31', ratio: 4, amount: null }),
      expect.objectContaining({ kind: 'dividend', exDate: '2020-11-06', ratio: null, amount: 0.205 }),
    ]);
    expect(h.events[0]!.raw).toMatchObject({
      numerator: 4,
      denominator: 1,
      splitRatio: '4:1',
      date: 1598880600,
    });

    const [req] = server.requestsFor('yahoo-chart');
    expect(req!.url.searchParams.get('interval')).toBe('1d');
    expect(Number(req!.url.searchParams.get('period1'))).toBeLessThanOrEqual(Date.UTC(2020, 7, 31) / 1000);
    expect(Number(req!.url.searchParams.get('period2'))).toBeGreaterThan(Date.UTC(2020, 10, 6, 21) / 1000);
    expect(req!.answeredWith).toBe('fixture:chart-AAPL-2020-08-31-to-2020-11-07');
  });

  it('keeps only the sessions and events asked for', async () => {
    const h = await yahoo.daily('AAPL', '2020-09-01', '2020-09-04');
    expect(h.bars.map((b) => b.date)).toEqual(['2020-09-01', '2020-09-02', '2020-09-03', '2020-09-04']);
    expect(h.events).toEqual([]);
  });

  it('parses the historical-via-chart recording, un-adjusted for the split after it', async () => {
    const h = await yahoo.daily('AAPL', '2020-01-01', '2020-01-03');
    // Yahoo shows 74.05999755859375 / 75.1500015258789 / 73.79750061035156 / 75.0875015258789 and
    // 135480400 (÷4, ×4 for the 2020-08-31 split); AAPL traded at 296.24 / 300.60 / 295.19 / 300.35
    // on 33,870,100 shares that day. adjClose stays Yahoo's split-and-dividend-adjusted close.
    expect(h.bars).toEqual([
      expect.objectContaining({
        date: '2020-01-02',
        open: 296.24,
        high: 300.6,
        low: 295.19,
        close: 300.35,
        adjClose: 72.71605682373047,
        volume: 33870100,
      }),
    ]);
    expect(h.bars[0]!.raw).toMatchObject({ open: 74.05999755859375, volume: 135480400, splitFactor: 4 });
    expect(server.requestsFor('yahoo-chart')[0]!.answeredWith).toBe(
      'fixture:historical-via-chart-AAPL-2020-01-01-to-2020-01-03',
    );
  });

  it('keeps nulls as Yahoo sent them', async () => {
    const at = (iso: string): Date => new Date(iso);
    server.script(
      'yahoo-chart',
      respond.json(
        yahooChartBody({
          symbol: 'AAPL',
          interval: '1d',
          rows: [
            {
              ts: at('2024-03-08T14:30:00Z'),
              open: 169.15,
              high: 173.7,
              low: 168.94,
              close: 170.73,
              volume: 76114600,
            },
            {
              ts: at('2024-03-11T13:30:00Z'),
              open: 172.94,
              high: 174.38,
              low: 172.05,
              close: null,
              volume: null,
            },
          ],
        }),
      ),
    );
    const h = await yahoo.daily('AAPL', '2024-03-08', '2024-03-11');
    expect(h.bars.map((b) => b.date)).toEqual(['2024-03-08', '2024-03-11']);
    expect(h.bars[1]).toMatchObject({ close: null, volume: null, adjClose: null, raw: { close: null } });
  });

  it('treats "Data doesn\'t exist" for a range as an empty history', async () => {
    const h = await yahoo.daily('AAPL', '1975-01-02', '1975-01-10');
    expect(h.bars).toEqual([]);
    expect(server.requestsFor('yahoo-chart')[0]!.answeredWith).toBe('default:no-data');
  });
});

describe('yahoo as-traded prices', () => {
  /** Daily bars at the session open (13:30 UTC in summer, 14:30 in winter) from as-traded values. */
  const dailyRows = (
    factor: number,
    bars: [string, number, number, number, number, number][],
    openUtc = '13:30',
  ): ChartRow[] =>
    bars.map(([date, o, h, l, c, v]) => ({
      ts: new Date(`${date}T${openUtc}:00Z`),
      open: yahooAdjusted(o, factor),
      high: yahooAdjusted(h, factor),
      low: yahooAdjusted(l, factor),
      close: yahooAdjusted(c, factor),
      volume: v * factor,
    }));

  it('multiplies bars before a split in the window by it (volume ÷), leaves the rest as sent (rounded)', async () => {
    const fx = (yahooFixtureBody('chart-AAPL-2020-08-31-to-2020-11-07') as ChartFixture).chart.result[0]!;
    const q = fx.indicators.quote[0]!;
    // AAPL as traded before its 4:1 split; Yahoo shows them ÷4 (float32) with volume ×4.
    const before = dailyRows(4, [
      ['2020-08-07', 452.82, 454.7, 441.17, 444.45, 49_511_403],
      ['2020-08-27', 508.57, 509.94, 495.33, 500.04, 38_888_096],
      ['2020-08-28', 504.05, 505.77, 498.31, 499.23, 46_907_479],
    ]);
    const after = [0, 1].map((i) => ({
      ts: new Date(fx.timestamp[i]! * 1000),
      open: q.open[i]!,
      high: q.high[i]!,
      low: q.low[i]!,
      close: q.close[i]!,
      volume: q.volume[i]!,
    }));
    server.script(
      'yahoo-chart',
      respond.json(
        withEvents(yahooChartBody({ symbol: 'AAPL', interval: '1d', rows: [...before, ...after] }), {
          splits: [AAPL_SPLIT_2020],
          dividends: [{ date: 1596807000, amount: 0.205 }],
        }),
      ),
    );
    const y = yahooAt('2020-09-02T12:00:00Z');
    const h = await y.daily('AAPL', '2020-08-07', '2020-09-01');

    expect(h.bars.map((b) => [b.date, b.open, b.high, b.low, b.close, b.volume])).toEqual([
      ['2020-08-07', 452.82, 454.7, 441.17, 444.45, 49_511_403],
      ['2020-08-27', 508.57, 509.94, 495.33, 500.04, 38_888_096],
      ['2020-08-28', 504.05, 505.77, 498.31, 499.23, 46_907_479],
      // On and after the ex-date: the recorded values exactly (no factor, so no rounding).
      ['2020-08-31', q.open[0], q.high[0], q.low[0], q.close[0], q.volume[0]],
      ['2020-09-01', q.open[1], q.high[1], q.low[1], q.close[1], q.volume[1]],
    ]);
    // ×4 and ÷4 relative to what Yahoo sent, which `raw` keeps with the factor applied.
    h.bars.forEach((b, i) => {
      const raw = b.raw as { close: number; volume: number; splitFactor: number };
      const f = i < 3 ? 4 : 1;
      expect(raw.splitFactor).toBe(f);
      expect(b.close).toBeCloseTo(raw.close * f, 4);
      expect(b.volume).toBe(raw.volume / f);
    });
    // The dividend is back to the $0.82 declared per (pre-split) share; the split is as reported.
    expect(h.events).toEqual([
      expect.objectContaining({ kind: 'dividend', exDate: '2020-08-07', amount: 0.82 }),
      expect.objectContaining({ kind: 'split', exDate: '2020-08-31', ratio: 4 }),
    ]);
    expect(h.events[0]!.raw).toMatchObject({ amount: 0.205, splitFactor: 4 });
    // The window reached the clock's now: every split up to today was in the one response.
    expect(server.requestsFor('yahoo-chart')).toHaveLength(1);
  });

  it('a split after `to` still un-adjusts the bars: one splits-only request, from the last bar to now', async () => {
    const h = await yahoo.daily('AAPL', '2020-01-01', '2020-01-03');
    expect(h.bars.map((b) => [b.date, b.close, b.volume])).toEqual([['2020-01-02', 300.35, 33_870_100]]);
    // Events stay those of the requested range: the later split only un-adjusts.
    expect(h.events).toEqual([]);

    const reqs = server.requestsFor('yahoo-chart');
    expect(reqs.map((r) => r.answeredWith)).toEqual([
      'fixture:historical-via-chart-AAPL-2020-01-01-to-2020-01-03',
      'scripted:json:200',
    ]);
    const p = reqs[1]!.url.searchParams;
    expect(p.get('events')).toBe('split');
    expect(p.get('interval')).toBe('3mo');
    expect(Number(p.get('period1'))).toBe(Date.UTC(2020, 0, 2) / 1000);
    expect(Number(p.get('period2'))).toBe(Date.parse(RECORDED_AT) / 1000);
    expect(reqs[0]!.url.searchParams.get('events')).toBe('div|split');
  });

  it('intraday bars before a later split come back ×4, volume ÷4', async () => {
    const rows = (['2020-08-28T14:30:00Z', '2020-08-28T14:35:00Z'] as const).map((iso, i) => ({
      ts: new Date(iso),
      open: yahooAdjusted(500.12 + i, 4),
      high: yahooAdjusted(500.5 + i, 4),
      low: yahooAdjusted(499.87 + i, 4),
      close: yahooAdjusted(500.2 + i, 4),
      volume: 4 * (123_457 + i),
    }));
    server.script('yahoo-chart', respond.json(yahooChartBody({ symbol: 'AAPL', interval: '5m', rows })));
    const y = yahooAt('2020-09-15T12:00:00Z');
    const h = await y.intraday('AAPL', new Date('2020-08-28T14:30:00Z'), new Date('2020-08-28T14:40:00Z'), 5);
    expect(h.bars.map((b) => [b.ts.toISOString(), b.open, b.high, b.low, b.close, b.volume])).toEqual([
      ['2020-08-28T14:30:00.000Z', 500.12, 500.5, 499.87, 500.2, 123_457],
      ['2020-08-28T14:35:00.000Z', 501.12, 501.5, 500.87, 501.2, 123_458],
    ]);
    expect(h.events).toEqual([]);
    const splitsReq = server.requestsFor(isSplitsRequest('AAPL'));
    expect(splitsReq).toHaveLength(1);
    expect(Number(splitsReq[0]!.url.searchParams.get('period1'))).toBe(Date.UTC(2020, 7, 28) / 1000);
  });

  it('asks nothing more when the window already reaches today (the fetch path)', async () => {
    const at = yahooAt;
    // Daily up to today, and yesterday's bars fetched the next morning (period2 = to + 2 days).
    await at('2020-11-06T20:00:00Z').daily('AAPL', '2020-08-31', '2020-11-06');
    await at('2020-11-07T12:00:00Z').daily('AAPL', '2020-08-31', '2020-11-06');
    // Intraday of today's session: to is before now, but no later session has begun.
    server.script(
      'yahoo-chart',
      respond.json(
        yahooChartBody({
          symbol: 'AAPL',
          interval: '5m',
          rows: [
            {
              ts: new Date('2024-03-11T13:30:00Z'),
              open: 172.94,
              high: 173,
              low: 172.9,
              close: 173,
              volume: 9,
            },
          ],
        }),
      ),
    );
    const h = await at('2024-03-11T13:41:00Z').intraday(
      'AAPL',
      new Date('2024-03-11T13:30:00Z'),
      new Date('2024-03-11T13:35:00Z'),
      5,
    );
    expect(h.bars).toEqual([expect.objectContaining({ open: 172.94, volume: 9 })]);
    expect(server.requestsFor('yahoo-chart').map((r) => r.url.searchParams.get('events'))).toEqual([
      'div|split',
      'div|split',
      'div|split',
    ]);
  });

  it('several later splits multiply up; a dividend goes back to the amount declared', async () => {
    // AAPL in August 2012, after its 7:1 (2014) and 4:1 (2020) splits: Yahoo divides by 28 and
    // shows the $2.65 dividend as 0.094643.
    const rows = dailyRows(28, [
      ['2012-08-08', 619.39, 623.88, 617.1, 619.86, 6_732_200],
      ['2012-08-09', 617.85, 621.73, 617.8, 620.73, 7_915_800],
      ['2012-08-10', 618.71, 621.76, 618.7, 621.7, 6_962_100],
    ]);
    server.script(
      'yahoo-chart',
      respond.json(
        withEvents(yahooChartBody({ symbol: 'AAPL', interval: '1d', rows }), {
          dividends: [{ date: 1344519000, amount: 0.094643 }],
        }),
      ),
    );
    server.script(
      isSplitsRequest('AAPL'),
      respond.json(
        splitsBody('AAPL', [
          { date: 1402320600, numerator: 7, denominator: 1, splitRatio: '7:1' },
          AAPL_SPLIT_2020,
        ]),
      ),
    );
    const h = await yahoo.daily('AAPL', '2012-08-08', '2012-08-10');
    expect(h.bars.map((b) => [b.date, b.open, b.high, b.low, b.close, b.volume])).toEqual([
      ['2012-08-08', 619.39, 623.88, 617.1, 619.86, 6_732_200],
      ['2012-08-09', 617.85, 621.73, 617.8, 620.73, 7_915_800],
      ['2012-08-10', 618.71, 621.76, 618.7, 621.7, 6_962_100],
    ]);
    expect(h.bars[1]!.raw).toMatchObject({ splitFactor: 28 });
    expect(h.events).toEqual([
      expect.objectContaining({ kind: 'dividend', exDate: '2012-08-09', amount: 2.65 }),
    ]);
  });

  it('a reverse split: sub-dollar prices to 4 decimals; volumes divided exactly, ties to even', async () => {
    // ACME: 1:10 reverse split on 2024-01-03 (in the window), 2:1 split on 2024-01-08 (after it).
    const rows: ChartRow[] = [
      // Before both: F = 2/10; traded at 0.1024 and 0.1031 on 5,000,005 shares.
      {
        ts: new Date('2024-01-02T14:30:00Z'),
        open: 0.512,
        high: 0.5155,
        low: 0.5,
        close: 0.5155,
        volume: 1_000_001,
      },
      // Between them: F = 2; traded at 1.03 / 1.0301; Yahoo's volumes 5 and 7 are not multiples of 2.
      { ts: new Date('2024-01-04T14:30:00Z'), open: 0.515, high: 0.515, low: 0.515, close: 0.515, volume: 5 },
      {
        ts: new Date('2024-01-05T14:30:00Z'),
        open: 0.515,
        high: 0.51505,
        low: 0.515,
        close: 0.51505,
        volume: 7,
      },
    ].map((r) => ({
      ...r,
      open: Math.fround(r.open),
      high: Math.fround(r.high),
      low: Math.fround(r.low),
      close: Math.fround(r.close),
    }));
    server.script(
      'yahoo-chart',
      respond.json(
        withEvents(yahooChartBody({ symbol: 'ACME', interval: '1d', rows }), {
          splits: [{ date: 1704292200, numerator: 1, denominator: 10, splitRatio: '1:10' }],
        }),
      ),
    );
    server.script(
      isSplitsRequest('ACME'),
      respond.json(
        splitsBody('ACME', [{ date: 1704724200, numerator: 2, denominator: 1, splitRatio: '2:1' }]),
      ),
    );
    const h = await yahoo.daily('ACME', '2024-01-02', '2024-01-05');
    expect(h.bars.map((b) => [b.date, b.open, b.high, b.low, b.close, b.volume])).toEqual([
      ['2024-01-02', 0.1024, 0.1031, 0.1, 0.1031, 5_000_005],
      ['2024-01-04', 1.03, 1.03, 1.03, 1.03, 2],
      ['2024-01-05', 1.03, 1.0301, 1.03, 1.0301, 4],
    ]);
    expect(h.bars.map((b) => (b.raw as { splitFactor: number }).splitFactor)).toEqual([0.2, 2, 2]);
    expect(h.events).toEqual([expect.objectContaining({ kind: 'split', exDate: '2024-01-03', ratio: 0.1 })]);
  });

  it('bars with no later split come back exactly as sent; a factor rounds only as coarsely as float32 requires', async () => {
    // BRKX: traded at 45,000.12 before a 2:1 split on 2024-01-04 (Yahoo shows float32(22,500.06),
    // one ulp = 2^-9 there, so ×2 the cent is still known); after it, 712,345.6875 (a float32
    // Yahoo sends exactly: nothing was applied to it, so nothing is rounded).
    const before = Math.fround(45_000.12 / 2);
    const rows: ChartRow[] = [
      {
        ts: new Date('2024-01-03T14:30:00Z'),
        open: before,
        high: before,
        low: before,
        close: before,
        volume: 20,
      },
      {
        ts: new Date('2024-01-04T14:30:00Z'),
        open: 712_345.6875,
        high: 712_345.6875,
        low: 712_345.6875,
        close: 712_345.6875,
        volume: 10,
      },
      {
        ts: new Date('2024-01-05T14:30:00Z'),
        open: 127.58000183105469,
        high: 127.58000183105469,
        low: 127.58000183105469,
        close: 127.58000183105469,
        volume: 10,
      },
    ];
    server.script(
      'yahoo-chart',
      respond.json(
        withEvents(yahooChartBody({ symbol: 'BRKX', interval: '1d', rows }), {
          splits: [{ date: 1704378600, numerator: 2, denominator: 1, splitRatio: '2:1' }],
        }),
      ),
    );
    server.script(isSplitsRequest('BRKX'), respond.json(splitsBody('BRKX', [])));
    const h = await yahoo.daily('BRKX', '2024-01-03', '2024-01-05');
    expect(h.bars.map((b) => [b.date, b.open, b.close, b.volume])).toEqual([
      ['2024-01-03', 45_000.12, 45_000.12, 10],
      ['2024-01-04', 712_345.6875, 712_345.6875, 10],
      ['2024-01-05', 127.58000183105469, 127.58000183105469, 10],
    ]);
  });

  it('a failing splits-only request fails the call with its cause (no half-adjusted bars)', async () => {
    server.script(isSplitsRequest('AAPL'), respond.serverError(503));
    await expect(yahoo.daily('AAPL', '2020-01-01', '2020-01-03')).rejects.toSatisfy(
      (e) => e instanceof ProviderTransientError && /^yahoo: HTTP 503 \(chart AAPL splits\)/.test(e.message),
    );
    expect(server.pendingScripts()).toBe(0);
    await expect(yahoo.daily('AAPL', '2020-01-01', '2020-01-03')).resolves.toMatchObject({
      bars: [expect.objectContaining({ close: 300.35 })],
    });
  });

  it('rounds to what the float32 source vouches for: exchange prices come back exactly', () => {
    // A seeded generator: the same prices every run.
    let seed = 20200831;
    const next = (): number => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const factors: [number, number][] = [
      [2, 1],
      [3, 2],
      [4, 1],
      [7, 1],
      [20, 1],
      [28, 1],
      [50, 1],
      [224, 1],
      [1, 10],
      [2, 10],
    ];
    let checked = 0;
    for (const [n, d] of factors) {
      for (let k = 0; k < 2000; k++) {
        // Cent prices up to $40,000, and sub-dollar prices in $0.0001 ticks.
        const p =
          k % 2 === 0 ? Math.round(100 + next() * 3_999_900) / 100 : Math.round(1 + next() * 9_998) / 10_000;
        // What Yahoo's chart may hold: either float32 next to the adjusted price (its 2020-08-28
        // AAPL close, 124.8074951171875, is the one below 499.23 / 4, not the nearest).
        for (const shown of float32sAround((p * d) / n)) {
          expect(roundAsTraded(shown, n, d)).toBe(p);
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThan(39_000); // two candidates each, one when p / F is a float32
    expect(roundAsTraded(124.8074951171875, 4)).toBe(499.23);
    // No more precision than the source has: at most 4 decimals, and only tenths of a cent
    // where float32 cannot vouch for cents; no less either (cents ×2 survive at 22,500).
    expect(roundAsTraded(Math.fround(0.123456789 / 2), 2)).toBe(0.1235);
    expect(roundAsTraded(Math.fround(123_456.78 / 4), 4)).toBe(123_456.8);
    expect(roundAsTraded(Math.fround(45_000.12 / 2), 2)).toBe(45_000.12);
  });
});

describe('yahoo intraday', () => {
  it('returns every bar sent for [from, to) at the requested interval across a DST change, nulls kept', async () => {
    const rows = [
      ['2024-03-08T14:25:00Z', 169.0], // before `from`: still returned, for validation to judge
      ['2024-03-08T14:30:00Z', 169.15],
      ['2024-03-08T14:35:00Z', null],
      ['2024-03-11T13:30:00Z', 172.94], // 09:30 EDT after the switch
      ['2024-03-11T13:35:00Z', 173.1], // == `to`: likewise
    ] as const;
    server.script(
      'yahoo-chart',
      respond.json(
        yahooChartBody({
          symbol: 'AAPL',
          interval: '5m',
          rows: rows.map(([iso, p]) => ({
            ts: new Date(iso),
            open: p,
            high: p === null ? null : p + 0.2,
            low: p === null ? null : p - 0.2,
            close: p,
            volume: p === null ? null : 1000,
          })),
        }),
      ),
    );
    const from = new Date('2024-03-08T14:30:00Z');
    const to = new Date('2024-03-11T13:35:00Z');
    const h = await yahoo.intraday('AAPL', from, to, 5);
    expect(h.bars.map((b) => b.ts.toISOString())).toEqual(rows.map(([iso]) => new Date(iso).toISOString()));
    expect(h.bars[2]).toMatchObject({ open: null, close: null, volume: null });
    expect(h.bars[3]).toMatchObject({ open: 172.94, high: 173.14, raw: { timestamp: 1710163800 } });
    const req = server.requestsFor('yahoo-chart')[0]!.url.searchParams;
    expect(req.get('interval')).toBe('5m');
    expect(req.get('includePrePost')).toBe('false');
    expect(Number(req.get('period1'))).toBe(from.getTime() / 1000);
    expect(Number(req.get('period2'))).toBe(to.getTime() / 1000);
  });

  it('asks for 1m bars and declares the intraday limits', async () => {
    server.script(
      'yahoo-chart',
      respond.json(
        yahooChartBody({
          symbol: 'AAPL',
          interval: '1m',
          rows: [
            {
              ts: new Date('2024-11-04T14:30:00Z'),
              open: 221,
              high: 221.2,
              low: 220.9,
              close: 221.1,
              volume: 5,
            },
          ],
        }),
      ),
    );
    const h = await yahoo.intraday(
      'AAPL',
      new Date('2024-11-04T14:30:00Z'),
      new Date('2024-11-04T15:00:00Z'),
      1,
    );
    expect(h.bars).toHaveLength(1);
    expect(server.requestsFor('yahoo-chart')[0]!.url.searchParams.get('interval')).toBe('1m');
    expect(yahoo.limits.intradayIntervals).toEqual([1, 5]);
    expect(yahoo.limits.intradayMaxSpanDays[1]).toBe(8);
    expect(yahoo.limits.intradayLookbackDays[1]).toBeLessThanOrEqual(30);
    expect(yahoo.limits.intradayLookbackDays[5]).toBeLessThanOrEqual(60);
  });

  it('refuses an interval Yahoo does not serve for us', async () => {
    await expect(
      yahoo.intraday('AAPL', new Date('2024-11-04T14:30:00Z'), new Date('2024-11-04T15:00:00Z'), 15),
    ).rejects.toThrow(ProviderPermanentError);
    expect(server.requests).toHaveLength(0);
  });
});

describe('yahoo quote and FX', () => {
  it('does the cookie/crumb handshake once and parses the recorded quote', async () => {
    const q = await yahoo.quote('AAPL');
    expect(q).toMatchObject({
      symbol: 'AAPL',
      price: 244.6,
      currency: 'USD',
      volume: 40896227,
      bid: 244.44,
      ask: 253.37,
    });
    expect(q.ts?.toISOString()).toBe('2025-02-14T21:00:00.000Z');
    expect(server.requests.map((r) => r.kind)).toEqual(['cookie', 'crumb', 'quote']);
    expect(server.requestsFor('yahoo-quote')[0]!.answeredWith).toBe('fixture:quote-AAPL');

    await yahoo.quote('AAPL');
    expect(server.requests.map((r) => r.kind)).toEqual(['cookie', 'crumb', 'quote', 'quote']);
  });

  it('an unknown symbol is a permanent error naming it', async () => {
    await expect(yahoo.quote('NOPE')).rejects.toThrow(/unknown symbol "NOPE"/);
    await expect(yahoo.daily('NOPE', '2020-01-02', '2020-01-03')).rejects.toSatisfy(
      (e) => e instanceof ProviderPermanentError && /unknown symbol.*No data found/.test(e.message),
    );
  });

  it('reads EURUSD=X as daily FX rates', async () => {
    const rates = await yahoo.fxDaily('EUR', 'USD', '2020-01-01', '2020-01-03');
    expect(rates.map((r) => [r.date, r.rate])).toEqual([
      ['2020-01-01', 1.1220825910568237],
      ['2020-01-02', 1.1220825910568237],
      ['2020-01-03', 1.1171437501907349],
    ]);
    const req = server.requestsFor('yahoo-chart')[0]!;
    expect(req.symbol).toBe('EURUSD=X');
    expect(req.answeredWith).toBe('fixture:chart-EURUSDX-2020-01-01-to-2020-01-03');
  });
});

describe('yahoo dates in the exchange time zone', () => {
  it('dates FX bars by London midnight in summer (23:00 UTC the day before)', async () => {
    const closes = { '2024-06-30': 1.0712, '2024-07-01': 1.0741, '2024-07-02': 1.0745, '2024-07-03': 1.0788 };
    const rows = Object.entries(closes).map(([d, close]) => ({
      ts: new Date(`${d}T23:00:00Z`),
      open: close,
      high: close + 0.002,
      low: close - 0.002,
      close,
      volume: 0,
    }));
    server.script(
      'yahoo-chart',
      respond.json(
        yahooChartBody({
          symbol: 'EURUSD=X',
          interval: '1d',
          rows,
          currency: 'USD',
          exchangeTimezoneName: 'Europe/London',
        }),
      ),
    );
    const rates = await yahoo.fxDaily('EUR', 'USD', '2024-07-01', '2024-07-03');
    expect(rates.map((r) => [r.date, r.rate])).toEqual([
      ['2024-07-01', 1.0712],
      ['2024-07-02', 1.0741],
      ['2024-07-03', 1.0745],
    ]);
    // The request reached far enough back to include London's 1 July (30 June 23:00 UTC).
    const p1 = Number(server.requestsFor('yahoo-chart')[0]!.url.searchParams.get('period1'));
    expect(p1).toBeLessThanOrEqual(Date.UTC(2024, 5, 30, 23) / 1000);
  });
});

describe('yahoo faults', () => {
  const daily = (): Promise<unknown> => faulty.daily('AAPL', '2020-08-31', '2020-11-06');

  it.each([
    ['429 with Retry-After', respond.rateLimited(7), ProviderRateLimitError, /HTTP 429/],
    ['429 without Retry-After', respond.rateLimited(), ProviderRateLimitError, /HTTP 429/],
    ['500', respond.serverError(500), ProviderTransientError, /HTTP 500/],
    ['502', respond.serverError(502), ProviderTransientError, /HTTP 502/],
    ['a hang', respond.hang(), ProviderTransientError, /timeout after 300 ms/],
    ['a body that stalls', respond.stall(), ProviderTransientError, /timeout after 300 ms/],
    ['malformed JSON', respond.malformedJson(), ProviderTransientError, /malformed JSON/],
    ['a connection reset', respond.reset(), ProviderTransientError, /network error/],
    [
      'a body failing validation',
      respond.yahooInvalidChart(),
      ProviderPermanentError,
      /failed validation.*\/meta\/currency/,
    ],
    ['404 not found', respond.yahooNotFound(), ProviderPermanentError, /unknown symbol/],
    [
      '403',
      respond.text('Forbidden', 403, { 'content-type': 'text/plain' }),
      ProviderPermanentError,
      /HTTP 403/,
    ],
  ])('%s → the right error class and cause', async (_name, fault, errorClass, message) => {
    server.script('yahoo-chart', fault);
    const err = await daily().then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(errorClass);
    expect((err as Error).message).toMatch(/^yahoo: /);
    expect((err as Error).message).toMatch(message);
    expect(server.pendingScripts()).toBe(0);
    // The fault does not poison the client: the next call succeeds.
    await expect(daily()).resolves.toMatchObject({ currency: 'USD' });
  });

  it('takes the wait from Retry-After (seconds, HTTP date) or defaults to 60 s', async () => {
    const clock = frozenClock('2025-02-20T12:00:00Z');
    const y = createYahooProvider(testConfig({ PROVIDER_TIMEOUT_MS: '300' }), { fetch: server.fetch, clock });
    const waitOf = async (fault: ReturnType<typeof respond.rateLimited>): Promise<number> => {
      server.script('yahoo-chart', fault);
      const err = await y.daily('AAPL', '2020-09-01', '2020-09-02').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ProviderRateLimitError);
      return (err as ProviderRateLimitError).retryAfterMs;
    };
    expect(await waitOf(respond.rateLimited(7))).toBe(7000);
    expect(await waitOf(respond.rateLimited('Thu, 20 Feb 2025 12:00:42 GMT'))).toBe(42_000);
    expect(await waitOf(respond.rateLimited())).toBe(60_000);
  });

  it('a throttled crumb handshake throttles the quote', async () => {
    const y = createYahooProvider(testConfig({ PROVIDER_TIMEOUT_MS: '300' }), { fetch: server.fetch });
    server.script('yahoo-crumb', respond.rateLimited(5));
    await expect(y.quote('AAPL')).rejects.toSatisfy(
      (e) => e instanceof ProviderRateLimitError && e.retryAfterMs === 5000,
    );
    await expect(y.quote('AAPL')).resolves.toMatchObject({ price: 244.6 });
  });

  it('times out a hung quote and a hung handshake', async () => {
    const y = createYahooProvider(testConfig({ PROVIDER_TIMEOUT_MS: '300' }), { fetch: server.fetch });
    server.script('yahoo-cookie', respond.hang());
    await expect(y.quote('AAPL')).rejects.toThrow(/timeout after 300 ms/);
    server.script('yahoo-quote', respond.hang());
    await expect(y.quote('AAPL')).rejects.toThrow(/timeout after 300 ms/);
    await expect(y.quote('AAPL')).resolves.toMatchObject({ price: 244.6 });
  });
});
