/**
 * Issue 7 §1, data integrity of ticks and bars, each finding with its regression test, and every
 * test ending with the stored bars equal to an independent recomputation (test/bars-oracle.ts,
 * with the same session and complete-day rules):
 * - a partial day never displaces a provider's daily bar and counts as missing;
 * - bar prints replace only ticks inside the minutes their bars cover, by stored origin, not seq;
 * - ticks outside the regular session make no bar at either level;
 * - a corrected tick replaces the stored one with a record, or is quarantined as a conflict.
 * On a database of this file's own (the incremental rollups consume every pending change in it).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Clock, Deps } from '../core/deps.ts';
import type { DailyBarUpsert } from '../core/db/repositories/provider-bars.ts';
import type { TickInsert, TickOrigin } from '../core/db/repositories/ticks.ts';
import { BAR_SEQ, intradayTicks } from '../core/ingest/load.ts';
import type { IntradayRow } from '../core/ingest/validate.ts';
import { rollup1d, rollup5m } from '../jobs/processors/bars-rollup.ts';
import { directContext } from '../jobs/types.ts';
import { insertSecurity } from './api-fixtures.ts';
import { loadTicks, oracle5m, oracleRollup1d, printable, stored1d, stored5m } from './bars-oracle.ts';
import { closeDeps, dropPrefix, scratchDatabase, testConfig, testDeps } from './support.ts';

const clock: Clock = { now: () => new Date('2024-12-20T12:00:00Z') };

let scratch: { url: string; drop: () => Promise<void> };
let deps: Deps;

const at = (iso: string): Date => new Date(iso);
const MIN = 60_000;

function tick(
  securityId: number,
  ts: Date,
  price: string,
  size: number,
  origin: TickOrigin,
  seq = 0,
): TickInsert {
  return { securityId, ts, seq, origin, price, size, bid: null, ask: null };
}

/** One tick every `everyMs` from the session's open to before its close. */
async function fullDay(
  securityId: number,
  date: string,
  origin: TickOrigin,
  everyMs = MIN,
): Promise<TickInsert[]> {
  const [s] = await deps.repos.calendar.sessionsBetween(date, date);
  if (!s) throw new Error(`no session ${date}`);
  const out: TickInsert[] = [];
  for (let t = s.openAt.getTime(), i = 0; t < s.closeAt.getTime(); t += everyMs, i++)
    out.push(tick(securityId, new Date(t), (50 + (i % 17) / 4).toFixed(2), 100 + (i % 7), origin));
  return out;
}

function bar(
  iso: string,
  open: number,
  high: number,
  low: number,
  close: number,
  volume: number,
): IntradayRow {
  return { ts: at(iso), open, high, low, close, volume, raw: null };
}

function providerDay(securityId: number, date: string, close: string, volume: number): DailyBarUpsert {
  return {
    securityId,
    sessionDate: date,
    open: '100',
    high: '110',
    low: '90',
    close,
    adjClose: close,
    volume,
    source: 'yahoo',
  };
}

async function rollAll(): Promise<void> {
  await rollup5m(deps, {}, directContext());
  await rollup1d(deps, {}, directContext());
}

async function count(sql: string, bindings: readonly (string | number)[]): Promise<number> {
  const res = await deps.db.raw<{ rows: { n: string }[] }>(sql, bindings);
  return Number(res.rows[0]?.n ?? 0);
}

/** Stored bars of `id` equal the oracle's, both levels, with provider days kept where partial. */
async function expectOracle(id: number, from: string, to: string): Promise<void> {
  const sessions = await deps.repos.calendar.sessionsBetween(from, to);
  const ticks = await loadTicks(deps.db, [id]);
  expect(printable(await stored5m(deps.db, [id]))).toEqual(printable(oracle5m(ticks, sessions)));
  const providerRows = await deps
    .db('bars_1d')
    .where('security_id', id)
    .whereNot('source', 'rollup')
    .select<{ session_date: string }[]>(deps.db.raw('session_date::text as session_date'));
  const providerDays = new Set(providerRows.map((r) => `${id}|${r.session_date}`));
  expect(printable(await stored1d(deps.db, [id]))).toEqual(
    printable(oracleRollup1d(ticks, sessions, providerDays)),
  );
}

beforeAll(async () => {
  scratch = await scratchDatabase();
  deps = testDeps({ config: testConfig({ DATABASE_URL: scratch.url }), clock });
  await deps.repos.calendar.ensureSessions('2024-06-24', '2024-12-06');
});

