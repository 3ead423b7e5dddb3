/**
 * Seed 2's securities-platform API as it runs: the real app (real auth, tokens from its own
 * endpoint) over rows written straight to the real tables, in a database of this file's own (the
 * list endpoints count whole tables). Shapes are checked against seed 2's examples (copied here:
 * the project stands alone); money is checked digit for digit in the response text.
 */
import type express from 'express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Auth } from '../api/auth/index.ts';
import { cents, exact, exactJson, ExactNumber } from '../api/exact-json.ts';
import { lintOpenApiFile } from '../api/openapi-cli.ts';
import type { Deps } from '../core/deps.ts';
import type { QueueSet } from '../jobs/queues.ts';
import { clientToken, startTestApp, stopTestApp } from './api-fixtures.ts';
import { frozenClock, scratchDatabase, testConfig, testDeps, prng as rng } from './support.ts';

// Today (exchange date) 2025-05-15: the latest complete quarter is 2025Q1.
const NOW = '2025-05-15T15:00:00Z';

let deps: Deps;
let scratch: { url: string; drop: () => Promise<void> };
let queues: QueueSet;
let auth: Auth;
let app: express.Express;
let reader: string;
let writerOnly: string;
const sid = new Map<string, number>();

/** seed 2: `curl http://localhost:8000/api/securities/SEC-0001`. */
const SEED_SECURITY = {
  security_id: 'SEC-0001',
  isin: 'US0000000001',
  ticker: 'TECH_A',
  security_name: 'TechCorp Alpha',
  security_type: 'EQUITY',
  asset_class: 'Equity',
  currency: 'USD',
  exchange: 'NYSE',
  issuer_id: 'ISS-001',
  status: 'ACTIVE',
};
const SEED_SUMMARY_KEYS = [
  'portfolio_id',
  'total_mv_start',
  'total_mv_end',
  'total_price_effect',
  'total_qty_effect',
  'total_fx_effect',
  'total_corp_action_effect',
  'total_pnl',
];

/** Cents (bigint) as numeric text with two decimals. */
const text = (c: bigint): string => {
  const neg = c < 0n;
  const a = neg ? -c : c;
  return `${neg ? '-' : ''}${a / 100n}.${String(a % 100n).padStart(2, '0')}`;
};
const toCents = (s: string): bigint => {
  const m = /^(-?)(\d+)\.(\d{2})$/.exec(s);
  if (!m) throw new Error(`not a cents figure: ${s}`);
  const v = BigInt(m[2]!) * 100n + BigInt(m[3]!);
  return m[1] ? -v : v;
};

/** JSON with every number kept as its source text (V8's JSON.parse source access). */
function parseExact(body: string): unknown {
  return JSON.parse(body, (_key, value: unknown, context?: { source?: string }) =>
    typeof value === 'number' ? context!.source : value,
  );
}

const GENERATED = 240;

interface VarRow {
  portfolio: string;
  sec: string;
  label: string;
  from: string;
  to: string;
  qty: [string, string];
  price: [string | null, string | null];
  fx: [string | null, string | null];
  split?: string;
  mv: [string | null, string | null];
  effects: { price: string; qty: string; fx: string; corp: string } | null;
  distributions?: string;
  flag?: string;
}

async function insertVariance(rows: VarRow[]): Promise<void> {
  await deps.db('variance_rows').insert(
    rows.map((r) => {
      const e = r.effects;
      const total = e ? text(toCents(e.price) + toCents(e.qty) + toCents(e.fx) + toCents(e.corp)) : null;
      return {
        portfolio_id: r.portfolio,
        security_id: sid.get(r.sec)!,
        period_label: r.label,
        period_from: r.from,
        period_to: r.to,
        qty_start: r.qty[0],
        qty_end: r.qty[1],
        price_start: r.price[0],
        price_end: r.price[1],
        fx_start: r.fx[0],
        fx_end: r.fx[1],
        split_factor: r.split ?? '1',
        mv_start: r.mv[0],
        mv_end: r.mv[1],
        price_effect: e?.price ?? null,
        qty_effect: e?.qty ?? null,
        fx_effect: e?.fx ?? null,
        corp_action_effect: e?.corp ?? null,
        total_pnl: total,
        distributions: r.distributions ?? '0',
        flag: r.flag ?? null,
      };
    }),
  );
}

/** The generated rows of PORT-002 in 2025Q1: awkward cents, large magnitudes, both signs. */
const generated: { sec: string; effects: bigint[]; mvStart: bigint; mvEnd: bigint; dist: bigint }[] = [];

