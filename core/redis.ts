import { Redis } from 'ioredis';
import type { Config } from './config.ts';
import { createLogger, type Logger } from './logger.ts';

/** Anything that reports failures as 'error' events: ioredis connections, BullMQ queues, workers, flows. */
export interface ErrorEmitter {
  on(event: 'error', listener: (err: Error) => void): unknown;
}

/** During an outage, errors after the first are counted and summarised once per this interval. */
export const REDIS_ERROR_SUMMARY_MS = 30_000;

interface ErrorLog {
  error(source: string, err: Error): void;
  ready(source: string): void;
}

const errorLogs = new WeakMap<Logger, ErrorLog>();
let fallbackLogger: Logger | undefined;

/**
 * One throttle per process logger for every Redis-backed emitter of that process: the first error
 * of an outage is logged at once (structured), later ones are counted and summarised at most once
 * per REDIS_ERROR_SUMMARY_MS, and the first connection ready again ends the outage with one line.
 * (A Redis outage otherwise makes every connection, queue and worker report each reconnect
 * attempt: thousands of lines a minute, or ioredis's "Unhandled error event" on stderr where no
 * listener is attached.)
 */
function errorLogFor(logger: Logger): ErrorLog {
  let log = errorLogs.get(logger);
  if (log) return log;
  let since = 0;
  let counted = 0;
  let last = '';
  const sources = new Set<string>();
  let timer: NodeJS.Timeout | undefined;
  const flush = (): void => {
    timer = undefined;
    if (counted === 0) return;
    logger.warn(
      { errors: counted, sources: [...sources], lastError: last, outageMs: Date.now() - since },
      `redis errors in the last ${REDIS_ERROR_SUMMARY_MS / 1000} s`,
    );
    counted = 0;
    sources.clear();
    timer = setTimeout(flush, REDIS_ERROR_SUMMARY_MS).unref();
  };
  log = {
    error(source, err) {
      last = err.message;
      if (since === 0) {
        since = Date.now();
        logger.warn(
          { source, err: err.message },
          'redis unreachable; reconnecting (further errors summarised)',
        );
        timer ??= setTimeout(flush, REDIS_ERROR_SUMMARY_MS).unref();
        return;
      }
      counted += 1;
      sources.add(source);
    },
    ready(source) {
      if (since === 0) return;
      logger.info({ source, outageMs: Date.now() - since, errors: counted }, 'redis reachable again');
      since = 0;
      counted = 0;
      sources.clear();
      if (timer) clearTimeout(timer);
      timer = undefined;
    },
  };
  errorLogs.set(logger, log);
  return log;
}

/** The logger Redis errors go to: the given one, or a process-wide one built from the config. */
export function redisLogger(config: Pick<Config, 'logLevel'>, logger?: Logger): Logger {
  return logger ?? (fallbackLogger ??= createLogger(config, 'redis'));
}

/** Reports one Redis error of `source` to the process's throttled Redis error log. */
export function reportRedisError(logger: Logger, source: string, err: Error): void {
  errorLogFor(logger).error(source, err);
}

/** Routes an emitter's 'error' events to the process's throttled Redis error log. */
export function watchRedisErrors(emitter: ErrorEmitter, logger: Logger, source: string): void {
  emitter.on('error', (err) => reportRedisError(logger, source, err));
}

/**
 * A new ioredis connection, its errors logged through `logger` (throttled, see watchRedisErrors;
 * without a logger, a process-wide one built from the config). BullMQ workers need
 * `maxRetriesPerRequest: null` (blocking commands must wait through reconnects); queues and the
 * API fail fast instead, which the API answers with 503.
 */
export function createRedis(
  config: Pick<Config, 'redis' | 'logLevel'>,
  opts: { forWorker?: boolean; logger?: Logger; name?: string } = {},
): Redis {
  const logger = redisLogger(config, opts.logger);
  const source = opts.name ?? (opts.forWorker ? 'redis-blocking' : 'redis');
  const redis = new Redis(config.redis.url, {
    maxRetriesPerRequest: opts.forWorker ? null : 3,
    enableReadyCheck: true,
    lazyConnect: false,
  });
  const log = errorLogFor(logger);
  redis.on('error', (err: Error) => log.error(source, err));
  redis.on('ready', () => log.ready(source));
  return redis;
}

/** True for an error that means Redis cannot be reached right now (the API answers 503). */
export function isRedisUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  if (err.name === 'MaxRetriesPerRequestError') return true;
  if (/^Connection is closed\.?$/.test(err.message)) return true;
  if (/Stream isn't writeable|enableOfflineQueue/.test(err.message)) return true;
  const code = (err as { code?: unknown }).code;
  return (
    typeof code === 'string' &&
    ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND'].includes(code)
  );
}
