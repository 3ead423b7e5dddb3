/**
 * The one interface every price source implements (synthetic, Yahoo Finance, Alpha Vantage), and
 * the errors they throw. Providers return what the source said, converted to plain numbers and
 * dates but NOT validated or cleaned: validation and quarantine live in core/ingest, so every bad
 * row is seen, reasoned about and kept in one place. Each row carries `raw`, the source's own
 * fragment, for the quarantine.
 */

export type ProviderName = 'synthetic' | 'yahoo' | 'alphavantage';
export const PROVIDER_NAMES: readonly ProviderName[] = ['synthetic', 'yahoo', 'alphavantage'];

/** One daily bar as the provider sent it; `date` is the exchange-local session date YYYY-MM-DD. */
export interface ProviderDailyBar {
  date: string;
  open: number | null;
  high: number | null;
  low: number | null;
  close: number | null;
  /** Split- and dividend-adjusted close when the source gives one (Yahoo `adjclose`). */
  adjClose: number | null;
  volume: number | null;
  raw: unknown;
}

/** One intraday bar: `ts` is the start of [ts, ts + interval). */
export interface ProviderIntradayBar {
  ts: Date;
  open: number | null;
  high: number | null;
  low: number | null;
  close: number | null;
  volume: number | null;
  raw: unknown;
}

export interface ProviderQuote {
  symbol: string;
  price: number | null;
  /** When the price was traded (the source's market time), not when we asked. */
  ts: Date | null;
  currency: string | null;
  /** Cumulative session volume, when given. */
  volume: number | null;
  bid: number | null;
  ask: number | null;
  raw: unknown;
}

/** A corporate action the source reported inside a history response. */
export interface ProviderEvent {
  kind: 'split' | 'dividend';
  /** Ex-date, exchange-local YYYY-MM-DD. */
  exDate: string;
  /** Splits: new shares per old (4:1 → 4; 1:10 reverse → 0.1). */
  ratio: number | null;
  /** Dividends: cash per share in the security's currency. */
  amount: number | null;
  raw: unknown;
}

export interface ProviderHistory<B> {
  provider: ProviderName;
  symbol: string;
  /** Currency the source says the prices are in (checked against the security master). */
  currency: string | null;
  bars: B[];
  events: ProviderEvent[];
}

/** Units of `quote` per one `base` on `date`. */
export interface ProviderFxRate {
  date: string;
  rate: number | null;
  raw: unknown;
}

export interface ProviderLimits {
  /** Intraday intervals the source serves, in minutes (each must divide 5 to feed 5-minute bars). */
  intradayIntervals: number[];
  /** How far back intraday history reaches, in calendar days (Yahoo: 1m ≈ 30 days, 5m ≈ 60). */
  intradayLookbackDays: Record<number, number>;
  /** Largest span one intraday request may cover, in calendar days (Yahoo 1m: 8). */
  intradayMaxSpanDays: Record<number, number>;
  /** Largest span one daily request may cover, in calendar days. */
  dailyMaxSpanDays: number;
}

export interface PriceProvider {
  readonly name: ProviderName;
  readonly limits: ProviderLimits;
  quote(symbol: string): Promise<ProviderQuote>;
  /** Daily bars for sessions from..to (inclusive, YYYY-MM-DD), with split/dividend events. */
  daily(symbol: string, from: string, to: string): Promise<ProviderHistory<ProviderDailyBar>>;
  /** Intraday bars with start in [from, to). */
  intraday(
    symbol: string,
    from: Date,
    to: Date,
    intervalMinutes: number,
  ): Promise<ProviderHistory<ProviderIntradayBar>>;
  /** Daily FX rates base→quote for from..to inclusive. */
  fxDaily(base: string, quote: string, from: string, to: string): Promise<ProviderFxRate[]>;
}

export type ProviderErrorKind = 'rate-limit' | 'transient' | 'permanent';

/**
 * Base of every provider failure. `kind` decides what the job does: rate-limit → the queue backs
 * off (queue.rateLimit) and the job retries without using an attempt; transient → retry with
 * backoff; permanent → fail now (UnrecoverableError) with this message, which names the cause.
 */
export class ProviderError extends Error {
  readonly provider: ProviderName;
  readonly kind: ProviderErrorKind;
  /** Raw body or fragment for the quarantine, when there is one. */
  readonly raw: unknown;
  constructor(provider: ProviderName, kind: ProviderErrorKind, message: string, raw?: unknown) {
    super(`${provider}: ${message}`);
    this.name = 'ProviderError';
    this.provider = provider;
    this.kind = kind;
    this.raw = raw;
  }
}

/** HTTP 429, a throttle `Note` / `Information` body: wait `retryAfterMs`, then try again. */
export class ProviderRateLimitError extends ProviderError {
  readonly retryAfterMs: number;
  constructor(provider: ProviderName, message: string, retryAfterMs: number, raw?: unknown) {
    super(provider, 'rate-limit', message, raw);
    this.name = 'ProviderRateLimitError';
    this.retryAfterMs = retryAfterMs;
  }
}

/** 5xx, timeout, connection reset, malformed JSON: retry with backoff. */
export class ProviderTransientError extends ProviderError {
  constructor(provider: ProviderName, message: string, raw?: unknown) {
    super(provider, 'transient', message, raw);
    this.name = 'ProviderTransientError';
  }
}

/** Unknown symbol, invalid request, missing API key, a validation error body: do not retry. */
export class ProviderPermanentError extends ProviderError {
  constructor(provider: ProviderName, message: string, raw?: unknown) {
    super(provider, 'permanent', message, raw);
    this.name = 'ProviderPermanentError';
  }
}

/** The configured providers, and the order to try them in for one security. */
export interface ProviderSet {
  get(name: ProviderName): PriceProvider;
  /**
   * Providers to try for a security whose own provider is `primary`: primary first, then the
   * configured real fallbacks. Synthetic is only ever returned alone (for a synthetic security);
   * a real security never falls back to synthetic.
   */
  chainFor(primary: ProviderName): PriceProvider[];
  /**
   * Runs `call` against each provider of `chainFor(primary)` in turn until one succeeds. A
   * permanent "unknown symbol" or a transient/rate-limit failure moves to the next provider; when
   * all fail, rethrows the primary's error, except that a throttled fallback turns a non-throttle
   * primary failure into a transient one (retry with backoff; only the primary's own throttle
   * pauses its queue). Logs each fallback step via `onFallback`.
   */
  withFallback<T>(
    primary: ProviderName,
    call: (p: PriceProvider) => Promise<T>,
    onFallback?: (from: ProviderName, err: ProviderError) => void,
  ): Promise<{ provider: ProviderName; value: T }>;
}
