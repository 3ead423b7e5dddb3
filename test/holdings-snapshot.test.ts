/**
 * holdings.snapshot (issue 9) on a database of this file's own: on generated random books (trades
 * long and short, splits applied through ledger rows, a corrected action, missing closes) the
 * stored holdings of every session equal an independent replay of the trades and the ledger
 * (quantity = Σ signed trades + Σ ledger deltas; MV = Q·P·X to the cent; average cost), positions
 * at zero are not written; a re-run after a correction replaces the range exactly; a run killed
 * after some months resumes from its checkpoints; it runs through a real queue and worker; and bad
 * input fails permanently, naming the field.
 */
import { QueueEvents } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sessionsBetween } from '../core/calendar/nyse.ts';
import type { Deps } from '../core/deps.ts';
import { dec, round, ZERO, type Dec } from '../core/domain/money.ts';
import { replayPosition } from '../core/domain/books.ts';
import { createQueues, type QueueSet } from '../jobs/queues.ts';
import {
  holdingIntervals,
  holdingsSnapshot,
  monthChunks,
  varianceQuarterly,
} from '../jobs/processors/holdings.ts';
import { directContext } from '../jobs/types.ts';
import { startWorkers, type WorkerHost } from '../jobs/worker-host.ts';
import {
  addAction,
  addCloses,
  addFx,
  addLedger,
  addPortfolio,
  addSecurity,
  addTrade,
  holdingsOf,
  type HoldingRow,
} from './books-fixtures.ts';
import { createRedis } from '../core/redis.ts';
import { closeJobTest, createJobRunner, type JobRunner } from './job-runner.ts';
import { kill, killAll, startWorkerProcess, until } from './worker-process.ts';
import {
  closeDeps,
  dropPrefix,
  frozenClock,
  scratchDatabase,
  testConfig,
  testDeps,
  uniquePrefix,
  prng,
} from './support.ts';

let deps: Deps;
let queues: QueueSet;
let host: WorkerHost;
let runner: JobRunner;
let scratch: { url: string; drop: () => Promise<void> };

const FROM = '2024-01-02';
const TO = '2024-06-28';
const DAYS = sessionsBetween(FROM, TO).map((s) => s.date);
const PORTS = ['PORT-201', 'PORT-202', 'PORT-203'];

interface Sec {
  id: number;
  currency: 'USD' | 'EUR';
  close: Map<string, string>;
}
interface Ev {
  date: string;
  kind: 'action' | 'trade';
  q: Dec;
  price?: string;
  fees?: string;
  ratio?: string;
}
/** The oracle's events per "portfolio/security": trades and ledger deltas as inserted. */
const oracle = new Map<string, Ev[]>();
const secs: Sec[] = [];
const eur = new Map<string, string>();

/** Quantity held at the end of `date` by summation (the definition). */
function heldAt(key: string, date: string): Dec {
  return (oracle.get(key) ?? []).filter((e) => e.date <= date).reduce((s, e) => s.plus(e.q), ZERO);
}

