/**
 * bars.rollup-5m and bars.rollup-1d: thin processors over the set-based SQL in
 * core/db/repositories/rollups.ts. Each runs in one of two modes.
 *
 * Incremental (an empty payload outside a flow: the scheduled runs). rollup-5m consumes the
 * level-'5m' bar_changes that tick writers append in the same transaction as their ticks, and
 * recomputes exactly the buckets they touched; rollup-1d consumes the level-'1d' changes the
 * 5-minute rollup appends for the bars it changed, and recomputes exactly those sessions. Changes
 * are consumed in batches (one transaction each) until none are left or MAX_BATCHES ran, so a run
 * costs in proportion to what changed, never to the history in the tables. The watermark
 * checkpoint is kept as the high-water mark of what was rolled (`through`: the end of the latest
 * bucket for 5m, the latest session date for 1d); the result reports it and the log line its lag
 * behind the clock.
 *
 * Range (explicit from/to, symbols without a range, or the range the step before produced in the
 * data.generate flow): every bucket / session of the range, split into month-sized chunks for
 * 5-minute bars (one transaction each, so a huge first run reports progress and a retry redoes at
 * most one chunk). This is also the sweep for ticks written by a path that recorded no changes
 * (the generator's COPY): `{from, to}` over the range it wrote. A range start older than the
 * oldest partition of the source table is raised to it, so a sweep never deletes bars whose
 * source rows retention has already dropped.
 *
 * Chaining: a run that changed bars enqueues analytics for the symbols whose bars changed, in
 * batches of at most 5,000 (the catalogue's limit): rollup-5m enqueues analytics.indicators
 * {interval '5m'}; rollup-1d enqueues analytics.indicators {interval '1d'} and analytics.risk.
 * Not inside the data.generate flow (range taken from upstream): jobs/flows.ts has analytics
 * steps of its own after the rollups. Each follow-on job is delayed by CHAIN_DEBOUNCE_MS (so a
 * burst of runs collapses) and carries a BullMQ deduplication id (job, interval, hash of its
 * symbols) with `keepLastIfActive`: a trigger for the same symbols while that job waits collapses
 * into it; while it runs, one more job is kept to run after it (the running one may have read the
 * bars before this change), never two in parallel. Enqueueing happens after the bars commit: if
 * Redis fails right then, the job fails visibly but its retry finds the changes consumed and
 * chains nothing; the next change of those symbols (or analytics.risk's own schedule) catches up.
 */
import { createHash, randomUUID } from 'node:crypto';
import { UnrecoverableError } from 'bullmq';
import { sessionDateOf } from '../../core/calendar/nyse.ts';
import type { Deps } from '../../core/deps.ts';
import type { JobPayload } from '../catalogue.ts';
import type { JobContext } from '../types.ts';

const FIVE_MIN_MS = 5 * 60_000;
/** bar_changes rows consumed per transaction. */
export const CHANGE_BATCH = 20_000;
/** Batches per run; a backlog beyond this is left to the next run (which is 5 minutes away). */
const MAX_BATCHES = 50;
/** Symbols per follow-on analytics job (the catalogue's maximum). */
const SYMBOLS_PER_JOB = 5000;
/** Follow-on analytics wait this long, so the triggers of a burst of runs collapse into one job. */
export const CHAIN_DEBOUNCE_MS = 2_000;

export interface Rollup5mResult {
  mode: 'incremental' | 'range';
  /** Buckets recomputed: [from, to), ISO; null when nothing was rolled. */
  from: string | null;
  to: string | null;
  /** Transactions: month chunks (range) or batches of changes (incremental). */
  chunks: number;
  /** bar_changes rows consumed (incremental; 0 in range mode). */
  changes: number;
  /** Merged (security, bucket range) sets recomputed (incremental; 0 in range mode). */
  ranges: number;
  upserted: number;
  deleted: number;
  /** Securities whose 5-minute bars changed. */
  symbols: number;
  /** High-water mark of buckets rolled after this run (end of the latest bucket), or null. */
  watermark: string | null;
  /** Follow-on analytics jobs enqueued (deduplicated ones not counted). */
  enqueued: number;
}

