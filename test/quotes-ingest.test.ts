/**
 * Quotes end to end: the real yahoo-finance2 and alphavantage clients against
 * test/provider-server.ts (recorded/realistic payloads), through ingestQuote and refreshQuote
 * (core/ingest/quotes.ts) into a database of this file's own.
 *
 * Covers the closing print (a quote stamped exactly at 16:00 ET is stored at close − 1 ms, in the
 * session's last 5-minute bucket), Alpha Vantage's day-only GLOBAL_QUOTE (fetch time during the
 * session, the close after it), and refreshQuote not calling the provider while the market is
 * closed once the last session's close is stored.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { sessionFor } from '../core/calendar/nyse.ts';
import type { IngestSecurity } from '../core/db/repositories/securities.ts';
import type { Clock, Deps } from '../core/deps.ts';
import { ingestQuote, providerNameOf, refreshQuote } from '../core/ingest/quotes.ts';
import { startProviderServer, type ProviderServer } from './provider-server.ts';
import { closeDeps, dropPrefix, scratchDatabase, testConfig, testDeps } from './support.ts';

/** A clock the test moves; the providers built with the deps read it too. */
const clock: Clock & { set(iso: string): void } = (() => {
  let t = new Date('2025-02-17T10:54:49Z');
  return {
    now: () => new Date(t),
    set(iso: string) {
      t = new Date(iso);
    },
  };
})();

/** The session of the recorded quotes: Friday 2025-02-14, closing 16:00 ET = 21:00 UTC. */
const SESSION = sessionFor('2025-02-14')!;
const CLOSE_PRINT = '2025-02-14T20:59:59.999Z';
const RECORDED_VOLUME = 40896227;

let scratch: { url: string; drop: () => Promise<void> };
let server: ProviderServer;
let deps: Deps;
let securityId: number;

const meta = { jobName: null, jobId: null };

async function aapl(): Promise<IngestSecurity> {
  return (await deps.repos.securities.forIngest(['AAPL'])).get('AAPL')!;
}

async function ingest() {
  const s = await aapl();
  return ingestQuote(deps, s, providerNameOf(s.provider, s.ticker, deps.config.market.provider), meta);
}

async function ticks(): Promise<{ ts: string; seq: number; price: number; size: number }[]> {
  const rows = await deps
    .db('ticks')
    .select<{ ts: Date; seq: number; price: string; size: string }[]>('ts', 'seq', 'price', 'size')
    .where({ security_id: securityId })
    .orderBy(['ts', 'seq']);
  return rows.map((r) => ({
    ts: r.ts.toISOString(),
    seq: r.seq,
    price: Number(r.price),
    size: Number(r.size),
  }));
}

async function quarantined(): Promise<string[]> {
  const rows = await deps
    .db('quarantined_rows')
    .select<{ reason: string }[]>('reason')
    .where({ symbol: 'AAPL' });
  return rows.map((r) => r.reason);
}

/** Starts a test from no stored prices for AAPL, with the given provider. */
async function reset(provider: string): Promise<void> {
  await deps.db('ticks').where({ security_id: securityId }).delete();
  await deps.db('bar_changes').where({ security_id: securityId }).delete();
  await deps.db('job_checkpoints').where({ job_name: 'prices.quote' }).delete();
  await deps.db('quarantined_rows').where({ symbol: 'AAPL' }).delete();
  await deps.db('securities').where({ id: securityId }).update({ price_provider: provider });
}

beforeAll(async () => {
  scratch = await scratchDatabase();
  server = await startProviderServer();
  deps = testDeps({
    // No fallback: a failing primary must fail the test, not be answered by the other provider.
    config: testConfig({
      DATABASE_URL: scratch.url,
      ALPHAVANTAGE_API_KEY: 'TESTKEY123',
      PRICE_PROVIDER_FALLBACK: '',
      QUOTE_STALE_SECONDS: '60',
    }),
    fetch: server.fetch,
    clock,
  });
  const [row] = await deps
    .db('securities')
    .insert({
      security_id: 'SEC-0001',
      ticker: 'AAPL',
      security_name: 'Apple Inc',
      security_type: 'EQUITY',
      asset_class: 'Equity',
      currency: 'USD',
      exchange: 'NASDAQ',
      price_provider: 'yahoo',
    })
    .returning<{ id: number }[]>('id');
  securityId = row!.id;
});

afterAll(async () => {
  await server?.close();
  if (deps) {
    await dropPrefix(deps);
    await closeDeps(deps);
  }
  await scratch?.drop();
});

beforeEach(() => {
  server.reset();
});

