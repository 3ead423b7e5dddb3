/**
 * margin.nightly through real BullMQ queues and workers (plan → flow of margin.batch → finalize)
 * on a database of this file's own: SPEC §8's margin rules as named scenarios, the call lifecycle
 * over several nights (issued, updated, met by a deposit; issued, overdue; a re-run that replaces
 * and cancels), flagged clients, the flow over several batches shared by two worker hosts, the
 * endpoints' input checks, and a property test: on random books the SQL snapshot equals
 * accountMargin() on the same rows AND the on-the-fly GET /margin/{clientId} for the same prices.
 */
import { randomBytes } from 'node:crypto';
import type express from 'express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Auth } from '../api/auth/index.ts';
import type { Clock, Deps } from '../core/deps.ts';
import { accountMargin, NO_HOUSE_RULES, type MarginPosition } from '../core/domain/margin.ts';
import { dec, ONE, round } from '../core/domain/money.ts';
import { toHouseRules } from '../core/db/repositories/margin.ts';
import type { JobInput } from '../jobs/catalogue.ts';
import type { MarginPlanResult, MarginRunResult } from '../jobs/processors/margin.ts';
import { callDueDate } from '../jobs/processors/margin.ts';
import type { QueueSet } from '../jobs/queues.ts';
import { startWorkers, type WorkerHost } from '../jobs/worker-host.ts';
import { clientToken, insertSecurity, startTestApp, stopTestApp } from './api-fixtures.ts';
import { createJobRunner, type JobRunner } from './job-runner.ts';
import { closeDeps, scratchDatabase, testConfig, testDeps, prng } from './support.ts';

let scratch: { url: string; drop: () => Promise<void> };
let deps: Deps;
let deps2: Deps;
let queues: QueueSet;
let auth: Auth;
let app: express.Express;
let hosts: WorkerHost[] = [];
let runner: JobRunner;
let reader: string;
let now = '2024-03-28T22:00:00Z';
const clock: Clock = { now: () => new Date(now) };

beforeAll(async () => {
  scratch = await scratchDatabase();
  const config = testConfig({
    DATABASE_URL: scratch.url,
    API_SERIES_CACHE_MB: '0',
    MARGIN_BATCH_SIZE: '4',
    MARGIN_CALL_DUE_DAYS: '2',
  });
  deps = testDeps({ config, clock });
  // A second "host": its own pool, Redis connections and workers over the same queues.
  deps2 = testDeps({ config, clock });
  ({ app, queues, auth } = await startTestApp(deps));
  hosts = [
    startWorkers(deps, { names: ['margin.nightly', 'margin.batch'] }),
    startWorkers(deps2, { names: ['margin.batch'] }),
  ];
  runner = createJobRunner(deps, queues);
  reader = (await clientToken(deps, app, ['results:read'])).header;
  await deps.repos.calendar.ensureSessions('2024-01-01', '2030-12-31');
}, 60_000);

afterAll(async () => {
  for (const h of hosts) await h.close();
  await runner?.close();
  if (deps2) await closeDeps(deps2);
  if (queues) await stopTestApp({ app, queues, auth }, deps);
  await scratch?.drop();
}, 60_000);

const get = (path: string, token: string = reader) => request(app).get(path).set('Authorization', token);

/** Moves the clock (tokens are verified against it, so a new one is minted at the new time). */
async function at(iso: string): Promise<void> {
  now = iso;
  reader = (await clientToken(deps, app, ['results:read'])).header;
}

// ---------------------------------------------------------------- fixtures

async function newClient(opts: { cash?: string; loan?: string; currency?: string } = {}) {
  const [c] = await deps
    .db('clients')
    .insert({ client_code: `MN-${randomBytes(5).toString('hex')}`, name: 'nightly test' })
    .returning<{ id: number }[]>(['id']);
  const [a] = await deps
    .db('accounts')
    .insert({
      client_id: c!.id,
      account_type: 'MARGIN',
      currency: opts.currency ?? 'USD',
      cash_balance: opts.cash ?? '0',
      loan_balance: opts.loan ?? '0',
    })
    .returning<{ id: number }[]>(['id']);
  return { clientId: c!.id, accountId: a!.id };
}

let issuerNo = 900;
async function newIssuer(): Promise<string> {
  issuerNo += 1;
  const id = `ISS-${issuerNo}`;
  await deps
    .db('issuers')
    .insert({ issuer_id: id, issuer_name: `Issuer ${id}`, country: 'US', sector: 'Test' });
  return id;
}

