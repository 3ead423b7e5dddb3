/**
 * Validation, encoding and chunk planning of provider rows, as pure functions: every reason code
 * on a row built to trip it (and only it), good rows of the same response accepted, the NYSE
 * session rules (holidays, early closes, DST), bars encoded as four prints, and backfill chunks
 * within the provider's limits.
 */
import { describe, expect, it } from 'vitest';
import { BAR_SEQ, actionRows, decimalText, intradayTicks } from '../core/ingest/load.ts';
import { quoteTick } from '../core/ingest/quotes.ts';
import {
  errorBodyMessage,
  validateDailyBars,
  validateEvents,
  validateFxRates,
  validateIntradayBars,
  validateQuote,
  type ReasonCode,
} from '../core/ingest/validate.ts';
import type {
  ProviderDailyBar,
  ProviderHistory,
  ProviderIntradayBar,
  ProviderLimits,
  ProviderQuote,
} from '../core/providers/types.ts';
import { planChunks } from '../jobs/processors/prices.ts';

const security = { ticker: 'ACME', currency: 'USD' };
const now = new Date('2024-07-10T20:00:00Z');

function daily(date: string, o: Partial<ProviderDailyBar> = {}): ProviderDailyBar {
  const bar = {
    date,
    open: 10,
    high: 11,
    low: 9,
    close: 10.5,
    adjClose: 10.4,
    volume: 1000,
    raw: null,
    ...o,
  };
  return { ...bar, raw: o.raw ?? { ...bar, raw: undefined } };
}

function history<B>(bars: B[], o: Partial<ProviderHistory<B>> = {}): ProviderHistory<B> {
  return { provider: 'synthetic', symbol: 'ACME', currency: 'USD', bars, events: [], ...o };
}

const codes = (r: { rejected: { code: ReasonCode }[] }): ReasonCode[] => r.rejected.map((x) => x.code);

describe('daily bars', () => {
  it('accepts good rows and rejects each bad one with its reason and raw', () => {
    const bars = [
      daily('2024-07-01'),
      daily('2024-07-02', { open: null }),
      daily('2024-07-03', { close: Number.NaN }),
      daily('2024-07-05', { high: Number.POSITIVE_INFINITY }),
      daily('2024-07-08', { low: 0 }),
      daily('2024-07-09', { open: -1 }),
      daily('2024-06-28', { high: 8, low: 9, open: 8.5, close: 8.5 }),
      daily('2024-06-27', { open: 12 }),
      daily('2024-06-26', { close: 8 }),
      daily('2024-06-25', { volume: -5 }),
      daily('2024-06-24', { volume: 1.5 }),
      daily('2024-06-29'), // Saturday
      daily('2024-07-04'), // Independence Day
      daily('2024-02-30'),
      daily('2024-07-11'), // after `now`
      daily('2024-06-21', { raw: { Note: 'Thank you for using Alpha Vantage! 5 calls per minute.' } }),
      daily('2024-06-20', { adjClose: Number.NaN }),
      daily('2024-06-18', { open: 2e12, high: 2e12, close: 2e12 }),
      daily('2024-06-17', { volume: null }),
    ];
    const r = validateDailyBars(history(bars), { security, now });
    expect(r.accepted.map((b) => b.date)).toEqual(['2024-07-01', '2024-06-17']);
    expect(r.accepted[1]?.volume).toBe(0);
    expect(codes(r)).toEqual([
      'null_field',
      'non_finite_price',
      'non_finite_price',
      'non_positive_price',
      'non_positive_price',
      'high_below_low',
      'open_close_outside_range',
      'open_close_outside_range',
      'bad_volume',
      'bad_volume',
      'not_trading_day',
      'not_trading_day',
      'bad_timestamp',
      'incomplete',
      'error_body',
      'non_finite_price',
      'price_out_of_range',
    ]);
    for (const x of r.rejected) {
      expect(x.entity).toBe('bar_1d');
      expect(x.reason.startsWith(`${x.code}: `)).toBe(true);
      expect(x.raw).toBeTruthy();
    }
    expect(r.rejected[0]?.reason).toBe('null_field: open is null');
    expect(r.rejected[5]?.reason).toBe('high_below_low: high 8 < low 9');
  });

  it('counts exact repeats as duplicates and rejects conflicting ones', () => {
    const r = validateDailyBars(
      history([daily('2024-07-01'), daily('2024-07-01'), daily('2024-07-01', { close: 10.6 })]),
      { security, now },
    );
    expect(r.accepted).toHaveLength(1);
    expect(r.duplicates).toBe(1);
    expect(codes(r)).toEqual(['duplicate']);
  });

  it('rejects a whole response in another currency, or for another symbol', () => {
    const bars = [daily('2024-07-01'), daily('2024-07-02')];
    const eur = validateDailyBars(history(bars, { currency: 'EUR' }), { security, now });
    expect(eur.accepted).toHaveLength(0);
    expect(codes(eur)).toEqual(['currency_mismatch', 'currency_mismatch']);
    expect(eur.rejected[0]?.reason).toBe('currency_mismatch: response in EUR, ACME is in USD');
    const other = validateDailyBars(history(bars, { symbol: 'OTHER' }), { security, now });
    expect(codes(other)).toEqual(['symbol_mismatch', 'symbol_mismatch']);
    // No currency in the response (Alpha Vantage, synthetic): accepted.
    expect(validateDailyBars(history(bars, { currency: null }), { security, now }).accepted).toHaveLength(2);
  });
});