describe('yahoo: the closing print', () => {
  beforeAll(async () => {
    await reset('yahoo');
    clock.set('2025-02-17T10:54:49Z'); // when the quote was recorded (Presidents' Day, closed)
  });

  it('stores the recorded 16:00:00 ET quote as one tick at close − 1 ms in the last 5-minute bucket', async () => {
    const res = await ingest();
    expect(res).toMatchObject({ provider: 'yahoo', accepted: 1, duplicates: 0, quarantined: 0, reasons: [] });
    expect(res.tick?.ts.toISOString()).toBe(CLOSE_PRINT);
    expect(Number(res.tick?.price)).toBe(244.6);
    expect(server.requestsFor('yahoo-quote')[0]?.answeredWith).toBe('fixture:quote-AAPL');
    expect(await ticks()).toEqual([{ ts: CLOSE_PRINT, seq: 0, price: 244.6, size: RECORDED_VOLUME }]);
    expect(await quarantined()).toEqual([]);

    // Inside the session, in its last 5-minute bucket [20:55, 21:00).
    const t = new Date(CLOSE_PRINT).getTime();
    expect(t).toBeLessThan(SESSION.closeAt.getTime());
    expect(new Date(Math.floor(t / 300_000) * 300_000).toISOString()).toBe('2025-02-14T20:55:00.000Z');
    // The tick's writer recorded the range it touched, for the rollups.
    const changes = await deps
      .db('bar_changes')
      .select<{ from_ts: Date; to_ts: Date }[]>('from_ts', 'to_ts')
      .where({ security_id: securityId });
    expect(changes.some((c) => c.from_ts.getTime() <= t && t < c.to_ts.getTime())).toBe(true);
  });

  it('a re-fetch of the same close is a duplicate, not a second tick', async () => {
    const res = await ingest();
    expect(res).toMatchObject({ accepted: 0, duplicates: 1, quarantined: 0 });
    expect(await ticks()).toHaveLength(1);
  });

  it.each([
    ['the next day (Saturday)', '2025-02-15T15:00:00Z'],
    ['a holiday (Presidents’ Day)', '2025-02-17T15:00:00Z'],
    ['before the next open (09:00 ET Tuesday)', '2025-02-18T14:00:00Z'],
  ])('refreshQuote on %s answers the stored close without asking the provider', async (_, iso) => {
    clock.set(iso);
    const before = server.requests.length;
    const r = await refreshQuote(deps, 'AAPL');
    expect(r).toMatchObject({ symbol: 'AAPL', source: 'stored' });
    expect(r?.timestamp.toISOString()).toBe(CLOSE_PRINT);
    expect(Number(r?.price)).toBe(244.6);
    expect(server.requests.length).toBe(before);
    expect(await quarantined()).toEqual([]);
  });

  it('once the next session is open the stored close is stale: refreshQuote fetches again', async () => {
    clock.set('2025-02-18T15:00:00Z');
    const before = server.requestsFor('yahoo-quote').length;
    const r = await refreshQuote(deps, 'AAPL');
    expect(server.requestsFor('yahoo-quote').length).toBe(before + 1);
    // The recorded quote is still Friday's close: a duplicate, answered as the stored tick.
    expect(r?.timestamp.toISOString()).toBe(CLOSE_PRINT);
    expect(await ticks()).toHaveLength(1);
  });
});

describe('alpha vantage: GLOBAL_QUOTE has a day, no time', () => {
  beforeAll(async () => {
    await reset('alphavantage');
  });

  it('during the session: stored at the fetch time with the cumulative volume', async () => {
    clock.set('2025-02-14T18:00:00Z');
    const res = await ingest();
    expect(res).toMatchObject({ provider: 'alphavantage', accepted: 1, quarantined: 0, reasons: [] });
    expect(res.tick?.ts.toISOString()).toBe('2025-02-14T18:00:00.000Z');
    expect(server.requestsFor('alphavantage').map((r) => r.avFunction)).toEqual(['GLOBAL_QUOTE']);
    expect(await ticks()).toEqual([
      { ts: '2025-02-14T18:00:00.000Z', seq: 0, price: 244.6, size: RECORDED_VOLUME },
    ]);
  });

  it('during the session a fresh stored tick is answered without a request', async () => {
    clock.set('2025-02-14T18:00:30Z');
    const r = await refreshQuote(deps, 'AAPL');
    expect(r).toMatchObject({ source: 'stored' });
    expect(r?.timestamp.toISOString()).toBe('2025-02-14T18:00:00.000Z');
    expect(server.requests).toHaveLength(0);
  });

  it('after the close: a tick older than close − QUOTE_STALE_SECONDS is refreshed to the close', async () => {
    clock.set('2025-02-14T21:30:00Z');
    const r = await refreshQuote(deps, 'AAPL');
    expect(server.requestsFor('alphavantage')).toHaveLength(1);
    expect(r).toMatchObject({ source: 'fetched' });
    expect(r?.timestamp.toISOString()).toBe(CLOSE_PRINT);
    // Same session, same cumulative volume: the close print adds no volume.
    expect(await ticks()).toEqual([
      { ts: '2025-02-14T18:00:00.000Z', seq: 0, price: 244.6, size: RECORDED_VOLUME },
      { ts: CLOSE_PRINT, seq: 0, price: 244.6, size: 0 },
    ]);
    expect(await quarantined()).toEqual([]);
  });

  it('after the close, with the close stored: no further requests', async () => {
    clock.set('2025-02-15T09:00:00Z');
    const r = await refreshQuote(deps, 'AAPL');
    expect(r).toMatchObject({ source: 'stored' });
    expect(r?.timestamp.toISOString()).toBe(CLOSE_PRINT);
    expect(server.requests).toHaveLength(0);
  });
});
