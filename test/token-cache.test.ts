/**
 * The verified-token cache (api/auth/token-cache.ts): what is cached, for how long, how many.
 * That revocation still acts at once through it is tested end to end in auth-hardening and
 * api-market.
 */
import { describe, expect, it } from 'vitest';
import { cacheVerifiedTokens } from '../api/auth/token-cache.ts';
import { InvalidTokenError } from '../api/auth/tokens.ts';
import type { Principal } from '../api/auth/types.ts';

function setup(opts: { max?: number; maxAgeMs?: number; expiresInMs?: number } = {}) {
  let now = Date.parse('2026-01-01T00:00:00Z');
  const calls: string[] = [];
  const verify = async (token: string): Promise<Principal> => {
    calls.push(token);
    if (token.startsWith('bad')) throw new InvalidTokenError('token signature invalid');
    return {
      subject: token,
      clientId: token,
      scopes: new Set(['results:read']),
      issuer: 'test',
      tokenId: undefined,
      expiresAt: new Date(now + (opts.expiresInMs ?? 60_000)),
    };
  };
  const cached = cacheVerifiedTokens(verify, {
    clock: { now: () => new Date(now) },
    ...(opts.max !== undefined ? { max: opts.max } : {}),
    ...(opts.maxAgeMs !== undefined ? { maxAgeMs: opts.maxAgeMs } : {}),
  });
  return { cached, calls, advance: (ms: number) => (now += ms) };
}

describe('cacheVerifiedTokens', () => {
  it('verifies a token once, then answers from the cache until the token expires', async () => {
    const { cached, calls, advance } = setup({ expiresInMs: 60_000 });
    const first = await cached('a');
    expect(await cached('a')).toBe(first);
    expect(calls).toEqual(['a']);
    advance(59_999);
    await cached('a');
    expect(calls).toEqual(['a']);
    advance(1);
    await cached('a');
    expect(calls).toEqual(['a', 'a']);
  });

  it('trusts an entry for at most maxAgeMs, however far away exp is', async () => {
    const { cached, calls, advance } = setup({ expiresInMs: 3_600_000, maxAgeMs: 1_000 });
    await cached('a');
    advance(999);
    await cached('a');
    advance(1);
    await cached('a');
    expect(calls).toEqual(['a', 'a']);
  });

  it('never caches a refusal, nor a token already expired', async () => {
    const { cached, calls } = setup({ expiresInMs: 0 });
    await expect(cached('bad')).rejects.toBeInstanceOf(InvalidTokenError);
    await expect(cached('bad')).rejects.toBeInstanceOf(InvalidTokenError);
    await cached('a');
    await cached('a');
    expect(calls).toEqual(['bad', 'bad', 'a', 'a']);
  });

  it('holds at most max tokens, dropping the least recently used', async () => {
    const { cached, calls } = setup({ max: 2 });
    await cached('a');
    await cached('b');
    await cached('a'); // a is now the most recently used
    await cached('c'); // drops b
    await cached('a');
    await cached('c');
    expect(calls).toEqual(['a', 'b', 'c']);
    await cached('b');
    expect(calls).toEqual(['a', 'b', 'c', 'b']);
  });

  it('hands out a frozen principal, so one request cannot change what the next one sees', async () => {
    const { cached } = setup();
    expect(Object.isFrozen(await cached('a'))).toBe(true);
  });
});
