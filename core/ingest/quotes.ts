/**
 * Latest prices: one quote from a security's providers (with fallback between real ones),
 * validated, stored as one tick, bad ones quarantined. Used by the prices.quote job and by the
 * API's GET /stocks/{symbol} (refreshQuote: the stored tick when fresh, else a fetch).
 *
 * Tick size from a quote: see core/ingest/load.ts. The last cumulative volume stored per security
 * lives in job_checkpoints ('prices.quote', 'volume:<id>'), read and moved under a lock in the
 * tick's own transaction, and only when the tick is new.
 *
 * A closing print (a quote stamped exactly at a session's close: Yahoo's official close, Alpha
 * Vantage after the close) is accepted by validateQuote and stored at close − 1 ms, inside the
 * session's last 5-minute bucket, so the daily rollup counts it (core/ingest/validate.ts).
 */
import { lastCompletedSession, sessionDateOf, sessionFor } from '../calendar/nyse.ts';
import type { IngestSecurity } from '../db/repositories/securities.ts';
import type { QuoteWatermark, TickInsert } from '../db/repositories/ticks.ts';
import type { Deps } from '../deps.ts';
import {
  PROVIDER_NAMES,
  ProviderError,
  ProviderPermanentError,
  type ProviderName,
  type ProviderQuote,
} from '../providers/types.ts';
import { decimalText, quarantineRows, QUOTE_SEQ, type QuarantineMeta } from './load.ts';
import { validateQuote, type QuoteRow } from './validate.ts';

export interface QuoteIngestResult {
  symbol: string;
  provider: ProviderName;
  accepted: number;
  duplicates: number;
  quarantined: number;
  /** The stored tick of this quote (new or already there); absent when the quote was quarantined. */
  tick?: { ts: Date; price: string };
  /** Reasons of quarantined rows. */
  reasons: string[];
}

/**
 * The provider of a security: its own `price_provider`, or the configured default (PRICE_PROVIDER)
 * when it names none; an error naming a bad value.
 */
export function providerNameOf(name: string | null, ticker: string, fallback: ProviderName): ProviderName {
  if (name === null) return fallback;
  if ((PROVIDER_NAMES as readonly string[]).includes(name)) return name as ProviderName;
  throw new Error(`${ticker}: price_provider "${name}" is not one of ${PROVIDER_NAMES.join(', ')}`);
}

/** The tick for a quote and the next volume watermark (see the module comment). */
export function quoteTick(
  securityId: number,
  q: QuoteRow,
  prev: QuoteWatermark | undefined,
): { tick: TickInsert; next: QuoteWatermark } {
  const session = sessionDateOf(q.ts);
  const ts = q.ts.toISOString();
  let size = 0;
  let next: QuoteWatermark = prev ?? { session, volume: 0, ts };
  if (q.volume !== null) {
    if (!prev || prev.session < session) {
      size = q.volume;
      next = { session, volume: q.volume, ts };
    } else if (prev.session === session && ts > prev.ts) {
      size = Math.max(0, q.volume - prev.volume);
      next = { session, volume: Math.max(prev.volume, q.volume), ts };
    }
  }
  return {
    tick: {
      securityId,
      ts: q.ts,
      seq: QUOTE_SEQ,
      origin: 'quote',
      price: decimalText(q.price),
      size,
      bid: q.bid === null ? null : decimalText(q.bid),
      ask: q.ask === null ? null : decimalText(q.ask),
    },
    next,
  };
}

/**
 * Fetches, validates and stores one quote. Provider failures are rethrown (the caller's queue
 * decides: back off, retry or fail); an error or throttle body that came with one is quarantined
 * first.
 */
