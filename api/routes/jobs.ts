/**
 * Jobs over HTTP: the catalogue (names, payload JSON Schemas, schedules), triggering a job by
 * name with a payload validated against the catalogue, and reading a job back by id.
 */
import { randomUUID } from 'node:crypto';
import type { Job, Queue } from 'bullmq';
import { z } from 'zod';
import { isJobName, jobCatalogue, jobNames, type JobInput, type JobName } from '../../jobs/catalogue.ts';
import { jobOptions } from '../../jobs/options.ts';
import { allQueueNames, JOB_STATES, type QueueSet } from '../../jobs/queues.ts';
import { ConflictError, defineRoute, NotFoundError, validationError, type RouteDef } from '../http.ts';

const JobCatalogue = z
  .object({
    jobs: z.array(
      z.object({
        name: z.string().openapi({ example: 'bars.rollup-1d' }),
        description: z.string(),
        payload_schema: z
          .record(z.string(), z.unknown())
          .openapi({ description: 'JSON Schema of the payload.' }),
        schedules: z.array(
          z.object({
            id: z.string(),
            pattern: z.string().openapi({ example: '20 16 * * 1-5' }),
            tz: z.string(),
            payload: z.record(z.string(), z.unknown()),
          }),
        ),
      }),
    ),
  })
  .openapi('JobCatalogue');

const JobAccepted = z
  .object({
    id: z.string(),
    name: z.string().openapi({ example: 'bars.rollup-1d' }),
    state: z.literal('waiting'),
  })
  .openapi('JobAccepted');

const JobStatus = z
  .object({
    id: z.string(),
    name: z.string(),
    queue: z.string(),
    state: z.enum([...JOB_STATES, 'unknown']),
    progress: z.unknown().openapi({
      description:
        'Progress as the job stores it: `{ progress: 0-100, updatedAt, ...detail }` (older jobs: a bare number).',
    }),
    attempts_made: z.number().int(),
    data: z.unknown().openapi({ description: 'The validated payload.' }),
    result: z.unknown().openapi({ description: "The processor's return value; null until completed." }),
    failed_reason: z.string().nullable(),
    created_at: z.string(),
    processed_at: z.string().nullable(),
    finished_at: z.string().nullable(),
  })
  .openapi('JobStatus');

// Built once: the catalogue is static for the life of the process.
const catalogue = {
  jobs: jobNames.map((name) => ({
    name,
    description: jobCatalogue[name].description,
    payload_schema: z.toJSONSchema(jobCatalogue[name].schema, {
      io: 'input',
      unrepresentable: 'any',
    }) as Record<string, unknown>,
    schedules: jobOptions[name].schedules.map((s) => ({
      id: s.id,
      pattern: s.pattern,
      tz: s.tz,
      payload: s.payload,
    })),
  })),
};

// Documentation of the body only: which schema applies depends on the {name} path parameter.
const payloadDocs = z
  .union(jobNames.map((name) => jobCatalogue[name].schema.openapi(`JobPayload.${name}`)))
  .openapi({ description: "The job's payload; GET /api/jobs gives each job's JSON Schema." });

// Job ids reach Redis key names, so only the characters BullMQ ids use (auto ids, UUIDs,
// `<job>:<symbol>:<date>`, scheduler ids) are accepted.
const jobId = z
  .string()
  .max(200)
  .regex(/^[A-Za-z0-9._-]+(:[A-Za-z0-9._-]+)*$/, 'must be a job id (letters, digits, . _ - and :)');

const jsonObject = z.custom<Record<string, unknown>>(
  (v) => typeof v === 'object' && v !== null && !Array.isArray(v),
  'must be a JSON object',
);

const iso = (ms: number | undefined): string | null => (ms ? new Date(ms).toISOString() : null);

async function findJob(queue: Queue, id: string): Promise<Job | undefined> {
  try {
    const job = await queue.getJob(id);
    // A Redis key of the queue that is a hash but not a job (e.g. its meta key) has no timestamp.
    return job && Number.isFinite(job.timestamp) && job.timestamp > 0 ? job : undefined;
  } catch (err) {
    // The id named one of the queue's non-hash keys (lists, sets): not a job.
    if (err instanceof Error && err.message.includes('WRONGTYPE')) return undefined;
    throw err;
  }
}

/** Where a job is read by id (formerly `/api/jobs/{id}`: see legacyAlias). */
export const JOB_BY_ID = '/api/jobs/runs/{id}';

