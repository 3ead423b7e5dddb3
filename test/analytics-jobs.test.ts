/**
 * analytics.indicators and analytics.risk through real BullMQ queues and workers, on a database of
 * this file's own with inserted securities and bars: the stored indicators equal the pure
 * functions on the same split-adjusted bars (bit for bit: they travel as binary doubles) and
 * TA-Lib on the adjusted history to 1e-9, daily and 5-minute; running twice writes nothing, a
 * corrected bar rewrites exactly that security's rows from the bar on, a split learned later
 * rewrites the rows it affects, and the risk rows match core/domain/risk.ts on split-adjusted
 * closes with beta against the configured benchmark.
 */
import { QueueEvents, type Job } from 'bullmq';
import { talibIndicators } from './talib-oracle.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { computeIndicators, INDICATOR_NAMES } from '../core/domain/indicators.ts';
import { riskMetrics, type CloseSeries } from '../core/domain/risk.ts';
import { sessionsBetween } from '../core/calendar/nyse.ts';
import type { Deps } from '../core/deps.ts';
import { createRedis } from '../core/redis.ts';
import type { IndicatorsResult, RiskResult } from '../jobs/processors/analytics.ts';
import { fiveMinuteWindow } from '../jobs/processors/analytics.ts';
import { createQueues, type QueueSet } from '../jobs/queues.ts';
import { startWorkers, type WorkerHost } from '../jobs/worker-host.ts';
import { closeDeps, dropPrefix, scratchDatabase, testConfig, testDeps, prng } from './support.ts';

let deps: Deps;
let queues: QueueSet;
let host: WorkerHost;
let scratch: { url: string; drop: () => Promise<void> };
const events: Record<string, QueueEvents> = {};

/** 300 NYSE sessions ending 2024-06-28 (includes the 2023-11-24 13:00 early close). */
const SESSIONS = sessionsBetween('2023-04-01', '2024-06-28')
  .slice(-300)
  .map((s) => s.date);

interface DailyFixture {
  ticker: string;
  dates: string[];
  high: string[];
  low: string[];
  close: string[];
}

/** Bars from closes: high and low a random 0–1% around the close, all at 8 decimals like the table. */
function barsFrom(ticker: string, dates: string[], closes: number[], seed: number): DailyFixture {
  const r = prng(seed);
  const f = (x: number): string => x.toFixed(8);
  return {
    ticker,
    dates,
    close: closes.map(f),
    high: closes.map((c) => f(c * (1 + 0.01 * r()))),
    low: closes.map((c) => f(c * (1 - 0.01 * r()))),
  };
}

const benchReturns = SESSIONS.slice(1).map((_, i) => 0.012 * Math.sin(i * 1.3) + 0.004 * Math.cos(i * 0.21));
const compound = (start: number, rets: number[]): number[] =>
  rets.reduce((acc, r) => [...acc, acc[acc.length - 1]! * (1 + r)], [start]);

const fixtures: DailyFixture[] = [
  barsFrom('BMK', SESSIONS, compound(400, benchReturns), 1),
  // Exactly 1.5× the benchmark's daily returns (up to the 8-decimal rounding of the closes).
  barsFrom(
    'AAA',
    SESSIONS,
    compound(
      50,
      benchReturns.map((r) => 1.5 * r),
    ),
    2,
  ),
  // Missing sessions (every 7th) and a 2:1 split on 2024-02-01: raw closes halve there.
  (() => {
    const r = prng(3);
    const dates = SESSIONS.filter((_, i) => i % 7 !== 3);
    let p = 120;
    const closes = dates.map((d) => {
      p *= Math.exp((r() - 0.5) * 0.05);
      return d >= '2024-02-01' ? p / 2 : p;
    });
    return barsFrom('BBB', dates, closes, 4);
  })(),
  // Shorter than every lookback but RSI's: mostly nulls, and too few returns for risk.
  barsFrom('CCC', SESSIONS.slice(-16), compound(10, Array(15).fill(0.01)), 5),
];

