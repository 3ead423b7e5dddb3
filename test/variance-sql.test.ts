/**
 * variance.quarterly's SQL attribution (BooksRepository.writeVariance, one INSERT … SELECT for all
 * portfolios of a period) against its reference, attribute() + inCents() of core/domain through
 * test/variance-oracle.ts varianceRow(), on thousands of random holdings pairs: splits and reverse
 * splits (terminating and not), new positions (period-start close, or first trade price restated
 * by the splits before it, or nothing: flagged), full exits, shorts, missing prices and rates at
 * either end, distributions (and one whose rate is missing), bonds per 100 face, half-cent values,
 * huge and tiny quantities and prices (beyond 40 significant digits, where decimal.js rounds).
 * Every stored column must be identical. Also the SQL helpers alone: dec40() against decimal.js
 * and centsPreservingSum() against roundPreservingSum().
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Deps } from '../core/deps.ts';
import { D, dec, roundPreservingSum, round } from '../core/domain/money.ts';
import { resolvePeriod } from '../core/domain/periods.ts';
import { centsPreservingSum } from '../core/db/repositories/books.ts';
import { addPortfolio } from './books-fixtures.ts';
import { varianceRow } from './variance-oracle.ts';
import { closeDeps, frozenClock, scratchDatabase, testConfig, testDeps, prng } from './support.ts';

let deps: Deps;
let scratch: { url: string; drop: () => Promise<void> };

const r = prng(9_2025);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
const chance = (p: number): boolean => r() < p;
/** A positive decimal with up to `int` integer digits and exactly `places` decimals (not zero). */
function decimal(int: number, places: number): string {
  const digits = (n: number): string => Array.from({ length: n }, () => Math.floor(r() * 10)).join('');
  const i = String(BigInt(digits(Math.max(1, Math.floor(r() * int) + 1))));
  const text = places > 0 ? `${i}.${digits(places)}` : i;
  return dec(text).isZero() ? (places > 0 ? `0.${'0'.repeat(places - 1)}1` : '1') : text;
}
/** Never zero (a stored quantity, price or rate is not zero). */
const nz = (v: string): string => (dec(v).isZero() ? '0.00000001' : v);
const quantity = (): string =>
  nz(
    pick([
      () => String(1 + Math.floor(r() * 5000)),
      () => decimal(6, 8),
      () => decimal(11, 8), // huge: with a 6-digit price and a 10-decimal rate, > 40 digits
      () => `0.${'0'.repeat(Math.floor(r() * 4))}${decimal(1, 4).replace('.', '')}`.slice(0, 10),
      () => `-${decimal(4, 2)}`, // a short
    ])(),
  );
const price = (): string =>
  nz(
    pick([
      () => decimal(3, 2),
      () => `${decimal(2, 2)}5`, // x.xx5: half-cent values
      () => decimal(6, 8),
      () => `0.0000${decimal(1, 4).replace('.', '')}`.slice(0, 10),
      () => decimal(1, 8),
    ])(),
  );
const rate = (): string =>
  nz(
    pick([
      () => decimal(1, 10),
      () => `0.00${decimal(1, 8).replace('.', '')}`.slice(0, 12),
      () => decimal(3, 10),
    ])(),
  );
const RATIOS = [
  '2',
  '3',
  '1.5',
  '7',
  '0.5',
  '0.1',
  '0.3333333333',
  '1.2345678901',
  '0.0666666667',
  '3.0000000001',
];

const PERIOD = resolvePeriod({ quarter: '2025Q2' });
const PORTS = [
  { id: 'PORT-901', base: 'USD' },
  { id: 'PORT-902', base: 'EUR' },
];
const CCYS = ['USD', 'EUR', 'GBP', 'JPY'];
const N = 1600;
/** Period days (calendar) for trades, splits and distributions. */
function dayIn(): string {
  const t = Date.UTC(2025, 3, 1) + Math.floor(r() * 91) * 86_400_000;
  return new Date(t).toISOString().slice(0, 10);
}

