/**
 * Yahoo Finance through yahoo-finance2 (v4): `chart()` for daily and intraday bars (with the
 * split and dividend events Yahoo puts in the same response), `quote()` for the latest price
 * (the library does the cookie/crumb handshake for it), and `EURUSD=X`-style charts for FX.
 *
 * Every request the library makes goes through the injected fetch (tests serve recorded
 * responses from a local server) with its own timeout. Each call gets a tracing wrapper around
 * that fetch, so a failure is classified from what actually happened on the wire (status,
 * Retry-After, timeout, connection error) rather than from the library's error wording alone.
 *
 * As-traded prices. Yahoo's chart OHLC and volume come back split-adjusted through TODAY (each
 * bar's prices divided, its volume multiplied, by every split with an ex-date after the bar;
 * dividend amounts divided too), while we store as-traded values everywhere and adjust at query
 * time from corporate_actions (SPEC §8). So for each bar dated d (exchange-local date) this
 * module multiplies OHLC by F(d) = Π ratio of the splits with ex-date > d, up to now, divides
 * volume by F(d), and multiplies each dividend amount by F(its ex-date). `adjClose` is left as
 * Yahoo sends it (split- and dividend-adjusted: a different series). FX charts are not touched.
 *   - Splits after the request's range: the bars request keeps its own window (so payloads stay
 *     proportional to the range), and when the exchange's today lies after the last bar and the
 *     window ended before now, ONE more chart request asks for splits only (`events=split`,
 *     interval 3mo, from the last bar's date to now: a handful of quarterly bars plus the split
 *     list, a few kB). Fetches of recent data (today's intraday, yesterday's daily) need no second
 *     request; a backfill chunk in the past costs two. Rejected: period2 = now on the bars request
 *     (the payload would grow with the distance to today: years of daily bars for a one-day gap,
 *     and Yahoo caps a 1m request at 8 days, so intraday could not do it at all).
 *   - Rounding: Yahoo's adjusted prices are float32 values next to the true quotient, not always
 *     the nearest one (124.8074951171875 for 499.23 / 4 is the float32 just below), so an
 *     un-adjusted price x = y·F is known to F × one float32 spacing at y (2^(⌊log₂ y⌋ − 23), between
 *     |y|·2⁻²⁴ and |y|·2⁻²³). It is rounded to the finest decimal place whose half-unit exceeds
 *     that error, never finer than 4 decimals (the smallest US tick, $0.0001 under $1), and only
 *     where a factor was applied. AAPL 2020-08-28 124.8074951171875 × 4 → 499.23 and 2020-01-02
 *     75.0875015258789 × 4 → 300.35, the exchange's closes. Volume is divided exactly and
 *     rounded to the nearest integer, ties to even (for F ≥ 1 Yahoo multiplied the traded
 *     integer, so the nearest integer is that one; after a reverse split, what Yahoo rounded
 *     away is lost). Dividend amounts, which
 *     Yahoo rounds to 6 decimals after dividing (AAPL's $2.65 of 2012 shows as 0.094643), are
 *     rounded by the same principle with an error of F·5e-7, at most 6 decimals (→ 2.65).
 *     Bars with no split after them (F = 1) are returned exactly as Yahoo sent them.
 *   - ProviderHistory.events holds only events with ex-dates inside the requested range (what
 *     the main request returned), so storing them stays idempotent per range; later splits are
 *     used for un-adjusting only. Each bar's and dividend's `raw` is Yahoo's own fragment plus
 *     `splitFactor`, the F it was multiplied by.
 *
 * Rows come back otherwise as Yahoo sent them (nulls kept); validation happens in core/ingest.
 */