afterAll(async () => {
  await dropPrefix(deps);
  await closeDeps(deps);
  await scratch?.drop();
});

describe('a partial day', () => {
  it('two ticks from the open neither replace a provider daily bar nor make the day present', async () => {
    const { id } = await insertSecurity(deps, { ticker: 'DPART', provider: 'synthetic' });
    const provider = providerDay(id, '2024-07-01', '105', 4_417_283);
    await deps.repos.providerBars.upsertDaily([provider]);
    await deps.repos.ticks.insert([
      tick(id, at('2024-07-01T13:30:00Z'), '101', 100, 'quote'),
      tick(id, at('2024-07-01T14:00:00Z'), '102', 100, 'quote'),
    ]);
    await rollAll();
    expect(
      await deps.db('bars_1d').where({ security_id: id, session_date: '2024-07-01' }).first(),
    ).toMatchObject({
      volume: '4417283',
      close: '105.00000000',
      source: 'yahoo',
    });
    // Sent again, the provider's bar is the stored one: nothing refused.
    expect(await deps.repos.providerBars.upsertDaily([provider])).toEqual({
      inserted: 0,
      updated: 0,
      unchanged: 1,
      keptRollup: 0,
    });
    expect(await deps.repos.providerBars.sessionsMissing(id, '2024-07-01', '2024-07-01', '5m')).toEqual([
      '2024-07-01',
    ]);

    // Without a provider bar the partial day is rolled up, counts as missing at '1d', and the
    // provider's bar then replaces it.
    await deps.repos.ticks.insert([
      tick(id, at('2024-07-02T13:30:00Z'), '101', 100, 'quote'),
      tick(id, at('2024-07-02T14:00:00Z'), '102', 100, 'quote'),
    ]);
    await rollAll();
    expect(await deps.repos.providerBars.sessionsMissing(id, '2024-07-01', '2024-07-02', '1d')).toEqual([
      '2024-07-02',
    ]);
    expect(
      await deps.repos.providerBars.upsertDaily([providerDay(id, '2024-07-02', '104', 3_000_000)]),
    ).toMatchObject({ updated: 1, keptRollup: 0 });

    // A whole session of ticks is complete: it replaces the provider's bar and is present.
    await deps.repos.ticks.insert(await fullDay(id, '2024-07-01', 'quote'));
    await rollAll();
    expect(
      await deps.db('bars_1d').where({ security_id: id, session_date: '2024-07-01' }).first(),
    ).toMatchObject({
      source: 'rollup',
    });
    expect(await deps.repos.providerBars.sessionsMissing(id, '2024-07-01', '2024-07-02', '5m')).toEqual([
      '2024-07-02',
    ]);
    await expectOracle(id, '2024-07-01', '2024-07-02');
  });
});