beforeAll(async () => {
  scratch = await scratchDatabase();
  deps = testDeps({
    config: testConfig({ DATABASE_URL: scratch.url }),
    clock: frozenClock('2025-07-02T22:00:00Z'),
  });
  const db = deps.db;
  for (const p of PORTS) await addPortfolio(db, p.id, p.base);
  const secRows = Array.from({ length: N }, (_, i) => {
    const bond = i % 6 === 0;
    return {
      security_id: `SEC-9${String(i).padStart(5, '0')}`,
      ticker: `VSQ${i}`,
      security_name: `vsql ${i}`,
      security_type: bond ? 'BOND' : 'EQUITY',
      asset_class: bond ? 'Fixed Income' : 'Equity',
      currency: CCYS[i % 4]!,
      exchange: bond ? 'OTC' : 'NYSE',
      face_value: bond ? pick(['100', '1000', '50', '25']) : null,
      maturity_date: bond ? '2035-06-15' : null,
      coupon_rate: bond ? '0.03' : null,
      coupon_frequency: bond ? 2 : null,
    };
  });
  const ids: number[] = [];
  for (let i = 0; i < secRows.length; i += 400)
    ids.push(
      ...(
        await db('securities')
          .insert(secRows.slice(i, i + 400))
          .returning<{ id: number }[]>('id')
      ).map((x) => x.id),
    );

  // FX: EUR, GBP, JPY → USD every calendar day of the range; nothing between GBP/JPY and EUR (a
  // EUR portfolio's GBP/JPY rows miss their rates); USD → EUR through the inverse pair.
  const fx: object[] = [];
  for (let t = Date.UTC(2025, 2, 20); t <= Date.UTC(2025, 6, 5); t += 86_400_000) {
    const d = new Date(t).toISOString().slice(0, 10);
    for (const c of ['EUR', 'GBP', 'JPY'])
      fx.push({ from_currency: c, to_currency: 'USD', rate_date: d, rate: rate(), source: 'test' });
  }
  await db.batchInsert('fx_rates', fx, 500);

  const holdings: object[] = [];
  const trades: object[] = [];
  const bars: object[] = [];
  const actions: { security_id: number; type: string; ex: string; ratio?: string }[] = [];
  const ledger: { sec: number; portfolio: string; ex: string; currency: string; cash: string }[] = [];
  let txn = 0;
  const holding = (p: string, s: number, d: string, q: string) => {
    const lp = chance(0.05) ? null : price();
    const x = chance(0.05) ? null : rate();
    holdings.push({
      portfolio_id: p,
      security_id: s,
      as_of_date: d,
      quantity: q,
      local_price: lp,
      fx_rate: x,
      market_value: lp === null || x === null ? null : '0',
      flag: lp === null ? 'missing_price' : x === null ? 'missing_fx' : null,
    });
  };
  const trade = (p: string, s: number, ccy: string, type: string, q: string, date = dayIn()) =>
    trades.push({
      txn_id: `TXN-VSQ-${++txn}`,
      portfolio_id: p,
      security_id: s,
      txn_type: type,
      quantity: q.replace('-', ''),
      price: price(),
      txn_date: date,
      settlement_date: date,
      fees: '0',
      currency: ccy,
    });
  ids.forEach((s, i) => {
    const ccy = CCYS[i % 4]!;
    if (chance(0.2)) {
      const days = [dayIn(), dayIn()].sort();
      actions.push({ security_id: s, type: 'STOCK_SPLIT', ex: days[0]!, ratio: pick(RATIOS) });
      if (chance(0.3) && days[1] !== days[0])
        actions.push({ security_id: s, type: 'REVERSE_SPLIT', ex: days[1]!, ratio: pick(RATIOS) });
    }
    if (chance(0.5))
      bars.push({
        security_id: s,
        session_date: PERIOD.d0,
        ...((c) => ({ open: c, high: c, low: c, close: c }))(price()),
        volume: 1,
        source: 'test',
      });
    for (const p of PORTS) {
      const kind = pick(['both', 'both', 'both', 'new', 'new', 'exit', 'roundtrip', 'dist', 'none']);
      const q0 = quantity();
      if (kind === 'both' || kind === 'exit') holding(p.id, s, PERIOD.d0, q0);
      if (kind === 'both') holding(p.id, s, PERIOD.d1, chance(0.3) ? q0 : quantity());
      if (kind === 'new') {
        const q1 = quantity();
        holding(p.id, s, PERIOD.d1, q1);
        if (chance(0.85)) {
          trade(p.id, s, ccy, 'BUY', q1);
          if (chance(0.3)) trade(p.id, s, ccy, 'BUY', quantity());
        }
      }
      if (kind === 'exit' && chance(0.5)) trade(p.id, s, ccy, 'SELL', q0);
      if (kind === 'roundtrip') {
        const d = dayIn();
        trade(p.id, s, ccy, 'BUY', '10', d);
        trade(p.id, s, ccy, 'SELL', '10', d);
      }
      if (kind === 'dist' || (kind === 'both' && chance(0.2)))
        ledger.push({ sec: s, portfolio: p.id, ex: dayIn(), currency: ccy, cash: decimal(5, 2) });
    }
  });
  await db.batchInsert('holdings', holdings, 500);
  await db.batchInsert('transactions', trades, 500);
  await db.batchInsert('bars_1d', bars, 500);
  for (const [n, a] of actions.entries())
    await db('corporate_actions').insert({
      action_id: `CA-VSQ-${n}`,
      security_id: a.security_id,
      action_type: a.type,
      ex_date: a.ex,
      ratio: a.ratio,
      currency: 'USD',
      source: 'test',
    });
  for (const [n, l] of ledger.entries()) {
    const [act] = await db('corporate_actions')
      .insert({
        action_id: `CA-VSQ-D${n}`,
        security_id: l.sec,
        action_type: 'DIVIDEND',
        ex_date: l.ex,
        payment_date: l.ex,
        amount: '1',
        currency: l.currency,
        source: 'test',
      })
      .onConflict(['security_id', 'action_type', 'ex_date'])
      .merge(['amount'])
      .returning<{ id: number }[]>('id');
    await db('corporate_action_ledger').insert({
      action_id: act!.id,
      action_revision: 1,
      portfolio_id: l.portfolio,
      entry: 'APPLY',
      action_type: 'DIVIDEND',
      ex_date: l.ex,
      payment_date: l.ex,
      amount: '1',
      currency: l.currency,
      quantity_held: '1',
      cash_amount: l.cash,
    });
  }
}, 240_000);