export interface Rollup1dResult {
  mode: 'incremental' | 'range';
  /** Sessions recomputed, YYYY-MM-DD inclusive; null when nothing was rolled. */
  from: string | null;
  to: string | null;
  /** bar_changes rows consumed (incremental; 0 in range mode). */
  changes: number;
  /** (security, session) pairs recomputed (incremental; 0 in range mode). */
  days: number;
  upserted: number;
  deleted: number;
  /** Securities whose daily bars changed. */
  symbols: number;
  /** Latest session date rolled after this run, or null. */
  watermark: string | null;
  /** Follow-on analytics jobs enqueued (deduplicated ones not counted). */
  enqueued: number;
}

const isTickRange = (v: unknown): v is { tickFrom: string | null; tickTo: string | null } =>
  typeof v === 'object' && v !== null && 'tickFrom' in v && 'tickTo' in v;
const isRollup5mResult = (v: unknown): v is Rollup5mResult =>
  typeof v === 'object' && v !== null && 'chunks' in v && 'from' in v && 'to' in v;

const floor5m = (t: Date): Date => new Date(Math.floor(t.getTime() / FIVE_MIN_MS) * FIVE_MIN_MS);
const ceil5m = (t: Date): Date => new Date(Math.ceil(t.getTime() / FIVE_MIN_MS) * FIVE_MIN_MS);
const nextMonthStart = (t: Date): Date => new Date(Date.UTC(t.getUTCFullYear(), t.getUTCMonth() + 1, 1));
const maxIso = (a: string | null, b: string | null): string | null =>
  a === null ? b : b === null || a > b ? a : b;

async function resolveSecurities(deps: Deps, symbols: string[] | undefined): Promise<number[] | undefined> {
  if (!symbols) return undefined;
  const found = await deps.repos.securities.idsForTickers(symbols);
  const missing = symbols.filter((s) => !found.has(s));
  if (missing.length) throw new UnrecoverableError(`symbols: unknown ticker(s) ${missing.join(', ')}`);
  return [...found.values()];
}

type Follow =
  { name: 'analytics.indicators'; interval: '1d' | '5m' } | { name: 'analytics.risk'; interval?: undefined };

/** Enqueues each follow-on job for the symbols, in batches, deduplicated per (job, symbols). */
async function chain(ctx: JobContext, follows: Follow[], symbols: string[]): Promise<number> {
  let added = 0;
  const sorted = [...new Set(symbols)].sort();
  for (let i = 0; i < sorted.length; i += SYMBOLS_PER_JOB) {
    const batch = sorted.slice(i, i + SYMBOLS_PER_JOB);
    const digest = createHash('sha1').update(batch.join(',')).digest('hex');
    for (const f of follows) {
      const opts = {
        // An id of our own, so a trigger collapsed into a pending job is told apart (ctx.enqueue
        // returns undefined for it) and not counted as enqueued.
        jobId: randomUUID(),
        delay: CHAIN_DEBOUNCE_MS,
        deduplication: { id: `${f.name}:${f.interval ?? '-'}:${digest}`, keepLastIfActive: true },
      };
      const id =
        f.name === 'analytics.indicators'
          ? await ctx.enqueue(f.name, { symbols: batch, interval: f.interval }, opts)
          : await ctx.enqueue(f.name, { symbols: batch }, opts);
      if (id !== undefined) added += 1;
    }
  }
  return added;
}

const lagSeconds = (deps: Deps, through: string | null): number | null =>
  through === null ? null : Math.round((deps.clock.now().getTime() - Date.parse(through)) / 1000);

