/**
 * `GET /stocks/{symbol}` calls providers within the per-provider quota the lane workers share:
 * a fetch takes a slot of the provider lane's BullMQ limiter key in Redis (what every worker of
 * `prices.quote.<provider>` counts its jobs in), a used-up quota or a lane paused by a provider's
 * 429 is a 503 with Retry-After and no provider call, and a worker's job and the API draw on the
 * same count. Real PostgreSQL, Redis and BullMQ workers; the synthetic provider.
 */
import { QueueEvents } from 'bullmq';
import type express from 'express';
import request from 'supertest';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import { type Auth } from '../api/auth/index.ts';
import type { Deps } from '../core/deps.ts';
import { createRedis } from '../core/redis.ts';
import { type QueueSet } from '../jobs/queues.ts';
import { startWorkers } from '../jobs/worker-host.ts';
import { clientToken, insertSecurity, insertTicks, startTestApp, stopTestApp } from './api-fixtures.ts';
import { frozenClock, testConfig, testDeps } from './support.ts';

// Friday 2024-03-15, 11:00 in New York: the market is open, so a stored quote from yesterday is stale.
const NOW = '2024-03-15T15:00:00Z';
const PER_MINUTE = 2;

let deps: Deps;
let queues: QueueSet;
let auth: Auth;
let app: express.Express;
let reader: string;

beforeAll(async () => {
  deps = testDeps({
    config: testConfig({ SYNTHETIC_REQUESTS_PER_MINUTE: String(PER_MINUTE) }),
    clock: frozenClock(NOW),
  });
  ({ app, queues, auth } = await startTestApp(deps));
  reader = (await clientToken(deps, app, ['results:read'])).header;
});

afterAll(async () => {
  await stopTestApp({ app, queues, auth }, deps);
});

const lane = () => queues.get('prices.quote', 'synthetic');

beforeEach(async () => {
  await lane().removeRateLimitKey();
});

/** A synthetic equity whose only stored price is yesterday's, so /stocks/{symbol} must fetch. */
async function staleStock(): Promise<string> {
  const sec = await insertSecurity(deps, { prefix: 'QTA' });
  await insertTicks(deps, sec.id, [{ ts: '2024-03-14T19:59:40Z', price: '20.00000000', size: 1 }]);
  return sec.ticker;
}

const tickCount = async (ticker: string): Promise<number> => {
  const [row] = await deps
    .db('ticks')
    .join('securities', 'securities.id', 'ticks.security_id')
    .where('securities.ticker', ticker)
    .count<{ n: string }[]>({ n: '*' });
  return Number(row?.n);
};

describe('GET /stocks/{symbol} and the per-provider quota', () => {
  it("counts each fetch in the lane's limiter, as BullMQ's workers read it", async () => {
    const ticker = await staleStock();
    await request(app).get(`/stocks/${ticker}`).set('Authorization', reader).expect(200);
    // BullMQ's own reading of the lane limiter: with a limit of 1 the lane is now at its limit.
    expect(await lane().getRateLimitTtl(1)).toBeGreaterThan(0);
    expect(await lane().getRateLimitTtl(PER_MINUTE)).toBe(0);
  });

  it('answers 503 with Retry-After, without calling the provider, once the quota is used up', async () => {
    for (let i = 0; i < PER_MINUTE; i++) {
      await request(app)
        .get(`/stocks/${await staleStock()}`)
        .set('Authorization', reader)
        .expect(200);
    }
    const over = await staleStock();
    const res = await request(app).get(`/stocks/${over}`).set('Authorization', reader).expect(503);
    expect(res.body.error.code).toBe('provider_rate_limited');
    expect(res.body.error.message).toContain(over);
    expect(res.body.error.message).toContain('prices.quote.synthetic');
    const retryAfter = Number(res.headers['retry-after']);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(await tickCount(over)).toBe(1);
    // A stored price that is current needs no provider call and is still answered.
    const fresh = await insertSecurity(deps, { prefix: 'QTA' });
    await insertTicks(deps, fresh.id, [{ ts: '2024-03-15T14:59:50Z', price: '30.00000000', size: 1 }]);
    await request(app).get(`/stocks/${fresh.ticker}`).set('Authorization', reader).expect(200);
  });

  it("refuses while a provider's 429 has paused the lane (queue.rateLimit), as the workers do", async () => {
    await lane().rateLimit(30_000);
    const ticker = await staleStock();
    const res = await request(app).get(`/stocks/${ticker}`).set('Authorization', reader).expect(503);
    expect(Number(res.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(Number(res.headers['retry-after'])).toBeLessThanOrEqual(30);
    expect(await tickCount(ticker)).toBe(1);
  });

  it("shares one count with the lane's workers: a worker's quote job and the API's fetch use up the quota together", async () => {
    const host = startWorkers(deps, { names: ['prices.quote'] });
    const events = new QueueEvents(lane().name, {
      connection: createRedis(deps.config, { forWorker: true }),
      prefix: deps.config.queue.prefix,
    });
    try {
      await events.waitUntilReady();
      const byWorker = await staleStock();
      const job = await queues.enqueue('prices.quote', { symbol: byWorker, provider: 'synthetic' });
      await job.waitUntilFinished(events, 30_000);
      expect(await tickCount(byWorker)).toBe(2);

      await request(app)
        .get(`/stocks/${await staleStock()}`)
        .set('Authorization', reader)
        .expect(200);
      // Worker 1 + API 1 = the quota of 2: the next fetch waits, by BullMQ's reading too.
      expect(await lane().getRateLimitTtl(PER_MINUTE)).toBeGreaterThan(0);
      await request(app)
        .get(`/stocks/${await staleStock()}`)
        .set('Authorization', reader)
        .expect(503);
    } finally {
      await host.close();
      await events.close();
    }
  });
});
