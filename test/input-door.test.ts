/**
 * Input at every door: what a job payload or a query parameter means is checked where its schema
 * is (core/input.ts building blocks), so the API answers 4xx naming the field, the CLI exits with
 * a usage error naming it, and the worker refuses a payload that bypassed both, instead of a 202
 * and a job that fails later. The app runs with its real auth module, PostgreSQL and Redis.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Queue, QueueEvents } from 'bullmq';
import type express from 'express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type Auth } from '../api/auth/index.ts';
import { loadConfig } from '../core/config.ts';
import type { Deps } from '../core/deps.ts';
import { createRedis } from '../core/redis.ts';
import { parsePayload } from '../jobs/catalogue.ts';
import { jobOptions } from '../jobs/options.ts';
import { type QueueSet } from '../jobs/queues.ts';
import { startWorkers } from '../jobs/worker-host.ts';
import { clientToken, insertSecurity, startTestApp, stopTestApp } from './api-fixtures.ts';
import { frozenClock, testDeps } from './support.ts';

let deps: Deps;
let queues: QueueSet;
let auth: Auth;
let app: express.Express;
let reader: string;
let writer: string;
let sym: string;

beforeAll(async () => {
  deps = testDeps({ clock: frozenClock('2024-03-15T15:00:00Z') });
  ({ app, queues, auth } = await startTestApp(deps));
  reader = (await clientToken(deps, app, ['results:read'])).header;
  writer = (await clientToken(deps, app, ['jobs:write'])).header;
  sym = (await insertSecurity(deps, { prefix: 'DOOR' })).ticker;
});

afterAll(async () => {
  await stopTestApp({ app, queues, auth }, deps);
});

const fieldsOf = (body: { error: { fields?: { path: string }[] } }) =>
  (body.error.fields ?? []).map((f) => f.path);

async function jobsInQueues(): Promise<number> {
  const counts = await Promise.all(queues.all().map((q) => q.count()));
  return counts.reduce((a, b) => a + b, 0);
}

const backfill = { symbols: ['AAPL'], from: '2024-01-02', to: '2024-01-31' };

describe('POST /api/jobs/{name}: a payload that means nothing is a 400 naming the field, and nothing is queued', () => {
  it.each([
    ['prices.backfill', { ...backfill, from: '2024-02-30' }, 'body.from'],
    ['prices.backfill', { ...backfill, to: '2024-13-01' }, 'body.to'],
    ['prices.backfill', { ...backfill, from: '2024-02-01', to: '2024-01-31' }, 'body.from'],
    ['prices.backfill', { ...backfill, from: '1900-01-02', to: '2099-12-31' }, 'body.from'],
    ['prices.backfill', { ...backfill, from: '0000-01-01' }, 'body.from'],
    ['prices.backfill', { ...backfill, extra: 1 }, 'body.extra'],
    ['bars.rollup-1d', { from: '2024-02-30' }, 'body.from'],
    ['bars.rollup-1d', { from: '2024-03-02', to: '2024-03-01' }, 'body.from'],
    ['bars.rollup-5m', { from: '2024-02-30T14:30:00Z' }, 'body.from'],
    ['bars.rollup-5m', { from: '2024-03-01T15:00:00Z', to: '2024-03-01T15:00:00Z' }, 'body.from'],
    ['bars.rollup-5m', { from: '1901-01-01T00:00:00Z', to: '2099-01-01T00:00:00Z' }, 'body.from'],
    ['fx.rates', { from: '2024-03-05', to: '2024-03-01' }, 'body.from'],
    ['fx.rates', { to: '2023-02-29' }, 'body.to'],
    ['analytics.risk', { asOf: '2024-13-01' }, 'body.asOf'],
    ['data.generate', { endDate: '2024-02-30' }, 'body.endDate'],
    ['data.generate', { seed: [1] }, 'body.seed'],
    ['data.generate', { securities: '5' }, 'body.securities'],
    ['maintenance.retention', { dryRun: 'true' }, 'body.dryRun'],
  ])('%s %j → 400 naming %s', async (name, payload, field) => {
    const before = await jobsInQueues();
    const res = await request(app)
      .post(`/api/jobs/${name}`)
      .set('Authorization', writer)
      .send(payload)
      .expect(400);
    expect(fieldsOf(res.body)).toEqual([field]);
    expect(res.body.error.code).toBe('invalid_request');
    expect(await jobsInQueues()).toBe(before);
  });

  it.each(['__proto__', 'constructor', 'prototype'])(
    'a "%s" key in the JSON body is refused by name, not dropped',
    async (key) => {
      const before = await jobsInQueues();
      const raw = `{"symbols":["AAPL"],"from":"2024-01-02","to":"2024-01-31","${key}":{"mode":"missing"}}`;
      const res = await request(app)
        .post('/api/jobs/prices.backfill')
        .set('Authorization', writer)
        .set('Content-Type', 'application/json')
        .send(raw)
        .expect(400);
      expect(res.body.error.fields).toEqual([{ path: `body.${key}`, message: 'unknown field' }]);
      expect(await jobsInQueues()).toBe(before);
    },
  );

  it('a payload that means something is still accepted', async () => {
    await request(app)
      .post('/api/jobs/prices.backfill')
      .set('Authorization', writer)
      .send(backfill)
      .expect(202);
    await request(app)
      .post('/api/jobs/bars.rollup-5m')
      .set('Authorization', writer)
      .send({ from: '2024-02-29T14:30:00-05:00', to: '2024-03-01T00:00:00Z' })
      .expect(202);
  });
});

describe('numbers in query strings are strictly decimal', () => {
  const routes = () => [
    `/stocks`,
    `/api/v2/realtime/prices/${sym}`,
    `/api/v2/intraday/prices/${sym}`,
    `/api/v2/analytics/${sym}`,
  ];
  it.each([
    ['limit=0x10'],
    ['limit=1e3'],
    ['limit=1e2'],
    ['limit=%205'],
    ['limit=5%20'],
    ['limit=+5'],
    ['limit=05'],
    ['limit=5.0'],
    ['limit='],
    ['limit=-1'],
    ['limit=99999999999999999999'],
    ['limit=1&limit=2'],
  ])('?%s is a 400 naming query.limit on every route', async (qs) => {
    for (const path of routes()) {
      const res = await request(app).get(`${path}?${qs}`).set('Authorization', reader);
      expect(res.status, `${path}?${qs}`).toBe(400);
      expect(fieldsOf(res.body), `${path}?${qs}`).toEqual(['query.limit']);
    }
  });

  it.each([
    ['offset=0x10'],
    ['offset=%201'],
    ['offset='],
    ['offset=1.5'],
    ['offset=-0'],
    ['offset=0&offset=1'],
  ])('GET /stocks?%s is a 400 naming query.offset', async (qs) => {
    const res = await request(app).get(`/stocks?${qs}`).set('Authorization', reader).expect(400);
    expect(fieldsOf(res.body)).toEqual(['query.offset']);
  });

  it('decimal numbers within bounds are read as before', async () => {
    for (const path of routes())
      await request(app).get(`${path}?limit=5`).set('Authorization', reader).expect(200);
    await request(app).get('/stocks?limit=1&offset=0').set('Authorization', reader).expect(200);
  });

  it.each([
    ['start_date=2024-02-30', 'query.start_date'],
    ['end_date=2024-13-01', 'query.end_date'],
    ['start_date=2024-01-01&start_date=2024-01-02', 'query.start_date'],
    ['__proto__=1', 'query.__proto__'],
  ])('historical ?%s is a 400 naming %s', async (qs, field) => {
    const res = await request(app)
      .get(`/api/v2/historical/prices/${sym}?${qs}`)
      .set('Authorization', reader)
      .expect(400);
    expect(fieldsOf(res.body)).toEqual([field]);
  });
});

describe('unknown query parameters are named, also where a route takes none', () => {
  it.each([
    ['/stocks/{sym}?force=1'],
    ['/api/watchlist?limit=5'],
    ['/api/jobs?name=fx.rates'],
    ['/stocks?limit=5&__proto__=1'],
  ])('GET %s', async (path) => {
    const url = path.replace('{sym}', sym);
    const res = await request(app).get(url).set('Authorization', reader).expect(400);
    const key = [...new URLSearchParams(url.split('?')[1]).keys()].at(-1)!;
    expect(res.body.error.fields).toEqual([{ path: `query.${key}`, message: 'unknown field' }]);
  });
});

describe('the other doors', () => {
  it.each([
    ['API_PORT', '0x10'],
    ['JOB_LOCK_MS', '1e3'],
    ['WORKER_CONCURRENCY', ' 5'],
    ['DATABASE_POOL_MAX', '5.5'],
  ])('the environment: %s=%j is refused naming the variable, not read as a number', (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(
      new RegExp(`${name}: must be an integer in decimal digits`),
    );
  });

  it('the environment: a decimal integer in range is read', () => {
    expect(loadConfig({ API_PORT: '8081', JOB_LOCK_MS: '1000' })).toMatchObject({ api: { port: 8081 } });
  });

  it('every Job Scheduler payload passes the catalogue', () => {
    for (const [name, entry] of Object.entries(jobOptions))
      for (const s of entry.schedules) expect(() => parsePayload(name as never, s.payload)).not.toThrow();
  });

  it('a producer in code cannot enqueue a payload that means nothing', async () => {
    await expect(queues.enqueue('fx.rates', { from: '2024-03-05', to: '2024-03-01' })).rejects.toThrow(
      /from/,
    );
    await expect(queues.enqueue('bars.rollup-1d', JSON.parse('{"__proto__":{"from":"x"}}'))).rejects.toThrow(
      /__proto__/,
    );
  });

  it('the worker refuses a payload that bypassed the producers, permanently and naming the field', async () => {
    const host = startWorkers(deps, { names: ['fx.rates'] });
    const events = new QueueEvents('fx.rates', {
      connection: createRedis(deps.config, { forWorker: true }),
      prefix: deps.config.queue.prefix,
    });
    const raw = new Queue('fx.rates', {
      connection: createRedis(deps.config),
      prefix: deps.config.queue.prefix,
    });
    try {
      await events.waitUntilReady();
      const job = await raw.add('fx.rates', { from: '2024-02-30', currencies: ['EUR'] }, { attempts: 3 });
      await expect(job.waitUntilFinished(events, 30_000)).rejects.toThrow(
        /^invalid payload: from: must be a real calendar date/,
      );
      expect((await raw.getJob(job.id!))?.attemptsMade).toBe(1);
    } finally {
      await host.close();
      await raw.close();
      await events.close();
    }
  });

  it('the generate CLI refuses numbers that are not decimal and impossible dates, naming each flag, before touching the database', async () => {
    const cli = fileURLToPath(new URL('../workers/generate.ts', import.meta.url));
    const args = [
      cli,
      '--seed',
      '0x10',
      '--years',
      '1e1',
      '--securities',
      ' 5',
      '--tick-sessions',
      '',
      '--end-date',
      '2024-02-30',
    ];
    const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      execFile(
        process.execPath,
        args,
        // Nowhere to connect: a CLI that let these through would fail on the database instead.
        { env: { ...process.env, DATABASE_URL: 'postgres://nobody@127.0.0.1:9/none', LOG_LEVEL: 'silent' } },
        (err, _stdout, stderr) =>
          resolve({ code: err ? ((err.code as number | undefined) ?? 1) : 0, stderr }),
      );
    });
    expect(code).toBe(2);
    for (const field of ['seed', 'years', 'securities', 'tickSessions', 'endDate'])
      expect(stderr).toMatch(new RegExp(`^${field}: `, 'm'));
  });
});