export async function rollup5m(
  deps: Deps,
  payload: JobPayload<'bars.rollup-5m'>,
  ctx: JobContext,
): Promise<Rollup5mResult> {
  const ids = await resolveSecurities(deps, payload.symbols);
  let from: Date | undefined = payload.from ? new Date(payload.from) : undefined;
  let to: Date | undefined = payload.to ? new Date(payload.to) : undefined;
  if (from && to && from >= to) throw new UnrecoverableError('from: must be before to');

  let inFlow = false;
  if (!from && !to) {
    // In a flow, roll exactly what the step before produced.
    const upstream = (await ctx.upstreamResults()).find(isTickRange);
    if (upstream?.tickFrom && upstream.tickTo) {
      from = new Date(upstream.tickFrom);
      to = new Date(Date.parse(upstream.tickTo) + 1);
      inFlow = true;
    }
  }
  if (!from && !to && !ids) return incremental5m(deps, ctx);

  const watermark = await deps.repos.checkpoints.get<{ through: string }>('bars.rollup-5m', 'watermark');
  const empty: Rollup5mResult = {
    mode: 'range',
    from: null,
    to: null,
    chunks: 0,
    changes: 0,
    ranges: 0,
    upserted: 0,
    deleted: 0,
    symbols: 0,
    watermark: watermark?.through ?? null,
    enqueued: 0,
  };
  if (!from || !to) {
    const span = await deps.repos.rollups.tickSpan(ids);
    if (!span) {
      await ctx.log('no ticks to roll up');
      return empty;
    }
    from ??= span.from;
    to ??= new Date(span.to.getTime() + 1);
  }
  let start = floor5m(from);
  const end = ceil5m(to);
  const oldest = await deps.repos.retention.oldestPartitionStart('ticks');
  if (oldest && start < oldest) start = oldest;
  if (start >= end) {
    await ctx.log(`nothing to roll: the range ends before the oldest ticks partition`);
    return empty;
  }
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
  const changed = new Set<string>();
  for (const [i, [a, b]] of chunks.entries()) {
    const r = await deps.repos.rollups.rollup5m(a, b, ids);
    upserted += r.upserted;
    deleted += r.deleted;
    for (const s of r.changedSymbols) changed.add(s);
    await ctx.log(`chunk ${a.toISOString().slice(0, 7)}: ${r.upserted} bars written, ${r.deleted} removed`);
    await ctx.progress(Math.round(((i + 1) / chunks.length) * 100));
  }
  let through = watermark?.through ?? null;
  if (!ids && maxIso(through, end.toISOString()) !== through) {
    through = end.toISOString();
    await deps.repos.checkpoints.set('bars.rollup-5m', 'watermark', { through });
  }
  const enqueued = inFlow
    ? 0
    : await chain(ctx, [{ name: 'analytics.indicators', interval: '5m' }], [...changed]);
  deps.logger.info(
    { job: 'bars.rollup-5m', mode: 'range', from: start, to: end, upserted, deleted, enqueued },
    'rollup-5m done',
  );
  return {
    ...empty,
    from: start.toISOString(),
    to: end.toISOString(),
    chunks: chunks.length,
    upserted,
    deleted,
    symbols: changed.size,
    watermark: through,
    enqueued,
  };
}