beforeAll(async () => {
  scratch = await scratchDatabase();
  deps = testDeps({
    config: testConfig({ DATABASE_URL: scratch.url, API_SERIES_CACHE_MB: '0' }),
    clock: frozenClock(NOW),
  });
  ({ app, queues, auth } = await startTestApp(deps));
  reader = (await clientToken(deps, app, ['results:read'])).header;
  writerOnly = (await clientToken(deps, app, ['jobs:write'])).header;

  await deps.db('issuers').insert([
    { issuer_id: 'ISS-001', issuer_name: 'TechCorp', country: 'US', sector: 'Technology' },
    { issuer_id: 'ISS-002', issuer_name: 'Albion Bank', country: 'GB', sector: 'Financials' },
    { issuer_id: 'ISS-003', issuer_name: 'Nippon Works', country: 'JP', sector: 'Industrials' },
    { issuer_id: 'ISS-004', issuer_name: 'Rhein AG', country: 'DE', sector: 'Technology' },
  ]);
  const base = { asset_class: 'Equity', exchange: 'NYSE', security_type: 'EQUITY' };
  const secs = [
    { ...SEED_SECURITY, cusip: '000000001', sedol: null },
    {
      ...base,
      security_id: 'SEC-0002',
      ticker: 'ALBN',
      security_name: 'Albion Bank',
      currency: 'GBP',
      issuer_id: 'ISS-002',
      exchange: 'LSE',
    },
    {
      security_id: 'SEC-0003',
      ticker: 'TECH_B30',
      security_name: 'TechCorp 4.5% 2030',
      security_type: 'BOND',
      asset_class: 'Fixed Income',
      currency: 'USD',
      exchange: 'OTC',
      issuer_id: 'ISS-001',
      issue_date: '2020-01-15',
      maturity_date: '2030-01-15',
      coupon_rate: '0.045000',
      coupon_frequency: 2,
      face_value: '100',
    },
    {
      ...base,
      security_id: 'SEC-0004',
      ticker: 'NPWK',
      security_name: 'Nippon Works',
      currency: 'JPY',
      issuer_id: 'ISS-003',
      exchange: 'TSE',
    },
    {
      ...base,
      security_id: 'SEC-0005',
      ticker: 'RHEIN',
      security_name: 'Rhein AG',
      currency: 'EUR',
      issuer_id: 'ISS-004',
      exchange: 'XETRA',
    },
    ...Array.from({ length: GENERATED }, (_, i) => ({
      ...base,
      security_id: `SEC-${1000 + i}`,
      ticker: `GEN${1000 + i}`,
      security_name: `Generated ${i}`,
      currency: i % 3 === 0 ? 'EUR' : 'USD',
      issuer_id: i % 2 === 0 ? 'ISS-001' : 'ISS-004',
    })),
  ];
  const ids = await deps
    .db('securities')
    .insert(secs)
    .returning<{ id: number; security_id: string }[]>(['id', 'security_id']);
  for (const r of ids) sid.set(r.security_id, r.id);

  await deps.db('portfolios').insert([
    {
      portfolio_id: 'PORT-001',
      portfolio_name: 'Global Equity',
      portfolio_type: 'EQUITY',
      benchmark: 'MSCI ACWI',
      inception_date: '2020-01-02',
      base_currency: 'USD',
    },
    {
      portfolio_id: 'PORT-002',
      portfolio_name: 'Generated',
      portfolio_type: 'MIXED',
      benchmark: null,
      inception_date: '2020-01-02',
      base_currency: 'USD',
    },
    {
      portfolio_id: 'PORT-003',
      portfolio_name: 'Empty',
      portfolio_type: 'HEDGE',
      benchmark: null,
      inception_date: '2024-01-02',
      base_currency: 'USD',
    },
  ]);

  // Holdings: the quarter ends 2024-12-31 and 2025-03-31, a day that is not one (2025-03-28) and the latest 2025-05-14.
  const holding = (
    portfolio: string,
    sec: string,
    date: string,
    mv: string,
    extra: Record<string, unknown> = {},
  ) => ({
    portfolio_id: portfolio,
    security_id: sid.get(sec)!,
    as_of_date: date,
    quantity: '1500.00000000',
    local_price: '187.25000000',
    fx_rate: '1.0000000000',
    market_value: mv,
    weight: '0.12345678',
    cost_basis: '250000.10',
    accrued_interest: '0.00',
    ...extra,
  });
  await deps.db('holdings').insert([
    holding('PORT-001', 'SEC-0001', '2024-12-31', '280875.00'),
    holding('PORT-001', 'SEC-0001', '2025-03-28', '280000.00'),
    holding('PORT-001', 'SEC-0001', '2025-03-31', '280875.00'),
    holding('PORT-001', 'SEC-0003', '2025-03-31', '101234.57', {
      accrued_interest: '1234.56',
      local_price: '99.87654321',
    }),
    holding('PORT-001', 'SEC-0004', '2025-03-31', null as unknown as string, {
      local_price: '2345.00000000',
      fx_rate: null,
      weight: null,
      flag: 'no JPY→USD rate on 2025-03-31',
    }),
    holding('PORT-002', 'SEC-0002', '2025-03-31', '9999999999.99', { fx_rate: '1.2512345678' }),
    holding('PORT-001', 'SEC-0001', '2025-05-14', '300000.00'),
    holding('PORT-002', 'SEC-0002', '2025-05-14', '10.00'),
  ]);

  const q1 = { label: '2025Q1', from: '2024-12-31', to: '2025-03-31' };
  // SPEC §8's worked case: 100 sh at €50, EURUSD 1.10, 2:1 split, then 250 sh at €27, EURUSD 1.05.
  await insertVariance([
    {
      portfolio: 'PORT-001',
      sec: 'SEC-0005',
      ...q1,
      qty: ['100', '250'],
      price: ['50', '27'],
      fx: ['1.10', '1.05'],
      split: '2',
      mv: ['5500.00', '7087.50'],
      effects: { corp: '0.00', qty: '1375.00', price: '550.00', fx: '-337.50' },
    },
    {
      portfolio: 'PORT-001',
      sec: 'SEC-0001',
      ...q1,
      qty: ['1500', '1500'],
      price: ['180.123', '187.25'],
      fx: ['1', '1'],
      mv: ['270184.50', '280875.00'],
      effects: { corp: '1200.00', qty: '0.00', price: '10690.50', fx: '0.00' },
      distributions: '1200.00',
    },
    {
      portfolio: 'PORT-001',
      sec: 'SEC-0004',
      ...q1,
      qty: ['10', '10'],
      price: ['2300', '2345'],
      fx: ['0.0065', null],
      mv: ['149.50', null],
      effects: null,
      flag: 'missing fx_end: no JPY→USD rate on 2025-03-31',
    },
    // 2024Q4 (an older quarter), 2025Q2 (not complete on 2025-05-15), a month and a from/to run.
    {
      portfolio: 'PORT-001',
      sec: 'SEC-0005',
      label: '2024Q4',
      from: '2024-09-30',
      to: '2024-12-31',
      qty: ['100', '100'],
      price: ['49', '50'],
      fx: ['1.10', '1.10'],
      mv: ['5390.00', '5500.00'],
      effects: { corp: '0.00', qty: '0.00', price: '110.00', fx: '0.00' },
    },
    {
      portfolio: 'PORT-001',
      sec: 'SEC-0005',
      label: '2025Q2',
      from: '2025-03-31',
      to: '2025-05-14',
      qty: ['250', '250'],
      price: ['27', '28'],
      fx: ['1.05', '1.05'],
      mv: ['7087.50', '7350.00'],
      effects: { corp: '0.00', qty: '0.00', price: '262.50', fx: '0.00' },
    },
    {
      portfolio: 'PORT-001',
      sec: 'SEC-0005',
      label: '2025-04',
      from: '2025-03-31',
      to: '2025-04-30',
      qty: ['250', '250'],
      price: ['27', '27.5'],
      fx: ['1.05', '1.05'],
      mv: ['7087.50', '7218.75'],
      effects: { corp: '0.00', qty: '0.00', price: '131.25', fx: '0.00' },
    },
    {
      portfolio: 'PORT-001',
      sec: 'SEC-0005',
      label: '2025-01-01/2025-02-15',
      from: '2024-12-31',
      to: '2025-02-14',
      qty: ['100', '100'],
      price: ['50', '51'],
      fx: ['1.10', '1.10'],
      mv: ['5500.00', '5610.00'],
      effects: { corp: '0.00', qty: '0.00', price: '110.00', fx: '0.00' },
    },
  ]);

  // PORT-002, 2025Q1: many rows with awkward cents up to tens of trillions (a float sum drifts).
  const rand = rng(20250331);
  const awkward = (): bigint => {
    const sign = rand() < 0.45 ? -1n : 1n;
    const whole = BigInt(Math.floor(rand() * 90_000_000_000_000));
    const c = [1n, 5n, 49n, 50n, 51n, 95n, 99n, BigInt(Math.floor(rand() * 100))][Math.floor(rand() * 8)]!;
    return sign * (whole * 100n + c);
  };
  const genRows: VarRow[] = [];
  for (let i = 0; i < GENERATED; i++) {
    const sec = `SEC-${1000 + i}`;
    const effects = [awkward(), awkward(), awkward(), awkward()];
    const dist = i % 7 === 0 ? BigInt(Math.floor(rand() * 10_000_000)) + 33n : 0n;
    const mvStart = BigInt(Math.floor(rand() * 1e9)) * 100n + 7n;
    const mvEnd = mvStart + effects.reduce((a, b) => a + b, 0n) - dist;
    generated.push({ sec, effects, mvStart, mvEnd, dist });
    genRows.push({
      portfolio: 'PORT-002',
      sec,
      ...q1,
      qty: ['1000.12345678', '999.87654321'],
      price: ['12.3456789', '12.34567891'],
      fx: [i % 3 === 0 ? '1.0912345678' : '1', i % 3 === 0 ? '1.0812345679' : '1'],
      mv: [text(mvStart), text(mvEnd)],
      effects: {
        price: text(effects[0]!),
        qty: text(effects[1]!),
        fx: text(effects[2]!),
        corp: text(effects[3]!),
      },
      distributions: text(dist),
    });
  }
  // Three flagged rows among them: listed, never summed.
  for (let i = 0; i < 3; i++) {
    genRows.push({
      portfolio: 'PORT-002',
      sec: `SEC-000${i + 1}`,
      ...q1,
      qty: ['5', '5'],
      price: ['10', null],
      fx: ['1', '1'],
      mv: ['50.00', null],
      effects: null,
      flag: 'missing price_end',
    });
  }
  await insertVariance(genRows);

  // Corporate actions and their ledger.
  const [client] = await deps
    .db('clients')
    .insert({ client_code: 'CL-PLAT', name: 'platform test' })
    .returning<{ id: number }[]>(['id']);
  const [account] = await deps
    .db('accounts')
    .insert({ client_id: client!.id, account_type: 'MARGIN', currency: 'USD' })
    .returning<{ id: number }[]>(['id']);
  const actions = await deps
    .db('corporate_actions')
    .insert([
      {
        action_id: 'CA-0001',
        security_id: sid.get('SEC-0001'),
        action_type: 'STOCK_SPLIT',
        ex_date: '2025-02-03',
        ratio: '2',
        source: 'test',
      },
      {
        action_id: 'CA-0002',
        security_id: sid.get('SEC-0002'),
        action_type: 'DIVIDEND',
        ex_date: '2025-03-10',
        payment_date: '2025-03-20',
        amount: '0.25',
        currency: 'GBP',
        revision: 2,
        source: 'test',
      },
      {
        action_id: 'CA-0003',
        security_id: sid.get('SEC-0003'),
        action_type: 'COUPON',
        ex_date: '2025-01-15',
        payment_date: '2025-01-15',
        amount: '2.25',
        status: 'CANCELLED',
        source: 'test',
      },
      {
        action_id: 'CA-0004',
        security_id: sid.get('SEC-0004'),
        action_type: 'REVERSE_SPLIT',
        ex_date: '2024-06-03',
        ratio: '0.1',
        source: 'test',
      },
    ])
    .returning<{ id: number; action_id: string }[]>(['id', 'action_id']);
  const aid = new Map(actions.map((a) => [a.action_id, a.id]));
  const entry = (action: string, e: Record<string, unknown>) => ({
    action_id: aid.get(action),
    action_revision: 1,
    entry: 'APPLY',
    currency: 'USD',
    quantity_held: '1500',
    ...e,
  });
  await deps.db('corporate_action_ledger').insert([
    entry('CA-0001', {
      portfolio_id: 'PORT-001',
      action_type: 'STOCK_SPLIT',
      ex_date: '2025-02-03',
      ratio: '2',
      quantity_delta: '1500',
      applied_at: '2025-02-03T13:00:00Z',
    }),
    entry('CA-0001', {
      account_id: account!.id,
      action_type: 'STOCK_SPLIT',
      ex_date: '2025-02-03',
      ratio: '2',
      quantity_delta: '10',
      quantity_held: '10',
      applied_at: '2025-02-03T13:00:01Z',
    }),
    entry('CA-0002', {
      portfolio_id: 'PORT-002',
      action_type: 'DIVIDEND',
      ex_date: '2025-03-10',
      payment_date: '2025-03-20',
      amount: '0.20',
      currency: 'GBP',
      cash_amount: '300.00',
      applied_at: '2025-03-10T13:00:00Z',
    }),
    entry('CA-0002', {
      portfolio_id: 'PORT-002',
      entry: 'REVERSE',
      action_type: 'DIVIDEND',
      ex_date: '2025-03-10',
      payment_date: '2025-03-20',
      amount: '0.20',
      currency: 'GBP',
      cash_amount: '-300.00',
      applied_at: '2025-03-12T13:00:00Z',
    }),
    entry('CA-0002', {
      portfolio_id: 'PORT-002',
      action_revision: 2,
      action_type: 'DIVIDEND',
      ex_date: '2025-03-10',
      payment_date: '2025-03-20',
      amount: '0.25',
      currency: 'GBP',
      cash_amount: '375.00',
      applied_at: '2025-03-12T13:00:00Z',
      paid_at: '2025-03-20T13:00:00Z',
    }),
    entry('CA-0003', {
      portfolio_id: 'PORT-001',
      action_type: 'COUPON',
      ex_date: '2025-01-15',
      amount: '2.25',
      cash_amount: '2250.00',
      applied_at: '2025-01-15T13:00:00Z',
    }),
    entry('CA-0003', {
      portfolio_id: 'PORT-001',
      entry: 'REVERSE',
      action_type: 'COUPON',
      ex_date: '2025-01-15',
      amount: '2.25',
      cash_amount: '-2250.00',
      applied_at: '2025-01-16T13:00:00Z',
    }),
  ]);
  // What corporate-actions.apply records once it has processed a revision for every holder.
  await deps.db('corporate_action_processed').insert([
    { action_id: aid.get('CA-0001'), revision: 1, holders: 2, processed_at: '2025-02-03T13:00:02Z' },
    { action_id: aid.get('CA-0002'), revision: 2, holders: 1, processed_at: '2025-03-12T13:00:01Z' },
    { action_id: aid.get('CA-0003'), revision: 1, holders: 1, processed_at: '2025-01-15T13:00:01Z' },
  ]);

  const fx = (from: string, date: string, rate: string) => ({
    from_currency: from,
    to_currency: 'USD',
    rate_date: date,
    rate,
    source: 'test',
  });
  await deps.db('fx_rates').insert([
    fx('EUR', '2024-12-31', '1.0389000000'),
    fx('GBP', '2024-12-31', '1.2512345678'),
    fx('JPY', '2024-12-31', '0.0063712345'),
    fx('EUR', '2025-03-31', '1.0816000000'),
    fx('GBP', '2025-03-31', '1.2918000000'),
    {
      from_currency: 'USD',
      to_currency: 'EUR',
      rate_date: '2025-03-31',
      rate: '0.9245562130',
      source: 'test',
    },
  ]);
}, 60_000);