/**
 * `GET /api/jobs/{id}`, the old path of JOB_BY_ID, kept for old clients: it differed from
 * `POST /api/jobs/{name}` only in its parameter's name, so the two could not both be documented
 * (OpenAPI has one path item per template). It answers as before, with `Deprecation: true` and a
 * `Link` to the successor (RFC 9745, RFC 8288), and is left out of the document.
 */
function legacyAlias(route: RouteDef): RouteDef {
  return {
    ...route,
    path: '/api/jobs/{id}',
    undocumented: true,
    async handler(input) {
      const res = input.req.res;
      res?.setHeader('Deprecation', 'true');
      res?.setHeader(
        'Link',
        `<${JOB_BY_ID.replace('{id}', encodeURIComponent(String(input.req.params.id)))}>; rel="successor-version"`,
      );
      return route.handler(input);
    },
  };
}

export function jobsRoutes(queues: QueueSet): RouteDef[] {
  const routes = [
    defineRoute({
      method: 'get',
      path: '/api/jobs',
      summary: 'The job catalogue',
      description: 'Every job that can be triggered, with its payload JSON Schema and its schedules.',
      tags: ['jobs'],
      access: 'results:read',
      response: JobCatalogue,
      async handler() {
        return catalogue;
      },
    }),

    defineRoute({
      method: 'post',
      path: '/api/jobs/{name}',
      summary: 'Trigger a job',
      description: `Validates the payload against the job's schema and enqueues it. Job names: ${jobNames.join(', ')}.`,
      tags: ['jobs'],
      access: 'jobs:write',
      params: z.object({ name: z.string().openapi({ enum: [...jobNames], example: 'bars.rollup-1d' }) }),
      // Handed to the job's own schema as parsed: a key-copying schema (z.record) here would drop
      // a `__proto__` key before the job's strict schema could refuse it.
      body: jsonObject,
      docsBody: payloadDocs,
      status: 202,
      response: JobAccepted,
      errors: [404, 503],
      async handler({ params, body, req }) {
        const name = params.name;
        if (!isJobName(name)) {
          throw new NotFoundError(`unknown job "${name}"; valid names: ${jobNames.join(', ')}`);
        }
        const parsed = jobCatalogue[name].schema.safeParse(body);
        if (!parsed.success) throw validationError(parsed.error, 'body');
        // A random id is unique across all queues, so GET /api/jobs/runs/{id} finds exactly this job.
        const job = await queues.enqueue(name, parsed.data as JobInput<JobName>, { jobId: randomUUID() });
        req.res?.setHeader('Location', JOB_BY_ID.replace('{id}', encodeURIComponent(String(job.id))));
        return { id: String(job.id), name, state: 'waiting' as const };
      },
    }),

    defineRoute({
      method: 'get',
      path: JOB_BY_ID,
      summary: 'A job by id',
      description:
        'Searches every queue (formerly `GET /api/jobs/{id}`, still answered, deprecated). Ids BullMQ assigns itself (scheduled runs) are unique per queue only: when one matches in several queues, name the queue with `queue`.',
      tags: ['jobs'],
      access: 'results:read',
      params: z.object({ id: jobId }),
      query: z.object({ queue: z.enum(allQueueNames as [string, ...string[]]).optional() }).strict(),
      response: JobStatus,
      errors: [404, 409, 503],
      async handler({ params, query }) {
        const candidates = query.queue ? [queues.byQueueName(query.queue)!] : queues.all();
        const found = (
          await Promise.all(candidates.map(async (q) => ({ queue: q, job: await findJob(q, params.id) })))
        ).filter((f): f is { queue: Queue; job: Job } => f.job !== undefined);
        if (found.length === 0) throw new NotFoundError(`no job with id "${params.id}"`);
        if (found.length > 1) {
          throw new ConflictError(
            `job id "${params.id}" exists in queues ${found.map((f) => f.queue.name).join(', ')}; add ?queue=<name>`,
          );
        }
        const { queue, job } = found[0]!;
        return {
          id: String(job.id),
          name: job.name,
          queue: queue.name,
          state: await job.getState(),
          progress: job.progress,
          attempts_made: job.attemptsMade,
          data: job.data as unknown,
          result: (job.returnvalue as unknown) ?? null,
          failed_reason: job.failedReason || null,
          created_at: new Date(job.timestamp).toISOString(),
          processed_at: iso(job.processedOn),
          finished_at: iso(job.finishedOn),
        };
      },
    }),
  ];
  return [...routes, ...routes.filter((r) => r.path === JOB_BY_ID).map(legacyAlias)];
}