beforeAll(async () => {
  scratch = await scratchDatabase();
  deps = testDeps({
    config: testConfig({ DATABASE_URL: scratch.url }),
    clock: frozenClock('2024-07-01T22:00:00Z'),
  });
  queues = createQueues(deps.config);
  host = startWorkers(deps, { names: ['holdings.snapshot'] });
  runner = createJobRunner(deps, queues);
  const db = deps.db;
  const r = prng(2024);
  for (const p of PORTS) await addPortfolio(db, p);
  const fx: Record<string, string> = {};
  DAYS.forEach((d, i) => {
    // A gap of more than FX_MAX_AGE_DAYS in late March: those days are flagged missing_fx.
    if (d >= '2024-03-18' && d <= '2024-03-26') return;
    fx[d] = (1.08 + 0.02 * Math.sin(i / 9)).toFixed(6);
    eur.set(d, fx[d]);
  });
  await addFx(db, 'EUR', 'USD', fx);
  for (let k = 0; k < 6; k++) {
    const currency = k % 2 ? 'EUR' : 'USD';
    const id = await addSecurity(db, {
      code: `SEC-2${String(k).padStart(3, '0')}`,
      ticker: `RND${k}`,
      currency,
    });
    const close = new Map<string, string>();
    let p = 20 + 30 * r();
    for (const d of DAYS) {
      p *= 1 + (r() - 0.5) * 0.04;
      if (r() < 0.03) continue; // a missing close: flagged that day
      close.set(d, p.toFixed(4));
    }
    await addCloses(db, id, Object.fromEntries(close));
    secs.push({ id, currency, close });
  }
  // Random trades, a split on two securities (ledger rows written from the summed holdings).
  for (const port of PORTS) {
    for (const s of secs) {
      const key = `${port}/${s.id}`;
      const evs: Ev[] = [];
      oracle.set(key, evs);
      let q = ZERO;
      const n = 2 + Math.floor(r() * 8);
      const dates = Array.from({ length: n }, () => DAYS[Math.floor(r() * DAYS.length)]!).sort();
      for (const date of dates) {
        const size = dec(10 * (1 + Math.floor(r() * 20)));
        const long = port !== 'PORT-203';
        let type: 'BUY' | 'SELL' | 'SHORT' | 'COVER';
        let signed: Dec;
        if (long) {
          const sell = q.greaterThan(0) && r() < 0.4;
          const qty = sell ? (r() < 0.3 ? q : minDec(size, q)) : size;
          type = sell ? 'SELL' : 'BUY';
          signed = sell ? qty.negated() : qty;
        } else {
          const cover = q.lessThan(0) && r() < 0.4;
          const qty = cover ? (r() < 0.3 ? q.abs() : minDec(size, q.abs())) : size;
          type = cover ? 'COVER' : 'SHORT';
          signed = cover ? qty : qty.negated();
        }
        if (signed.isZero()) continue;
        const price = (10 + 40 * r()).toFixed(2);
        const fees = (r() * 5).toFixed(2);
        await addTrade(db, {
          portfolio: port,
          securityId: s.id,
          type,
          quantity: signed.abs().toFixed(),
          price,
          date,
          currency: s.currency,
          fees,
        });
        evs.push({ date, kind: 'trade', q: signed, price, fees });
        q = q.plus(signed);
      }
    }
  }
  for (const [k, exDate, ratio] of [
    [0, '2024-03-04', '2'],
    [3, '2024-05-06', '3'],
  ] as const) {
    const s = secs[k]!;
    const action = await addAction(db, {
      securityId: s.id,
      type: 'STOCK_SPLIT',
      exDate,
      ratio,
      currency: s.currency,
    });
    for (const port of PORTS) {
      const key = `${port}/${s.id}`;
      const held = heldAt(key, DAYS[DAYS.indexOf(exDate) - 1]!);
      if (held.isZero()) continue;
      const delta = held.times(ratio).minus(held);
      if (k === 0) {
        // A corrected action: revision 1 applied at 3:1, reversed, then revision 2 at 2:1.
        const wrong = held.times(2);
        await addLedger(db, {
          actionId: action,
          portfolio: port,
          type: 'STOCK_SPLIT',
          exDate,
          currency: s.currency,
          held: held.toFixed(),
          delta: wrong.toFixed(),
          ratio: '3',
        });
        await addLedger(db, {
          actionId: action,
          portfolio: port,
          entry: 'REVERSE',
          type: 'STOCK_SPLIT',
          exDate,
          currency: s.currency,
          held: held.toFixed(),
          delta: wrong.negated().toFixed(),
          ratio: '3',
        });
      }
      await addLedger(db, {
        actionId: action,
        portfolio: port,
        revision: k === 0 ? 2 : 1,
        type: 'STOCK_SPLIT',
        exDate,
        currency: s.currency,
        held: held.toFixed(),
        delta: delta.toFixed(),
        ratio,
      });
      oracle.get(key)!.push({ date: exDate, kind: 'action', q: delta, ratio });
    }
  }
}, 120_000);

/** min(a, b) for decimals. */
function minDec(a: Dec, b: Dec): Dec {
  return a.lessThan(b) ? a : b;
}

afterAll(async () => {
  await killAll();
  await closeJobTest({ host, runner, queues, deps, scratch });
});

