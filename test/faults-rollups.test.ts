/**
 * Issue 7 §3, rollup faults, in a database of this file's own:
 * - the range rollup and the incremental one take their locks in one order (the rollup's advisory
 *   lock first, table locks such as creating a bars_5m partition after), so they cannot deadlock;
 * - a range daily rollup (the data.generate flow's) consumes the level-'1d' bar_changes of the
 *   sessions it recomputed, so the next scheduled daily rollup does not redo them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Deps } from '../core/deps.ts';
import { rollup1d, rollup5m } from '../jobs/processors/bars-rollup.ts';
import { directContext } from '../jobs/types.ts';
import { insertSecurity, insertTicks } from './api-fixtures.ts';
import { closeDeps, scratchDatabase, testConfig, testDeps } from './support.ts';

let deps: Deps;
let scratch: { url: string; drop: () => Promise<void> };

beforeAll(async () => {
  scratch = await scratchDatabase();
  deps = testDeps({ config: testConfig({ DATABASE_URL: scratch.url }) });
});

afterAll(async () => {
  await closeDeps(deps);
  await scratch?.drop();
});

async function pending(level: '5m' | '1d', securityId: number): Promise<number> {
  const res = await deps.db.raw<{ rows: { n: string }[] }>(
    'select count(*) as n from bar_changes where level = ? and security_id = ?',
    [level, securityId],
  );
  return Number(res.rows[0]?.n ?? 0);
}

describe('rollup locks', () => {
  it('are taken in one order: a range rollup creating a partition never deadlocks with an incremental one', async () => {
    // A month no table has a partition for yet: the range rollup must create bars_5m's.
    const from = new Date('2031-03-03T14:30:00Z');
    const to = new Date('2031-03-03T14:35:00Z');
    const ran: string[] = [];
    let range: Promise<unknown> | undefined;
    await deps.db.transaction(async (trx) => {
      // What the incremental rollup does: the advisory lock first, then bars_5m.
      await trx.raw(`select pg_advisory_xact_lock(hashtext('rollup:bars_5m'))`);
      range = deps.repos.rollups.rollup5m(from, to).then(() => ran.push('range'));
      range.catch(() => undefined); // awaited below, after this transaction
      // Wait until the range rollup is queued behind the advisory lock.
      for (let i = 0; ; i++) {
        const waiting = await deps.db.raw<{ rows: unknown[] }>(
          `select 1 from pg_stat_activity where datname = current_database() and wait_event = 'advisory'`,
        );
        if (waiting.rows.length > 0) break;
        if (i > 500) throw new Error('the range rollup never waited for the advisory lock');
        await new Promise((r) => setTimeout(r, 10));
      }
      await trx.raw(`select ensure_month_partitions('bars_5m', ?, ?)`, [from, to]);
      await trx.raw('select count(*) from bars_5m');
      ran.push('incremental');
    });
    await range;
    expect(ran).toEqual(['incremental', 'range']);
  });
});

describe('the range daily rollup', () => {
  it("consumes the level-'1d' changes of the sessions it recomputed", async () => {
    const sec = await insertSecurity(deps);
    // 2024-07-01: regular session 13:30-20:00 UTC.
    await insertTicks(
      deps,
      sec.id,
      Array.from({ length: 30 }, (_, i) => ({
        ts: new Date(Date.parse('2024-07-01T13:30:00Z') + i * 60_000).toISOString(),
        price: (100 + i / 10).toFixed(4),
        size: 100,
      })),
    );
    await rollup5m(
      deps,
      { from: '2024-07-01T13:30:00.000Z', to: '2024-07-01T14:00:00.000Z', symbols: [sec.ticker] },
      directContext(),
    );
    expect(await pending('1d', sec.id)).toBe(1);
    const r = await rollup1d(
      deps,
      { from: '2024-07-01', to: '2024-07-01', symbols: [sec.ticker] },
      directContext(),
    );
    expect(r.upserted).toBe(1);
    expect(await pending('1d', sec.id)).toBe(0);
  });
});
