/**
 * Rows the API tests read back (securities, ticks, 5-minute and daily bars, splits), written
 * straight to the real tables, and bearer tokens from the real token endpoint. Tickers and
 * security ids are random so test files can share the database.
 */
import { randomBytes } from 'node:crypto';
import type express from 'express';
import request from 'supertest';
import { closeApp, createApp } from '../api/app.ts';
import { createClient } from '../api/auth/accounts.ts';
import { createAuth, type Auth, type Scope } from '../api/auth/index.ts';
import type { Deps } from '../core/deps.ts';
import { createQueues, type QueueSet } from '../jobs/queues.ts';
import { closeDeps, dropPrefix } from './support.ts';

export interface TestApp {
  app: express.Express;
  queues: QueueSet;
  auth: Auth;
}

/** The real API app for `deps`, with its queues and auth, as workers/api.ts builds it. */
export async function startTestApp(
  deps: Deps,
  opts: { seriesCache?: { retryMs?: number; heartbeatMs?: number } } = {},
): Promise<TestApp> {
  const queues = createQueues(deps.config);
  const auth = await createAuth(deps);
  const app = await createApp(deps, { queues, auth, ...opts });
  return { app, queues, auth };
}

/** Closes what startTestApp opened, then removes the test's queue prefix and closes `deps`. */
export async function stopTestApp(t: TestApp, deps: Deps): Promise<void> {
  await closeApp(t.app);
  await t.queues.close();
  await t.auth.close();
  await dropPrefix(deps);
  await closeDeps(deps);
}

/** A new security: `ticker`, or a random `<prefix><6 hex>`; USD unless `currency`. */
export async function insertSecurity(
  deps: Deps,
  opts: {
    ticker?: string;
    prefix?: string;
    type?: 'EQUITY' | 'BOND';
    provider?: string;
    currency?: string;
  } = {},
): Promise<{ id: number; ticker: string }> {
  const tag = randomBytes(3).toString('hex').toUpperCase();
  const type = opts.type ?? 'EQUITY';
  const [sec] = await deps
    .db('securities')
    .insert({
      security_id: `SEC-${Math.floor(Math.random() * 9e8) + 1e8}`,
      ticker: opts.ticker ?? `${opts.prefix ?? 'API'}${tag}`,
      security_name: `API test ${tag}`,
      security_type: type,
      asset_class: type === 'EQUITY' ? 'Equity' : 'Fixed Income',
      currency: opts.currency ?? 'USD',
      exchange: 'NYSE',
      ...(type === 'BOND' ? { maturity_date: '2034-01-15', face_value: '100' } : {}),
      ...(opts.provider ? { price_provider: opts.provider } : {}),
    })
    .returning<{ id: number; ticker: string }[]>(['id', 'ticker']);
  return sec!;
}

export interface TickRow {
  ts: string;
  seq?: number;
  price: string;
  size: number;
  bid?: string;
  ask?: string;
}

/** Ticks of one security (creating the monthly partitions they need). */
export async function insertTicks(deps: Deps, securityId: number, ticks: TickRow[]): Promise<void> {
  const times = ticks.map((t) => new Date(t.ts).getTime());
  await deps.db.raw(`select ensure_month_partitions('ticks', ?, ?)`, [
    new Date(Math.min(...times)),
    new Date(Math.max(...times) + 1000),
  ]);
  await deps.db('ticks').insert(
    ticks.map((t) => ({
      security_id: securityId,
      ts: new Date(t.ts),
      seq: t.seq ?? 0,
      price: t.price,
      size: t.size,
      bid: t.bid ?? null,
      ask: t.ask ?? null,
    })),
  );
}

export interface DailyRow {
  date: string;
  open: string;
  high: string;
  low: string;
  close: string;
  volume: number;
  adjClose?: string;
  vwap?: string;
  tradeCount?: number;
}

