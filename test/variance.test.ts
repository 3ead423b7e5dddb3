/**
 * variance.quarterly (issue 9, SPEC §8) on a database of this file's own: the named scenarios of
 * the issue, each in a portfolio of its own, run through a real BullMQ queue and worker and read
 * back from variance_rows; then re-running replaces exactly, a year's total equals the sum of its
 * quarters over the same chain, the scheduled (empty) payload works only on the first trading
 * day after a quarter end, and bad input fails permanently naming the field.
 *
 * Q1 2025: d0 = 2024-12-31, d1 = 2025-03-31 (both NYSE sessions).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PeriodSpec } from '../core/db/repositories/platform.ts';
import type { Deps } from '../core/deps.ts';
import { dec } from '../core/domain/money.ts';
import { createQueues, type QueueSet } from '../jobs/queues.ts';
import { varianceQuarterly } from '../jobs/processors/holdings.ts';
import { directContext } from '../jobs/types.ts';
import { startWorkers, type WorkerHost } from '../jobs/worker-host.ts';
import {
  addAction,
  addCloses,
  addFx,
  addLedger,
  addPortfolio,
  addSecurity,
  addTrade,
  holdingsOf,
} from './books-fixtures.ts';
import { closeJobTest, createJobRunner, type JobRunner } from './job-runner.ts';
import { frozenClock, scratchDatabase, testConfig, testDeps } from './support.ts';

let deps: Deps;
let queues: QueueSet;
let host: WorkerHost;
let runner: JobRunner;
let scratch: { url: string; drop: () => Promise<void> };
const sec: Record<string, number> = {};

const D0 = '2024-12-31';
const D1 = '2025-03-31';
const Q1: PeriodSpec = { kind: 'labels', labels: ['2025Q1'] };

interface Row {
  portfolio_id: string;
  security_id: number;
  period_label: string;
  qty_start: string;
  qty_end: string;
  price_start: string | null;
  split_factor: string;
  mv_start: string | null;
  mv_end: string | null;
  corp_action_effect: string | null;
  qty_effect: string | null;
  price_effect: string | null;
  fx_effect: string | null;
  total_pnl: string | null;
  distributions: string;
  flag: string | null;
}

async function rowsOf(portfolio: string, from = '2025-01-01', to = '2025-03-31'): Promise<Row[]> {
  const res = await deps.db.raw<{ rows: Row[] }>(
    `select portfolio_id, security_id, period_label, qty_start::text, qty_end::text, price_start::text,
            split_factor::text, mv_start::text, mv_end::text, corp_action_effect::text, qty_effect::text,
            price_effect::text, fx_effect::text, total_pnl::text, distributions::text, flag
       from variance_rows where portfolio_id = ? and period_from = ? and period_to = ? order by security_id`,
    [portfolio, from, to],
  );
  return res.rows;
}

const effects = (r: Row) => ({
  corp: r.corp_action_effect,
  qty: r.qty_effect,
  price: r.price_effect,
  fx: r.fx_effect,
  total: r.total_pnl,
});

beforeAll(async () => {
  scratch = await scratchDatabase();
  deps = testDeps({
    config: testConfig({ DATABASE_URL: scratch.url }),
    clock: frozenClock('2026-01-05T15:00:00Z'),
  });
  queues = createQueues(deps.config);
  host = startWorkers(deps, { names: ['variance.quarterly', 'holdings.snapshot'] });
  runner = createJobRunner(deps, queues);
  const db = deps.db;
  for (let p = 101; p <= 112; p++) await addPortfolio(db, `PORT-${p}`);

  // SPEC §8: 100 sh at €50, EURUSD 1.10, a 2:1 split, then 250 sh at €27, EURUSD 1.05.
  sec.EUR = await addSecurity(db, { code: 'SEC-1001', ticker: 'EURCO', currency: 'EUR' });
  await addFx(db, 'EUR', 'USD', { '2024-12-02': '1.08', [D0]: '1.10', '2025-03-03': '1.06', [D1]: '1.05' });
  await addCloses(db, sec.EUR, { '2024-12-02': '50', [D0]: '50', '2025-03-03': '27', [D1]: '27' });
  await addTrade(db, {
    portfolio: 'PORT-101',
    securityId: sec.EUR,
    type: 'BUY',
    quantity: '100',
    price: '50',
    date: '2024-12-02',
    currency: 'EUR',
  });
  const split = await addAction(db, {
    securityId: sec.EUR,
    type: 'STOCK_SPLIT',
    exDate: '2025-02-03',
    ratio: '2',
    currency: 'EUR',
  });
  await addLedger(db, {
    actionId: split,
    portfolio: 'PORT-101',
    type: 'STOCK_SPLIT',
    exDate: '2025-02-03',
    currency: 'EUR',
    held: '100',
    delta: '100',
    ratio: '2',
  });
  await addTrade(db, {
    portfolio: 'PORT-101',
    securityId: sec.EUR,
    type: 'BUY',
    quantity: '50',
    price: '27',
    date: '2025-03-03',
    currency: 'EUR',
  });

  // New position: a priced security (start price = the d0 close) and an IPO (first trade price).
  sec.NEW = await addSecurity(db, { code: 'SEC-1002', ticker: 'NEWCO', currency: 'USD' });
  await addCloses(db, sec.NEW, { [D0]: '10', '2025-02-10': '11', [D1]: '12' });
  await addTrade(db, {
    portfolio: 'PORT-102',
    securityId: sec.NEW,
    type: 'BUY',
    quantity: '100',
    price: '11',
    date: '2025-02-10',
    currency: 'USD',
  });
  sec.IPO = await addSecurity(db, { code: 'SEC-1003', ticker: 'IPOCO', currency: 'USD' });
  await addCloses(db, sec.IPO, { '2025-02-10': '20', [D1]: '25' });
  await addTrade(db, {
    portfolio: 'PORT-102',
    securityId: sec.IPO,
    type: 'BUY',
    quantity: '10',
    price: '20',
    date: '2025-02-10',
    currency: 'USD',
  });

  // Full exit of a GBP holding.
  sec.GBP = await addSecurity(db, { code: 'SEC-1004', ticker: 'GBPCO', currency: 'GBP' });
  await addFx(db, 'GBP', 'USD', { '2024-11-01': '1.28', [D0]: '1.25', '2025-02-10': '1.24', [D1]: '1.29' });
  await addCloses(db, sec.GBP, { '2024-11-01': '10', [D0]: '10', '2025-02-10': '11', [D1]: '11.5' });
  await addTrade(db, {
    portfolio: 'PORT-103',
    securityId: sec.GBP,
    type: 'BUY',
    quantity: '100',
    price: '10',
    date: '2024-11-01',
    currency: 'GBP',
  });
  await addTrade(db, {
    portfolio: 'PORT-103',
    securityId: sec.GBP,
    type: 'SELL',
    quantity: '100',
    price: '11',
    date: '2025-02-10',
    currency: 'GBP',
  });

  // Reverse split 1:10 of 1,005 shares: 100 kept, 0.5 paid in lieu at the ex-date price 10.40.
  sec.REV = await addSecurity(db, { code: 'SEC-1005', ticker: 'REVCO', currency: 'USD' });
  await addCloses(db, sec.REV, { '2024-10-01': '1', [D0]: '1', '2025-02-03': '10.40', [D1]: '11' });
  await addTrade(db, {
    portfolio: 'PORT-104',
    securityId: sec.REV,
    type: 'BUY',
    quantity: '1005',
    price: '1',
    date: '2024-10-01',
    currency: 'USD',
  });
  const rev = await addAction(db, {
    securityId: sec.REV,
    type: 'REVERSE_SPLIT',
    exDate: '2025-02-03',
    ratio: '0.1',
    currency: 'USD',
  });
  await addLedger(db, {
    actionId: rev,
    portfolio: 'PORT-104',
    type: 'REVERSE_SPLIT',
    exDate: '2025-02-03',
    currency: 'USD',
    held: '1005',
    delta: '-905',
    cash: '5.20',
    cashInLieu: '5.20',
    costDelta: '-5.00',
    ratio: '0.1',
  });

  // Dividend of 0.50 on 200 shares (base-currency security: FX effect 0).
  sec.DIV = await addSecurity(db, { code: 'SEC-1006', ticker: 'DIVCO', currency: 'USD' });
  await addCloses(db, sec.DIV, { '2024-10-01': '48', [D0]: '50', [D1]: '52' });
  await addTrade(db, {
    portfolio: 'PORT-105',
    securityId: sec.DIV,
    type: 'BUY',
    quantity: '200',
    price: '48',
    date: '2024-10-01',
    currency: 'USD',
  });
  const div = await addAction(db, {
    securityId: sec.DIV,
    type: 'DIVIDEND',
    exDate: '2025-02-14',
    amount: '0.5',
    currency: 'USD',
  });
  await addLedger(db, {
    actionId: div,
    portfolio: 'PORT-105',
    type: 'DIVIDEND',
    exDate: '2025-02-14',
    currency: 'USD',
    held: '200',
    cash: '100',
    amount: '0.5',
  });

  // Coupon: 1,000 bonds (face 100) at 5% semi-annual, maturity 2030-03-15 (coupons 15 Mar / 15 Sep).
  sec.BOND = await addSecurity(db, {
    code: 'SEC-1007',
    ticker: 'BD-5-30',
    type: 'BOND',
    currency: 'USD',
    couponRate: '0.05',
    couponFrequency: 2,
    maturity: '2030-03-15',
  });
  await addCloses(db, sec.BOND, { '2024-10-01': '97', [D0]: '98', [D1]: '99' });
  await addTrade(db, {
    portfolio: 'PORT-106',
    securityId: sec.BOND,
    type: 'BUY',
    quantity: '1000',
    price: '97',
    date: '2024-10-01',
    currency: 'USD',
  });
  const cpn = await addAction(db, {
    securityId: sec.BOND,
    type: 'COUPON',
    exDate: '2025-03-14',
    amount: '2.5',
    currency: 'USD',
  });
  await addLedger(db, {
    actionId: cpn,
    portfolio: 'PORT-106',
    type: 'COUPON',
    exDate: '2025-03-14',
    currency: 'USD',
    held: '1000',
    cash: '2500',
    amount: '2.5',
  });

  // Maturity 2025-02-14 of 500 bonds at 4% annual: principal 50,000 and the final coupon 2,000.
  sec.MAT = await addSecurity(db, {
    code: 'SEC-1008',
    ticker: 'BD-4-25',
    type: 'BOND',
    currency: 'USD',
    couponRate: '0.04',
    couponFrequency: 1,
    maturity: '2025-02-14',
  });
  await addCloses(db, sec.MAT, { '2024-10-01': '99', [D0]: '99.5' });
  await addTrade(db, {
    portfolio: 'PORT-107',
    securityId: sec.MAT,
    type: 'BUY',
    quantity: '500',
    price: '99',
    date: '2024-10-01',
    currency: 'USD',
  });
  const mat = await addAction(db, {
    securityId: sec.MAT,
    type: 'MATURITY',
    exDate: '2025-02-14',
    currency: 'USD',
  });
  await addLedger(db, {
    actionId: mat,
    portfolio: 'PORT-107',
    type: 'MATURITY',
    exDate: '2025-02-14',
    currency: 'USD',
    held: '500',
    delta: '-500',
    cash: '50000',
  });
  const last = await addAction(db, {
    securityId: sec.MAT,
    type: 'COUPON',
    exDate: '2025-02-13',
    amount: '4',
    currency: 'USD',
  });
  await addLedger(db, {
    actionId: last,
    portfolio: 'PORT-107',
    type: 'COUPON',
    exDate: '2025-02-13',
    currency: 'USD',
    held: '500',
    cash: '2000',
    amount: '4',
  });

  // FX only: a JPY holding, price unchanged, the rate stored as the inverse pair USD→JPY.
  sec.JPY = await addSecurity(db, { code: 'SEC-1009', ticker: 'JPYCO', currency: 'JPY' });
  await addFx(db, 'USD', 'JPY', { '2024-10-01': '150', [D0]: '150', [D1]: '160' });
  await addCloses(db, sec.JPY, { '2024-10-01': '2000', [D0]: '2000', [D1]: '2000' });
  await addTrade(db, {
    portfolio: 'PORT-108',
    securityId: sec.JPY,
    type: 'BUY',
    quantity: '1000',
    price: '2000',
    date: '2024-10-01',
    currency: 'JPY',
  });

  // Missing price at d1; missing FX at d1 (CHF has a rate at d0 only).
  sec.NOPX = await addSecurity(db, { code: 'SEC-1010', ticker: 'NOPXCO', currency: 'USD' });
  await addCloses(db, sec.NOPX, { '2024-10-01': '5', [D0]: '5' });
  await addTrade(db, {
    portfolio: 'PORT-109',
    securityId: sec.NOPX,
    type: 'BUY',
    quantity: '10',
    price: '5',
    date: '2024-10-01',
    currency: 'USD',
  });
  sec.CHF = await addSecurity(db, { code: 'SEC-1011', ticker: 'CHFCO', currency: 'CHF' });
  await addFx(db, 'CHF', 'USD', { '2024-10-01': '1.15', [D0]: '1.10' });
  await addCloses(db, sec.CHF, { '2024-10-01': '7', [D0]: '7', [D1]: '8' });
  await addTrade(db, {
    portfolio: 'PORT-110',
    securityId: sec.CHF,
    type: 'BUY',
    quantity: '10',
    price: '7',
    date: '2024-10-01',
    currency: 'CHF',
  });

  // A corrected split: revision 1 (2:1) applied, reversed, and revision 2 (3:1) applied.
  sec.COR = await addSecurity(db, { code: 'SEC-1012', ticker: 'CORCO', currency: 'USD' });
  await addCloses(db, sec.COR, { '2024-10-01': '90', [D0]: '90', [D1]: '31' });
  await addTrade(db, {
    portfolio: 'PORT-111',
    securityId: sec.COR,
    type: 'BUY',
    quantity: '100',
    price: '90',
    date: '2024-10-01',
    currency: 'USD',
  });
  const cor = await addAction(db, {
    securityId: sec.COR,
    type: 'STOCK_SPLIT',
    exDate: '2025-02-03',
    ratio: '3',
    currency: 'USD',
  });
  await addLedger(db, {
    actionId: cor,
    portfolio: 'PORT-111',
    type: 'STOCK_SPLIT',
    exDate: '2025-02-03',
    currency: 'USD',
    held: '100',
    delta: '100',
    ratio: '2',
  });
  await addLedger(db, {
    actionId: cor,
    portfolio: 'PORT-111',
    entry: 'REVERSE',
    type: 'STOCK_SPLIT',
    exDate: '2025-02-03',
    currency: 'USD',
    held: '100',
    delta: '-100',
    ratio: '2',
  });
  await addLedger(db, {
    actionId: cor,
    portfolio: 'PORT-111',
    revision: 2,
    type: 'STOCK_SPLIT',
    exDate: '2025-02-03',
    currency: 'USD',
    held: '100',
    delta: '200',
    ratio: '3',
  });
  await deps.db('corporate_actions').where({ id: cor }).update({ revision: 2 });
}, 60_000);

afterAll(async () => {
  await closeJobTest({ host, runner, queues, deps, scratch });
});

describe('variance.quarterly scenarios (2025Q1, through a real queue and worker)', () => {
  beforeAll(async () => {
    const run = await runner.run('variance.quarterly', { quarter: '2025Q1' });
    expect(run.state, String(run.job.failedReason)).toBe('completed');
    expect(run.result).toMatchObject({ period: '2025Q1', d0: D0, d1: D1, portfolios: 12 });
    const logs = await queues.byQueueName(run.job.queueName)!.getJobLogs(run.job.id!);
    expect(logs.logs.filter((l) => / PORT-1\d\d 2025Q1: \d+ rows/.test(l))).toHaveLength(12);
  }, 60_000);

  it('SPEC §8 worked case: 0.00 / 1,375.00 / 550.00 / −337.50 = 1,587.50', async () => {
    const [r] = await rowsOf('PORT-101');
    expect(effects(r!)).toEqual({
      corp: '0.00',
      qty: '1375.00',
      price: '550.00',
      fx: '-337.50',
      total: '1587.50',
    });
    expect(r).toMatchObject({
      mv_start: '5500.00',
      mv_end: '7087.50',
      split_factor: '2.0000000000',
      flag: null,
    });
  });

  it('a new position starts at the period-start close, or at the first trade where there was no price', async () => {
    const rows = await rowsOf('PORT-102');
    const byId = new Map(rows.map((r) => [r.security_id, r]));
    expect(effects(byId.get(sec.NEW!)!)).toEqual({
      corp: '0.00',
      qty: '1000.00',
      price: '200.00',
      fx: '0.00',
      total: '1200.00',
    });
    expect(byId.get(sec.NEW!)).toMatchObject({
      qty_start: '0.00000000',
      mv_start: '0.00',
      price_start: '10.00000000',
    });
    expect(effects(byId.get(sec.IPO!)!)).toEqual({
      corp: '0.00',
      qty: '200.00',
      price: '50.00',
      fx: '0.00',
      total: '250.00',
    });
    expect(byId.get(sec.IPO!)!.price_start).toBe('20.00000000');
  });

  it('a full exit: Q1 = 0, the quantity effect takes the whole start value', async () => {
    const [r] = await rowsOf('PORT-103');
    expect(effects(r!)).toEqual({
      corp: '0.00',
      qty: '-1250.00',
      price: '0.00',
      fx: '0.00',
      total: '-1250.00',
    });
    expect(r).toMatchObject({ qty_end: '0.00000000', mv_end: '0.00' });
    expect(await holdingsOf(deps.db, 'PORT-103', D1)).toEqual([]);
  });

  it('a reverse split with cash in lieu: the cash is in the corporate-action effect', async () => {
    const [r] = await rowsOf('PORT-104');
    expect(effects(r!)).toEqual({ corp: '5.20', qty: '-5.00', price: '100.00', fx: '0.00', total: '100.20' });
    expect(r).toMatchObject({ split_factor: '0.1000000000', distributions: '5.20', qty_end: '100.00000000' });
    // Average cost: the 0.5 share paid in lieu takes its share of the 1,005.00 cost.
    const [h] = await holdingsOf(deps.db, 'PORT-104', D1);
    expect(h).toMatchObject({ quantity: '100.00000000', cost_basis: '1000.00', market_value: '1100.00' });
  });

  it('a dividend: distributions in the corporate-action effect; a base-currency security has FX effect 0', async () => {
    const [r] = await rowsOf('PORT-105');
    expect(effects(r!)).toEqual({
      corp: '100.00',
      qty: '0.00',
      price: '400.00',
      fx: '0.00',
      total: '500.00',
    });
  });

  it('a coupon, and the bond valued per 100 face with accrued interest since the last coupon', async () => {
    const [r] = await rowsOf('PORT-106');
    expect(effects(r!)).toEqual({
      corp: '2500.00',
      qty: '0.00',
      price: '1000.00',
      fx: '0.00',
      total: '3500.00',
    });
    const [h0] = await holdingsOf(deps.db, 'PORT-106', D0);
    const [h1] = await holdingsOf(deps.db, 'PORT-106', D1);
    // 1,000 × 100 × 5% × 107 / 365 (since 2024-09-15) and × 16 / 365 (since 2025-03-15).
    expect(h0).toMatchObject({ market_value: '98000.00', accrued_interest: '1465.75', weight: '1.00000000' });
    expect(h1).toMatchObject({ market_value: '99000.00', accrued_interest: '219.18' });
  });

  it('a maturity pays face and the final coupon and closes the position', async () => {
    const [r] = await rowsOf('PORT-107');
    expect(effects(r!)).toEqual({
      corp: '52000.00',
      qty: '-49750.00',
      price: '0.00',
      fx: '0.00',
      total: '2250.00',
    });
    expect(r).toMatchObject({ qty_end: '0.00000000', distributions: '52000.00' });
  });

  it('an FX-only move (rate from the inverse pair): only the FX effect moves', async () => {
    const [r] = await rowsOf('PORT-108');
    expect(effects(r!)).toEqual({
      corp: '0.00',
      qty: '0.00',
      price: '0.00',
      fx: '-833.33',
      total: '-833.33',
    });
    expect(r).toMatchObject({ mv_start: '13333.33', mv_end: '12500.00' });
  });

  it('a missing price is flagged with its reason, never valued at zero', async () => {
    const [r] = await rowsOf('PORT-109');
    expect(r).toMatchObject({ flag: 'price_end', total_pnl: null, mv_end: null, qty_effect: null });
    const [h] = await holdingsOf(deps.db, 'PORT-109', D1);
    expect(h).toMatchObject({
      flag: 'missing_price',
      local_price: null,
      market_value: null,
      quantity: '10.00000000',
    });
  });

  it('a missing FX rate is flagged with its reason, never valued at zero', async () => {
    const [r] = await rowsOf('PORT-110');
    expect(r).toMatchObject({ flag: 'fx_end', total_pnl: null });
    const [h] = await holdingsOf(deps.db, 'PORT-110', D1);
    expect(h).toMatchObject({
      flag: 'missing_fx',
      fx_rate: null,
      market_value: null,
      local_price: '8.00000000',
    });
  });

  it('a corrected split (APPLY, REVERSE, APPLY of revision 2) counts once at its new ratio', async () => {
    const [r] = await rowsOf('PORT-111');
    expect(r).toMatchObject({ qty_end: '300.00000000', split_factor: '3.0000000000' });
    // 100 × 90 restated as 300 × 30: price effect 300 × (31 − 30).
    expect(effects(r!)).toEqual({ corp: '0.00', qty: '0.00', price: '300.00', fx: '0.00', total: '300.00' });
  });

  it('every row: corp + qty + price + fx = MV1 − MV0 + distributions, to the cent; totals = sum of rows', async () => {
    const all = await deps.db.raw<{ rows: Row[] }>(
      `select mv_start::text, mv_end::text, corp_action_effect::text, qty_effect::text, price_effect::text,
              fx_effect::text, total_pnl::text, distributions::text, flag from variance_rows where flag is null`,
    );
    expect(all.rows.length).toBeGreaterThan(8);
    for (const r of all.rows) {
      const sum = dec(r.corp_action_effect!).plus(r.qty_effect!).plus(r.price_effect!).plus(r.fx_effect!);
      expect(sum.toFixed(2)).toBe(r.total_pnl);
      expect(dec(r.mv_end!).minus(r.mv_start!).plus(r.distributions).toFixed(2)).toBe(r.total_pnl);
    }
    // The API's read (repos.platform): totals summed in numeric over the unflagged rows.
    const v = await deps.repos.platform.portfolioVariance('PORT-102', Q1);
    expect(v!.period).toEqual({ period_label: '2025Q1', period_from: '2025-01-01', period_to: '2025-03-31' });
    expect(v!.totals).toMatchObject({
      total_pnl: '1450.00',
      total_qty_effect: '1200.00',
      total_price_effect: '250.00',
      securities: 2,
      flagged: 0,
    });
    // The totals are the sums of the details, to the cent.
    const sumOf = (k: 'total_pnl' | 'qty_effect' | 'price_effect'): string =>
      v!.details.reduce((a, r) => a.plus(r[k]!), dec(0)).toFixed(2);
    expect([sumOf('total_pnl'), sumOf('qty_effect'), sumOf('price_effect')]).toEqual([
      '1450.00',
      '1200.00',
      '250.00',
    ]);
  });

  it('top movers rank |total_pnl| across portfolios and filter by portfolio, type and currency', async () => {
    const platform = deps.repos.platform;
    const period = await platform.resolvePeriod(Q1);
    expect(period).toEqual({ period_label: '2025Q1', period_from: '2025-01-01', period_to: '2025-03-31' });
    const top = await platform.topMovers(period!, {}, 3);
    expect(top.map((r) => [r.portfolio_id, r.total_pnl])).toEqual([
      ['PORT-106', '3500.00'],
      ['PORT-107', '2250.00'],
      ['PORT-101', '1587.50'],
    ]);
    const bonds = await platform.topMovers(period!, { securityType: 'BOND' }, 10);
    expect(bonds.map((r) => r.portfolio_id)).toEqual(['PORT-106', 'PORT-107']);
    const gbp = await platform.topMovers(period!, { currency: 'GBP' }, 10);
    expect(gbp.map((r) => r.total_pnl)).toEqual(['-1250.00']);
    // One portfolio's rows: largest |total_pnl| first.
    const one = await platform.topMovers(period!, { portfolioId: 'PORT-102' }, 10);
    expect(one.map((r) => [r.ticker, r.total_pnl, r.qty_effect])).toEqual([
      ['NEWCO', '1200.00', '1000.00'],
      ['IPOCO', '250.00', '200.00'],
    ]);
    // A flagged row is listed in the details, counted, left out of every total, and never ranks.
    const flagged = await platform.portfolioVariance('PORT-109', Q1);
    expect(flagged!.details).toHaveLength(1);
    expect(flagged!.details[0]!.flag).not.toBeNull();
    expect(flagged!.details[0]!.total_pnl).toBeNull();
    expect(flagged!.totals).toMatchObject({ securities: 1, flagged: 1 });
    expect(dec(flagged!.totals.total_pnl).toFixed(2)).toBe('0.00');
    expect(dec(flagged!.totals.total_distributions).toFixed(2)).toBe('0.00');
    expect(await platform.topMovers(period!, { portfolioId: 'PORT-109' }, 10)).toEqual([]);
    // The stored period of one portfolio.
    expect(await platform.resolvePeriod(Q1, 'PORT-101')).toEqual({
      period_label: '2025Q1',
      period_from: '2025-01-01',
      period_to: '2025-03-31',
    });
  });
});

describe('variance.quarterly periods', () => {
  it('re-running a period replaces it exactly (a trade added since changes exactly what it should)', async () => {
    const ctx = directContext();
    await varianceQuarterly(deps, { quarter: '2025Q1', portfolioIds: ['PORT-105'] }, ctx);
    const before = await rowsOf('PORT-105');
    await varianceQuarterly(deps, { quarter: '2025Q1', portfolioIds: ['PORT-105'] }, ctx);
    expect(await rowsOf('PORT-105')).toEqual(before);
    // Stored books that disagree with the trades (a tampered quantity, a deleted day) or with the
    // day's close are derived again before they are read; books that agree are read as stored.
    expect(ctx.logs.filter((l) => l.startsWith('books of '))).toHaveLength(0);
    await deps.db('holdings').where({ portfolio_id: 'PORT-105', as_of_date: D1 }).update({ quantity: '999' });
    await deps.db('holdings').where({ portfolio_id: 'PORT-105', as_of_date: D0 }).delete();
    await varianceQuarterly(deps, { quarter: '2025Q1', portfolioIds: ['PORT-105'] }, ctx);
    expect(ctx.logs.filter((l) => l.startsWith('books of '))).toEqual([
      'books of 2024-12-31 derived for 1 portfolio(s) (1 holdings, 0 flagged)',
      'books of 2025-03-31 derived for 1 portfolio(s) (1 holdings, 0 flagged)',
    ]);
    expect(await rowsOf('PORT-105')).toEqual(before);
    // Sell everything: the rerun shows a full exit, and the old row is gone (not duplicated).
    const id = await addTrade(deps.db, {
      portfolio: 'PORT-105',
      securityId: sec.DIV!,
      type: 'SELL',
      quantity: '200',
      price: '51',
      date: '2025-03-20',
      currency: 'USD',
    });
    await varianceQuarterly(deps, { from: '2025-01-01', to: '2025-03-31', portfolioIds: ['PORT-105'] }, ctx);
    const after = await rowsOf('PORT-105');
    expect(after).toHaveLength(1);
    expect(after[0]).toMatchObject({ period_label: '2025Q1', qty_end: '0.00000000', total_pnl: '-9900.00' });
    expect(await holdingsOf(deps.db, 'PORT-105', D1)).toEqual([]);
    await deps.db('transactions').where({ txn_id: id }).delete();
    await varianceQuarterly(deps, { quarter: '2025Q1', portfolioIds: ['PORT-105'] }, ctx);
    expect(await rowsOf('PORT-105')).toEqual(before.map((r) => ({ ...r })));
  });

  it("a year's total equals the sum of its four quarters over the same chain, row by row", async () => {
    const db = deps.db;
    const y = await addSecurity(db, { code: 'SEC-1013', ticker: 'YEARCO', currency: 'EUR' });
    const closes: Record<string, string> = {};
    const fx: Record<string, string> = {};
    const ends = [
      '2024-12-31',
      '2025-03-31',
      '2025-06-30',
      '2025-09-30',
      '2025-12-31',
      '2024-11-01',
      '2025-05-01',
      '2025-08-01',
    ];
    ends.forEach((d, i) => {
      closes[d] = (40 + i * 1.37).toFixed(2);
      fx[d] = (1.05 + i * 0.013).toFixed(4);
    });
    await addCloses(db, y, closes);
    await addFx(db, 'EUR', 'USD', fx);
    await addTrade(db, {
      portfolio: 'PORT-112',
      securityId: y,
      type: 'BUY',
      quantity: '300',
      price: '40',
      date: '2024-11-01',
      currency: 'EUR',
    });
    await addTrade(db, {
      portfolio: 'PORT-112',
      securityId: y,
      type: 'SELL',
      quantity: '120',
      price: '45',
      date: '2025-05-01',
      currency: 'EUR',
    });
    await addTrade(db, {
      portfolio: 'PORT-112',
      securityId: y,
      type: 'BUY',
      quantity: '77',
      price: '48',
      date: '2025-08-01',
      currency: 'EUR',
    });
    const a = await addAction(db, {
      securityId: y,
      type: 'DIVIDEND',
      exDate: '2025-05-01',
      amount: '0.3',
      currency: 'EUR',
    });
    await addLedger(db, {
      actionId: a,
      portfolio: 'PORT-112',
      type: 'DIVIDEND',
      exDate: '2025-05-01',
      currency: 'EUR',
      held: '300',
      cash: '90',
      amount: '0.3',
    });
    const ctx = directContext();
    let total = dec(0);
    let dist = dec(0);
    for (const q of ['2025Q1', '2025Q2', '2025Q3', '2025Q4']) {
      await varianceQuarterly(deps, { quarter: q, portfolioIds: ['PORT-112'] }, ctx);
      const rows = await rowsOf('PORT-112', ...(Object.values(quarterBounds(q)) as [string, string]));
      expect(rows).toHaveLength(1);
      total = total.plus(rows[0]!.total_pnl!);
      dist = dist.plus(rows[0]!.distributions);
    }
    await varianceQuarterly(deps, { from: '2025-01-01', to: '2025-12-31', portfolioIds: ['PORT-112'] }, ctx);
    const [year] = await rowsOf('PORT-112', '2025-01-01', '2025-12-31');
    expect(year!.period_label).toBe('2025-01-01/2025-12-31');
    expect(year!.total_pnl).toBe(total.toFixed(2));
    expect(year!.distributions).toBe(dist.toFixed(2));
    expect(dist.toFixed(2)).not.toBe('0.00');
  });

  it('the scheduled run (empty payload) works only on the first NYSE trading day after a quarter end', async () => {
    const at = (iso: string) => ({ ...deps, clock: frozenClock(iso) });
    // 2025-04-01 (Tue) is the first trading day after 2025Q1; 2025-04-02 is not.
    const skipped = await varianceQuarterly(
      at('2025-04-02T10:00:00Z'),
      { portfolioIds: ['PORT-101'] },
      directContext(),
    );
    expect(skipped).toMatchObject({
      skipped: expect.stringMatching(/2025-04-02 is not the first NYSE trading day/),
    });
    const ctx = directContext();
    const ran = await varianceQuarterly(at('2025-04-01T10:00:00Z'), { portfolioIds: ['PORT-101'] }, ctx);
    expect(ran).toMatchObject({ period: '2025Q1', d1: D1 });
    // … and ends with the quarter's workbook (issue 10), once per quarter (a fixed job id).
    expect(ctx.enqueued).toEqual([
      {
        name: 'reports.variance-excel',
        payload: { quarter: '2025Q1' },
        opts: { jobId: 'scheduled-variance-excel-2025Q1' },
      },
    ]);
    const onDemand = directContext();
    await varianceQuarterly(deps, { quarter: '2025Q1', portfolioIds: ['PORT-101'] }, onDemand);
    expect(onDemand.enqueued).toEqual([]);
    // 2026-01-01 is a holiday and 2026-01-02 the first session of 2026.
    const jan2 = await varianceQuarterly(
      at('2026-01-02T12:00:00Z'),
      { portfolioIds: ['PORT-101'] },
      directContext(),
    );
    expect(jan2).toMatchObject({ period: '2025Q4' });
  });

  it('bad input fails permanently, naming the field', async () => {
    await expect(
      varianceQuarterly(deps, { quarter: '2025Q1', portfolioIds: ['PORT-999'] }, directContext()),
    ).rejects.toThrow(/portfolioIds: unknown portfolio\(s\) PORT-999/);
    await expect(varianceQuarterly(deps, { quarter: '2027Q1' }, directContext())).rejects.toThrow(
      /quarter: period 2027Q1 ends after the last completed session/,
    );
    await expect(
      varianceQuarterly(deps, { from: '2025-02-01', to: '2025-02-01' }, directContext()),
    ).rejects.toThrow(/from \(2025-02-01\) must be before to/);
    const bad = await runner.run('variance.quarterly', { quarter: '2025Q1', portfolioIds: ['PORT-998'] });
    expect(bad.state).toBe('failed');
    expect(bad.job.attemptsMade).toBe(1);
  });
});

function quarterBounds(q: string): { start: string; end: string } {
  const y = q.slice(0, 4);
  const n = Number(q.slice(5));
  const ends = ['03-31', '06-30', '09-30', '12-31'];
  const starts = ['01-01', '04-01', '07-01', '10-01'];
  return { start: `${y}-${starts[n - 1]}`, end: `${y}-${ends[n - 1]}` };
}
