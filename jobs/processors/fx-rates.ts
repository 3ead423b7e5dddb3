import type { Deps } from '../../core/deps.ts';
import type { JobPayload } from '../catalogue.ts';
import type { JobContext } from '../types.ts';
// PLACEHOLDER (replaced by the ingest helper).
export async function fxRates(
  _deps: Deps,
  _payload: JobPayload<'fx.rates'>,
  _ctx: JobContext,
): Promise<unknown> {
  throw new Error('fx.rates not built yet');
}
