/**
 * The registry: every job name in the catalogue has exactly one processor. Checked at boot, so a
 * missing or duplicate handler stops the worker with a message that says what to add.
 */
import type { Deps } from '../core/deps.ts';
import { jobCatalogue, jobNames, type JobName, type JobPayload } from './catalogue.ts';
import { jobOptions } from './options.ts';
import { analyticsIndicators, analyticsRisk } from './processors/analytics.ts';
import { rollup1d, rollup5m } from './processors/bars-rollup.ts';
import { dataGenerate } from './processors/data-generate.ts';
import { fxRates } from './processors/fx-rates.ts';
import { corporateActionsApply } from './processors/books.ts';
import { holdingsSnapshot, varianceQuarterly } from './processors/holdings.ts';
import { maintenanceRetention } from './processors/maintenance.ts';
import { marginBatch, marginNightly } from './processors/margin.ts';
import { pricesBackfill, pricesFetch, pricesQuote } from './processors/prices.ts';
import { reportsVarianceExcel } from './processors/reports.ts';
import type { JobContext } from './types.ts';

type AnyProcessor = (deps: Deps, payload: never, ctx: JobContext) => Promise<unknown>;
type Registration<N extends JobName = JobName> = {
  name: N;
  processor: (deps: Deps, payload: JobPayload<N>, ctx: JobContext) => Promise<unknown>;
};

const register = <N extends JobName>(name: N, processor: Registration<N>['processor']): Registration =>
  ({ name, processor }) as unknown as Registration;

/** One line per job. */
export const registrations: Registration[] = [
  register('data.generate', dataGenerate),
  register('bars.rollup-5m', rollup5m),
  register('bars.rollup-1d', rollup1d),
  register('prices.fetch', pricesFetch),
  register('prices.quote', pricesQuote),
  register('prices.backfill', pricesBackfill),
  register('fx.rates', fxRates),
  register('analytics.indicators', analyticsIndicators),
  register('analytics.risk', analyticsRisk),
  register('corporate-actions.apply', corporateActionsApply),
  register('holdings.snapshot', holdingsSnapshot),
  register('variance.quarterly', varianceQuarterly),
  register('margin.nightly', marginNightly),
  register('margin.batch', marginBatch),
  register('reports.variance-excel', reportsVarianceExcel),
  register('maintenance.retention', maintenanceRetention),
];

/** Builds the name → processor map, failing on a missing, duplicate or unknown registration. */
export function buildRegistry(entries: Registration[] = registrations): Map<JobName, AnyProcessor> {
  const map = new Map<JobName, AnyProcessor>();
  const problems: string[] = [];
  for (const { name, processor } of entries) {
    if (!Object.hasOwn(jobCatalogue, name))
      problems.push(`"${name}" is registered but not in jobs/catalogue.ts`);
    else if (map.has(name)) problems.push(`"${name}" has two processors in jobs/registry.ts; keep one`);
    else map.set(name, processor as AnyProcessor);
  }
  for (const name of jobNames) {
    if (!map.has(name))
      problems.push(`"${name}" has no processor: add register('${name}', …) in jobs/registry.ts`);
    if (!Object.hasOwn(jobOptions, name))
      problems.push(`"${name}" has no options: add it to jobs/options.ts`);
  }
  if (problems.length) throw new Error(`Job registry is inconsistent:\n  ${problems.join('\n  ')}`);
  return map;
}