async function incremental5m(deps: Deps, ctx: JobContext): Promise<Rollup5mResult> {
  const watermark = await deps.repos.checkpoints.get<{ through: string }>('bars.rollup-5m', 'watermark');
  const pending = await deps.repos.rollups.pendingChanges('5m');
  const result: Rollup5mResult = {
    mode: 'incremental',
    from: null,
    to: null,
    chunks: 0,
    changes: 0,
    ranges: 0,
    upserted: 0,
    deleted: 0,
    symbols: 0,
    watermark: watermark?.through ?? null,
    enqueued: 0,
  };
  const changed = new Set<string>();
  let from: Date | null = null;
  let to: Date | null = null;
  // Changes reaching before the oldest ticks partition are clipped to it (retention dropped those ticks).
  const notBefore = await deps.repos.retention.oldestPartitionStart('ticks');
  for (let i = 0; i < MAX_BATCHES; i++) {
    const r = await deps.repos.rollups.rollup5mChanges({ limit: CHANGE_BATCH, notBefore });
    if (r.changes === 0) break;
    result.chunks += 1;
    result.changes += r.changes;
    result.ranges += r.ranges;
    result.upserted += r.upserted;
    result.deleted += r.deleted;
    for (const s of r.changedSymbols) changed.add(s);
    if (r.from && (!from || r.from < from)) from = r.from;
    if (r.to && (!to || r.to > to)) to = r.to;
    await ctx.log(
      `batch ${i + 1}: ${r.changes} changes -> ${r.ranges} ranges, ${r.upserted} bars written, ${r.deleted} removed`,
    );
    await ctx.progress(Math.min(99, Math.round((result.changes / Math.max(pending, 1)) * 100)));
    if (r.changes < CHANGE_BATCH) break;
  }
  result.from = from?.toISOString() ?? null;
  result.to = to?.toISOString() ?? null;
  if (to && maxIso(result.watermark, to.toISOString()) !== result.watermark) {
    result.watermark = to.toISOString();
    await deps.repos.checkpoints.set('bars.rollup-5m', 'watermark', { through: result.watermark });
  }
  result.symbols = changed.size;
  result.enqueued = await chain(ctx, [{ name: 'analytics.indicators', interval: '5m' }], [...changed]);
  const lag = lagSeconds(deps, result.watermark);
  await ctx.log(
    result.changes
      ? `${result.changes} changes consumed; watermark ${result.watermark} (lag ${lag} s)`
      : `no changes pending; watermark ${result.watermark ?? 'none'}${lag === null ? '' : ` (lag ${lag} s)`}`,
  );
  await ctx.progress(100);
  deps.logger.info(
    { job: 'bars.rollup-5m', ...result, lagSeconds: lag },
    result.changes ? 'rollup-5m done' : 'rollup-5m: nothing pending',
  );
  return result;
}

export async function rollup1d(
  deps: Deps,
  payload: JobPayload<'bars.rollup-1d'>,
  ctx: JobContext,
): Promise<Rollup1dResult> {
  const ids = await resolveSecurities(deps, payload.symbols);
  if (payload.from && payload.to && payload.from > payload.to)
    throw new UnrecoverableError('from: must not be after to');
  let from = payload.from;
  let to = payload.to;
  let inFlow = false;
  if (!from && !to) {
    const upstream = (await ctx.upstreamResults()).find(isRollup5mResult);
    if (upstream?.from && upstream.to) {
      from = sessionDateOf(new Date(upstream.from));
      to = sessionDateOf(new Date(Date.parse(upstream.to) - 1));
      inFlow = true;
    }
  }
  if (!from && !to && !ids) return incremental1d(deps, ctx);

  const watermark = await deps.repos.checkpoints.get<{ through: string }>('bars.rollup-1d', 'watermark');
  const empty: Rollup1dResult = {
    mode: 'range',
    from: null,
    to: null,
    changes: 0,
    days: 0,
    upserted: 0,
    deleted: 0,
    symbols: 0,
    watermark: watermark?.through ?? null,
    enqueued: 0,
  };
  if (!from || !to) {
    const span = await deps.repos.rollups.barSessionSpan();
    if (!span) {
      await ctx.log('no 5-minute bars to roll up');
      return empty;
    }
    from ??= span.from;
    to ??= span.to;
  }
  // Partitions start at UTC midnight and a NYSE session lies within its UTC day, so the first
  // whole session in the oldest partition is the one dated that UTC day.
  const oldest = (await deps.repos.retention.oldestPartitionStart('bars_5m'))?.toISOString().slice(0, 10);
  if (oldest && from < oldest) from = oldest;
  if (from > to) {
    await ctx.log('nothing to roll: the range ends before the oldest bars_5m partition');
    return empty;
  }
  await deps.repos.calendar.ensureSessions(from, to);
  await ctx.progress(10);
  const r = await deps.repos.rollups.rollup1d(from, to, ids);
  await ctx.log(`sessions ${from}..${to}: ${r.upserted} daily bars written, ${r.deleted} removed`);
  let through = watermark?.through ?? null;
  if (!ids && maxIso(through, to) !== through) {
    through = to;
    await deps.repos.checkpoints.set('bars.rollup-1d', 'watermark', { through });
  }
  const enqueued = inFlow
    ? 0
    : await chain(
        ctx,
        [{ name: 'analytics.indicators', interval: '1d' }, { name: 'analytics.risk' }],
        r.changedSymbols,
      );
  await ctx.progress(100);
  deps.logger.info(
    { job: 'bars.rollup-1d', mode: 'range', from, to, upserted: r.upserted, deleted: r.deleted, enqueued },
    'rollup-1d done',
  );
  return {
    ...empty,
    from,
    to,
    upserted: r.upserted,
    deleted: r.deleted,
    symbols: r.changedSymbols.length,
    watermark: through,
    enqueued,
  };
}