const ids = new Map<string, number>();
const BBB_SPLIT = { exDate: '2024-02-01', ratio: 2 };

/**
 * A fixture's bars on the split-adjusted basis (SPEC §8), as the test computes it independently of
 * the database: high, low and close before each ex-date ÷ the product of the ratios from then on.
 */
function splitAdjusted(
  f: { dates: string[]; high: string[]; low: string[]; close: string[] },
  splits: { exDate: string; ratio: number }[],
): { high: number[]; low: number[]; close: number[] } {
  const factor = f.dates.map((d) => splits.filter((s) => d < s.exDate).reduce((p, s) => p * s.ratio, 1));
  const adj = (col: string[]) => col.map((v, i) => Number(v) / factor[i]!);
  return { high: adj(f.high), low: adj(f.low), close: adj(f.close) };
}

/**
 * Stored rows against TA-Lib's values: equal to 1e-9 (absolute + relative), null exactly where
 * TA-Lib has no value. Returns the largest absolute and relative differences seen.
 */
function expectTalib(
  stored: Record<string, unknown>[],
  want: Record<string, Float64Array>,
  label: string,
): { abs: number; rel: number } {
  const bad: string[] = [];
  let abs = 0;
  let rel = 0;
  for (const name of INDICATOR_NAMES) {
    stored.forEach((row, i) => {
      const e = want[name]![i]!;
      const a = row[name] as number | null;
      if (Number.isNaN(e)) {
        if (a !== null && bad.length < 5) bad.push(`${name}[${i}] got ${a}, TA-Lib none`);
        return;
      }
      const d = a === null ? Infinity : Math.abs(a - e);
      abs = Math.max(abs, d);
      if (e !== 0) rel = Math.max(rel, d / Math.abs(e));
      if (!(d <= 1e-9 * (1 + Math.abs(e))) && bad.length < 5) bad.push(`${name}[${i}] got ${a}, TA-Lib ${e}`);
    });
  }
  expect(bad, label).toEqual([]);
  return { abs, rel };
}

async function insertDaily(f: DailyFixture): Promise<void> {
  await deps.db.raw(
    `insert into bars_1d (security_id, session_date, open, high, low, close, volume, source)
     select ?, d, c, h, l, c, 1000, 'test'
       from unnest(?::date[], ?::numeric[], ?::numeric[], ?::numeric[]) as t(d, h, l, c)`,
    [ids.get(f.ticker)!, f.dates, f.high, f.low, f.close],
  );
}

async function run<R>(name: 'analytics.indicators' | 'analytics.risk', payload: object): Promise<R> {
  const job = (await queues.enqueue(name, payload as never)) as Job;
  return (await job.waitUntilFinished(events[name]!, 60_000)) as R;
}

/** Every stored indicator row of a security, oldest first, with its bookkeeping columns. */
async function storedRows(securityId: number, interval = '1d') {
  return (await deps
    .db('indicator_values')
    .where({ security_id: securityId, interval })
    .orderBy('ts')
    .select('*')) as ({ ts: Date; input_hash: string; computed_at: Date } & Record<string, number | null>)[];
}

/** The pure functions on a fixture's bars, as stored values (NaN → null). */
function expectedRows(f: {
  high: (string | number)[];
  low: (string | number)[];
  close: (string | number)[];
}) {
  const all = computeIndicators({
    high: f.high.map(Number),
    low: f.low.map(Number),
    close: f.close.map(Number),
  });
  return f.close.map((_, i) =>
    Object.fromEntries(INDICATOR_NAMES.map((n) => [n, Number.isNaN(all[n][i]!) ? null : all[n][i]!])),
  );
}

const valuesOf = (row: Record<string, unknown>) =>
  Object.fromEntries(INDICATOR_NAMES.map((n) => [n, row[n]]));