function bar(iso: string, o: Partial<ProviderIntradayBar> = {}): ProviderIntradayBar {
  return { ts: new Date(iso), open: 10, high: 11, low: 9, close: 10.5, volume: 100, raw: { t: iso }, ...o };
}

describe('intraday bars', () => {
  it('keeps bars inside the regular session, aligned and finished', () => {
    const bars = [
      bar('2024-07-01T13:30:00Z'), // 09:30 EDT, the open
      bar('2024-07-01T19:55:00Z'), // 15:55 EDT, ends at the close
      bar('2024-07-01T13:25:00Z'), // 09:25 pre-market
      bar('2024-07-01T20:00:00Z'), // 16:00 after the close
      bar('2024-07-03T16:55:00Z'), // 12:55 on the 13:00 early close
      bar('2024-07-03T17:00:00Z'), // 13:00 on the early close
      bar('2024-07-04T14:00:00Z'), // holiday
      bar('2024-07-06T14:00:00Z'), // Saturday
      bar('2024-07-01T13:32:00Z'), // not on a 5-minute boundary
      bar('2024-12-02T14:30:00Z'), // 09:30 EST (winter)
      bar('2024-12-02T13:30:00Z'), // 08:30 EST
      bar('2024-07-10T19:58:00Z'), // runs past the close
      bar('2024-07-10T19:55:00Z'), // the last bar of the day
      bar('2024-07-01T14:00:00Z', { low: null }),
    ];
    const r = validateIntradayBars(history(bars), {
      security,
      intervalMinutes: 5,
      now: new Date('2024-12-02T15:00:00Z'),
    });
    expect(r.accepted.map((b) => b.ts.toISOString())).toEqual([
      '2024-07-01T13:30:00.000Z',
      '2024-07-01T19:55:00.000Z',
      '2024-07-03T16:55:00.000Z',
      '2024-12-02T14:30:00.000Z',
      '2024-07-10T19:55:00.000Z',
    ]);
    expect(codes(r)).toEqual([
      'outside_session',
      'outside_session',
      'outside_session',
      'outside_session',
      'outside_session',
      'misaligned_timestamp',
      'outside_session',
      'outside_session',
      'null_field',
    ]);
  });

  it('rejects bars that had not finished when fetched', () => {
    const r = validateIntradayBars(history([bar('2024-07-10T19:55:00Z'), bar('2024-07-10T19:50:00Z')]), {
      security,
      intervalMinutes: 5,
      now: new Date('2024-07-10T19:57:00Z'),
    });
    expect(r.accepted).toHaveLength(1);
    expect(codes(r)).toEqual(['incomplete']);
  });
});