async function sec(
  opts: { currency?: string; marginable?: boolean; houseRate?: string; issuer?: string } = {},
): Promise<{ id: number; ticker: string }> {
  const s = await insertSecurity(deps, {
    prefix: 'MN',
    ...(opts.currency ? { currency: opts.currency } : {}),
  });
  await deps
    .db('securities')
    .where({ id: s.id })
    .update({
      marginable: opts.marginable ?? true,
      house_margin_rate: opts.houseRate ?? null,
      issuer_id: opts.issuer ?? null,
    });
  return s;
}

async function close(securityId: number, date: string, price: string): Promise<void> {
  await deps.db.raw(
    `insert into bars_1d (security_id, session_date, open, high, low, close, volume, source)
     values (?, ?, ?, ?, ?, ?, 1000, 'test')
     on conflict (security_id, session_date) do update set open = excluded.open, high = excluded.high,
       low = excluded.low, close = excluded.close`,
    [securityId, date, price, price, price, price],
  );
}

async function hold(accountId: number, securityId: number, quantity: string): Promise<void> {
  await deps
    .db('positions')
    .insert({ account_id: accountId, security_id: securityId, quantity, cost_basis: '1' });
}

async function cashMove(accountId: number, amount: string): Promise<void> {
  await deps.db.raw('select account_cash_move(?, ?::numeric)', [accountId, amount]);
}

/** Runs a night through the queues: the planning job, then its flow's finalize parent. */
async function runNight(payload: JobInput<'margin.nightly'>): Promise<MarginRunResult> {
  const planned = await runner.run('margin.nightly', payload);
  if (planned.state !== 'completed') throw new Error(`plan ${planned.state}: ${planned.job.failedReason}`);
  const plan = planned.result as MarginPlanResult;
  if (!plan.finalizeJobId) throw new Error(`nothing planned: ${JSON.stringify(plan)}`);
  const events = await runner.events('margin.nightly');
  const job = (await queues.get('margin.nightly').getJob(plan.finalizeJobId))!;
  await job.waitUntilFinished(events, 60_000);
  const done = (await queues.get('margin.nightly').getJob(plan.finalizeJobId))!;
  return done.returnvalue as MarginRunResult;
}

async function finalizeLogs(): Promise<string[]> {
  const jobs = await queues.get('margin.nightly').getJobs(['completed'], 0, 0, false);
  const { logs } = await queues.get('margin.nightly').getJobLogs(jobs[0]!.id!);
  return logs;
}

async function snapshot(clientId: number, runDate: string) {
  const rows = await deps.db('margin_snapshots').where({ client_id: clientId, run_date: runDate });
  expect(rows).toHaveLength(1);
  return rows[0] as Record<string, string | number | boolean | null | object>;
}

async function callsOf(clientId: number) {
  return deps.db('margin_calls').where({ client_id: clientId }).orderBy('id');
}

const D = '2024-03-28';

// ---------------------------------------------------------------- scenarios

