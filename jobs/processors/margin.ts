/** margin.nightly and margin.batch (issue 11): being built. */
import { UnrecoverableError } from 'bullmq';
import type { Deps } from '../../core/deps.ts';
import type { JobPayload } from '../catalogue.ts';
import type { JobContext } from '../types.ts';

export async function marginNightly(
  _deps: Deps,
  _payload: JobPayload<'margin.nightly'>,
  _ctx: JobContext,
): Promise<never> {
  throw new UnrecoverableError('margin.nightly is not built yet');
}

export async function marginBatch(
  _deps: Deps,
  _payload: JobPayload<'margin.batch'>,
  _ctx: JobContext,
): Promise<never> {
  throw new UnrecoverableError('margin.batch is not built yet');
}
