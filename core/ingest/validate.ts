/**
 * Validation of provider rows against the security master and the NYSE calendar. Pure: no I/O,
 * no clock of its own (the caller passes `now`), so every rule is testable on plain values.
 *
 * Each function splits one provider response into accepted rows, exact repeats (counted as
 * duplicates, nothing to keep) and rejected rows, each with a stable reason code, a human
 * sentence and the raw fragment for the quarantine. One bad row never stops the good rows of the
 * same response; a response-level fault (an error or throttle body, a currency that disagrees
 * with the security master) rejects every row of that response with the same reason.
 *
 * Rows that pass are safe for the database's constraints: prices finite, positive and inside
 * numeric(20,8) (1e-8 ≤ p < 1e12), high ≥ low with open and close inside, volume a safe
 * non-negative integer (a null volume is taken as 0: index and FX series have none), timestamps
 * inside the regular session ([open, close), 13:00 on early closes) and aligned to the bar
 * interval, daily dates on NYSE trading days, and nothing newer than the caller's `now` (an
 * unfinished bar or session would otherwise be stored and never corrected: the natural keys make
 * later fetches of it duplicates).
 *
 * Quotes: the market time must fall inside a regular session, with one exception: a quote stamped
 * exactly at a session's close is that session's closing print (Yahoo stamps the official close
 * 16:00:00.000 ET; Alpha Vantage's quote after the close carries only the day, so its provider
 * stamps the close). It is accepted and stored at close − 1 ms, so it lands in the session's last
 * 5-minute bucket and the daily rollup (buckets < close_at) includes it; a re-fetch of the same
 * close maps to the same instant and is a duplicate, not a second print.
 */
import {
  isTradingDay,
  isValidDate,
  lastCompletedSession,
  sessionDateOf,
  sessionFor,
  type Session,
} from '../calendar/nyse.ts';
import type {
  ProviderDailyBar,
  ProviderEvent,
  ProviderFxRate,
  ProviderHistory,
  ProviderIntradayBar,
  ProviderQuote,
} from '../providers/types.ts';

/** Stable reason codes; the stored reason is `<code>: <detail>`. */
export const REASONS = {
  error_body: 'the provider sent an error or throttle message in place of data',
  currency_mismatch: "the response's currency differs from the security master's",
  symbol_mismatch: 'the response is for another symbol',
  null_field: 'a required field is null',
  non_finite_price: 'a price is not a finite number',
  non_positive_price: 'a price is zero or negative',
  price_out_of_range: 'a price is outside what numeric(20,8) stores (1e-8 to 1e12)',
  high_below_low: 'high is below low',
  open_close_outside_range: 'open or close is outside [low, high]',
  bad_volume: 'volume is negative, fractional or not a number',
  bad_timestamp: 'the timestamp or date is missing or not valid',
  outside_session: 'the timestamp is outside the NYSE regular session',
  not_trading_day: 'the date is not an NYSE trading day',
  misaligned_timestamp: 'the bar does not start on its interval boundary',
  incomplete: 'the bar or session had not finished at fetch time',
  duplicate: 'the same key appears earlier in the response with different values',
  conflicting_duplicate: 'a stored tick from another origin has the same key with other values',
  bad_ratio: 'the split ratio is missing, not positive, or 1',
  bad_amount: 'the dividend amount is missing, negative or not a number',
  bad_rate: 'the FX rate is missing, not finite, not positive or out of range',
} as const;

export type ReasonCode = keyof typeof REASONS;

/** What a rejected row is, for quarantined_rows.entity. */
export type QuarantineEntity =
  'quote' | 'bar_1d' | 'bar_intraday' | 'corporate_action' | 'fx_rate' | 'response';

export interface Rejected {
  entity: QuarantineEntity;
  code: ReasonCode;
  /** `<code>: <detail>`, what quarantined_rows.reason holds. */
  reason: string;
  raw: unknown;
}

export interface Validated<T> {
  accepted: T[];
  /** Rows repeated exactly within the response (same key, same values): nothing to store. */
  duplicates: number;
  rejected: Rejected[];
}

/** The security master's view of a security that validation needs. */
export interface SecurityMaster {
  ticker: string;
  currency: string;
}