beforeAll(async () => {
  scratch = await scratchDatabase();
  deps = testDeps({ config: testConfig({ DATABASE_URL: scratch.url, RISK_BENCHMARK: 'BMK' }) });
  queues = createQueues(deps.config);
  host = startWorkers(deps, { names: ['analytics.indicators', 'analytics.risk'] });
  for (const name of ['analytics.indicators', 'analytics.risk']) {
    events[name] = new QueueEvents(name, {
      connection: createRedis(deps.config, { forWorker: true }),
      prefix: deps.config.queue.prefix,
    });
    await events[name].waitUntilReady();
  }
  const tickers = [...fixtures.map((f) => f.ticker), 'NOB', 'FIV', 'LATE', 'FIS'];
  const rows = await deps.db.raw<{ rows: { id: number; ticker: string }[] }>(
    `insert into securities (security_id, ticker, security_name, security_type, asset_class, currency, exchange)
     select 'SEC-' || lpad(n::text, 4, '0'), t, 'Test ' || t, 'EQUITY', 'Equity', 'USD', 'XNYS'
       from unnest(?::text[]) with ordinality as x(t, n)
     returning id, ticker`,
    [tickers],
  );
  for (const r of rows.rows) ids.set(r.ticker, r.id);
  for (const f of fixtures) await insertDaily(f);
  await deps.db('corporate_actions').insert({
    action_id: 'CA-BBB-SPLIT',
    security_id: ids.get('BBB'),
    action_type: 'STOCK_SPLIT',
    ex_date: '2024-02-01',
    ratio: '2',
    source: 'test',
  });
});

afterAll(async () => {
  await host?.close();
  await Promise.all(Object.values(events).map((e) => e.close()));
  await queues?.close();
  if (deps) {
    await dropPrefix(deps);
    await closeDeps(deps);
  }
  await scratch?.drop();
});