describe('margin.nightly: SPEC §8 rules as named scenarios', () => {
  it("seed 0's example: long 20,000, loan 10,000 → equity 10,000, requirement 5,000, no call", async () => {
    const { clientId, accountId } = await newClient({ loan: '10000' });
    const s = await sec();
    await close(s.id, D, '100');
    await hold(accountId, s.id, '200');
    const out = await runNight({ runDate: D, clientIds: [clientId] });
    expect(out).toMatchObject({ snapshots: 1, flagged: 0, calls: 0, issued: 0 });
    const snap = await snapshot(clientId, D);
    expect(snap).toMatchObject({
      long_market_value: '20000.00',
      short_market_value: '0.00',
      credit_balance: '0.00',
      debit_balance: '10000.00',
      net_equity: '10000.00',
      margin_requirement: '5000.00',
      margin_shortfall: '0.00',
      margin_call_triggered: false,
      call_amount: null,
      flag: null,
      positions: 1,
    });
    expect(await callsOf(clientId)).toEqual([]);
    const res = await get(`/margin/${clientId}`).expect(200);
    expect(res.body).toMatchObject({
      portfolio_value: 20000,
      loan_amount: 10000,
      net_equity: 10000,
      margin_requirement: 5000,
      margin_shortfall: 0,
      margin_call_triggered: false,
    });
  });

  it('a long that falls through 25%: no call at 100, a call for the shortfall at 90', async () => {
    const { clientId, accountId } = await newClient({ loan: '7000' });
    const s = await sec();
    await hold(accountId, s.id, '100');
    await close(s.id, '2024-03-27', '100');
    await runNight({ runDate: '2024-03-27', clientIds: [clientId] });
    expect(await snapshot(clientId, '2024-03-27')).toMatchObject({
      net_equity: '3000.00',
      margin_requirement: '2500.00',
      margin_call_triggered: false,
    });
    await close(s.id, D, '90');
    const out = await runNight({ runDate: D, clientIds: [clientId] });
    expect(out).toMatchObject({ calls: 1, issued: 1 });
    expect(await snapshot(clientId, D)).toMatchObject({
      long_market_value: '9000.00',
      net_equity: '2000.00',
      margin_requirement: '2250.00',
      margin_shortfall: '250.00',
      margin_call_triggered: true,
      call_amount: '250.00',
    });
    const calls = await callsOf(clientId);
    expect(calls).toHaveLength(1);
    // Issued Thursday 2024-03-28; Good Friday is no trading day: T+2 = Tuesday 2024-04-02.
    expect(calls[0]).toMatchObject({ status: 'OPEN', amount: '250.00', due_date: '2024-04-02' });
    expect(callDueDate(D, 2)).toBe('2024-04-02');
  });

  it('exactly at the requirement: shortfall 0, no call (equal is not a call)', async () => {
    const { clientId, accountId } = await newClient({ loan: '7500' });
    const s = await sec();
    await close(s.id, D, '100');
    await hold(accountId, s.id, '100');
    await runNight({ runDate: D, clientIds: [clientId] });
    expect(await snapshot(clientId, D)).toMatchObject({
      net_equity: '2500.00',
      margin_requirement: '2500.00',
      margin_shortfall: '0.00',
      margin_call_triggered: false,
    });
    expect(await callsOf(clientId)).toEqual([]);
  });

  it('a short at $5 or more that rises: max(30% × MV, $5 × shares) until equity runs short', async () => {
    const { clientId, accountId } = await newClient({ cash: '3000' });
    const s = await sec();
    await hold(accountId, s.id, '-100');
    await close(s.id, '2024-03-27', '20');
    await runNight({ runDate: '2024-03-27', clientIds: [clientId] });
    // equity 3,000 − 2,000 = 1,000; requirement max(600, 500) = 600.
    expect(await snapshot(clientId, '2024-03-27')).toMatchObject({
      short_market_value: '2000.00',
      net_equity: '1000.00',
      margin_requirement: '600.00',
      margin_call_triggered: false,
    });
    await close(s.id, D, '25');
    await runNight({ runDate: D, clientIds: [clientId] });
    // equity 3,000 − 2,500 = 500; requirement max(750, 500) = 750 → shortfall 250.
    expect(await snapshot(clientId, D)).toMatchObject({
      short_market_value: '2500.00',
      net_equity: '500.00',
      margin_requirement: '750.00',
      margin_shortfall: '250.00',
      margin_call_triggered: true,
    });
    // And the per-share minimum binds when 30% is less: 1,000 shares at $6 → max(1,800, 5,000).
    const other = await newClient({ cash: '10000' });
    const t = await sec();
    await close(t.id, D, '6');
    await hold(other.accountId, t.id, '-1000');
    await runNight({ runDate: D, clientIds: [other.clientId] });
    expect(await snapshot(other.clientId, D)).toMatchObject({
      net_equity: '4000.00',
      margin_requirement: '5000.00',
      margin_shortfall: '1000.00',
      margin_call_triggered: true,
    });
  });

  it('a short under $5: max(100% × MV, $2.50 × shares)', async () => {
    const { clientId, accountId } = await newClient({ cash: '4400' });
    const s = await sec();
    await close(s.id, D, '2');
    await hold(accountId, s.id, '-1000');
    await runNight({ runDate: D, clientIds: [clientId] });
    // MV 2,000; requirement max(2,000, 2,500) = 2,500; equity 4,400 − 2,000 = 2,400 → short 100.
    expect(await snapshot(clientId, D)).toMatchObject({
      short_market_value: '2000.00',
      net_equity: '2400.00',
      margin_requirement: '2500.00',
      margin_shortfall: '100.00',
      margin_call_triggered: true,
    });
  });

  it('a concentration house rate makes a call FINRA alone would not; effective-dated rules change it', async () => {
    const issuer = await newIssuer();
    const { clientId, accountId } = await newClient({ loan: '105000' });
    const a = await sec({ issuer });
    const b = await sec({ issuer });
    await close(a.id, D, '100');
    await close(b.id, D, '50');
    await hold(accountId, a.id, '1000');
    await hold(accountId, b.id, '1000');
    // One issuer, 150,000 gross; equity 45,000. FINRA: 37,500 → no call.
    const finraOnly = accountMargin({
      positions: [
        { securityId: 'a', issuerId: issuer, quantity: '1000', price: '100', fxRate: '1', marginable: true },
        { securityId: 'b', issuerId: issuer, quantity: '1000', price: '50', fxRate: '1', marginable: true },
      ],
      creditBalance: '0',
      debitBalance: '105000',
      house: NO_HOUSE_RULES,
    });
    expect(finraOnly.ok && finraOnly.call).toBe(false);
    // The seeded house rules: over 50% of equity and over 100,000 → 40%: 60,000 → shortfall 15,000.
    await runNight({ runDate: D, clientIds: [clientId] });
    expect(await snapshot(clientId, D)).toMatchObject({
      net_equity: '45000.00',
      margin_requirement: '60000.00',
      margin_shortfall: '15000.00',
      margin_call_triggered: true,
    });
    const res = await get(`/margin/${clientId}`).expect(200);
    expect(res.body.positions.map((p: { rule: string }) => p.rule)).toEqual([
      'concentration',
      'concentration',
    ]);
    // Rules effective from 2030-01-01 without concentration: the same book is not in call then.
    await deps.db('margin_house_rules').insert({ effective_from: '2030-01-01', note: 'test: FINRA only' });
    await close(a.id, '2030-01-02', '100');
    await close(b.id, '2030-01-02', '50');
    await runNight({ runDate: '2030-01-02', clientIds: [clientId] });
    expect(await snapshot(clientId, '2030-01-02')).toMatchObject({
      margin_requirement: '37500.00',
      margin_call_triggered: false,
    });
  });

  it('a non-marginable position needs 100%', async () => {
    const { clientId, accountId } = await newClient({ loan: '1000' });
    const s = await sec({ marginable: false });
    await close(s.id, D, '50');
    await hold(accountId, s.id, '100');
    await runNight({ runDate: D, clientIds: [clientId] });
    // equity 4,000; requirement 5,000 (25% would be 1,250) → shortfall 1,000.
    expect(await snapshot(clientId, D)).toMatchObject({
      net_equity: '4000.00',
      margin_requirement: '5000.00',
      margin_shortfall: '1000.00',
      margin_call_triggered: true,
    });
  });

  it('a missing price or FX rate flags the client with its reason: no figures, no call', async () => {
    const { clientId, accountId } = await newClient({ loan: '99000' });
    const priced = await sec();
    const unpriced = await sec();
    const euro = await sec({ currency: 'EUR' });
    await close(priced.id, D, '10');
    await close(euro.id, D, '10');
    await hold(accountId, priced.id, '100');
    await hold(accountId, unpriced.id, '100');
    await hold(accountId, euro.id, '100');
    const out = await runNight({ runDate: D, clientIds: [clientId] });
    expect(out).toMatchObject({ flagged: 1, calls: 0, issued: 0 });
    const snap = await snapshot(clientId, D);
    expect(snap).toMatchObject({
      flag: 'missing_price_and_fx',
      long_market_value: null,
      net_equity: null,
      margin_requirement: null,
      margin_shortfall: null,
      margin_call_triggered: null,
      call_amount: null,
      debit_balance: '99000.00',
    });
    // Not ordered by the statement (an ORDER BY inside the aggregate costs a sort per client).
    expect((snap.missing as { symbol: string }[]).sort((x, y) => (x.symbol < y.symbol ? -1 : 1))).toEqual(
      [
        { symbol: unpriced.ticker, reason: 'price' },
        { symbol: euro.ticker, reason: 'fx' },
      ].sort((x, y) => (x.symbol < y.symbol ? -1 : 1)),
    );
    expect(await callsOf(clientId)).toEqual([]);
    expect((await finalizeLogs()).join('\n')).toContain(`client ${clientId} missing_price_and_fx`);
    await get(`/margin/${clientId}`).expect(422);
  });

  it('a close older than the run date is used up to MARGIN_PRICE_MAX_AGE_DAYS, then missing', async () => {
    const { clientId, accountId } = await newClient({ cash: '100' });
    const s = await sec();
    await close(s.id, '2024-03-25', '10');
    await hold(accountId, s.id, '10');
    await runNight({ runDate: D, clientIds: [clientId] });
    expect(await snapshot(clientId, D)).toMatchObject({ stale_positions: 1, long_market_value: '100.00' });
    await runNight({ runDate: '2024-04-05', clientIds: [clientId] });
    expect(await snapshot(clientId, '2024-04-05')).toMatchObject({ flag: 'missing_price' });
  });
});

