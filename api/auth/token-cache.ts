/**
 * A bounded cache of verified bearer tokens, keyed by the token string: a client sends the same
 * token for many requests, and checking its ES256 signature is the costliest step of a request
 * (~0.2 ms of CPU). Only successful verifications are kept (a bad token is verified, and refused,
 * every time), each until the token's `exp` and for at most `maxAgeMs` (by default the key store's
 * own cache lifetime, so a cached verification outlives no key the store would still trust).
 * Least recently used entries go first once `max` are held.
 *
 * What it caches is only what the signature proves (issuer, audience, subject, scopes, expiry),
 * which cannot change for a given token string. Whether the client or user is still allowed is
 * NOT cached: callers check it on every request (api/auth/index.ts), so revocation acts at once.
 */
import type { Clock } from '../../core/deps.ts';
import type { TokenVerifier } from './tokens.ts';
import type { Principal } from './types.ts';

export interface TokenCacheOptions {
  clock: Clock;
  /** Most tokens held (default 10,000: about 10 MB at most). */
  max?: number;
  /** Longest an entry is trusted without verifying again (default 5 minutes). */
  maxAgeMs?: number;
}

export function cacheVerifiedTokens(verify: TokenVerifier, opts: TokenCacheOptions): TokenVerifier {
  const max = opts.max ?? 10_000;
  const maxAgeMs = opts.maxAgeMs ?? 5 * 60_000;
  // A Map iterates in insertion order: re-inserting on a hit keeps the least recently used first.
  const entries = new Map<string, { principal: Principal; until: number }>();
  return async (token) => {
    const now = opts.clock.now().getTime();
    const hit = entries.get(token);
    if (hit) {
      entries.delete(token);
      if (now < hit.until) {
        entries.set(token, hit);
        return hit.principal;
      }
    }
    const principal = await verify(token);
    const until = Math.min(principal.expiresAt.getTime(), now + maxAgeMs);
    if (now < until) {
      entries.set(token, { principal: Object.freeze(principal), until });
      if (entries.size > max) entries.delete(entries.keys().next().value!);
    }
    return principal;
  };
}