/** The newest EUR rate on or before `d`, at most 5 days old (the documented rule). */
function eurAt(d: string): string | null {
  const oldest = new Date(Date.parse(`${d}T00:00:00Z`) - 5 * 86_400_000).toISOString().slice(0, 10);
  let best: string | null = null;
  for (const [k, v] of eur) if (k <= d && k >= oldest) best = v;
  return best;
}

/** The independent replay: quantity by summation; average cost for books that never cross zero. */
function expected(port: string): Map<string, Omit<HoldingRow, 'weight' | 'accrued_interest'>> {
  const out = new Map<string, Omit<HoldingRow, 'weight' | 'accrued_interest'>>();
  for (const s of secs) {
    const key = `${port}/${s.id}`;
    const evs = [...(oracle.get(key) ?? [])].sort((a, b) =>
      a.date === b.date ? (a.kind === b.kind ? 0 : a.kind === 'action' ? -1 : 1) : a.date < b.date ? -1 : 1,
    );
    let q = ZERO;
    let cost = ZERO;
    let i = 0;
    for (const d of DAYS) {
      for (; i < evs.length && evs[i]!.date <= d; i++) {
        const e = evs[i]!;
        if (e.kind === 'trade') {
          const fxT = s.currency === 'USD' ? '1' : [...eur.entries()].filter(([k]) => k <= e.date).pop()![1];
          if (q.isZero() || q.isNegative() === e.q.isNegative())
            cost = cost.plus(e.q.times(e.price!).times(fxT)).plus(e.fees!);
          else cost = cost.times(q.plus(e.q)).dividedBy(q);
        }
        q = q.plus(e.q);
        if (q.isZero()) cost = ZERO;
      }
      expect(q.equals(heldAt(key, d))).toBe(true);
      if (q.isZero()) continue;
      const close = s.close.get(d) ?? null;
      const x = s.currency === 'USD' ? '1' : eurAt(d);
      const flag = [close === null ? 'missing_price' : null, x === null ? 'missing_fx' : null]
        .filter(Boolean)
        .join(',');
      out.set(`${d}/${s.id}`, {
        portfolio_id: port,
        security_id: s.id,
        as_of_date: d,
        quantity: q.toFixed(8),
        local_price: close === null ? null : dec(close).toFixed(8),
        fx_rate: x === null ? null : dec(x).toFixed(10),
        market_value: close === null || x === null ? null : round(q.times(close).times(x)).toFixed(2),
        cost_basis: round(cost).toFixed(2),
        flag: flag || null,
      });
    }
  }
  return out;
}