// ---------------------------------------------------------------- lifecycle

describe('margin call lifecycle over several nights', () => {
  it('issued, updated, met by a deposit', async () => {
    const { clientId, accountId } = await newClient({ loan: '8000' });
    const s = await sec();
    await hold(accountId, s.id, '100');
    await close(s.id, '2024-04-01', '100');
    await at('2024-04-01T22:00:00Z');
    expect(await runNight({ runDate: '2024-04-01', clientIds: [clientId] })).toMatchObject({ issued: 1 });
    let [call] = await callsOf(clientId);
    expect(call).toMatchObject({
      status: 'OPEN',
      issued_on: '2024-04-01',
      due_date: '2024-04-03',
      amount: '500.00',
      initial_amount: '500.00',
    });
    const issuedId = call.id;

    await close(s.id, '2024-04-02', '95');
    await at('2024-04-02T22:00:00Z');
    expect(await runNight({ runDate: '2024-04-02', clientIds: [clientId] })).toMatchObject({
      issued: 0,
      updated: 1,
    });
    const calls = await callsOf(clientId);
    expect(calls).toHaveLength(1);
    [call] = calls;
    // equity 9,500 − 8,000 = 1,500; requirement 2,375 → 875.
    expect(call).toMatchObject({ id: issuedId, status: 'OPEN', amount: '875.00', initial_amount: '500.00' });

    await cashMove(accountId, '1000');
    await close(s.id, '2024-04-03', '95');
    await at('2024-04-03T22:00:00Z');
    expect(await runNight({ runDate: '2024-04-03', clientIds: [clientId] })).toMatchObject({ met: 1 });
    [call] = await callsOf(clientId);
    expect(call).toMatchObject({ id: issuedId, status: 'MET', met_on: '2024-04-03', amount: '875.00' });

    const res = await get(`/api/margin/calls?clientId=${clientId}`).expect(200);
    expect(res.body.calls).toHaveLength(1);
    expect(res.body.calls[0]).toMatchObject({
      id: Number(issuedId),
      status: 'MET',
      met_on: '2024-04-03',
      amount: 875,
      initial_amount: 500,
      issued_on: '2024-04-01',
      due_date: '2024-04-03',
    });
    const snaps = await get(
      `/api/margin/snapshots?clientId=${clientId}&from=2024-04-01&to=2024-04-03`,
    ).expect(200);
    expect(snaps.body.snapshots.map((x: { run_date: string }) => x.run_date)).toEqual([
      '2024-04-03',
      '2024-04-02',
      '2024-04-01',
    ]);
    expect(snaps.body.snapshots.map((x: { margin_shortfall: number }) => x.margin_shortfall)).toEqual([
      0, 875, 500,
    ]);
  });

  it('issued, then overdue past its due date while still short (API and logs show it)', async () => {
    const { clientId, accountId } = await newClient({ loan: '8000' });
    const s = await sec();
    await hold(accountId, s.id, '100');
    for (const d of ['2024-04-08', '2024-04-09', '2024-04-10', '2024-04-11']) await close(s.id, d, '100');
    await at('2024-04-08T22:00:00Z');
    await runNight({ runDate: '2024-04-08', clientIds: [clientId] });
    const [issued] = await callsOf(clientId);
    expect(issued).toMatchObject({ status: 'OPEN', due_date: '2024-04-10' });
    await at('2024-04-10T22:00:00Z');
    await runNight({ runDate: '2024-04-10', clientIds: [clientId] });
    // On its due date it is still OPEN.
    expect((await callsOf(clientId))[0]).toMatchObject({ status: 'OPEN' });
    // The next day, before any run: the API shows it OVERDUE (stored OPEN).
    await at('2024-04-11T15:00:00Z');
    let res = await get(`/api/margin/calls?clientId=${clientId}&status=OVERDUE`).expect(200);
    expect(res.body.calls).toHaveLength(1);
    expect(res.body.calls[0]).toMatchObject({ status: 'OVERDUE', stored_status: 'OPEN' });
    expect((await get(`/api/margin/calls?clientId=${clientId}&status=OPEN`).expect(200)).body.calls).toEqual(
      [],
    );
    await at('2024-04-11T22:00:00Z');
    const out = await runNight({ runDate: '2024-04-11', clientIds: [clientId] });
    expect(out.overdue).toBeGreaterThanOrEqual(1);
    expect((await callsOf(clientId))[0]).toMatchObject({ id: issued.id, status: 'OVERDUE' });
    res = await get(`/api/margin/calls?clientId=${clientId}`).expect(200);
    expect(res.body.calls[0]).toMatchObject({ status: 'OVERDUE', stored_status: 'OVERDUE' });
    expect((await finalizeLogs()).join('\n')).toMatch(
      new RegExp(`OVERDUE margin calls: .*client ${clientId} `),
    );
  });

  it('re-running a night replaces its snapshot; a re-run without shortfall cancels the call it issued', async () => {
    const { clientId, accountId } = await newClient({ loan: '8000' });
    const s = await sec();
    await hold(accountId, s.id, '100');
    await close(s.id, '2024-04-15', '100');
    await at('2024-04-15T22:00:00Z');
    await runNight({ runDate: '2024-04-15', clientIds: [clientId] });
    const first = await snapshot(clientId, '2024-04-15');
    await runNight({ runDate: '2024-04-15', clientIds: [clientId] });
    const again = await snapshot(clientId, '2024-04-15');
    expect(again.id).toBe(first.id);
    expect(again).toMatchObject({ margin_shortfall: '500.00' });
    expect(await callsOf(clientId)).toHaveLength(1);

    await cashMove(accountId, '600');
    await runNight({ runDate: '2024-04-15', clientIds: [clientId] });
    expect(await snapshot(clientId, '2024-04-15')).toMatchObject({
      id: first.id,
      margin_call_triggered: false,
    });
    let calls = await callsOf(clientId);
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ status: 'CANCELLED' });

    // And back: the same night re-run short again reopens that call rather than adding one.
    await cashMove(accountId, '-600');
    await runNight({ runDate: '2024-04-15', clientIds: [clientId] });
    calls = await callsOf(clientId);
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ status: 'OPEN', amount: '500.00', note: null });

    // An older night re-run afterwards rewrites its snapshot but not the newer call.
    await close(s.id, '2024-04-12', '100');
    await runNight({ runDate: '2024-04-12', clientIds: [clientId] });
    calls = await callsOf(clientId);
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ issued_on: '2024-04-15', last_run_date: '2024-04-15' });
  });

  it('two runs of the same night at once: one snapshot and one call per client', async () => {
    const a = await newClient({ loan: '8000' });
    const b = await newClient({ loan: '8000' });
    const s = await sec();
    await hold(a.accountId, s.id, '100');
    await hold(b.accountId, s.id, '100');
    await close(s.id, '2024-04-18', '100');
    const ids = [a.clientId, b.clientId];
    await Promise.all([
      runNight({ runDate: '2024-04-18', clientIds: ids }),
      runNight({ runDate: '2024-04-18', clientIds: [...ids].reverse() }),
      runNight({ runDate: '2024-04-18', clientIds: ids }),
    ]);
    for (const c of ids) {
      await snapshot(c, '2024-04-18');
      const calls = await callsOf(c);
      expect(calls).toHaveLength(1);
      expect(calls[0]).toMatchObject({ status: 'OPEN', amount: '500.00' });
    }
  });

  it('a flagged night leaves an open call as it is', async () => {
    const { clientId, accountId } = await newClient({ loan: '8000' });
    const s = await sec();
    await hold(accountId, s.id, '100');
    await close(s.id, '2024-04-16', '100');
    await runNight({ runDate: '2024-04-16', clientIds: [clientId] });
    const t = await sec();
    await hold(accountId, t.id, '5');
    await close(s.id, '2024-04-17', '200');
    await runNight({ runDate: '2024-04-17', clientIds: [clientId] });
    expect(await snapshot(clientId, '2024-04-17')).toMatchObject({ flag: 'missing_price' });
    expect((await callsOf(clientId))[0]).toMatchObject({
      status: 'OPEN',
      amount: '500.00',
      last_run_date: '2024-04-16',
    });
  });
});

