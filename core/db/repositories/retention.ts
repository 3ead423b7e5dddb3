// PLACEHOLDER (replaced by a helper).
import type { Knex } from '../knex.ts';
export function createRetentionRepository(_db: Knex) {
  return {};
}
export type RetentionRepository = ReturnType<typeof createRetentionRepository>;