afterAll(async () => {
  if (deps) await stopTestApp({ app, queues, auth }, deps);
  await scratch?.drop();
});

const get = (path: string, token: string = reader) => request(app).get(path).set('Authorization', token);
const fieldsOf = (body: { error: { fields?: { path: string }[] } }) =>
  (body.error.fields ?? []).map((f) => f.path);

const ENDPOINTS = [
  '/api/securities',
  '/api/securities/SEC-0001',
  '/api/portfolios',
  '/api/holdings',
  '/api/variance/portfolio/PORT-001',
  '/api/variance/top-movers',
  '/api/corporate-actions',
  '/api/corporate-actions/CA-0001/ledger',
  '/api/fx-rates',
];

describe('auth', () => {
  it('every endpoint answers 401 without a token or with a bad one, 403 without results:read', async () => {
    for (const path of ENDPOINTS) {
      const none = await request(app).get(path);
      expect(none.status, path).toBe(401);
      const bad = await get(path, 'Bearer not-a-token');
      expect(bad.status, path).toBe(401);
      const forbidden = await get(path, writerOnly);
      expect(forbidden.status, path).toBe(403);
      const ok = await get(path);
      expect(ok.status, path).toBe(200);
    }
  });

  it('a tokenless caller learns nothing of the input: a bad filter is still 401', async () => {
    await request(app).get('/api/securities?limit=999').expect(401);
  });
});

