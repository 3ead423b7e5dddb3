/**
 * corporate-actions.apply on a scratch database (real PostgreSQL): named scenarios for each action
 * type on portfolios and client accounts, payments with FX, exactly-once under reruns and two
 * concurrent runs on separate connections, corrections and cancellations, and a property test on
 * random books (every (action, target) has exactly one net APPLY; positions equal a replay of the
 * trades × split factors). Each scenario has securities of its own; a run applies everything due,
 * so a scenario only looks at its own rows.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Deps } from '../core/deps.ts';
import { dec } from '../core/domain/money.ts';
import {
  cashOf,
  insertAccount,
  insertAction,
  insertClose,
  insertFx,
  insertPortfolio,
  insertPosition,
  insertSecurity,
  insertTrade,
  ledgerOf,
  positionOf,
  runApply,
} from './ca-fixtures.ts';
import { closeDeps, frozenClock, scratchDatabase, testConfig, testDeps } from './support.ts';

let scratch: { url: string; drop: () => Promise<void> };
let deps: Deps;
let deps2: Deps;

beforeAll(async () => {
  scratch = await scratchDatabase();
  deps = testDeps({
    config: testConfig({ DATABASE_URL: scratch.url }),
    clock: frozenClock('2025-06-30T12:00:00Z'),
  });
  deps2 = testDeps({ config: testConfig({ DATABASE_URL: scratch.url }) });
});

afterAll(async () => {
  if (deps) await closeDeps(deps);
  if (deps2) await closeDeps(deps2);
  await scratch?.drop();
});

const applies = (rows: { entry: string }[]): number => rows.filter((r) => r.entry === 'APPLY').length;

describe('splits', () => {
  it('2:1 split: quantity × 2 on a portfolio and an account, total cost unchanged, later trades not entitled', async () => {
    const { db } = deps;
    const sec = await insertSecurity(db);
    const port = await insertPortfolio(db);
    const acct = await insertAccount(db);
    await insertTrade(db, { portfolioId: port }, sec.id, 'BUY', '100', '50', '2025-01-02');
    await insertTrade(db, { portfolioId: port }, sec.id, 'BUY', '50', '56', '2025-01-06');
    await insertTrade(db, { portfolioId: port }, sec.id, 'BUY', '10', '27', '2025-03-03'); // on the ex-date: new basis
    await insertPosition(db, acct, sec.id, 100, '40', '2025-01-02');
    const id = await insertAction(db, {
      securityId: sec.id,
      type: 'STOCK_SPLIT',
      exDate: '2025-03-03',
      ratio: '2',
    });

    const before = await runApply(deps, { asOf: '2025-02-28' });
    expect(await ledgerOf(db, id)).toEqual([]);
    expect(before.applied.STOCK_SPLIT).toBe(0);

    const res = await runApply(deps, { asOf: '2025-03-03' });
    expect(res.applied.STOCK_SPLIT).toBe(2);
    expect(res.logs.some((l) => l.includes(id) && l.includes('applied to 2 target(s)'))).toBe(true);
    const rows = await ledgerOf(db, id);
    const p = rows.find((r) => r.portfolioId === port)!;
    expect(p).toMatchObject({
      entry: 'APPLY',
      quantityHeld: '150.00000000',
      quantityDelta: '150.00000000',
      costDelta: '0.00',
      cashAmount: '0.00',
    });
    const a = rows.find((r) => r.accountId === acct)!;
    expect(a).toMatchObject({ quantityHeld: '100.00000000', quantityDelta: '100.00000000' });
    expect(await positionOf(db, acct, sec.id)).toEqual({
      quantity: '200.00000000',
      costBasis: '20.00000000',
    });
  });

  it('1:10 reverse split with a fractional remainder: cash in lieu at the ex-date close, paid once', async () => {
    const { db } = deps;
    const sec = await insertSecurity(db);
    const port = await insertPortfolio(db);
    const acct = await insertAccount(db, { cash: '100.00' });
    await insertTrade(db, { portfolioId: port }, sec.id, 'BUY', '155', '10', '2025-01-02');
    await insertPosition(db, acct, sec.id, 155, '10', '2025-01-02');
    await insertClose(db, sec.id, '2025-03-10', '98');
    const id = await insertAction(db, {
      securityId: sec.id,
      type: 'REVERSE_SPLIT',
      exDate: '2025-03-10',
      ratio: '0.1',
    });

    await runApply(deps, { asOf: '2025-03-10' });
    const rows = await ledgerOf(db, id);
    for (const r of rows) {
      expect(r).toMatchObject({
        quantityHeld: '155.00000000',
        quantityDelta: '-140.00000000',
        costDelta: '-50.00',
        cashAmount: '49.00',
        cashInLieu: '49.00',
        paid: true,
      });
    }
    expect(rows).toHaveLength(2);
    expect(await positionOf(db, acct, sec.id)).toEqual({
      quantity: '15.00000000',
      costBasis: '100.00000000',
    });
    expect((await cashOf(db, acct)).cash).toBe('149.00');
    await runApply(deps, { asOf: '2025-03-10' });
    await runApply(deps, { asOf: '2025-03-12' });
    expect((await cashOf(db, acct)).cash).toBe('149.00');
    expect(await ledgerOf(db, id)).toHaveLength(2);
  });

  it('a reverse split without any close fails that action with a reason, then applies once the price exists', async () => {
    const { db } = deps;
    const sec = await insertSecurity(db);
    const port = await insertPortfolio(db);
    await insertTrade(db, { portfolioId: port }, sec.id, 'BUY', '155', '10', '2025-01-02');
    const id = await insertAction(db, {
      securityId: sec.id,
      type: 'REVERSE_SPLIT',
      exDate: '2025-03-11',
      ratio: '0.1',
    });
    const res = await runApply(deps, { asOf: '2025-03-11', actionIds: [id] });
    expect(res.problems).toEqual([
      expect.objectContaining({ actionId: id, reason: expect.stringMatching(/no daily close/) }),
    ]);
    expect(res.logs.some((l) => l.startsWith(`problem: ${id}`))).toBe(true);
    expect(await ledgerOf(db, id)).toEqual([]);
    // The first close after the ex-date (up to asOf) prices it, and the log says so.
    await insertClose(db, sec.id, '2025-03-12', '96');
    const later = await runApply(deps, { asOf: '2025-03-12', actionIds: [id] });
    expect(later.problems).toEqual([]);
    expect(later.logs.some((l) => l.includes('priced at the 2025-03-12 close'))).toBe(true);
    expect((await ledgerOf(db, id))[0]).toMatchObject({
      cashInLieu: '48.00',
      quantityDelta: '-140.00000000',
    });
  });

  it('unknown actionIds and impossible asOf fail permanently naming the field', async () => {
    await expect(runApply(deps, { actionIds: ['NOPE-1'] })).rejects.toThrow(
      /actionIds: unknown action\(s\) NOPE-1/,
    );
    await expect(runApply(deps, { asOf: '2025-02-30' })).rejects.toThrow(/asOf/);
  });
});

describe('dividends', () => {
  it('a dividend on a long (portfolio) and on a short (account, owed): booked on the ex-date, paid on the payment date once', async () => {
    const { db } = deps;
    const sec = await insertSecurity(db);
    const port = await insertPortfolio(db);
    const acct = await insertAccount(db, { cash: '1000.00' });
    await insertTrade(db, { portfolioId: port }, sec.id, 'BUY', '300', '20', '2025-01-02');
    await insertTrade(db, { portfolioId: port }, sec.id, 'SELL', '100', '21', '2025-04-10'); // the ex-date: still entitled
    await insertPosition(db, acct, sec.id, -300, '40', '2025-01-03');
    const id = await insertAction(db, {
      securityId: sec.id,
      type: 'DIVIDEND',
      exDate: '2025-04-10',
      paymentDate: '2025-04-30',
      amount: '0.24',
    });
    await runApply(deps, { asOf: '2025-04-10' });
    let rows = await ledgerOf(db, id);
    expect(rows.find((r) => r.portfolioId === port)).toMatchObject({
      cashAmount: '72.00',
      quantityHeld: '300.00000000',
      paid: false,
    });
    expect(rows.find((r) => r.accountId === acct)).toMatchObject({
      cashAmount: '-72.00',
      quantityHeld: '-300.00000000',
      paid: false,
    });
    expect((await cashOf(db, acct)).cash).toBe('1000.00');
    expect(await positionOf(db, acct, sec.id)).toEqual({
      quantity: '-300.00000000',
      costBasis: '40.00000000',
    });

    const paid = await runApply(deps, { asOf: '2025-04-30' });
    expect(paid.paid.DIVIDEND).toBeGreaterThanOrEqual(2);
    rows = await ledgerOf(db, id);
    expect(rows.every((r) => r.paid)).toBe(true);
    expect(rows.find((r) => r.accountId === acct)?.paidAmount).toBe('-72.00');
    expect((await cashOf(db, acct)).cash).toBe('928.00');
    await runApply(deps, { asOf: '2025-04-30' });
    await runApply(deps, { asOf: '2025-05-30' });
    expect((await cashOf(db, acct)).cash).toBe('928.00');
    expect(applies(await ledgerOf(db, id))).toBe(2);
  });

  it('a EUR dividend into a USD account at the payment date’s rate (inverse pair), left unpaid while the rate is missing', async () => {
    const { db } = deps;
    const sec = await insertSecurity(db, { currency: 'EUR' });
    const acct = await insertAccount(db, { cash: '0', loan: '50.00' });
    await insertPosition(db, acct, sec.id, 1000, '30', '2025-01-02');
    const id = await insertAction(db, {
      securityId: sec.id,
      type: 'DIVIDEND',
      exDate: '2025-05-12',
      paymentDate: '2025-05-27',
      amount: '0.50',
    });
    const first = await runApply(deps, { asOf: '2025-05-27' });
    expect(first.problems.some((p) => p.actionId === id && /no FX rate EUR\/USD/.test(p.reason))).toBe(true);
    expect((await ledgerOf(db, id))[0]).toMatchObject({ cashAmount: '500.00', paid: false });
    expect(await cashOf(db, acct)).toEqual({ cash: '0.00', loan: '50.00' });
    // Only USD→EUR is stored: 1 / 0.9 = 1.111…; 500 EUR → 555.56 USD, which first pays the 50.00 loan.
    await insertFx(db, 'USD', 'EUR', '2025-05-27', '0.9');
    await insertFx(db, 'EUR', 'USD', '2025-05-26', '2'); // another day's rate: not used
    await runApply(deps, { asOf: '2025-05-28' });
    expect(await cashOf(db, acct)).toEqual({ cash: '505.56', loan: '0.00' });
    expect((await ledgerOf(db, id))[0]).toMatchObject({ paid: true, paidAmount: '555.56' });
    await runApply(deps, { asOf: '2025-05-29' });
    expect(await cashOf(db, acct)).toEqual({ cash: '505.56', loan: '0.00' });
  });
});

describe('bonds', () => {
  it('a coupon pays face × rate ÷ frequency; a maturity pays par, closes the position, and the final coupon is its own', async () => {
    const { db } = deps;
    const bond = await insertSecurity(db, { type: 'BOND', face: '1000' });
    const port = await insertPortfolio(db);
    const acct = await insertAccount(db, { cash: '0' });
    await insertTrade(db, { portfolioId: port }, bond.id, 'BUY', '50', '980', '2025-01-02');
    await insertPosition(db, acct, bond.id, 10, '990', '2025-01-02');
    const cpn1 = await insertAction(db, {
      securityId: bond.id,
      type: 'COUPON',
      exDate: '2025-03-17',
      amount: '0.025',
    });
    const cpn2 = await insertAction(db, {
      securityId: bond.id,
      type: 'COUPON',
      exDate: '2025-06-16',
      amount: '0.025',
    });
    const mat = await insertAction(db, {
      securityId: bond.id,
      type: 'MATURITY',
      exDate: '2025-06-16',
      paymentDate: '2025-06-16',
      amount: '1.0',
    });
    await runApply(deps, { asOf: '2025-03-17' });
    expect((await ledgerOf(db, cpn1)).find((r) => r.portfolioId === port)).toMatchObject({
      cashAmount: '1250.00',
      paid: true,
    });
    expect((await cashOf(db, acct)).cash).toBe('250.00');

    await runApply(deps, { asOf: '2025-06-16' });
    const finalCoupon = await ledgerOf(db, cpn2);
    expect(finalCoupon.find((r) => r.portfolioId === port)).toMatchObject({
      cashAmount: '1250.00',
      quantityHeld: '50.00000000',
    });
    const m = await ledgerOf(db, mat);
    expect(m.find((r) => r.portfolioId === port)).toMatchObject({
      quantityHeld: '50.00000000',
      quantityDelta: '-50.00000000',
      costDelta: '-49000.00',
      cashAmount: '50000.00',
    });
    expect(m.find((r) => r.accountId === acct)).toMatchObject({
      quantityDelta: '-10.00000000',
      costDelta: '-9900.00',
      cashAmount: '10000.00',
    });
    expect(await positionOf(db, acct, bond.id)).toBeNull();
    expect((await cashOf(db, acct)).cash).toBe('10500.00'); // 250 + 250 + 10,000
    await runApply(deps, { asOf: '2025-06-20' });
    expect((await cashOf(db, acct)).cash).toBe('10500.00');
  });
});

describe('exactly once', () => {
  it('running twice changes nothing the second time', async () => {
    const { db } = deps;
    const sec = await insertSecurity(db);
    const acct = await insertAccount(db, { cash: '10.00' });
    await insertPosition(db, acct, sec.id, 33, '12', '2025-01-02');
    await insertClose(db, sec.id, '2025-06-02', '40');
    const split = await insertAction(db, {
      securityId: sec.id,
      type: 'REVERSE_SPLIT',
      exDate: '2025-06-02',
      ratio: '0.25',
    });
    const div = await insertAction(db, {
      securityId: sec.id,
      type: 'DIVIDEND',
      exDate: '2025-06-03',
      amount: '1.10',
    });
    const first = await runApply(deps, { asOf: '2025-06-03', actionIds: [div] });
    const snapshot = async (): Promise<unknown> => [
      await ledgerOf(db, split),
      await ledgerOf(db, div),
      await positionOf(db, acct, sec.id),
      await cashOf(db, acct),
    ];
    const after1 = await snapshot();
    const second = await runApply(deps, { asOf: '2025-06-03', actionIds: [div] });
    expect(await snapshot()).toEqual(after1);
    expect(first.applied.REVERSE_SPLIT + first.applied.DIVIDEND).toBe(2); // actionIds pulls in the earlier split
    expect(second.applied.REVERSE_SPLIT + second.applied.DIVIDEND).toBe(0);
    expect(second.skipped.REVERSE_SPLIT + second.skipped.DIVIDEND).toBe(2);
    // 33 → 8.25: 8 kept, 0.25 × 40 = 10.00 in lieu; the dividend on 8 shares × 1.10 = 8.80.
    expect(await positionOf(db, acct, sec.id)).toEqual({ quantity: '8.00000000', costBasis: '48.00000000' });
    expect((await cashOf(db, acct)).cash).toBe('28.80');
  });

  it('two runs racing on separate connections apply every effect once', async () => {
    const { db } = deps;
    const sec = await insertSecurity(db);
    const accounts: number[] = [];
    const ports: string[] = [];
    for (let i = 0; i < 30; i++) {
      const acct = await insertAccount(db, { cash: '0' });
      await insertPosition(db, acct, sec.id, 7 + i, '10', '2025-01-02');
      accounts.push(acct);
      const port = await insertPortfolio(db);
      await insertTrade(db, { portfolioId: port }, sec.id, 'BUY', String(11 + i), '10', '2025-01-02');
      ports.push(port);
    }
    await insertClose(db, sec.id, '2025-06-04', '30');
    const split = await insertAction(db, {
      securityId: sec.id,
      type: 'STOCK_SPLIT',
      exDate: '2025-06-04',
      ratio: '1.5',
    });
    const div = await insertAction(db, {
      securityId: sec.id,
      type: 'DIVIDEND',
      exDate: '2025-06-05',
      amount: '0.10',
    });
    const results = await Promise.all([
      runApply(deps, { asOf: '2025-06-05', actionIds: [div] }),
      runApply(deps2, { asOf: '2025-06-05', actionIds: [div] }),
      runApply(deps2, { asOf: '2025-06-05', actionIds: [div] }),
    ]);
    const total = results.reduce((s, r) => s + r.applied.STOCK_SPLIT + r.applied.DIVIDEND, 0);
    expect(total).toBe(120);
    expect(applies(await ledgerOf(db, split))).toBe(60);
    expect(applies(await ledgerOf(db, div))).toBe(60);
    for (const [i, acct] of accounts.entries()) {
      const q = 7 + i;
      const kept = Math.floor(q * 1.5);
      const lieu = dec(q).times('1.5').minus(kept).times(30);
      const dividend = dec(kept).times('0.10');
      expect((await positionOf(db, acct, sec.id))?.quantity).toBe(dec(kept).toFixed(8));
      expect((await cashOf(db, acct)).cash).toBe(lieu.plus(dividend).toFixed(2));
    }
  });
});

describe('corrections', () => {
  it('a corrected ratio reverses the applied revision exactly and applies the new one; both stay in the ledger', async () => {
    const { db } = deps;
    const sec = await insertSecurity(db);
    const port = await insertPortfolio(db);
    const acct = await insertAccount(db);
    await insertTrade(db, { portfolioId: port }, sec.id, 'BUY', '100', '30', '2025-01-02');
    await insertPosition(db, acct, sec.id, 60, '30', '2025-01-02');
    const id = await insertAction(db, {
      securityId: sec.id,
      type: 'STOCK_SPLIT',
      exDate: '2025-06-09',
      ratio: '2',
    });
    await runApply(deps, { asOf: '2025-06-09' });
    expect(await positionOf(db, acct, sec.id)).toEqual({
      quantity: '120.00000000',
      costBasis: '15.00000000',
    });

    expect(await deps.repos.ledger.correctAction(id, { ratio: '3' })).toBe(2);
    expect(await deps.repos.ledger.correctAction(id, { ratio: '3' })).toBeNull(); // same terms: no new revision
    const res = await runApply(deps, { asOf: '2025-06-10' });
    expect(res.reversed.STOCK_SPLIT).toBe(2);
    expect(res.applied.STOCK_SPLIT).toBe(2);
    const rows = await ledgerOf(db, id);
    const forPort = rows
      .filter((r) => r.portfolioId === port)
      .map((r) => [r.entry, r.revision, r.quantityDelta]);
    expect(forPort).toEqual([
      ['APPLY', 1, '100.00000000'],
      ['REVERSE', 1, '-100.00000000'],
      ['APPLY', 2, '200.00000000'],
    ]);
    expect(await positionOf(db, acct, sec.id)).toEqual({
      quantity: '180.00000000',
      costBasis: '10.00000000',
    });
    await runApply(deps, { asOf: '2025-06-10' });
    expect(await ledgerOf(db, id)).toHaveLength(6);
  });

  it('a corrected split restates the later dividend on the new quantity (cash taken back and paid again)', async () => {
    const { db } = deps;
    const sec = await insertSecurity(db);
    const acct = await insertAccount(db, { cash: '0' });
    const port = await insertPortfolio(db);
    await insertPosition(db, acct, sec.id, 100, '30', '2025-01-02');
    await insertTrade(db, { portfolioId: port }, sec.id, 'BUY', '100', '30', '2025-01-02');
    const split = await insertAction(db, {
      securityId: sec.id,
      type: 'STOCK_SPLIT',
      exDate: '2025-06-16',
      ratio: '2',
    });
    const div = await insertAction(db, {
      securityId: sec.id,
      type: 'DIVIDEND',
      exDate: '2025-06-17',
      amount: '0.10',
    });
    await runApply(deps, { asOf: '2025-06-17' });
    expect((await cashOf(db, acct)).cash).toBe('20.00');
    await deps.repos.ledger.correctAction(split, { ratio: '3' });
    const res = await runApply(deps, { asOf: '2025-06-17' });
    expect(res.restated.DIVIDEND).toBe(2);
    expect(res.logs.some((l) => l.startsWith('restated action #') && l.includes(`account ${acct}`))).toBe(
      true,
    );
    expect(await positionOf(db, acct, sec.id)).toEqual({
      quantity: '300.00000000',
      costBasis: '10.00000000',
    });
    expect((await cashOf(db, acct)).cash).toBe('30.00');
    expect(
      (await ledgerOf(db, div))
        .filter((r) => r.portfolioId === port)
        .map((r) => [r.entry, r.restatement, r.cashAmount]),
    ).toEqual([
      ['APPLY', 0, '20.00'],
      ['REVERSE', 0, '-20.00'],
      ['APPLY', 1, '30.00'],
    ]);
    await runApply(deps, { asOf: '2025-06-18' });
    expect((await cashOf(db, acct)).cash).toBe('30.00');
    expect(await ledgerOf(db, div)).toHaveLength(6);
  });

  it('an action arriving late with an earlier ex-date than applied ones restates them', async () => {
    const { db } = deps;
    const sec = await insertSecurity(db);
    const acct = await insertAccount(db, { cash: '0' });
    await insertPosition(db, acct, sec.id, 100, '30', '2025-01-02');
    const div = await insertAction(db, {
      securityId: sec.id,
      type: 'DIVIDEND',
      exDate: '2025-06-20',
      amount: '0.10',
    });
    await runApply(deps, { asOf: '2025-06-20' });
    expect((await cashOf(db, acct)).cash).toBe('10.00');
    await insertAction(db, { securityId: sec.id, type: 'STOCK_SPLIT', exDate: '2025-06-19', ratio: '2' });
    const res = await runApply(deps, { asOf: '2025-06-20', actionIds: [div] });
    expect(res.applied.STOCK_SPLIT).toBe(1);
    expect(res.restated.DIVIDEND).toBe(1);
    expect((await cashOf(db, acct)).cash).toBe('20.00');
    expect(await positionOf(db, acct, sec.id)).toEqual({
      quantity: '200.00000000',
      costBasis: '15.00000000',
    });
  });

  it('the ingest writer bumps the revision for new terms of the same action id, and ignores identical ones', async () => {
    const { db } = deps;
    const sec = await insertSecurity(db);
    const { upsertActionsOn } = await import('../core/db/repositories/corporate-actions.ts');
    const { rawTransaction } = await import('../core/db/knex.ts');
    const row = {
      actionId: `ING-${sec.ticker}`,
      securityId: sec.id,
      actionType: 'DIVIDEND' as const,
      exDate: '2025-06-10',
      paymentDate: '2025-06-20',
      ratio: null,
      amount: '0.25',
      currency: 'USD',
      source: 'test',
    };
    const up = (rows: (typeof row)[]) => rawTransaction(db, (c) => upsertActionsOn(c, rows));
    expect(await up([row])).toEqual({ inserted: 1, existing: 0, corrected: 0 });
    expect(await up([row])).toEqual({ inserted: 0, existing: 1, corrected: 0 });
    expect(await up([{ ...row, amount: '0.2500' }])).toEqual({ inserted: 0, existing: 1, corrected: 0 });
    expect(await up([{ ...row, amount: '0.30' }])).toEqual({ inserted: 0, existing: 0, corrected: 1 });
    // Another source's id for the same security/type/ex-date: the first source wins.
    expect(await up([{ ...row, actionId: `OTHER-${sec.ticker}`, amount: '9' }])).toEqual({
      inserted: 0,
      existing: 1,
      corrected: 0,
    });
    const stored = await db('corporate_actions')
      .where({ security_id: sec.id })
      .select('action_id', 'amount', 'revision');
    expect(stored).toEqual([{ action_id: row.actionId, amount: '0.30000000', revision: 2 }]);
  });

  it('a dividend cancelled after payment: the cash is taken back once; one cancelled before payment never pays', async () => {
    const { db } = deps;
    const sec = await insertSecurity(db);
    const acct = await insertAccount(db, { cash: '500.00' });
    await insertPosition(db, acct, sec.id, 200, '25', '2025-01-02');
    const paidDiv = await insertAction(db, {
      securityId: sec.id,
      type: 'DIVIDEND',
      exDate: '2025-06-11',
      paymentDate: '2025-06-13',
      amount: '0.50',
    });
    const laterDiv = await insertAction(db, {
      securityId: sec.id,
      type: 'DIVIDEND',
      exDate: '2025-06-12',
      paymentDate: '2025-06-30',
      amount: '0.40',
    });
    await runApply(deps, { asOf: '2025-06-13' });
    expect((await cashOf(db, acct)).cash).toBe('600.00'); // 200 × 0.50 paid; 80.00 booked, not paid
    expect(await deps.repos.ledger.cancelAction(paidDiv)).toBe(true);
    expect(await deps.repos.ledger.cancelAction(laterDiv)).toBe(true);
    expect(await deps.repos.ledger.cancelAction(laterDiv)).toBe(false);
    const res = await runApply(deps, { asOf: '2025-06-14' });
    expect(res.reversed.DIVIDEND).toBe(2);
    expect((await cashOf(db, acct)).cash).toBe('500.00');
    expect((await ledgerOf(db, paidDiv)).map((r) => [r.entry, r.cashAmount, r.paidAmount])).toEqual([
      ['APPLY', '100.00', '100.00'],
      ['REVERSE', '-100.00', '-100.00'],
    ]);
    await runApply(deps, { asOf: '2025-07-01' });
    await runApply(deps, { asOf: '2025-07-01' });
    expect((await cashOf(db, acct)).cash).toBe('500.00');
    expect((await ledgerOf(db, laterDiv)).map((r) => [r.entry, r.cashAmount, r.paidAmount])).toEqual([
      ['APPLY', '80.00', '0.00'],
      ['REVERSE', '-80.00', '0.00'],
    ]);
  });
});

describe('property: random books', () => {
  it(
    'every (action, target) has one net APPLY and positions equal a replay of the trades × split factors',
    { timeout: 120_000 },
    async () => {
      const { db } = deps;
      let seed = 987654321;
      const rnd = (n: number): number => {
        seed = (seed * 1103515245 + 12345) % 2147483648;
        return seed % n;
      };
      const days = Array.from({ length: 40 }, (_, i) => {
        const d = new Date(Date.UTC(2026, 0, 5 + i));
        return d.toISOString().slice(0, 10);
      });
      const secs = [await insertSecurity(db), await insertSecurity(db), await insertSecurity(db)];
      type Book = {
        target: { portfolioId: string } | { accountId: number };
        trades: { sec: number; day: number; q: number }[];
      };
      const books: Book[] = [];
      for (let b = 0; b < 12; b++) {
        const target =
          b % 2 === 0
            ? { portfolioId: await insertPortfolio(db) }
            : { accountId: await insertAccount(db, { cash: '100000' }) };
        books.push({ target, trades: [] });
      }
      // Trades: buys and sells (never crossing zero in these books), on random days.
      for (const book of books) {
        for (const s of secs) {
          let q = 0;
          const n = 1 + rnd(8);
          const tradeDays = Array.from({ length: n }, () => rnd(days.length)).sort((x, y) => x - y);
          for (const day of tradeDays) {
            const sell = q > 0 && rnd(3) === 0;
            const size = sell ? 1 + rnd(q) : 1 + rnd(500);
            q += sell ? -size : size;
            book.trades.push({ sec: s.id, day, q: sell ? -size : size });
            await insertTrade(db, book.target, s.id, sell ? 'SELL' : 'BUY', String(size), '10', days[day]!);
          }
        }
      }
      // Actions: per security a split (some with fractions), a reverse split and dividends.
      const actions: {
        sec: number;
        day: number;
        type: 'SPLIT' | 'DIV';
        ratio: string;
        amount: string;
        id: string;
        cancelled?: boolean;
      }[] = [];
      for (const s of secs) {
        for (const [type, ratio] of [
          ['SPLIT', ['2', '1.5', '3'][rnd(3)]!],
          ['SPLIT', ['0.1', '0.25', '0.5'][rnd(3)]!],
          ['DIV', '1'],
          ['DIV', '1'],
        ] as const) {
          let day = 1 + rnd(days.length - 1);
          while (actions.some((a) => a.sec === s.id && a.day === day)) day = 1 + rnd(days.length - 1);
          const amount = `0.${String(1 + rnd(98)).padStart(2, '0')}`;
          const exDate = days[day]!;
          const id = await insertAction(db, {
            securityId: s.id,
            type: type === 'DIV' ? 'DIVIDEND' : Number(ratio) > 1 ? 'STOCK_SPLIT' : 'REVERSE_SPLIT',
            exDate,
            ratio: type === 'SPLIT' ? ratio : undefined,
            amount: type === 'DIV' ? amount : undefined,
          });
          if (type === 'SPLIT') await insertClose(db, s.id, exDate, '20');
          actions.push({ sec: s.id, day, type, ratio, amount, id });
        }
      }
      // Account positions rows: the trades' net quantity, as traded (the job applies the splits).
      for (const book of books) {
        if (!('accountId' in book.target)) continue;
        for (const s of secs) {
          const q = book.trades.filter((t) => t.sec === s.id).reduce((x, t) => x + t.q, 0);
          if (q !== 0)
            await db('positions').insert({
              account_id: book.target.accountId,
              security_id: s.id,
              quantity: q,
              cost_basis: '10',
            });
        }
      }
      // Runs at increasing dates, some twice, one pair racing.
      for (let day = 0; day < days.length; day += 1 + rnd(6)) {
        await runApply(deps, { asOf: days[day]! });
        if (rnd(3) === 0)
          await Promise.all([runApply(deps, { asOf: days[day]! }), runApply(deps2, { asOf: days[day]! })]);
      }
      await runApply(deps, { asOf: days[days.length - 1]! });

      await verify();

      // Corrections after the fact: each security's first split gets a new ratio and its first
      // dividend is cancelled; later actions on the same positions are restated.
      for (const s of secs) {
        const split = actions.find((a) => a.sec === s.id && a.type === 'SPLIT')!;
        split.ratio = split.ratio === '3' ? '2' : '3';
        expect(await deps.repos.ledger.correctAction(split.id, { ratio: split.ratio })).toBe(2);
        const div = actions.find((a) => a.sec === s.id && a.type === 'DIV')!;
        div.cancelled = true;
        expect(await deps.repos.ledger.cancelAction(div.id)).toBe(true);
      }
      const last = days[days.length - 1]!;
      await Promise.all([runApply(deps, { asOf: last }), runApply(deps2, { asOf: last })]);
      await runApply(deps, { asOf: last });
      const restated = await db.raw<{ rows: { n: number }[] }>(
        `select count(*)::int as n from corporate_action_ledger where restatement > 0`,
      );
      expect(restated.rows[0]!.n).toBeGreaterThan(0); // later actions were entitled again
      await verify();

      async function verify(): Promise<void> {
        // The oracle: walk the days; actions apply at the start of their ex-date, whole shares toward zero.
        for (const book of books) {
          let cash = dec(0);
          for (const s of secs) {
            let q = dec(0);
            const expectedApplies = new Map<string, { held: string; delta: string; cash: string }>();
            for (let day = 0; day < days.length; day++) {
              for (const a of actions.filter((x) => x.sec === s.id && x.day === day && !x.cancelled)) {
                if (q.isZero()) continue;
                if (a.type === 'SPLIT') {
                  const kept = q.times(a.ratio).toDecimalPlaces(0, 1);
                  expectedApplies.set(a.id, {
                    held: q.toFixed(8),
                    delta: kept.minus(q).toFixed(8),
                    cash: q.times(a.ratio).minus(kept).times(20).toFixed(2),
                  });
                  q = kept;
                } else {
                  expectedApplies.set(a.id, {
                    held: q.toFixed(8),
                    delta: '0.00000000',
                    cash: q.times(a.amount).toFixed(2),
                  });
                }
              }
              for (const t of book.trades.filter((x) => x.sec === s.id && x.day === day)) q = q.plus(t.q);
            }
            const key =
              'portfolioId' in book.target
                ? { portfolioId: book.target.portfolioId }
                : { accountId: book.target.accountId };
            for (const a of actions.filter((x) => x.sec === s.id)) {
              const mine = (await ledgerOf(db, a.id)).filter((r) =>
                'portfolioId' in key ? r.portfolioId === key.portfolioId : r.accountId === key.accountId,
              );
              const want = expectedApplies.get(a.id);
              const net = applies(mine) - mine.filter((r) => r.entry === 'REVERSE').length;
              expect(net, `${a.id} on ${JSON.stringify(key)}`).toBe(want ? 1 : 0);
              const liveRow = mine.find(
                (r) =>
                  r.entry === 'APPLY' &&
                  !mine.some(
                    (x) =>
                      x.entry === 'REVERSE' && x.revision === r.revision && x.restatement === r.restatement,
                  ),
              );
              if (want) {
                expect(liveRow, `${a.id} on ${JSON.stringify(key)}`).toMatchObject({
                  quantityHeld: want.held,
                  quantityDelta: want.delta,
                  cashAmount: want.cash,
                });
                cash = cash.plus(want.cash);
              }
              // Every REVERSE negates its APPLY exactly.
              for (const r of mine.filter((x) => x.entry === 'REVERSE')) {
                const a0 = mine.find(
                  (x) => x.entry === 'APPLY' && x.revision === r.revision && x.restatement === r.restatement,
                )!;
                expect(dec(r.quantityDelta).plus(a0.quantityDelta).isZero()).toBe(true);
                expect(dec(r.cashAmount).plus(a0.cashAmount).isZero()).toBe(true);
                expect(dec(r.costDelta).plus(a0.costDelta).isZero()).toBe(true);
              }
            }
            // Holdings = trades + ledger deltas = the replay.
            if ('portfolioId' in key) {
              const r = await db.raw<{ rows: { q: string }[] }>(
                `select coalesce((select sum(case when txn_type in ('BUY','COVER') then quantity else -quantity end)
                                  from transactions where portfolio_id = :p and security_id = :s), 0)
                    + coalesce((select sum(l.quantity_delta) from corporate_action_ledger l join corporate_actions a on a.id = l.action_id
                                 where l.portfolio_id = :p and a.security_id = :s), 0) as q`,
                { p: key.portfolioId, s: s.id },
              );
              expect(dec(r.rows[0]!.q).equals(q), `${key.portfolioId} ${s.id}`).toBe(true);
            } else {
              const pos = await positionOf(db, key.accountId, s.id);
              expect(
                pos === null ? '0' : dec(pos.quantity).toString(),
                `account ${key.accountId} ${s.id}`,
              ).toBe(q.toString());
            }
          }
          // An account's net cash = its opening 100,000 + every live effect's cash, paid once.
          if ('accountId' in book.target) {
            const c = await cashOf(db, book.target.accountId);
            expect(dec(c.cash).minus(c.loan).toFixed(2), `cash of account ${book.target.accountId}`).toBe(
              cash.plus(100000).toFixed(2),
            );
          }
        }
      }
    },
  );
});