describe('bar prints', () => {
  it('on two sessions replace only the minutes their bars cover, not the session between', async () => {
    const { id } = await insertSecurity(deps, { ticker: 'DPRINT', provider: 'synthetic' });
    const quotes = await fullDay(id, '2024-07-09', 'quote');
    await deps.repos.ticks.insert(quotes);
    await deps.repos.ticks.insert([
      tick(id, at('2024-07-08T19:56:00Z'), '60', 10, 'quote'), // inside the 15:55 bar: replaced
      tick(id, at('2024-07-10T13:40:00Z'), '60', 10, 'quote'), // after the 09:30 bar: kept
    ]);
    const res = await deps.repos.ingest.commitBatch({
      ticks: {
        rows: intradayTicks(id, [
          bar('2024-07-08T19:55:00Z', 50, 51, 49, 50.5, 1000),
          bar('2024-07-10T13:30:00Z', 51, 52, 50, 51.5, 2000),
        ]),
        countSeq: BAR_SEQ.close,
        barMinutes: 5,
      },
    });
    expect(res.ticks).toMatchObject({ ticksInserted: 8, quotesReplaced: 1 });
    expect(
      await count(`select count(*) as n from ticks where security_id = ? and origin = 'quote'`, [id]),
    ).toBe(quotes.length + 1);
    await rollAll();
    await expectOracle(id, '2024-07-08', '2024-07-10');
  });

  it('are known by their stored origin: late trades with seq 1..5 delete nothing', async () => {
    const { id } = await insertSecurity(deps, { ticker: 'DLATE', provider: 'synthetic' });
    const generated = await fullDay(id, '2024-07-11', 'generated', 20_000);
    await deps.repos.ticks.insert(generated);
    await rollAll();
    const bars = await count('select count(*) as n from bars_5m where security_id = ?', [id]);
    expect(bars).toBe(78);
    // Late trades at two instants an hour apart, seq 1..5 each.
    const late: TickInsert[] = [];
    for (const iso of ['2024-07-11T14:00:05Z', '2024-07-11T15:00:05Z'])
      for (let seq = 1; seq <= 5; seq++) late.push(tick(id, at(iso), '52', 10, 'trade', seq));
    const res = await deps.repos.ticks.insert(late);
    expect(res).toMatchObject({ ticksInserted: 10, quotesReplaced: 0 });
    expect(
      await count(`select count(*) as n from ticks where security_id = ? and origin = 'generated'`, [id]),
    ).toBe(generated.length);
    await rollAll();
    expect(await count('select count(*) as n from bars_5m where security_id = ?', [id])).toBe(78);
    await expectOracle(id, '2024-07-11', '2024-07-11');
  });

  it('the generator stores its ticks as generated', async () => {
    const { id } = await insertSecurity(deps, { ticker: 'DGEN', provider: 'synthetic' });
    await deps.db.raw(`select ensure_month_partitions('ticks', '2024-07-01', '2024-08-01')`);
    const rows = `${id}\t2024-07-12 13:30:00+00\t0\t10.0000\t100\t9.9900\t10.0100\n${id}\t2024-07-12 13:30:20+00\t0\t10.0100\t100\t\\N\t\\N\n`;
    await deps.repos.generator.copyTicks({
      source: [Buffer.from(rows.slice(0, 30)), Buffer.from(rows.slice(30))],
    });
    const stored = await deps.db('ticks').where('security_id', id).orderBy('ts').pluck('origin');
    expect(stored).toEqual(['generated', 'generated']);
  });
});

describe('ticks outside the regular session', () => {
  it('make no 5-minute bar, as they make no daily bar, in incremental and range rollups', async () => {
    const { id, ticker } = await insertSecurity(deps, { ticker: 'DOUT', provider: 'synthetic' });
    await deps.repos.ticks.insert([
      ...(await fullDay(id, '2024-07-03', 'trade', 5 * MIN)), // 13:00 early close
      tick(id, at('2024-07-03T17:00:00Z'), '70', 5, 'trade'), // 13:00, after the early close
      tick(id, at('2024-07-03T19:30:00Z'), '70', 5, 'trade'),
      tick(id, at('2024-07-04T15:00:00Z'), '70', 5, 'trade'), // Independence Day
      tick(id, at('2024-07-05T20:00:00Z'), '70', 5, 'trade'), // 16:00:00
      tick(id, at('2024-07-05T19:59:59Z'), '71', 5, 'trade'),
    ]);
    await rollAll();
    const buckets = async () =>
      (await deps.db('bars_5m').where('security_id', id).orderBy('bucket').pluck('bucket')).map((b: Date) =>
        b.toISOString(),
      );
    const inSession = await buckets();
    expect(inSession).toHaveLength(43); // 42 buckets of the early close, and 15:55 of 07-05
    expect(inSession.at(-1)).toBe('2024-07-05T19:55:00.000Z');
    await expectOracle(id, '2024-07-03', '2024-07-05');

    // A range sweep, as after ticks written without bar_changes, gives the same bars.
    await rollup5m(
      deps,
      { symbols: [ticker], from: '2024-07-03T00:00:00Z', to: '2024-07-06T00:00:00Z' },
      directContext(),
    );
    await rollup1d(deps, { symbols: [ticker], from: '2024-07-03', to: '2024-07-05' }, directContext());
    expect(await buckets()).toEqual(inSession);
    await expectOracle(id, '2024-07-03', '2024-07-05');
    // The early close is complete with its 42 buckets.
    expect(await deps.repos.providerBars.sessionsMissing(id, '2024-07-03', '2024-07-03', '5m')).toEqual([]);
  });
});