function quote(o: Partial<ProviderQuote> = {}): ProviderQuote {
  return {
    symbol: 'ACME',
    price: 10,
    ts: new Date('2024-07-10T15:00:00Z'),
    currency: 'USD',
    volume: 5000,
    bid: 9.99,
    ask: 10.01,
    raw: { p: 10 },
    ...o,
  };
}

describe('quotes', () => {
  it('accepts a good quote; drops an inconsistent bid/ask but keeps the price', () => {
    expect(validateQuote(quote(), { security, now }).accepted[0]?.bid).toBe(9.99);
    const crossed = validateQuote(quote({ bid: 10.2, ask: 10.1 }), { security, now }).accepted[0];
    expect(crossed).toMatchObject({ price: 10, bid: null, ask: null });
  });

  it.each([
    [{ price: null, raw: { Information: 'rate limit' } }, 'error_body'],
    [{ symbol: 'OTHER' }, 'symbol_mismatch'],
    [{ currency: 'GBp' }, 'currency_mismatch'],
    [{ price: Number.NaN }, 'non_finite_price'],
    [{ price: 0 }, 'non_positive_price'],
    [{ price: null }, 'null_field'],
    [{ ts: null }, 'null_field'],
    [{ ts: new Date('2024-07-10T20:00:00.001Z') }, 'outside_session'],
    [{ ts: new Date('2024-07-10T20:00:05Z') }, 'outside_session'],
    [{ ts: new Date('2024-07-10T13:29:59.999Z') }, 'outside_session'],
    [{ ts: new Date('2024-07-03T17:00:00.001Z') }, 'outside_session'],
    [{ ts: new Date('2024-07-06T15:00:00Z') }, 'outside_session'],
    [{ volume: -1 }, 'bad_volume'],
  ] as [Partial<ProviderQuote>, ReasonCode][])('rejects %o as %s', (o, code) => {
    const r = validateQuote(quote(o), { security, now });
    expect(r.accepted).toHaveLength(0);
    expect(codes(r)).toEqual([code]);
    expect(r.rejected[0]?.entity).toBe('quote');
  });

  it('accepts the closing print (exactly at the close) and stores it at close − 1 ms', () => {
    // 2024-07-10 closes 16:00 ET = 20:00 UTC; `now` is that instant.
    const r = validateQuote(quote({ ts: new Date('2024-07-10T20:00:00Z') }), { security, now });
    expect(codes(r)).toEqual([]);
    expect(r.accepted[0]?.ts.toISOString()).toBe('2024-07-10T19:59:59.999Z');
    // 13:00 on an early close (2024-07-03) too; the open and in-session times stay as given.
    const early = validateQuote(quote({ ts: new Date('2024-07-03T17:00:00Z') }), { security, now });
    expect(early.accepted[0]?.ts.toISOString()).toBe('2024-07-03T16:59:59.999Z');
    const open = validateQuote(quote({ ts: new Date('2024-07-10T13:30:00Z') }), { security, now });
    expect(open.accepted[0]?.ts.toISOString()).toBe('2024-07-10T13:30:00.000Z');
    // A close print from the future is still refused.
    const future = validateQuote(quote({ ts: new Date('2024-07-11T20:00:00Z') }), { security, now });
    expect(codes(future)).toEqual(['bad_timestamp']);
  });

  it('recognises error and throttle bodies', () => {
    expect(errorBodyMessage({ Note: 'Thank you for using Alpha Vantage!' })).toMatch(/^Note: /);
    expect(errorBodyMessage({ 'Error Message': 'Invalid API call.' })).toMatch(/^Error Message/);
    expect(
      errorBodyMessage({ chart: { result: null, error: { code: 'Not Found', description: 'No data' } } }),
    ).toBe('chart.error: Not Found No data');
    expect(errorBodyMessage({ o: 1, c: 2 })).toBeUndefined();
    expect(errorBodyMessage([1, 2])).toBeUndefined();
  });
});