import YahooFinance from 'yahoo-finance2';
import { ExtendedCookieJar } from 'yahoo-finance2/lib/cookieJar';
import { NYSE_TIME_ZONE } from '../calendar/nyse.ts';
import type { Config } from '../config.ts';
import type { Clock } from '../deps.ts';
import type { ProviderOptions } from './index.ts';
import {
  ProviderError,
  ProviderPermanentError,
  ProviderRateLimitError,
  ProviderTransientError,
  type PriceProvider,
  type ProviderDailyBar,
  type ProviderEvent,
  type ProviderFxRate,
  type ProviderHistory,
  type ProviderIntradayBar,
  type ProviderLimits,
  type ProviderQuote,
} from './types.ts';

const DAY_MS = 86_400_000;
/** Used when a 429 carries no (usable) Retry-After. */
const DEFAULT_RETRY_AFTER_MS = 60_000;

/**
 * Yahoo's documented-by-error-message limits: 1m data only within the last 30 days and at most
 * 8 days per request; 5m within the last 60 days. One day of margin on the look-back, because
 * Yahoo counts from the current instant and a planner counts in whole days.
 */
export const YAHOO_LIMITS: ProviderLimits = {
  intradayIntervals: [1, 5],
  intradayLookbackDays: { 1: 29, 5: 59 },
  intradayMaxSpanDays: { 1: 8, 5: 59 },
  dailyMaxSpanDays: 3660,
};

const INTERVALS: Record<number, '1m' | '5m'> = { 1: '1m', 5: '5m' };

/** The chart response as yahoo-finance2 returns it with `return: 'object'` (validated, dates coerced). */
interface ChartObject {
  meta: { currency?: string | null; exchangeTimezoneName?: string; symbol?: string };
  timestamp?: number[];
  events?: {
    dividends?: Record<string, { amount: number; date: Date } & Record<string, unknown>>;
    splits?: Record<
      string,
      { date: Date; numerator: number; denominator: number; splitRatio?: string } & Record<string, unknown>
    >;
  };
  indicators: {
    quote: Array<{
      open?: (number | null)[];
      high?: (number | null)[];
      low?: (number | null)[];
      close?: (number | null)[];
      volume?: (number | null)[];
    }>;
    adjclose?: Array<{ adjclose?: (number | null)[] }>;
  };
}

/** What one call saw on the wire, for classifying its failure. */
interface CallTrace {
  what: string;
  status: number | null;
  timedOut: boolean;
  networkError: unknown;
}

const quietLogger = { info() {}, warn() {}, error() {}, debug() {}, dir() {} };

