/**
 * Seed 0's stock endpoints: `GET /stocks/{symbol}` (the latest price, fetched from the provider
 * and stored first when the stored one is stale) and `GET /stocks` (every stored stock with its
 * latest price), in the seed's record shape `{ symbol, timestamp, current_price }`.
 *
 * current_price leaves as a JSON number, converted once at the edge with Number() from the
 * numeric string pg returns (never summed or multiplied here). A double holds 15 significant
 * digits exactly, so every stored price below 10^7 (8 decimals) round-trips digit for digit and
 * JSON.stringify writes it back unchanged ('187.12345678' → 187.12345678); a larger one becomes
 * its nearest double, which is display-only. A stored value that is not a finite number is a
 * 500, never sent mangled.
 *
 * Timestamps are ISO-8601 UTC with a Z, without milliseconds when they are zero (the seed's
 * `2024-03-28T10:30:00Z`).
 */
import { z } from 'zod';
import type { Deps } from '../../core/deps.ts';
import { decimalInt } from '../../core/input.ts';
import { refreshQuote } from '../../core/ingest/quotes.ts';
import { ProviderError, ProviderRateLimitError } from '../../core/providers/types.ts';
import { LaneQuotaError, laneQuota } from '../../jobs/lane-quota.ts';
import type { QueueSet } from '../../jobs/queues.ts';
import { defineRoute, HttpError, NotFoundError, type RouteDef } from '../http.ts';
import { symbolParams } from './prices.ts';

const MAX_PAGE = 500;

const StockQuote = z
  .object({
    symbol: z.string().openapi({ example: 'AAPL' }),
    timestamp: z
      .string()
      .openapi({ example: '2024-03-28T10:30:00Z', description: 'When the price was traded, UTC.' }),
    current_price: z.number().openapi({ example: 175.5 }),
  })
  .openapi('StockQuote');

const StockRecord = z
  .object({
    symbol: z.string().openapi({ example: 'AAPL' }),
    timestamp: z.string().nullable().openapi({ example: '2024-03-28T10:30:00Z' }),
    current_price: z.number().nullable().openapi({ example: 175.5 }),
  })
  .openapi('StockRecord', { description: 'A stock and its newest stored price (null when none yet).' });

/** ISO-8601 UTC; whole seconds are written as the seed writes them (`…:00Z`, no `.000`). */
export function isoZ(ts: Date): string {
  return ts.toISOString().replace(/\.000Z$/, 'Z');
}

/** A stored numeric as a JSON number, refusing anything that would not survive the trip. */
function priceNumber(v: string, symbol: string): number {
  const n = Number(v);
  if (!Number.isFinite(n)) throw new Error(`stored price of ${symbol} is not a finite number: ${v}`);
  return n;
}

/**
 * A provider failure as the HTTP answer: throttled → 503 with Retry-After (whole seconds, at
 * least 1); anything else (5xx, timeout, bad body, the provider not knowing the symbol) → 502,
 * since the failure is upstream. The message names the provider and its cause.
 */
function providerFailure(
  err: ProviderError,
  symbol: string,
  res: { setHeader(k: string, v: string): unknown } | undefined,
): HttpError {
  if (err instanceof ProviderRateLimitError) {
    const seconds = Math.max(1, Math.ceil(err.retryAfterMs / 1000));
    res?.setHeader('Retry-After', String(seconds));
    return new HttpError(
      503,
      'provider_rate_limited',
      `price provider is rate-limiting requests for "${symbol}"; retry after ${seconds} s (${err.message})`,
    );
  }
  return new HttpError(
    502,
    'provider_error',
    `could not fetch a fresh price for "${symbol}": ${err.message}`,
  );
}

export function stocksRoutes(deps: Deps, queues: QueueSet): RouteDef[] {
  const { repos, config } = deps;
  // Provider calls made here count against the same per-provider quota as the lane workers.
  const quota = laneQuota(config, deps.redis, queues);

  return [
    defineRoute({
      method: 'get',
      path: '/stocks/{symbol}',
      summary: 'Latest price of a stock',
      description: `The latest stored price. When it is older than QUOTE_STALE_SECONDS (${config.providers.quoteStaleSeconds} s here), a fresh quote is fetched from the security's provider and stored first. 502 when the provider fails, 503 with Retry-After when it is rate-limiting or its request quota (\`*_REQUESTS_PER_MINUTE\`, shared with the \`prices.quote\` workers) is used up.`,
      tags: ['stocks'],
      access: 'results:read',
      params: symbolParams,
      response: StockQuote,
      errors: [404, 502, 503],
      async handler({ params, req }) {
        let quote;
        try {
          quote = await refreshQuote(deps, params.symbol, {
            maxAgeSeconds: config.providers.quoteStaleSeconds,
            beforeCall: (provider) => quota.take(provider),
          });
        } catch (err) {
          // The provider itself throttled us: pause its lane for the workers too, as they would.
          if (err instanceof ProviderRateLimitError && !(err instanceof LaneQuotaError))
            await quota.pause(err.provider, err.retryAfterMs);
          if (err instanceof ProviderError) throw providerFailure(err, params.symbol, req.res);
          throw err;
        }
        if (!quote) throw new NotFoundError(`unknown symbol "${params.symbol}"`);
        return {
          symbol: quote.symbol,
          timestamp: isoZ(quote.timestamp),
          current_price: priceNumber(quote.price, quote.symbol),
        };
      },
    }),

    defineRoute({
      method: 'get',
      path: '/stocks',
      summary: 'Stored stocks with their latest prices',
      description: `Every security of type EQUITY in ticker order, with its newest stored price and when it was traded (null when none is stored yet). Nothing is fetched. Page with \`limit\` (at most ${MAX_PAGE}) and \`offset\`.`,
      tags: ['stocks'],
      access: 'results:read',
      query: z
        .object({
          limit: decimalInt({ min: 1, max: MAX_PAGE, default: 100 }),
          offset: decimalInt({ min: 0, max: 1_000_000_000, default: 0 }),
        })
        .strict(),
      response: z.array(StockRecord).openapi('StockList'),
      async handler({ query }) {
        const rows = await repos.bars.latestPrices({
          securityType: 'EQUITY',
          limit: query.limit,
          offset: query.offset,
        });
        return rows.map((r) => ({
          symbol: r.ticker,
          timestamp: r.ts ? isoZ(r.ts) : null,
          current_price: r.price === null ? null : priceNumber(r.price, r.ticker),
        }));
      },
    }),
  ];
}