afterAll(async () => {
  await closeDeps(deps);
  await scratch.drop();
});

const SCALES: Record<string, number> = {
  qtyStart: 8,
  qtyEnd: 8,
  priceStart: 8,
  priceEnd: 8,
  fxStart: 10,
  fxEnd: 10,
  splitFactor: 10,
  mvStart: 2,
  mvEnd: 2,
  priceEffect: 2,
  qtyEffect: 2,
  fxEffect: 2,
  corpActionEffect: 2,
  totalPnl: 2,
  distributions: 2,
};
const COLUMN: Record<string, string> = {
  qtyStart: 'qty_start',
  qtyEnd: 'qty_end',
  priceStart: 'price_start',
  priceEnd: 'price_end',
  fxStart: 'fx_start',
  fxEnd: 'fx_end',
  splitFactor: 'split_factor',
  mvStart: 'mv_start',
  mvEnd: 'mv_end',
  priceEffect: 'price_effect',
  qtyEffect: 'qty_effect',
  fxEffect: 'fx_effect',
  corpActionEffect: 'corp_action_effect',
  totalPnl: 'total_pnl',
  distributions: 'distributions',
};

describe('variance attribution in SQL = attribute() + inCents()', () => {
  it('every row of thousands of random holdings pairs is identical, column by column', async () => {
    const ports = PORTS.map((p) => p.id);
    const written = await deps.repos.books.writeVariance(ports, PERIOD, PERIOD.d0, PERIOD.d1);
    const inputs = await deps.repos.books.varianceInputs(ports, PERIOD.d0, PERIOD.d1);
    const expected = new Map(inputs.map((i) => [`${i.portfolioId}/${i.securityId}`, varianceRow(i)]));
    const stored = await deps.db.raw<{ rows: Record<string, string | number | null>[] }>(
      `select portfolio_id, security_id, period_label, ${Object.values(COLUMN)
        .map((c) => `${c}::text`)
        .join(', ')}, flag
         from variance_rows where period_from = ?::date and period_to = ?::date`,
      [PERIOD.start, PERIOD.end],
    );
    expect(stored.rows.length).toBe(expected.size);
    expect(written.reduce((s, w) => s + w.rows, 0)).toBe(expected.size);
    expect(expected.size).toBeGreaterThan(2500);
    const mismatches: string[] = [];
    for (const row of stored.rows) {
      const key = `${row.portfolio_id}/${row.security_id}`;
      const want = expected.get(key);
      if (!want) {
        mismatches.push(`${key}: not expected`);
        continue;
      }
      expect(row.period_label).toBe('2025Q2');
      if (row.flag !== want.flag) mismatches.push(`${key} flag: ${row.flag} vs ${want.flag}`);
      for (const [field, column] of Object.entries(COLUMN)) {
        const v = want[field as keyof typeof want] as string | null;
        const w = v === null ? null : round(dec(v), SCALES[field]!).toFixed(SCALES[field]!);
        if (row[column] !== w) mismatches.push(`${key} ${column}: sql ${row[column]} vs js ${w}`);
      }
    }
    expect(mismatches.slice(0, 20)).toEqual([]);
    // The cases the data was built for all occur.
    const all = [...expected.values()];
    const count = (f: (x: (typeof all)[number]) => boolean): number => all.filter(f).length;
    expect(count((x) => x.flag === null)).toBeGreaterThan(1500);
    for (const reason of ['price_start', 'price_end', 'fx_start', 'fx_end', 'fx_distribution'])
      expect(count((x) => (x.flag ?? '').split(',').includes(reason))).toBeGreaterThan(3);
    expect(
      count((x) => x.flag === null && x.splitFactor !== '1.0000000000' && x.splitFactor !== '1'),
    ).toBeGreaterThan(50);
    expect(count((x) => x.flag === null && dec(x.distributions).greaterThan(0))).toBeGreaterThan(20);
    expect(count((x) => x.flag === null && dec(x.qtyStart).isZero())).toBeGreaterThan(50);
    expect(count((x) => x.flag === null && dec(x.qtyEnd).isZero())).toBeGreaterThan(50);
  }, 120_000);

  it('a second run, and concurrent runs, replace the period exactly (same rows, no duplicates)', async () => {
    const ports = PORTS.map((p) => p.id);
    const q = `select md5(string_agg(v::text, '|' order by portfolio_id, security_id)) as h, count(*)::int as n
                 from (select portfolio_id, security_id, qty_start, qty_end, price_start, price_end, fx_start, fx_end,
                              split_factor, mv_start, mv_end, price_effect, qty_effect, fx_effect, corp_action_effect,
                              total_pnl, distributions, flag from variance_rows) v`;
    const before = (await deps.db.raw<{ rows: { h: string; n: number }[] }>(q)).rows[0];
    await deps.repos.books.writeVariance(ports, PERIOD, PERIOD.d0, PERIOD.d1);
    expect((await deps.db.raw<{ rows: { h: string; n: number }[] }>(q)).rows[0]).toEqual(before);
    // Concurrent runs over overlapping portfolio sets, named in different orders: they take the
    // advisory locks in one order (no deadlock) and leave exactly one run's rows (no duplicates).
    const [a, b] = ports;
    await Promise.all([
      deps.repos.books.writeVariance([b!, a!], PERIOD, PERIOD.d0, PERIOD.d1),
      deps.repos.books.writeVariance([a!], PERIOD, PERIOD.d0, PERIOD.d1),
      deps.repos.books.writeVariance([a!, b!], PERIOD, PERIOD.d0, PERIOD.d1),
      deps.repos.books.writeVariance([b!], PERIOD, PERIOD.d0, PERIOD.d1),
    ]);
    expect((await deps.db.raw<{ rows: { h: string; n: number }[] }>(q)).rows[0]).toEqual(before);
  });

  it('dec40() rounds to 40 significant digits exactly as decimal.js does', async () => {
    const cases: { a: string; b: string }[] = [];
    for (let i = 0; i < 3000; i++) {
      const a = pick([
        () => decimal(20, 20),
        () => decimal(1, 30),
        () => `0.0000000${decimal(1, 30).replace('.', '')}`,
        quantity,
      ])();
      const b = pick([() => decimal(20, 20), price, rate, () => `-${decimal(12, 12)}`])();
      cases.push({ a, b });
    }
    cases.push({ a: '99999999999999999999.99999999999999999999', b: '1.00000000000000000001' });
    cases.push({ a: '0.5', b: '1' }, { a: '-12345678901234567890.123456789012345678905', b: '1' });
    const res = await deps.db.raw<{ rows: { m: string; q: string }[] }>(
      `select dec40(a * b)::text as m, dec40(round(a, 100) / b)::text as q
         from unnest(?::numeric[], ?::numeric[]) with ordinality as u(a, b, i) order by i`,
      [cases.map((c) => c.a), cases.map((c) => c.b)],
    );
    const bad: string[] = [];
    res.rows.forEach((row, i) => {
      const { a, b } = cases[i]!;
      if (!dec(row.m).equals(dec(a).times(b)))
        bad.push(`${a} × ${b}: ${row.m} vs ${dec(a).times(b).toFixed()}`);
      if (!dec(row.q).equals(dec(a).dividedBy(b)))
        bad.push(`${a} / ${b}: ${row.q} vs ${dec(a).dividedBy(b).toFixed()}`);
    });
    expect(bad.slice(0, 10)).toEqual([]);
  });

  it('centsPreservingSum() is roundPreservingSum() of the non-zero parts, zero parts staying zero', async () => {
    const cases: { parts: string[]; total: string }[] = [];
    for (let i = 0; i < 4000; i++) {
      const parts = Array.from({ length: 4 }, () =>
        chance(0.3)
          ? '0'
          : `${chance(0.4) ? '-' : ''}${pick([
              () => decimal(4, 2),
              () => decimal(4, 7),
              () => `0.00${decimal(1, 5).replace('.', '')}`,
              () => decimal(18, 22), // 40 digits: the grid arithmetic must stay exact at any size
            ])()}`,
      );
      const exact = parts.reduce((s, p) => s.plus(p), new D(0));
      // The total inCents passes: the exact sum moved by up to two cents of separate rounding.
      const total = round(exact)
        .plus(pick(['0', '0.01', '-0.01', '0.02', '-0.02']))
        .toFixed(2);
      cases.push({ parts, total });
    }
    const res = await deps.db.raw<{ rows: { c1: string; c2: string; c3: string; c4: string }[] }>(
      `with src as (
         select u.* from unnest(?::numeric[], ?::numeric[], ?::numeric[], ?::numeric[], ?::numeric[])
                with ordinality as u(e1, e2, e3, e4, total, i)
       ), ${centsPreservingSum('src', 'o')}
       select c1::text, c2::text, c3::text, c4::text from o order by i`,
      [0, 1, 2, 3].map((k) => cases.map((c) => c.parts[k]!)).concat([cases.map((c) => c.total)]),
    );
    const bad: string[] = [];
    let moved = 0;
    res.rows.forEach((row, i) => {
      const { parts, total } = cases[i]!;
      const nz = parts.map((p, k) => ({ p: dec(p), k })).filter(({ p }) => !p.isZero());
      const rounded = roundPreservingSum(
        nz.map(({ p }) => p),
        2,
        dec(total),
      );
      const want = parts.map(() => '0.00');
      nz.forEach(({ k }, j) => (want[k] = rounded[j]!.toFixed(2)));
      const got = [row.c1, row.c2, row.c3, row.c4].map((v) => dec(v).toFixed(2));
      if (want.join() !== parts.map((p) => round(dec(p)).toFixed(2)).join()) moved++;
      if (got.join() !== want.join())
        bad.push(`${parts.join(',')} → ${total}: ${got.join()} vs ${want.join()}`);
    });
    expect(bad.slice(0, 10)).toEqual([]);
    expect(moved).toBeGreaterThan(1000); // cases where the largest remainder moved cents
  });
});
