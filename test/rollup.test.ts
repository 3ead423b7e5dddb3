/**
 * Rollups equal an independent recomputation from the ticks, however the ticks arrive: late,
 * out of order, corrected (deleted) and re-rolled in pieces. Property-style: several seeds of
 * random tick streams, each checked against test/bars-oracle.ts.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sessionsBetween } from '../core/calendar/nyse.ts';
import type { Deps } from '../core/deps.ts';
import { rollup1d, rollup5m } from '../jobs/processors/bars-rollup.ts';
import { directContext } from '../jobs/types.ts';
import { loadTicks, oracle1d, oracle5m, printable, stored1d, stored5m } from './bars-oracle.ts';
import { closeDeps, testDeps, prng as rng } from './support.ts';

let deps: Deps;
beforeAll(() => {
  deps = testDeps();
});
afterAll(async () => {
  await closeDeps(deps);
});

async function makeSecurities(n: number): Promise<{ ids: number[]; tickers: string[] }> {
  const tag = randomBytes(3).toString('hex').toUpperCase();
  const rows = Array.from({ length: n }, (_, i) => ({
    security_id: `SEC-${Math.floor(Math.random() * 9e8) + 1e8}`,
    ticker: `R${tag}${i}`,
    security_name: `Rollup test ${tag} ${i}`,
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
  ts: string;
  seq: number;
  price: string;
  size: number;
}

/**
 * Random ticks over two sessions (one an early close) plus some pre- and post-market prints that
 * must reach 5-minute bars but not daily bars. Several prints share a timestamp (seq orders them),
 * some have size 0.
 */
function randomTicks(seed: number, ids: number[], sessions: { openAt: Date; closeAt: Date }[]): Tick[] {
  const r = rng(seed);
  const out: Tick[] = [];
  for (const id of ids) {
    let price = 20 + r() * 200;
    for (const s of sessions) {
      const from = s.openAt.getTime() - 20 * 60_000;
      const to = s.closeAt.getTime() + 20 * 60_000;
      let t = from;
      while (t < to) {
        t += Math.floor(1 + r() * 90_000);
        const prints = r() < 0.1 ? 3 : 1;
        for (let seq = 0; seq < prints; seq++) {
          price = Math.max(0.01, price * (1 + (r() - 0.5) * 0.004));
          out.push({
            security_id: id,
            ts: new Date(t).toISOString().replace('Z', `${String(Math.floor(r() * 1000)).padStart(3, '0')}Z`),
            seq,
            price: price.toFixed(Math.floor(r() * 9)),
            size: r() < 0.05 ? 0 : Math.floor(1 + r() * 900),
          });
        }
      }
    }
  }
  return out;
}

function shuffle<T>(xs: T[], r: () => number): T[] {
  for (let i = xs.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [xs[i], xs[j]] = [xs[j]!, xs[i]!];
  }
  return xs;
}

async function insertTicks(rows: Tick[]): Promise<void> {
  if (!rows.length) return;
  const times = rows.map((t) => t.ts).sort();
  await deps.db.raw(`select ensure_month_partitions('ticks', ?, ?)`, [
    times[0]!,
    new Date(Date.parse(times.at(-1)!) + 1),
  ]);
  for (let i = 0; i < rows.length; i += 2000) await deps.db('ticks').insert(rows.slice(i, i + 2000));
}

describe('bars rollups', () => {
  // 2024-11-27 is a full session, 2024-11-29 (day after Thanksgiving) closes at 13:00.
  const sessions = sessionsBetween('2024-11-27', '2024-11-29');

  it('uses both a full session and an early close', () => {
    expect(sessions.map((s) => [s.date, s.earlyClose])).toEqual([
      ['2024-11-27', false],
      ['2024-11-29', true],
    ]);
  });

  for (const seed of [1, 2, 3]) {
    it(`equals a clean recomputation after late, out-of-order and corrected ticks (seed ${seed})`, async () => {
      const r = rng(seed * 7919);
      const { ids, tickers } = await makeSecurities(3);
      const ticks = shuffle(randomTicks(seed, ids, sessions), r);
      const ctx = directContext();
      const payload5m = { symbols: tickers, from: '2024-11-27T00:00:00Z', to: '2024-11-30T00:00:00Z' };

      // Arrive in four out-of-order batches, rolling after each.
      const quarter = Math.ceil(ticks.length / 4);
      for (let i = 0; i < 4; i++) {
        await insertTicks(ticks.slice(i * quarter, (i + 1) * quarter));
        await rollup5m(deps, payload5m, ctx);
      }
      // Corrections: some ticks withdrawn (whole buckets may disappear), then a re-roll.
      const withdrawn = ticks.filter(() => r() < 0.03);
      for (const t of withdrawn) {
        await deps.db('ticks').where({ security_id: t.security_id, ts: t.ts, seq: t.seq }).delete();
      }
      await rollup5m(deps, payload5m, ctx);
      await rollup1d(deps, { symbols: tickers, from: '2024-11-27', to: '2024-11-29' }, ctx);

      const all = await loadTicks(deps.db, ids);
      expect(all.length).toBe(ticks.length - withdrawn.length);
      expect(printable(await stored5m(deps.db, ids))).toEqual(printable(oracle5m(all, sessions)));
      expect(printable(await stored1d(deps.db, ids))).toEqual(printable(oracle1d(all, sessions)));

      // Daily bars cover regular hours only: an early-close day ends at 13:00 New York.
      const lastBucket = await deps
        .db('bars_5m')
        .whereIn('security_id', ids)
        .where('bucket', '<', sessions[1]!.closeAt)
        .where('bucket', '>=', sessions[1]!.openAt)
        .max<{ max: Date }[]>('bucket as max');
      expect(lastBucket[0]!.max.getTime()).toBeLessThan(sessions[1]!.closeAt.getTime());
    });
  }

  it('changes nothing when run twice', async () => {
    const { ids, tickers } = await makeSecurities(2);
    await insertTicks(randomTicks(99, ids, sessions));
    const payload = { symbols: tickers, from: '2024-11-27T00:00:00Z', to: '2024-11-30T00:00:00Z' };
    const first = await rollup5m(deps, payload, directContext());
    const d1 = await rollup1d(
      deps,
      { symbols: tickers, from: '2024-11-27', to: '2024-11-29' },
      directContext(),
    );
    const before5 = printable(await stored5m(deps.db, ids));
    const before1 = printable(await stored1d(deps.db, ids));
    const second = await rollup5m(deps, payload, directContext());
    const d2 = await rollup1d(
      deps,
      { symbols: tickers, from: '2024-11-27', to: '2024-11-29' },
      directContext(),
    );
    expect(first.upserted).toBeGreaterThan(0);
    expect(d1.upserted).toBe(4);
    expect([second.upserted, second.deleted, d2.upserted, d2.deleted]).toEqual([0, 0, 0, 0]);
    expect(printable(await stored5m(deps.db, ids))).toEqual(before5);
    expect(printable(await stored1d(deps.db, ids))).toEqual(before1);
  });

  it('fails permanently on an unknown symbol, naming it', async () => {
    await expect(rollup5m(deps, { symbols: ['NOPE_NOT_HERE'] }, directContext())).rejects.toThrow(
      /symbols: unknown ticker\(s\) NOPE_NOT_HERE/,
    );
  });
});