describe('holdings.snapshot', () => {
  it('holdings equal a replay of the trades and the ledger on random books, every session', async () => {
    const result = await holdingsSnapshot(deps, { from: FROM, to: TO, portfolioIds: PORTS }, directContext());
    expect(result).toMatchObject({ chunks: 6, resumedChunks: 0 });
    let compared = 0;
    let flagged = 0;
    for (const port of PORTS) {
      const want = expected(port);
      const got = await holdingsOf(deps.db, port);
      expect(got.length).toBe(want.size);
      for (const h of got) {
        const { weight, accrued_interest, ...rest } = h;
        expect(rest).toEqual(want.get(`${h.as_of_date}/${h.security_id}`));
        expect(accrued_interest).toBe(h.flag?.includes('missing_fx') ? null : '0.00');
        if (h.flag) {
          flagged++;
          expect(weight).toBeNull();
        }
        compared++;
      }
      // Weights of a day's valued rows sum to 1 (up to the 8-decimal rounding of each).
      const w = await deps.db.raw<{ rows: { d: string; s: string; n: number }[] }>(
        `select as_of_date::text as d, sum(weight)::text as s, count(*)::int as n from holdings
          where portfolio_id = ? and market_value is not null group by 1 having sum(market_value) > 0`,
        [port],
      );
      for (const row of w.rows)
        expect(dec(row.s).minus(1).abs().lessThanOrEqualTo(dec(row.n).times('0.000000005'))).toBe(true);
    }
    expect(compared).toBeGreaterThan(500);
    expect(flagged).toBeGreaterThan(5);
    expect(result.rows).toBe(compared);
  }, 60_000);

  it('the domain replay and the stored rows agree on average cost for a position that crosses zero', () => {
    const states = replayPosition([
      { kind: 'trade', date: '2024-01-02', quantity: '100', price: '10', unit: '1', fx: '1', fees: '5' },
      { kind: 'trade', date: '2024-01-03', quantity: '-150', price: '12', unit: '1', fx: '1', fees: '3' },
      { kind: 'trade', date: '2024-01-04', quantity: '50', price: '11', unit: '1', fx: '1', fees: '0' },
    ]);
    expect(states.map((s) => [s.date, s.quantity.toFixed(), s.cost?.toFixed(2)])).toEqual([
      ['2024-01-02', '100', '1005.00'],
      // Closes 100 (cost 1,005 removed), opens −50 at 12 with a third of the fees.
      ['2024-01-03', '-50', '-599.00'],
      ['2024-01-04', '0', '0.00'],
    ]);
  });

  it('a re-run after a correction replaces the range exactly (a position gone to zero disappears)', async () => {
    const port = 'PORT-201';
    const s = secs.find((x) => heldAt(`${port}/${x.id}`, '2024-06-03').greaterThan(0))!;
    const before = await holdingsOf(deps.db, port);
    const q = heldAt(`${port}/${s.id}`, '2024-06-03');
    const id = await addTrade(deps.db, {
      portfolio: port,
      securityId: s.id,
      type: 'SELL',
      quantity: q.toFixed(),
      price: '20',
      date: '2024-06-03',
      currency: s.currency,
    });
    await holdingsSnapshot(deps, { from: '2024-06-01', to: TO, portfolioIds: [port] }, directContext());
    const after = (await holdingsOf(deps.db, port)).filter(
      (h) => h.security_id === s.id && h.as_of_date >= '2024-06-03',
    );
    const live = DAYS.filter((d) => d >= '2024-06-03' && !heldAt(`${port}/${s.id}`, d).minus(q).isZero());
    expect(after.map((h) => h.as_of_date)).toEqual(live);
    for (const h of after)
      expect(h.quantity).toBe(heldAt(`${port}/${s.id}`, h.as_of_date).minus(q).toFixed(8));
    expect(live.length).toBeLessThan(DAYS.filter((d) => d >= '2024-06-03').length);
    await deps.db('transactions').where({ txn_id: id }).delete();
    await holdingsSnapshot(deps, { from: '2024-06-01', to: TO, portfolioIds: [port] }, directContext());
    const again = await holdingsOf(deps.db, port);
    const strip = (rows: HoldingRow[]) => rows.map((h) => JSON.stringify(h));
    expect(strip(again)).toEqual(strip(before));
  });

  it('concurrent runs over the same books take turns and leave the rows of one run', async () => {
    const before = (await holdingsOf(deps.db, 'PORT-203')).map((h) => JSON.stringify(h));
    const runs = await Promise.all([
      ...Array.from({ length: 4 }, (_, i) =>
        holdingsSnapshot(
          deps,
          {
            from: i % 2 ? '2024-03-01' : FROM,
            to: TO,
            portfolioIds: i % 2 ? ['PORT-203', 'PORT-202'] : PORTS,
          },
          directContext(),
        ),
      ),
      varianceQuarterly(deps, { quarter: '2024Q2', portfolioIds: ['PORT-203'] }, directContext()),
      varianceQuarterly(deps, { quarter: '2024Q2', portfolioIds: ['PORT-203'] }, directContext()),
    ]);
    expect(runs[1]).toMatchObject({ chunks: 4 });
    expect((await holdingsOf(deps.db, 'PORT-203')).map((h) => JSON.stringify(h))).toEqual(before);
  });

  it('a run killed after some months resumes from its checkpoints (same job id)', async () => {
    const port = 'PORT-202';
    const before = await holdingsOf(deps.db, port);
    await deps.db('holdings').where({ portfolio_id: port }).delete();
    // The first attempt wrote January and February, then died: its checkpoints are there.
    const intervals = await holdingIntervals(deps, [port], TO);
    const ctx = directContext();
    for (const c of monthChunks(FROM, '2024-02-29'))
      await deps.repos.books.writeHoldings([port], c.from, c.to, intervals, {
        jobName: 'holdings.snapshot',
        key: `${ctx.id}:${c.from}`,
      });
    const result = await holdingsSnapshot(deps, { from: FROM, to: TO, portfolioIds: [port] }, ctx);
    expect(result).toMatchObject({ chunks: 6, resumedChunks: 2 });
    expect(ctx.logs.filter((l) => /already written by an earlier attempt/.test(l))).toHaveLength(2);
    expect((await holdingsOf(deps.db, port)).map((h) => JSON.stringify(h))).toEqual(
      before.map((h) => JSON.stringify(h)),
    );
    expect(await deps.repos.checkpoints.keysWithPrefix('holdings.snapshot', `${ctx.id}:`)).toEqual(new Set());
    expect(ctx.progressSeen.at(-1)).toBe(100);
  });

  it('runs through a real queue and worker; the default date is the latest completed session', async () => {
    const run = await runner.run('holdings.snapshot', { portfolioIds: ['PORT-201'] });
    expect(run.state, String(run.job.failedReason)).toBe('completed');
    expect(run.result).toMatchObject({ from: '2024-07-01', to: '2024-07-01', chunks: 1 });
    const rows = await holdingsOf(deps.db, 'PORT-201', '2024-07-01');
    // No closes after 2024-06-28: every position of that day is flagged, none valued at zero.
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.every((h) => h.flag?.includes('missing_price') && h.market_value === null)).toBe(true);
  });

  it('bad input fails permanently, naming the field', async () => {
    await expect(
      holdingsSnapshot(deps, { date: '2024-06-03', portfolioIds: ['PORT-404'] }, directContext()),
    ).rejects.toThrow(/portfolioIds: unknown portfolio\(s\) PORT-404/);
    await expect(holdingsSnapshot(deps, { date: '2024-07-02' }, directContext())).rejects.toThrow(
      /date: 2024-07-02 is after the last completed session \(2024-07-01\)/,
    );
    await expect(holdingsSnapshot(deps, { date: '2024-02-30' }, directContext())).rejects.toThrow(
      /date: not a calendar date: 2024-02-30/,
    );
    const bad = await runner.run('holdings.snapshot', { date: '2024-06-03', portfolioIds: ['PORT-405'] });
    expect(bad.state).toBe('failed');
    expect(bad.job.failedReason).toMatch(/PORT-405/);
  });
});

