// PLACEHOLDER (replaced by a helper).
import type { Knex } from '../knex.ts';
export function createAnalyticsRepository(_db: Knex) {
  return {};
}
export type AnalyticsRepository = ReturnType<typeof createAnalyticsRepository>;