// ---------------------------------------------------------------- flow, property

describe('the flow and the property', () => {
  it('random books: snapshot == accountMargin() on the same rows == GET /margin, over several batches and two hosts', async () => {
    const runDate = '2024-05-15';
    await at('2024-05-15T22:00:00Z');
    const r = prng(20241205);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
    const digits = (x: number, d: number) => x.toFixed(d);
    await deps.db('fx_rates').insert([
      {
        from_currency: 'EUR',
        to_currency: 'USD',
        rate_date: '2024-05-14',
        rate: '1.0812345678',
        source: 'test',
      },
      {
        from_currency: 'USD',
        to_currency: 'GBP',
        rate_date: '2024-05-15',
        rate: '0.7954321987',
        source: 'test',
      },
      {
        from_currency: 'USD',
        to_currency: 'EUR',
        rate_date: '2024-05-15',
        rate: '0.9234567891',
        source: 'test',
      },
      {
        from_currency: 'GBP',
        to_currency: 'EUR',
        rate_date: '2024-05-13',
        rate: '1.1623456789',
        source: 'test',
      },
    ]);
    const issuers = [await newIssuer(), await newIssuer(), await newIssuer()];
    const universe: {
      id: number;
      ticker: string;
      currency: string;
      issuer: string | null;
      marginable: boolean;
      houseRate: string | null;
      price: string;
    }[] = [];
    for (let i = 0; i < 24; i++) {
      const currency = pick(['USD', 'USD', 'USD', 'EUR', 'GBP']);
      const issuer = r() < 0.5 ? pick(issuers) : null;
      const marginable = r() > 0.15;
      const houseRate = r() < 0.3 ? digits(0.25 + r() * 0.5, 4) : null;
      const s = await sec({
        currency,
        issuer: issuer ?? undefined,
        marginable,
        ...(houseRate ? { houseRate } : {}),
      } as never);
      const price = r() < 0.25 ? digits(0.5 + r() * 6, 8) : digits(5 + r() * 400, 8);
      await close(s.id, runDate, price);
      await close(s.id, '2024-05-14', digits(Number(price) * 1.1, 8));
      universe.push({ ...s, currency, issuer, marginable, houseRate, price });
    }
    const clients: { clientId: number; accountId: number }[] = [];
    for (let c = 0; c < 30; c++) {
      const currency = pick(['USD', 'USD', 'EUR']);
      const cl = await newClient({
        currency,
        cash: r() < 0.5 ? digits(r() * 200000, 2) : '0',
        loan: r() < 0.7 ? digits(r() * 400000, 2) : '0',
      });
      const n = Math.floor(r() * 7);
      const used = new Set<number>();
      for (let k = 0; k < n; k++) {
        const s = pick(universe);
        if (used.has(s.id)) continue;
        // EUR accounts may not hold GBP securities with no GBP→EUR direct rate… they do (inverse via GBP/EUR).
        used.add(s.id);
        const qty = (r() < 0.3 ? -1 : 1) * Math.floor(1 + r() * 3000);
        await hold(cl.accountId, s.id, digits(qty + (r() < 0.2 ? 0.5 : 0), 8));
      }
      clients.push(cl);
    }
    const out = await runNight({ runDate, clientIds: clients.map((c) => c.clientId) });
    expect(out.batches).toBe(Math.ceil(30 / 4));
    expect(out.snapshots).toBe(30);
    const house = toHouseRules(await deps.repos.margin.houseRulesRow(runDate));
    let compared = 0;
    let inCall = 0;
    for (const cl of clients) {
      const snap = await snapshot(cl.clientId, runDate);
      // The domain function on the same rows (as GET /margin reads them).
      const book = await deps.repos.clients.marginBook(cl.clientId);
      const acct = (await deps.repos.clients.marginAccounts(cl.clientId))![0]!;
      const positions: MarginPosition[] = book.map((b) => ({
        securityId: b.ticker,
        issuerId: b.issuerId,
        quantity: b.quantity,
        price: b.price,
        fxRate:
          b.securityCurrency === b.accountCurrency
            ? ONE
            : b.fxRate === null
              ? null
              : b.fxInverted
                ? ONE.dividedBy(dec(b.fxRate))
                : dec(b.fxRate),
        marginable: b.marginable,
        houseRate: b.houseMarginRate,
      }));
      const m = accountMargin({
        positions,
        creditBalance: acct.cashBalance,
        debitBalance: acct.loanBalance,
        house,
      });
      const res = await get(`/margin/${cl.clientId}`);
      if (!m.ok) {
        expect(snap.flag).not.toBeNull();
        expect(res.status).toBe(422);
        continue;
      }
      expect(res.status).toBe(200);
      const cents = (x: ReturnType<typeof dec>) => round(x, 2).toFixed(2);
      expect({
        lmv: snap.long_market_value,
        smv: snap.short_market_value,
        eq: snap.net_equity,
        req: snap.margin_requirement,
        sf: snap.margin_shortfall,
        call: snap.margin_call_triggered,
        amount: snap.call_amount,
      }).toEqual({
        lmv: cents(m.longMarketValue),
        smv: cents(m.shortMarketValue),
        eq: cents(m.equity),
        req: cents(m.requirement),
        sf: cents(m.shortfall),
        call: m.call,
        amount: m.call ? m.shortfall.times(100).ceil().dividedBy(100).toFixed(2) : null,
      });
      expect({
        portfolio_value: Number(snap.long_market_value),
        short_market_value: Number(snap.short_market_value),
        net_equity: Number(snap.net_equity),
        margin_requirement: Number(snap.margin_requirement),
        margin_shortfall: Number(snap.margin_shortfall),
        margin_call_triggered: snap.margin_call_triggered,
        loan_amount: Number(snap.debit_balance),
        credit_balance: Number(snap.credit_balance),
      }).toEqual({
        portfolio_value: res.body.portfolio_value,
        short_market_value: res.body.short_market_value,
        net_equity: res.body.net_equity,
        margin_requirement: res.body.margin_requirement,
        margin_shortfall: res.body.margin_shortfall,
        margin_call_triggered: res.body.margin_call_triggered,
        loan_amount: res.body.loan_amount,
        credit_balance: res.body.credit_balance,
      });
      compared += 1;
      if (m.call) inCall += 1;
    }
    // The random books exercise both outcomes and most clients are valued.
    expect(compared).toBeGreaterThan(20);
    expect(inCall).toBeGreaterThan(0);
    expect(inCall).toBeLessThan(compared);
    // Calls issued for exactly the clients in call.
    const issued = await deps
      .db('margin_calls')
      .whereIn(
        'client_id',
        clients.map((c) => c.clientId),
      )
      .count<{ count: string }[]>('* as count');
    expect(Number(issued[0]!.count)).toBe(inCall);
  }, 120_000);
});

