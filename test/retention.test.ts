/**
 * maintenance.retention on a frozen clock, in a database of this file's own (it drops partitions):
 * partitions are created ahead, expired ones dropped by their catalog bounds (an oddly named one
 * included), rows of kept partitions stay untouched, bar_changes wholly before the oldest kept
 * partition are pruned, 5-minute indicator rows past the bars_5m retention are deleted, a dry run
 * changes nothing, and a bounded query still reads only its own partition.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Deps } from '../core/deps.ts';
import { rollup1d, rollup5m } from '../jobs/processors/bars-rollup.ts';
import { maintenanceRetention } from '../jobs/processors/maintenance.ts';
import { directContext } from '../jobs/types.ts';
import { closeDeps, frozenClock, scratchDatabase, testConfig, testDeps } from './support.ts';

let deps: Deps;
let scratch: { url: string; drop: () => Promise<void> };
let securityId: number;
let indicatorTable: string | null = null;

// now 2025-06-15 12:00Z; ticks kept 60 days (cutoff 2025-04-16 12:00Z), bars_5m 120 days
// (cutoff 2025-02-15 12:00Z); the current month and two ahead: June, July, August.
const NOW = '2025-06-15T12:00:00Z';

beforeAll(async () => {
  scratch = await scratchDatabase();
  deps = testDeps({
    config: testConfig({
      DATABASE_URL: scratch.url,
      RETENTION_TICKS_DAYS: '60',
      RETENTION_BARS_5M_DAYS: '120',
      PARTITIONS_AHEAD_MONTHS: '2',
    }),
    clock: frozenClock(NOW),
  });
  const [sec] = await deps
    .db('securities')
    .insert({
      security_id: 'SEC-9001',
      ticker: 'RETN',
      security_name: 'Retention test',
      security_type: 'EQUITY',
      asset_class: 'Equity',
      currency: 'USD',
      exchange: 'NYSE',
    })
    .returning<{ id: number }[]>('id');
  securityId = sec!.id;
  for (const t of ['ticks', 'bars_5m'])
    await deps.db.raw(`select ensure_month_partitions(?, '2025-01-01', '2025-05-01')`, [t]);
  // A partition outside the naming convention: only its catalog bounds say it has expired.
  await deps.db.raw(
    `create table ticks_legacy_dec partition of ticks for values from ('2024-12-01 00:00:00+00') to ('2025-01-01 00:00:00+00')`,
  );

  const tick = (ts: string, price: string) => ({ security_id: securityId, ts, seq: 0, price, size: 10 });
  await deps
    .db('ticks')
    .insert([
      tick('2024-12-10T15:00:00Z', '9'),
      tick('2025-01-10T15:00:00Z', '10'),
      tick('2025-03-31T23:59:59Z', '11'),
      tick('2025-04-10T15:00:00Z', '12'),
      tick('2025-04-30T15:00:00Z', '13'),
    ]);
  const bar = (bucket: string) => ({
    security_id: securityId,
    bucket,
    open: '10',
    high: '10',
    low: '10',
    close: '10',
    volume: 10,
    pv: '100',
    vwap: '10',
    trade_count: 1,
  });
  await deps
    .db('bars_5m')
    .insert([bar('2025-01-10T15:00:00Z'), bar('2025-02-10T15:00:00Z'), bar('2025-04-10T15:00:00Z')]);
  const change = (level: string, from: string, to: string) => ({
    level,
    security_id: securityId,
    from_ts: from,
    to_ts: to,
  });
  await deps.db('bar_changes').insert([
    change('5m', '2025-02-10T15:00:00Z', '2025-02-10T15:00:01Z'), // before the oldest kept ticks partition (April)
    change('5m', '2025-03-31T23:00:00Z', '2025-04-01T00:00:00Z'), // ends exactly at April: nothing left to recompute
    change('5m', '2025-03-31T23:00:00Z', '2025-04-02T00:00:00Z'), // reaches into April: kept
    change('1d', '2025-01-10T15:00:00Z', '2025-01-10T15:05:00Z'), // before the oldest kept bars_5m partition (Feb)
    change('1d', '2025-02-10T15:00:00Z', '2025-02-10T15:05:00Z'), // kept
  ]);

  for (const table of ['indicator_values', 'indicators']) {
    const exists = await deps.db.raw<{ rows: { t: string | null }[] }>(`select to_regclass(?)::text as t`, [
      table,
    ]);
    if (exists.rows[0]?.t) {
      indicatorTable = table;
      break;
    }
  }
  if (indicatorTable) {
    // The indicator schema belongs to the analytics work and may change: fill whatever else it
    // requires with placeholder values of the right type.
    const cols = await deps.db.raw<{ rows: { column_name: string; data_type: string }[] }>(
      `select column_name, data_type from information_schema.columns
        where table_schema = current_schema() and table_name = ? and is_nullable = 'NO' and column_default is null
          and column_name not in ('security_id', 'interval', 'ts')`,
      [indicatorTable],
    );
    const filler = (type: string): unknown =>
      /text|char/.test(type)
        ? 'sma_20'
        : /bool/.test(type)
          ? false
          : /json/.test(type)
            ? '{}'
            : /time|date/.test(type)
              ? NOW
              : 1;
    const extra = Object.fromEntries(cols.rows.map((c) => [c.column_name, filler(c.data_type)]));
    const row = (interval: string, ts: string) => ({ security_id: securityId, interval, ts, ...extra });
    await deps
      .db(indicatorTable)
      .insert([
        row('5m', '2025-01-10T15:00:00Z'),
        row('5m', '2025-02-14T15:00:00Z'),
        row('5m', '2025-02-16T15:00:00Z'),
        row('1d', '2025-01-10T21:00:00Z'),
      ]);
  }
});

afterAll(async () => {
  await closeDeps(deps);
  await scratch?.drop();
});

const partitionNames = async (table: 'ticks' | 'bars_5m'): Promise<string[]> =>
  (await deps.repos.retention.partitions(table)).map((p) => p.name).sort();
const tickTimes = async (): Promise<string[]> =>
  (await deps.db('ticks').select<{ ts: Date }[]>('ts').orderBy('ts')).map((r) => r.ts.toISOString());
const changeRows = async (): Promise<string[]> =>
  (
    await deps.db('bar_changes').select<{ level: string; from_ts: Date }[]>('level', 'from_ts').orderBy('id')
  ).map((r) => `${r.level} ${r.from_ts.toISOString()}`);

describe('maintenance.retention', () => {
  it('reads partition bounds from the catalog', async () => {
    // indicator_values (wide) or the original long indicators table: one of them always exists.
    expect(indicatorTable).not.toBeNull();
    const parts = await deps.repos.retention.partitions('ticks');
    expect(parts[0]).toEqual({
      table: 'ticks',
      name: 'ticks_legacy_dec',
      from: new Date('2024-12-01T00:00:00Z'),
      to: new Date('2025-01-01T00:00:00Z'),
    });
    expect(await deps.repos.retention.oldestPartitionStart('bars_5m')).toEqual(
      new Date('2025-01-01T00:00:00Z'),
    );
  });

  it('reports without changing anything on a dry run', async () => {
    const before = {
      ticks: await partitionNames('ticks'),
      bars: await partitionNames('bars_5m'),
      tickTimes: await tickTimes(),
      changes: await changeRows(),
    };
    const res = await maintenanceRetention(deps, { dryRun: true }, directContext());
    expect(res.dryRun).toBe(true);
    expect(res.created.map((p) => p.name)).toEqual([
      'ticks_p2025_06',
      'ticks_p2025_07',
      'ticks_p2025_08',
      'bars_5m_p2025_06',
      'bars_5m_p2025_07',
      'bars_5m_p2025_08',
    ]);
    expect(res.dropped.map((p) => p.name)).toEqual([
      'ticks_legacy_dec',
      'ticks_p2025_01',
      'ticks_p2025_02',
      'ticks_p2025_03',
      'bars_5m_p2025_01',
    ]);
    expect(res.changesPruned).toBe(3);
    expect(res.indicators).toEqual({ table: indicatorTable, rows: 2 });
    expect({
      ticks: await partitionNames('ticks'),
      bars: await partitionNames('bars_5m'),
      tickTimes: await tickTimes(),
      changes: await changeRows(),
    }).toEqual(before);
  });

  it('creates partitions ahead, drops expired ones and leaves kept rows untouched', async () => {
    const keptTicks = await deps.db('ticks').where('ts', '>=', '2025-04-01').orderBy('ts');
    const keptBars = await deps.db('bars_5m').where('bucket', '>=', '2025-02-01').orderBy('bucket');
    const ctx = directContext();
    const res = await maintenanceRetention(deps, { dryRun: false }, ctx);
    expect(res.cutoffs).toEqual({ ticks: '2025-04-16T12:00:00.000Z', bars_5m: '2025-02-15T12:00:00.000Z' });
    expect(res.created).toHaveLength(6);
    expect(res.dropped.map((p) => `${p.name} ${p.from}..${p.to}`)).toEqual([
      'ticks_legacy_dec 2024-12-01T00:00:00.000Z..2025-01-01T00:00:00.000Z',
      'ticks_p2025_01 2025-01-01T00:00:00.000Z..2025-02-01T00:00:00.000Z',
      'ticks_p2025_02 2025-02-01T00:00:00.000Z..2025-03-01T00:00:00.000Z',
      'ticks_p2025_03 2025-03-01T00:00:00.000Z..2025-04-01T00:00:00.000Z',
      'bars_5m_p2025_01 2025-01-01T00:00:00.000Z..2025-02-01T00:00:00.000Z',
    ]);
    expect(await partitionNames('ticks')).toEqual([
      'ticks_p2025_04',
      'ticks_p2025_06',
      'ticks_p2025_07',
      'ticks_p2025_08',
    ]);
    expect(await partitionNames('bars_5m')).toEqual([
      'bars_5m_p2025_02',
      'bars_5m_p2025_03',
      'bars_5m_p2025_04',
      'bars_5m_p2025_06',
      'bars_5m_p2025_07',
      'bars_5m_p2025_08',
    ]);
    expect(await deps.db('ticks').orderBy('ts')).toEqual(keptTicks);
    expect(await deps.db('bars_5m').orderBy('bucket')).toEqual(keptBars);
    expect(res.changesPruned).toBe(3);
    expect(await changeRows()).toEqual(['5m 2025-03-31T23:00:00.000Z', '1d 2025-02-10T15:00:00.000Z']);
    expect(res.indicators).toEqual({ table: indicatorTable, rows: 2 });
    const left = await deps
      .db(indicatorTable!)
      .select<{ interval: string; ts: Date }[]>('interval', 'ts')
      .orderBy(['interval', 'ts']);
    expect(left.map((r) => `${r.interval} ${r.ts.toISOString()}`)).toEqual([
      '1d 2025-01-10T21:00:00.000Z',
      '5m 2025-02-16T15:00:00.000Z',
    ]);
    expect(ctx.logs.join('\n')).toMatch(/ticks: 3 partition\(s\) created .* 4 dropped/);

    // A second run finds nothing to do.
    const again = await maintenanceRetention(deps, { dryRun: false }, directContext());
    expect([again.created, again.dropped, again.changesPruned]).toEqual([[], [], 0]);
  });

  it('keeps rollups from deleting bars whose ticks retention dropped', async () => {
    const feb = { security_id: securityId, bucket: new Date('2025-02-10T15:00:00Z') };
    // An explicit sweep reaching back before the oldest ticks partition starts at that partition.
    const swept = await rollup5m(
      deps,
      { from: '2025-02-01T00:00:00Z', to: '2025-05-01T00:00:00Z' },
      directContext(),
    );
    expect(swept.from).toBe('2025-04-01T00:00:00.000Z');
    // A change reaching back before it is clipped to it.
    await deps.db('bar_changes').insert({
      level: '5m',
      security_id: securityId,
      from_ts: '2025-02-10T15:00:00Z',
      to_ts: '2025-04-11T00:00:00Z',
    });
    const inc = await rollup5m(deps, {}, directContext());
    // With the change kept by retention (2025-03-31 23:00 .. 2025-04-02), merged: April 1 .. 11.
    expect([inc.from, inc.to, inc.ranges]).toEqual([
      '2025-04-01T00:00:00.000Z',
      '2025-04-11T00:00:00.000Z',
      1,
    ]);
    expect(await deps.db('bars_5m').where(feb).first()).toBeDefined();
    // The tick of 2025-04-10 15:00 (price 12) replaced the placeholder bar there.
    const apr = await deps
      .db('bars_5m')
      .where({ security_id: securityId, bucket: new Date('2025-04-10T15:00:00Z') })
      .first();
    expect(apr).toMatchObject({ open: '12.00000000', volume: '10' });
    // Daily: an explicit range before the oldest bars_5m partition starts at its first session.
    const daily = await rollup1d(deps, { from: '2025-01-02', to: '2025-04-30' }, directContext());
    expect(daily.from).toBe('2025-02-01');
  });

  it('still prunes partitions for a bounded query', async () => {
    const plan = async (sql: string): Promise<string> =>
      (await deps.db.raw<{ rows: { 'QUERY PLAN': string }[] }>(`explain ${sql}`)).rows
        .map((r) => r['QUERY PLAN'])
        .join('\n');
    const ticksPlan = await plan(
      `select * from ticks where security_id = ${securityId} and ts >= '2025-04-10T00:00:00Z' and ts < '2025-04-11T00:00:00Z'`,
    );
    expect(ticksPlan).toMatch(/ticks_p2025_04/);
    expect(ticksPlan.match(/ticks_p\d{4}_\d{2}/g)!.every((n) => n === 'ticks_p2025_04')).toBe(true);
    const barsPlan = await plan(
      `select * from bars_5m where bucket >= '2025-07-01T00:00:00Z' and bucket < '2025-07-02T00:00:00Z'`,
    );
    expect(barsPlan).toMatch(/bars_5m_p2025_07/);
    expect(barsPlan.match(/bars_5m_p\d{4}_\d{2}/g)!.every((n) => n === 'bars_5m_p2025_07')).toBe(true);
  });
});
