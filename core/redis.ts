import { Redis } from 'ioredis';
import type { Config } from './config.ts';

/**
 * A new ioredis connection. BullMQ workers need `maxRetriesPerRequest: null` (blocking
 * commands must wait through reconnects); queues and the API fail fast instead.
 */
export function createRedis(config: Pick<Config, 'redis'>, opts: { forWorker?: boolean } = {}): Redis {
  return new Redis(config.redis.url, {
    maxRetriesPerRequest: opts.forWorker ? null : 3,
    enableReadyCheck: true,
    lazyConnect: false,
  });
}