export interface DailyRow {
  date: string;
  open: number;
  high: number;
  low: number;
  close: number;
  adjClose: number | null;
  volume: number;
  raw: unknown;
}

export interface IntradayRow {
  ts: Date;
  open: number;
  high: number;
  low: number;
  close: number;
  volume: number;
  raw: unknown;
}

export interface QuoteRow {
  ts: Date;
  price: number;
  /** Cumulative session volume, when the source gave one. */
  volume: number | null;
  /** Kept only when both sides are valid and bid ≤ ask (otherwise null, the price still loads). */
  bid: number | null;
  ask: number | null;
  raw: unknown;
}

export interface EventRow {
  kind: 'split' | 'dividend';
  exDate: string;
  ratio: number | null;
  amount: number | null;
  raw: unknown;
}

export interface FxRow {
  date: string;
  rate: number;
  raw: unknown;
}

type Problem = [ReasonCode, string];

const sessionCache = new Map<number, Session | null>();
/**
 * The regular session containing an instant, if any. Sessions (09:30–16:00 New York, i.e. 13:30
 * to 21:00 UTC at the latest) never span a UTC midnight, so an instant inside one shares its UTC
 * date: one cached lookup per UTC day instead of a time-zone conversion per row.
 */
function sessionAt(t: number): Session | undefined {
  const day = Math.floor(t / 86_400_000);
  let s = sessionCache.get(day);
  if (s === undefined) {
    if (sessionCache.size > 20_000) sessionCache.clear();
    s = sessionFor(new Date(day * 86_400_000).toISOString().slice(0, 10)) ?? null;
    sessionCache.set(day, s);
  }
  return s && t >= s.openAt.getTime() && t < s.closeAt.getTime() ? s : undefined;
}

const MIN_PRICE = 1e-8;
const MAX_PRICE = 1e12;

/** The message of an error or throttle body (Alpha Vantage Note/Information/Error Message, Yahoo error objects). */
export function errorBodyMessage(raw: unknown): string | undefined {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return undefined;
  const o = raw as Record<string, unknown>;
  for (const k of ['Note', 'Information', 'Error Message', 'error']) {
    const v = o[k];
    if (typeof v === 'string' && v.trim() !== '') return `${k}: ${v}`;
    if (k === 'error' && v && typeof v === 'object') {
      const e = v as Record<string, unknown>;
      const text = [e.code, e.description ?? e.message].filter((x) => typeof x === 'string').join(' ');
      if (text) return `error: ${text}`;
    }
  }
  for (const k of ['chart', 'quoteResponse', 'finance']) {
    const inner = o[k];
    if (inner && typeof inner === 'object') {
      const msg = errorBodyMessage({ error: (inner as Record<string, unknown>).error });
      if (msg) return `${k}.${msg}`;
    }
  }
  return undefined;
}

function reject(entity: QuarantineEntity, [code, detail]: Problem, raw: unknown): Rejected {
  return { entity, code, reason: `${code}: ${detail}`, raw };
}

function priceProblem(name: string, v: number | null | undefined): Problem | undefined {
  if (v === null || v === undefined) return ['null_field', `${name} is null`];
  if (typeof v !== 'number' || !Number.isFinite(v)) return ['non_finite_price', `${name} is ${String(v)}`];
  if (v <= 0) return ['non_positive_price', `${name} is ${v}`];
  if (v < MIN_PRICE || v >= MAX_PRICE) return ['price_out_of_range', `${name} is ${v}`];
  return undefined;
}