describe('analytics.indicators (1d) through the queue', () => {
  let first: IndicatorsResult;

  it('stores, per bar, exactly the pure functions’ values on the same bars', async () => {
    first = await run<IndicatorsResult>('analytics.indicators', { interval: '1d' });
    const bars = fixtures.reduce((n, f) => n + f.dates.length, 0);
    expect(first).toMatchObject({
      interval: '1d',
      securities: 4,
      barsRead: bars,
      rowsWritten: bars,
      rowsDeleted: 0,
    });
    for (const f of fixtures) {
      const stored = await storedRows(ids.get(f.ticker)!);
      // BBB's 2:1 split: its history before 2024-02-01 enters halved (exact in binary).
      const input = f.ticker === 'BBB' ? splitAdjusted(f, [BBB_SPLIT]) : f;
      expect(stored.map(valuesOf), f.ticker).toEqual(expectedRows(input));
    }
    // Daily rows are stamped at the session close: 16:00 New York, 13:00 on an early close.
    const aaa = await storedRows(ids.get('AAA')!);
    expect(aaa.at(-1)!.ts.toISOString()).toBe('2024-06-28T20:00:00.000Z');
    expect(aaa[SESSIONS.indexOf('2023-11-24')]!.ts.toISOString()).toBe('2023-11-24T18:00:00.000Z');
    // Warm-up is null; the short series has RSI and ATR at index 14 and nothing needing more.
    const ccc = await storedRows(ids.get('CCC')!);
    expect(ccc[13]!.rsi_14).toBeNull();
    expect(typeof ccc[14]!.rsi_14).toBe('number');
    expect(ccc.every((r) => r.macd === null && r.stoch_k === null)).toBe(true);

    const logs = await queues
      .get('analytics.indicators')
      .getJobLogs((await queues.get('analytics.indicators').getCompleted())[0]!.id!);
    expect(logs.logs.join('\n')).toMatch(/batch 1\/1: 4 securities/);
  });

  it('daily indicators equal TA-Lib on the split-adjusted history to 1e-9; the bars stay as traded', async () => {
    const bbb = fixtures[2]!;
    const stored = await storedRows(ids.get('BBB')!);
    const adjusted = splitAdjusted(bbb, [BBB_SPLIT]);
    const diff = expectTalib(stored, await talibIndicators(adjusted), 'BBB');
    if (process.env.REPORT_DIFFS) console.log('BBB vs TA-Lib', diff);
    // Not the as-traded series: the raw history's SMA200 would sit far above the adjusted one.
    const rawSma = (await talibIndicators(splitAdjusted(bbb, []))).sma_200!;
    expect(Math.abs(stored.at(-1)!.sma_200! - rawSma.at(-1)!)).toBeGreaterThan(1);
    const firstBar = await deps
      .db('bars_1d')
      .where({ security_id: ids.get('BBB') })
      .orderBy('session_date')
      .first();
    expect(firstBar.close).toBe(bbb.close[0]);
  });

  it('a split learned later rewrites the rows it affects, to TA-Lib on the adjusted history', async () => {
    // LATE trades through a 3:1 split on SESSIONS[150] (raw prices drop to a third there); the
    // split arrives only after its indicators were stored.
    const r = prng(21);
    let p = 900;
    const closes = SESSIONS.map((d) => {
      p *= Math.exp((r() - 0.5) * 0.04);
      return d >= SESSIONS[150]! ? p / 3 : p;
    });
    const late = barsFrom('LATE', SESSIONS, closes, 22);
    const id = ids.get('LATE')!;
    try {
      await insertDaily(late);
      const before = await run<IndicatorsResult>('analytics.indicators', {
        interval: '1d',
        symbols: ['LATE'],
      });
      expect(before).toMatchObject({ rowsWritten: 300, rowsDeleted: 0 });
      expect((await storedRows(id)).map(valuesOf)).toEqual(expectedRows(late));

      await deps.db('corporate_actions').insert({
        action_id: 'CA-LATE-SPLIT',
        security_id: id,
        action_type: 'STOCK_SPLIT',
        ex_date: SESSIONS[150],
        ratio: '3',
        source: 'test',
      });
      const after = await run<IndicatorsResult>('analytics.indicators', {
        interval: '1d',
        symbols: ['LATE'],
      });
      // The first bar is adjusted, so every row's input changed.
      expect(after).toMatchObject({ securitiesChanged: 1, rowsWritten: 300, rowsDeleted: 300 });
      const adjusted = splitAdjusted(late, [{ exDate: SESSIONS[150]!, ratio: 3 }]);
      const diff = expectTalib(await storedRows(id), await talibIndicators(adjusted), 'LATE');
      if (process.env.REPORT_DIFFS) console.log('LATE vs TA-Lib', diff);
      const again = await run<IndicatorsResult>('analytics.indicators', {
        interval: '1d',
        symbols: ['LATE'],
      });
      expect(again).toMatchObject({ rowsWritten: 0, rowsDeleted: 0 });
    } finally {
      await deps.db('indicator_values').where({ security_id: id }).delete();
      await deps.db('corporate_actions').where({ security_id: id }).delete();
      await deps.db('bars_1d').where({ security_id: id }).delete();
    }
  });

  it('serves the rows through indicatorSeries, newest last', async () => {
    const id = ids.get('AAA')!;
    const last3 = await deps.repos.analytics.indicatorSeries(id, '1d', { limit: 3 });
    expect(last3.map((r) => r.ts.toISOString().slice(0, 10))).toEqual(SESSIONS.slice(-3));
    expect(last3[2]!.values).toEqual(expectedRows(fixtures[1]!).at(-1));
    const range = await deps.repos.analytics.indicatorSeries(id, '1d', {
      from: new Date('2024-06-01T00:00:00Z'),
      to: new Date('2024-06-10T23:59:59Z'),
    });
    expect(range.map((r) => r.ts.toISOString().slice(0, 10))).toEqual(
      SESSIONS.filter((d) => d >= '2024-06-01' && d <= '2024-06-10'),
    );
  });

  it('writes nothing when run again', async () => {
    const before = await deps.db('indicator_values').orderBy(['security_id', 'ts']).select('*');
    const again = await run<IndicatorsResult>('analytics.indicators', { interval: '1d' });
    expect(again).toMatchObject({ rowsWritten: 0, rowsDeleted: 0, securitiesChanged: 0 });
    expect(await deps.db('indicator_values').orderBy(['security_id', 'ts']).select('*')).toEqual(before);
  });

  it('after a corrected bar, rewrites that security from the bar on and nothing else', async () => {
    const aaa = fixtures[1]!;
    const id = ids.get('AAA')!;
    const k = 200;
    const before = await storedRows(id);
    const otherBefore = await storedRows(ids.get('BMK')!);
    aaa.close[k] = (Number(aaa.close[k]) * 1.003).toFixed(8);
    aaa.high[k] = (Math.max(Number(aaa.high[k]), Number(aaa.close[k])) * 1.001).toFixed(8);
    await deps
      .db('bars_1d')
      .where({ security_id: id, session_date: aaa.dates[k] })
      .update({ close: aaa.close[k], high: aaa.high[k], open: aaa.close[k] });

    const r = await run<IndicatorsResult>('analytics.indicators', {
      interval: '1d',
      symbols: ['AAA', 'BMK'],
    });
    expect(r).toMatchObject({
      securities: 2,
      securitiesChanged: 1,
      rowsWritten: 300 - k,
      rowsDeleted: 300 - k,
    });
    const after = await storedRows(id);
    expect(after.map(valuesOf)).toEqual(expectedRows(aaa));
    expect(after.slice(0, k)).toEqual(before.slice(0, k)); // untouched, computed_at included
    expect(after[k]!.ema_12).not.toBe(before[k]!.ema_12);
    expect(await storedRows(ids.get('BMK')!)).toEqual(otherBefore);
  });

  it('appends a new bar as one row, and drops the rows of bars that vanished', async () => {
    const aaa = fixtures[1]!;
    const id = ids.get('AAA')!;
    aaa.dates.push('2024-07-01');
    aaa.close.push(aaa.close.at(-1)!);
    aaa.high.push(aaa.high.at(-1)!);
    aaa.low.push(aaa.low.at(-1)!);
    await insertDaily({
      ...aaa,
      dates: aaa.dates.slice(-1),
      close: aaa.close.slice(-1),
      high: aaa.high.slice(-1),
      low: aaa.low.slice(-1),
    });
    const appended = await run<IndicatorsResult>('analytics.indicators', {
      interval: '1d',
      symbols: ['AAA'],
    });
    expect(appended).toMatchObject({ rowsWritten: 1, rowsDeleted: 0 });

    await deps.db('bars_1d').where({ security_id: id }).whereIn('session_date', aaa.dates.slice(-2)).delete();
    for (const col of [aaa.dates, aaa.close, aaa.high, aaa.low]) col.splice(-2, 2);
    const dropped = await run<IndicatorsResult>('analytics.indicators', { interval: '1d', symbols: ['AAA'] });
    expect(dropped).toMatchObject({ rowsWritten: 0, rowsDeleted: 2 });
    expect((await storedRows(id)).map(valuesOf)).toEqual(expectedRows(aaa));
  });

  it('fails permanently on an unknown symbol, naming it', async () => {
    const job = (await queues.enqueue('analytics.indicators', { symbols: ['AAA', 'NOPE'] })) as Job;
    await expect(job.waitUntilFinished(events['analytics.indicators']!, 30_000)).rejects.toThrow(
      /symbols: unknown ticker\(s\) NOPE/,
    );
    expect((await queues.get('analytics.indicators').getJob(job.id!))?.attemptsMade).toBe(1);
  });
});