export async function insertDailyBars(deps: Deps, securityId: number, bars: DailyRow[]): Promise<void> {
  await deps.db('bars_1d').insert(
    bars.map((b) => ({
      security_id: securityId,
      session_date: b.date,
      open: b.open,
      high: b.high,
      low: b.low,
      close: b.close,
      adj_close: b.adjClose ?? null,
      volume: b.volume,
      pv: null,
      vwap: b.vwap ?? null,
      trade_count: b.tradeCount ?? null,
      source: 'test',
    })),
  );
}

/** A split effective on `exDate`: `ratio` new shares per old (4 for 4:1, 0.1 for 1:10). */
export async function insertSplit(
  deps: Deps,
  securityId: number,
  exDate: string,
  ratio: string,
): Promise<void> {
  await deps.db('corporate_actions').insert({
    action_id: `CA-TEST-${randomBytes(6).toString('hex')}`,
    security_id: securityId,
    action_type: Number(ratio) >= 1 ? 'STOCK_SPLIT' : 'REVERSE_SPLIT',
    ex_date: exDate,
    ratio,
    source: 'test',
  });
}

/** A bearer header from the app's own client-credentials endpoint, for a new client with `scopes`. */
export async function clientToken(
  deps: Deps,
  app: express.Express,
  scopes: Scope[],
): Promise<{ header: string; clientId: string }> {
  const client = await createClient(deps, { name: `api test ${scopes.join(' ')}`, scopes });
  const res = await request(app)
    .post('/oauth/token')
    .auth(client.clientId, client.clientSecret)
    .type('form')
    .send({ grant_type: 'client_credentials' });
  if (res.status !== 200) throw new Error(`token endpoint answered ${res.status}: ${res.text}`);
  return { header: `Bearer ${res.body.access_token as string}`, clientId: client.clientId };
}

export interface PriceFixture {
  id: number;
  ticker: string;
  /** Bucket starts of the 5-minute bars, ascending. */
  buckets: Date[];
  /** Session dates of the daily bars, ascending. */
  dates: string[];
}

/** `n` consecutive 5-minute buckets ending at `last`, ascending. */
function bucketsEndingAt(last: Date, n: number): Date[] {
  return Array.from({ length: n }, (_, i) => new Date(last.getTime() - (n - 1 - i) * 300_000));
}

export async function insertPriceFixture(
  deps: Deps,
  opts: { bars5m: number; lastBucket: string; dates: string[] },
): Promise<PriceFixture> {
  const { id, ticker } = await insertSecurity(deps);

  const buckets = bucketsEndingAt(new Date(opts.lastBucket), opts.bars5m);
  if (buckets.length > 0) {
    await deps.db.raw(`select ensure_month_partitions('bars_5m', ?, ?)`, [
      buckets[0]!,
      new Date(buckets.at(-1)!.getTime() + 300_000),
    ]);
    await deps.db('bars_5m').insert(
      buckets.map((bucket, i) => {
        // The last bar has no volume, so its VWAP is null (the table requires that pairing).
        const volume = i === buckets.length - 1 ? 0 : 1000 + i;
        const open = (100 + i / 100).toFixed(8);
        return {
          security_id: id,
          bucket,
          open,
          high: (101 + i / 100).toFixed(8),
          low: (99 + i / 100).toFixed(8),
          close: (100.5 + i / 100).toFixed(8),
          volume,
          pv: (volume * (100.25 + i / 100)).toFixed(8),
          vwap: volume === 0 ? null : (100.25 + i / 100).toFixed(8),
          trade_count: 10 + i,
        };
      }),
    );
  }
  if (opts.dates.length > 0) {
    await deps.db('bars_1d').insert(
      opts.dates.map((date, i) => ({
        security_id: id,
        session_date: date,
        open: '187.12345678',
        high: '190.00000000',
        low: '185.50000000',
        close: (188 + (i % 4) / 4).toFixed(8),
        // Provider history carries no adjusted close on odd days.
        adj_close: i % 2 === 0 ? (187.5 + (i % 4) / 4).toFixed(8) : null,
        volume: 50_000_000 + i,
        pv: null,
        vwap: i % 2 === 0 ? '188.25000000' : null,
        trade_count: i % 2 === 0 ? 400_000 : null,
        source: 'test',
      })),
    );
  }
  return { id, ticker, buckets, dates: opts.dates };
}
