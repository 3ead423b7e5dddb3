/**
 * Builds the dependencies both entry points (API and worker) share, from one function, so a
 * processor or route gets exactly what a test gets: config, logger, db, repositories, clock.
 */
import type { Redis } from 'ioredis';
import { loadConfig, type Config } from './config.ts';
import { createDb, type Knex } from './db/knex.ts';
import { createRepositories, type Repositories } from './db/repositories/index.ts';
import { createLogger, type Logger } from './logger.ts';
import { createProviders } from './providers/index.ts';
import type { ProviderSet } from './providers/types.ts';
import { createRedis } from './redis.ts';

export interface Clock {
  now(): Date;
}

export const systemClock: Clock = { now: () => new Date() };

export interface Deps {
  config: Config;
  logger: Logger;
  /** Only repositories and migrations touch this; processors and routes use `repos`. */
  db: Knex;
  repos: Repositories;
  /** A general-purpose Redis connection (not for BullMQ blocking workers). */
  redis: Redis;
  clock: Clock;
  /** Price sources (synthetic, Yahoo, Alpha Vantage) and the fallback chain between them. */
  providers: ProviderSet;
}

export function buildDeps(opts: {
  name: string;
  config?: Config;
  clock?: Clock;
  poolMax?: number;
  /** Injected into provider HTTP clients (tests serve recorded responses). */
  fetch?: typeof fetch;
}): Deps {
  const config = opts.config ?? loadConfig();
  const logger = createLogger(config, opts.name);
  const db = createDb(config, opts.poolMax === undefined ? {} : { poolMax: opts.poolMax });
  const redis = createRedis(config, { logger, name: 'redis' });
  const clock = opts.clock ?? systemClock;
  const providers = createProviders(config, { clock, ...(opts.fetch ? { fetch: opts.fetch } : {}) });
  return { config, logger, db, repos: createRepositories(db), redis, clock, providers };
}

export async function closeDeps(deps: Deps): Promise<void> {
  await Promise.allSettled([deps.db.destroy(), deps.redis.quit()]);
}
