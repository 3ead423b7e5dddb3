/**
 * Incremental rollups driven by bar_changes equal one clean run over all ticks, however the ticks
 * arrive. Property-style over several seeds: ticks arrive shuffled (late and out of order), some
 * prints share a timestamp (seq orders them), some are corrected (price/size updated) or withdrawn;
 * every write records its ranges in bar_changes in the same transaction, as a writer must.
 * Incremental runs are interleaved at random; after each one the bars are compared with the BigInt
 * oracle (test/bars-oracle.ts) and, at the end, with a full range recompute (which must find
 * nothing to change). Also: idempotence, concurrent runs, an uncommitted writer, the sweep for
 * ticks written without changes, chaining to analytics (recorded and through real queues).
 *
 * A database of this file's own: incremental runs consume every pending change in the database.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sessionsBetween } from '../core/calendar/nyse.ts';
import type { Deps } from '../core/deps.ts';
import { rollup1d, rollup5m } from '../jobs/processors/bars-rollup.ts';
import { createQueues } from '../jobs/queues.ts';
import { directContext, type JobContext } from '../jobs/types.ts';
import { enqueueVia } from '../jobs/worker-host.ts';
import { loadTicks, oracle1d, oracle5m, printable, stored1d, stored5m } from './bars-oracle.ts';
import { closeDeps, dropPrefix, scratchDatabase, testConfig, testDeps, prng as rng } from './support.ts';

let deps: Deps;
let scratch: { url: string; drop: () => Promise<void> };

// 2024-11-27 is a full session, 2024-11-29 (day after Thanksgiving) closes at 13:00.
const sessions = sessionsBetween('2024-11-27', '2024-11-29');

beforeAll(async () => {
  scratch = await scratchDatabase();
  deps = testDeps({ config: testConfig({ DATABASE_URL: scratch.url }) });
  await deps.repos.calendar.ensureSessions('2024-11-20', '2024-12-06');
  await deps.db.raw(`select ensure_month_partitions('ticks', '2024-11-01', '2024-12-01')`);
});
afterAll(async () => {
  await dropPrefix(deps);
  await closeDeps(deps);
  await scratch?.drop();
});

function shuffle<T>(xs: T[], r: () => number): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [xs[i], xs[j]] = [xs[j]!, xs[i]!];
  }
  return xs;
}

async function makeSecurities(n: number): Promise<{ ids: number[]; tickers: string[] }> {
  const tag = randomBytes(3).toString('hex').toUpperCase();
  const rows = Array.from({ length: n }, (_, i) => ({
    security_id: `SEC-${Math.floor(Math.random() * 9e8) + 1e8}`,
    ticker: `I${tag}${i}`,
    security_name: `Incremental rollup test ${tag} ${i}`,
    security_type: 'EQUITY',
    asset_class: 'Equity',
    currency: 'USD',
    exchange: 'NYSE',
  }));
  const inserted = await deps
    .db('securities')
    .insert(rows)
    .returning<{ id: number; ticker: string }[]>(['id', 'ticker']);
  return { ids: inserted.map((r) => r.id), tickers: inserted.map((r) => r.ticker) };
}

interface Tick {
  security_id: number;
  ts: string; // ISO with microseconds
  seq: number;
  price: string;
  size: number;
}

const randomPrice = (r: () => number, around: number): string =>
  Math.max(0.01, around * (1 + (r() - 0.5) * 0.01)).toFixed(Math.floor(r() * 9));

/**
 * Ticks over the two sessions plus pre- and post-market prints (which make no bar at either level). Timestamps
 * carry microseconds; some land exactly on a bucket boundary; several prints may share one.
 */
function randomTicks(r: () => number, ids: number[]): Tick[] {
  const out: Tick[] = [];
  for (const id of ids) {
    let price = 20 + r() * 200;
    for (const s of sessions) {
      let t = s.openAt.getTime() - 20 * 60_000;
      const end = s.closeAt.getTime() + 20 * 60_000;
      while (t < end) {
        t += r() < 0.05 ? 300_000 - (t % 300_000) : Math.floor(1 + r() * 120_000);
        const us = r() < 0.1 ? '000' : String(Math.floor(r() * 1000)).padStart(3, '0');
        const ts = new Date(t).toISOString().replace('Z', `${us}Z`);
        const prints = r() < 0.1 ? 3 : 1;
        for (let seq = 0; seq < prints; seq++) {
          price = Math.max(0.01, price * (1 + (r() - 0.5) * 0.004));
          out.push({
            security_id: id,
            ts,
            seq,
            price: price.toFixed(4),
            size: r() < 0.05 ? 0 : 1 + Math.floor(r() * 900),
          });
        }
      }
    }
  }
  return out;
}

