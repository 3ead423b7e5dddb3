/**
 * Seed 0's client endpoints as they run: the real app (real auth, tokens from its own endpoint)
 * over clients, accounts, positions, ticks, daily bars and FX rates written to the real tables.
 * Margin figures are checked against SPEC §8's rules by hand and, for generated accounts, against
 * accountMargin() computed directly from the same rows.
 */
import { randomBytes } from 'node:crypto';
import type express from 'express';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Auth } from '../api/auth/index.ts';
import type { Deps } from '../core/deps.ts';
import { accountMargin } from '../core/domain/margin.ts';
import { round } from '../core/domain/money.ts';
import type { QueueSet } from '../jobs/queues.ts';
import {
  clientToken,
  insertDailyBars,
  insertSecurity,
  insertTicks,
  startTestApp,
  stopTestApp,
} from './api-fixtures.ts';
import { frozenClock, testConfig, testDeps, prng } from './support.ts';

const NOW = '2024-03-28T15:00:00Z';

let deps: Deps;
let queues: QueueSet;
let auth: Auth;
let app: express.Express;
let reader: string;
let writerOnly: string;

beforeAll(async () => {
  deps = testDeps({ config: testConfig({ API_SERIES_CACHE_MB: '0' }), clock: frozenClock(NOW) });
  ({ app, queues, auth } = await startTestApp(deps));
  reader = (await clientToken(deps, app, ['results:read'])).header;
  writerOnly = (await clientToken(deps, app, ['jobs:write'])).header;
});

afterAll(async () => {
  await stopTestApp({ app, queues, auth }, deps);
});

const get = (path: string, token: string = reader) => request(app).get(path).set('Authorization', token);
const fieldsOf = (body: { error: { fields?: { path: string }[] } }) =>
  (body.error.fields ?? []).map((f) => f.path);

async function insertClient(): Promise<number> {
  const [row] = await deps
    .db('clients')
    .insert({ client_code: `CL-${randomBytes(5).toString('hex')}`, name: 'margin test' })
    .returning<{ id: number }[]>(['id']);
  return row!.id;
}

async function insertAccount(
  clientId: number,
  opts: { type?: 'MARGIN' | 'CASH'; currency?: string; cash?: string; loan?: string } = {},
): Promise<number> {
  const [row] = await deps
    .db('accounts')
    .insert({
      client_id: clientId,
      account_type: opts.type ?? 'MARGIN',
      currency: opts.currency ?? 'USD',
      cash_balance: opts.cash ?? '0',
      loan_balance: opts.loan ?? '0',
    })
    .returning<{ id: number }[]>(['id']);
  return row!.id;
}

async function security(
  opts: {
    currency?: string;
    marginable?: boolean;
    houseRate?: string;
    tick?: { ts: string; price: string };
  } = {},
): Promise<{ id: number; ticker: string }> {
  const sec = await insertSecurity(deps, {
    prefix: 'MRG',
    ...(opts.currency ? { currency: opts.currency } : {}),
  });
  if (opts.marginable === false || opts.houseRate) {
    await deps
      .db('securities')
      .where({ id: sec.id })
      .update({ marginable: opts.marginable ?? true, house_margin_rate: opts.houseRate ?? null });
  }
  if (opts.tick) await insertTicks(deps, sec.id, [{ ts: opts.tick.ts, price: opts.tick.price, size: 100 }]);
  return sec;
}

async function hold(
  accountId: number,
  securityId: number,
  quantity: string,
  costBasis = '10',
): Promise<void> {
  await deps
    .db('positions')
    .insert({ account_id: accountId, security_id: securityId, quantity, cost_basis: costBasis });
}

const TICK_TIME = '2024-03-28T14:30:00Z';