async function incremental1d(deps: Deps, ctx: JobContext): Promise<Rollup1dResult> {
  const watermark = await deps.repos.checkpoints.get<{ through: string }>('bars.rollup-1d', 'watermark');
  const result: Rollup1dResult = {
    mode: 'incremental',
    from: null,
    to: null,
    changes: 0,
    days: 0,
    upserted: 0,
    deleted: 0,
    symbols: 0,
    watermark: watermark?.through ?? null,
    enqueued: 0,
  };
  // Sessions must exist as rows before changes are mapped to them: ensure them over the span of
  // what is pending now, and consume only changes inside that span (later ones wait a run).
  const within = await deps.repos.rollups.pending1dSpan();
  const changed = new Set<string>();
  if (within) {
    await deps.repos.calendar.ensureSessions(sessionDateOf(within.from), sessionDateOf(within.to));
    const pending = await deps.repos.rollups.pendingChanges('1d');
    const notBefore = await deps.repos.retention.oldestPartitionStart('bars_5m');
    for (let i = 0; i < MAX_BATCHES; i++) {
      const r = await deps.repos.rollups.rollup1dChanges({ limit: CHANGE_BATCH, within, notBefore });
      if (r.changes === 0) break;
      result.changes += r.changes;
      result.days += r.days;
      result.upserted += r.upserted;
      result.deleted += r.deleted;
      for (const s of r.changedSymbols) changed.add(s);
      if (r.from && (!result.from || r.from < result.from)) result.from = r.from;
      if (r.to && (!result.to || r.to > result.to)) result.to = r.to;
      await ctx.log(
        `batch ${i + 1}: ${r.changes} changes -> ${r.days} security-days, ${r.upserted} daily bars written, ${r.deleted} removed`,
      );
      await ctx.progress(Math.min(99, Math.round((result.changes / Math.max(pending, 1)) * 100)));
      if (r.changes < CHANGE_BATCH) break;
    }
  }
  if (result.to && maxIso(result.watermark, result.to) !== result.watermark) {
    result.watermark = result.to;
    await deps.repos.checkpoints.set('bars.rollup-1d', 'watermark', { through: result.watermark });
  }
  result.symbols = changed.size;
  result.enqueued = await chain(
    ctx,
    [{ name: 'analytics.indicators', interval: '1d' }, { name: 'analytics.risk' }],
    [...changed],
  );
  await ctx.log(
    result.changes
      ? `${result.changes} changes consumed; ${result.symbols} securities changed; watermark ${result.watermark}`
      : `no changes pending; watermark ${result.watermark ?? 'none'}`,
  );
  await ctx.progress(100);
  deps.logger.info(
    { job: 'bars.rollup-1d', ...result },
    result.changes ? 'rollup-1d done' : 'rollup-1d: nothing pending',
  );
  return result;
}
