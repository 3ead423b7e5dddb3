/**
 * Full 5-minute rollup of every tick in the table (a first run: bars_5m empty), against two
 * floors measured on the same rows in the same run:
 * - the bare floor: a GROUP BY computing the same aggregates except first/last (open/close),
 *   written to an unlogged scratch table;
 * - the write floor: the same bare GROUP BY followed by the same insert into bars_5m that the
 *   rollup does (open = low, close = high to satisfy the constraints), so the ratio isolates what
 *   first/last and the rollup's own bookkeeping cost.
 * Each is run twice and the faster run counts (warm cache for all). The rollup timed is the
 * range mode as `bars.rollup-5m` runs it, including its record of the changed range per security
 * at level '1d' in bar_changes (for the incremental daily rollup; one row per security).
 * The incremental rollup has its own figure: bench/rollup-incremental.ts.
 */
import type { Deps } from '../core/deps.ts';

export interface RollupBench {
  ticks: number;
  bars: number;
  rollupSeconds: number;
  floorSeconds: number;
  writeFloorSeconds: number;
  ratio: number;
  ratioToWriteFloor: number;
}

const BARE_GROUP_BY = `
  select security_id, date_bin('5 minutes', ts, timestamptz '1970-01-01 00:00:00+00') as bucket,
         max(price) as high, min(price) as low, sum(size) as volume, sum(price * size) as pv, count(*) as trade_count
    from ticks group by 1, 2`;

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

const best = async (run: () => Promise<number>): Promise<number> => Math.min(await run(), await run());

export async function benchRollup(deps: Deps): Promise<RollupBench> {
  const span = await deps.repos.rollups.tickSpan();
  if (!span) throw new Error('bench: no ticks to roll up');
  const from = new Date(Math.floor(span.from.getTime() / 300_000) * 300_000);
  const to = new Date(Math.ceil((span.to.getTime() + 1) / 300_000) * 300_000);
  const count = await deps.db.raw<{ rows: { n: string }[] }>('select count(*) as n from ticks');
  await deps.db.raw('vacuum analyze ticks');
  await deps.db.raw(`select ensure_month_partitions('bars_5m', ?, ?)`, [from, to]);

  const floorSeconds = await best(() =>
    timed(async () => {
      await deps.db.raw('drop table if exists bench_floor');
      await deps.db.raw(`create unlogged table bench_floor as ${BARE_GROUP_BY}`);
    }),
  );
  await deps.db.raw('drop table if exists bench_floor');

  const writeFloorSeconds = await best(async () => {
    await deps.db.raw('truncate bars_5m');
    return timed(() =>
      deps.db.transaction(async (trx) => {
        await trx.raw(`create temp table bench_agg on commit drop as ${BARE_GROUP_BY}`);
        await trx.raw(`
          insert into bars_5m (security_id, bucket, open, high, low, close, volume, pv, vwap, trade_count, updated_at)
          select security_id, bucket, low, high, low, high, volume, pv,
                 case when volume > 0 then round(pv / volume, 8) end, trade_count, now()
            from bench_agg`);
      }),
    );
  });

  const rollupSeconds = await best(async () => {
    await deps.db.raw('truncate bars_5m');
    return timed(() => deps.repos.rollups.rollup5m(from, to));
  });
  const bars = await deps.db.raw<{ rows: { n: string }[] }>('select count(*) as n from bars_5m');
  return {
    ticks: Number(count.rows[0]?.n ?? 0),
    bars: Number(bars.rows[0]?.n ?? 0),
    rollupSeconds,
    floorSeconds,
    writeFloorSeconds,
    ratio: rollupSeconds / floorSeconds,
    ratioToWriteFloor: rollupSeconds / writeFloorSeconds,
  };
}
