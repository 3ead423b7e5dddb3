/**
 * Full 5-minute rollup of every tick in the table, against the floor: a bare GROUP BY over the
 * same rows computing the same aggregates except first/last, written to an unlogged scratch
 * table. Both are run twice and the faster run of each counts (warm cache for both).
 */
import type { Deps } from '../core/deps.ts';

export interface RollupBench {
  ticks: number;
  bars: number;
  rollupSeconds: number;
  floorSeconds: number;
  ratio: number;
}

const FLOOR_SQL = `
  create unlogged table bench_floor as
  select security_id, date_bin('5 minutes', ts, timestamptz '1970-01-01 00:00:00+00') as bucket,
         max(price) as high, min(price) as low, sum(size) as volume, sum(price * size) as pv, count(*) as trade_count
    from ticks group by 1, 2`;

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

export async function benchRollup(deps: Deps): Promise<RollupBench> {
  const span = await deps.repos.rollups.tickSpan();
  if (!span) throw new Error('bench: no ticks to roll up');
  const from = new Date(Math.floor(span.from.getTime() / 300_000) * 300_000);
  const to = new Date(Math.ceil((span.to.getTime() + 1) / 300_000) * 300_000);
  const count = await deps.db.raw<{ rows: { n: string }[] }>('select count(*) as n from ticks');
  await deps.db.raw('vacuum analyze ticks');

  const floorRun = () =>
    timed(async () => {
      await deps.db.raw('drop table if exists bench_floor');
      await deps.db.raw(FLOOR_SQL);
    });
  // The rollup's own write path, from empty each time (a first full rollup).
  const rollupRun = async () => {
    await deps.db.raw('truncate bars_5m');
    return timed(() => deps.repos.rollups.rollup5m(from, to));
  };
  const floorSeconds = Math.min(await floorRun(), await floorRun());
  const rollupSeconds = Math.min(await rollupRun(), await rollupRun());
  await deps.db.raw('drop table if exists bench_floor');
  const bars = await deps.db.raw<{ rows: { n: string }[] }>('select count(*) as n from bars_5m');
  return {
    ticks: Number(count.rows[0]?.n ?? 0),
    bars: Number(bars.rows[0]?.n ?? 0),
    rollupSeconds,
    floorSeconds,
    ratio: rollupSeconds / floorSeconds,
  };
}