describe('analytics.indicators (5m) through the queue', () => {
  it('stores the last 20 sessions, computed from the week-anchored window, and is idempotent', async () => {
    const id = ids.get('FIV')!;
    const days = sessionsBetween('2024-05-01', '2024-06-28');
    const r = prng(9);
    const bucket: string[] = [];
    const h: string[] = [];
    const l: string[] = [];
    const c: string[] = [];
    let p = 30;
    for (const s of days) {
      for (let t = s.openAt.getTime(); t < s.closeAt.getTime(); t += 300_000) {
        p *= Math.exp((r() - 0.5) * 0.004);
        bucket.push(new Date(t).toISOString());
        c.push(p.toFixed(8));
        h.push((p * (1 + 0.002 * r())).toFixed(8));
        l.push((p * (1 - 0.002 * r())).toFixed(8));
      }
    }
    await deps.db.raw(`select ensure_month_partitions('bars_5m', ?, ?)`, [
      '2024-05-01T00:00:00Z',
      '2024-07-01T00:00:00Z',
    ]);
    await deps.db.raw(
      `insert into bars_5m (security_id, bucket, open, high, low, close, volume, pv, vwap, trade_count)
       select ?, b, c, h, l, c, 100, c * 100, c, 5
         from unnest(?::timestamptz[], ?::numeric[], ?::numeric[], ?::numeric[]) as t(b, h, l, c)`,
      [id, bucket, h, l, c],
    );

    const res = await run<IndicatorsResult>('analytics.indicators', { interval: '5m', symbols: ['FIV'] });
    const w = fiveMinuteWindow('2024-06-28');
    expect(res.window).toEqual({
      readFrom: w.readFrom.toISOString(),
      storedFrom: w.storedFrom.toISOString(),
    });
    // 20 sessions stored (the 2024-06-19 holiday is not one); the read starts on a Monday.
    const storedDays = sessionsBetween('2024-05-01', '2024-06-28').slice(-20);
    expect(w.storedFrom.getTime()).toBeLessThanOrEqual(storedDays[0]!.openAt.getTime());
    expect(w.readFrom.getUTCDay()).toBe(1);

    const input = bucket.map((b, i) => ({ b, i })).filter((x) => Date.parse(x.b) >= w.readFrom.getTime());
    const expected = expectedRows({
      high: input.map((x) => h[x.i]!),
      low: input.map((x) => l[x.i]!),
      close: input.map((x) => c[x.i]!),
    });
    const firstStored = input.findIndex((x) => Date.parse(x.b) >= w.storedFrom.getTime());
    const stored = await storedRows(id, '5m');
    expect(stored).toHaveLength(
      storedDays.reduce((n, s) => n + (s.closeAt.getTime() - s.openAt.getTime()) / 300_000, 0),
    );
    expect(stored.map((s) => s.ts.toISOString())).toEqual(
      input.slice(firstStored).map((x) => new Date(x.b).toISOString()),
    );
    expect(stored.map(valuesOf)).toEqual(expected.slice(firstStored));

    const again = await run<IndicatorsResult>('analytics.indicators', { interval: '5m', symbols: ['FIV'] });
    expect(again).toMatchObject({ rowsWritten: 0, rowsDeleted: 0 });
  });
});

