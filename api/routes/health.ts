/**
 * Liveness and readiness. /health says the process serves requests (it never touches a
 * dependency, so a database outage does not get the process restarted); /ready says it can do
 * useful work: PostgreSQL answers a query and Redis answers PING, each within a short timeout.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import type { Deps } from '../../core/deps.ts';
import { defineRoute, Reply, type RouteDef } from '../http.ts';

const CHECK_TIMEOUT_MS = 2_000;

async function check(probe: () => Promise<unknown>): Promise<string> {
  const timeout = new AbortController();
  try {
    await Promise.race([
      probe(),
      sleep(CHECK_TIMEOUT_MS, undefined, { signal: timeout.signal }).then(() => {
        throw new Error(`no answer within ${CHECK_TIMEOUT_MS} ms`);
      }),
    ]);
    return 'ok';
  } catch (err) {
    return `error: ${err instanceof Error ? err.message : String(err)}`;
  } finally {
    timeout.abort();
  }
}

const Health = z.object({ status: z.literal('ok') }).openapi('Health');

const Readiness = z
  .object({
    status: z.enum(['ready', 'not_ready']),
    checks: z.object({
      postgres: z.string().openapi({ example: 'ok' }),
      redis: z.string().openapi({ example: 'ok' }),
    }),
  })
  .openapi('Readiness');

export function healthRoutes(deps: Deps): RouteDef[] {
  return [
    defineRoute({
      method: 'get',
      path: '/health',
      summary: 'Liveness',
      tags: ['health'],
      access: 'public',
      response: Health,
      async handler() {
        return { status: 'ok' as const };
      },
    }),
    defineRoute({
      method: 'get',
      path: '/ready',
      summary: 'Readiness: PostgreSQL and Redis reachable',
      description: '503 with the failing check when a dependency does not answer.',
      tags: ['health'],
      access: 'public',
      response: Readiness,
      otherResponses: { 503: { description: 'Not ready: the failing check says why.', schema: Readiness } },
      async handler() {
        const [postgres, redis] = await Promise.all([
          // A connectivity probe of the pool itself, not a data query: it has no repository.
          check(() => deps.db.raw('select 1')),
          check(() => deps.redis.ping()),
        ]);
        const ok = postgres === 'ok' && redis === 'ok';
        const body = {
          status: ok ? ('ready' as const) : ('not_ready' as const),
          checks: { postgres, redis },
        };
        return ok ? body : new Reply(503, body);
      },
    }),
  ];
}
