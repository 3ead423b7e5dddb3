/**
 * Alpha Vantage through the `alphavantage` package (v2.5): TIME_SERIES_DAILY_ADJUSTED (falling
 * back to TIME_SERIES_DAILY where the key's plan lacks it), TIME_SERIES_INTRADAY by month,
 * GLOBAL_QUOTE and FX_DAILY.
 *
 * The package cannot carry our transport: its requests call the global `fetch` (a free
 * identifier inside its bundle; nothing to inject, and its `config.base` only moves the URL),
 * with no timeout, and it throws plain strings (a non-2xx even stringifies a pending Promise as
 * the body). So the package builds every request URL (`util.url`, API key included) and
 * normalises field names (`util.polish`, row by row), and this module does the HTTP itself with
 * the injected fetch and checks every body: AV reports errors and throttling with HTTP 200.
 * Time keys are parsed here, not by `polish`: it reads "YYYY-MM-DD HH:MM:SS" in the host's time
 * zone, while AV gives them in the meta "Time Zone" (US/Eastern), DST included.
 *
 * GLOBAL_QUOTE carries a trading day but no time: its quote is stamped with the fetch time while
 * that day's session is open (the price is AV's latest) and with the session's close after it.
 */
import alphavantage from 'alphavantage';
import { addDays, NYSE_TIME_ZONE, sessionFor } from '../calendar/nyse.ts';
import type { Config } from '../config.ts';
import type { Clock } from '../deps.ts';
import type { ProviderOptions } from './index.ts';
import {
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
} from './types.ts';
import { networkCause, retryAfterMs } from './yahoo.ts';

/** AV throttles with a 200 body; it says when per minute/day, not exactly when: wait a minute. */
const THROTTLE_RETRY_MS = 60_000;
/** `outputsize=compact` is the latest 100 data points (≈ 140 calendar days of sessions). */
const COMPACT_REACH_DAYS = 130;

export const ALPHAVANTAGE_LIMITS: ProviderLimits = {
  intradayIntervals: [1, 5],
  // `month=YYYY-MM` reaches back to 2000-01; one request returns one whole month.
  intradayLookbackDays: { 1: 365 * 20, 5: 365 * 20 },
  // One call issues one request per exchange-local month it touches: a span of 28 days touches
  // at most two.
  intradayMaxSpanDays: { 1: 28, 5: 28 },
  // The daily series comes whole in one response; chunking it would only spend requests.
  dailyMaxSpanDays: 36_500,
};

type Body = Record<string, unknown>;
type AvClient = ReturnType<typeof alphavantage>;