describe('GET /api/securities', () => {
  it("pages with total, limit and offset, items in seed 2's shape", async () => {
    const res = await get('/api/securities').expect(200);
    expect(res.body).toMatchObject({ total: GENERATED + 5, limit: 100, offset: 0, count: 100 });
    expect(res.body.data[0]).toMatchObject(SEED_SECURITY);
    expect(res.body.data[0]).toMatchObject({ cusip: '000000001', sector: 'Technology', country: 'US' });
    const last = await get(`/api/securities?limit=500&offset=${GENERATED}`).expect(200);
    expect(last.body).toMatchObject({ total: GENERATED + 5, limit: 500, offset: GENERATED, count: 5 });
    const beyond = await get('/api/securities?offset=100000').expect(200);
    expect(beyond.body).toMatchObject({ total: GENERATED + 5, count: 0, data: [] });
    // Pages do not overlap and cover everything in security_id order.
    const pages = await Promise.all([0, 100, 200].map((o) => get(`/api/securities?limit=100&offset=${o}`)));
    const ids = pages.flatMap((p) => (p.body.data as { security_id: string }[]).map((s) => s.security_id));
    expect(ids).toHaveLength(GENERATED + 5);
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort()).toEqual(ids);
  });

  it('filters by security_type, issuer sector (any case), currency and issuer country, combined', async () => {
    const bonds = await get('/api/securities?security_type=BOND').expect(200);
    expect(bonds.body.total).toBe(1);
    expect(bonds.body.data[0]).toMatchObject({
      security_id: 'SEC-0003',
      coupon_rate: 0.045,
      coupon_frequency: 2,
      face_value: 100,
      maturity_date: '2030-01-15',
    });
    const tech = await get('/api/securities?sector=technology').expect(200);
    expect(tech.body.total).toBe(3 + GENERATED);
    const techUsd = await get('/api/securities?sector=Technology&currency=usd&limit=10').expect(200);
    const usdGen = Array.from({ length: GENERATED }, (_, i) => i).filter((i) => i % 3 !== 0).length;
    expect(techUsd.body).toMatchObject({ total: 2 + usdGen, count: 10, limit: 10 });
    for (const s of techUsd.body.data) expect(s).toMatchObject({ currency: 'USD', sector: 'Technology' });
    const de = await get('/api/securities?country=DE&security_type=equity').expect(200);
    expect(de.body.total).toBe(1 + GENERATED / 2);
    const none = await get('/api/securities?country=FR').expect(200);
    expect(none.body).toMatchObject({ total: 0, count: 0, data: [] });
  });

  it('bad filters are 400s naming the field; unknown and repeated parameters too', async () => {
    const cases: [string, string][] = [
      ['limit=501', 'query.limit'],
      ['limit=0', 'query.limit'],
      ['limit=1e2', 'query.limit'],
      ['offset=-1', 'query.offset'],
      ['security_type=STOCK', 'query.security_type'],
      ['currency=EURO', 'query.currency'],
      ['country=USA', 'query.country'],
      ['sector=', 'query.sector'],
      ['sort=ticker', 'query.sort'],
      ['limit=10&limit=20', 'query.limit'],
      ['currency=USD&currency=EUR', 'query.currency'],
    ];
    for (const [qs, field] of cases) {
      const res = await get(`/api/securities?${qs}`);
      expect(res.status, qs).toBe(400);
      expect(fieldsOf(res.body), qs).toEqual([field]);
    }
  });
});

describe('GET /api/securities/{security_id}', () => {
  it("returns seed 2's example security, any case", async () => {
    const res = await get('/api/securities/sec-0001').expect(200);
    expect(res.body).toMatchObject(SEED_SECURITY);
    expect(res.body).toMatchObject({
      issuer_name: 'TechCorp',
      sector: 'Technology',
      country: 'US',
      coupon_rate: null,
      maturity_date: null,
    });
  });

  it('404 names an unknown id; a malformed one is a 400 naming it', async () => {
    const res = await get('/api/securities/SEC-9999').expect(404);
    expect(res.body.error.message).toContain('SEC-9999');
    const bad = await get('/api/securities/AAPL').expect(400);
    expect(fieldsOf(bad.body)).toEqual(['params.security_id']);
  });
});

describe('GET /api/portfolios', () => {
  it('lists every portfolio with its base currency', async () => {
    const res = await get('/api/portfolios').expect(200);
    expect(res.body.count).toBe(3);
    expect(res.body.data[0]).toEqual({
      portfolio_id: 'PORT-001',
      portfolio_name: 'Global Equity',
      portfolio_type: 'EQUITY',
      benchmark: 'MSCI ACWI',
      inception_date: '2020-01-02',
      currency: 'USD',
    });
    await get('/api/portfolios?limit=1').expect(400);
  });
});