export function createYahooProvider(config: Config, opts: ProviderOptions): PriceProvider {
  const timeoutMs = config.providers.timeoutMs;
  const clock: Clock = opts.clock ?? { now: () => new Date() };
  // Looked up per request so a test (or a later polyfill) that replaces the global is honoured.
  const baseFetch: typeof fetch = (input, init) => (opts.fetch ?? globalThis.fetch)(input, init);

  /** The injected fetch with this provider's timeout on every request (handshake included). */
  const timedFetch = (trace?: CallTrace): typeof fetch => {
    return async (input, init) => {
      const timeout = AbortSignal.timeout(timeoutMs);
      const signal = init?.signal ? AbortSignal.any([init.signal, timeout]) : timeout;
      let res: Response;
      try {
        res = await baseFetch(input, { ...init, signal });
      } catch (err) {
        if (trace) {
          if (timeout.aborted) trace.timedOut = true;
          else trace.networkError = err;
        }
        throw err;
      }
      if (trace) trace.status = res.status;
      // Throttling and server errors are settled here, on the wire, with the response's own
      // Retry-After: the library would only see an opaque HTTPError (and print the URL).
      if (res.status === 429 || res.status >= 500) {
        const body = await res.text().catch(() => '');
        const where = trace?.what ?? 'request';
        if (res.status === 429) {
          throw new ProviderRateLimitError(
            'yahoo',
            `HTTP 429 rate limited (${where})`,
            retryAfterMs(res.headers.get('retry-after'), clock),
            body.slice(0, 2000),
          );
        }
        throw new ProviderTransientError('yahoo', `HTTP ${res.status} (${where})`, body.slice(0, 2000));
      }
      return res;
    };
  };

  const yf = new YahooFinance({
    fetch: timedFetch(),
    // Our own jar: the library's default jar is one module-level object shared by every instance.
    cookieJar: new ExtendedCookieJar(),
    suppressNotices: ['yahooSurvey', 'ripHistorical'],
    // No version check against npm on validation errors, and no console output: failures reach
    // the job as classified errors naming the cause.
    versionCheck: false,
    validation: { logErrors: false, logOptionsErrors: false },
    logger: quietLogger,
    // The library queues requests per instance (default 4 at once); BullMQ's limiter is what
    // paces requests, so this only bounds one process's parallel sockets.
    queue: { concurrency: 8 },
  });

  async function call<T>(
    what: string,
    run: (moduleOptions: { fetch: typeof fetch }) => Promise<T>,
  ): Promise<T> {
    const trace: CallTrace = { what, status: null, timedOut: false, networkError: null };
    try {
      return await run({ fetch: timedFetch(trace) });
    } catch (err) {
      throw classify(err, trace, what);
    }
  }

  function classify(err: unknown, trace: CallTrace, what: string): ProviderError {
    if (err instanceof ProviderError) return err;
    const e = err instanceof Error ? err : new Error(String(err));
    const message = e.message;
    if (trace.timedOut || e.name === 'TimeoutError') {
      return new ProviderTransientError('yahoo', `timeout after ${timeoutMs} ms (${what})`);
    }
    // 429 and 5xx never get here (timedFetch throws them). A 4xx on the crumb request shows only
    // in the library's message.
    const crumbStatus = /Failed to get crumb, status (\d{3})/.exec(message);
    const status = trace.status ?? (crumbStatus ? Number(crumbStatus[1]) : null);
    if (e.name === 'FailedYahooValidationError') {
      return new ProviderPermanentError(
        'yahoo',
        `response failed validation (${what}): ${describeValidation(e)}`,
        (e as { result?: unknown }).result,
      );
    }
    if (message.startsWith('Response.ok where we expect JSON')) {
      return new ProviderTransientError('yahoo', `malformed JSON (${what})`, message.slice(0, 2000));
    }
    if (status === 404 || /No data found|symbol may be delisted/i.test(message)) {
      return new ProviderPermanentError('yahoo', `unknown symbol (${what}): ${message}`, message);
    }
    if (status !== null && status >= 400) {
      return new ProviderPermanentError('yahoo', `HTTP ${status} (${what}): ${message}`, message);
    }
    if (trace.networkError !== null) {
      return new ProviderTransientError(
        'yahoo',
        `network error (${what}): ${networkCause(trace.networkError)}`,
      );
    }
    return new ProviderTransientError('yahoo', `${what} failed: ${message}`);
  }

  async function chart(
    symbol: string,
    period1: Date,
    period2: Date,
    interval: '1d' | '1m' | '5m' | '3mo',
    events: 'div|split' | 'split' = 'div|split',
  ): Promise<ChartObject | null> {
    const what = events === 'split' ? `chart ${symbol} splits` : `chart ${symbol} ${interval}`;
    try {
      return (await call(what, (moduleOptions) =>
        yf.chart(
          symbol,
          {
            period1,
            period2,
            interval,
            // Regular session only: extended-hours bars are not session bars.
            includePrePost: false,
            events,
            return: 'object',
          },
          moduleOptions,
        ),
      )) as unknown as ChartObject;
    } catch (err) {
      // Yahoo answers a range with no bars (before listing, a holiday week) with 400 "Data doesn't
      // exist for startDate = …": that is an empty history, not a failure.
      if (err instanceof ProviderPermanentError && /Data doesn't exist for startDate/i.test(err.message)) {
        return null;
      }
      throw err;
    }
  }

  /**
   * The splits that un-adjust rows dated up to `lastDate`: those of the response `c` (whose
   * window ended at `coveredUntil`), plus, when that window ended before now and the exchange's
   * today is later than `lastDate`, those of one splits-only request from `lastDate` to now.
   */
  async function splitsThroughNow(
    symbol: string,
    c: ChartObject,
    tz: string,
    coveredUntil: Date,
    lastDate: string | null,
  ): Promise<Split[]> {
    const own = splitsOf(c, tz);
    if (lastDate === null) return own;
    const now = clock.now();
    if (coveredUntil.getTime() >= now.getTime() || localDate(now, tz) <= lastDate) return own;
    // Quarterly bars: the fewest Yahoo serves; the split list does not depend on the interval.
    const later = await chart(symbol, utcMidnight(lastDate, 0), now, '3mo', 'split');
    const byDate = new Map<string, Split>();
    for (const s of [...(later ? splitsOf(later, tz) : []), ...own]) byDate.set(s.exDate, s);
    return [...byDate.values()];
  }

  async function dailyHistory(
    symbol: string,
    c: ChartObject | null,
    from: string,
    to: string,
    coveredUntil: Date,
    unadjust: boolean,
  ): Promise<ProviderHistory<ProviderDailyBar>> {
    if (!c) return { provider: 'yahoo', symbol, currency: null, bars: [], events: [] };
    const tz = c.meta.exchangeTimezoneName ?? NYSE_TIME_ZONE;
    const q = c.indicators.quote[0] ?? {};
    const adj = c.indicators.adjclose?.[0]?.adjclose;
    const picked: { i: number; t: number; date: string }[] = [];
    (c.timestamp ?? []).forEach((t, i) => {
      const date = localDate(new Date(t * 1000), tz);
      if (date >= from && date <= to) picked.push({ i, t, date });
    });
    const events = eventsOf(c, tz).filter((e) => e.exDate >= from && e.exDate <= to);
    const splits = unadjust
      ? await splitsThroughNow(symbol, c, tz, coveredUntil, lastDateOf(picked, events))
      : [];
    const bars = picked.map(({ i, t, date }): ProviderDailyBar => {
      const f = factorAfter(splits, date);
      const row = {
        timestamp: t,
        open: at(q.open, i),
        high: at(q.high, i),
        low: at(q.low, i),
        close: at(q.close, i),
        volume: at(q.volume, i),
        adjclose: adj ? at(adj, i) : undefined,
      };
      return {
        date,
        open: asTradedPrice(row.open, f, unadjust),
        high: asTradedPrice(row.high, f, unadjust),
        low: asTradedPrice(row.low, f, unadjust),
        close: asTradedPrice(row.close, f, unadjust),
        adjClose: adj ? row.adjclose! : null,
        volume: asTradedVolume(row.volume, f),
        raw: unadjust ? { ...row, splitFactor: f.value } : row,
      };
    });
    return {
      provider: 'yahoo',
      symbol,
      currency: c.meta.currency ?? null,
      bars,
      events: unadjust ? events.map((e) => asDeclaredEvent(e, splits)) : events,
    };
  }

  return {
    name: 'yahoo',
    limits: YAHOO_LIMITS,

    async quote(symbol) {
      const q = await call(`quote ${symbol}`, (moduleOptions) => yf.quote(symbol, {}, moduleOptions));
      if (!q)
        throw new ProviderPermanentError('yahoo', `unknown symbol "${symbol}" (quote returned no result)`);
      const r = q as unknown as Record<string, unknown>;
      const out: ProviderQuote = {
        symbol: typeof r.symbol === 'string' ? r.symbol : symbol,
        price: num(r.regularMarketPrice),
        ts: r.regularMarketTime instanceof Date ? r.regularMarketTime : null,
        currency: typeof r.currency === 'string' ? r.currency : null,
        volume: num(r.regularMarketVolume),
        bid: num(r.bid),
        ask: num(r.ask),
        raw: q,
      };
      return out;
    },

    async daily(symbol, from, to) {
      // Pad the window by a day each side: session timestamps are exchange-local opens (or local
      // midnights for FX), which can fall on the previous UTC day; then keep from..to by local date.
      const period2 = utcMidnight(to, 2);
      const c = await chart(symbol, utcMidnight(from, -1), period2, '1d');
      return dailyHistory(symbol, c, from, to, period2, true);
    },

    async intraday(symbol, from, to, intervalMinutes) {
      const interval = INTERVALS[intervalMinutes];
      if (!interval) {
        throw new ProviderPermanentError('yahoo', `unsupported intraday interval ${intervalMinutes} min`);
      }
      if (to.getTime() <= from.getTime()) {
        return { provider: 'yahoo', symbol, currency: null, bars: [], events: [] };
      }
      const c = await chart(symbol, from, to, interval);
      if (!c) return { provider: 'yahoo', symbol, currency: null, bars: [], events: [] };
      const tz = c.meta.exchangeTimezoneName ?? NYSE_TIME_ZONE;
      const q = c.indicators.quote[0] ?? {};
      const picked: { i: number; t: number; date: string }[] = [];
      // Every row Yahoo sent is returned, even one outside [from, to) or the session: the provider
      // does not judge rows; validation quarantines them with a reason instead of losing them.
      (c.timestamp ?? []).forEach((t, i) => {
        picked.push({ i, t, date: localDate(new Date(t * 1000), tz) });
      });
      const fromDate = localDate(from, tz);
      const toDate = localDate(new Date(to.getTime() - 1), tz);
      const events = eventsOf(c, tz).filter((e) => e.exDate >= fromDate && e.exDate <= toDate);
      const splits = await splitsThroughNow(symbol, c, tz, to, lastDateOf(picked, events));
      const bars = picked.map(({ i, t, date }): ProviderIntradayBar => {
        const f = factorAfter(splits, date);
        const row = {
          timestamp: t,
          open: at(q.open, i),
          high: at(q.high, i),
          low: at(q.low, i),
          close: at(q.close, i),
          volume: at(q.volume, i),
        };
        return {
          ts: new Date(t * 1000),
          open: asTradedPrice(row.open, f),
          high: asTradedPrice(row.high, f),
          low: asTradedPrice(row.low, f),
          close: asTradedPrice(row.close, f),
          volume: asTradedVolume(row.volume, f),
          raw: { ...row, splitFactor: f.value },
        };
      });
      return {
        provider: 'yahoo',
        symbol,
        currency: c.meta.currency ?? null,
        bars,
        events: events.map((e) => asDeclaredEvent(e, splits)),
      };
    },

    async fxDaily(base, quote, from, to) {
      if (base === quote)
        throw new ProviderPermanentError('yahoo', `FX pair ${base}/${quote} has one currency`);
      const pair = `${base}${quote}=X`;
      const period2 = utcMidnight(to, 2);
      const c = await chart(pair, utcMidnight(from, -1), period2, '1d');
      // A currency pair has no splits: rates are used as Yahoo sends them, with no extra request.
      const h = await dailyHistory(pair, c, from, to, period2, false);
      return h.bars.map((b): ProviderFxRate => ({ date: b.date, rate: b.close, raw: b.raw }));
    },
  };
}

