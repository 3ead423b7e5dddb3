/**
 * data.generate: the deterministic synthetic dataset (see core/generator/dataset.ts). A payload
 * that cannot work (an end date in the future, more tick sessions than the range holds) fails
 * permanently; database errors are rethrown so the queue retries, and the retry resumes from the
 * tick chunks already checkpointed.
 */
import { UnrecoverableError } from 'bullmq';
import type { Deps } from '../../core/deps.ts';
import {
  generateDataset,
  GeneratePayloadError,
  type GenerateResult,
  type GeneratorInternals,
} from '../../core/generator/dataset.ts';
import type { JobPayload } from '../catalogue.ts';
import type { JobContext } from '../types.ts';

export type DataGenerateResult = GenerateResult;

export async function dataGenerate(
  deps: Deps,
  payload: JobPayload<'data.generate'>,
  ctx: JobContext,
  internal: GeneratorInternals = {},
): Promise<DataGenerateResult> {
  try {
    return await generateDataset(deps, payload, ctx, internal);
  } catch (err) {
    if (err instanceof GeneratePayloadError) throw new UnrecoverableError(err.message);
    throw err;
  }
}