describe('GET /api/holdings', () => {
  it("defaults to the latest date in the books; rows carry seed 2's fields, money to the cent", async () => {
    const res = await get('/api/holdings').expect(200);
    expect(res.body).toMatchObject({ as_of_date: '2025-05-14', period: null, total: 2, count: 2 });
    // Largest market value first.
    expect(res.body.data.map((h: { portfolio_id: string }) => h.portfolio_id)).toEqual([
      'PORT-001',
      'PORT-002',
    ]);
    expect(res.body.data[0]).toEqual({
      security_id: 'SEC-0001',
      ticker: 'TECH_A',
      currency: 'USD',
      portfolio_id: 'PORT-001',
      as_of_date: '2025-05-14',
      quantity: 1500,
      local_price: 187.25,
      fx_rate: 1,
      market_value: 300000,
      weight: 0.12345678,
      cost_basis: 250000.1,
      accrued_interest: 0,
      flag: null,
    });
    expect(res.text).toContain('"market_value":300000.00,');
    expect(res.text).toContain('"cost_basis":250000.10,');
  });

  it('period N is the N-th quarter-end snapshot (1 = 2024-12-31, 2 = 2025-03-31 as in the seed); beyond is a 404', async () => {
    const p1 = await get('/api/holdings?portfolio_id=PORT-001&period=1').expect(200);
    expect(p1.body).toMatchObject({
      as_of_date: '2024-12-31',
      period: 1,
      portfolio_id: 'PORT-001',
      total: 1,
    });
    const p2 = await get('/api/holdings?period=2&limit=20').expect(200);
    expect(p2.body).toMatchObject({ as_of_date: '2025-03-31', period: 2, total: 4, count: 4 });
    // 2025-03-28 is in the books but is no quarter end.
    const p3 = await get('/api/holdings?period=3').expect(404);
    expect(p3.body.error.message).toMatch(
      /period 3: the books hold 2 quarter-end snapshot\(s\) \(1 = 2024-12-31 … 2 = 2025-03-31\)/,
    );
  });

  it('a flagged holding shows null values and its flag, after the valued ones; exact digits', async () => {
    const res = await get('/api/holdings?as_of=2025-03-31&portfolio_id=port-001').expect(200);
    expect(res.body).toMatchObject({ total: 3, portfolio_id: 'PORT-001' });
    const flagged = res.body.data.at(-1);
    expect(flagged).toMatchObject({
      security_id: 'SEC-0004',
      market_value: null,
      fx_rate: null,
      weight: null,
      local_price: 2345,
      flag: 'no JPY→USD rate on 2025-03-31',
    });
    expect(res.text).toContain('"local_price":99.87654321,');
    expect(res.text).toContain('"accrued_interest":1234.56,');
    const big = await get('/api/holdings?as_of=2025-03-31&portfolio_id=PORT-002').expect(200);
    expect(big.text).toContain('"market_value":9999999999.99,');
    expect(big.text).toContain('"fx_rate":1.2512345678,');
  });

  it('pages with limit and offset; a date without books is empty', async () => {
    const a = await get('/api/holdings?as_of=2025-03-31&limit=2').expect(200);
    const b = await get('/api/holdings?as_of=2025-03-31&limit=2&offset=2').expect(200);
    expect(a.body).toMatchObject({ total: 4, count: 2 });
    expect(b.body).toMatchObject({ total: 4, count: 2 });
    const keys = [...a.body.data, ...b.body.data].map(
      (h: { portfolio_id: string; security_id: string }) => `${h.portfolio_id}/${h.security_id}`,
    );
    expect(new Set(keys).size).toBe(4);
    const none = await get('/api/holdings?as_of=2025-01-01').expect(200);
    expect(none.body).toMatchObject({ as_of_date: '2025-01-01', total: 0, data: [] });
    const empty = await get('/api/holdings?portfolio_id=PORT-003').expect(200);
    expect(empty.body).toMatchObject({ as_of_date: null, total: 0, data: [] });
  });

  it('bad input: 400 naming the field; unknown portfolio 404', async () => {
    const cases: [string, string][] = [
      ['limit=501', 'query.limit'],
      ['period=0', 'query.period'],
      ['period=1.5', 'query.period'],
      ['as_of=2025-02-30', 'query.as_of'],
      ['as_of=2025-03-31&period=1', 'query.period'],
      ['portfolio_id=P1', 'query.portfolio_id'],
      ['date=2025-03-31', 'query.date'],
    ];
    for (const [qs, field] of cases) {
      const res = await get(`/api/holdings?${qs}`);
      expect(res.status, qs).toBe(400);
      expect(fieldsOf(res.body), qs).toEqual([field]);
    }
    const unknown = await get('/api/holdings?portfolio_id=PORT-999').expect(404);
    expect(unknown.body.error.message).toContain('PORT-999');
  });
});

