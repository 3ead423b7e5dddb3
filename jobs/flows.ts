/**
 * The offline pipeline as one BullMQ flow: data.generate → bars.rollup-5m → bars.rollup-1d →
 * analytics.indicators → analytics.risk, and with `books` (the demo) → corporate-actions.apply →
 * holdings.snapshot → variance.quarterly → reports.variance-excel (the quarter's workbook). In a flow a parent runs after its children, so the tree
 * is inverted: the last step is the root and data.generate the deepest leaf. Each rollup reads
 * the range it must cover from the step before it (ctx.upstreamResults), so only the generated
 * range is rolled; the analytics steps cover every security; the books steps take their period
 * explicitly (core/generator/periods.ts booksPeriod: the range the plan will generate and its
 * last complete quarter), so each can be rerun alone with the same payload.
 */
import { FlowProducer, type FlowJob, type JobNode } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from '../core/config.ts';
import type { BooksPeriod } from '../core/generator/periods.ts';
import type { Logger } from '../core/logger.ts';
import { redisLogger, watchRedisErrors } from '../core/redis.ts';
import { parsePayload, type JobInput, type JobName } from './catalogue.ts';
import { jobOptions } from './options.ts';

/** The steps, first to last (the flow's deepest leaf first, its root last). */
export function generatePipelineSteps(
  generate: JobInput<'data.generate'>,
  books?: BooksPeriod,
): { name: JobName; data: Record<string, unknown> }[] {
  const steps: { name: JobName; data: Record<string, unknown> }[] = [
    { name: 'data.generate', data: parsePayload('data.generate', generate) },
    { name: 'bars.rollup-5m', data: {} },
    { name: 'bars.rollup-1d', data: {} },
    { name: 'analytics.indicators', data: parsePayload('analytics.indicators', {}) },
    { name: 'analytics.risk', data: parsePayload('analytics.risk', {}) },
  ];
  if (books) {
    steps.push(
      {
        name: 'corporate-actions.apply',
        data: parsePayload('corporate-actions.apply', { asOf: books.asOf }),
      },
      {
        name: 'holdings.snapshot',
        data: parsePayload('holdings.snapshot', { from: books.from, to: books.to }),
      },
    );
    if (books.quarter !== null)
      steps.push(
        {
          name: 'variance.quarterly',
          data: parsePayload('variance.quarterly', { quarter: books.quarter }),
        },
        {
          name: 'reports.variance-excel',
          data: parsePayload('reports.variance-excel', { quarter: books.quarter }),
        },
      );
  }
  return steps;
}

/** The flow tree of those steps: each step is the parent of the one before it. */
export function generatePipelineTree(generate: JobInput<'data.generate'>, books?: BooksPeriod): FlowJob {
  let tree: FlowJob | undefined;
  for (const step of generatePipelineSteps(generate, books)) {
    tree = {
      name: step.name,
      queueName: step.name,
      data: step.data,
      opts: jobOptions[step.name].job,
      ...(tree ? { children: [tree] } : {}),
    };
  }
  if (!tree) throw new Error('the pipeline has no steps');
  return tree;
}

export async function addGeneratePipeline(
  config: Pick<Config, 'queue' | 'logLevel'>,
  connection: Redis,
  generate: JobInput<'data.generate'>,
  logger?: Logger,
  books?: BooksPeriod,
): Promise<JobNode> {
  const flow = new FlowProducer({ connection, prefix: config.queue.prefix });
  watchRedisErrors(flow, redisLogger(config, logger), 'flow producer');
  try {
    return await flow.add(generatePipelineTree(generate, books));
  } finally {
    await flow.close();
  }
}
