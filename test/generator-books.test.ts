/**
 * The generated books show every case the attribution handles (issue 9 item 6), in the quarter
 * the demo attributes (the last complete one): a split and a 1:10 reverse split held across their
 * ex-dates (the reverse split leaving a fraction), dividends, coupons and a maturity on held
 * securities, EUR, GBP and JPY holdings across both quarter ends, a new position and a full exit;
 * and the trades are coherent with the actions the apply job will apply (no sale beyond what is
 * held, nothing after a maturity). Checked by an independent replay (test/book-replay.ts): on
 * plans of the demo's shape for several seeds and end dates (pure), and on a demo-sized dataset
 * written to a database of this file's own (transactions and corporate_actions as stored).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Deps } from '../core/deps.ts';
import { buildPortfolios, Market } from '../core/generator/book.ts';
import { corporateActions, fxRates } from '../core/generator/paths.ts';
import { booksPeriod, focusQuarter } from '../core/generator/periods.ts';
import { buildUniverse, CURRENCIES, resolvePlan } from '../core/generator/universe.ts';
import { dataGenerate } from '../jobs/processors/data-generate.ts';
import { directContext } from '../jobs/types.ts';
import { varianceSummaryLines } from '../workers/demo-summary.ts';
import { replayBooks, type Case } from './book-replay.ts';
import { closeDeps, frozenClock, scratchDatabase, testConfig, testDeps } from './support.ts';

const EVERY_CASE: Case[] = [
  'split',
  'reverse-split',
  'reverse-split-fraction',
  'dividend',
  'coupon',
  'maturity',
  'fx-EUR',
  'fx-GBP',
  'fx-JPY',
  'new-position',
  'full-exit',
];

/** The demo's shape (workers/demo.ts defaults: small scale, 60 securities, 2 years, 20 tick sessions). */
const demo = { scale: 'small' as const, securities: 60, years: 2, tickSessions: 20 };

function pureBook(seed: number, endDate: string, shape: Partial<Parameters<typeof resolvePlan>[0]> = {}) {
  const plan = resolvePlan({ seed, endDate, ...demo, ...shape });
  const { securities } = buildUniverse(plan);
  const market = new Market(
    plan,
    securities,
    fxRates(
      plan,
      CURRENCIES.filter((c) => c !== 'USD'),
    ),
  );
  const book = buildPortfolios(plan, securities, market);
  const actions = securities.flatMap((s) => corporateActions(plan, s, market.path(s.index)));
  const replay = replayBooks(
    book.transactions.map((t) => ({
      portfolio: t.portfolioId ?? '',
      security: t.securityId,
      type: t.txnType,
      quantity: t.quantity,
      date: t.txnDate,
    })),
    actions.map((a) => ({ security: a.securityId, type: a.actionType, exDate: a.exDate, ratio: a.ratio })),
    new Map(securities.map((s) => [s.securityId, s.currency])),
    plan,
  );
  return { plan, book, replay };
}

