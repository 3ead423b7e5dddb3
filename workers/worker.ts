/**
 * Worker process entry point: runs a BullMQ Worker for every queue of its WORKER_GROUPS (default
 * all; jobs/groups.ts), upserts the Job Schedulers, and on SIGTERM/SIGINT stops taking work, lets
 * active jobs finish, and exits. Run as many of these as needed, on any number of hosts, against
 * the same Redis and PostgreSQL; give hosts different groups to scale quotes apart from rollups.
 */
import { loadConfig } from '../core/config.ts';
import { buildDeps, closeDeps } from '../core/deps.ts';
import { resolveWorkerGroups } from '../jobs/groups.ts';
import { createQueues } from '../jobs/queues.ts';
import { startWorkers, upsertSchedulers } from '../jobs/worker-host.ts';

// Both refuse a bad configuration (an unknown group or queue included) before any connection.
const config = loadConfig();
const { groups } = resolveWorkerGroups(config.queue.groups);
const deps = buildDeps({ name: 'worker', config });
const host = startWorkers(deps);
const queues = createQueues(deps.config, undefined, deps.logger);
if (deps.config.queue.schedulersEnabled) {
  // Every schedule, whatever this host serves: a Job Scheduler lives in Redis and its jobs go to
  // whichever host serves that queue. Upserting the same ids from several hosts is harmless.
  const n = await upsertSchedulers(queues);
  deps.logger.info({ schedulers: n }, 'job schedulers upserted');
}
deps.logger.info(
  { groups, queues: host.workers.map((w) => w.name), prefix: deps.config.queue.prefix },
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
