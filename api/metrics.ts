/**
 * Prometheus metrics on a registry of the API's own: default process metrics, HTTP request
 * durations by route pattern (never the raw URL, which would make one series per symbol or job
 * id), job counts and queue depth read from BullMQ at scrape time, and job durations fed by
 * QueueEvents. Every API process observes every job's completion, so sum durations over one
 * instance (or use max by queue) rather than across replicas.
 */
import { performance } from 'node:perf_hooks';
import { Job, QueueEvents, type Queue } from 'bullmq';
import type { Request, RequestHandler } from 'express';
import type { Redis } from 'ioredis';
import { collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { Logger } from '../core/logger.ts';
import { isRedisUnavailable, reportRedisError } from '../core/redis.ts';
import { JOB_STATES } from '../jobs/queues.ts';
import { asyncHandler } from './http.ts';

const DEPTH_STATES = ['waiting', 'delayed', 'prioritized'] as const;
const SCRAPE_TIMEOUT_MS = 2_000;

export interface Metrics {
  registry: Registry;
  /** Times every request; mount before the routes. */
  middleware: RequestHandler;
  /** GET /metrics. */
  handler: RequestHandler;
  /** Stops the QueueEvents listeners and closes their connections. */
  close(): Promise<void>;
}

/** The matched route pattern (`/api/jobs/:id`), the mount point of a sub-app, or `unmatched`. */
function routeLabel(req: Request): string {
  const pattern: unknown = (req.route as { path?: unknown } | undefined)?.path;
  if (typeof pattern === 'string') return `${req.baseUrl}${pattern}`;
  return req.baseUrl || 'unmatched';
}

export function createMetrics(opts: {
  queues: Queue[];
  /** A new connection for each QueueEvents (they block on XREAD, so they cannot share one). */
  connect: () => Redis;
  logger: Logger;
}): Metrics {
  const { queues, logger } = opts;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });

  const httpDuration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request duration by method, route pattern and status.',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const jobCounts = new Gauge({
    name: 'bullmq_jobs',
    help: 'Jobs per queue and state, read from BullMQ at scrape time.',
    labelNames: ['queue', 'state'] as const,
    registers: [registry],
  });
  const queueDepth = new Gauge({
    name: 'bullmq_queue_depth',
    help: 'Jobs waiting to run per queue (waiting + delayed + prioritized).',
    labelNames: ['queue'] as const,
    registers: [registry],
  });
  const jobDuration = new Histogram({
    name: 'bullmq_job_duration_seconds',
    help: 'Processing time of finished jobs (finishedOn - processedOn of the last attempt).',
    labelNames: ['queue', 'status'] as const,
    buckets: [0.1, 0.5, 1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600],
    registers: [registry],
  });

  const middleware: RequestHandler = (req, res, next) => {
    const start = performance.now();
    res.on('finish', () => {
      httpDuration.observe(
        { method: req.method, route: routeLabel(req), status: String(res.statusCode) },
        (performance.now() - start) / 1000,
      );
    });
    next();
  };

  async function refreshQueueGauges(): Promise<void> {
    jobCounts.reset();
    queueDepth.reset();
    let timer: NodeJS.Timeout | undefined;
    try {
      const snapshot = await Promise.race([
        Promise.all(queues.map(async (q) => ({ name: q.name, counts: await q.getJobCounts(...JOB_STATES) }))),
        new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`no answer within ${SCRAPE_TIMEOUT_MS} ms`)),
            SCRAPE_TIMEOUT_MS,
          );
        }),
      ]);
      for (const { name, counts } of snapshot) {
        for (const state of JOB_STATES) jobCounts.set({ queue: name, state }, counts[state] ?? 0);
        queueDepth.set(
          { queue: name },
          DEPTH_STATES.reduce((sum, s) => sum + (counts[s] ?? 0), 0),
        );
      }
    } catch (err) {
      // Serve the HTTP and process metrics anyway; absent queue series make the outage visible.
      logger.warn({ err }, 'metrics: could not read queue counts');
    } finally {
      clearTimeout(timer);
    }
  }

  const handler = asyncHandler(async (_req, res) => {
    await refreshQueueGauges();
    res.set('Content-Type', registry.contentType).send(await registry.metrics());
  });

  const listeners = queues.map((queue) => {
    const connection = opts.connect();
    // Read events from this moment (stream ids are milliseconds), not from whenever the first
    // XREAD happens to be sent, so a job finishing right after start-up is counted. Clock skew
    // with Redis only moves that start by the skew, which does not matter for a histogram.
    const events = new QueueEvents(queue.name, {
      connection,
      prefix: queue.opts.prefix,
      lastEventId: `${Date.now()}-0`,
    });
    const observe =
      (status: 'completed' | 'failed') =>
      async ({ jobId }: { jobId: string }) => {
        try {
          const job = await Job.fromId(queue, jobId);
          // Removed already (removeOnComplete/Fail), or never started: nothing to measure.
          if (!job?.processedOn || !job.finishedOn) return;
          jobDuration.observe({ queue: queue.name, status }, (job.finishedOn - job.processedOn) / 1000);
        } catch (err) {
          logger.warn({ err, queue: queue.name, jobId }, 'metrics: could not read finished job');
        }
      };
    events.on('completed', observe('completed'));
    events.on('failed', observe('failed'));
    events.on('error', (err) => {
      if (isRedisUnavailable(err)) reportRedisError(logger, `metrics ${queue.name}`, err);
      else logger.warn({ err, queue: queue.name }, 'metrics: queue events error');
    });
    return { events, connection };
  });

  return {
    registry,
    middleware,
    handler,
    async close() {
      await Promise.allSettled(listeners.map((l) => l.events.close()));
      await Promise.allSettled(listeners.map((l) => l.connection.quit()));
    },
  };
}