describe('analytics.indicators (5m) on split-adjusted history', () => {
  it('divides the 5-minute bars before an ex-date by the split, by their New York session date', async () => {
    const id = ids.get('FIS')!;
    const days = sessionsBetween('2024-05-01', '2024-06-28');
    const exDate = '2024-06-17'; // inside the 20 stored sessions
    const r = prng(31);
    const bucket: string[] = [];
    const h: string[] = [];
    const l: string[] = [];
    const c: string[] = [];
    let p = 46_000;
    for (const s of days) {
      const f = s.date >= exDate ? 2 : 1;
      for (let t = s.openAt.getTime(); t < s.closeAt.getTime(); t += 300_000) {
        p *= Math.exp((r() - 0.5) * 0.004);
        bucket.push(new Date(t).toISOString());
        c.push((p / f).toFixed(8));
        h.push(((p * (1 + 0.002 * r())) / f).toFixed(8));
        l.push(((p * (1 - 0.002 * r())) / f).toFixed(8));
      }
    }
    await deps.db.raw(`select ensure_month_partitions('bars_5m', ?, ?)`, [
      '2024-05-01T00:00:00Z',
      '2024-07-01T00:00:00Z',
    ]);
    await deps.db.raw(
      `insert into bars_5m (security_id, bucket, open, high, low, close, volume, pv, vwap, trade_count)
       select ?, b, c, h, l, c, 100, c * 100, c, 5
         from unnest(?::timestamptz[], ?::numeric[], ?::numeric[], ?::numeric[]) as t(b, h, l, c)`,
      [id, bucket, h, l, c],
    );
    // Daily bars (the newest on/after the ex-date, so the split counts) and the split itself.
    await deps.db.raw(
      `insert into bars_1d (security_id, session_date, open, high, low, close, volume, source)
       select ?, d, 100, 100, 100, 100, 1, 'test' from unnest(?::date[]) as t(d)`,
      [id, days.map((s) => s.date)],
    );
    await deps.db('corporate_actions').insert({
      action_id: 'CA-FIS-SPLIT',
      security_id: id,
      action_type: 'STOCK_SPLIT',
      ex_date: exDate,
      ratio: '2',
      source: 'test',
    });
    try {
      await run<IndicatorsResult>('analytics.indicators', { interval: '5m', symbols: ['FIS'] });
      const w = fiveMinuteWindow('2024-06-28');
      const exAt = days.find((s) => s.date === exDate)!.openAt.getTime();
      const input = bucket.map((b, i) => ({ b, i })).filter((x) => Date.parse(x.b) >= w.readFrom.getTime());
      const adj = (col: string[]) =>
        input.map((x) => (Date.parse(x.b) < exAt ? Number(col[x.i]!) / 2 : Number(col[x.i]!)));
      const expected = expectedRows({ high: adj(h), low: adj(l), close: adj(c) });
      const firstStored = input.findIndex((x) => Date.parse(x.b) >= w.storedFrom.getTime());
      const stored = await storedRows(id, '5m');
      expect(stored.map(valuesOf)).toEqual(expected.slice(firstStored));
    } finally {
      await deps.db('indicator_values').where({ security_id: id }).delete();
      await deps.db('corporate_actions').where({ security_id: id }).delete();
      await deps.db('bars_1d').where({ security_id: id }).delete();
      await deps.db('bars_5m').where({ security_id: id }).delete();
    }
  });
});