/** A split as Yahoo reports it: `numerator` new shares for `denominator` old. */
interface Split {
  exDate: string;
  numerator: number | null;
  denominator: number | null;
  raw: unknown;
}

/** The cumulative split factor after some date, as an exact-as-possible fraction num/den. */
interface Factor {
  num: number;
  den: number;
  value: number;
}

function splitsOf(c: ChartObject, tz: string): Split[] {
  return Object.entries(c.events?.splits ?? {}).map(([key, s]) => ({
    exDate: localDate(s.date, tz),
    numerator: num(s.numerator),
    denominator: num(s.denominator),
    raw: { key, ...s, date: Math.floor(s.date.getTime() / 1000) },
  }));
}

/** The latest date among the rows that will be un-adjusted (bars and in-range dividends). */
function lastDateOf(picked: { date: string }[], events: ProviderEvent[]): string | null {
  let last: string | null = null;
  for (const d of [
    ...picked.map((p) => p.date),
    ...events.filter((e) => e.kind === 'dividend').map((e) => e.exDate),
  ]) {
    if (last === null || d > last) last = d;
  }
  return last;
}

/** F(date): the product of the ratios of every split with an ex-date after `date`. */
function factorAfter(splits: Split[], date: string): Factor {
  let n = 1;
  let d = 1;
  for (const s of splits) {
    if (s.exDate <= date) continue;
    if (!isPositive(s.numerator) || !isPositive(s.denominator)) {
      // Guessing would store prices off by an unknown factor: refuse the response instead.
      throw new ProviderPermanentError(
        'yahoo',
        `split on ${s.exDate} has no usable ratio (${String(s.numerator)}:${String(s.denominator)}), ` +
          `so prices before it cannot be restored to as-traded values`,
        s.raw,
      );
    }
    n *= s.numerator;
    d *= s.denominator;
  }
  return { num: n, den: d, value: n / d };
}