describe('generated books (pure, the demo shape)', () => {
  it.each([
    [42, '2026-12-04'],
    [42, '2026-10-02'],
    [42, '2025-06-30'],
    [7, '2025-03-31'],
    [1, '2024-08-15'],
    [99, '2026-02-27'],
  ])(
    'seed %i ending %s: every case in the last complete quarter, no sale beyond the holding',
    (seed, end) => {
      const { plan, book, replay } = pureBook(seed, end);
      expect(replay.violations).toEqual([]);
      const focus = focusQuarter(plan);
      expect(focus?.label).toBe(replay.labels.at(-1));
      const cases = replay.quarters.get(focus!.label);
      expect(EVERY_CASE.filter((c) => !cases?.has(c))).toEqual([]);
      expect(book.roles.map((r) => r.kind).sort()).toEqual(
        [
          'coupon',
          'dividend',
          'full-exit',
          'fx-EUR',
          'fx-GBP',
          'fx-JPY',
          'maturity',
          'new-position',
          'reverse-split',
          'split',
        ].sort(),
      );
      // Every portfolio trades.
      expect(new Set(book.transactions.map((t) => t.portfolioId)).size).toBe(7);
    },
  );

  it.each([
    [
      'seed scale (1000 securities, 5 years, ticks throughout)',
      { scale: 'seed' as const, securities: undefined, years: undefined, tickSessions: undefined },
    ],
    ['120 tick sessions (the whole quarter ticked)', { tickSessions: 120 }],
    ['one year', { years: 1 }],
  ])('also at %s', (_name, shape) => {
    const { plan, replay } = pureBook(3, '2025-11-14', shape);
    expect(replay.violations).toEqual([]);
    const cases = replay.quarters.get(focusQuarter(plan)!.label);
    expect(EVERY_CASE.filter((c) => !cases?.has(c))).toEqual([]);
  });

  it('the demo flow asks for the same quarter the books were built for', () => {
    const { plan } = pureBook(42, '2026-12-04');
    expect(booksPeriod(plan)).toEqual({
      asOf: '2026-12-04',
      from: plan.from,
      to: '2026-12-04',
      quarter: '2026Q3',
    });
    const end = resolvePlan({ seed: 1, endDate: '2024-12-31', ...demo });
    expect(booksPeriod(end).quarter).toBe('2024Q4');
    const short = resolvePlan({ seed: 1, endDate: '2024-07-05', ...demo, years: 0.1 });
    expect(booksPeriod(short).quarter).toBeNull();
  });

  it('the replay catches a sale beyond the holding, a trade after a maturity and a reverse split fraction', () => {
    const t = (type: string, quantity: string, date: string, security = 'S1') => ({
      portfolio: 'P',
      security,
      type,
      quantity,
      date,
    });
    const replay = replayBooks(
      [
        t('BUY', '1005', '2024-04-02'),
        t('SELL', '101', '2024-05-02'),
        t('BUY', '10', '2024-04-02', 'B1'),
        t('SELL', '10', '2024-05-10', 'B1'),
        t('BUY', '300', '2024-03-20', 'S2'),
        t('SELL', '300', '2024-05-03', 'S2'),
      ],
      [
        { security: 'S1', type: 'REVERSE_SPLIT', exDate: '2024-05-01', ratio: '0.1000000000' },
        { security: 'B1', type: 'MATURITY', exDate: '2024-05-09', ratio: null },
      ],
      new Map([
        ['S1', 'USD'],
        ['B1', 'USD'],
        ['S2', 'USD'],
      ]),
      { from: '2024-03-01', to: '2024-06-30' },
    );
    expect(replay.violations).toEqual([
      'P|S1: SELL 101 on 2024-05-02 with 100 held',
      'P|B1: SELL 10 on 2024-05-10, after its maturity 2024-05-09',
      'P|B1: SELL 10 on 2024-05-10 with 0 held',
    ]);
    expect([...(replay.quarters.get('2024Q2')?.keys() ?? [])].sort()).toEqual([
      'full-exit',
      'maturity',
      'new-position',
      'reverse-split',
      'reverse-split-fraction',
    ]);
  });

  it('is the same book for the same plan', () => {
    const a = pureBook(42, '2026-12-04');
    const b = pureBook(42, '2026-12-04');
    expect(JSON.stringify(a.book)).toBe(JSON.stringify(b.book));
  });

  it('a universe too small for the roles still gives coherent trades', () => {
    for (const securities of [3, 4, 8, 12]) {
      const plan = resolvePlan({ seed: 5, scale: 'small', securities, years: 0.6, endDate: '2024-12-27' });
      const { securities: specs } = buildUniverse(plan);
      const market = new Market(
        plan,
        specs,
        fxRates(
          plan,
          CURRENCIES.filter((c) => c !== 'USD'),
        ),
      );
      const book = buildPortfolios(plan, specs, market);
      const actions = specs.flatMap((s) => corporateActions(plan, s, market.path(s.index)));
      const replay = replayBooks(
        book.transactions.map((t) => ({
          portfolio: t.portfolioId ?? '',
          security: t.securityId,
          type: t.txnType,
          quantity: t.quantity,
          date: t.txnDate,
        })),
        actions.map((a) => ({
          security: a.securityId,
          type: a.actionType,
          exDate: a.exDate,
          ratio: a.ratio,
        })),
        new Map(specs.map((s) => [s.securityId, s.currency])),
        plan,
      );
      expect(replay.violations, `securities=${securities}`).toEqual([]);
    }
  });
});