export function createAlphaVantageProvider(config: Config, opts: ProviderOptions): PriceProvider {
  const timeoutMs = config.providers.timeoutMs;
  const clock: Clock = opts.clock ?? { now: () => new Date() };
  let client: AvClient | null = null;
  /** Unknown until the first daily call; false once AV says DAILY_ADJUSTED is premium-only. */
  let adjustedAvailable = true;

  // Built on first use: a missing key must fail the call that needs it, not startup.
  const av = (): AvClient => {
    const key = config.providers.alphaVantageApiKey;
    if (!key) throw new ProviderPermanentError('alphavantage', 'ALPHAVANTAGE_API_KEY is not set');
    client ??= alphavantage({ key });
    return client;
  };

  async function request(params: Record<string, string>): Promise<Body> {
    const what = [params.function, params.symbol ?? `${params.from_symbol}/${params.to_symbol}`]
      .concat(params.interval ? [params.interval] : [], params.month ? [params.month] : [])
      .join(' ');
    const url = av().util.url({ ...params, datatype: 'json' });
    const timeout = AbortSignal.timeout(timeoutMs);
    let res: Response;
    let text: string;
    try {
      res = await (opts.fetch ?? globalThis.fetch)(url, {
        signal: timeout,
        headers: { accept: 'application/json' },
      });
      text = await res.text();
    } catch (err) {
      if (timeout.aborted)
        throw new ProviderTransientError('alphavantage', `timeout after ${timeoutMs} ms (${what})`);
      throw new ProviderTransientError(
        'alphavantage',
        `network error (${what}): ${redact(networkCause(err))}`,
      );
    }
    if (res.status === 429) {
      throw new ProviderRateLimitError(
        'alphavantage',
        `HTTP 429 rate limited (${what})`,
        retryAfterMs(res.headers.get('retry-after'), clock),
        text.slice(0, 2000),
      );
    }
    if (res.status >= 500)
      throw new ProviderTransientError('alphavantage', `HTTP ${res.status} (${what})`, text.slice(0, 2000));
    if (res.status >= 400)
      throw new ProviderPermanentError('alphavantage', `HTTP ${res.status} (${what})`, text.slice(0, 2000));
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw new ProviderTransientError('alphavantage', `malformed JSON (${what})`, text.slice(0, 2000));
    }
    if (typeof body === 'string')
      throw new ProviderPermanentError('alphavantage', `error (${what}): ${body}`, body);
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      throw new ProviderTransientError(
        'alphavantage',
        `malformed JSON (${what}): not an object`,
        text.slice(0, 2000),
      );
    }
    const b = body as Body;
    if (typeof b['Error Message'] === 'string') {
      throw new ProviderPermanentError('alphavantage', `Error Message (${what}): ${b['Error Message']}`, b);
    }
    if (typeof b.Note === 'string') {
      throw new ProviderRateLimitError(
        'alphavantage',
        `throttled, Note (${what}): ${b.Note}`,
        THROTTLE_RETRY_MS,
        b,
      );
    }
    if (typeof b.Information === 'string') {
      // "Information" also carries answers that waiting will not change.
      if (/premium endpoint|demo api key|apikey is invalid/i.test(b.Information)) {
        throw new ProviderPermanentError('alphavantage', `Information (${what}): ${b.Information}`, b);
      }
      throw new ProviderRateLimitError(
        'alphavantage',
        `throttled, Information (${what}): ${b.Information}`,
        THROTTLE_RETRY_MS,
        b,
      );
    }
    return b;
  }

  /** The series object of a time-series body, or a permanent error naming what is missing. */
  function series(body: Body, key: string, what: string): Record<string, Body> {
    const s = body[key];
    if (s === null || typeof s !== 'object' || Array.isArray(s)) {
      throw new ProviderPermanentError(
        'alphavantage',
        `unexpected response (${what}): no "${key}" (keys: ${Object.keys(body).join(', ') || 'none'})`,
        body,
      );
    }
    return s as Record<string, Body>;
  }

  function outputsizeFor(from: string): 'compact' | 'full' {
    const today = clock.now().toISOString().slice(0, 10);
    return from >= addDays(today, -COMPACT_REACH_DAYS) ? 'compact' : 'full';
  }

  async function dailyBody(symbol: string, from: string): Promise<{ body: Body; adjusted: boolean }> {
    const outputsize = outputsizeFor(from);
    if (adjustedAvailable) {
      try {
        const body = await request({ function: 'TIME_SERIES_DAILY_ADJUSTED', symbol, outputsize });
        return { body, adjusted: true };
      } catch (err) {
        if (!(err instanceof ProviderPermanentError && /premium endpoint/i.test(err.message))) throw err;
        adjustedAvailable = false;
      }
    }
    return { body: await request({ function: 'TIME_SERIES_DAILY', symbol, outputsize }), adjusted: false };
  }

  return {
    name: 'alphavantage',
    limits: ALPHAVANTAGE_LIMITS,

    async quote(symbol) {
      const body = await request({ function: 'GLOBAL_QUOTE', symbol });
      const raw = body['Global Quote'];
      if (raw === null || typeof raw !== 'object' || Object.keys(raw).length === 0) {
        throw new ProviderPermanentError(
          'alphavantage',
          `unknown symbol "${symbol}" (empty Global Quote)`,
          body,
        );
      }
      const q = av().util.polish<Record<string, string | undefined>>(raw);
      const day = q.latest_trading_day;
      // AV gives the day, not the time. After that session's close the price is its close:
      // stamped at the close (validation stores a closing print at close − 1 ms, inside the
      // session). During the session the price is AV's latest, so it is stamped with the fetch
      // time on this provider's clock (the trade's own time is not in the payload). A day whose
      // session has not opened yet by our clock has no time we could vouch for: null.
      const session = day ? sessionFor(day) : undefined;
      const now = clock.now();
      const ts = !session
        ? null
        : session.closeAt.getTime() <= now.getTime()
          ? session.closeAt
          : session.openAt.getTime() <= now.getTime()
            ? new Date(now.getTime())
            : null;
      return {
        symbol: q.symbol ?? symbol,
        price: numOrNull(q.price),
        ts,
        currency: null,
        volume: numOrNull(q.volume),
        bid: null,
        ask: null,
        raw,
      };
    },

    async daily(symbol, from, to): Promise<ProviderHistory<ProviderDailyBar>> {
      const { body, adjusted } = await dailyBody(symbol, from);
      const rows = series(body, 'Time Series (Daily)', `daily ${symbol}`);
      const bars: ProviderDailyBar[] = [];
      const events: ProviderEvent[] = [];
      for (const date of Object.keys(rows).sort()) {
        if (date < from || date > to) continue;
        const raw = rows[date]!;
        const r = av().util.polish<Record<string, string | undefined>>(raw);
        bars.push({
          date,
          open: numOrNull(r.open),
          high: numOrNull(r.high),
          low: numOrNull(r.low),
          close: numOrNull(r.close),
          adjClose: adjusted ? numOrNull(r.adjusted) : null,
          volume: numOrNull(r.volume),
          raw: { [date]: raw },
        });
        if (!adjusted) continue;
        const dividend = numOrNull(r.dividend);
        if (dividend !== null && dividend !== 0) {
          events.push({
            kind: 'dividend',
            exDate: date,
            ratio: null,
            amount: dividend,
            raw: { [date]: raw },
          });
        }
        // The split coefficient is new shares per old (4:1 → 4.0); 1.0 on ordinary days.
        const split = numOrNull(r.split);
        if (split !== null && split !== 1) {
          events.push({ kind: 'split', exDate: date, ratio: split, amount: null, raw: { [date]: raw } });
        }
      }
      return { provider: 'alphavantage', symbol, currency: null, bars, events };
    },

    async intraday(symbol, from, to, intervalMinutes): Promise<ProviderHistory<ProviderIntradayBar>> {
      if (!ALPHAVANTAGE_LIMITS.intradayIntervals.includes(intervalMinutes)) {
        throw new ProviderPermanentError(
          'alphavantage',
          `unsupported intraday interval ${intervalMinutes} min`,
        );
      }
      const bars: ProviderIntradayBar[] = [];
      if (to.getTime() <= from.getTime())
        return { provider: 'alphavantage', symbol, currency: null, bars, events: [] };
      const interval = `${intervalMinutes}min`;
      const key = `Time Series (${interval})`;
      for (const month of monthsTouched(from, to, NYSE_TIME_ZONE)) {
        const body = await request({
          function: 'TIME_SERIES_INTRADAY',
          symbol,
          interval,
          month,
          outputsize: 'full',
          // As traded (not back-adjusted), regular session only.
          adjusted: 'false',
          extended_hours: 'false',
        });
        const meta = av().util.polish<Record<string, string | undefined>>(body['Meta Data'] ?? {});
        const zone = meta.zone ?? 'US/Eastern';
        if (!isTimeZone(zone)) {
          throw new ProviderPermanentError(
            'alphavantage',
            `unknown time zone "${zone}" in Meta Data`,
            body['Meta Data'],
          );
        }
        const rows = series(body, key, `intraday ${symbol} ${interval} ${month}`);
        for (const stamp of Object.keys(rows).sort()) {
          const ts = wallTimeToUtc(stamp, zone);
          if (ts === null) {
            throw new ProviderPermanentError('alphavantage', `unexpected timestamp "${stamp}" in ${key}`, {
              [stamp]: rows[stamp],
            });
          }
          if (ts.getTime() < from.getTime() || ts.getTime() >= to.getTime()) continue;
          const raw = rows[stamp]!;
          const r = av().util.polish<Record<string, string | undefined>>(raw);
          // AV labels an intraday bar by its start (09:30:00 is [09:30, 09:35) at 5min).
          bars.push({
            ts,
            open: numOrNull(r.open),
            high: numOrNull(r.high),
            low: numOrNull(r.low),
            close: numOrNull(r.close),
            volume: numOrNull(r.volume),
            raw: { [stamp]: raw, timeZone: zone },
          });
        }
      }
      return { provider: 'alphavantage', symbol, currency: null, bars, events: [] };
    },

    async fxDaily(base, quote, from, to): Promise<ProviderFxRate[]> {
      const body = await request({
        function: 'FX_DAILY',
        from_symbol: base,
        to_symbol: quote,
        outputsize: outputsizeFor(from),
      });
      const rows = series(body, 'Time Series FX (Daily)', `fx ${base}/${quote}`);
      const out: ProviderFxRate[] = [];
      for (const date of Object.keys(rows).sort()) {
        if (date < from || date > to) continue;
        const raw = rows[date]!;
        const r = av().util.polish<Record<string, string | undefined>>(raw);
        out.push({ date, rate: numOrNull(r.close), raw: { [date]: raw } });
      }
      return out;
    },
  };
}

