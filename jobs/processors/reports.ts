/** reports.variance-excel (issue 10): being built. */
import { UnrecoverableError } from 'bullmq';
import type { Deps } from '../../core/deps.ts';
import type { JobPayload } from '../catalogue.ts';
import type { JobContext } from '../types.ts';

export async function reportsVarianceExcel(
  _deps: Deps,
  _payload: JobPayload<'reports.variance-excel'>,
  _ctx: JobContext,
): Promise<never> {
  throw new UnrecoverableError('reports.variance-excel is not built yet');
}
