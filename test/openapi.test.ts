/**
 * The OpenAPI document the API serves lints clean with @redocly/cli's recommended rules (the
 * committed redocly.yaml, as `npm run lint:openapi` runs it), and the job routes it documents are
 * distinct paths: jobs are triggered at `POST /api/jobs/{name}` and read at
 * `GET /api/jobs/runs/{id}`, while the old `GET /api/jobs/{id}` keeps answering, marked deprecated.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type express from 'express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type Auth } from '../api/auth/index.ts';
import { lintOpenApiFile } from '../api/openapi-cli.ts';
import type { Deps } from '../core/deps.ts';
import { type QueueSet } from '../jobs/queues.ts';
import { clientToken, startTestApp, stopTestApp } from './api-fixtures.ts';
import { testDeps } from './support.ts';

let deps: Deps;
let queues: QueueSet;
let auth: Auth;
let app: express.Express;

beforeAll(async () => {
  deps = testDeps();
  ({ app, queues, auth } = await startTestApp(deps));
});

afterAll(async () => {
  await stopTestApp({ app, queues, auth }, deps);
});

type Doc = { paths: Record<string, Record<string, { operationId?: string }>> };

describe('the OpenAPI document', () => {
  it('lints clean with the committed redocly.yaml: no errors, no warnings', async () => {
    const doc = (await request(app).get('/docs/openapi.json').expect(200)).body as unknown;
    const dir = mkdtempSync(join(tmpdir(), 'openapi-test-'));
    try {
      const file = join(dir, 'openapi.json');
      writeFileSync(file, JSON.stringify(doc));
      const { status, output } = lintOpenApiFile(file);
      expect(output).toContain('Your API description is valid');
      expect(output).not.toMatch(/warning|error/i);
      expect(status).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('has no two paths that differ only in parameter names, and a unique operationId everywhere', async () => {
    const doc = (await request(app).get('/docs/openapi.json').expect(200)).body as Doc;
    const shapes = Object.keys(doc.paths).map((p) => p.replace(/\{[^}]+\}/g, '{}'));
    expect(new Set(shapes).size).toBe(shapes.length);
    const ids = Object.values(doc.paths).flatMap((item) => Object.values(item).map((op) => op.operationId));
    expect(ids.every((id) => typeof id === 'string' && id.length > 0)).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    expect(doc.paths['/api/jobs/{name}']?.post?.operationId).toBe('postJobsByName');
    expect(doc.paths['/api/jobs/runs/{id}']?.get?.operationId).toBe('getJobsRunsById');
    expect(doc.paths['/api/jobs/{id}']).toBeUndefined();
  });
});

describe('reading a job back', () => {
  it('POST answers with a Location under /api/jobs/runs/{id}, which reads the job', async () => {
    const writer = (await clientToken(deps, app, ['jobs:write'])).header;
    const reader = (await clientToken(deps, app, ['results:read'])).header;
    const posted = await request(app)
      .post('/api/jobs/bars.rollup-1d')
      .set('Authorization', writer)
      .send({ from: '2024-03-01' })
      .expect(202);
    expect(posted.headers.location).toBe(`/api/jobs/runs/${posted.body.id}`);
    const got = await request(app).get(posted.headers.location!).set('Authorization', reader).expect(200);
    expect(got.body).toMatchObject({
      id: posted.body.id,
      name: 'bars.rollup-1d',
      data: { from: '2024-03-01' },
    });
    expect(got.headers.deprecation).toBeUndefined();

    // Old clients: the former path answers the same, marked deprecated with its successor.
    const old = await request(app)
      .get(`/api/jobs/${posted.body.id}`)
      .set('Authorization', reader)
      .expect(200);
    expect(old.body).toEqual(got.body);
    expect(old.headers.deprecation).toBe('true');
    expect(old.headers.link).toBe(`</api/jobs/runs/${posted.body.id}>; rel="successor-version"`);
    await request(app).get('/api/jobs/runs/no-such-job').set('Authorization', reader).expect(404);
    await request(app).get('/api/jobs/runs/no-such-job').expect(401);
  });
});
