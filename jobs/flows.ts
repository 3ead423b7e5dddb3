/**
 * The offline pipeline as one BullMQ flow: data.generate → bars.rollup-5m → bars.rollup-1d →
 * analytics.indicators → analytics.risk. In a flow a parent runs after its children, so the tree
 * is inverted: analytics.risk is the root and data.generate the deepest leaf. Each rollup reads
 * the range it must cover from the step before it (ctx.upstreamResults), so only the generated
 * range is rolled; the analytics steps cover every security.
 */
import { FlowProducer, type JobNode } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from '../core/config.ts';
import type { Logger } from '../core/logger.ts';
import { redisLogger, watchRedisErrors } from '../core/redis.ts';
import { parsePayload, type JobInput } from './catalogue.ts';
import { jobOptions } from './options.ts';

export async function addGeneratePipeline(
  config: Pick<Config, 'queue' | 'logLevel'>,
  connection: Redis,
  generate: JobInput<'data.generate'>,
  logger?: Logger,
): Promise<JobNode> {
  const flow = new FlowProducer({ connection, prefix: config.queue.prefix });
  watchRedisErrors(flow, redisLogger(config, logger), 'flow producer');
  try {
    return await flow.add({
      name: 'analytics.risk',
      queueName: 'analytics.risk',
      data: parsePayload('analytics.risk', {}),
      opts: jobOptions['analytics.risk'].job,
      children: [
        {
          name: 'analytics.indicators',
          queueName: 'analytics.indicators',
          data: parsePayload('analytics.indicators', {}),
          opts: jobOptions['analytics.indicators'].job,
          children: [
            {
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
            },
          ],
        },
      ],
    });
  } finally {
    await flow.close();
  }
}