describe('variance.quarterly on the random books', () => {
  it('every row sums to MV1 − MV0 + distributions to the cent, MV equals the holdings, totals = Σ rows', async () => {
    const ctx = directContext();
    for (const period of [
      { month: '2024-02' },
      { month: '2024-03' },
      { quarter: '2024Q2' },
      { from: '2024-01-10', to: '2024-05-17' },
    ])
      await varianceQuarterly(deps, { ...period, portfolioIds: PORTS }, ctx);
    const rows = await deps.db.raw<{
      rows: {
        p: string;
        s: number;
        f: string;
        t: string;
        mv0: string | null;
        mv1: string | null;
        h0: string | null;
        h1: string | null;
        e: (string | null)[];
        total: string | null;
        dist: string;
        flag: string | null;
      }[];
    }>(
      `select v.portfolio_id as p, v.security_id as s, v.period_from::text as f, v.period_to::text as t,
              v.mv_start::text as mv0, v.mv_end::text as mv1,
              array[v.corp_action_effect::text, v.qty_effect::text, v.price_effect::text, v.fx_effect::text] as e,
              v.total_pnl::text as total, v.distributions::text as dist, v.flag,
              (select h.market_value::text from holdings h where h.portfolio_id = v.portfolio_id and h.security_id = v.security_id
                  and h.as_of_date = (select max(session_date) from market_sessions where exchange = 'XNYS' and session_date < v.period_from)) as h0,
              (select h.market_value::text from holdings h where h.portfolio_id = v.portfolio_id and h.security_id = v.security_id
                  and h.as_of_date = (select max(session_date) from market_sessions where exchange = 'XNYS' and session_date <= v.period_to)) as h1
         from variance_rows v where v.portfolio_id = any(?::text[])`,
      [PORTS],
    );
    let valued = 0;
    for (const r of rows.rows) {
      if (r.flag !== null) {
        expect(r.total).toBeNull();
        continue;
      }
      valued++;
      const sum = r.e.reduce((acc, x) => acc.plus(x!), ZERO);
      expect(sum.toFixed(2)).toBe(r.total);
      expect(dec(r.mv1!).minus(r.mv0!).plus(r.dist).toFixed(2)).toBe(r.total);
      // Units match the holdings exactly (0 where the position is absent).
      expect(r.mv0).toBe(r.h0 ?? '0.00');
      expect(r.mv1).toBe(r.h1 ?? '0.00');
    }
    expect(valued).toBeGreaterThan(30);
    expect(rows.rows.some((r) => r.flag !== null)).toBe(true);
    for (const port of PORTS) {
      const v = await deps.repos.platform.portfolioVariance(port, { kind: 'labels', labels: ['2024Q2'] });
      expect(v!.period).toMatchObject({ period_from: '2024-04-01', period_to: '2024-06-30' });
      const mine = rows.rows.filter((r) => r.p === port && r.f === '2024-04-01' && r.total !== null);
      expect(dec(v!.totals.total_pnl).toFixed(2)).toBe(
        mine.reduce((a, r) => a.plus(r.total!), ZERO).toFixed(2),
      );
    }
  });
});