/** Error texts may quote the request URL, which carries the API key. */
function redact(text: string): string {
  return text.replace(/apikey=[^&\s]*/gi, 'apikey=[redacted]');
}

/** AV numbers are strings; missing stays null, garbage becomes NaN for validation to reject. */
function numOrNull(v: string | undefined): number | null {
  if (v === undefined || v === null) return null;
  return Number(v);
}

/** 'YYYY-MM' of every exchange-local month that [from, to) touches. */
function monthsTouched(from: Date, to: Date, timeZone: string): string[] {
  const first = localParts(from, timeZone);
  const last = localParts(new Date(to.getTime() - 1), timeZone);
  const out: string[] = [];
  let y = first.year;
  let m = first.month;
  while (y < last.year || (y === last.year && m <= last.month)) {
    out.push(`${y}-${String(m).padStart(2, '0')}`);
    m += 1;
    if (m === 13) {
      m = 1;
      y += 1;
    }
  }
  return out;
}

const partFormatters = new Map<string, Intl.DateTimeFormat>();

function isTimeZone(timeZone: string): boolean {
  try {
    localParts(new Date(0), timeZone);
    return true;
  } catch {
    return false;
  }
}

function localParts(
  instant: Date,
  timeZone: string,
): { year: number; month: number; day: number; hour: number; minute: number; second: number } {
  let f = partFormatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
    partFormatters.set(timeZone, f);
  }
  const parts = f.formatToParts(instant);
  const get = (t: string): number => Number(parts.find((p) => p.type === t)?.value ?? NaN);
  return {
    year: get('year'),
    month: get('month'),
    day: get('day'),
    hour: get('hour'),
    minute: get('minute'),
    second: get('second'),
  };
}

/**
 * The UTC instant of a wall-clock time "YYYY-MM-DD HH:MM[:SS]" in an IANA zone. Two passes: the
 * offset at the first guess is right except within hours of a DST switch, where the second pass
 * (offset at the corrected instant) settles it; market hours never fall in the skipped hour.
 */
export function wallTimeToUtc(stamp: string, timeZone: string): Date | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})(?:[ T](\d{2}):(\d{2})(?::(\d{2}))?)?$/.exec(stamp.trim());
  if (!m) return null;
  const wall = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +(m[4] ?? 0), +(m[5] ?? 0), +(m[6] ?? 0));
  if (Number.isNaN(wall)) return null;
  const offsetAt = (instant: number): number => {
    const p = localParts(new Date(instant), timeZone);
    return Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second) - instant;
  };
  let utc = wall - offsetAt(wall);
  utc = wall - offsetAt(utc);
  return new Date(utc);
}