function volumeProblem(v: number | null | undefined): Problem | undefined {
  if (v === null || v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
    return ['bad_volume', `volume is ${String(v)}`];
  return undefined;
}

function ohlcProblem(b: {
  open: number | null;
  high: number | null;
  low: number | null;
  close: number | null;
}): Problem | undefined {
  const fields = [
    ['open', b.open],
    ['high', b.high],
    ['low', b.low],
    ['close', b.close],
  ] as const;
  // Nulls first: a row with a null field is "null OHLC", whatever else is wrong with it.
  for (const [name, v] of fields) if (v === null || v === undefined) return ['null_field', `${name} is null`];
  for (const [name, v] of fields) {
    const p = priceProblem(name, v);
    if (p) return p;
  }
  const { open, high, low, close } = b as { open: number; high: number; low: number; close: number };
  if (high < low) return ['high_below_low', `high ${high} < low ${low}`];
  if (open < low || open > high)
    return ['open_close_outside_range', `open ${open} outside [${low}, ${high}]`];
  if (close < low || close > high)
    return ['open_close_outside_range', `close ${close} outside [${low}, ${high}]`];
  return undefined;
}

function currencyProblem(given: string | null, security: SecurityMaster): Problem | undefined {
  if (given === null || given === undefined || given === security.currency) return undefined;
  return ['currency_mismatch', `response in ${given}, ${security.ticker} is in ${security.currency}`];
}

/** Problems that apply to a whole history response. */
function historyProblem(h: ProviderHistory<unknown>, security: SecurityMaster): Problem | undefined {
  if (h.symbol && h.symbol.toUpperCase() !== security.ticker.toUpperCase())
    return ['symbol_mismatch', `response for ${h.symbol}, asked for ${security.ticker}`];
  return currencyProblem(h.currency, security);
}

/**
 * Splits rows by key: the first valid row of a key is accepted; a later row with the same key and
 * the same values is an exact repeat (counted); a later one with different values is rejected.
 */
function dedupe<T>(
  entity: QuarantineEntity,
  rows: { row: T; raw: unknown }[],
  keyOf: (r: T) => string | number,
  same: (a: T, b: T) => boolean,
  label: (r: T) => string,
  out: Validated<T>,
): void {
  const seen = new Map<string | number, T>();
  for (const { row, raw } of rows) {
    const key = keyOf(row);
    const before = seen.get(key);
    if (before === undefined) {
      seen.set(key, row);
      out.accepted.push(row);
    } else if (same(before, row)) {
      out.duplicates += 1;
    } else {
      out.rejected.push(
        reject(entity, ['duplicate', `${label(row)} appears twice with different values`], raw),
      );
    }
  }
}

const sameBar = (
  a: { open: number; high: number; low: number; close: number; volume: number },
  b: { open: number; high: number; low: number; close: number; volume: number },
): boolean =>
  a.open === b.open && a.high === b.high && a.low === b.low && a.close === b.close && a.volume === b.volume;

const empty = <T>(): Validated<T> => ({ accepted: [], duplicates: 0, rejected: [] });

export function validateDailyBars(
  history: ProviderHistory<ProviderDailyBar>,
  ctx: { security: SecurityMaster; now: Date },
): Validated<DailyRow> {
  const out = empty<DailyRow>();
  const whole = historyProblem(history, ctx.security);
  if (whole) {
    out.rejected.push(...history.bars.map((b) => reject('bar_1d', whole, b.raw ?? b)));
    return out;
  }
  const lastDone = lastCompletedSession(ctx.now).date;
  const good: { row: DailyRow; raw: unknown }[] = [];
  for (const b of history.bars) {
    const raw = b.raw ?? b;
    const problem: Problem | undefined =
      (errorBodyMessage(b.raw) ? ['error_body', errorBodyMessage(b.raw) ?? ''] : undefined) ??
      (typeof b.date !== 'string' || !isValidDate(b.date)
        ? ['bad_timestamp', `date ${String(b.date)} is not YYYY-MM-DD`]
        : undefined) ??
      (!isTradingDay(b.date) ? ['not_trading_day', `${b.date} is not an NYSE trading day`] : undefined) ??
      (b.date > lastDone ? ['incomplete', `session ${b.date} had not closed at fetch time`] : undefined) ??
      ohlcProblem(b) ??
      (b.adjClose === null ? undefined : priceProblem('adjClose', b.adjClose)) ??
      volumeProblem(b.volume);
    if (problem) {
      out.rejected.push(reject('bar_1d', problem, raw));
      continue;
    }
    good.push({
      row: {
        date: b.date,
        open: b.open as number,
        high: b.high as number,
        low: b.low as number,
        close: b.close as number,
        adjClose: b.adjClose,
        volume: b.volume ?? 0,
        raw: b.raw,
      },
      raw,
    });
  }
  dedupe(
    'bar_1d',
    good,
    (r) => r.date,
    (a, b) => sameBar(a, b) && a.adjClose === b.adjClose,
    (r) => r.date,
    out,
  );
  return out;
}

export function validateIntradayBars(
  history: ProviderHistory<ProviderIntradayBar>,
  ctx: { security: SecurityMaster; intervalMinutes: number; now: Date },
): Validated<IntradayRow> {
  const out = empty<IntradayRow>();
  const whole = historyProblem(history, ctx.security);
  if (whole) {
    out.rejected.push(...history.bars.map((b) => reject('bar_intraday', whole, b.raw ?? b)));
    return out;
  }
  const step = ctx.intervalMinutes * 60_000;
  const good: { row: IntradayRow; raw: unknown }[] = [];
  for (const b of history.bars) {
    const raw = b.raw ?? b;
    const problem: Problem | undefined =
      (errorBodyMessage(b.raw) ? ['error_body', errorBodyMessage(b.raw) ?? ''] : undefined) ??
      timestampProblem(b.ts, step, ctx.now) ??
      ohlcProblem(b) ??
      volumeProblem(b.volume);
    if (problem) {
      out.rejected.push(reject('bar_intraday', problem, raw));
      continue;
    }
    good.push({
      row: {
        ts: b.ts,
        open: b.open as number,
        high: b.high as number,
        low: b.low as number,
        close: b.close as number,
        volume: b.volume ?? 0,
        raw: b.raw,
      },
      raw,
    });
  }
  dedupe(
    'bar_intraday',
    good,
    (r) => r.ts.getTime(),
    sameBar,
    (r) => r.ts.toISOString(),
    out,
  );
  return out;
}

/** A bar [ts, ts + step) must lie inside one regular session, start on its boundary, and be over. */
function timestampProblem(ts: Date | null, step: number, now: Date): Problem | undefined {
  if (!(ts instanceof Date) || Number.isNaN(ts.getTime())) return ['bad_timestamp', `ts is ${String(ts)}`];
  const t = ts.getTime();
  const session = sessionAt(t);
  if (!session || t + step > session.closeAt.getTime()) {
    const date = sessionDateOf(ts);
    const s = sessionFor(date);
    return [
      'outside_session',
      s
        ? `${ts.toISOString()} is outside the ${date} session ${s.openAt.toISOString()}–${s.closeAt.toISOString()}`
        : `${ts.toISOString()}: ${date} is not an NYSE trading day`,
    ];
  }
  if (t % step !== 0)
    return ['misaligned_timestamp', `${ts.toISOString()} is not on a ${step / 60_000}-minute boundary`];
  if (t + step > now.getTime())
    return ['incomplete', `the bar starting ${ts.toISOString()} had not ended at fetch time`];
  return undefined;
}

export function validateQuote(
  quote: ProviderQuote,
  ctx: { security: SecurityMaster; now: Date },
): Validated<QuoteRow> {
  const out = empty<QuoteRow>();
  const raw = quote.raw ?? quote;
  const body = errorBodyMessage(quote.raw);
  const ts = quote.ts;
  let problem: Problem | undefined =
    (body ? ['error_body', body] : undefined) ??
    (quote.symbol && quote.symbol.toUpperCase() !== ctx.security.ticker.toUpperCase()
      ? ['symbol_mismatch', `quote for ${quote.symbol}, asked for ${ctx.security.ticker}`]
      : undefined) ??
    currencyProblem(quote.currency, ctx.security) ??
    priceProblem('price', quote.price) ??
    (ts === null ? ['null_field', 'ts (market time) is null'] : undefined) ??
    volumeProblem(quote.volume);
  let storedTs = ts;
  if (!problem && ts !== null) {
    const t = ts.getTime();
    if (Number.isNaN(t)) problem = ['bad_timestamp', 'ts is not a valid time'];
    else {
      // The closing print (exactly at close): kept just inside the session (module comment).
      const closing = sessionAt(t - 1)?.closeAt.getTime() === t;
      if (closing) storedTs = new Date(t - 1);
      else if (!sessionAt(t))
        problem = ['outside_session', `${ts.toISOString()} is outside the NYSE regular session`];
      if (!problem && t > ctx.now.getTime() + 60_000)
        problem = ['bad_timestamp', `${ts.toISOString()} is in the future`];
    }
  }
  if (problem) {
    out.rejected.push(reject('quote', problem, raw));
    return out;
  }
  const sideOk = (v: number | null): v is number =>
    v !== null && Number.isFinite(v) && v >= MIN_PRICE && v < MAX_PRICE;
  const both = sideOk(quote.bid) && sideOk(quote.ask) && quote.bid <= quote.ask;
  out.accepted.push({
    ts: storedTs as Date,
    price: quote.price as number,
    volume: quote.volume,
    bid: both ? quote.bid : null,
    ask: both ? quote.ask : null,
    raw: quote.raw,
  });
  return out;
}

export function validateEvents(events: ProviderEvent[]): Validated<EventRow> {
  const out = empty<EventRow>();
  const good: { row: EventRow; raw: unknown }[] = [];
  for (const e of events) {
    const raw = e.raw ?? e;
    let problem: Problem | undefined =
      typeof e.exDate !== 'string' || !isValidDate(e.exDate)
        ? ['bad_timestamp', `ex-date ${String(e.exDate)} is not YYYY-MM-DD`]
        : undefined;
    if (!problem && e.kind === 'split') {
      const r = e.ratio;
      if (r === null || !Number.isFinite(r) || r <= 0 || r === 1 || r >= 1e10 || r < 1e-10)
        problem = ['bad_ratio', `split ratio ${String(r)}`];
    } else if (!problem && e.kind === 'dividend') {
      const a = e.amount;
      if (a === null || !Number.isFinite(a) || a < 0 || a >= MAX_PRICE)
        problem = ['bad_amount', `dividend amount ${String(a)}`];
    } else if (!problem) problem = ['null_field', `unknown event kind ${String(e.kind)}`];
    if (problem) {
      out.rejected.push(reject('corporate_action', problem, raw));
      continue;
    }
    good.push({ row: { kind: e.kind, exDate: e.exDate, ratio: e.ratio, amount: e.amount, raw: e.raw }, raw });
  }
  dedupe(
    'corporate_action',
    good,
    (r) => `${r.kind} ${r.exDate}`,
    (a, b) => a.ratio === b.ratio && a.amount === b.amount,
    (r) => `${r.kind} ${r.exDate}`,
    out,
  );
  return out;
}

export function validateFxRates(rates: ProviderFxRate[], ctx: { pair: string; now: Date }): Validated<FxRow> {
  const out = empty<FxRow>();
  const today = sessionDateOf(ctx.now);
  const good: { row: FxRow; raw: unknown }[] = [];
  for (const r of rates) {
    const raw = r.raw ?? r;
    const body = errorBodyMessage(r.raw);
    const problem: Problem | undefined =
      (body ? ['error_body', body] : undefined) ??
      (typeof r.date !== 'string' || !isValidDate(r.date)
        ? ['bad_timestamp', `${ctx.pair} date ${String(r.date)} is not YYYY-MM-DD`]
        : undefined) ??
      (r.date > today ? ['bad_timestamp', `${ctx.pair} date ${r.date} is in the future`] : undefined) ??
      (r.rate === null || typeof r.rate !== 'number' || !Number.isFinite(r.rate) || r.rate <= 0
        ? ['bad_rate', `${ctx.pair} rate ${String(r.rate)} on ${r.date}`]
        : r.rate < 1e-10 || r.rate >= 1e10
          ? ['bad_rate', `${ctx.pair} rate ${r.rate} outside numeric(20,10)`]
          : undefined);
    if (problem) {
      out.rejected.push(reject('fx_rate', problem, raw));
      continue;
    }
    good.push({ row: { date: r.date, rate: r.rate as number, raw: r.raw }, raw });
  }
  dedupe(
    'fx_rate',
    good,
    (r) => r.date,
    (a, b) => a.rate === b.rate,
    (r) => r.date,
    out,
  );
  return out;
}
