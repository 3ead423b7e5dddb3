/**
 * Where each job sits in the pipeline, for people: Bull Board lists queues grouped by stage, in
 * pipeline order, each with its catalogue description. A new job must be given a stage here (the
 * record is typed by the catalogue's names), so the board stays readable as jobs are added.
 */
import { jobCatalogue, jobNames, type JobName } from './catalogue.ts';
import { queueNamesOf } from './queues.ts';

/** Stages in pipeline order (SPEC §2). */
export const STAGES = ['ingest', 'bars', 'analytics', 'books', 'margin', 'reports', 'maintenance'] as const;
export type Stage = (typeof STAGES)[number];

export const stageOf: Record<JobName, Stage> = {
  'data.generate': 'ingest',
  'prices.fetch': 'ingest',
  'prices.quote': 'ingest',
  'prices.backfill': 'ingest',
  'fx.rates': 'ingest',
  'bars.rollup-5m': 'bars',
  'bars.rollup-1d': 'bars',
  'analytics.indicators': 'analytics',
  'analytics.risk': 'analytics',
  'corporate-actions.apply': 'books',
  'holdings.snapshot': 'books',
  'variance.quarterly': 'books',
  'margin.nightly': 'margin',
  'margin.batch': 'margin',
  'reports.variance-excel': 'reports',
  'maintenance.retention': 'maintenance',
};

export interface QueueInfo {
  queueName: string;
  job: JobName;
  stage: Stage;
  description: string;
}

/** Every queue with its stage and description, in stage order, then catalogue order. */
export function queuesByStage(): QueueInfo[] {
  const out: QueueInfo[] = [];
  for (const stage of STAGES) {
    for (const job of jobNames.filter((n) => stageOf[n] === stage)) {
      for (const queueName of queueNamesOf(job)) {
        const lane = queueName === job ? '' : ` Lane: ${queueName.slice(job.length + 1)}.`;
        out.push({ queueName, job, stage, description: `${jobCatalogue[job].description}${lane}` });
      }
    }
  }
  return out;
}
