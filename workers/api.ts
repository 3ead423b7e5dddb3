/**
 * API process entry point: builds the shared dependencies, queue handles for producing jobs and
 * the auth module, serves the Express app, and on SIGTERM/SIGINT stops accepting connections,
 * lets in-flight requests finish, closes everything it opened and exits 0.
 */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { closeApp, createApp } from '../api/app.ts';
import { createAuth } from '../api/auth/index.ts';
import { buildDeps, closeDeps } from '../core/deps.ts';
import { createQueues } from '../jobs/queues.ts';

/** Keep-alive connections idle longer than this are cut at shutdown instead of waited for. */
const SHUTDOWN_GRACE_MS = 10_000;

const deps = buildDeps({ name: 'api' });
const queues = createQueues(deps.config, undefined, deps.logger);
const auth = await createAuth(deps);
const app = await createApp(deps, { queues, auth });

const server = app.listen(deps.config.api.port, deps.config.api.host);
await once(server, 'listening');
const { address, port } = server.address() as AddressInfo;
const host = address.includes(':') ? `[${address}]` : address;
deps.logger.info({ url: `http://${host}:${port}`, publicUrl: deps.config.api.publicUrl }, 'api listening');

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  deps.logger.info({ signal }, 'stopping: no new connections; finishing in-flight requests');
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  const force = setTimeout(() => server.closeAllConnections(), SHUTDOWN_GRACE_MS);
  await closed;
  clearTimeout(force);
  await closeApp(app);
  await Promise.allSettled([queues.close(), auth.close()]);
  await closeDeps(deps);
  deps.logger.info('stopped');
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
