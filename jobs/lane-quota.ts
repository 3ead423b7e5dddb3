/**
 * The per-provider request quota, shared by everything that calls a provider. Each provider lane
 * (`prices.quote.<provider>`) has a BullMQ global limiter: every worker counts each job it starts
 * in the lane's Redis limiter key and stops taking jobs once `max` are counted within `duration`;
 * a provider's 429 sets that key for the time the provider asked (queue.rateLimit), pausing the
 * lane. A provider call made outside a lane job (the API's `GET /stocks/{symbol}`) takes a slot
 * from the same key with the same rule (one Lua script mirroring BullMQ's fetchNextJob /
 * prepareJobForProcessing), so the workers and the API together stay within the quota, and a
 * lane paused by a throttle refuses the API's call too.
 */
import type { Redis } from 'ioredis';
import type { Config } from '../core/config.ts';
import { ProviderRateLimitError, type ProviderName } from '../core/providers/types.ts';
import type { QueueSet } from './queues.ts';

/** A lane's limiter: `max` provider requests per `duration` ms (`*_REQUESTS_PER_MINUTE`). */
export function laneLimiter(
  config: Pick<Config, 'providers'>,
  provider: ProviderName,
): { max: number; duration: number } {
  return { max: config.providers.requestsPerMinute[provider], duration: 60_000 };
}

// KEYS: the lane's limiter and meta keys. ARGV: max, duration (the workers' limiter options).
// As BullMQ: a queue-level limit in meta (Queue.setGlobalRateLimit) overrides max; when `max` are
// counted the answer is the key's remaining ms; otherwise count one, starting the window on the
// first. Returns 0 when a slot was taken.
const TAKE_SLOT = `
local meta = redis.call('HMGET', KEYS[2], 'max', 'duration')
local max = tonumber(meta[1] or ARGV[1])
local duration = tonumber(ARGV[2] or meta[2])
if max <= tonumber(redis.call('GET', KEYS[1]) or 0) then
  local pttl = redis.call('PTTL', KEYS[1])
  if pttl == 0 then redis.call('DEL', KEYS[1]) end
  if pttl > 0 then return pttl end
end
if redis.call('INCR', KEYS[1]) == 1 then
  redis.call('PEXPIRE', KEYS[1], math.floor(math.abs(duration)))
end
return 0
`;

/** The lane's quota was used up (or the lane is paused): nothing was sent to the provider. */
export class LaneQuotaError extends ProviderRateLimitError {}

export interface LaneQuota {
  /**
   * Takes one request slot of `provider`'s lane, or throws LaneQuotaError with the time until
   * one frees (the caller answers 503 with Retry-After, as for the provider's own 429).
   */
  take(provider: ProviderName): Promise<void>;
  /** Pauses the lane for `ms` after the provider throttled a call made outside a lane job. */
  pause(provider: ProviderName, ms: number): Promise<void>;
}

export function laneQuota(
  config: Pick<Config, 'providers'>,
  redis: Redis,
  queues: Pick<QueueSet, 'get'>,
): LaneQuota {
  const lane = (provider: ProviderName) => queues.get('prices.quote', provider);
  return {
    async take(provider) {
      const q = lane(provider);
      const { max, duration } = laneLimiter(config, provider);
      const waitMs = Number(await redis.eval(TAKE_SLOT, 2, q.keys.limiter!, q.keys.meta!, max, duration));
      if (waitMs > 0) {
        throw new LaneQuotaError(
          provider,
          `the ${q.name} request quota (${max} per minute, shared with the workers) is used up or the lane is paused`,
          waitMs,
        );
      }
    },
    async pause(provider, ms) {
      await lane(provider).rateLimit(ms);
    },
  };
}
