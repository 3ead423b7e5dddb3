/**
 * The watch list over HTTP: read it with `results:read`, change it with `jobs:write` (it decides
 * what `prices.fetch` polls, so it is a job-steering action). PUT and DELETE are idempotent; the
 * answer says whether anything changed. The caller's client id (or token subject) is recorded
 * as `added_by`.
 */
import type { Request } from 'express';
import { z } from 'zod';
import type { Deps } from '../../core/deps.ts';
import { defineRoute, Reply, type RouteDef } from '../http.ts';
import { securityOr404, symbolParams } from './prices.ts';

const WatchlistEntry = z
  .object({
    symbol: z.string().openapi({ example: 'AAPL' }),
    provider: z.string().openapi({ example: 'yahoo', description: "The security's price provider." }),
    added_at: z.string().openapi({ example: '2024-03-01T14:30:00.000Z' }),
    added_by: z.string().nullable().openapi({ description: 'Client id or subject of whoever added it.' }),
  })
  .openapi('WatchlistEntry');

const Watchlist = z.object({ count: z.number().int(), data: z.array(WatchlistEntry) }).openapi('Watchlist');

const WatchlistAdded = z
  .object({
    symbol: z.string(),
    added: z.boolean().openapi({ description: 'False if it was already there.' }),
  })
  .openapi('WatchlistAdded');

const WatchlistRemoved = z
  .object({ symbol: z.string(), removed: z.boolean().openapi({ description: 'False if it was not there.' }) })
  .openapi('WatchlistRemoved');

/** Who is calling, as the bearer guard verified it (res.locals.principal). */
function caller(req: Request): string | null {
  const p = req.res?.locals.principal;
  return p?.clientId ?? p?.subject ?? null;
}

export function watchlistRoutes(deps: Deps): RouteDef[] {
  const { repos } = deps;

  return [
    defineRoute({
      method: 'get',
      path: '/api/watchlist',
      summary: 'The watch list',
      description: 'Securities `prices.fetch` polls in market hours, in ticker order.',
      tags: ['watchlist'],
      access: 'results:read',
      response: Watchlist,
      async handler() {
        const entries = await repos.watchlist.list();
        return {
          count: entries.length,
          data: entries.map((e) => ({
            symbol: e.ticker,
            provider: e.provider ?? deps.config.market.provider,
            added_at: e.addedAt.toISOString(),
            added_by: e.addedBy,
          })),
        };
      },
    }),

    defineRoute({
      method: 'put',
      path: '/api/watchlist/{symbol}',
      summary: 'Add a security to the watch list',
      description: '201 when added, 200 when it was already on the list (unchanged).',
      tags: ['watchlist'],
      access: 'jobs:write',
      params: symbolParams,
      response: WatchlistAdded,
      otherResponses: { 201: { description: 'Added.', schema: WatchlistAdded } },
      errors: [404],
      async handler({ params, req }) {
        const sec = await securityOr404(deps, params.symbol);
        const added = await repos.watchlist.add(sec.id, caller(req));
        return new Reply(added ? 201 : 200, { symbol: sec.ticker, added });
      },
    }),

    defineRoute({
      method: 'delete',
      path: '/api/watchlist/{symbol}',
      summary: 'Remove a security from the watch list',
      description: 'Idempotent: `removed` is false when it was not on the list.',
      tags: ['watchlist'],
      access: 'jobs:write',
      params: symbolParams,
      response: WatchlistRemoved,
      errors: [404],
      async handler({ params }) {
        const sec = await securityOr404(deps, params.symbol);
        const removed = await repos.watchlist.remove(sec.id);
        return { symbol: sec.ticker, removed };
      },
    }),
  ];
}