function isPositive(v: number | null): v is number {
  return v !== null && Number.isFinite(v) && v > 0;
}

/**
 * A bar with no split after it (F = 1) is returned exactly as Yahoo sent it: nothing was applied,
 * so there is nothing to round. Otherwise the product is rounded to what Yahoo's float32 vouches
 * for (roundAsTraded). FX rates (unadjust = false) are never touched.
 */
function asTradedPrice(v: number | null, f: Factor, unadjust = true): number | null {
  if (v === null || !unadjust || f.num === f.den) return v;
  return roundAsTraded(v, f.num, f.den);
}

function asTradedVolume(v: number | null, f: Factor): number | null {
  if (v === null || f.num === f.den || !Number.isFinite(v)) return v;
  return roundHalfEven((v * f.den) / f.num);
}

/** Dividends back to the amount declared per share at the time; splits are left as reported. */
function asDeclaredEvent(e: ProviderEvent, splits: Split[]): ProviderEvent {
  if (e.kind !== 'dividend') return e;
  const f = factorAfter(splits, e.exDate);
  const raw = { ...(e.raw as Record<string, unknown>), splitFactor: f.value };
  if (e.amount === null || f.num === f.den) return { ...e, raw };
  return { ...e, amount: roundDividend((e.amount * f.num) / f.den, f.value), raw };
}