describe('holdings.snapshot killed with SIGKILL halfway', () => {
  it(
    'resumes after the last month written and leaves the rows of an uninterrupted run',
    { timeout: 180_000 },
    async () => {
      // Its own queue prefix: only the spawned worker processes serve it.
      const kd = testDeps({
        config: testConfig({ DATABASE_URL: scratch.url, QUEUE_PREFIX: uniquePrefix() }),
      });
      const kq = createQueues(kd.config);
      const events = new QueueEvents('holdings.snapshot', {
        connection: createRedis(kd.config, { forWorker: true }),
        prefix: kd.config.queue.prefix,
      });
      const env = { DATABASE_URL: scratch.url, QUEUE_PREFIX: kd.config.queue.prefix };
      try {
        await events.waitUntilReady();
        // 30 months (positions stay open, unpriced after June 2024: flagged rows).
        const payload = { from: '2024-01-01', to: '2026-06-30', portfolioIds: PORTS };
        const job = await kq.enqueue('holdings.snapshot', payload);
        const done = async (): Promise<number> =>
          (await kd.repos.checkpoints.keysWithPrefix('holdings.snapshot', `${job.id}:`)).size;
        const first = startWorkerProcess(env, { names: ['holdings.snapshot'] });
        await until(async () => (await done()) >= 3, 120_000, 'three months written');
        await kill(first);
        const written = await done();
        expect(written).toBeLessThan(30);
        // What time would do: the dead worker's lock expires and the stalled check becomes due.
        const prefix = kd.config.queue.prefix;
        await kd.redis.del(
          `${prefix}:holdings.snapshot:${job.id}:lock`,
          `${prefix}:holdings.snapshot:stalled-check`,
        );
        startWorkerProcess(env, { names: ['holdings.snapshot'] });
        const result = (await job.waitUntilFinished(events, 150_000)) as {
          resumedChunks: number;
          chunks: number;
        };
        expect(result.chunks).toBe(30);
        expect(result.resumedChunks).toBeGreaterThanOrEqual(written);
        const dump = async (): Promise<string[]> =>
          (
            await kd.db.raw<{ rows: { r: string }[] }>(
              `select concat_ws('|', portfolio_id, security_id, as_of_date, quantity, local_price, fx_rate, market_value,
                              weight, cost_basis, accrued_interest, flag) as r
               from holdings where as_of_date between '2024-01-01' and '2026-06-30' order by 1`,
            )
          ).rows.map((x) => x.r);
        const resumed = await dump();
        await holdingsSnapshot(kd, payload, directContext());
        const clean = await dump();
        expect(resumed.length).toBeGreaterThan(5_000);
        const diff = resumed.findIndex((r, i) => r !== clean[i]);
        expect(resumed.length).toBe(clean.length);
        expect(diff === -1 ? null : [resumed[diff], clean[diff]]).toBeNull();
        expect(await done()).toBe(0);
      } finally {
        await killAll();
        await events.close();
        await kq.close();
        await dropPrefix(kd);
        await closeDeps(kd);
      }
    },
  );
});
