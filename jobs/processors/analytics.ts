import type { Deps } from '../../core/deps.ts';
import type { JobPayload } from '../catalogue.ts';
import type { JobContext } from '../types.ts';
// PLACEHOLDER (replaced by the analytics helper).
export async function analyticsIndicators(
  _deps: Deps,
  _payload: JobPayload<'analytics.indicators'>,
  _ctx: JobContext,
): Promise<unknown> {
  throw new Error('analytics.indicators not built yet');
}
// PLACEHOLDER (replaced by the analytics helper).
export async function analyticsRisk(
  _deps: Deps,
  _payload: JobPayload<'analytics.risk'>,
  _ctx: JobContext,
): Promise<unknown> {
  throw new Error('analytics.risk not built yet');
}