const key = (t: Pick<Tick, 'security_id' | 'ts' | 'seq'>): string => `${t.security_id}|${t.ts}|${t.seq}`;

/**
 * One writer transaction: inserts, updates and deletes ticks and records what it touched in
 * bar_changes (level '5m'), either one range per tick or one covering range per security.
 */
async function write(
  ops: { insert?: Tick[]; update?: Tick[]; remove?: Tick[] },
  coarse: boolean,
  recordChanges = true,
): Promise<void> {
  const touched = [...(ops.insert ?? []), ...(ops.update ?? []), ...(ops.remove ?? [])];
  if (!touched.length) return;
  await deps.db.transaction(async (trx) => {
    for (let i = 0; i < (ops.insert?.length ?? 0); i += 1000)
      await trx('ticks').insert(ops.insert!.slice(i, i + 1000));
    for (const t of ops.update ?? [])
      await trx('ticks')
        .where({ security_id: t.security_id, ts: t.ts, seq: t.seq })
        .update({ price: t.price, size: t.size });
    for (const t of ops.remove ?? [])
      await trx('ticks').where({ security_id: t.security_id, ts: t.ts, seq: t.seq }).delete();
    if (!recordChanges) return;
    // [from, to) must cover each tick: floor to the millisecond, and one millisecond past the last.
    const rows = coarse
      ? [...Map.groupBy(touched, (t) => t.security_id)].map(([security_id, ts]) => {
          const ms = ts.map((t) => Date.parse(t.ts));
          return {
            level: '5m',
            security_id,
            from_ts: new Date(Math.min(...ms)),
            to_ts: new Date(Math.max(...ms) + 1),
          };
        })
      : touched.map((t) => ({
          level: '5m',
          security_id: t.security_id,
          from_ts: new Date(Date.parse(t.ts)),
          to_ts: new Date(Date.parse(t.ts) + 1),
        }));
    for (let i = 0; i < rows.length; i += 1000) await trx('bar_changes').insert(rows.slice(i, i + 1000));
  });
}

async function expect5mMatches(ids: number[]): Promise<void> {
  expect(printable(await stored5m(deps.db, ids))).toEqual(
    printable(oracle5m(await loadTicks(deps.db, ids), sessions)),
  );
}
async function expect1dMatches(ids: number[]): Promise<void> {
  const want = oracle1d(await loadTicks(deps.db, ids), sessions);
  expect(want.size).toBeGreaterThan(0);
  expect(printable(await stored1d(deps.db, ids))).toEqual(printable(want));
}

const pending = async (level: '5m' | '1d'): Promise<number> => deps.repos.rollups.pendingChanges(level);

