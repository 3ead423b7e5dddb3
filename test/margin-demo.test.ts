/**
 * Issue 11's "done when" on generated data: after data.generate and corporate-actions.apply (which
 * pays dividends into the client accounts), the nightly margin run issues calls for exactly the
 * clients the generator leverages below the 25% requirement (every fifth, CLIENT-0003, -0008, …)
 * and none for the others, and GET /margin/{clientId} agrees with each snapshot (no ticks are
 * generated, so the latest price is the run date's close for both).
 */
import type express from 'express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Auth } from '../api/auth/index.ts';
import type { Deps } from '../core/deps.ts';
import { dec } from '../core/domain/money.ts';
import { dataGenerate } from '../jobs/processors/data-generate.ts';
import type { MarginPlanResult, MarginRunResult } from '../jobs/processors/margin.ts';
import type { QueueSet } from '../jobs/queues.ts';
import { directContext } from '../jobs/types.ts';
import { startWorkers, type WorkerHost } from '../jobs/worker-host.ts';
import { clientToken, startTestApp, stopTestApp } from './api-fixtures.ts';
import { runApply } from './ca-fixtures.ts';
import { createJobRunner, type JobRunner } from './job-runner.ts';
import { frozenClock, scratchDatabase, testConfig, testDeps } from './support.ts';

const END = '2026-10-02';
let scratch: { url: string; drop: () => Promise<void> };
let deps: Deps;
let queues: QueueSet;
let auth: Auth;
let app: express.Express;
let host: WorkerHost;
let runner: JobRunner;

beforeAll(async () => {
  scratch = await scratchDatabase();
  deps = testDeps({
    config: testConfig({ DATABASE_URL: scratch.url, API_SERIES_CACHE_MB: '0', MARGIN_BATCH_SIZE: '7' }),
    clock: frozenClock('2026-10-02T21:30:00Z'),
  });
  ({ app, queues, auth } = await startTestApp(deps));
  host = startWorkers(deps, { names: ['margin.nightly', 'margin.batch'] });
  runner = createJobRunner(deps, queues);
}, 60_000);

afterAll(async () => {
  await host?.close();
  await runner?.close();
  if (queues) await stopTestApp({ app, queues, auth }, deps);
  await scratch?.drop();
}, 60_000);

describe('margin.nightly on generated data', () => {
  it(
    'calls exactly the leveraged clients, and GET /margin agrees with every snapshot',
    { timeout: 300_000 },
    async () => {
      await dataGenerate(
        deps,
        { seed: 42, scale: 'small', securities: 40, years: 1, tickSessions: 0, endDate: END },
        directContext(),
      );
      await runApply(deps, { asOf: END });
      const planned = await runner.run('margin.nightly', { runDate: END });
      expect(planned.state).toBe('completed');
      const plan = planned.result as MarginPlanResult;
      expect(plan.batches).toBeGreaterThan(1);
      const events = await runner.events('margin.nightly');
      const finalize = (await queues.get('margin.nightly').getJob(plan.finalizeJobId!))!;
      await finalize.waitUntilFinished(events, 120_000);
      const run = (await queues.get('margin.nightly').getJob(plan.finalizeJobId!))!
        .returnvalue as MarginRunResult;

      const night = await deps.repos.margin.nightSummary(END);
      const [{ n: clients }] = (await deps.db('clients').count({ n: '*' })) as [{ n: string }];
      expect(night.length).toBe(Number(clients));
      expect(night.length).toBeGreaterThanOrEqual(10);
      expect(night.filter((n) => n.flag !== null)).toEqual([]);
      const leveraged = night.filter((_, i) => i % 5 === 2).map((n) => n.clientCode);
      expect(leveraged[0]).toBe('CLIENT-0003');
      expect(night.filter((n) => n.inCall).map((n) => n.clientCode)).toEqual(leveraged);
      expect(run.calls).toBe(leveraged.length);
      expect(await deps.db('margin_calls').where({ status: 'OPEN' }).count({ n: '*' })).toEqual([
        { n: String(leveraged.length) },
      ]);

      const token = (await clientToken(deps, app, ['results:read'])).header;
      const snaps = await deps
        .db('margin_snapshots as s')
        .join('clients as c', 'c.id', 's.client_id')
        .where('s.run_date', END)
        .select('s.*', 'c.client_code');
      for (const s of snaps) {
        const res = await request(app).get(`/margin/${s.client_id}`).set('Authorization', token).expect(200);
        const cents = (v: string): number => dec(v).toNumber();
        expect(res.body, s.client_code).toMatchObject({
          portfolio_value: cents(s.long_market_value),
          loan_amount: cents(s.debit_balance),
          net_equity: cents(s.net_equity),
          margin_requirement: cents(s.margin_requirement),
          margin_shortfall: cents(s.margin_shortfall),
          margin_call_triggered: s.margin_call_triggered,
        });
      }
    },
  );
});
