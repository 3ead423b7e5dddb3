/** holdings.snapshot and variance.quarterly (issue 9): being built. */
import { UnrecoverableError } from 'bullmq';
import type { Deps } from '../../core/deps.ts';
import type { JobPayload } from '../catalogue.ts';
import type { JobContext } from '../types.ts';

export async function holdingsSnapshot(
  _deps: Deps,
  _payload: JobPayload<'holdings.snapshot'>,
  _ctx: JobContext,
): Promise<never> {
  throw new UnrecoverableError('holdings.snapshot is not built yet');
}

export async function varianceQuarterly(
  _deps: Deps,
  _payload: JobPayload<'variance.quarterly'>,
  _ctx: JobContext,
): Promise<never> {
  throw new UnrecoverableError('variance.quarterly is not built yet');
}