describe('incremental rollups from bar_changes', () => {
  for (const seed of [1, 2, 3, 4]) {
    it(`equal a clean run after late, duplicate, out-of-order, corrected and deleted ticks (seed ${seed})`, async () => {
      const r = rng(seed * 104_729);
      const { ids, tickers } = await makeSecurities(3);
      const arriving = shuffle(randomTicks(r, ids), r);
      const live = new Map<string, Tick>();
      const maxSeq = new Map<string, number>();
      const pick = (n: number): Tick[] => {
        const all = [...live.values()];
        return Array.from(
          { length: Math.min(n, all.length) },
          () => all[Math.floor(r() * all.length)]!,
        ).filter((t, i, xs) => xs.findIndex((u) => key(u) === key(t)) === i);
      };
      let runs5m = 0;
      let runs1d = 0;
      const batches = 8;
      const size = Math.ceil(arriving.length / batches);
      for (let b = 0; b < batches; b++) {
        const insert = arriving.slice(b * size, (b + 1) * size);
        // Duplicate timestamps: a later print at the same instant as a live tick. Its seq is above
        // any the generator uses (0..2), so it never collides with a print still to arrive.
        const dups = pick(4).map((t) => {
          const k = `${t.security_id}|${t.ts}`;
          const seq = Math.max(maxSeq.get(k) ?? 0, 9) + 1;
          maxSeq.set(k, seq);
          return { ...t, seq, price: randomPrice(r, Number(t.price)), size: 1 + Math.floor(r() * 500) };
        });
        const update =
          b > 0
            ? pick(5).map((t) => ({
                ...t,
                price: randomPrice(r, Number(t.price)),
                size: Math.floor(r() * 300),
              }))
            : [];
        const updated = new Set(update.map(key));
        const remove = b > 0 ? pick(6).filter((t) => !updated.has(key(t))) : [];
        const inserts = [...insert, ...dups];
        // Split the step across two writer transactions at random (one may be coarse-grained).
        const cut = Math.floor(r() * inserts.length);
        await write({ insert: inserts.slice(0, cut), update }, r() < 0.5);
        await write({ insert: inserts.slice(cut), remove }, r() < 0.5);
        for (const t of [...inserts, ...update]) {
          live.set(key(t), t);
          const k = `${t.security_id}|${t.ts}`;
          maxSeq.set(k, Math.max(maxSeq.get(k) ?? 0, t.seq));
        }
        for (const t of remove) live.delete(key(t));

        if (r() < 0.6 || b === batches - 1) {
          const ctx = directContext();
          const res5 = await rollup5m(deps, {}, ctx);
          runs5m += 1;
          expect(res5.mode).toBe('incremental');
          expect(res5.changes).toBeGreaterThan(0);
          expect(await pending('5m')).toBe(0);
          await expect5mMatches(ids);
          if (r() < 0.7 || b === batches - 1) {
            const res1 = await rollup1d(deps, {}, ctx);
            runs1d += 1;
            expect(res1.mode).toBe('incremental');
            expect(await pending('1d')).toBe(0);
            await expect1dMatches(ids);
          }
        }
      }
      expect(runs5m).toBeGreaterThan(0);
      expect(runs1d).toBeGreaterThan(0);
      expect((await loadTicks(deps.db, ids)).length).toBe(live.size);

      // One clean full run over all ticks finds nothing to change.
      const full5 = await rollup5m(
        deps,
        { symbols: tickers, from: '2024-11-27T00:00:00Z', to: '2024-11-30T00:00:00Z' },
        directContext(),
      );
      const full1 = await rollup1d(
        deps,
        { symbols: tickers, from: '2024-11-27', to: '2024-11-29' },
        directContext(),
      );
      expect([full5.mode, full5.upserted, full5.deleted, full1.upserted, full1.deleted]).toEqual([
        'range',
        0,
        0,
        0,
        0,
      ]);
    });
  }

  it('writes nothing when run again, or when a change touched no bar', async () => {
    const r = rng(77);
    const { ids } = await makeSecurities(2);
    await write({ insert: randomTicks(r, ids) }, true);
    await rollup5m(deps, {}, directContext());
    await rollup1d(deps, {}, directContext());
    const before5 = printable(await stored5m(deps.db, ids));
    const before1 = printable(await stored1d(deps.db, ids));

    const ctx = directContext();
    const again5 = await rollup5m(deps, {}, ctx);
    const again1 = await rollup1d(deps, {}, ctx);
    expect([again5.changes, again5.upserted, again5.deleted, again5.enqueued]).toEqual([0, 0, 0, 0]);
    expect([again1.changes, again1.upserted, again1.deleted, again1.enqueued]).toEqual([0, 0, 0, 0]);

    // A writer re-sends ticks it already stored (same values): the change is consumed, no bar is
    // rewritten, no daily change is recorded, nothing is chained.
    const same = (await loadTicks(deps.db, ids)).slice(0, 20);
    await deps.db('bar_changes').insert(
      same.map((t) => ({
        level: '5m',
        security_id: t.security_id,
        from_ts: new Date(Number(BigInt(t.us) / 1000n)),
        to_ts: new Date(Number(BigInt(t.us) / 1000n) + 1),
      })),
    );
    const resent = await rollup5m(deps, {}, ctx);
    expect(resent.changes).toBe(20);
    expect([resent.upserted, resent.deleted, resent.symbols]).toEqual([0, 0, 0]);
    expect(await pending('1d')).toBe(0);
    expect(ctx.enqueued).toEqual([]);
    expect(printable(await stored5m(deps.db, ids))).toEqual(before5);
    expect(printable(await stored1d(deps.db, ids))).toEqual(before1);
  });

  it('ends consistent when two incremental runs go at once, and keeps an uncommitted writer’s change', async () => {
    const r = rng(4242);
    const { ids } = await makeSecurities(3);
    const ticks = shuffle(randomTicks(r, ids), r);
    const quarter = Math.ceil(ticks.length / 4);
    for (let i = 0; i < 4; i++)
      await write({ insert: ticks.slice(i * quarter, (i + 1) * quarter) }, i % 2 === 0);
    const recorded = await pending('5m');

    const [a, b] = await Promise.all([
      rollup5m(deps, {}, directContext()),
      rollup5m(deps, {}, directContext()),
    ]);
    expect(a.changes + b.changes).toBe(recorded);
    expect(await pending('5m')).toBe(0);
    await Promise.all([rollup1d(deps, {}, directContext()), rollup1d(deps, {}, directContext())]);
    await expect5mMatches(ids);
    await expect1dMatches(ids);

    // A writer whose transaction is still open when the rollup runs: its change stays pending.
    const late: Tick = {
      security_id: ids[0]!,
      ts: '2024-11-27T15:02:03.000004Z',
      seq: 7,
      price: '999.5',
      size: 12,
    };
    const trx = await deps.db.transaction();
    try {
      await trx('ticks').insert(late);
      await trx('bar_changes').insert({
        level: '5m',
        security_id: late.security_id,
        from_ts: '2024-11-27T15:02:03Z',
        to_ts: '2024-11-27T15:02:04Z',
      });
      const during = await rollup5m(deps, {}, directContext());
      expect(during.changes).toBe(0);
      await trx.commit();
    } catch (err) {
      await trx.rollback();
      throw err;
    }
    const after = await rollup5m(deps, {}, directContext());
    expect([after.changes, after.upserted]).toEqual([1, 1]);
    await rollup1d(deps, {}, directContext());
    await expect5mMatches(ids);
    await expect1dMatches(ids);
  });

  it('sweeps ticks written without changes with an explicit range, and the daily rollup follows', async () => {
    const r = rng(9);
    const { ids, tickers } = await makeSecurities(2);
    await write({ insert: randomTicks(r, ids) }, true, false);
    const nothing = await rollup5m(deps, {}, directContext());
    expect(nothing.changes).toBe(0);
    expect((await stored5m(deps.db, ids)).size).toBe(0);

    const ctx = directContext();
    const swept = await rollup5m(deps, { from: '2024-11-27T00:00:00Z', to: '2024-11-30T00:00:00Z' }, ctx);
    expect(swept.mode).toBe('range');
    expect(swept.upserted).toBeGreaterThan(0);
    await expect5mMatches(ids);
    // The sweep recorded its changed bars at level '1d': the scheduled daily run picks them up.
    expect(await pending('1d')).toBeGreaterThan(0);
    const daily = await rollup1d(deps, {}, ctx);
    expect(daily.mode).toBe('incremental');
    expect(daily.from).toBe('2024-11-27');
    expect(daily.to).toBe('2024-11-29');
    await expect1dMatches(ids);
    // Chained: indicators on 5-minute bars after the sweep, daily indicators and risk after the daily run.
    const forUs = (name: string, interval?: string) =>
      ctx.enqueued.filter(
        (e) =>
          e.name === name &&
          (interval === undefined || (e.payload as { interval?: string }).interval === interval) &&
          tickers.every((t) => (e.payload as { symbols: string[] }).symbols.includes(t)),
      );
    expect(forUs('analytics.indicators', '5m')).toHaveLength(1);
    expect(forUs('analytics.indicators', '1d')).toHaveLength(1);
    expect(forUs('analytics.risk')).toHaveLength(1);
    expect(forUs('analytics.risk')[0]!.opts?.deduplication?.id).toMatch(/^analytics\.risk:/);
  });

  it('reports the watermark, chains analytics for the touched symbols, and collapses repeats in real queues', async () => {
    const r = rng(31);
    const { ids, tickers } = await makeSecurities(2);
    const ticks = randomTicks(r, ids);
    await write({ insert: ticks }, true);
    const ctx = directContext();
    const res5 = await rollup5m(deps, {}, ctx);
    const lastBucketEnd = Math.max(
      ...ticks.map((t) => Math.floor(Date.parse(t.ts) / 300_000) * 300_000 + 300_000),
    );
    expect(Date.parse(res5.watermark!)).toBeGreaterThanOrEqual(lastBucketEnd);
    expect(await deps.repos.checkpoints.get('bars.rollup-5m', 'watermark')).toEqual({
      through: res5.watermark,
    });
    expect(res5.symbols).toBe(2);
    expect(ctx.enqueued).toEqual([
      expect.objectContaining({
        name: 'analytics.indicators',
        payload: { symbols: [...tickers].sort(), interval: '5m' },
      }),
    ]);
    const res1 = await rollup1d(deps, {}, ctx);
    expect(res1.watermark).toBe('2024-11-29');
    expect(ctx.enqueued.map((e) => [e.name, e.payload])).toEqual([
      ['analytics.indicators', { symbols: [...tickers].sort(), interval: '5m' }],
      ['analytics.indicators', { symbols: [...tickers].sort(), interval: '1d' }],
      ['analytics.risk', { symbols: [...tickers].sort() }],
    ]);

    // Through real queues (no analytics workers, so the jobs stay delayed): two triggers for the
    // same symbols leave one job per follow-on.
    const queues = createQueues(deps.config);
    try {
      const real: JobContext = { ...directContext(), enqueue: enqueueVia(queues) };
      const enqueued: number[] = [];
      const inSession = ticks.filter(
        (t) =>
          t.security_id === ids[0] &&
          Date.parse(t.ts) >= sessions[0]!.openAt.getTime() &&
          Date.parse(t.ts) < sessions[0]!.closeAt.getTime(),
      );
      for (let i = 0; i < 2; i++) {
        // Volume changes, so both the 5-minute and the daily bar change.
        const t = inSession[i * 7]!;
        await write({ update: [{ ...t, size: t.size + 1 + i }] }, false);
        const a = await rollup5m(deps, {}, real);
        const d = await rollup1d(deps, {}, real);
        expect(a.upserted + d.upserted).toBeGreaterThan(0);
        enqueued.push(a.enqueued + d.enqueued);
      }
      // The second round's triggers collapsed into the pending jobs and are not counted.
      expect(enqueued).toEqual([3, 0]);
      const count = async (name: 'analytics.indicators' | 'analytics.risk') => {
        const c = await queues.get(name).getJobCounts('delayed', 'waiting', 'active');
        return c.delayed! + c.waiting! + c.active!;
      };
      expect(await count('analytics.risk')).toBe(1);
      // One job per interval (5m and 1d), both for the one security that changed.
      expect(await count('analytics.indicators')).toBe(2);
      const jobs = await queues.get('analytics.indicators').getJobs(['delayed', 'waiting']);
      expect(
        jobs.map((j) => j.data as unknown).sort((x, y) => JSON.stringify(x).localeCompare(JSON.stringify(y))),
      ).toEqual([
        { symbols: [tickers[0]], interval: '1d' },
        { symbols: [tickers[0]], interval: '5m' },
      ]);
    } finally {
      await queues.close();
    }
    await expect5mMatches(ids);
    await expect1dMatches(ids);
  });

  it('scans ticks through the primary key of the relevant partitions only', async () => {
    const { ids } = await makeSecurities(1);
    await deps.db.raw(`select ensure_month_partitions('ticks', '2024-10-01', '2024-11-01')`);
    await write(
      {
        insert: [
          { security_id: ids[0]!, ts: '2024-10-15T15:00:00.000000Z', seq: 0, price: '10', size: 1 },
          { security_id: ids[0]!, ts: '2024-11-27T15:00:01.000000Z', seq: 0, price: '11', size: 2 },
        ],
      },
      false,
    );
    // Consume only the November change, so the plan may touch only November's partition.
    await deps.db('bar_changes').where('from_ts', '<', '2024-11-01').delete();
    const res = await deps.repos.rollups.rollup5mChanges({ limit: 100, explain: true });
    expect(res.changes).toBe(1);
    expect(res.plan).toMatch(/Index (Only )?Scan using ticks_p2024_11_pkey/);
    expect(res.plan).not.toMatch(/ticks_p2024_10/);
    expect(res.plan).not.toMatch(/Seq Scan on ticks/);
  });
});