export async function ingestQuote(
  deps: Deps,
  security: IngestSecurity,
  primary: ProviderName,
  meta: {
    jobName: string | null;
    jobId: string | null;
    log?: (line: string) => void | Promise<void>;
    /**
     * Called before each provider is asked (the primary, then any fallback); throwing a
     * ProviderError counts as that provider's failure. The API takes a slot of the provider's
     * shared request quota here (jobs/lane-quota.ts); a lane job's own slot is taken by BullMQ.
     */
    beforeCall?: (provider: ProviderName) => Promise<void>;
  },
): Promise<QuoteIngestResult> {
  const qmeta = (source: string): QuarantineMeta => ({
    source,
    jobName: meta.jobName,
    jobId: meta.jobId,
    symbol: security.ticker,
  });
  let fetched: { provider: ProviderName; value: ProviderQuote };
  try {
    fetched = await deps.providers.withFallback(
      primary,
      async (p) => {
        await meta.beforeCall?.(p.name);
        return p.quote(security.ticker);
      },
      (from, err) =>
        void meta.log?.(`${security.ticker}: ${from} failed (${err.message}); trying the next provider`),
    );
  } catch (err) {
    if (err instanceof ProviderError && err.raw !== undefined)
      await deps.repos.quarantine.insert([
        {
          ...qmeta(err.provider),
          entity: 'response',
          reason: `error_body: ${err.message}`,
          raw: err.raw,
        },
      ]);
    throw err;
  }
  const { provider, value } = fetched;
  const checked = validateQuote(value, { security, now: deps.clock.now() });
  const quarantine = quarantineRows(checked.rejected, qmeta(provider));
  const result: QuoteIngestResult = {
    symbol: security.ticker,
    provider,
    accepted: 0,
    duplicates: 0,
    quarantined: checked.rejected.length,
    reasons: checked.rejected.map((r) => r.reason),
  };
  const row = checked.accepted[0];
  if (!row) {
    await deps.repos.quarantine.insert(quarantine);
    return result;
  }
  const stored = await deps.repos.ticks.storeQuote({
    securityId: security.id,
    ts: row.ts,
    build: (prev) => quoteTick(security.id, row, prev),
    quarantine,
  });
  if (stored.inserted || stored.corrected) result.accepted = 1;
  else if (stored.conflict) {
    result.quarantined += 1;
    result.reasons.push('conflicting_duplicate: a stored tick of another origin holds this key');
  } else result.duplicates = 1;
  const tick = await deps.repos.ticks.at(security.id, row.ts, QUOTE_SEQ);
  result.tick = { ts: row.ts, price: tick?.price ?? stored.tick.price };
  return result;
}

/**
 * Whether a stored tick time is as fresh as any price can be at `now`: during a session, younger
 * than `maxAgeMs`; while the market is closed (weekend, holiday, before the open, after the close),
 * at or after the last completed session's close − `maxAgeMs` (nothing newer can have traded, so a
 * fetch would only return the same close again).
 */
export function storedQuoteIsCurrent(tickTs: Date, now: Date, maxAgeMs: number): boolean {
  const t = now.getTime();
  const today = sessionFor(sessionDateOf(now));
  if (today && t >= today.openAt.getTime() && t < today.closeAt.getTime())
    return t - tickTs.getTime() < maxAgeMs;
  return tickTs.getTime() >= lastCompletedSession(now).closeAt.getTime() - maxAgeMs;
}

/**
 * The latest price of a symbol for GET /stocks/{symbol}: the latest stored tick when current
 * (storedQuoteIsCurrent with `maxAgeSeconds`, default config.providers.quoteStaleSeconds), else a
 * quote fetched through the security's providers, validated and stored. When the fetched quote is
 * quarantined, the latest stored tick is returned if there is one; with none, the quarantine
 * reason is thrown. undefined when the symbol is unknown.
 */
export async function refreshQuote(
  deps: Deps,
  symbol: string,
  opts?: { maxAgeSeconds?: number; beforeCall?: (provider: ProviderName) => Promise<void> },
): Promise<{ symbol: string; timestamp: Date; price: string; source: 'stored' | 'fetched' } | undefined> {
  const security = (await deps.repos.securities.forIngest([symbol])).get(symbol);
  if (!security) return undefined;
  const maxAge = opts?.maxAgeSeconds ?? deps.config.providers.quoteStaleSeconds;
  const latest = await deps.repos.ticks.latest(security.id);
  const stored = latest
    ? { symbol, timestamp: latest.ts, price: latest.price, source: 'stored' as const }
    : undefined;
  if (latest && storedQuoteIsCurrent(latest.ts, deps.clock.now(), maxAge * 1000)) return stored;
  const res = await ingestQuote(
    deps,
    security,
    providerNameOf(security.provider, symbol, deps.config.market.provider),
    {
      jobName: null,
      jobId: null,
      log: (line) => deps.logger.info({ symbol }, line),
      ...(opts?.beforeCall ? { beforeCall: opts.beforeCall } : {}),
    },
  );
  if (res.tick) {
    // A newer tick (e.g. from a bar backfill) may already be stored; answer with the latest.
    if (latest && latest.ts > res.tick.ts) return stored;
    return { symbol, timestamp: res.tick.ts, price: res.tick.price, source: 'fetched' };
  }
  if (stored) return stored;
  // Nothing usable to answer with: the provider's answer was bad data, which is its failure.
  throw new ProviderPermanentError(
    res.provider,
    `${symbol}: the quote was quarantined (${res.reasons.join('; ')})`,
  );
}