describe('GET /api/variance/portfolio/{portfolio_id}', () => {
  it("defaults to the latest complete quarter: seed 2's {summary, details}, SPEC §8's worked case to the cent", async () => {
    const res = await get('/api/variance/portfolio/PORT-001').expect(200);
    expect(Object.keys(res.body)).toEqual(['summary', 'details']);
    for (const k of SEED_SUMMARY_KEYS) expect(res.body.summary).toHaveProperty(k);
    expect(res.body.summary).toMatchObject({
      portfolio_id: 'PORT-001',
      period_label: '2025Q1',
      period_from: '2024-12-31',
      period_to: '2025-03-31',
      securities: 3,
      flagged: 1,
    });
    const spec = res.body.details.find((d: { security_id: string }) => d.security_id === 'SEC-0005');
    expect(spec).toEqual({
      security_id: 'SEC-0005',
      ticker: 'RHEIN',
      security_type: 'EQUITY',
      currency: 'EUR',
      qty_start: 100,
      qty_end: 250,
      price_start: 50,
      price_end: 27,
      fx_start: 1.1,
      fx_end: 1.05,
      split_factor: 2,
      mv_start: 5500,
      mv_end: 7087.5,
      price_effect: 550,
      qty_effect: 1375,
      fx_effect: -337.5,
      corp_action_effect: 0,
      distributions: 0,
      total_pnl: 1587.5,
      flag: null,
    });
    expect(res.text).toContain(
      '"qty_effect":1375.00,"fx_effect":-337.50,"corp_action_effect":0.00,"distributions":0.00,"total_pnl":1587.50',
    );
    // The flagged row is listed with null money and left out of the totals.
    const flagged = res.body.details.find((d: { security_id: string }) => d.security_id === 'SEC-0004');
    expect(flagged).toMatchObject({
      flag: 'missing fx_end: no JPY→USD rate on 2025-03-31',
      total_pnl: null,
      mv_end: null,
      mv_start: 149.5,
    });
    const s = (parseExact(res.text) as { summary: Record<string, string> }).summary;
    expect(s).toMatchObject({
      total_mv_start: '275684.50',
      total_mv_end: '287962.50',
      total_price_effect: '11240.50',
      total_qty_effect: '1375.00',
      total_fx_effect: '-337.50',
      total_corp_action_effect: '1200.00',
      total_distributions: '1200.00',
      total_pnl: '13478.00',
    });
  });

  it('summary totals equal the sum of the details to the cent on many generated rows (flagged ones excluded)', async () => {
    const res = await get('/api/variance/portfolio/PORT-002?quarter=2025Q1').expect(200);
    const body = parseExact(res.text) as {
      summary: Record<string, string | number>;
      details: Record<string, string | null>[];
    };
    expect(body.details).toHaveLength(GENERATED + 3);
    expect(body.summary).toMatchObject({ securities: String(GENERATED + 3), flagged: '3' });
    const fields = [
      'mv_start',
      'mv_end',
      'price_effect',
      'qty_effect',
      'fx_effect',
      'corp_action_effect',
      'distributions',
      'total_pnl',
    ];
    for (const f of fields) {
      const sumOfDetails = body.details
        .filter((d) => d.flag === null)
        .reduce((a, d) => a + toCents(d[f]!), 0n);
      expect(body.summary[f === 'total_pnl' ? f : `total_${f}`], f).toBe(text(sumOfDetails));
    }
    // … and equal the sums of the rows as generated; each row's four effects add up to its total.
    const expected = generated.reduce((a, g) => a + g.effects.reduce((x, y) => x + y, 0n), 0n);
    expect(body.summary.total_pnl).toBe(text(expected));
    expect(body.summary.total_mv_start).toBe(text(generated.reduce((a, g) => a + g.mvStart, 0n)));
    for (const d of body.details.filter((x) => x.flag === null)) {
      const four = ['price_effect', 'qty_effect', 'fx_effect', 'corp_action_effect'].reduce(
        (a, f) => a + toCents(d[f]!),
        0n,
      );
      expect(text(four)).toBe(d.total_pnl);
      expect(toCents(d.mv_end!) - toCents(d.mv_start!) + toCents(d.distributions!)).toBe(
        toCents(d.total_pnl!),
      );
    }
    // The data has teeth: adding the same figures as JS floats misses the exact total.
    const floatSum = body.details.filter((d) => d.flag === null).reduce((a, d) => a + Number(d.total_pnl), 0);
    expect(floatSum.toFixed(2)).not.toBe(body.summary.total_pnl);
    // Every money figure has exactly two decimals in the text.
    expect(res.text).not.toMatch(/"(mv_start|mv_end|total_pnl|price_effect)":-?\d+(\.\d?)?[,}]/);
  });

  it('quarter, month and from/to pick their rows (by label, by equivalent label, by snapshot dates)', async () => {
    const q4 = await get('/api/variance/portfolio/PORT-001?quarter=2024q4').expect(200);
    expect(q4.body.summary).toMatchObject({
      period_label: '2024Q4',
      period_from: '2024-09-30',
      total_pnl: 110,
      securities: 1,
    });
    const q2 = await get('/api/variance/portfolio/PORT-001?quarter=2025Q2').expect(200);
    expect(q2.body.summary).toMatchObject({ period_label: '2025Q2', total_pnl: 262.5 });
    const m = await get('/api/variance/portfolio/PORT-001?month=2025-04').expect(200);
    expect(m.body.summary).toMatchObject({
      period_label: '2025-04',
      period_to: '2025-04-30',
      total_pnl: 131.25,
    });
    const byLabel = await get('/api/variance/portfolio/PORT-001?from=2025-01-01&to=2025-02-15').expect(200);
    expect(byLabel.body.summary).toMatchObject({
      period_label: '2025-01-01/2025-02-15',
      period_to: '2025-02-14',
      total_pnl: 110,
    });
    const bySnapshots = await get('/api/variance/portfolio/PORT-001?from=2024-12-31&to=2025-02-14').expect(
      200,
    );
    expect(bySnapshots.body.summary).toMatchObject({ period_label: '2025-01-01/2025-02-15' });
    const asQuarter = await get('/api/variance/portfolio/PORT-001?from=2025-01-01&to=2025-03-31').expect(200);
    expect(asQuarter.body.summary).toMatchObject({ period_label: '2025Q1', total_pnl: 13478 });
  });

  it('bad periods are 400s naming the field; unknown portfolio and empty periods are 404s', async () => {
    const cases: [string, string][] = [
      ['quarter=2025Q5', 'query.quarter'],
      ['quarter=2025-Q1', 'query.quarter'],
      ['quarter=1899Q4', 'query.quarter'],
      ['month=2025-13', 'query.month'],
      ['quarter=2025Q1&month=2025-03', 'query.quarter'],
      ['month=2025-03&from=2025-03-01&to=2025-03-31', 'query.month'],
      ['from=2025-01-01', 'query.to'],
      ['to=2025-01-01', 'query.from'],
      ['from=2025-03-01&to=2025-01-01', 'query.from'],
      ['from=2025-02-30&to=2025-03-31', 'query.from'],
      ['period=1', 'query.period'],
    ];
    for (const [qs, field] of cases) {
      const res = await get(`/api/variance/portfolio/PORT-001?${qs}`);
      expect(res.status, qs).toBe(400);
      expect(fieldsOf(res.body), qs).toEqual([field]);
    }
    const unknown = await get('/api/variance/portfolio/PORT-999').expect(404);
    expect(unknown.body.error.message).toBe('unknown portfolio PORT-999');
    const empty = await get('/api/variance/portfolio/PORT-003').expect(404);
    expect(empty.body.error.message).toContain('no variance rows for PORT-003');
    const noQuarter = await get('/api/variance/portfolio/PORT-001?quarter=2023Q1').expect(404);
    expect(noQuarter.body.error.message).toContain('2023Q1');
    await get('/api/variance/portfolio/PORT1').expect(400);
  });
});

describe('GET /api/variance/top-movers', () => {
  it('the largest |total_pnl| of the latest complete quarter across portfolios, with the four effects', async () => {
    const res = await get('/api/variance/top-movers').expect(200);
    expect(res.body).toMatchObject({
      period_label: '2025Q1',
      period_from: '2024-12-31',
      period_to: '2025-03-31',
      count: 20,
    });
    const all = [
      ...generated.map((g) => ({ p: 'PORT-002', sec: g.sec, t: g.effects.reduce((a, b) => a + b, 0n) })),
      { p: 'PORT-001', sec: 'SEC-0005', t: 158750n },
      { p: 'PORT-001', sec: 'SEC-0001', t: 1189050n },
    ].sort((a, b) => {
      const x = a.t < 0n ? -a.t : a.t;
      const y = b.t < 0n ? -b.t : b.t;
      return x === y ? a.p.localeCompare(b.p) || a.sec.localeCompare(b.sec) : x > y ? -1 : 1;
    });
    const body = parseExact(res.text) as { data: Record<string, string>[] };
    expect(body.data.map((r) => `${r.portfolio_id}/${r.security_id}/${r.total_pnl}`)).toEqual(
      all.slice(0, 20).map((r) => `${r.p}/${r.sec}/${text(r.t)}`),
    );
    for (const r of body.data) {
      expect(Object.keys(r)).toEqual(
        expect.arrayContaining(['price_effect', 'qty_effect', 'fx_effect', 'corp_action_effect']),
      );
      const four = ['price_effect', 'qty_effect', 'fx_effect', 'corp_action_effect'].reduce(
        (a, f) => a + toCents(r[f]!),
        0n,
      );
      expect(text(four)).toBe(r.total_pnl);
    }
  });

  it('filters by portfolio, security type and currency; limit up to 100; flagged rows left out', async () => {
    const eur = await get('/api/variance/top-movers?currency=eur&portfolio_id=PORT-001').expect(200);
    expect(eur.body.data).toHaveLength(1);
    expect(eur.body.data[0]).toMatchObject({
      security_id: 'SEC-0005',
      total_pnl: 1587.5,
      fx_effect: -337.5,
      qty_effect: 1375,
    });
    const p1 = await get('/api/variance/top-movers?portfolio_id=PORT-001&limit=100').expect(200);
    expect(p1.body.data.map((r: { security_id: string }) => r.security_id)).toEqual(['SEC-0001', 'SEC-0005']);
    const bonds = await get('/api/variance/top-movers?security_type=BOND').expect(200);
    expect(bonds.body).toMatchObject({ count: 0, data: [] });
    const lots = await get('/api/variance/top-movers?limit=100').expect(200);
    expect(lots.body.count).toBe(100);
    const q4 = await get('/api/variance/top-movers?quarter=2024Q4').expect(200);
    expect(q4.body).toMatchObject({ period_label: '2024Q4', count: 1 });
    const m = await get('/api/variance/top-movers?from=2025-01-01&to=2025-02-15').expect(200);
    expect(m.body).toMatchObject({ period_label: '2025-01-01/2025-02-15', count: 1 });
  });

  it('bad input: 400 naming the field; unknown portfolio or empty period 404', async () => {
    const cases: [string, string][] = [
      ['limit=101', 'query.limit'],
      ['limit=0', 'query.limit'],
      ['quarter=2025Q0', 'query.quarter'],
      ['security_type=SWAP', 'query.security_type'],
      ['currency=E', 'query.currency'],
      ['offset=5', 'query.offset'],
    ];
    for (const [qs, field] of cases) {
      const res = await get(`/api/variance/top-movers?${qs}`);
      expect(res.status, qs).toBe(400);
      expect(fieldsOf(res.body), qs).toEqual([field]);
    }
    await get('/api/variance/top-movers?portfolio_id=PORT-999').expect(404);
    const none = await get('/api/variance/top-movers?quarter=2020Q1').expect(404);
    expect(none.body.error.message).toContain('2020Q1');
  });
});