// ---------------------------------------------------------------- hostile input

describe('bad input', () => {
  it('unknown client ids fail the run permanently, naming them', async () => {
    const run = await runner.run('margin.nightly', { runDate: D, clientIds: [2_000_000_000] });
    expect(run.state).toBe('failed');
    expect(run.job.failedReason).toContain('clientIds: unknown client(s) 2000000000');
    expect(run.job.attemptsMade).toBe(1);
  });

  it('a finalize step outside a flow fails permanently', async () => {
    const run = await runner.run('margin.nightly', { runDate: D, finalize: true });
    expect(run.state).toBe('failed');
    expect(run.job.failedReason).toContain('finalize: runs only as the parent');
  });

  it('endpoints: 400 naming the field, 401 without a token', async () => {
    const field = async (path: string) =>
      ((await get(path).expect(400)).body.error.fields as { path: string }[]).map((f) => f.path);
    expect(await field('/api/margin/calls?status=LATE')).toEqual(['query.status']);
    expect(await field('/api/margin/calls?clientId=abc')).toEqual(['query.clientId']);
    expect(await field('/api/margin/calls?limit=0')).toEqual(['query.limit']);
    expect(await field('/api/margin/calls?bogus=1')).toEqual(['query.bogus']);
    expect(await field('/api/margin/snapshots?from=2024-02-30')).toEqual(['query.from']);
    expect(await field('/api/margin/snapshots?from=2024-05-02&to=2024-05-01')).toEqual(['query.from']);
    expect(await field('/api/margin/snapshots?clientId=1&clientId=2')).toEqual(['query.clientId']);
    await request(app).get('/api/margin/calls').expect(401);
    await request(app).get('/api/margin/snapshots').expect(401);
  });

  it('pages with limit and next_before', async () => {
    const first = await get('/api/margin/snapshots?limit=2').expect(200);
    expect(first.body.snapshots).toHaveLength(2);
    const next = await get(`/api/margin/snapshots?limit=2&before=${first.body.next_before}`).expect(200);
    expect(next.body.snapshots[0].id).toBeLessThan(first.body.snapshots[1].id);
  });
});