/** The finest US equity tick ($0.0001, under $1): no price is stored finer than this. */
const MAX_PRICE_DECIMALS = 4;
/** Yahoo rounds split-adjusted dividend amounts to 6 decimals (AAPL's $2.65 of 2012 → 0.094643). */
const DIVIDEND_HALF_UNIT = 5e-7;
const MAX_DIVIDEND_DECIMALS = 6;

/**
 * The spacing of float32 values around |y|: how far Yahoo's float32 may sit from the true quotient
 * (it is not always the nearest one). Taken one step up, so a y just below a power of two, whose
 * quotient may lie above it, gets the wider spacing there.
 */
function float32Ulp(y: number): number {
  const a = Math.abs(y) * (1 + 2 ** -22);
  return 2 ** (Math.floor(Math.log2(a)) - 23);
}

/**
 * Yahoo's split-adjusted `shown` price × num ÷ den (the splits after the bar), rounded to the
 * precision the float32 source vouches for and no coarser: the finest decimal place whose half-unit
 * exceeds F × (float32 spacing at `shown`), at most 4 decimals. 124.8074951171875 × 4 =
 * 499.22998046875 → 499.230; float32(22,500.06) × 2 → 45,000.12 (spacing 2⁻⁹ there, so the cent
 * survives ×2).
 */
export function roundAsTraded(shown: number, num: number, den = 1): number {
  return roundToKnown((shown * num) / den, (float32Ulp(shown) * num) / den, MAX_PRICE_DECIMALS);
}

function roundDividend(x: number, factor: number): number {
  return roundToKnown(x, factor * DIVIDEND_HALF_UNIT, MAX_DIVIDEND_DECIMALS);
}

