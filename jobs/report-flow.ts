/**
 * Rendering the variance workbook of a period (issue 10), for the demo and for callers that
 * chain it after variance.quarterly:
 * - `addVarianceReport(queues, period)` enqueues reports.variance-excel for the period (the
 *   variance rows must be there: run it after variance.quarterly has completed, e.g. from that
 *   job's completion or with `ctx.enqueue('reports.variance-excel', period)` at its end);
 * - `addVarianceThenReport(config, connection, period)` adds both as one BullMQ flow:
 *   reports.variance-excel is the parent of variance.quarterly, so it runs only after the
 *   attribution completed (a permanently failed attribution leaves the report waiting-children,
 *   as in the generate pipeline; retrying the failed child carries it through).
 */
import { FlowProducer, type Job, type JobNode } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from '../core/config.ts';
import type { Logger } from '../core/logger.ts';
import { redisLogger, watchRedisErrors } from '../core/redis.ts';
import { parsePayload, type JobInput } from './catalogue.ts';
import { jobOptions } from './options.ts';
import type { QueueSet } from './queues.ts';

export type ReportPeriod = JobInput<'reports.variance-excel'>;

export async function addVarianceReport(queues: QueueSet, period: ReportPeriod): Promise<Job> {
  return queues.enqueue('reports.variance-excel', parsePayload('reports.variance-excel', period));
}

export async function addVarianceThenReport(
  config: Pick<Config, 'queue' | 'logLevel'>,
  connection: Redis,
  period: ReportPeriod,
  logger?: Logger,
  /** Fixed job ids (`<jobId>` for the report, `<jobId>-variance` for the attribution), so a retried caller adds nothing twice. */
  jobId?: string,
): Promise<JobNode> {
  const flow = new FlowProducer({ connection, prefix: config.queue.prefix });
  watchRedisErrors(flow, redisLogger(config, logger), 'flow producer');
  try {
    return await flow.add({
      name: 'reports.variance-excel',
      queueName: 'reports.variance-excel',
      data: parsePayload('reports.variance-excel', period),
      opts: { ...jobOptions['reports.variance-excel'].job, ...(jobId ? { jobId } : {}) },
      children: [
        {
          name: 'variance.quarterly',
          queueName: 'variance.quarterly',
          data: parsePayload('variance.quarterly', period),
          opts: { ...jobOptions['variance.quarterly'].job, ...(jobId ? { jobId: `${jobId}-variance` } : {}) },
        },
      ],
    });
  } finally {
    await flow.close();
  }
}
