// PLACEHOLDER (replaced by the api helper).
import type { Knex } from '../knex.ts';
export function createWatchlistRepository(_db: Knex) {
  return {};
}
export type WatchlistRepository = ReturnType<typeof createWatchlistRepository>;