describe('GET /api/corporate-actions', () => {
  it('lists actions newest first with revision, status and what the ledger says', async () => {
    const res = await get('/api/corporate-actions').expect(200);
    expect(res.body).toMatchObject({ total: 4, count: 4, limit: 100, offset: 0 });
    expect(res.body.data.map((a: { action_id: string }) => a.action_id)).toEqual([
      'CA-0002',
      'CA-0001',
      'CA-0003',
      'CA-0004',
    ]);
    const [dividend, split, coupon, reverse] = res.body.data;
    expect(split).toMatchObject({
      action_id: 'CA-0001',
      security_id: 'SEC-0001',
      ticker: 'TECH_A',
      action_type: 'STOCK_SPLIT',
      ex_date: '2025-02-03',
      ratio: 2,
      amount: null,
      currency: 'USD',
      revision: 1,
      status: 'ACTIVE',
      ledger: {
        applied: true,
        holders: 2,
        processed_at: '2025-02-03T13:00:02.000Z',
        entries: 2,
        apply_entries: 2,
        reverse_entries: 0,
        first_applied_at: '2025-02-03T13:00:00.000Z',
        last_applied_at: '2025-02-03T13:00:01.000Z',
        cash_entries: 0,
        paid_entries: 0,
        paid: false,
        last_paid_at: null,
      },
    });
    // A corrected dividend: revision 1 applied then reversed, revision 2 applied and paid.
    expect(dividend).toMatchObject({
      revision: 2,
      amount: 0.25,
      currency: 'GBP',
      payment_date: '2025-03-20',
      ledger: {
        applied: true,
        entries: 3,
        apply_entries: 2,
        reverse_entries: 1,
        cash_entries: 3,
        paid_entries: 1,
        paid: false,
        last_paid_at: '2025-03-20T13:00:00.000Z',
      },
    });
    // A cancelled coupon: applied, then reversed; not applied now.
    expect(coupon).toMatchObject({
      status: 'CANCELLED',
      ledger: { applied: false, apply_entries: 1, reverse_entries: 1 },
    });
    // Not processed yet: no ledger entries, and nothing says it was looked at.
    expect(reverse).toMatchObject({
      action_type: 'REVERSE_SPLIT',
      ratio: 0.1,
      ledger: { applied: false, holders: null, processed_at: null, entries: 0, first_applied_at: null },
    });
  });

  it('filters by security_id, action_type, status and ex-date range; pages with total', async () => {
    const div = await get('/api/corporate-actions?action_type=dividend').expect(200);
    expect(div.body.data.map((a: { action_id: string }) => a.action_id)).toEqual(['CA-0002']);
    const sec = await get('/api/corporate-actions?security_id=SEC-0001').expect(200);
    expect(sec.body).toMatchObject({ total: 1, data: [{ action_id: 'CA-0001' }] });
    const range = await get('/api/corporate-actions?from=2025-01-15&to=2025-02-03').expect(200);
    expect(range.body.data.map((a: { action_id: string }) => a.action_id)).toEqual(['CA-0001', 'CA-0003']);
    const since = await get('/api/corporate-actions?from=2025-02-04').expect(200);
    expect(since.body.total).toBe(1);
    const cancelled = await get('/api/corporate-actions?status=CANCELLED').expect(200);
    expect(cancelled.body.data.map((a: { action_id: string }) => a.action_id)).toEqual(['CA-0003']);
    const page = await get('/api/corporate-actions?limit=1&offset=1').expect(200);
    expect(page.body).toMatchObject({ total: 4, count: 1, data: [{ action_id: 'CA-0001' }] });
    const cases: [string, string][] = [
      ['action_type=SPLIT', 'query.action_type'],
      ['security_id=1', 'query.security_id'],
      ['from=2025-03-01&to=2025-01-01', 'query.from'],
      ['from=yesterday', 'query.from'],
      ['limit=501', 'query.limit'],
      ['applied=true', 'query.applied'],
    ];
    for (const [qs, field] of cases) {
      const res = await get(`/api/corporate-actions?${qs}`);
      expect(res.status, qs).toBe(400);
      expect(fieldsOf(res.body), qs).toEqual([field]);
    }
  });

  it("an action's ledger: its entries for portfolios and accounts, in order", async () => {
    const res = await get('/api/corporate-actions/CA-0002/ledger').expect(200);
    expect(res.body).toMatchObject({ action: { action_id: 'CA-0002', revision: 2 }, total: 3, count: 3 });
    expect(
      res.body.data.map((e: { entry: string; action_revision: number }) => `${e.entry}@${e.action_revision}`),
    ).toEqual(['APPLY@1', 'REVERSE@1', 'APPLY@2']);
    expect(res.body.data[2]).toMatchObject({
      portfolio_id: 'PORT-002',
      account_id: null,
      amount: 0.25,
      cash_amount: 375,
      paid_at: '2025-03-20T13:00:00.000Z',
    });
    expect(res.text).toContain('"cash_amount":-300.00');
    const split = await get('/api/corporate-actions/CA-0001/ledger').expect(200);
    expect(
      split.body.data.map(
        (e: { portfolio_id: string | null; account_id: number | null }) =>
          e.portfolio_id ?? `account ${e.account_id}`,
      ),
    ).toEqual(['PORT-001', expect.stringMatching(/^account \d+$/)]);
    const paged = await get('/api/corporate-actions/CA-0002/ledger?limit=1&offset=2').expect(200);
    expect(paged.body).toMatchObject({ total: 3, count: 1, data: [{ entry: 'APPLY', action_revision: 2 }] });
    const unknown = await get('/api/corporate-actions/CA-9999/ledger').expect(404);
    expect(unknown.body.error.message).toContain('CA-9999');
    const bad = await get('/api/corporate-actions/CA%20X/ledger').expect(400);
    expect(fieldsOf(bad.body)).toEqual(['params.action_id']);
  });
});

