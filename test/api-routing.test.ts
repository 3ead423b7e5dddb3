/**
 * The API layer against real PostgreSQL and Redis, with a test double of the auth module (its
 * interface only: `Bearer test:<scope,scope>` grants those scopes) so every route can be called
 * with exactly the scopes a case needs. test/api.test.ts runs the same app with the real auth.
 */
import { Worker, type Job } from 'bullmq';
import express, { type RequestHandler } from 'express';
import { pino } from 'pino';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { apiRoutes, closeApp, createApp } from '../api/app.ts';
import type { Auth, Scope } from '../api/auth/index.ts';
import type { Deps } from '../core/deps.ts';
import { NYSE_TIME_ZONE } from '../core/calendar/nyse.ts';
import { createRedis } from '../core/redis.ts';
import { jobNames } from '../jobs/catalogue.ts';
import { allQueueNames, createQueues, type QueueSet } from '../jobs/queues.ts';
import { insertPriceFixture, type PriceFixture } from './api-fixtures.ts';
import { closeDeps, dropPrefix, frozenClock, testDeps } from './support.ts';

function fakeAuth(): Auth {
  const requireScope =
    (...scopes: Scope[]): RequestHandler =>
    (req, res, next) => {
      const m = /^Bearer test:([a-z:,]*)$/.exec(req.get('authorization') ?? '');
      if (!m) {
        res.status(401).json({ error: 'unauthorized' });
        return;
      }
      const held = (m[1] ?? '').split(',');
      if (!held.includes('admin') && !scopes.every((s) => held.includes(s))) {
        res.status(403).json({ error: 'insufficient_scope' });
        return;
      }
      next();
    };
  const refuse: RequestHandler = (_req, res) => {
    res.status(401).end();
  };
  return {
    router: express.Router(),
    requireScope,
    requireOperator: refuse,
    session: (_req, _res, next) => next(),
    close: async () => {},
  };
}

const READ = 'Bearer test:results:read';
const WRITE = 'Bearer test:jobs:write';

let deps: Deps;
let queues: QueueSet;
let app: express.Express;
let fx: PriceFixture;

beforeAll(async () => {
  // Friday 2024-03-15, 11:00 in New York.
  deps = testDeps({ clock: frozenClock('2024-03-15T15:00:00Z') });
  queues = createQueues(deps.config);
  app = await createApp(deps, { queues, auth: fakeAuth() });
  fx = await insertPriceFixture(deps, {
    bars5m: 30,
    lastBucket: '2024-03-15T14:55:00Z',
    dates: ['2023-03-14', '2023-03-15', '2023-06-01', '2024-03-14', '2024-03-15'],
  });
});

afterAll(async () => {
  await closeApp(app);
  await queues.close();
  await dropPrefix(deps);
  await closeDeps(deps);
});