describe('corrections', () => {
  it('a corrected intraday bar replaces the stored prints, with a record of what it replaced', async () => {
    const { id } = await insertSecurity(deps, { ticker: 'DCORR', provider: 'synthetic' });
    const first = [
      bar('2024-07-15T14:00:00Z', 50, 51, 49, 50.5, 1000),
      bar('2024-07-15T14:05:00Z', 50.5, 52, 50, 51, 800),
    ];
    await deps.repos.ingest.commitBatch({
      ticks: { rows: intradayTicks(id, first), countSeq: BAR_SEQ.close, barMinutes: 5 },
    });
    await rollAll();
    const corrected = [bar('2024-07-15T14:00:00Z', 50, 51.25, 49, 50.75, 1200), first[1]!];
    const res = await deps.repos.ingest.commitBatch({
      ticks: { rows: intradayTicks(id, corrected), countSeq: BAR_SEQ.close, barMinutes: 5 },
    });
    expect(res.ticks).toMatchObject({ ticksInserted: 0, corrected: 2, conflicts: 0 });
    await rollAll();
    expect(await deps.db('bars_5m').where('security_id', id).orderBy('bucket').first()).toMatchObject({
      high: '51.25000000',
      close: '50.75000000',
      volume: '1200',
    });
    const log = await deps
      .db('tick_corrections')
      .where('security_id', id)
      .orderBy('seq')
      .select('seq', 'origin', 'old_price', 'old_size', 'price', 'size');
    expect(log).toEqual([
      { seq: 2, origin: 'bar', old_price: '51.00000000', old_size: '0', price: '51.25000000', size: '0' },
      {
        seq: 4,
        origin: 'bar',
        old_price: '50.50000000',
        old_size: '1000',
        price: '50.75000000',
        size: '1200',
      },
    ]);
    await expectOracle(id, '2024-07-15', '2024-07-15');
  });

  it('a repeated key from another origin is quarantined; a re-fetched quote keeps its size', async () => {
    const { id } = await insertSecurity(deps, { ticker: 'DCONF', provider: 'synthetic' });
    await deps.repos.ingest.commitBatch({
      ticks: {
        rows: intradayTicks(id, [bar('2024-07-16T14:00:00Z', 50, 51, 49, 50.5, 1000)]),
        countSeq: BAR_SEQ.close,
      },
    });
    await deps.repos.ticks.insert([tick(id, at('2024-07-16T15:00:00Z'), '60', 500, 'quote')]);
    const res = await deps.repos.ticks.insert([
      tick(id, at('2024-07-16T14:00:00Z'), '55', 10, 'trade', 1),
      tick(id, at('2024-07-16T15:00:00Z'), '60', 0, 'quote'), // the same quote, no new volume
    ]);
    expect(res).toMatchObject({ ticksInserted: 0, corrected: 0, conflicts: 1 });
    const q = await deps.db('quarantined_rows').where('symbol', 'DCONF');
    expect(q).toHaveLength(1);
    expect(q[0]).toMatchObject({ entity: 'tick', source: 'trade' });
    expect(q[0].reason).toMatch(/^conflicting_duplicate: /);
    expect(await deps.repos.ticks.at(id, at('2024-07-16T14:00:00Z'), 1)).toEqual({
      price: '50.00000000',
      size: '0',
    });
    expect(await deps.repos.ticks.at(id, at('2024-07-16T15:00:00Z'), 0)).toEqual({
      price: '60.00000000',
      size: '500',
    });

    // The quote job's path says so too: a quote on a generated tick's key is a conflict.
    await deps.repos.ticks.insert([tick(id, at('2024-07-16T16:00:00Z'), '61', 100, 'generated')]);
    const ts = at('2024-07-16T16:00:00Z');
    const stored = await deps.repos.ticks.storeQuote({
      securityId: id,
      ts,
      build: () => ({
        tick: tick(id, ts, '62', 100, 'quote'),
        next: { session: '2024-07-16', volume: 100, ts: ts.toISOString() },
      }),
    });
    expect(stored).toMatchObject({ inserted: false, corrected: false, conflict: true });
    expect(await deps.db('quarantined_rows').where('symbol', 'DCONF')).toHaveLength(2);

    // A quote at the same market time with another price is a correction (its size stays ours).
    const fixed = await deps.repos.ticks.insert([tick(id, at('2024-07-16T15:00:00Z'), '60.5', 0, 'quote')]);
    expect(fixed).toMatchObject({ corrected: 1 });
    expect(await deps.repos.ticks.at(id, at('2024-07-16T15:00:00Z'), 0)).toEqual({
      price: '60.50000000',
      size: '500',
    });
    await rollAll();
    await expectOracle(id, '2024-07-16', '2024-07-16');
  });
});
