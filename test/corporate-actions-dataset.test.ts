/**
 * corporate-actions.apply on a generated dataset (data.generate, small scale, in a scratch
 * database): the generator writes only trades, carrying quantities across splits, reverse splits
 * and maturities by the apply job's rules; the job's ledger must agree with them (trades + ledger
 * deltas never short or fractional in a long-only book).
 * Every action in range shows as applied once to every holder, and a second run applies nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Deps } from '../core/deps.ts';
import { dataGenerate } from '../jobs/processors/data-generate.ts';
import { directContext } from '../jobs/types.ts';
import { runApply } from './ca-fixtures.ts';
import { closeDeps, frozenClock, scratchDatabase, testConfig, testDeps } from './support.ts';

let scratch: { url: string; drop: () => Promise<void> };
let deps: Deps;
const END = '2024-12-27';

beforeAll(async () => {
  scratch = await scratchDatabase();
  deps = testDeps({
    config: testConfig({ DATABASE_URL: scratch.url }),
    clock: frozenClock('2024-12-30T15:00:00Z'),
  });
});

afterAll(async () => {
  if (deps) await closeDeps(deps);
  await scratch?.drop();
});

async function rows<T>(sql: string, bindings: Record<string, unknown> = {}): Promise<T[]> {
  return (await deps.db.raw<{ rows: T[] }>(sql, bindings as Record<string, string>)).rows;
}

describe('corporate-actions.apply on generated data', () => {
  it(
    'agrees with the generator’s trades across splits and maturities, once',
    { timeout: 300_000 },
    async () => {
      await dataGenerate(
        deps,
        { seed: 7, scale: 'small', securities: 150, years: 5, tickSessions: 1, endDate: END },
        directContext(),
      );
      const first = await runApply(deps, { asOf: END });
      const counts = await rows<{ action_type: string; n: number }>(
        `select action_type, count(*)::int as n from corporate_actions where ex_date <= :end group by 1 order by 1`,
        { end: END },
      );
      expect(counts.length).toBeGreaterThan(0);
      expect(first.problems).toEqual([]);
      // Seed 7 at this size holds splits, dividends, coupons and matured bonds (figures in notes/h-apply.md).
      expect(first.applied.STOCK_SPLIT).toBeGreaterThan(0);
      expect(first.applied.DIVIDEND).toBeGreaterThan(0);
      expect(first.applied.COUPON).toBeGreaterThan(0);
      expect(first.applied.MATURITY).toBeGreaterThan(0);

      // Every (action, holder at the day before the ex-date) has exactly one APPLY.
      const missing = await rows<{ action_id: string; holder: string }>(
        `with held as (
         select a.id, a.action_id, t.portfolio_id, t.account_id,
                sum(case when t.txn_type in ('BUY','COVER') then t.quantity else -t.quantity end)
                + coalesce((select sum(l.quantity_delta) from corporate_action_ledger l
                              join corporate_actions b on b.id = l.action_id
                             where b.security_id = a.security_id and l.ex_date < a.ex_date
                               and l.portfolio_id is not distinct from t.portfolio_id
                               and l.account_id is not distinct from t.account_id), 0) as q
           from corporate_actions a join transactions t on t.security_id = a.security_id and t.txn_date < a.ex_date
          where a.ex_date <= :end
          group by a.id, a.action_id, a.security_id, a.ex_date, t.portfolio_id, t.account_id
       )
       select h.action_id, coalesce(h.portfolio_id, h.account_id::text) as holder
         from held h
        where h.q <> 0
          and (select count(*) from corporate_action_ledger l
                where l.action_id = h.id and l.entry = 'APPLY'
                  and l.portfolio_id is not distinct from h.portfolio_id
                  and l.account_id is not distinct from h.account_id) <> 1
        limit 10`,
        { end: END },
      );
      expect(missing).toEqual([]);

      // The generator emits only trades, carrying quantities by the apply job's rules (a reverse
      // split leaves floor(Q·r), a maturity closes): trades + ledger deltas must then never go
      // short or fractional in a long-only portfolio, at any trade date or ex-date. A ledger that
      // kept fewer shares than the generator carried shows as a negative quantity after a sale; a
      // fraction left in the book (no cash in lieu) as a non-whole one.
      const bad = await rows<{ portfolio_id: string; security_id: number; d: string; q: string }>(
        `with events as (
           select t.portfolio_id, t.security_id, t.txn_date as d,
                  case when t.txn_type in ('BUY','COVER') then t.quantity else -t.quantity end as dq
             from transactions t join portfolios p using (portfolio_id)
            where p.portfolio_type <> 'HEDGE'
           union all
           select l.portfolio_id, a.security_id, l.ex_date, l.quantity_delta
             from corporate_action_ledger l join corporate_actions a on a.id = l.action_id
             join portfolios p on p.portfolio_id = l.portfolio_id
            where p.portfolio_type <> 'HEDGE'
         ), daily as (
           select portfolio_id, security_id, d, sum(dq) as dq from events group by 1, 2, 3
         ), running as (
           select portfolio_id, security_id, d,
                  sum(dq) over (partition by portfolio_id, security_id order by d) as q
             from daily
         )
         select portfolio_id, security_id, d::text, q::text from running
          where q < 0 or q <> trunc(q)
          limit 10`,
      );
      expect(bad).toEqual([]);
      const replayed = await rows<{ n: number }>(
        `select count(*)::int as n from corporate_action_ledger where portfolio_id is not null and quantity_delta <> 0`,
      );
      expect(replayed[0]!.n).toBeGreaterThan(0);

      // Every action due is processed at its current revision, held or not (the API's `applied`).
      const unprocessed = await rows<{ action_id: string }>(
        `select a.action_id from corporate_actions a
           left join corporate_action_processed p on p.action_id = a.id and p.revision = a.revision
          where a.ex_date <= :end and p.action_id is null
          limit 10`,
        { end: END },
      );
      expect(unprocessed).toEqual([]);
      const unheld = await rows<{ n: number }>(
        `select count(*)::int as n from corporate_action_processed where holders = 0`,
      );
      expect(unheld[0]!.n).toBeGreaterThan(0);

      const again = await runApply(deps, { asOf: END });
      const total = (r: Record<string, number>): number => Object.values(r).reduce((a, b) => a + b, 0);
      expect(total(again.applied)).toBe(0);
      expect(total(again.paid)).toBe(0);
      expect(total(again.skipped)).toBe(total(first.applied));
    },
  );
});