describe('probes, metrics and docs', () => {
  it('/health is 200 without a token', async () => {
    const res = await request(app).get('/health').expect(200);
    expect(res.body).toEqual({ status: 'ok' });
  });

  it('/ready checks PostgreSQL and Redis', async () => {
    const res = await request(app).get('/ready').expect(200);
    expect(res.body).toEqual({ status: 'ready', checks: { postgres: 'ok', redis: 'ok' } });
  });

  it('/ready is 503 naming Redis when Redis is gone', async () => {
    const broken = testDeps();
    const brokenQueues = createQueues(broken.config);
    const brokenApp = await createApp(broken, { queues: brokenQueues, auth: fakeAuth() });
    try {
      broken.redis.disconnect();
      const res = await request(brokenApp).get('/ready').expect(503);
      expect(res.body.status).toBe('not_ready');
      expect(res.body.checks.postgres).toBe('ok');
      expect(res.body.checks.redis).toMatch(/^error: /);
    } finally {
      await closeApp(brokenApp);
      await brokenQueues.close();
      await dropPrefix({ ...broken, redis: deps.redis });
      await closeDeps(broken);
    }
  });

  it('/metrics has HTTP metrics by route pattern, queue gauges and the job duration histogram', async () => {
    await request(app).get(`/api/v2/intraday/prices/${fx.ticker}`).set('Authorization', READ).expect(200);
    const res = await request(app).get('/metrics').expect(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    const text = res.text;
    expect(text).toContain('# TYPE http_request_duration_seconds histogram');
    expect(text).toMatch(
      /http_request_duration_seconds_count\{method="GET",route="\/api\/v2\/intraday\/prices\/:symbol",status="200"\} \d+/,
    );
    expect(text).not.toContain(fx.ticker);
    for (const name of allQueueNames) {
      expect(text).toContain(`bullmq_jobs{queue="${name}",state="waiting"}`);
      expect(text).toContain(`bullmq_queue_depth{queue="${name}"}`);
    }
    expect(text).toContain('# TYPE bullmq_job_duration_seconds histogram');
    expect(text).toContain('process_cpu_user_seconds_total');
  });

  it('logs one line per request with the path and status, never headers or the query string', async () => {
    const lines: string[] = [];
    const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(line) });
    const logged = await createApp({ ...deps, logger }, { queues, auth: fakeAuth() });
    try {
      await request(logged)
        .get(`/api/v2/intraday/prices/${fx.ticker}?limit=2&code=query-secret`)
        .set('Authorization', 'Bearer test:results:read')
        .set('Cookie', 'sid=cookie-secret')
        .expect(400);
      await vi.waitFor(() => expect(lines.some((l) => l.includes('"status":400'))).toBe(true));
      const line = JSON.parse(lines.find((l) => l.includes('"status":400'))!) as Record<string, unknown>;
      expect(line).toMatchObject({
        method: 'GET',
        path: `/api/v2/intraday/prices/${fx.ticker}`,
        status: 400,
      });
      expect(lines.join('')).not.toMatch(/query-secret|cookie-secret|Bearer|results:read/);
    } finally {
      await closeApp(logged);
    }
  });

  it('/docs/openapi.json lists every route with its security and the client-credentials flow', async () => {
    const res = await request(app).get('/docs/openapi.json').expect(200);
    const doc = res.body as {
      paths: Record<string, Record<string, { security?: Record<string, string[]>[] }>>;
      components: {
        securitySchemes: Record<string, { flows?: { clientCredentials?: { tokenUrl: string } } }>;
      };
    };
    for (const route of apiRoutes(deps, queues).filter((r) => !r.undocumented)) {
      expect(doc.paths[route.path]?.[route.method], `${route.method} ${route.path}`).toBeDefined();
    }
    expect(doc.paths['/api/v2/intraday/prices/{symbol}']?.get?.security).toEqual([
      { bearerAuth: [] },
      { oauth2: ['results:read'] },
    ]);
    expect(doc.paths['/api/jobs/{name}']?.post?.security).toEqual([
      { bearerAuth: [] },
      { oauth2: ['jobs:write'] },
    ]);
    expect(doc.paths['/health']?.get?.security).toEqual([]);
    expect(doc.components.securitySchemes.oauth2?.flows?.clientCredentials?.tokenUrl).toBe(
      `${deps.config.api.publicUrl}/oauth/token`,
    );
  });

  it('/docs serves the Swagger UI', async () => {
    await request(app).get('/docs').expect(301).expect('Location', '/docs/');
    const res = await request(app).get('/docs/').expect(200);
    expect(res.text).toContain('swagger-ui');
    const init = await request(app).get('/docs/swagger-ui-init.js').expect(200);
    expect(init.text).toContain('/docs/openapi.json');
  });
});

describe('access', () => {
  const concrete = (path: string) =>
    path.replace('{symbol}', 'AAPL').replace('{name}', 'bars.rollup-1d').replace('{id}', 'x1');

  it('every protected route is 401 without a token, and nothing of it runs', async () => {
    const protectedRoutes = apiRoutes(deps, queues).filter((r) => r.access !== 'public');
    expect(protectedRoutes.length).toBeGreaterThanOrEqual(5);
    for (const route of protectedRoutes) {
      await request(app)[route.method](concrete(route.path)).expect(401);
    }
    expect(await queues.get('bars.rollup-1d').count()).toBe(0);
  });

  it('unknown /api paths are 401 without a token and 404 with one', async () => {
    await request(app).get('/api/nope').expect(401);
    const res = await request(app).get('/api/nope').set('Authorization', READ).expect(404);
    expect(res.body.error).toMatchObject({ status: 404, code: 'not_found' });
  });

  it('a token without the scope is 403', async () => {
    await request(app).get(`/api/v2/intraday/prices/${fx.ticker}`).set('Authorization', WRITE).expect(403);
    await request(app).post('/api/jobs/bars.rollup-1d').set('Authorization', READ).send({}).expect(403);
    expect(await queues.get('bars.rollup-1d').count()).toBe(0);
  });

  it('unknown routes outside /api are 404 with the error body', async () => {
    const res = await request(app).get('/nowhere').expect(404);
    expect(res.body).toEqual({
      error: { status: 404, code: 'not_found', message: 'no route for GET /nowhere' },
    });
  });
});