describe('GET /api/fx-rates', () => {
  it('lists rates newest first, digit for digit, filtered by currencies, one date or a range', async () => {
    const all = await get('/api/fx-rates').expect(200);
    expect(all.body).toMatchObject({ total: 6, count: 6 });
    expect(all.body.data[0]).toEqual({
      from_currency: 'EUR',
      to_currency: 'USD',
      rate_date: '2025-03-31',
      rate: 1.0816,
      source: 'test',
    });
    expect(all.text).toContain('"rate":0.0063712345,');
    const gbp = await get('/api/fx-rates?from_currency=GBP').expect(200);
    expect(gbp.body.data.map((r: { rate_date: string }) => r.rate_date)).toEqual([
      '2025-03-31',
      '2024-12-31',
    ]);
    expect(gbp.text).toContain('"rate":1.2512345678,');
    const day = await get('/api/fx-rates?rate_date=2024-12-31').expect(200);
    expect(day.body.total).toBe(3);
    const toEur = await get('/api/fx-rates?to_currency=EUR').expect(200);
    expect(toEur.body.data).toEqual([
      {
        from_currency: 'USD',
        to_currency: 'EUR',
        rate_date: '2025-03-31',
        rate: 0.924556213,
        source: 'test',
      },
    ]);
    const range = await get('/api/fx-rates?from=2025-01-01&to=2025-12-31&limit=2').expect(200);
    expect(range.body).toMatchObject({ total: 3, count: 2, limit: 2 });
    const cases: [string, string][] = [
      ['rate_date=2024-12-31&from=2024-01-01', 'query.rate_date'],
      ['from=2025-02-01&to=2025-01-01', 'query.from'],
      ['from_currency=EURO', 'query.from_currency'],
      ['rate_date=31/12/2024', 'query.rate_date'],
      ['limit=501', 'query.limit'],
      ['currency=EUR', 'query.currency'],
    ];
    for (const [qs, field] of cases) {
      const res = await get(`/api/fx-rates?${qs}`);
      expect(res.status, qs).toBe(400);
      expect(fieldsOf(res.body), qs).toEqual([field]);
    }
  });
});

describe('/docs', () => {
  it('lists every platform endpoint behind results:read, says how money is rounded, and lints clean', async () => {
    const doc = (await request(app).get('/docs/openapi.json').expect(200)).body as {
      paths: Record<string, { get?: { security?: unknown[]; description?: string } }>;
    };
    const paths = [
      '/api/securities',
      '/api/securities/{security_id}',
      '/api/portfolios',
      '/api/holdings',
      '/api/variance/portfolio/{portfolio_id}',
      '/api/variance/top-movers',
      '/api/corporate-actions',
      '/api/corporate-actions/{action_id}/ledger',
      '/api/fx-rates',
    ];
    for (const p of paths) {
      expect(doc.paths[p]?.get, p).toBeDefined();
      expect(doc.paths[p]!.get!.security).toContainEqual({ oauth2: ['results:read'] });
    }
    expect(doc.paths['/api/variance/portfolio/{portfolio_id}']!.get!.description).toMatch(
      /rounded to the cent \(half away from zero\)/,
    );
    const dir = mkdtempSync(join(tmpdir(), 'platform-openapi-'));
    try {
      const file = join(dir, 'openapi.json');
      writeFileSync(file, JSON.stringify(doc));
      const { status, output } = lintOpenApiFile(file);
      expect(output).toContain('Your API description is valid');
      expect(output).not.toMatch(/warning|error/i);
      expect(status).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('exact JSON numbers (api/exact-json.ts)', () => {
  it('writes numeric text digit for digit, money with two decimals rounded half away from zero', () => {
    const body = exactJson({
      a: cents('1587.5'),
      b: cents('-0.005'),
      c: cents('-0.004'),
      d: cents('12345678901234567890.125'),
      e: exact('0.1234567800'),
      f: exact('-100.00000000'),
      g: exact('123456789012345678.12345678'),
      n: cents(null),
      s: 'a "\\u0000#1.00" look-alike, left alone',
      list: [exact('0'), cents('0')],
    });
    expect(body.text).toBe(
      '{"a":1587.50,"b":-0.01,"c":0.00,"d":12345678901234567890.13,"e":0.12345678,"f":-100,' +
        '"g":123456789012345678.12345678,"n":null,"s":"a \\"\\\\u0000#1.00\\" look-alike, left alone","list":[0,0.00]}',
    );
    expect(() => JSON.parse(body.text as string)).not.toThrow();
  });

  it('refuses anything that is not a plain decimal number', () => {
    for (const bad of ['1e5', 'NaN', '0x10', ' 1', '1.', '.5', '--1', '1,0', ''])
      expect(() => new ExactNumber(bad), bad).toThrow(TypeError);
    expect(() => cents('12abc')).toThrow(TypeError);
  });
});

describe('a period re-run while it is being read', () => {
  it('every answer is one run: its totals are the sum of its details, all from the same run', async () => {
    await deps.db('portfolios').insert({
      portfolio_id: 'PORT-004',
      portfolio_name: 'Re-run',
      portfolio_type: 'EQUITY',
      inception_date: '2020-01-02',
      base_currency: 'USD',
    });
    const secs = Array.from({ length: 120 }, (_, i) => sid.get(`SEC-${1000 + i}`)!);
    const run = (version: number) =>
      secs.map((security_id, i) => {
        const price = BigInt(version * 1000 + i) * 100n + 33n;
        const qty = -BigInt(i) * 100n - 67n;
        return {
          portfolio_id: 'PORT-004',
          security_id,
          period_label: '2025Q1',
          period_from: '2024-12-31',
          period_to: '2025-03-31',
          qty_start: String(version),
          qty_end: String(version),
          mv_start: '1000.00',
          mv_end: text(100000n + price + qty),
          price_effect: text(price),
          qty_effect: text(qty),
          fx_effect: '0.00',
          corp_action_effect: '0.00',
          total_pnl: text(price + qty),
        };
      });
    await deps.db('variance_rows').insert(run(0));
    let writing = true;
    const writer = (async () => {
      for (let v = 1; v <= 25; v++) {
        await deps.db.transaction(async (trx) => {
          await trx('variance_rows').where({ portfolio_id: 'PORT-004', period_label: '2025Q1' }).delete();
          await trx('variance_rows').insert(run(v));
        });
      }
      writing = false;
    })();
    let answers = 0;
    const reader = async () => {
      while (writing) {
        const res = await get('/api/variance/portfolio/PORT-004?quarter=2025Q1').expect(200);
        const body = parseExact(res.text) as {
          summary: Record<string, string>;
          details: Record<string, string>[];
        };
        expect(body.details).toHaveLength(120);
        expect(new Set(body.details.map((d) => d.qty_start)).size).toBe(1);
        expect(body.summary.total_pnl).toBe(
          text(body.details.reduce((a, d) => a + toCents(d.total_pnl!), 0n)),
        );
        expect(body.summary.total_price_effect).toBe(
          text(body.details.reduce((a, d) => a + toCents(d.price_effect!), 0n)),
        );
        answers++;
      }
    };
    await Promise.all([writer, reader(), reader(), reader()]);
    expect(answers).toBeGreaterThan(0);
  });
});
