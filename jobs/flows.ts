/**
 * The first pipeline as one BullMQ flow: data.generate → bars.rollup-5m → bars.rollup-1d. In a
 * flow a parent runs after its children, so the tree is inverted: rollup-1d is the root, its
 * child rollup-5m, whose child is data.generate. Each step reads the range it must cover from the
 * step before it (ctx.upstreamResults), so only the generated range is rolled.
 */
import { FlowProducer, type JobNode } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from '../core/config.ts';
import { parsePayload, type JobInput } from './catalogue.ts';
import { jobOptions } from './options.ts';

export async function addGeneratePipeline(
  config: Pick<Config, 'queue'>,
  connection: Redis,
  generate: JobInput<'data.generate'>,
): Promise<JobNode> {
  const flow = new FlowProducer({ connection, prefix: config.queue.prefix });
  try {
    return await flow.add({
      name: 'bars.rollup-1d',
      queueName: 'bars.rollup-1d',
      data: {},
      opts: jobOptions['bars.rollup-1d'].job,
      children: [
        {
          name: 'bars.rollup-5m',
          queueName: 'bars.rollup-5m',
          data: {},
          opts: jobOptions['bars.rollup-5m'].job,
          children: [
            {
              name: 'data.generate',
              queueName: 'data.generate',
              data: parsePayload('data.generate', generate),
              opts: jobOptions['data.generate'].job,
            },
          ],
        },
      ],
    });
  } finally {
    await flow.close();
  }
}
