// PLACEHOLDER (replaced by a helper).
import type { Knex } from '../knex.ts';
export function createMarketRepository(_db: Knex) {
  return {};
}
export type MarketRepository = ReturnType<typeof createMarketRepository>;