describe('GET /margin/{clientId}', () => {
  it("seed 0's example: loan 10,000, 200 shares at 100 → exactly the seed's figures", async () => {
    const client = await insertClient();
    const account = await insertAccount(client, { loan: '10000' });
    const sec = await security({ tick: { ts: TICK_TIME, price: '100' } });
    // An older daily close: the newer tick is the latest price.
    await insertDailyBars(deps, sec.id, [
      { date: '2024-03-27', open: '95', high: '96', low: '94', close: '95', volume: 1000 },
    ]);
    await hold(account, sec.id, '200', '150');
    const res = await get(`/margin/${client}`).expect(200);
    expect(res.body).toMatchObject({
      timestamp: '2024-03-28T14:30:00Z',
      clientId: client,
      portfolio_value: 20000.0,
      loan_amount: 10000.0,
      net_equity: 10000.0,
      margin_requirement: 5000.0,
      margin_shortfall: 0.0,
      margin_call_triggered: false,
      short_market_value: 0,
      credit_balance: 0,
      currency: 'USD',
      account_id: account,
    });
    expect(res.body.positions).toEqual([
      {
        symbol: sec.ticker,
        quantity: 200,
        price: 100,
        price_source: 'tick',
        price_time: '2024-03-28T14:30:00Z',
        fx_rate: 1,
        market_value: 20000,
        requirement: 5000,
        rule: 'finra',
      },
    ]);
  });

  it('a daily close newer than the newest tick is the price, as of its session close', async () => {
    const client = await insertClient();
    const account = await insertAccount(client, { loan: '0' });
    const sec = await security({ tick: { ts: '2024-03-26T15:00:00Z', price: '10' } });
    await insertDailyBars(deps, sec.id, [
      { date: '2024-03-27', open: '11', high: '12', low: '10.5', close: '11.5', volume: 1000 },
    ]);
    await hold(account, sec.id, '10');
    const res = await get(`/margin/${client}`).expect(200);
    // 16:00 New York (EDT) on 2024-03-27 (from market_sessions when stored, else 16:00 local).
    expect(res.body.timestamp).toBe('2024-03-27T20:00:00Z');
    expect(res.body.positions[0]).toMatchObject({ price: 11.5, price_source: 'close' });
    expect(res.body.portfolio_value).toBe(115);
  });

  it('a long that falls through 25% equity is a call for the shortfall', async () => {
    const client = await insertClient();
    const account = await insertAccount(client, { loan: '1600' });
    const sec = await security({ tick: { ts: TICK_TIME, price: '20' } });
    await hold(account, sec.id, '100');
    const res = await get(`/margin/${client}`).expect(200);
    // MV 2,000; equity 400 (20%); requirement 25% = 500; shortfall 100.
    expect(res.body).toMatchObject({
      portfolio_value: 2000,
      net_equity: 400,
      margin_requirement: 500,
      margin_shortfall: 100,
      margin_call_triggered: true,
    });
  });

  it('a short under $5 needs max(100% × MV, $2.50 × shares)', async () => {
    const client = await insertClient();
    const account = await insertAccount(client, { cash: '4000' });
    const sec = await security({ tick: { ts: TICK_TIME, price: '2' } });
    await hold(account, sec.id, '-1000');
    const res = await get(`/margin/${client}`).expect(200);
    // Short MV 2,000; equity 4,000 − 2,000 = 2,000; requirement max(2,000, 2,500) = 2,500.
    expect(res.body).toMatchObject({
      portfolio_value: 0,
      short_market_value: 2000,
      credit_balance: 4000,
      net_equity: 2000,
      margin_requirement: 2500,
      margin_shortfall: 500,
      margin_call_triggered: true,
    });
    expect(res.body.positions[0]).toMatchObject({ quantity: -1000, rule: 'per_share', requirement: 2500 });
  });

  it('a non-marginable position needs 100%; requirement equal to equity is not a call', async () => {
    const client = await insertClient();
    const account = await insertAccount(client);
    const sec = await security({ marginable: false, tick: { ts: TICK_TIME, price: '50' } });
    await hold(account, sec.id, '100');
    const res = await get(`/margin/${client}`).expect(200);
    expect(res.body).toMatchObject({
      portfolio_value: 5000,
      net_equity: 5000,
      margin_requirement: 5000,
      margin_shortfall: 0,
      margin_call_triggered: false,
    });
    expect(res.body.positions[0].rule).toBe('non_marginable');
  });

  it('a house rate above 25% applies to a long', async () => {
    const client = await insertClient();
    const account = await insertAccount(client);
    const sec = await security({ houseRate: '0.4', tick: { ts: TICK_TIME, price: '50' } });
    await hold(account, sec.id, '100');
    const res = await get(`/margin/${client}`).expect(200);
    expect(res.body).toMatchObject({ margin_requirement: 2000 });
    expect(res.body.positions[0].rule).toBe('house');
  });

  it('a EUR security in a USD account is converted at the latest rate on or before the price date', async () => {
    const client = await insertClient();
    const account = await insertAccount(client, { loan: '1000' });
    const sec = await security({ currency: 'EUR', tick: { ts: TICK_TIME, price: '50' } });
    await hold(account, sec.id, '100');
    // Rates of other dates: the one after the price date is not used.
    await deps.db('fx_rates').insert([
      { from_currency: 'EUR', to_currency: 'USD', rate_date: '2024-03-20', rate: '1.05', source: 'test' },
      { from_currency: 'EUR', to_currency: 'USD', rate_date: '2024-03-27', rate: '1.1', source: 'test' },
      { from_currency: 'EUR', to_currency: 'USD', rate_date: '2024-03-29', rate: '1.3', source: 'test' },
    ]);
    const res = await get(`/margin/${client}`).expect(200);
    // 100 × €50 × 1.10 = $5,500; equity 4,500; requirement 1,375.
    expect(res.body).toMatchObject({
      portfolio_value: 5500,
      net_equity: 4500,
      margin_requirement: 1375,
      margin_call_triggered: false,
    });
    expect(res.body.positions[0].fx_rate).toBe(1.1);

    // A USD security in a EUR account uses the reciprocal of the stored EUR→USD rate.
    const euroClient = await insertClient();
    const euroAccount = await insertAccount(euroClient, { currency: 'EUR' });
    const usd = await security({ tick: { ts: TICK_TIME, price: '110' } });
    await hold(euroAccount, usd.id, '10');
    const euro = await get(`/margin/${euroClient}`).expect(200);
    // 10 × $110 ÷ 1.10 = €1,000 exactly (decimal, not a float quotient).
    expect(euro.body).toMatchObject({ currency: 'EUR', portfolio_value: 1000, margin_requirement: 250 });
  });

  it('a missing price or FX rate is a 422 naming each position, never a zero value', async () => {
    const client = await insertClient();
    const account = await insertAccount(client);
    const priced = await security({ tick: { ts: TICK_TIME, price: '10' } });
    const unpriced = await security();
    const noRate = await security({ currency: 'CHF', tick: { ts: TICK_TIME, price: '10' } });
    await hold(account, priced.id, '10');
    await hold(account, unpriced.id, '10');
    await hold(account, noRate.id, '-10');
    const res = await get(`/margin/${client}`).expect(422);
    expect(res.body.error.code).toBe('unpriced_positions');
    expect(fieldsOf(res.body).sort()).toEqual(
      [`positions.${noRate.ticker}`, `positions.${unpriced.ticker}`].sort(),
    );
    expect(res.body.error.message).toContain(unpriced.ticker);
    expect(res.body.error.message).toContain('no CHF→USD rate on or before 2024-03-28');
  });

  it('an unknown client, or one without a margin account, is a 404 naming it', async () => {
    const res = await get('/margin/2147483647').expect(404);
    expect(res.body.error.message).toBe('unknown client 2147483647');
    const cashOnly = await insertClient();
    await insertAccount(cashOnly, { type: 'CASH' });
    const res2 = await get(`/margin/${cashOnly}`).expect(404);
    expect(res2.body.error.message).toContain('no margin account');
  });

  it('an account with no positions has its balances as equity and no requirement', async () => {
    const client = await insertClient();
    await insertAccount(client, { cash: '250.5', loan: '100' });
    const res = await get(`/margin/${client}`).expect(200);
    expect(res.body).toMatchObject({
      timestamp: '2024-03-28T15:00:00Z',
      net_equity: 150.5,
      margin_requirement: 0,
    });
  });

  it('property: for generated accounts the endpoint equals accountMargin() on the same rows, to the cent', async () => {
    // mulberry32 (test/support.ts), so a failure reproduces.
    const rand = prng(0x5eed);
    const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
    const decimalText = (lo: number, hi: number, places: number) =>
      `${int(lo, hi - 1)}.${String(int(0, 10 ** places - 1)).padStart(places, '0')}`;
    await deps
      .db('fx_rates')
      .insert({
        from_currency: 'GBP',
        to_currency: 'USD',
        rate_date: '2024-03-01',
        rate: '1.2712345678',
        source: 'test',
      })
      .onConflict(['from_currency', 'to_currency', 'rate_date'])
      .ignore();

    for (let n = 0; n < 6; n += 1) {
      const client = await insertClient();
      const cash = decimalText(0, 20000, 2);
      const loan = decimalText(0, 50000, 2);
      const account = await insertAccount(client, { cash, loan });
      const expected: Parameters<typeof accountMargin>[0]['positions'][number][] = [];
      for (let k = int(1, 5); k > 0; k -= 1) {
        const gbp = rand() < 0.3;
        const marginable = rand() < 0.8;
        const houseRate = rand() < 0.3 ? `0.${int(20, 60)}` : undefined;
        const price = decimalText(1, 300, 4);
        const sec = await security({
          ...(gbp ? { currency: 'GBP' } : {}),
          marginable,
          ...(houseRate ? { houseRate } : {}),
          tick: { ts: TICK_TIME, price },
        });
        const quantity = String(int(1, 2000) * (rand() < 0.3 ? -1 : 1));
        await hold(account, sec.id, quantity);
        expected.push({
          securityId: sec.ticker,
          issuerId: null,
          quantity,
          price,
          fxRate: gbp ? '1.2712345678' : '1',
          marginable,
          houseRate: houseRate ?? null,
        });
      }
      // The route applies the house rules in force today (margin_house_rules, seeded defaults).
      const house = await deps.repos.margin.houseRules(NOW.slice(0, 10));
      const direct = accountMargin({ positions: expected, creditBalance: cash, debitBalance: loan, house });
      if (!direct.ok) throw new Error('generated account not priced');
      const c = (v: typeof direct.equity) => round(v, 2).toNumber();
      const res = await get(`/margin/${client}`).expect(200);
      expect(res.body).toMatchObject({
        clientId: client,
        portfolio_value: c(direct.longMarketValue),
        short_market_value: c(direct.shortMarketValue),
        loan_amount: c(direct.debitBalance),
        credit_balance: c(direct.creditBalance),
        net_equity: c(direct.equity),
        margin_requirement: c(direct.requirement),
        margin_shortfall: c(direct.shortfall),
        margin_call_triggered: direct.call,
      });
    }
  });
});