/** x rounded (half away from zero, on its exact binary value) to the decimals an error of `err` leaves. */
function roundToKnown(x: number, err: number, maxDecimals: number): number {
  if (!Number.isFinite(x) || x === 0 || !(err > 0)) return x;
  const decimals = Math.min(maxDecimals, Math.floor(Math.log10(0.5 / err)));
  if (decimals >= 0) return Number(x.toFixed(decimals));
  const unit = 10 ** -decimals;
  return Math.round(x / unit) * unit;
}

/** Nearest integer, ties to even: a tie (Yahoo's volume not a whole multiple of F) then rounds without bias. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

function eventsOf(c: ChartObject, tz: string): ProviderEvent[] {
  const out: ProviderEvent[] = [];
  for (const [key, d] of Object.entries(c.events?.dividends ?? {})) {
    out.push({
      kind: 'dividend',
      exDate: localDate(d.date, tz),
      ratio: null,
      amount: num(d.amount),
      raw: { key, ...d, date: Math.floor(d.date.getTime() / 1000) },
    });
  }
  for (const [key, s] of Object.entries(c.events?.splits ?? {})) {
    const n = num(s.numerator);
    const d = num(s.denominator);
    out.push({
      kind: 'split',
      exDate: localDate(s.date, tz),
      // New shares per old: "4:1" is numerator 4, denominator 1.
      ratio: n !== null && d !== null && d !== 0 ? n / d : null,
      amount: null,
      raw: { key, ...s, date: Math.floor(s.date.getTime() / 1000) },
    });
  }
  return out.sort((a, b) => (a.exDate < b.exDate ? -1 : a.exDate > b.exDate ? 1 : 0));
}

function describeValidation(e: Error): string {
  const errors = (e as { errors?: unknown }).errors;
  if (!Array.isArray(errors) || errors.length === 0) return e.message;
  return errors
    .slice(0, 3)
    .map((x: { instancePath?: string; message?: string; params?: { missing?: unknown } }) => {
      const missing = Array.isArray(x.params?.missing) ? ` (${x.params.missing.join(', ')})` : '';
      return `${x.instancePath || '/'}: ${x.message ?? 'invalid'}${missing}`;
    })
    .join('; ');
}

/** Milliseconds to wait from a Retry-After header (seconds or an HTTP date), else 60 s. */
export function retryAfterMs(header: string | null, clock: Clock): number {
  if (header === null || header.trim() === '') return DEFAULT_RETRY_AFTER_MS;
  const v = header.trim();
  if (/^\d+$/.test(v)) return Number(v) * 1000;
  const at = Date.parse(v);
  if (Number.isNaN(at)) return DEFAULT_RETRY_AFTER_MS;
  return Math.max(0, at - clock.now().getTime());
}

/** "UND_ERR_SOCKET (other side closed)" from undici's `fetch failed` TypeError. */
export function networkCause(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } } | null)?.cause;
  if (cause?.code && cause.message) return `${cause.code} (${cause.message})`;
  return cause?.code ?? cause?.message ?? (err instanceof Error ? err.message : String(err));
}

const dateFormatters = new Map<string, Intl.DateTimeFormat>();

/** The calendar date of an instant in an IANA time zone, 'YYYY-MM-DD'. */
function localDate(instant: Date, timeZone: string): string {
  let f = dateFormatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' });
    dateFormatters.set(timeZone, f);
  }
  const parts = f.formatToParts(instant);
  const get = (t: string): string => parts.find((p) => p.type === t)?.value ?? '';
  return `${get('year')}-${get('month')}-${get('day')}`;
}

function utcMidnight(date: string, addDays: number): Date {
  const [y, m, d] = date.split('-').map(Number);
  return new Date(Date.UTC(y!, m! - 1, d!) + addDays * DAY_MS);
}

function at(arr: (number | null)[] | undefined, i: number): number | null {
  const v = arr?.[i];
  return v === undefined ? null : v;
}

function num(v: unknown): number | null {
  return typeof v === 'number' ? v : null;
}