describe('intraday prices', () => {
  const url = () => `/api/v2/intraday/prices/${fx.ticker}`;

  it('returns the newest `limit` bars, oldest first, as numbers', async () => {
    const res = await request(app).get(url()).query({ limit: 5 }).set('Authorization', READ).expect(200);
    expect(res.body).toMatchObject({
      symbol: fx.ticker,
      interval: '5min',
      timezone: NYSE_TIME_ZONE,
      count: 5,
    });
    const stamps = (res.body.data as { timestamp: string }[]).map((d) => d.timestamp);
    expect(stamps).toEqual(fx.buckets.slice(-5).map((b) => b.toISOString()));
    expect(res.body.data[0]).toEqual({
      timestamp: '2024-03-15T14:35:00.000Z',
      open: 100.25,
      high: 101.25,
      low: 99.25,
      close: 100.75,
      volume: 1025,
      vwap: 100.5,
      trade_count: 35,
    });
    // The newest bar has no volume: its VWAP is null, not 0.
    expect(res.body.data[4]).toMatchObject({ volume: 0, vwap: null });
  });

  it('defaults to 100 bars (all 30 here) and upper-cases the symbol', async () => {
    const res = await request(app)
      .get(`/api/v2/intraday/prices/${fx.ticker.toLowerCase()}`)
      .set('Authorization', READ)
      .expect(200);
    expect(res.body.symbol).toBe(fx.ticker);
    expect(res.body.count).toBe(30);
  });

  it.each([
    ['limit=0', 'query.limit'],
    ['limit=5001', 'query.limit'],
    ['limit=abc', 'query.limit'],
    ['limit=2.5', 'query.limit'],
    ['interval=1min', 'query.interval'],
    ['lmit=5', 'query.lmit'],
  ])('400 for %s naming %s', async (qs, field) => {
    const res = await request(app).get(`${url()}?${qs}`).set('Authorization', READ).expect(400);
    expect(res.body.error.status).toBe(400);
    expect(res.body.error.code).toBe('invalid_request');
    expect(res.body.error.fields.map((f: { path: string }) => f.path)).toEqual([field]);
    expect(res.body.error.message).toContain(field);
  });

  it('400 naming params.symbol for a symbol that cannot be a ticker', async () => {
    const res = await request(app)
      .get("/api/v2/intraday/prices/AA'%3B--")
      .set('Authorization', READ)
      .expect(400);
    expect(res.body.error.fields).toEqual([
      { path: 'params.symbol', message: expect.stringContaining('ticker') },
    ]);
  });

  it('404 naming an unknown symbol', async () => {
    const res = await request(app)
      .get('/api/v2/intraday/prices/NOSUCH1')
      .set('Authorization', READ)
      .expect(404);
    expect(res.body.error).toEqual({ status: 404, code: 'not_found', message: 'unknown symbol "NOSUCH1"' });
  });
});

describe('historical prices', () => {
  const url = () => `/api/v2/historical/prices/${fx.ticker}`;

  it('returns the bars in [start_date, end_date], oldest first', async () => {
    const res = await request(app)
      .get(url())
      .query({ start_date: '2023-03-15', end_date: '2024-03-14' })
      .set('Authorization', READ)
      .expect(200);
    expect(res.body).toMatchObject({
      symbol: fx.ticker,
      start_date: '2023-03-15',
      end_date: '2024-03-14',
      count: 3,
    });
    expect(res.body.data.map((d: { date: string }) => d.date)).toEqual([
      '2023-03-15',
      '2023-06-01',
      '2024-03-14',
    ]);
    expect(res.body.data[0]).toEqual({
      date: '2023-03-15',
      open: 187.12345678,
      high: 190,
      low: 185.5,
      close: 188.25,
      adj_close: 188.25, // the stored adjusted close: no actions, so the close
      volume: 50_000_001,
      vwap: null,
      trade_count: null,
    });
    expect(res.body.data[1]).toMatchObject({ adj_close: 188.5, vwap: 188.25, trade_count: 400_000 });
  });

  it('defaults to the year up to today in New York (from the injected clock)', async () => {
    const res = await request(app).get(url()).set('Authorization', READ).expect(200);
    expect(res.body).toMatchObject({ start_date: '2023-03-15', end_date: '2024-03-15', count: 4 });
  });

  it.each([
    ['start_date=2024-02-30', 'query.start_date', 'calendar'],
    ['end_date=15/03/2024', 'query.end_date', 'YYYY-MM-DD'],
    ['start_date=2024-03-02&end_date=2024-03-01', 'query.start_date', 'after end_date'],
    ['start_date=2000-01-01&end_date=2024-01-01', 'query.start_date', '20 years'],
    ['start_date=2024-01-01&start_date=2024-01-02', 'query.start_date', 'string'],
  ])('400 for %s naming %s', async (qs, field, words) => {
    const res = await request(app).get(`${url()}?${qs}`).set('Authorization', READ).expect(400);
    expect(res.body.error.fields).toEqual([{ path: field, message: expect.stringContaining(words) }]);
  });

  it('404 naming an unknown symbol', async () => {
    const res = await request(app)
      .get('/api/v2/historical/prices/NOSUCH2')
      .set('Authorization', READ)
      .expect(404);
    expect(res.body.error.message).toBe('unknown symbol "NOSUCH2"');
  });
});