describe('GET /positions/{clientId}', () => {
  it("lists every account's positions in seed 0's shape (negative = short)", async () => {
    const client = await insertClient();
    const margin = await insertAccount(client);
    const cash = await insertAccount(client, { type: 'CASH' });
    const a = await security();
    const b = await security();
    await hold(margin, a.id, '100', '150');
    await hold(cash, b.id, '-25.5', '12.345');
    await insertTicks(deps, a.id, [{ ts: TICK_TIME, price: '175.5', size: 100 }]);
    const res = await get(`/positions/${client}`).expect(200);
    // Seed 0's fields, then the extra ones: currency, latest price, market value, unrealized P/L.
    expect(res.body).toEqual({
      clientId: client,
      positions: [
        {
          symbol: a.ticker,
          quantity: 100,
          cost_basis: 150.0,
          account_id: margin,
          currency: 'USD',
          market_price: 175.5,
          price_time: TICK_TIME,
          market_value: 17550,
          unrealized_pnl: 2550,
        },
        {
          symbol: b.ticker,
          quantity: -25.5,
          cost_basis: 12.345,
          account_id: cash,
          currency: 'USD',
          market_price: null,
          price_time: null,
          market_value: null,
          unrealized_pnl: null,
        },
      ].sort((x, y) => (x.symbol < y.symbol ? -1 : 1)),
    });
    expect(Object.keys(res.body.positions[0]).slice(0, 4)).toEqual([
      'symbol',
      'quantity',
      'cost_basis',
      'account_id',
    ]);
    // A client without positions has an empty list; an unknown one is a 404.
    const empty = await insertClient();
    expect((await get(`/positions/${empty}`).expect(200)).body).toEqual({ clientId: empty, positions: [] });
    expect((await get('/positions/2147483647').expect(404)).body.error.message).toBe(
      'unknown client 2147483647',
    );
  });
});

describe('both routes', () => {
  it.each(['0x1', '-1', 'abc', '0', '01', '1e3', '2147483648'])(
    'clientId %s is a 400 naming params.clientId',
    async (bad) => {
      for (const route of ['positions', 'margin']) {
        const res = await get(`/${route}/${bad}`).expect(400);
        expect(fieldsOf(res.body)).toEqual(['params.clientId']);
      }
    },
  );

  it('need a token (401) with results:read (403)', async () => {
    for (const route of ['positions', 'margin']) {
      await request(app).get(`/${route}/1`).expect(401);
      const res = await get(`/${route}/1`, writerOnly).expect(403);
      expect(res.body.error).toBe('insufficient_scope');
    }
  });

  it('appear in the OpenAPI document with operation ids', async () => {
    const doc = (await request(app).get('/docs/openapi.json').expect(200)).body;
    expect(doc.paths['/positions/{clientId}'].get.operationId).toBe('getPositionsByClientId');
    expect(doc.paths['/margin/{clientId}'].get.operationId).toBe('getMarginByClientId');
    expect(Object.keys(doc.paths['/margin/{clientId}'].get.responses)).toEqual(
      expect.arrayContaining(['200', '400', '401', '403', '404', '422']),
    );
  });
});
