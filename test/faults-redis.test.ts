/**
 * Issue 7 §3, Redis outages, with the API and a worker as real processes reaching Redis through
 * a TCP proxy that the test cuts for a few seconds (the shared Redis itself stays up):
 * - every connection, queue and worker has an error listener: no "Unhandled error event" and no
 *   unstructured stderr lines, and the structured log reports the outage in a few lines, not one
 *   per reconnect attempt;
 * - while Redis is unreachable, POST /api/jobs/... answers 503 with Retry-After (not 500); once it
 *   is back, 202.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClient } from '../api/auth/accounts.ts';
import type { Deps } from '../core/deps.ts';
import { closeDeps, dropPrefix, testDeps } from './support.ts';
import {
  collectLines,
  killAll,
  startApiProcess,
  startWorkerProcess,
  tcpProxy,
  until,
} from './worker-process.ts';

let deps: Deps;
let proxy: Awaited<ReturnType<typeof tcpProxy>>;

beforeAll(async () => {
  deps = testDeps();
  const redis = new URL(deps.config.redis.url);
  proxy = await tcpProxy(redis.hostname, Number(redis.port || 6379));
});

afterAll(async () => {
  await killAll();
  await proxy?.close();
  await dropPrefix(deps);
  await closeDeps(deps);
});

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((r) => server.close(r));
  return port;
}

describe('a Redis outage', () => {
  it(
    'is logged in a few structured lines, and job submissions get 503 until Redis is back',
    { timeout: 90_000 },
    async () => {
      const port = await freePort();
      const env = {
        DATABASE_URL: deps.config.db.url,
        REDIS_URL: `redis://127.0.0.1:${proxy.port}`,
        QUEUE_PREFIX: deps.config.queue.prefix,
        API_PORT: String(port),
        LOG_LEVEL: 'info',
      };
      const api = collectLines(startApiProcess(env, { capture: true }));
      const worker = collectLines(startWorkerProcess(env, { capture: true }));
      await until(
        async () => api.stdout.some((l) => l.includes('api listening')),
        30_000,
        'the API to listen',
      );
      const base = `http://127.0.0.1:${port}`;
      const client = await createClient(deps, { name: 'redis outage test', scopes: ['jobs:write'] });
      const tokenRes = await fetch(`${base}/oauth/token`, {
        method: 'POST',
        headers: {
          authorization: `Basic ${Buffer.from(`${client.clientId}:${client.clientSecret}`).toString('base64')}`,
          'content-type': 'application/x-www-form-urlencoded',
        },
        body: 'grant_type=client_credentials',
      });
      expect(tokenRes.status).toBe(200);
      const token = ((await tokenRes.json()) as { access_token: string }).access_token;
      const submit = () =>
        fetch(`${base}/api/jobs/bars.rollup-5m`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: '{}',
        });
      expect((await submit()).status).toBe(202);
      // Let the worker settle into its blocking reads.
      await new Promise((r) => setTimeout(r, 1500));

      const before = {
        api: api.stdout.length + api.stderr.length,
        worker: worker.stdout.length + worker.stderr.length,
      };
      proxy.cut();
      const during = await submit();
      const body = (await during.json()) as { error: { code: string } };
      await new Promise((r) => setTimeout(r, 5_000));
      proxy.restore();
      await until(async () => (await submit()).status === 202, 20_000, 'submissions to be accepted again');
      await new Promise((r) => setTimeout(r, 1000));

      const outage = {
        api: [...api.stdout, ...api.stderr].slice(before.api),
        worker: [...worker.stdout, ...worker.stderr].slice(before.worker),
      };
      console.info(
        `Redis cut 5 s: ${outage.api.length} log lines from the API, ${outage.worker.length} from the worker`,
      );
      for (const [name, lines] of Object.entries(outage)) {
        expect(
          lines.filter((l) => /Unhandled error event/.test(l)),
          name,
        ).toEqual([]);
        // Nothing unstructured: every line is one of pino's JSON lines.
        expect(
          lines.filter((l) => l.trim() !== '' && !l.startsWith('{')),
          name,
        ).toEqual([]);
        expect(lines.length, `${name}: ${lines.length} lines`).toBeLessThanOrEqual(12);
      }
      expect(outage.worker.some((l) => l.includes('redis unreachable'))).toBe(true);
      expect(outage.worker.some((l) => l.includes('redis reachable again'))).toBe(true);
      expect(outage.api.some((l) => l.includes('redis unreachable'))).toBe(true);
      expect(during.status).toBe(503);
      expect(during.headers.get('retry-after')).toMatch(/^\d+$/);
      expect(body.error.code).toBe('service_unavailable');
    },
  );
});
