/**
 * The watch list (`watchlist`): the securities `prices.fetch` polls in market hours. One row per
 * security; adding twice and removing what is absent are no-ops that say so.
 */
import type { Knex } from '../knex.ts';

export interface WatchlistEntry {
  securityId: number;
  ticker: string;
  /** The security's own price provider (`securities.price_provider`). */
  provider: string | null;
  addedAt: Date;
  /** Who added it (a client id or token subject), when known. */
  addedBy: string | null;
}

interface WatchlistRow {
  security_id: number;
  ticker: string;
  price_provider: string | null;
  added_at: Date;
  added_by: string | null;
}

export function createWatchlistRepository(db: Knex) {
  return {
    /** Every watched security, in ticker order. */
    async list(): Promise<WatchlistEntry[]> {
      const rows = (await db('watchlist as w')
        .join('securities as s', 's.id', 'w.security_id')
        .select('w.security_id', 's.ticker', 's.price_provider', 'w.added_at', 'w.added_by')
        .orderBy('s.ticker')) as WatchlistRow[];
      return rows.map((r) => ({
        securityId: r.security_id,
        ticker: r.ticker,
        provider: r.price_provider,
        addedAt: r.added_at,
        addedBy: r.added_by,
      }));
    },

    /** The watch list as prices.fetch needs it: active securities with their provider, by ticker. */
    async activeWithProviders(): Promise<{ securityId: number; ticker: string; provider: string | null }[]> {
      const res = await db.raw<{ rows: { securityId: number; ticker: string; provider: string | null }[] }>(
        `select s.id as "securityId", s.ticker, s.price_provider as provider
           from watchlist w join securities s on s.id = w.security_id
          where s.status = 'ACTIVE'
          order by s.ticker`,
      );
      return res.rows;
    },

    /** Adds a security; true if it was not on the list (an existing entry keeps its added_at/by). */
    async add(securityId: number, addedBy: string | null): Promise<boolean> {
      const rows = await db('watchlist')
        .insert({ security_id: securityId, added_by: addedBy })
        .onConflict('security_id')
        .ignore()
        .returning('security_id');
      return rows.length > 0;
    },

    /** Removes a security; true if it was on the list. */
    async remove(securityId: number): Promise<boolean> {
      const n = await db('watchlist').where({ security_id: securityId }).del();
      return n > 0;
    },
  };
}

export type WatchlistRepository = ReturnType<typeof createWatchlistRepository>;
