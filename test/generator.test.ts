/**
 * data.generate against its own scratch database (created and dropped here), so wiping and
 * regenerating the dataset never disturbs other tests sharing the run's database.
 */
import { randomBytes } from 'node:crypto';
import { UnrecoverableError } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, dropDatabase, ensureDatabase } from '../core/db/knex.ts';
import { migrateLatest } from '../core/db/migrate.ts';
import type { Deps } from '../core/deps.ts';
import type { JobPayload } from '../jobs/catalogue.ts';
import { dataGenerate, type DataGenerateResult } from '../jobs/processors/data-generate.ts';
import { directContext } from '../jobs/types.ts';
import { closeDeps, frozenClock, testConfig, testDeps } from './support.ts';

const payload: JobPayload<'data.generate'> = {
  seed: 2024,
  scale: 'small',
  securities: 12,
  years: 0.6,
  tickSessions: 4,
  endDate: '2024-12-27',
};

let deps: Deps;
let url: string;

beforeAll(async () => {
  const base = new URL(testConfig().db.url);
  base.pathname = `/mdw_gen_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
  url = base.toString();
  await ensureDatabase(url);
  const db = createDb({ db: { url, poolMax: 2 } });
  try {
    await migrateLatest(db);
  } finally {
    await db.destroy();
  }
  deps = testDeps({ config: testConfig({ DATABASE_URL: url }), clock: frozenClock('2025-01-15T12:00:00Z') });
});

afterAll(async () => {
  await closeDeps(deps);
  await dropDatabase(url);
});

async function rows<T>(sql: string, bindings: readonly (string | number)[] = []): Promise<T[]> {
  const res = await deps.db.raw<{ rows: T[] }>(sql, bindings as (string | number)[]);
  return res.rows;
}

describe('data.generate', () => {
  let first: DataGenerateResult;
  let fingerprint: Record<string, string>;

  it('generates a small dataset with progress and log lines', async () => {
    await deps.repos.generator.truncateDataset();
    const ctx = directContext();
    first = await dataGenerate(deps, payload, ctx);
    expect(first).toMatchObject({
      securities: 12,
      portfolios: 7,
      tickFrom: '2024-12-23T14:30:00.000Z',
      tickTo: '2024-12-27T20:59:40.000Z',
      to: '2024-12-27',
    });
    // Every security but the first bond, which matures in the last complete quarter (2024Q3) so
    // that the books show a maturity, ticks through the four sessions.
    expect(first.ticks).toBe(11 * (3 * 1170 + 630));
    const [matured] = await rows<{ security_id: string; maturity_date: string }>(
      `select security_id, maturity_date::text from securities where status = 'MATURED'`,
    );
    expect(matured?.maturity_date.slice(0, 7)).toMatch(/^2024-0[789]$/);
    expect(first.ticksLoaded).toBe(first.ticks);
    expect(first.dailyBars).toBeGreaterThan(1000);
    expect(ctx.progressSeen.at(-1)).toBe(100);
    expect(ctx.logs.some((l) => l.startsWith('ticks: loaded'))).toBe(true);
    const [count] = await rows<{ n: string }>('select count(*) as n from ticks');
    expect(Number(count?.n)).toBe(first.ticks);
    fingerprint = await deps.repos.generator.fingerprint();
    expect(Object.values(fingerprint)).not.toContain('empty');
  });

  it('puts ticks only inside NYSE sessions: none on holidays, early closes end before 13:00', async () => {
    const [outside] = await rows<{ n: string }>(
      `select count(*) as n from ticks t where not exists (
         select 1 from market_sessions m where m.exchange = 'XNYS' and t.ts >= m.open_at and t.ts < m.close_at)`,
    );
    expect(Number(outside?.n)).toBe(0);
    const perDay = await rows<{ d: string; n: string; last: string }>(
      `select (ts at time zone 'America/New_York')::date::text as d, count(*) as n,
              max(ts at time zone 'America/New_York')::time::text as last
         from ticks group by 1 order by 1`,
    );
    expect(perDay.map((r) => r.d)).toEqual(['2024-12-23', '2024-12-24', '2024-12-26', '2024-12-27']);
    expect(perDay.find((r) => r.d === '2024-12-24')?.last).toBe('12:59:40');
    expect(perDay.find((r) => r.d === '2024-12-23')?.last).toBe('15:59:40');
    const [bars] = await rows<{ holiday: string; weekend: string }>(
      `select count(*) filter (where session_date in ('2024-11-28', '2024-12-25', '2024-07-04')) as holiday,
              count(*) filter (where extract(isodow from session_date) > 5) as weekend
         from bars_1d`,
    );
    expect(bars).toEqual({ holiday: '0', weekend: '0' });
  });

  it('covers every security type, 15 issuer countries and several currencies', async () => {
    const types = await rows<{ security_type: string }>(
      'select distinct security_type from securities order by 1',
    );
    expect(types.map((t) => t.security_type)).toEqual(['ABS', 'BOND', 'CLO', 'EQUITY', 'FUTURE', 'OPTION']);
    const [mix] = await rows<{ countries: string; currencies: string; fx: string }>(
      `select (select count(distinct country) from issuers) as countries,
              (select count(distinct currency) from securities) as currencies,
              (select count(distinct from_currency) from fx_rates) as fx`,
    );
    expect(Number(mix?.countries)).toBeGreaterThanOrEqual(15);
    expect(Number(mix?.currencies)).toBeGreaterThanOrEqual(4);
    expect(Number(mix?.fx)).toBe(Number(mix?.currencies) - 1);
  });

  it('shows each split as a jump of its ratio in the raw daily closes', async () => {
    const splits = await rows<{ ratio: string; before: string; after: string }>(
      `select c.ratio, b0.close as before, b1.close as after
         from corporate_actions c
         join bars_1d b1 on b1.security_id = c.security_id and b1.session_date = c.ex_date
         join lateral (select close from bars_1d b where b.security_id = c.security_id and b.session_date < c.ex_date
                        order by session_date desc limit 1) b0 on true
        where c.action_type in ('STOCK_SPLIT', 'REVERSE_SPLIT')`,
    );
    expect(splits.length).toBeGreaterThanOrEqual(3);
    expect(splits.some((s) => Number(s.ratio) < 1)).toBe(true);
    for (const s of splits) {
      const jump = Number(s.before) / Number(s.after);
      expect(jump / Number(s.ratio)).toBeGreaterThan(0.8);
      expect(jump / Number(s.ratio)).toBeLessThan(1.25);
    }
  });

  it('writes trades for all 7 portfolios but no holdings (derived by holdings.snapshot), and thin margin clients', async () => {
    const [h] = await rows<{ holdings: string; portfolios: string }>(
      `select (select count(*) from holdings) as holdings,
              (select count(distinct portfolio_id) from transactions) as portfolios`,
    );
    expect(h).toEqual({ holdings: '0', portfolios: '7' });
    const margin = await rows<{ client_code: string; equity: string; lmv: string }>(
      `with last as (select distinct on (security_id) security_id, price from ticks order by security_id, ts desc)
       select c.client_code,
              sum(greatest(p.quantity, 0) * l.price) as lmv,
              sum(greatest(p.quantity, 0) * l.price) + a.cash_balance - a.loan_balance
                - sum(greatest(-p.quantity, 0) * l.price) as equity
         from clients c join accounts a on a.client_id = c.id join positions p on p.account_id = a.id
         join last l on l.security_id = p.security_id
        group by c.client_code, a.cash_balance, a.loan_balance`,
    );
    expect(margin.length).toBeGreaterThanOrEqual(5);
    expect(margin.some((m) => Number(m.equity) < 0.25 * Number(m.lmv))).toBe(true);
    expect(margin.some((m) => Number(m.equity) > 0.25 * Number(m.lmv))).toBe(true);
  });

  it('changes nothing when run again with the same payload', async () => {
    const again = await dataGenerate(deps, payload, directContext());
    expect(again.ticksLoaded).toBe(0);
    expect(again.tickChunksSkipped).toBe(again.tickChunks);
    expect(await deps.repos.generator.fingerprint()).toEqual(fingerprint);
    expect(await deps.repos.calendar.ensureSessions(first.from, first.to)).toBe(0);
    const stored = await deps.repos.calendar.sessionsBetween('2024-12-20', '2024-12-27');
    expect(stored.map((s) => [s.date, s.earlyClose])).toEqual([
      ['2024-12-20', false],
      ['2024-12-23', false],
      ['2024-12-24', true],
      ['2024-12-26', false],
      ['2024-12-27', false],
    ]);
  });

  it('gives the same data from scratch with the same seed, different data with another seed', async () => {
    await deps.repos.generator.truncateDataset();
    await dataGenerate(deps, payload, directContext());
    expect(await deps.repos.generator.fingerprint()).toEqual(fingerprint);
    await deps.repos.generator.truncateDataset();
    await dataGenerate(deps, { ...payload, seed: 2025 }, directContext());
    const other = await deps.repos.generator.fingerprint();
    expect(other.ticks).not.toBe(fingerprint.ticks);
    expect(other.securities).not.toBe(fingerprint.securities);
    expect(other.market_sessions).toBe(fingerprint.market_sessions);
  });

  it('resumes after a crash mid-chunk and ends with exactly the rows of a clean run', async () => {
    await deps.repos.generator.truncateDataset();
    await expect(
      dataGenerate(deps, payload, directContext(), { failAfterChunks: 3, concurrency: 1 }),
    ).rejects.toThrow(/injected failure after 3 tick chunks/);
    const [partial] = await rows<{ n: string; cps: string }>(
      `select (select count(*) from ticks) as n,
              (select count(*) from job_checkpoints where job_name = 'data.generate' and checkpoint_key like '%:ticks:%') as cps`,
    );
    expect(Number(partial?.cps)).toBe(3);
    expect(Number(partial?.n)).toBeGreaterThan(0);
    expect(Number(partial?.n)).toBeLessThan(first.ticks);
    const resumed = await dataGenerate(deps, payload, directContext());
    expect(resumed.tickChunksSkipped).toBe(3);
    expect(resumed.ticksLoaded + Number(partial?.n)).toBe(first.ticks);
    expect(await deps.repos.generator.fingerprint()).toEqual(fingerprint);
  });

  it('rejects impossible payloads permanently, naming the field', async () => {
    const future = dataGenerate(deps, { ...payload, endDate: '2025-02-03' }, directContext());
    await expect(future).rejects.toBeInstanceOf(UnrecoverableError);
    await expect(future).rejects.toThrow(/^endDate: /);
    await expect(dataGenerate(deps, { ...payload, endDate: '2024-02-30' }, directContext())).rejects.toThrow(
      /^endDate: /,
    );
    await expect(dataGenerate(deps, { ...payload, tickSessions: 4000 }, directContext())).rejects.toThrow(
      /^tickSessions: /,
    );
    // One dataset per database: another seed would collide with this one's natural keys.
    await expect(dataGenerate(deps, { ...payload, seed: 99 }, directContext())).rejects.toThrow(
      /^seed: .*seed=2024/,
    );
    const { endDate: _omitted, ...withoutEnd } = payload;
    const rerun = await dataGenerate(deps, withoutEnd, directContext());
    expect(rerun).toMatchObject({ to: '2024-12-27', ticksLoaded: 0 });
  });
});
