/**
 * The API as it runs: createApp with the real auth module (createAuth), tokens from its own
 * client-credentials endpoint, prices read from the real tables, jobs in real BullMQ queues.
 */
import type express from 'express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiRoutes } from '../api/app.ts';
import { createClient } from '../api/auth/accounts.ts';
import type { Auth, Scope } from '../api/auth/index.ts';
import type { Deps } from '../core/deps.ts';
import { type QueueSet } from '../jobs/queues.ts';
import { insertPriceFixture, type PriceFixture, startTestApp, stopTestApp } from './api-fixtures.ts';
import { testDeps } from './support.ts';

let deps: Deps;
let queues: QueueSet;
let auth: Auth;
let app: express.Express;
let fx: PriceFixture;
let reader: string;
let writer: string;

/** A bearer token from the token endpoint for a new client holding `scopes`. */
async function tokenFor(scopes: Scope[]): Promise<string> {
  const client = await createClient(deps, { name: `api test ${scopes.join(' ')}`, scopes });
  const res = await request(app)
    .post('/oauth/token')
    .auth(client.clientId, client.clientSecret)
    .type('form')
    .send({ grant_type: 'client_credentials' })
    .expect(200);
  expect(res.body.token_type).toBe('Bearer');
  return `Bearer ${res.body.access_token as string}`;
}

beforeAll(async () => {
  deps = testDeps();
  ({ app, queues, auth } = await startTestApp(deps));
  fx = await insertPriceFixture(deps, {
    bars5m: 12,
    lastBucket: '2024-06-03T19:55:00Z',
    dates: ['2024-05-30', '2024-05-31', '2024-06-03'],
  });
  reader = await tokenFor(['results:read']);
  writer = await tokenFor(['jobs:write']);
});

afterAll(async () => {
  await stopTestApp({ app, queues, auth }, deps);
});

describe('public endpoints', () => {
  it('/health, /ready, /metrics and /docs answer without a token', async () => {
    expect((await request(app).get('/health').expect(200)).body).toEqual({ status: 'ok' });
    expect((await request(app).get('/ready').expect(200)).body.status).toBe('ready');
    const metrics = await request(app).get('/metrics').expect(200);
    for (const name of [
      'http_request_duration_seconds',
      'bullmq_jobs',
      'bullmq_queue_depth',
      'bullmq_job_duration_seconds',
    ]) {
      expect(metrics.text).toContain(`# TYPE ${name} `);
    }
    const doc = await request(app).get('/docs/openapi.json').expect(200);
    expect(Object.keys(doc.body.paths)).toEqual(
      expect.arrayContaining([
        '/api/v2/intraday/prices/{symbol}',
        '/api/v2/historical/prices/{symbol}',
        '/api/jobs',
        '/api/jobs/{name}',
        '/api/jobs/runs/{id}',
      ]),
    );
    await request(app).get('/docs/').expect(200);
  });

  it('Bull Board is mounted behind the operator login', async () => {
    const res = await request(app).get('/admin/queues');
    expect([302, 303, 401]).toContain(res.status);
  });
});

describe('tokens', () => {
  const concrete = (path: string) =>
    path.replace('{symbol}', 'AAPL').replace('{name}', 'bars.rollup-1d').replace('{id}', 'x1');

  it('every /api route is 401 without a token, with a forged one, and for unknown paths', async () => {
    const routes = apiRoutes(deps, queues).filter((r) => r.access !== 'public');
    for (const route of routes) {
      const call = () => request(app)[route.method](concrete(route.path));
      await call().expect(401);
      await call().set('Authorization', 'Bearer e30.e30.c2ln').expect(401);
    }
    await request(app).get('/api/anything/else').expect(401);
    expect(await queues.get('bars.rollup-1d').count()).toBe(0);
  });

  it('a token is limited to its scopes', async () => {
    await request(app).get(`/api/v2/intraday/prices/${fx.ticker}`).set('Authorization', writer).expect(403);
    await request(app).post('/api/jobs/bars.rollup-1d').set('Authorization', reader).send({}).expect(403);
  });
});

describe('prices with a results:read token', () => {
  it('intraday: the newest bars, oldest first', async () => {
    const res = await request(app)
      .get(`/api/v2/intraday/prices/${fx.ticker}?interval=5min&limit=3`)
      .set('Authorization', reader)
      .expect(200);
    expect(res.body.count).toBe(3);
    expect(res.body.data.map((d: { timestamp: string }) => d.timestamp)).toEqual([
      '2024-06-03T19:45:00.000Z',
      '2024-06-03T19:50:00.000Z',
      '2024-06-03T19:55:00.000Z',
    ]);
  });

  it('historical: the days in range', async () => {
    const res = await request(app)
      .get(`/api/v2/historical/prices/${fx.ticker}?start_date=2024-05-31&end_date=2024-06-30`)
      .set('Authorization', reader)
      .expect(200);
    expect(res.body).toMatchObject({
      symbol: fx.ticker,
      start_date: '2024-05-31',
      end_date: '2024-06-30',
      count: 2,
    });
    expect(res.body.data.map((d: { date: string }) => d.date)).toEqual(['2024-05-31', '2024-06-03']);
  });

  it('bad input is a 400 naming the field; an unknown symbol is a 404 naming it', async () => {
    const limit = await request(app)
      .get(`/api/v2/intraday/prices/${fx.ticker}?limit=0`)
      .set('Authorization', reader)
      .expect(400);
    expect(limit.body.error.fields[0].path).toBe('query.limit');
    const order = await request(app)
      .get(`/api/v2/historical/prices/${fx.ticker}?start_date=2024-06-02&end_date=2024-06-01`)
      .set('Authorization', reader)
      .expect(400);
    expect(order.body.error.fields[0].path).toBe('query.start_date');
    const unknown = await request(app)
      .get('/api/v2/intraday/prices/ZZNOPE')
      .set('Authorization', reader)
      .expect(404);
    expect(unknown.body.error.message).toBe('unknown symbol "ZZNOPE"');
  });
});

describe('jobs', () => {
  it('jobs:write triggers a job (202) and results:read reads it back from its queue', async () => {
    const payload = { from: '2024-06-03', to: '2024-06-03', symbols: [fx.ticker] };
    const posted = await request(app)
      .post('/api/jobs/bars.rollup-1d')
      .set('Authorization', writer)
      .send(payload)
      .expect(202);
    expect(posted.body).toMatchObject({ name: 'bars.rollup-1d', state: 'waiting' });
    expect((await queues.get('bars.rollup-1d').getJob(posted.body.id))?.data).toEqual(payload);
    const got = await request(app)
      .get(`/api/jobs/${posted.body.id}`)
      .set('Authorization', reader)
      .expect(200);
    expect(got.body).toMatchObject({
      id: posted.body.id,
      queue: 'bars.rollup-1d',
      state: 'waiting',
      data: payload,
    });
  });

  it('an unknown job is 404 and a bad payload is 400 naming the field', async () => {
    await request(app).post('/api/jobs/no.such-job').set('Authorization', writer).send({}).expect(404);
    const bad = await request(app)
      .post('/api/jobs/bars.rollup-1d')
      .set('Authorization', writer)
      .send({ from: 'yesterday' })
      .expect(400);
    expect(bad.body.error.fields).toEqual([{ path: 'body.from', message: 'must be a date YYYY-MM-DD' }]);
    await request(app).get('/api/jobs/nope-1').set('Authorization', reader).expect(404);
  });
});
