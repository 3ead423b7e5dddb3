/**
 * Worker process entry point: runs a BullMQ Worker for every queue, upserts the Job Schedulers,
 * and on SIGTERM/SIGINT stops taking work, lets active jobs finish, and exits. Run as many of
 * these as needed, on any number of hosts, against the same Redis and PostgreSQL.
 */
import { buildDeps, closeDeps } from '../core/deps.ts';
import { createQueues } from '../jobs/queues.ts';
import { startWorkers, upsertSchedulers } from '../jobs/worker-host.ts';

const deps = buildDeps({ name: 'worker' });
const host = startWorkers(deps);
const queues = createQueues(deps.config, undefined, deps.logger);
if (deps.config.queue.schedulersEnabled) {
  const n = await upsertSchedulers(queues);
  deps.logger.info({ schedulers: n }, 'job schedulers upserted');
}
deps.logger.info(
  { queues: host.workers.map((w) => w.name), prefix: deps.config.queue.prefix },
  'workers started',
);

let stopping = false;
async function shutdown(signal: string): Promise<void> {
  if (stopping) return;
  stopping = true;
  deps.logger.info({ signal }, 'stopping: no new jobs; waiting for active ones');
  await host.close();
  await queues.close();
  await closeDeps(deps);
  deps.logger.info('stopped');
  process.exit(0);
}
process.on('SIGTERM', () => void shutdown('SIGTERM'));
process.on('SIGINT', () => void shutdown('SIGINT'));
