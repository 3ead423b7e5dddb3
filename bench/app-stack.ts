/**
 * The API a bench measures, in the bench's own process: configuration for its scratch database
 * with a queue prefix of its own and any free port, the dependencies, queues and auth, and servers
 * on 127.0.0.1. bench/api.ts and bench/orders.ts serve from it.
 */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';
import { createAuth, type Auth } from '../api/auth/index.ts';
import { loadConfig, type Config } from '../core/config.ts';
import { buildDeps, closeDeps, type Deps } from '../core/deps.ts';
import { createQueues, type QueueSet } from '../jobs/queues.ts';

export interface BenchStack {
  config: Config;
  deps: Deps;
  queues: QueueSet;
  auth: Auth;
  /** Closes the queues, auth and dependencies (after the apps built on them). */
  close(): Promise<void>;
}

export async function benchStack(
  name: string,
  databaseUrl: string,
  env: Record<string, string> = {},
): Promise<BenchStack> {
  const config = loadConfig({
    ...process.env,
    LOG_LEVEL: 'warn',
    DATABASE_URL: databaseUrl,
    QUEUE_PREFIX: `{bench-${randomBytes(3).toString('hex')}}`,
    API_PORT: '0',
    NODE_ENV: 'development',
    ...env,
  });
  const deps = buildDeps({ name, config });
  const queues = createQueues(config);
  const auth = await createAuth(deps);
  return {
    config,
    deps,
    queues,
    auth,
    async close() {
      await Promise.allSettled([queues.close(), auth.close()]);
      await closeDeps(deps);
    },
  };
}

/** Serves an app on a free port of 127.0.0.1: its base URL, and a close that ends keep-alive connections. */
export async function serve(app: Express): Promise<{ base: string; close(): Promise<void> }> {
  const server: Server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