describe('analytics.risk through the queue', () => {
  it('stores volatility, VaR, ES and beta as the pure functions give them', async () => {
    const res = await run<RiskResult>('analytics.risk', {});
    expect(res).toMatchObject({
      benchmark: 'BMK',
      windowDays: 250,
      securities: 4,
      rowsWritten: 4,
      insufficient: 1,
    });

    const closes = await deps.repos.analytics.dailyCloses([ids.get('BMK')!]);
    const bench = closes.get(ids.get('BMK')!)!;
    const aaa = await deps.repos.analytics.latestRisk(ids.get('AAA')!);
    const series = (f: DailyFixture): CloseSeries => ({ dates: f.dates, closes: f.close.map(Number) });
    const want = riskMetrics(series(fixtures[1]!), bench, 250)!;
    // AAA's last two bars were removed above: its latest close is 2024-06-27.
    expect(want.asOf).toBe('2024-06-27');
    expect(aaa).toEqual({
      asOf: want.asOf,
      windowDays: 250,
      volatility: want.volatility,
      var95: want.var95,
      var99: want.var99,
      es95: want.es95,
      es99: want.es99,
      beta: want.beta,
      benchmark: 'BMK',
    });
    // 1.5× the benchmark's returns, but for the one bar corrected above by 0.3% (two returns).
    expect(Math.abs(aaa!.beta! - 1.5)).toBeLessThan(1e-3);
    expect(aaa!.var99!).toBeGreaterThan(aaa!.var95!);
    expect(aaa!.es95!).toBeGreaterThanOrEqual(aaa!.var95!);

    // The split is taken out of BBB's returns: no −50% day in its tail.
    const bbb = await deps.repos.analytics.latestRisk(ids.get('BBB')!);
    expect(bbb!.es99!).toBeLessThan(0.1);
    const ccc = await deps.repos.analytics.latestRisk(ids.get('CCC')!);
    expect(ccc).toMatchObject({ volatility: null, var95: null, es99: null, beta: null });
    expect(await deps.repos.analytics.latestRisk(ids.get('NOB')!)).toBeUndefined();
  });

  it('reads split-adjusted closes: BBB before its 2:1 ex-date halved, an ex-date on a missing session across it', async () => {
    const bbb = fixtures[2]!;
    const closes = (await deps.repos.analytics.dailyCloses([ids.get('BBB')!])).get(ids.get('BBB')!)!;
    expect(closes.dates).toEqual(bbb.dates);
    expect(closes.closes).toEqual(splitAdjusted(bbb, [BBB_SPLIT]).close);
    // A 1:10 reverse split on a date BBB has no bar for applies to the return across the gap.
    const gap = SESSIONS.find((d, i) => i % 7 === 3 && d < '2024-01-01')!;
    await deps.db('corporate_actions').insert({
      action_id: 'CA-BBB-RSPLIT',
      security_id: ids.get('BBB'),
      action_type: 'REVERSE_SPLIT',
      ex_date: gap,
      ratio: '0.1',
      source: 'test',
    });
    try {
      const adjusted = (await deps.repos.analytics.dailyCloses([ids.get('BBB')!])).get(ids.get('BBB')!)!;
      const k = bbb.dates.findIndex((d) => d > gap);
      const raw = bbb.close.map(Number);
      expect(adjusted.closes[k]! / adjusted.closes[k - 1]!).toBeCloseTo((raw[k]! * 0.1) / raw[k - 1]!, 12);
    } finally {
      await deps.db('corporate_actions').where({ action_id: 'CA-BBB-RSPLIT' }).delete();
    }
  });

  it('writes nothing when run again, and honours asOf', async () => {
    const again = await run<RiskResult>('analytics.risk', {});
    expect(again.rowsWritten).toBe(0);
    const past = await run<RiskResult>('analytics.risk', { symbols: ['AAA'], asOf: '2024-03-31' });
    expect(past).toMatchObject({ asOf: '2024-03-31', rowsWritten: 1 });
    const row = await deps
      .db('risk_metrics')
      .where({ security_id: ids.get('AAA') })
      .orderBy('as_of_date')
      .first();
    expect(row.as_of_date).toBe('2024-03-28'); // the last session on or before 2024-03-31
  });

  it('without the benchmark in the security master, beta is null', async () => {
    const other = testDeps({ config: testConfig({ DATABASE_URL: scratch.url, RISK_BENCHMARK: 'NOSUCH' }) });
    try {
      const { analyticsRisk } = await import('../jobs/processors/analytics.ts');
      const { directContext } = await import('../jobs/types.ts');
      const r = await analyticsRisk(other, { symbols: ['AAA'], asOf: '2024-05-31' }, directContext());
      expect(r.benchmark).toBeNull();
      const row = await other
        .db('risk_metrics')
        .where({ security_id: ids.get('AAA'), as_of_date: '2024-05-31' })
        .first();
      expect(row).toMatchObject({ beta: null, benchmark_id: null });
      expect(row.var_95).toBeGreaterThan(0);
    } finally {
      await closeDeps(other);
    }
  });
});