describe('jobs', () => {
  it('GET /api/jobs lists the catalogue with payload JSON Schemas and schedules', async () => {
    const res = await request(app).get('/api/jobs').set('Authorization', READ).expect(200);
    const jobs = res.body.jobs as {
      name: string;
      payload_schema: { properties: object };
      schedules: object[];
    }[];
    expect(jobs.map((j) => j.name)).toEqual(jobNames);
    const rollup = jobs.find((j) => j.name === 'bars.rollup-1d')!;
    expect(Object.keys(rollup.payload_schema.properties)).toEqual(['from', 'to', 'symbols']);
    expect(rollup.schedules).toContainEqual({
      id: 'bars.rollup-1d:after-close',
      pattern: '20 16 * * 1-5',
      tz: 'America/New_York',
      payload: {},
    });
  });

  it('POST enqueues a validated job (202) that is really in its BullMQ queue, and GET reads it back', async () => {
    const payload = { from: '2024-03-01', to: '2024-03-15', symbols: [fx.ticker] };
    const res = await request(app)
      .post('/api/jobs/bars.rollup-1d')
      .set('Authorization', WRITE)
      .send(payload)
      .expect(202);
    expect(res.body).toEqual({ id: expect.any(String), name: 'bars.rollup-1d', state: 'waiting' });
    const inQueue = await queues.get('bars.rollup-1d').getJob(res.body.id);
    expect(inQueue?.data).toEqual(payload);

    const got = await request(app).get(`/api/jobs/${res.body.id}`).set('Authorization', READ).expect(200);
    expect(got.body).toMatchObject({
      id: res.body.id,
      name: 'bars.rollup-1d',
      queue: 'bars.rollup-1d',
      state: 'waiting',
      progress: 0,
      attempts_made: 0,
      data: payload,
      result: null,
      failed_reason: null,
      processed_at: null,
      finished_at: null,
    });
    expect(Date.parse(got.body.created_at)).not.toBeNaN();
  });

  it('POST with no body uses the schema defaults', async () => {
    const res = await request(app).post('/api/jobs/data.generate').set('Authorization', WRITE).expect(202);
    const job = await queues.get('data.generate').getJob(res.body.id);
    expect(job?.data).toEqual({ seed: 42, scale: 'small' });
  });

  it('POST for an unknown job is 404 listing the valid names', async () => {
    const res = await request(app)
      .post('/api/jobs/bars.rollup-1h')
      .set('Authorization', WRITE)
      .send({})
      .expect(404);
    expect(res.body.error.message).toBe(`unknown job "bars.rollup-1h"; valid names: ${jobNames.join(', ')}`);
  });

  it.each([
    [{ seed: -1 }, 'body.seed'],
    [{ scale: 'huge' }, 'body.scale'],
    [{ seeds: 1 }, 'body.seeds'],
  ])('POST data.generate with %j is 400 naming %s', async (payload, field) => {
    const res = await request(app)
      .post('/api/jobs/data.generate')
      .set('Authorization', WRITE)
      .send(payload)
      .expect(400);
    expect(res.body.error.fields.map((f: { path: string }) => f.path)).toEqual([field]);
  });

  it('POST with a bad element of a list names its index', async () => {
    const res = await request(app)
      .post('/api/jobs/bars.rollup-5m')
      .set('Authorization', WRITE)
      .send({ symbols: ['AAPL', 'bad one'] })
      .expect(400);
    expect(res.body.error.fields).toEqual([
      { path: 'body.symbols.1', message: 'must be an upper-case ticker' },
    ]);
  });

  it('POST with malformed JSON or a non-object body is 400 naming the body', async () => {
    const bad = await request(app)
      .post('/api/jobs/data.generate')
      .set('Authorization', WRITE)
      .set('Content-Type', 'application/json')
      .send('{"seed": ')
      .expect(400);
    expect(bad.body.error).toMatchObject({ code: 'invalid_json', fields: [{ path: 'body' }] });
    const list = await request(app)
      .post('/api/jobs/data.generate')
      .set('Authorization', WRITE)
      .send([1])
      .expect(400);
    expect(list.body.error.fields.map((f: { path: string }) => f.path)).toEqual(['body']);
  });

  it('POST with a body that is not JSON is 415, and one over the limit is 413', async () => {
    const before = await queues.get('data.generate').count();
    const form = await request(app)
      .post('/api/jobs/data.generate')
      .set('Authorization', WRITE)
      .type('form')
      .send('seed=7')
      .expect(415);
    expect(form.body.error).toMatchObject({ code: 'unsupported_media_type', fields: [{ path: 'body' }] });
    const huge = { symbols: Array.from({ length: 30_000 }, (_, i) => `SYMBOL${i}`) };
    const big = await request(app)
      .post('/api/jobs/bars.rollup-5m')
      .set('Authorization', WRITE)
      .send(huge)
      .expect(413);
    expect(big.body.error.code).toBe('payload_too_large');
    // Without a token the body is never read: 401, not 413.
    await request(app).post('/api/jobs/bars.rollup-5m').send(huge).expect(401);
    expect(await queues.get('data.generate').count()).toBe(before);
  });

  it('GET of an unknown id is 404; ids that name queue keys or carry odd characters are never read as jobs', async () => {
    await request(app).get('/api/jobs/no-such-job').set('Authorization', READ).expect(404);
    for (const key of ['meta', 'id', 'wait', 'events']) {
      await request(app).get(`/api/jobs/${key}`).set('Authorization', READ).expect(404);
    }
    const res = await request(app).get('/api/jobs/a%20b').set('Authorization', READ).expect(400);
    expect(res.body.error.fields[0].path).toBe('params.id');
  });

  it('an id present in two queues (ids are unique per queue only) is 409 until the queue is named', async () => {
    await queues.get('bars.rollup-5m').add('bars.rollup-5m', {}, { jobId: 'same-id' });
    await queues.get('bars.rollup-1d').add('bars.rollup-1d', {}, { jobId: 'same-id' });
    const res = await request(app).get('/api/jobs/same-id').set('Authorization', READ).expect(409);
    expect(res.body.error.message).toContain('?queue=');
    const one = await request(app)
      .get('/api/jobs/same-id')
      .query({ queue: 'bars.rollup-5m' })
      .set('Authorization', READ)
      .expect(200);
    expect(one.body.queue).toBe('bars.rollup-5m');
  });

  it('a finished job shows its result, and its duration reaches the histogram', async () => {
    const queue = queues.get('bars.rollup-1d');
    await queue.obliterate({ force: true });
    const connection = createRedis(deps.config, { forWorker: true });
    const worker = new Worker(
      queue.name,
      async (job: Job) => {
        await job.updateProgress(100);
        return { rows: 3 };
      },
      { connection, prefix: deps.config.queue.prefix },
    );
    try {
      const posted = await request(app).post('/api/jobs/bars.rollup-1d').set('Authorization', WRITE).send({});
      expect(posted.status).toBe(202);
      await vi.waitFor(
        async () => {
          const got = await request(app).get(`/api/jobs/${posted.body.id}`).set('Authorization', READ);
          expect(got.body).toMatchObject({ state: 'completed', progress: 100, result: { rows: 3 } });
          expect(got.body.finished_at).not.toBeNull();
        },
        { timeout: 20_000, interval: 100 },
      );
      await vi.waitFor(
        async () => {
          const metrics = await request(app).get('/metrics');
          expect(metrics.text).toMatch(
            /bullmq_job_duration_seconds_count\{queue="bars.rollup-1d",status="completed"\} 1\n/,
          );
        },
        { timeout: 20_000, interval: 100 },
      );
    } finally {
      await worker.close();
      await connection.quit();
    }
  });
});