describe('generated books in the database (demo-sized dataset)', () => {
  let deps: Deps;
  let scratch: { url: string; drop: () => Promise<void> };
  const payload = { seed: 42, endDate: '2026-10-02', ...demo };

  beforeAll(async () => {
    scratch = await scratchDatabase();
    deps = testDeps({
      config: testConfig({ DATABASE_URL: scratch.url }),
      clock: frozenClock('2026-10-05T12:00:00Z'),
    });
    await dataGenerate(deps, payload, directContext());
  }, 120_000);

  afterAll(async () => {
    await closeDeps(deps);
    await scratch?.drop();
  });

  async function rows<T>(sql: string): Promise<T[]> {
    return (await deps.db.raw<{ rows: T[] }>(sql)).rows;
  }

  it('stored transactions and actions replay with every case in the last complete quarter', async () => {
    const trades = await rows<{
      portfolio: string;
      security: string;
      type: string;
      quantity: string;
      date: string;
    }>(
      `select t.portfolio_id as portfolio, s.security_id as security, t.txn_type as type, t.quantity::text,
              t.txn_date::text as date
         from transactions t join securities s on s.id = t.security_id
        where t.portfolio_id is not null order by t.txn_id`,
    );
    const actions = await rows<{ security: string; type: string; exDate: string; ratio: string | null }>(
      `select s.security_id as security, c.action_type as type, c.ex_date::text as "exDate", c.ratio::text
         from corporate_actions c join securities s on s.id = c.security_id order by c.action_id`,
    );
    const currencies = await rows<{ security_id: string; currency: string }>(
      'select security_id, currency from securities',
    );
    const range = await rows<{ from: string; to: string }>(
      `select min(session_date)::text as from, max(session_date)::text as to from market_sessions`,
    );
    const replay = replayBooks(
      trades,
      actions,
      new Map(currencies.map((c) => [c.security_id, c.currency])),
      range[0]!,
    );
    expect(replay.violations).toEqual([]);
    expect(replay.labels.at(-1)).toBe('2026Q3');
    const cases = replay.quarters.get('2026Q3');
    expect(EVERY_CASE.filter((c) => !cases?.has(c))).toEqual([]);
    // Every portfolio holds something at the quarter's end.
    expect(new Set(trades.map((t) => t.portfolio)).size).toBe(7);
  });

  it('writes no holdings (holdings.snapshot derives them) and prices every trade at the close', async () => {
    const [h] = await rows<{ n: string }>('select count(*) as n from holdings');
    expect(h?.n).toBe('0');
    const [p] = await rows<{ priced: string; off: string }>(
      `select count(*) as priced, count(*) filter (where b.close <> t.price) as off
         from transactions t join bars_1d b on b.security_id = t.security_id and b.session_date = t.txn_date`,
    );
    expect(Number(p?.priced)).toBeGreaterThan(100);
    expect(p?.off).toBe('0');
    // At most one trade a day per portfolio and security, so a replay's order within a day never matters.
    const [d] = await rows<{ n: string }>(
      `select count(*) as n from (select 1 from transactions where portfolio_id is not null
         group by portfolio_id, security_id, txn_date having count(*) > 1) x`,
    );
    expect(d?.n).toBe('0');
    // No trade on a split's ex-date or on or after a maturity date.
    const [c] = await rows<{ n: string }>(
      `select count(*) as n from transactions t join corporate_actions c on c.security_id = t.security_id
        where (c.action_type in ('STOCK_SPLIT', 'REVERSE_SPLIT') and t.txn_date = c.ex_date)
           or (c.action_type = 'MATURITY' and t.txn_date >= c.ex_date)`,
    );
    expect(c?.n).toBe('0');
    // Bonds are quoted per 100 of face and hold face_value = 100: a coupon pays Q·100·amount.
    const [f] = await rows<{ bonds: string; off: string }>(
      `select count(*) as bonds, count(*) filter (where face_value is distinct from 100) as off
         from securities where security_type in ('BOND', 'CLO', 'ABS')`,
    );
    expect(Number(f?.bonds)).toBeGreaterThan(10);
    expect(f?.off).toBe('0');
  });

  it("clients' positions equal a replay of their transactions, none traded before a later split", async () => {
    const diff = await rows<{
      client_code: string;
      security_id: string;
      pos: string | null;
      replay: string | null;
    }>(
      `with r as (
         select t.account_id, t.security_id,
                sum(case when t.txn_type in ('BUY', 'COVER') then t.quantity else -t.quantity end) as q
           from transactions t where t.account_id is not null group by 1, 2)
       select c.client_code, s.security_id, p.quantity::text as pos, r.q::text as replay
         from positions p full join r on r.account_id = p.account_id and r.security_id = p.security_id
         join accounts a on a.id = coalesce(p.account_id, r.account_id)
         join clients c on c.id = a.client_id
         join securities s on s.id = coalesce(p.security_id, r.security_id)
        where p.quantity is distinct from r.q`,
    );
    expect(diff).toEqual([]);
    const [n] = await rows<{ positions: string; splitAfter: string }>(
      `select (select count(*) from positions) as positions,
              (select count(*) from transactions t join corporate_actions c on c.security_id = t.security_id
                where t.account_id is not null and c.action_type in ('STOCK_SPLIT', 'REVERSE_SPLIT')
                  and c.ex_date > t.txn_date) as "splitAfter"`,
    );
    expect(Number(n?.positions)).toBeGreaterThan(20);
    expect(n?.splitAfter).toBe('0');
  });

  it("sums the quarter's variance rows per portfolio in numeric for the demo's table; no rows says so", async () => {
    const ids = (await rows<{ id: number }>('select id from securities order by id limit 2')).map(
      (r) => r.id,
    );
    const row = (p: string, sec: number, v: (string | null)[], flag: string | null = null) =>
      deps.db('variance_rows').insert({
        portfolio_id: p,
        security_id: sec,
        period_label: '2026Q3',
        period_from: '2026-07-01',
        period_to: '2026-09-30',
        qty_start: 1,
        qty_end: 1,
        mv_start: v[0],
        mv_end: v[1],
        corp_action_effect: v[2],
        qty_effect: v[3],
        price_effect: v[4],
        fx_effect: v[5],
        total_pnl: v[6],
        distributions: v[7] ?? 0,
        flag,
      });
    // 0.10 + 0.20 is 0.30 exactly here, as it is not in binary floating point.
    await row('PORT-001', ids[0]!, [
      '1000000.10',
      '1000100.30',
      '0.10',
      '0.00',
      '100.10',
      '0.00',
      '100.20',
      '0.10',
    ]);
    await row('PORT-001', ids[1]!, ['0.20', '0.20', '0.00', '0.00', '0.00', '0.00', '0.00']);
    await row('PORT-002', ids[0]!, ['-5.00', '-7.50', '0.00', '-1.00', '-1.50', '0.00', '-2.50']);
    await row('PORT-002', ids[1]!, [null, null, null, null, null, null, null], 'missing price_end');
    try {
      const summary = await deps.repos.generator.varianceSummary('2026Q3');
      expect(summary).toEqual([
        expect.objectContaining({
          portfolioId: 'PORT-001',
          mvStart: '1000000.30',
          total: '100.20',
          rows: 2,
          flagged: 0,
        }),
        expect.objectContaining({
          portfolioId: 'PORT-002',
          mvEnd: '-7.50',
          quantity: '-1.00',
          rows: 2,
          flagged: 1,
        }),
        expect.objectContaining({
          portfolioId: null,
          mvStart: '999995.30',
          total: '97.70',
          rows: 4,
          flagged: 1,
        }),
      ]);
      const lines = varianceSummaryLines('2026Q3', summary);
      expect(lines[0]).toMatch(/^variance 2026Q3/);
      expect(lines.find((l) => l.startsWith('PORT-001'))).toMatch(/1,000,000\.30 +1,000,100\.50 +0\.10/);
      expect(lines.find((l) => l.startsWith('all'))).toMatch(/97\.70 +1$/);
      expect(lines).toContain('corp + qty + price + FX = total on every line, to the cent');
      expect(await deps.repos.generator.varianceSummary('2026Q2')).toEqual([]);
      expect(varianceSummaryLines('2026Q2', [])).toEqual([
        'variance 2026Q2: variance.quarterly wrote no rows for this quarter',
      ]);
      expect(varianceSummaryLines(null, [])[0]).toMatch(/no complete quarter/);
    } finally {
      await deps.db('variance_rows').delete();
    }
  });
});