describe('events and FX rates', () => {
  it('validates splits and dividends', () => {
    const r = validateEvents([
      { kind: 'split', exDate: '2020-08-31', ratio: 4, amount: null, raw: { a: 1 } },
      { kind: 'split', exDate: '2020-09-01', ratio: 0.1, amount: null, raw: { a: 2 } },
      { kind: 'split', exDate: '2020-09-02', ratio: 1, amount: null, raw: { a: 3 } },
      { kind: 'split', exDate: '2020-09-03', ratio: -2, amount: null, raw: { a: 4 } },
      { kind: 'dividend', exDate: '2020-11-06', ratio: null, amount: 0.205, raw: { a: 5 } },
      { kind: 'dividend', exDate: '2020-11-07', ratio: null, amount: Number.NaN, raw: { a: 6 } },
      { kind: 'dividend', exDate: '2020-11-06', ratio: null, amount: 0.205, raw: { a: 7 } },
      { kind: 'dividend', exDate: '2020-13-01', ratio: null, amount: 1, raw: { a: 8 } },
    ]);
    expect(r.accepted.map((e) => e.exDate)).toEqual(['2020-08-31', '2020-09-01', '2020-11-06']);
    expect(r.duplicates).toBe(1);
    expect(codes(r)).toEqual(['bad_ratio', 'bad_ratio', 'bad_amount', 'bad_timestamp']);
  });

  it('validates FX rates', () => {
    const r = validateFxRates(
      [
        { date: '2024-07-01', rate: 1.07, raw: {} },
        { date: '2024-07-02', rate: 0, raw: {} },
        { date: '2024-07-03', rate: Number.NaN, raw: {} },
        { date: '2024-07-05', rate: null, raw: {} },
        { date: '2024-07-20', rate: 1.1, raw: {} },
        { date: '2024-07-01', rate: 1.08, raw: {} },
      ],
      { pair: 'EURUSD', now },
    );
    expect(r.accepted.map((x) => x.date)).toEqual(['2024-07-01']);
    expect(codes(r)).toEqual(['bad_rate', 'bad_rate', 'bad_rate', 'bad_timestamp', 'duplicate']);
  });
});

describe('encoding', () => {
  it('stores an intraday bar as four prints whose rollup is the bar', () => {
    const [row] = validateIntradayBars(history([bar('2024-07-01T13:30:00Z', { volume: 700 })]), {
      security,
      intervalMinutes: 5,
      now,
    }).accepted;
    const ticks = intradayTicks(7, [row!]);
    expect(ticks.map((t) => [t.seq, t.price, t.size])).toEqual([
      [BAR_SEQ.open, '10', 0],
      [BAR_SEQ.high, '11', 0],
      [BAR_SEQ.low, '9', 0],
      [BAR_SEQ.close, '10.5', 700],
    ]);
    expect(new Set(ticks.map((t) => t.ts.toISOString()))).toEqual(new Set(['2024-07-01T13:30:00.000Z']));
  });

  it('maps events to corporate actions with deterministic ids', () => {
    const rows = actionRows(
      { id: 3, ticker: 'ACME', currency: 'USD' },
      [
        { kind: 'split', exDate: '2020-08-31', ratio: 4, amount: null, raw: null },
        { kind: 'split', exDate: '2021-01-04', ratio: 0.1, amount: null, raw: null },
        { kind: 'dividend', exDate: '2020-11-06', ratio: null, amount: 0.205, raw: null },
      ],
      'yahoo',
    );
    expect(rows).toEqual([
      expect.objectContaining({
        actionId: 'yahoo:ACME:STOCK_SPLIT:2020-08-31',
        ratio: '4',
        paymentDate: null,
      }),
      expect.objectContaining({
        actionId: 'yahoo:ACME:REVERSE_SPLIT:2021-01-04',
        actionType: 'REVERSE_SPLIT',
      }),
      expect.objectContaining({
        actionId: 'yahoo:ACME:DIVIDEND:2020-11-06',
        amount: '0.205',
        paymentDate: '2020-11-06',
        currency: 'USD',
      }),
    ]);
  });

  it('writes decimals without exponents', () => {
    expect(decimalText(1.5e-7)).toBe('0.00000015');
    expect(decimalText(123.4567)).toBe('123.4567');
    expect(decimalText(100)).toBe('100');
  });

  it('sizes quote ticks by the increase of cumulative volume within a session', () => {
    const q = (iso: string, volume: number | null) => ({
      ts: new Date(iso),
      price: 10,
      volume,
      bid: null,
      ask: null,
      raw: null,
    });
    const a = quoteTick(1, q('2024-07-10T14:00:00Z', 1000), undefined);
    expect(a.tick.size).toBe(1000); // first of the session: everything traded so far
    const b = quoteTick(1, q('2024-07-10T14:01:00Z', 1600), a.next);
    expect(b.tick.size).toBe(600);
    const late = quoteTick(1, q('2024-07-10T13:59:00Z', 900), b.next);
    expect(late.tick.size).toBe(0);
    expect(late.next).toEqual(b.next);
    const unknown = quoteTick(1, q('2024-07-10T14:02:00Z', null), b.next);
    expect(unknown.tick.size).toBe(0);
    const nextDay = quoteTick(1, q('2024-07-11T13:31:00Z', 50), b.next);
    expect(nextDay.tick.size).toBe(50);
    expect(nextDay.next.session).toBe('2024-07-11');
  });
});

