/**
 * bars_1d.adj_close (SPEC §3): the split- and dividend-adjusted close, CRSP and Yahoo convention
 * (a dividend multiplies every earlier close by 1 − amount ÷ the close before its ex-date; a split
 * divides them by its ratio), kept by the database whoever writes bars or actions, in decimal.
 * Expected values are worked by hand on exact numbers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Deps } from '../core/deps.ts';
import { insertDailyBars, insertSecurity, insertSplit, type DailyRow } from './api-fixtures.ts';
import { closeDeps, testDeps } from './support.ts';

let deps: Deps;

beforeAll(() => {
  deps = testDeps();
});
afterAll(async () => {
  await closeDeps(deps);
});

const bar = (date: string, close: string, extra: Partial<DailyRow> = {}): DailyRow => ({
  date,
  open: close,
  high: close,
  low: close,
  close,
  volume: 1000,
  ...extra,
});

async function adjCloses(id: number): Promise<Record<string, string | null>> {
  const rows = (await deps
    .db('bars_1d')
    .where({ security_id: id })
    .orderBy('session_date')
    .select('session_date', 'adj_close')) as { session_date: string; adj_close: string | null }[];
  return Object.fromEntries(rows.map((r) => [r.session_date, r.adj_close]));
}

async function insertDividend(id: number, exDate: string, amount: string): Promise<void> {
  await deps.db('corporate_actions').insert({
    action_id: `CA-DIV-${id}-${exDate}`,
    security_id: id,
    action_type: 'DIVIDEND',
    ex_date: exDate,
    payment_date: exDate,
    amount,
    currency: 'USD',
    source: 'test',
  });
}

describe('bars_1d.adj_close', () => {
  let id: number;

  beforeAll(async () => {
    ({ id } = await insertSecurity(deps, { prefix: 'ADJ' }));
    // A provider's own adjusted close is replaced: one rule for every row.
    await insertDailyBars(deps, id, [
      bar('2024-03-04', '48'),
      bar('2024-03-05', '49', { adjClose: '11.11' }),
      bar('2024-03-06', '50'),
      bar('2024-03-07', '49.5'),
      bar('2024-03-08', '25'),
      bar('2024-03-11', '25.5'),
    ]);
  });

  it('is the close itself on every bar with no action after it', async () => {
    expect(await adjCloses(id)).toEqual({
      '2024-03-04': '48.00000000',
      '2024-03-05': '49.00000000',
      '2024-03-06': '50.00000000',
      '2024-03-07': '49.50000000',
      '2024-03-08': '25.00000000',
      '2024-03-11': '25.50000000',
    });
  });

  it('follows actions as they arrive: a dividend (× 1 − 1/50 before it), then a 2:1 split (÷ 2 before it)', async () => {
    await insertDividend(id, '2024-03-07', '1');
    expect(await adjCloses(id)).toEqual({
      '2024-03-04': '47.04000000',
      '2024-03-05': '48.02000000',
      '2024-03-06': '49.00000000',
      '2024-03-07': '49.50000000',
      '2024-03-08': '25.00000000',
      '2024-03-11': '25.50000000',
    });
    await insertSplit(deps, id, '2024-03-08', '2');
    expect(await adjCloses(id)).toEqual({
      '2024-03-04': '23.52000000',
      '2024-03-05': '24.01000000',
      '2024-03-06': '24.50000000',
      '2024-03-07': '24.75000000',
      '2024-03-08': '25.00000000',
      '2024-03-11': '25.50000000',
    });
  });

  it('keeps current as bars arrive: a new newest bar, older history, a corrected close before the dividend', async () => {
    await insertDailyBars(deps, id, [bar('2024-03-12', '26'), bar('2024-03-01', '47')]);
    let adj = await adjCloses(id);
    expect(adj['2024-03-12']).toBe('26.00000000');
    expect(adj['2024-03-01']).toBe('23.03000000'); // 47 × 0.98 / 2
    // The close before the ex-date sets the dividend's factor: 1 − 1/40 = 0.975.
    await deps
      .db('bars_1d')
      .where({ security_id: id, session_date: '2024-03-06' })
      .update({ close: '40', low: '40' });
    adj = await adjCloses(id);
    expect(adj).toMatchObject({
      '2024-03-01': '22.91250000', // 47 × 0.975 / 2
      '2024-03-06': '19.50000000', // 40 × 0.975 / 2
      '2024-03-07': '24.75000000',
    });
    // Deleting that bar leaves 03-05's close (49) as the one before the ex-date: 1 − 1/49.
    await deps.db('bars_1d').where({ security_id: id, session_date: '2024-03-06' }).delete();
    adj = await adjCloses(id);
    expect(adj['2024-03-05']).toBe('24.00000000'); // 49 × 48/49 / 2
  });

  it('a cancelled action stops adjusting history; reinstated, it adjusts again', async () => {
    const { id: c } = await insertSecurity(deps, { prefix: 'CXL' });
    await insertDailyBars(deps, c, [
      bar('2024-03-04', '50'),
      bar('2024-03-05', '51'),
      bar('2024-03-06', '26'),
    ]);
    await insertSplit(deps, c, '2024-03-06', '2');
    expect(await adjCloses(c)).toEqual({
      '2024-03-04': '25.00000000',
      '2024-03-05': '25.50000000',
      '2024-03-06': '26.00000000',
    });
    await deps.db('corporate_actions').where({ security_id: c }).update({ status: 'CANCELLED' });
    expect(await adjCloses(c)).toEqual({
      '2024-03-04': '50.00000000',
      '2024-03-05': '51.00000000',
      '2024-03-06': '26.00000000',
    });
    await deps.db('corporate_actions').where({ security_id: c }).update({ status: 'ACTIVE' });
    expect((await adjCloses(c))['2024-03-04']).toBe('25.00000000');
  });

  it('an action dated after the newest bar waits until the security trades on its ex-date', async () => {
    await insertSplit(deps, id, '2024-03-14', '0.5'); // 1:2 reverse split, announced
    expect((await adjCloses(id))['2024-03-12']).toBe('26.00000000');
    await insertDailyBars(deps, id, [bar('2024-03-14', '52')]);
    const adj = await adjCloses(id);
    expect(adj['2024-03-12']).toBe('52.00000000'); // 26 ÷ 0.5
    expect(adj['2024-03-14']).toBe('52.00000000');
    expect(adj['2024-03-11']).toBe('51.00000000');
    // And when that bar goes again, so does the adjustment.
    await deps.db('bars_1d').where({ security_id: id, session_date: '2024-03-14' }).delete();
    expect((await adjCloses(id))['2024-03-12']).toBe('26.00000000');
  });

  it('bars arriving after a gap that spans an ex-date make the action count', async () => {
    const { id: gap } = await insertSecurity(deps, { prefix: 'ADJ' });
    await insertDailyBars(deps, gap, [bar('2024-03-01', '80')]);
    await insertSplit(deps, gap, '2024-03-05', '2'); // after the newest bar: waits
    expect(await adjCloses(gap)).toEqual({ '2024-03-01': '80.00000000' });
    await insertDailyBars(deps, gap, [bar('2024-03-08', '41'), bar('2024-03-11', '42')]);
    expect(await adjCloses(gap)).toEqual({
      '2024-03-01': '40.00000000',
      '2024-03-08': '41.00000000',
      '2024-03-11': '42.00000000',
    });
  });

  it('is set on bars the daily rollup writes', async () => {
    const { id: rolled } = await insertSecurity(deps, { prefix: 'ADJ' });
    const buckets = ['2024-03-07T14:30:00Z', '2024-03-08T14:30:00Z'];
    await deps.db.raw(`select ensure_month_partitions('bars_5m', ?, ?)`, [
      '2024-03-01T00:00:00Z',
      '2024-04-01T00:00:00Z',
    ]);
    await deps.db('bars_5m').insert(
      buckets.map((bucket, i) => {
        const p = i === 0 ? '80.00000000' : '40.50000000';
        return {
          security_id: rolled,
          bucket,
          open: p,
          high: p,
          low: p,
          close: p,
          volume: 10,
          pv: p,
          vwap: p,
          trade_count: 1,
        };
      }),
    );
    await insertSplit(deps, rolled, '2024-03-08', '2');
    await deps.repos.calendar.ensureSessions('2024-03-01', '2024-03-31');
    await deps.repos.rollups.rollup1d('2024-03-07', '2024-03-08', [rolled]);
    expect(await adjCloses(rolled)).toEqual({ '2024-03-07': '40.00000000', '2024-03-08': '40.50000000' });
  });
});
