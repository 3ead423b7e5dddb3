/**
 * Redis keys of the auth module. Operator sessions and throttling counters live under one
 * namespace derived from the queue prefix (`{mdw}` gives `mdw:`), with no hash tag, so they
 * spread over a Redis Cluster's slots instead of piling into the queues' slot.
 */
import type { Redis } from 'ioredis';

/** The auth namespace for a queue prefix: `{mdw}` gives `mdw`. */
export function authKeyNamespace(queuePrefix: string): string {
  return queuePrefix.replace(/[{}]/g, '');
}

/** Key prefix of operator sessions: `{mdw}` gives `mdw:sess:`. */
export function sessionKeyPrefix(queuePrefix: string): string {
  return `${authKeyNamespace(queuePrefix)}:sess:`;
}

/** Key prefix of the throttling counters (express-rate-limit's Redis store), per limiter. */
export function throttleKeyPrefix(queuePrefix: string, limiter: string): string {
  return `${authKeyNamespace(queuePrefix)}:rl:${limiter}:`;
}

/**
 * connect-redis 11 speaks the node-redis v5 client API; the project's client is ioredis (one
 * client library, one connection for BullMQ-adjacent work). This facade maps the handful of
 * calls connect-redis makes (its dist/connect-redis.js: get, set with an EX expiration, expire,
 * del, mGet, scanIterator) onto ioredis. test/auth-hardening.test.ts exercises each through the store.
 */
export function nodeRedisFacade(redis: Redis): object {
  return {
    get: (key: string) => redis.get(key),
    set: (key: string, value: string, opts?: { expiration?: { type: 'EX'; value: number } }) =>
      opts?.expiration ? redis.set(key, value, 'EX', opts.expiration.value) : redis.set(key, value),
    expire: (key: string, seconds: number) => redis.expire(key, seconds),
    del: (keys: string | string[]) => redis.del(...(Array.isArray(keys) ? keys : [keys])),
    mGet: (keys: string[]) => redis.mget(...keys),
    async *scanIterator(opts: { MATCH: string; COUNT: number }): AsyncGenerator<string[]> {
      let cursor = '0';
      do {
        const [next, keys] = await redis.scan(cursor, 'MATCH', opts.MATCH, 'COUNT', opts.COUNT);
        cursor = next;
        if (keys.length > 0) yield keys;
      } while (cursor !== '0');
    },
  };
}
