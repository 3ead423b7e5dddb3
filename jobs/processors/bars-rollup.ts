/**
 * bars.rollup-5m and bars.rollup-1d: thin processors over the set-based SQL in
 * core/db/repositories/rollups.ts. They plan the range (explicit payload, else from the watermark,
 * else everything), split it into month-sized chunks (one statement and one transaction each, so
 * a huge first run reports progress and a retry redoes at most one chunk), and advance the
 * watermark.
 */
import { UnrecoverableError } from 'bullmq';
import { addDays, sessionDateOf } from '../../core/calendar/nyse.ts';
import type { Deps } from '../../core/deps.ts';
import type { JobPayload } from '../catalogue.ts';
import type { JobContext } from '../types.ts';

const FIVE_MIN_MS = 5 * 60_000;
/** Late ticks up to this far behind the watermark are re-rolled by the scheduled run. */
const LATE_TICK_LOOKBACK_MS = 60 * 60_000;
/** Sessions behind the daily watermark that the scheduled run re-rolls. */
const DAILY_LOOKBACK_DAYS = 5;

export interface Rollup5mResult {
  from: string | null;
  to: string | null;
  chunks: number;
  upserted: number;
  deleted: number;
}

export interface Rollup1dResult {
  from: string | null;
  to: string | null;
  upserted: number;
  deleted: number;
}

const isTickRange = (v: unknown): v is { tickFrom: string | null; tickTo: string | null } =>
  typeof v === 'object' && v !== null && 'tickFrom' in v && 'tickTo' in v;
const isRollup5mResult = (v: unknown): v is Rollup5mResult =>
  typeof v === 'object' && v !== null && 'chunks' in v && 'from' in v && 'to' in v;

const floor5m = (t: Date): Date => new Date(Math.floor(t.getTime() / FIVE_MIN_MS) * FIVE_MIN_MS);
const ceil5m = (t: Date): Date => new Date(Math.ceil(t.getTime() / FIVE_MIN_MS) * FIVE_MIN_MS);
const nextMonthStart = (t: Date): Date => new Date(Date.UTC(t.getUTCFullYear(), t.getUTCMonth() + 1, 1));

async function resolveSecurities(deps: Deps, symbols: string[] | undefined): Promise<number[] | undefined> {
  if (!symbols) return undefined;
  const found = await deps.repos.securities.idsForTickers(symbols);
  const missing = symbols.filter((s) => !found.has(s));
  if (missing.length) throw new UnrecoverableError(`symbols: unknown ticker(s) ${missing.join(', ')}`);
  return [...found.values()];
}

export async function rollup5m(
  deps: Deps,
  payload: JobPayload<'bars.rollup-5m'>,
  ctx: JobContext,
): Promise<Rollup5mResult> {
  const ids = await resolveSecurities(deps, payload.symbols);
  const watermark = await deps.repos.checkpoints.get<{ through: string }>('bars.rollup-5m', 'watermark');
  let from: Date | undefined = payload.from ? new Date(payload.from) : undefined;
  let to: Date | undefined = payload.to ? new Date(payload.to) : undefined;
  if (from && to && from >= to) throw new UnrecoverableError('from: must be before to');

  if (!from && !to) {
    // In a flow, roll exactly what the step before produced.
    const upstream = (await ctx.upstreamResults()).find(isTickRange);
    if (upstream?.tickFrom && upstream.tickTo) {
      from = new Date(upstream.tickFrom);
      to = new Date(Date.parse(upstream.tickTo) + 1);
    }
  }
  if (!from || !to) {
    const span = await deps.repos.rollups.tickSpan(ids);
    if (!span) {
      await ctx.log('no ticks to roll up');
      return { from: null, to: null, chunks: 0, upserted: 0, deleted: 0 };
    }
    const scheduled = !payload.from && !payload.to && !ids && watermark;
    from ??= scheduled ? new Date(Date.parse(watermark.through) - LATE_TICK_LOOKBACK_MS) : span.from;
    to ??= new Date(span.to.getTime() + 1);
  }
  const start = floor5m(from);
  const end = ceil5m(to);
  await ctx.log(
    `rolling ticks [${start.toISOString()}, ${end.toISOString()})${ids ? ` for ${ids.length} securities` : ''}`,
  );

  const chunks: [Date, Date][] = [];
  for (let a = start; a < end;) {
    const b = new Date(Math.min(nextMonthStart(a).getTime(), end.getTime()));
    chunks.push([a, b]);
    a = b;
  }
  let upserted = 0;
  let deleted = 0;
  for (const [i, [a, b]] of chunks.entries()) {
    const r = await deps.repos.rollups.rollup5m(a, b, ids);
    upserted += r.upserted;
    deleted += r.deleted;
    await ctx.log(`chunk ${a.toISOString().slice(0, 7)}: ${r.upserted} bars written, ${r.deleted} removed`);
    await ctx.progress(Math.round(((i + 1) / chunks.length) * 100));
  }
  if (!ids && (!watermark || end.toISOString() > watermark.through)) {
    await deps.repos.checkpoints.set('bars.rollup-5m', 'watermark', { through: end.toISOString() });
  }
  deps.logger.info({ job: 'bars.rollup-5m', from: start, to: end, upserted, deleted }, 'rollup-5m done');
  return { from: start.toISOString(), to: end.toISOString(), chunks: chunks.length, upserted, deleted };
}

export async function rollup1d(
  deps: Deps,
  payload: JobPayload<'bars.rollup-1d'>,
  ctx: JobContext,
): Promise<Rollup1dResult> {
  const ids = await resolveSecurities(deps, payload.symbols);
  if (payload.from && payload.to && payload.from > payload.to)
    throw new UnrecoverableError('from: must not be after to');
  const watermark = await deps.repos.checkpoints.get<{ through: string }>('bars.rollup-1d', 'watermark');
  let from = payload.from;
  let to = payload.to;
  if (!from && !to) {
    const upstream = (await ctx.upstreamResults()).find(isRollup5mResult);
    if (upstream?.from && upstream.to) {
      from = sessionDateOf(new Date(upstream.from));
      to = sessionDateOf(new Date(Date.parse(upstream.to) - 1));
    }
  }
  if (!from || !to) {
    const span = await deps.repos.rollups.barSessionSpan();
    if (!span) {
      await ctx.log('no 5-minute bars to roll up');
      return { from: null, to: null, upserted: 0, deleted: 0 };
    }
    const scheduled = !payload.from && !payload.to && !ids && watermark;
    from ??= scheduled ? addDays(watermark.through, -DAILY_LOOKBACK_DAYS) : span.from;
    to ??= span.to;
  }
  await deps.repos.calendar.ensureSessions(from, to);
  await ctx.progress(10);
  const r = await deps.repos.rollups.rollup1d(from, to, ids);
  await ctx.log(`sessions ${from}..${to}: ${r.upserted} daily bars written, ${r.deleted} removed`);
  await ctx.progress(100);
  if (!ids && (!watermark || to > watermark.through)) {
    await deps.repos.checkpoints.set('bars.rollup-1d', 'watermark', { through: to });
  }
  deps.logger.info({ job: 'bars.rollup-1d', from, to, ...r }, 'rollup-1d done');
  return { from, to, ...r };
}
