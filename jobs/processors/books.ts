/** corporate-actions.apply (issue 9): being built. */
import { UnrecoverableError } from 'bullmq';
import type { Deps } from '../../core/deps.ts';
import type { JobPayload } from '../catalogue.ts';
import type { JobContext } from '../types.ts';

export async function corporateActionsApply(
  _deps: Deps,
  _payload: JobPayload<'corporate-actions.apply'>,
  _ctx: JobContext,
): Promise<never> {
  throw new UnrecoverableError('corporate-actions.apply is not built yet');
}
