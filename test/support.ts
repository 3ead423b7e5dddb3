/**
 * Test helpers: a Config pointing at the run's throw-away database with a queue prefix of the
 * test's own, and Deps built from it exactly as the processes build theirs.
 */
import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import { loadConfig, type Config } from '../core/config.ts';
import { authKeyNamespace } from '../api/auth/redis.ts';
import { buildDeps, closeDeps, type Clock, type Deps } from '../core/deps.ts';
import { createRng } from '../core/generator/prng.ts';

export function uniquePrefix(): string {
  return `{t${randomBytes(5).toString('hex')}}`;
}

export function testConfig(overrides: Record<string, string> = {}): Config {
  return loadConfig({
    ...process.env,
    NODE_ENV: 'test',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    DATABASE_URL: inject('databaseUrl'),
    QUEUE_PREFIX: uniquePrefix(),
    API_PORT: '0',
    ...overrides,
  });
}

export function testDeps(opts: { config?: Config; clock?: Clock; fetch?: typeof fetch } = {}): Deps {
  return buildDeps({
    name: 'test',
    config: opts.config ?? testConfig(),
    ...(opts.clock ? { clock: opts.clock } : {}),
    ...(opts.fetch ? { fetch: opts.fetch } : {}),
  });
}

export function frozenClock(iso: string): Clock {
  const t = new Date(iso);
  return { now: () => new Date(t) };
}

/** Removes every Redis key a test's prefix owns: its queues, operator sessions and throttle counters. */
export async function dropPrefix(deps: Deps): Promise<void> {
  // The prefix holds no glob characters (config allows only a brace-wrapped [A-Za-z0-9_.-]+).
  const { prefix } = deps.config.queue;
  for (const pattern of [`${prefix}:*`, `${authKeyNamespace(prefix)}:*`]) {
    let cursor = '0';
    do {
      const [next, keys] = await deps.redis.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
      cursor = next;
      if (keys.length) await deps.redis.del(...keys);
    } while (cursor !== '0');
  }
}

export { closeDeps };

/**
 * A database of a test file's own (created and migrated here, dropped by the returned function),
 * for tests that run whole-table jobs and must not see or disturb other files' rows.
 */
export async function scratchDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const { ensureDatabase, dropDatabase, createDb } = await import('../core/db/knex.ts');
  const { migrateLatest } = await import('../core/db/migrate.ts');
  const url = new URL(inject('databaseUrl'));
  url.pathname = `${url.pathname}_s${randomBytes(4).toString('hex')}`;
  const dbUrl = url.toString();
  await ensureDatabase(dbUrl);
  const db = createDb({ db: { url: dbUrl, poolMax: 2 } });
  try {
    await migrateLatest(db);
  } finally {
    await db.destroy();
  }
  return { url: dbUrl, drop: () => dropDatabase(dbUrl) };
}

/**
 * mulberry32, the stream of core/generator/prng.ts: a small deterministic PRNG (uniform in [0, 1)),
 * so a failing seed can be replayed.
 */
export const prng = (seed: number): (() => number) => createRng(seed).next;