describe('backfill chunk planning', () => {
  const limits: ProviderLimits = {
    intradayIntervals: [1, 5],
    intradayLookbackDays: { 1: 30, 5: 60 },
    intradayMaxSpanDays: { 1: 8, 5: 60 },
    dailyMaxSpanDays: 100,
  };

  it('splits daily ranges into spans the provider accepts, completed sessions only', () => {
    const p = planChunks({
      from: '2024-01-01',
      to: '2024-07-10',
      interval: '1d',
      limits,
      now: new Date('2024-07-10T18:00:00Z'), // the 10th is still trading
    });
    expect(p.chunks.map((c) => [c.from, c.to])).toEqual([
      ['2024-01-02', '2024-04-10'], // day 100 of the span
      ['2024-04-11', '2024-07-09'],
    ]);
    expect(p.notCompleted).toBe(1);
    for (const c of p.chunks)
      expect((Date.parse(c.to) - Date.parse(c.from)) / 86_400_000 + 1).toBeLessThanOrEqual(100);
  });

  it('clips intraday ranges to the lookback and caps each request span', () => {
    const p = planChunks({
      from: '2024-05-01',
      to: '2024-07-09',
      interval: '1m',
      limits,
      now: new Date('2024-07-10T12:00:00Z'),
    });
    expect(p.clippedFrom).toBe('2024-06-11');
    expect(p.beyondReach).toBeGreaterThan(0);
    expect(p.chunks[0]?.from).toBe('2024-06-11');
    expect(p.chunks.at(-1)?.to).toBe('2024-07-09');
    for (const c of p.chunks)
      expect((Date.parse(c.to) - Date.parse(c.from)) / 86_400_000 + 1).toBeLessThanOrEqual(8);
    const beyond = planChunks({
      from: '2024-01-01',
      to: '2024-02-01',
      interval: '1m',
      limits,
      now: new Date('2024-07-10T12:00:00Z'),
    });
    expect(beyond.chunks).toHaveLength(0);
    expect(beyond.beyondReach).toBeGreaterThan(0);
  });

  it('in missing mode covers runs of missing sessions only', () => {
    const p = planChunks({
      from: '2024-06-01',
      to: '2024-06-30',
      interval: '1d',
      limits,
      now,
      only: new Set(['2024-06-04', '2024-06-05', '2024-06-06', '2024-06-14', '2024-06-17', '2024-06-28']),
    });
    // 06-14 (Fri) and 06-17 (Mon) are consecutive sessions.
    expect(p.chunks.map((c) => [c.from, c.to])).toEqual([
      ['2024-06-04', '2024-06-06'],
      ['2024-06-14', '2024-06-17'],
      ['2024-06-28', '2024-06-28'],
    ]);
  });
});
