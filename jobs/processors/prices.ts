import type { Deps } from '../../core/deps.ts';
import type { JobPayload } from '../catalogue.ts';
import type { JobContext } from '../types.ts';
// PLACEHOLDER (replaced by the ingest helper).
export async function pricesFetch(
  _deps: Deps,
  _payload: JobPayload<'prices.fetch'>,
  _ctx: JobContext,
): Promise<unknown> {
  throw new Error('prices.fetch not built yet');
}
// PLACEHOLDER (replaced by the ingest helper).
export async function pricesQuote(
  _deps: Deps,
  _payload: JobPayload<'prices.quote'>,
  _ctx: JobContext,
): Promise<unknown> {
  throw new Error('prices.quote not built yet');
}
// PLACEHOLDER (replaced by the ingest helper).
export async function pricesBackfill(
  _deps: Deps,
  _payload: JobPayload<'prices.backfill'>,
  _ctx: JobContext,
): Promise<unknown> {
  throw new Error('prices.backfill not built yet');
}
