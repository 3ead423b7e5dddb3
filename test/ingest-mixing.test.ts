/**
 * Quotes (seq-0 ticks from prices.fetch) mixed with intraday bar prints (seq 1..4 from a later
 * prices.backfill) and with provider daily bars, on a database of this file's own (the incremental
 * rollups consume every pending change in it):
 * - bar prints replace the quotes inside the span they cover, so the 5-minute and daily rollups
 *   carry the provider bars' volume and close, not quotes + bars;
 * - "missing" planning treats a session whose 5-minute buckets are not all covered as missing (and
 *   the backfill fills it);
 * - a partial day's rollup never overwrites a provider's daily bar, a provider's daily bar replaces
 *   a partial rollup day, and a complete day's rollup (every bucket of the session) still wins over
 *   a provider's bar.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Clock, Deps } from '../core/deps.ts';
import type { DailyBarUpsert } from '../core/db/repositories/provider-bars.ts';
import type { TickInsert } from '../core/db/repositories/ticks.ts';
import { BAR_SEQ, intradayTicks } from '../core/ingest/load.ts';
import type { IntradayRow } from '../core/ingest/validate.ts';
import { rollup1d, rollup5m } from '../jobs/processors/bars-rollup.ts';
import { pricesBackfill } from '../jobs/processors/prices.ts';
import { directContext } from '../jobs/types.ts';
import { insertSecurity } from './api-fixtures.ts';
import { closeDeps, dropPrefix, scratchDatabase, testConfig, testDeps } from './support.ts';

const clock: Clock = { now: () => new Date('2024-07-12T12:00:00Z') };

let scratch: { url: string; drop: () => Promise<void> };
let deps: Deps;
const ids = new Map<string, number>();

async function addSecurity(ticker: string): Promise<number> {
  const { id } = await insertSecurity(deps, { ticker, provider: 'synthetic' });
  ids.set(ticker, id);
  return id;
}

const at = (iso: string): Date => new Date(iso);

function quote(securityId: number, iso: string, price: string, size: number): TickInsert {
  return { securityId, ts: at(iso), seq: 0, origin: 'quote', price, size, bid: null, ask: null };
}

/** A quote every 5 minutes over [fromIso, toIso): every bucket of that span covered. */
function quotesEvery5(
  securityId: number,
  fromIso: string,
  toIso: string,
  price: string,
  size: number,
): TickInsert[] {
  const out: TickInsert[] = [];
  for (let t = Date.parse(fromIso); t < Date.parse(toIso); t += 300_000)
    out.push(quote(securityId, new Date(t).toISOString(), price, size));
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

/** Both incremental rollups, as the scheduled jobs run them. */
async function rollAll(): Promise<void> {
  await rollup5m(deps, {}, directContext());
  await rollup1d(deps, {}, directContext());
}

async function bars5m(securityId: number): Promise<{ bucket: string; close: string; volume: string }[]> {
  const rows = await deps
    .db('bars_5m')
    .where('security_id', securityId)
    .orderBy('bucket')
    .select<{ bucket: Date; close: string; volume: string }[]>('bucket', 'close', 'volume');
  return rows.map((r) => ({ bucket: r.bucket.toISOString(), close: r.close, volume: r.volume }));
}

async function daily(securityId: number, date: string) {
  return deps
    .db('bars_1d')
    .where({ security_id: securityId, session_date: date })
    .first<{ open: string; close: string; volume: string; source: string } | undefined>();
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

beforeAll(async () => {
  scratch = await scratchDatabase();
  deps = testDeps({ config: testConfig({ DATABASE_URL: scratch.url }), clock });
  await deps.repos.calendar.ensureSessions('2024-06-24', '2024-07-19');
  for (const t of ['QMIX', 'QGAP', 'QMISS', 'QDAY', 'QFULL']) await addSecurity(t);
});

afterAll(async () => {
  await dropPrefix(deps);
  await closeDeps(deps);
  await scratch?.drop();
});

describe('bar prints replace the quotes they cover', () => {
  it('quotes then bar prints for the same session roll up to the bars’ volume and close', async () => {
    const id = ids.get('QMIX')!;
    // Quotes during the day (from 11:00 New York time); rolled up before the backfill arrives.
    await deps.repos.ticks.insert([
      quote(id, '2024-07-02T15:00:10Z', '101.5', 5000),
      quote(id, '2024-07-02T15:03:20Z', '102.25', 300),
      quote(id, '2024-07-02T15:06:00Z', '99.75', 200),
      quote(id, '2024-07-02T15:13:30Z', '103', 100),
    ]);
    await rollAll();
    expect((await bars5m(id)).map((b) => b.bucket)).toEqual([
      '2024-07-02T15:00:00.000Z',
      '2024-07-02T15:05:00.000Z',
      '2024-07-02T15:10:00.000Z',
    ]);

    // The provider's 5-minute bars for the same time (none at 15:05: no trades, says the provider).
    const bars = [
      bar('2024-07-02T15:00:00Z', 101, 102.5, 100.5, 102, 4000),
      bar('2024-07-02T15:10:00Z', 102, 103.5, 101.75, 103.25, 1500),
    ];
    const res = await deps.repos.ingest.commitBatch({
      ticks: { rows: intradayTicks(id, bars), countSeq: BAR_SEQ.close },
    });
    // The 5-minute interval is inferred from the bar starts: all four quotes are inside [15:00, 15:15).
    expect(res.ticks).toMatchObject({ ticksInserted: 8, rowsInserted: 2, quotesReplaced: 4 });
    await rollAll();

    expect(await bars5m(id)).toEqual([
      { bucket: '2024-07-02T15:00:00.000Z', close: '102.00000000', volume: '4000' },
      { bucket: '2024-07-02T15:10:00.000Z', close: '103.25000000', volume: '1500' },
    ]);
    const day = await daily(id, '2024-07-02');
    expect(day).toMatchObject({
      open: '101.00000000',
      close: '103.25000000',
      volume: '5500',
      source: 'rollup',
    });
  });

  it('a quote stored after the bars is replaced by a re-backfill that stores nothing new', async () => {
    const id = ids.get('QGAP')!;
    const bars = [
      bar('2024-07-03T14:00:00Z', 50, 51, 49.5, 50.5, 700),
      bar('2024-07-03T14:05:00Z', 50.5, 52, 50, 51.5, 900),
    ];
    const batch = { ticks: { rows: intradayTicks(id, bars), countSeq: BAR_SEQ.close, barMinutes: 5 } };
    await deps.repos.ingest.commitBatch(batch);
    await rollAll();
    // A late quote inside the last bar doubles its bucket's volume until the bars come again.
    await deps.repos.ticks.insert([quote(id, '2024-07-03T14:08:00Z', '60', 1234)]);
    await rollAll();
    expect((await bars5m(id)).at(-1)).toMatchObject({ close: '60.00000000', volume: '2134' });

    const again = await deps.repos.ingest.commitBatch(batch);
    expect(again.ticks).toMatchObject({ ticksInserted: 0, quotesReplaced: 1 });
    // Nothing was inserted: the deletion's own bar_changes row is what makes the rollup redo 14:05.
    await rollAll();
    expect(await bars5m(id)).toEqual([
      { bucket: '2024-07-03T14:00:00.000Z', close: '50.50000000', volume: '700' },
      { bucket: '2024-07-03T14:05:00.000Z', close: '51.50000000', volume: '900' },
    ]);
    expect(await daily(id, '2024-07-03')).toMatchObject({ close: '51.50000000', volume: '1600' });
  });

  it('keeps quotes outside the bars’ span; a lone bar covers one minute unless told its interval', async () => {
    const id = ids.get('QGAP')!;
    await deps.repos.ticks.insert([
      quote(id, '2024-07-05T14:29:59Z', '10', 1),
      quote(id, '2024-07-05T14:30:30Z', '10', 2),
      quote(id, '2024-07-05T14:32:00Z', '10', 3),
      quote(id, '2024-07-05T14:35:00Z', '10', 4),
    ]);
    const lone = intradayTicks(id, [bar('2024-07-05T14:30:00Z', 10, 10, 10, 10, 9)]);
    const first = await deps.repos.ticks.insert(lone, { countSeq: BAR_SEQ.close });
    expect(first.quotesReplaced).toBe(1);
    const second = await deps.repos.ticks.insert(lone, { countSeq: BAR_SEQ.close, barMinutes: 5 });
    expect(second.quotesReplaced).toBe(1);
    const left = await deps
      .db('ticks')
      .where({ security_id: id, seq: 0 })
      .andWhere('ts', '>=', at('2024-07-05T00:00:00Z'))
      .orderBy('ts')
      .pluck('size');
    expect(left.map(Number)).toEqual([1, 4]);
  });
});

describe('"missing" intraday planning', () => {
  it('sees a quote-only partial session as missing, and the backfill completes it', async () => {
    const id = ids.get('QMISS')!;
    // 07-08: quotes from 11:00 only; 07-09: quoted over the whole session; 07-10: bar prints for
    // the whole session; 07-11: nothing; 07-12: quoted from the open, but only twice.
    await deps.repos.ticks.insert([
      quote(id, '2024-07-08T15:00:05Z', '20', 10_000),
      quote(id, '2024-07-08T15:30:05Z', '21', 500),
      ...quotesEvery5(id, '2024-07-09T13:31:00Z', '2024-07-09T20:00:00Z', '20', 800),
      quote(id, '2024-07-12T13:30:00Z', '20', 800),
      quote(id, '2024-07-12T14:00:00Z', '20', 800),
    ]);
    const wholeDay: IntradayRow[] = [];
    for (let t = Date.parse('2024-07-10T13:30:00Z'); t < Date.parse('2024-07-10T20:00:00Z'); t += 300_000)
      wholeDay.push(bar(new Date(t).toISOString(), 20, 21, 19, 20.5, 300));
    await deps.repos.ingest.commitBatch({
      ticks: { rows: intradayTicks(id, wholeDay), countSeq: BAR_SEQ.close, barMinutes: 5 },
    });
    // Bar prints not rolled up yet already count.
    expect(await deps.repos.providerBars.sessionsMissing(id, '2024-07-10', '2024-07-10', '5m')).toEqual([]);
    await rollAll();
    expect(await deps.repos.providerBars.sessionsMissing(id, '2024-07-08', '2024-07-12', '5m')).toEqual([
      '2024-07-08',
      '2024-07-11',
      '2024-07-12',
    ]);

    const result = await pricesBackfill(
      deps,
      { symbols: ['QMISS'], from: '2024-07-08', to: '2024-07-08', interval: '5m', mode: 'missing' },
      directContext(),
    );
    expect(result).toMatchObject({ accepted: 78, quarantined: 0 });
    expect(await deps.repos.providerBars.sessionsMissing(id, '2024-07-08', '2024-07-12', '5m')).toEqual([
      '2024-07-11',
      '2024-07-12',
    ]);
    await rollAll();

    // The session's bars are now exactly the provider's: its quotes are gone.
    const want = await deps.providers
      .get('synthetic')
      .intraday('QMISS', at('2024-07-08T13:30:00Z'), at('2024-07-08T20:00:00Z'), 5);
    expect(want.bars).toHaveLength(78);
    const got = (await bars5m(id)).filter((b) => b.bucket.startsWith('2024-07-08'));
    expect(got.map((b) => [b.bucket, Number(b.close), Number(b.volume)])).toEqual(
      want.bars.map((b) => [b.ts.toISOString(), b.close, b.volume]),
    );
    const day = await daily(id, '2024-07-08');
    expect(Number(day!.volume)).toBe(want.bars.reduce((n, b) => n + b.volume!, 0));
    expect(Number(day!.close)).toBe(want.bars.at(-1)!.close);
  });
});

describe('rolled-up days and provider daily bars', () => {
  it('a partial quote day does not overwrite a provider daily bar (incremental and range rollups)', async () => {
    const id = ids.get('QDAY')!;
    const provider = providerDay(id, '2024-07-01', '105', 1_000_000);
    expect(await deps.repos.providerBars.upsertDaily([provider])).toMatchObject({ inserted: 1 });
    await deps.repos.ticks.insert([
      quote(id, '2024-07-01T15:00:00Z', '104', 600_000),
      quote(id, '2024-07-01T19:55:00Z', '106', 1000),
    ]);
    await rollAll();
    const want = { open: '100.00000000', close: '105.00000000', volume: '1000000', source: 'yahoo' };
    expect(await daily(id, '2024-07-01')).toMatchObject(want);
    const range = await rollup1d(deps, { from: '2024-07-01', to: '2024-07-01' }, directContext());
    expect(range).toMatchObject({ upserted: 0, deleted: 0 });
    expect(await daily(id, '2024-07-01')).toMatchObject(want);
  });

  it('a provider daily bar replaces a partial rollup day, not a complete one', async () => {
    const id = ids.get('QDAY')!;
    await deps.repos.ticks.insert([
      quote(id, '2024-07-02T13:30:00Z', '104', 600_000), // partial: from the open, but not all of it
      // Complete: every bucket of the 13:00 early close.
      quote(id, '2024-07-03T13:30:00Z', '99', 400_000),
      ...quotesEvery5(id, '2024-07-03T13:35:00Z', '2024-07-03T16:55:00Z', '99', 1000),
      quote(id, '2024-07-03T16:55:00Z', '98', 1000),
    ]);
    await rollAll();
    expect(await daily(id, '2024-07-02')).toMatchObject({ volume: '600000', source: 'rollup' });
    expect(await daily(id, '2024-07-03')).toMatchObject({ volume: '441000', source: 'rollup' });

    const res = await deps.repos.providerBars.upsertDaily([
      providerDay(id, '2024-07-02', '105', 2_000_000),
      providerDay(id, '2024-07-03', '97', 3_000_000),
    ]);
    expect(res).toEqual({ inserted: 0, updated: 1, unchanged: 0, keptRollup: 1 });
    expect(await daily(id, '2024-07-02')).toMatchObject({ close: '105.00000000', source: 'yahoo' });
    expect(await daily(id, '2024-07-03')).toMatchObject({ close: '98.00000000', source: 'rollup' });

    // A later quote of the partial day leaves the provider's bar alone.
    await deps.repos.ticks.insert([quote(id, '2024-07-02T16:00:00Z', '107', 5)]);
    await rollAll();
    expect(await daily(id, '2024-07-02')).toMatchObject({ volume: '2000000', source: 'yahoo' });
  });

  it('a complete day still wins over a provider row', async () => {
    const id = ids.get('QFULL')!;
    await deps.repos.providerBars.upsertDaily([
      providerDay(id, '2024-07-05', '105', 1_000_000),
      providerDay(id, '2024-07-08', '105', 1_000_000),
    ]);
    // 07-05: quotes over the whole session (incremental rollup); 07-08: bar prints over the whole
    // session (range rollup).
    await deps.repos.ticks.insert([
      quote(id, '2024-07-05T13:30:40Z', '101', 7000),
      ...quotesEvery5(id, '2024-07-05T13:35:00Z', '2024-07-05T19:55:00Z', '101.5', 100),
      quote(id, '2024-07-05T19:59:00Z', '102', 3000),
    ]);
    await rollAll();
    expect(await daily(id, '2024-07-05')).toMatchObject({
      open: '101.00000000',
      close: '102.00000000',
      volume: '17600',
      source: 'rollup',
    });

    const bars: IntradayRow[] = [bar('2024-07-08T13:30:00Z', 100, 101, 99, 100.5, 2000)];
    for (let t = Date.parse('2024-07-08T13:35:00Z'); t < Date.parse('2024-07-08T20:00:00Z'); t += 300_000)
      bars.push(bar(new Date(t).toISOString(), 100.5, 102, 100, 101.5, 3000));
    await deps.repos.ingest.commitBatch({
      ticks: { rows: intradayTicks(id, bars), countSeq: BAR_SEQ.close, barMinutes: 5 },
    });
    await rollup5m(deps, {}, directContext());
    const range = await rollup1d(deps, { from: '2024-07-08', to: '2024-07-08' }, directContext());
    expect(range).toMatchObject({ upserted: 1 });
    expect(await daily(id, '2024-07-08')).toMatchObject({
      open: '100.00000000',
      close: '101.50000000',
      volume: String(2000 + 77 * 3000),
      source: 'rollup',
    });
    // And the provider cannot take a complete day back.
    const res = await deps.repos.providerBars.upsertDaily([providerDay(id, '2024-07-08', '105', 1_000_000)]);
    expect(res).toMatchObject({ updated: 0, keptRollup: 1 });
  });
});
