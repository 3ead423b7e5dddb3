import type { Deps } from '../../core/deps.ts';
import type { JobPayload } from '../catalogue.ts';
import type { JobContext } from '../types.ts';
// PLACEHOLDER (replaced by the rollups helper).
export async function maintenanceRetention(
  _deps: Deps,
  _payload: JobPayload<'maintenance.retention'>,
  _ctx: JobContext,
): Promise<unknown> {
  throw new Error('maintenance.retention not built yet');
}
