/**
 * prices.fetch, prices.quote and prices.backfill.
 *
 * prices.fetch (every minute 09:00–16:59 on weekdays) checks the NYSE calendar itself and skips
 * unless the regular session is open (holidays, weekends, before 09:30, after 16:00 or a 13:00
 * early close), unless forced; then enqueues one prices.quote per watch-list symbol into its
 * provider's lane. Each carries `deduplication: { id: 'quote:<SYMBOL>' }`: while a symbol's quote
 * job is waiting or running, further triggers collapse into it, so one symbol never holds more
 * than one job and a burst for one symbol cannot crowd out the others in the lane.
 *
 * prices.backfill plans chunks per symbol the provider accepts (provider.limits: span per
 * request, intraday lookback), only over completed sessions; each chunk's rows, corporate
 * actions, quarantined rows and checkpoint commit in one transaction, so a crash, a kill or a
 * retry resumes after the last committed chunk, and a new job with the same payload resumes too
 * (checkpoint keys derive from the payload). A finished run deletes its checkpoints, so running
 * the same payload again later re-fetches (idempotently). Mode "missing" fetches only runs of
 * sessions that have no bars. While one chunk commits, the next is fetched and validated, so the
 * provider's latency and our CPU overlap the database's work; memory holds two chunks at most.
 *
 * A permanent provider error for one symbol (a delisted ticker, say) fails that symbol only: its
 * error body is quarantined, its remaining chunks are skipped, the others carry on, and the result
 * lists it under `failed`; the job fails (permanently) only when every symbol failed. Rate-limit
 * and transient errors still fail the attempt, so the queue backs off or retries and the
 * checkpoints resume. A daily backfill that accepted rows enqueues analytics.indicators {1d} and
 * analytics.risk for those symbols, debounced and deduplicated like the rollups' chain (same ids,
 * so a rollup's follow-on and a backfill's for the same symbols collapse into one job).
 */
import { createHash } from 'node:crypto';
import { UnrecoverableError, type JobsOptions } from 'bullmq';
import {
  addDays,
  sessionDateOf,
  sessionFor,
  sessionsBetween,
  type Session,
} from '../../core/calendar/nyse.ts';
import type { BatchResult, IngestBatch } from '../../core/db/repositories/ingest.ts';
import type { IngestSecurity } from '../../core/db/repositories/securities.ts';
import type { Deps } from '../../core/deps.ts';
import { actionRows, dailyBarRows, intradayTicks, quarantineRows, BAR_SEQ } from '../../core/ingest/load.ts';
import { ingestQuote, providerNameOf } from '../../core/ingest/quotes.ts';
import {
  validateDailyBars,
  validateEvents,
  validateIntradayBars,
  type Rejected,
} from '../../core/ingest/validate.ts';
import {
  ProviderError,
  ProviderPermanentError,
  ProviderRateLimitError,
  ProviderTransientError,
  type ProviderLimits,
  type ProviderName,
} from '../../core/providers/types.ts';
import type { JobPayload } from '../catalogue.ts';
import type { JobContext } from '../types.ts';
import { CHAIN_DEBOUNCE_MS } from './bars-rollup.ts';

const BACKFILL = 'prices.backfill';
/** The catalogue's limit of symbols per analytics job. */
const SYMBOLS_PER_JOB = 5000;

// ---------------------------------------------------------------------------------------------
// prices.fetch

export interface PricesFetchResult {
  skipped: boolean;
  /** Why the run did nothing (market closed), when skipped. */
  reason?: string;
  symbols: number;
  enqueued: number;
  /** Triggers that collapsed into a quote job already pending for the symbol. */
  collapsed: number;
  unknown: string[];
}

/** Whether the NYSE regular session is open at an instant, and if not, why. */
export function marketStatus(now: Date): { open: boolean; reason: string } {
  const date = sessionDateOf(now);
  const session = sessionFor(date);
  if (!session) return { open: false, reason: `${date} is not an NYSE trading day` };
  if (now < session.openAt)
    return { open: false, reason: `before the ${date} open (${session.openAt.toISOString()})` };
  if (now >= session.closeAt)
    return {
      open: false,
      reason: `after the ${date} close (${session.closeAt.toISOString()}${session.earlyClose ? ', early close' : ''})`,
    };
  return { open: true, reason: `the ${date} session is open` };
}

export async function pricesFetch(
  deps: Deps,
  payload: JobPayload<'prices.fetch'>,
  ctx: JobContext,
): Promise<PricesFetchResult> {
  const now = deps.clock.now();
  const status = marketStatus(now);
  if (!status.open && !payload.force) {
    await ctx.log(`market closed at ${now.toISOString()}: ${status.reason}; nothing fetched`);
    return { skipped: true, reason: status.reason, symbols: 0, enqueued: 0, collapsed: 0, unknown: [] };
  }
  let targets: { ticker: string; provider: string | null }[];
  const unknown: string[] = [];
  if (payload.symbols) {
    const found = await deps.repos.securities.forIngest(payload.symbols);
    targets = [];
    for (const s of new Set(payload.symbols)) {
      const sec = found.get(s);
      if (sec) targets.push({ ticker: sec.ticker, provider: sec.provider });
      else unknown.push(s);
    }
    if (unknown.length) await ctx.log(`unknown symbols skipped: ${unknown.join(', ')}`);
  } else {
    targets = await deps.repos.watchlist.activeWithProviders();
  }
  let enqueued = 0;
  let collapsed = 0;
  // A job id of our own tells a new job (id returned = ours) from a collapsed trigger (the pending
  // job's id returned); BullMQ forbids ':' in custom ids.
  const run = ctx.id.replaceAll(':', '_');
  for (const t of targets) {
    let provider: ProviderName;
    try {
      provider = providerNameOf(t.provider, t.ticker, deps.config.market.provider);
    } catch (err) {
      await ctx.log((err as Error).message);
      unknown.push(t.ticker);
      continue;
    }
    const jobId = `quote-${run}-${t.ticker}`;
    const id = await ctx.enqueue(
      'prices.quote',
      { symbol: t.ticker, provider },
      { jobId, deduplication: { id: `quote:${t.ticker}` } },
    );
    if (id === jobId) enqueued += 1;
    else collapsed += 1;
  }
  await ctx.log(
    `${status.open ? status.reason : `forced while closed (${status.reason})`}: ${enqueued} quote jobs enqueued, ${collapsed} collapsed into pending ones`,
  );
  await ctx.progress(100);
  return { skipped: false, symbols: targets.length, enqueued, collapsed, unknown };
}

// ---------------------------------------------------------------------------------------------
// prices.quote

export interface PricesQuoteResult {
  symbol: string;
  provider: ProviderName;
  accepted: number;
  duplicates: number;
  quarantined: number;
  price?: string;
  ts?: string;
}

export async function pricesQuote(
  deps: Deps,
  payload: JobPayload<'prices.quote'>,
  ctx: JobContext,
): Promise<PricesQuoteResult> {
  const security = (await deps.repos.securities.forIngest([payload.symbol])).get(payload.symbol);
  if (!security) throw new UnrecoverableError(`symbol: unknown ticker ${payload.symbol}`);
  const res = await ingestQuote(deps, security, payload.provider, {
    jobName: 'prices.quote',
    jobId: ctx.id,
    log: (line) => ctx.log(line),
  });
  if (res.provider !== payload.provider) await ctx.log(`served by ${res.provider} (fallback)`);
  for (const r of res.reasons) await ctx.log(`quarantined: ${r}`);
  if (res.tick)
    await ctx.log(
      `${payload.symbol} ${res.tick.price} at ${res.tick.ts.toISOString()}: ${res.accepted ? 'stored' : 'already stored'}`,
    );
  await ctx.progress(100);
  return {
    symbol: res.symbol,
    provider: res.provider,
    accepted: res.accepted,
    duplicates: res.duplicates,
    quarantined: res.quarantined,
    ...(res.tick ? { price: res.tick.price, ts: res.tick.ts.toISOString() } : {}),
  };
}

// ---------------------------------------------------------------------------------------------
// prices.backfill: planning (pure)

export type BackfillInterval = '1d' | '5m' | '1m';

export interface ChunkPlan {
  /** Inclusive session dates. */
  chunks: { from: string; to: string; sessions: Session[] }[];
  /** Set when the range was clipped to the provider's intraday reach. */
  clippedFrom?: string;
  /** Sessions of the range left out: not completed yet, or before the provider's reach. */
  notCompleted: number;
  beyondReach: number;
}

const dayNumber = (date: string): number => Date.parse(`${date}T00:00:00Z`) / 86_400_000;

/**
 * Chunks of completed sessions in [from, to] that one request of the provider can cover: at most
 * `dailyMaxSpanDays` (daily) or `intradayMaxSpanDays[interval]` calendar days from a chunk's first
 * session to its last. Intraday ranges start no earlier than the provider's lookback allows
 * (clipped; `beyondReach` counts what was cut). With `only` (mode "missing"), chunks cover runs
 * of consecutive sessions from that set and nothing else.
 */
export function planChunks(opts: {
  from: string;
  to: string;
  interval: BackfillInterval;
  limits: ProviderLimits;
  now: Date;
  only?: ReadonlySet<string>;
}): ChunkPlan {
  const minutes = opts.interval === '1d' ? 0 : opts.interval === '5m' ? 5 : 1;
  const span = minutes === 0 ? opts.limits.dailyMaxSpanDays : (opts.limits.intradayMaxSpanDays[minutes] ?? 1);
  const all = sessionsBetween(opts.from, opts.to);
  const done = all.filter((s) => s.closeAt.getTime() <= opts.now.getTime());
  const plan: ChunkPlan = { chunks: [], notCompleted: all.length - done.length, beyondReach: 0 };
  let usable = done;
  if (minutes > 0) {
    const lookback = opts.limits.intradayLookbackDays[minutes] ?? 0;
    const earliest = addDays(sessionDateOf(opts.now), -(lookback - 1));
    usable = done.filter((s) => s.date >= earliest);
    plan.beyondReach = done.length - usable.length;
    if (plan.beyondReach > 0) plan.clippedFrom = earliest;
  }
  let prevIndex = -2;
  for (let i = 0; i < usable.length; i++) {
    const s = usable[i]!;
    if (opts.only && !opts.only.has(s.date)) continue;
    const current = plan.chunks.at(-1);
    const consecutive = prevIndex === i - 1;
    if (current && consecutive && dayNumber(s.date) - dayNumber(current.from) + 1 <= Math.max(1, span)) {
      current.to = s.date;
      current.sessions.push(s);
    } else {
      plan.chunks.push({ from: s.date, to: s.date, sessions: [s] });
    }
    prevIndex = i;
  }
  return plan;
}

/** Checkpoint key prefix of a backfill payload: the same payload resumes the same chunks. */
export function backfillRunKey(payload: JobPayload<'prices.backfill'>): string {
  const canonical = JSON.stringify({
    symbols: [...new Set(payload.symbols)].sort(),
    from: payload.from,
    to: payload.to,
    interval: payload.interval,
    mode: payload.mode,
    provider: payload.provider ?? null,
  });
  return createHash('sha256').update(canonical).digest('hex').slice(0, 16);
}

// ---------------------------------------------------------------------------------------------
// prices.backfill: the job

export interface BackfillCounts {
  accepted: number;
  /** Rows not newly stored: exact repeats, and rows whose prints corrected stored ones. */
  duplicates: number;
  quarantined: number;
  /** Intraday: stored prints a provider's corrected bar replaced (kept in tick_corrections). */
  ticksCorrected: number;
  /** Intraday: prints whose key is stored from another origin with other values (quarantined). */
  ticksConflicting: number;
  actionsStored: number;
  actionsExisting: number;
}

export interface PricesBackfillResult extends BackfillCounts {
  symbols: number;
  interval: BackfillInterval;
  mode: 'all' | 'missing';
  chunks: { total: number; fetched: number; resumed: number };
  /** Per symbol: provider(s) that served it and its counts. */
  perSymbol: Record<string, BackfillCounts & { providers: string[]; chunks: number }>;
  /** Symbols a provider refused permanently (their later chunks skipped); the others loaded. */
  failed: { symbol: string; error: string }[];
  /** Follow-on analytics jobs enqueued (deduplicated ones not counted). */
  enqueued: number;
  notes: string[];
}

interface PlannedChunk {
  security: IngestSecurity;
  primary: ProviderName;
  from: string;
  to: string;
  sessions: Session[];
  key: string;
}

const zero = (): BackfillCounts => ({
  accepted: 0,
  duplicates: 0,
  quarantined: 0,
  ticksCorrected: 0,
  ticksConflicting: 0,
  actionsStored: 0,
  actionsExisting: 0,
});

function add(into: BackfillCounts, c: Partial<BackfillCounts>): void {
  into.accepted += c.accepted ?? 0;
  into.duplicates += c.duplicates ?? 0;
  into.quarantined += c.quarantined ?? 0;
  into.ticksCorrected += c.ticksCorrected ?? 0;
  into.ticksConflicting += c.ticksConflicting ?? 0;
  into.actionsStored += c.actionsStored ?? 0;
  into.actionsExisting += c.actionsExisting ?? 0;
}

/** The same kind of provider error, its message prefixed with where it happened. */
function withContext(err: ProviderError, where: string): ProviderError {
  const msg = `${where}: ${err.message.replace(`${err.provider}: `, '')}`;
  if (err instanceof ProviderRateLimitError)
    return new ProviderRateLimitError(err.provider, msg, err.retryAfterMs, err.raw);
  if (err.kind === 'permanent') return new ProviderPermanentError(err.provider, msg, err.raw);
  return new ProviderTransientError(err.provider, msg, err.raw);
}

export async function pricesBackfill(
  deps: Deps,
  payload: JobPayload<'prices.backfill'>,
  ctx: JobContext,
): Promise<PricesBackfillResult> {
  if (payload.to < payload.from)
    throw new UnrecoverableError(`to: ${payload.to} is before from ${payload.from}`);
  const symbols = [...new Set(payload.symbols)];
  const found = await deps.repos.securities.forIngest(symbols);
  const unknown = symbols.filter((s) => !found.has(s));
  if (unknown.length) throw new UnrecoverableError(`symbols: unknown tickers ${unknown.join(', ')}`);
  const now = deps.clock.now();
  const interval = payload.interval;
  const minutes = interval === '1d' ? 0 : interval === '5m' ? 5 : 1;
  const runKey = backfillRunKey(payload);
  const notes: string[] = [];
  const noteOnce = async (line: string): Promise<void> => {
    if (notes.includes(line)) return;
    notes.push(line);
    await ctx.log(line);
  };

  // market_sessions rows for the range: the "missing" query and the daily rollup join them.
  await deps.repos.calendar.ensureSessions(payload.from, payload.to);

  // Plan every chunk of every symbol first, so progress is a share of the whole job.
  const planned: PlannedChunk[] = [];
  for (const symbol of symbols) {
    const security = found.get(symbol)!;
    let primary: ProviderName;
    try {
      primary = payload.provider ?? providerNameOf(security.provider, symbol, deps.config.market.provider);
    } catch (err) {
      throw new UnrecoverableError((err as Error).message);
    }
    let limits: ProviderLimits;
    try {
      limits = deps.providers.get(primary).limits;
    } catch (err) {
      throw new UnrecoverableError(`provider: ${primary} is not available (${(err as Error).message})`);
    }
    if (minutes > 0 && !limits.intradayIntervals.includes(minutes))
      throw new UnrecoverableError(`interval: ${primary} does not serve ${minutes}-minute bars (${symbol})`);
    const only =
      payload.mode === 'missing'
        ? new Set(
            await deps.repos.providerBars.sessionsMissing(security.id, payload.from, payload.to, interval),
          )
        : undefined;
    const plan = planChunks({
      from: payload.from,
      to: payload.to,
      interval,
      limits,
      now,
      ...(only ? { only } : {}),
    });
    if (minutes > 0 && plan.beyondReach > 0 && plan.chunks.length === 0 && (!only || only.size > 0)) {
      const lookback = limits.intradayLookbackDays[minutes] ?? 0;
      throw new UnrecoverableError(
        `from/to: ${payload.from}..${payload.to} is wholly beyond ${primary}'s ${minutes}-minute history (${lookback} days back from ${sessionDateOf(now)})`,
      );
    }
    // Said once per job, not once per symbol (a backfill may name thousands).
    if (plan.clippedFrom)
      await noteOnce(
        `${primary} keeps ${minutes}-minute bars back to ${plan.clippedFrom} only; ${plan.beyondReach} earlier sessions skipped per symbol`,
      );
    if (plan.notCompleted > 0)
      await noteOnce(`${plan.notCompleted} sessions not completed at ${now.toISOString()}; skipped`);
    if (only && symbols.length <= 50) await ctx.log(`${symbol}: ${only.size} sessions without bars`);
    for (const c of plan.chunks)
      planned.push({
        security,
        primary,
        from: c.from,
        to: c.to,
        sessions: c.sessions,
        key: `${runKey}:${symbol}:${interval}:${c.from}:${c.to}`,
      });
  }
  await ctx.log(
    `backfill ${interval} ${payload.from}..${payload.to} (${payload.mode}): ${symbols.length} symbols, ${planned.length} chunks`,
  );

  const result: PricesBackfillResult = {
    symbols: symbols.length,
    interval,
    mode: payload.mode,
    chunks: { total: planned.length, fetched: 0, resumed: 0 },
    ...zero(),
    perSymbol: {},
    failed: [],
    enqueued: 0,
    notes,
  };
  const failed = new Map<string, string>();
  for (const s of symbols) result.perSymbol[s] = { ...zero(), providers: [], chunks: 0 };
  const committed = await deps.repos.checkpoints.statesWithPrefix(BACKFILL, `${runKey}:`);
  const verbose = planned.length <= 500;
  let finished = 0;

  // While one chunk commits, the next is fetched, validated and encoded (the provider's latency
  // and our CPU overlap the database's work); a failed fetch surfaces when its chunk's turn
  // comes, in order. At most one chunk is held in memory besides the one committing.
  let pending: { chunk: PlannedChunk; prepared: Promise<Prepared> } | undefined;
  const prefetch = (from: number): void => {
    let j = from;
    while (j < planned.length && (committed.has(planned[j]!.key) || failed.has(planned[j]!.security.ticker)))
      j++;
    const next = planned[j];
    pending = next ? { chunk: next, prepared: prepareChunk(deps, ctx, next, minutes, now) } : undefined;
  };
  for (const [i, chunk] of planned.entries()) {
    // The worker is shutting down: stop between chunks (each committed one has its checkpoint) and
    // let the job go back to waiting; whoever takes it next resumes after the last checkpoint.
    if (ctx.shutdown?.aborted)
      throw new Error(
        `stopped after ${finished} of ${planned.length} chunks: ${String(ctx.shutdown.reason)}`,
      );
    const symbol = chunk.security.ticker;
    const per = result.perSymbol[symbol]!;
    const prior = committed.get(chunk.key) as ChunkState | undefined;
    if (failed.has(symbol)) {
      // Skipped: the provider refused this symbol for good on an earlier chunk.
    } else if (prior) {
      const c = chunkCounts(prior, minutes);
      result.chunks.resumed += 1;
      add(result, c);
      add(per, c);
      per.chunks += 1;
      if (!per.providers.includes(prior.provider)) per.providers.push(prior.provider);
    } else {
      const prepared = await (pending?.chunk === chunk
        ? pending.prepared
        : prepareChunk(deps, ctx, chunk, minutes, now));
      if (!prepared.ok) {
        const err = await chunkFailure(deps, ctx, chunk, prepared.error);
        if (!(err instanceof ProviderError) || err.kind !== 'permanent') throw err;
        failed.set(symbol, err.message);
        result.failed.push({ symbol, error: err.message });
        await ctx.log(`${symbol} failed permanently (${err.message}); its remaining chunks skipped`);
        prefetch(i + 1);
        finished += 1;
        await ctx.progress((finished / planned.length) * 100, { chunks: planned.length, done: finished });
        continue;
      }
      // Start the commit first (it waits on the database), then prepare the next chunk meanwhile.
      const committing = commitChunk(deps, chunk, minutes, prepared);
      prefetch(i + 1);
      const counts = await committing;
      if (counts.skipped) result.chunks.resumed += 1;
      else result.chunks.fetched += 1;
      add(result, counts.counts);
      add(per, counts.counts);
      per.chunks += 1;
      if (!per.providers.includes(counts.provider)) per.providers.push(counts.provider);
      if (verbose)
        await ctx.log(
          `${symbol} ${chunk.from}..${chunk.to} via ${counts.provider}: ${counts.counts.accepted} accepted, ${counts.counts.duplicates} duplicates, ${counts.counts.quarantined} quarantined${counts.skipped ? ' (committed by another worker)' : ''}`,
        );
    }
    finished += 1;
    await ctx.progress((finished / planned.length) * 100, { chunks: planned.length, done: finished });
  }
  if (planned.length === 0) await ctx.progress(100);
  if (failed.size > 0 && failed.size === symbols.length)
    throw new UnrecoverableError(
      `symbols: every symbol failed: ${result.failed.map((f) => `${f.symbol} (${f.error})`).join('; ')}`,
    );
  // The run is complete: its resume points have served their purpose.
  await deps.repos.checkpoints.deleteWithPrefix(BACKFILL, `${runKey}:`);
  await ctx.log(
    `done: ${result.accepted} accepted, ${result.duplicates} duplicates, ${result.quarantined} quarantined, ${result.ticksCorrected} prints corrected, ${result.ticksConflicting} conflicting; corporate actions ${result.actionsStored} new, ${result.actionsExisting} known; chunks ${result.chunks.fetched} fetched, ${result.chunks.resumed} resumed${failed.size ? `; ${failed.size} symbols failed: ${[...failed.keys()].join(', ')}` : ''}`,
  );
  // Intraday rows reach analytics through bar_changes and the rollups' chain; daily rows skip the
  // rollups, so the backfill chains analytics itself. Resumed chunks count: their attempt never
  // got this far.
  if (interval === '1d') {
    const changed = symbols.filter((s) => result.perSymbol[s]!.accepted > 0);
    result.enqueued = await chainAnalytics(ctx, changed);
    if (changed.length)
      await ctx.log(
        `analytics for ${changed.length} symbols with new daily bars: ${result.enqueued} jobs enqueued`,
      );
  }
  return result;
}

/**
 * analytics.indicators {1d} and analytics.risk for the symbols, in batches of the catalogue's
 * limit; debounced and deduplicated with the ids bars.rollup-1d uses, so overlapping triggers
 * collapse. Returns the jobs added (collapsed ones not counted).
 */
async function chainAnalytics(ctx: JobContext, symbols: string[]): Promise<number> {
  let added = 0;
  const sorted = [...new Set(symbols)].sort();
  for (let i = 0; i < sorted.length; i += SYMBOLS_PER_JOB) {
    const batch = sorted.slice(i, i + SYMBOLS_PER_JOB);
    const digest = createHash('sha1').update(batch.join(',')).digest('hex');
    const opts = (id: string): JobsOptions => ({
      delay: CHAIN_DEBOUNCE_MS,
      deduplication: { id, keepLastIfActive: true },
    });
    const ids = [
      await ctx.enqueue(
        'analytics.indicators',
        { symbols: batch, interval: '1d' },
        opts(`analytics.indicators:1d:${digest}`),
      ),
      await ctx.enqueue('analytics.risk', { symbols: batch }, opts(`analytics.risk:-:${digest}`)),
    ];
    added += ids.filter((id) => id !== undefined).length;
  }
  return added;
}

/** A chunk fetched, validated and encoded, ready to commit; or the failure to report in turn. */
type Prepared =
  { ok: true; provider: ProviderName; batch: IngestBatch; state: ChunkState } | { ok: false; error: unknown };

/**
 * Fetches one chunk from its providers, validates it and builds its batch (rows, corporate
 * actions, quarantined rows, checkpoint). Never rejects: the outcome is handled in chunk order.
 */
async function prepareChunk(
  deps: Deps,
  ctx: JobContext,
  chunk: PlannedChunk,
  minutes: number,
  now: Date,
): Promise<Prepared> {
  const { security } = chunk;
  const symbol = security.ticker;
  const onFallback = (from: ProviderName, err: ProviderError): void =>
    void ctx.log(
      `${symbol} ${chunk.from}..${chunk.to}: ${from} failed (${err.message}); trying the next provider`,
    );
  try {
    const batch: IngestBatch = {};
    let provider: ProviderName;
    let rejected: Rejected[];
    let events;
    let responseDuplicates: number;
    if (minutes === 0) {
      const r = await deps.providers.withFallback(
        chunk.primary,
        (p) => p.daily(symbol, chunk.from, chunk.to),
        onFallback,
      );
      provider = r.provider;
      const v = validateDailyBars(r.value, { security, now });
      events = validateEvents(r.value.events);
      batch.dailyBars = dailyBarRows(security.id, v.accepted, provider);
      rejected = v.rejected;
      responseDuplicates = v.duplicates;
    } else {
      const first = chunk.sessions[0]!;
      const last = chunk.sessions.at(-1)!;
      const r = await deps.providers.withFallback(
        chunk.primary,
        (p) => p.intraday(symbol, first.openAt, last.closeAt, minutes),
        onFallback,
      );
      provider = r.provider;
      const v = validateIntradayBars(r.value, { security, intervalMinutes: minutes, now });
      events = validateEvents(r.value.events);
      batch.ticks = {
        rows: intradayTicks(security.id, v.accepted),
        countSeq: BAR_SEQ.close,
        // The bars' width, so the quote ticks they supersede are cleared over whole bars.
        barMinutes: minutes,
      };
      rejected = v.rejected;
      responseDuplicates = v.duplicates;
    }
    batch.actions = actionRows(security, events.accepted, provider);
    batch.quarantine = quarantineRows([...rejected, ...events.rejected], {
      source: provider,
      jobName: BACKFILL,
      jobId: ctx.id,
      symbol,
    });
    // commitBatch adds its own counts to the checkpoint state (`result`, same transaction), so a
    // resumed run can report the whole job's totals from the checkpoints alone.
    const state: ChunkState = {
      symbol,
      from: chunk.from,
      to: chunk.to,
      provider,
      responseDuplicates: responseDuplicates + events.duplicates,
    };
    batch.checkpoint = { jobName: BACKFILL, key: chunk.key, state: { ...state } };
    return { ok: true, provider, batch, state };
  } catch (error) {
    return { ok: false, error };
  }
}

/** A chunk's fetch failure, its error body quarantined; provider errors get the chunk in their message. */
async function chunkFailure(
  deps: Deps,
  ctx: JobContext,
  chunk: PlannedChunk,
  err: unknown,
): Promise<unknown> {
  if (!(err instanceof ProviderError)) return err;
  const symbol = chunk.security.ticker;
  if (err.raw !== undefined)
    await deps.repos.quarantine.insert([
      {
        source: err.provider,
        jobName: BACKFILL,
        jobId: ctx.id,
        symbol,
        entity: 'response',
        reason: `error_body: ${err.message}`,
        raw: err.raw,
      },
    ]);
  return withContext(err, `${symbol} ${chunk.from}..${chunk.to}`);
}

/** Commits a prepared chunk in one transaction. */
async function commitChunk(
  deps: Deps,
  chunk: PlannedChunk,
  minutes: number,
  prepared: Prepared & { ok: true },
): Promise<{ skipped: boolean; provider: string; counts: BackfillCounts }> {
  const res = await deps.repos.ingest.commitBatch(prepared.batch);
  if (res.skipped) return { skipped: true, provider: prepared.provider, counts: zero() };
  return {
    skipped: false,
    provider: prepared.provider,
    counts: chunkCounts({ ...prepared.state, result: res }, minutes),
  };
}

interface ChunkState {
  symbol: string;
  from: string;
  to: string;
  provider: string;
  /** Exact repeats inside the provider's response (bars and events). */
  responseDuplicates: number;
  /** What commitBatch wrote (it stores this itself). */
  result?: Omit<BatchResult, 'skipped'>;
}

/** A chunk's counts from its commit result (fresh, or read back from its checkpoint). */
function chunkCounts(state: ChunkState, minutes: number): BackfillCounts {
  const r = state.result;
  if (!r) return zero();
  return {
    accepted: minutes === 0 ? r.daily.inserted + r.daily.updated : r.ticks.rowsInserted,
    duplicates:
      (minutes === 0 ? r.daily.unchanged + r.daily.keptRollup : r.ticks.rows - r.ticks.rowsInserted) +
      state.responseDuplicates,
    quarantined: r.quarantined,
    // Checkpoints written before these counts existed read as 0.
    ticksCorrected: minutes === 0 ? 0 : (r.ticks.corrected ?? 0),
    ticksConflicting: minutes === 0 ? 0 : (r.ticks.conflicts ?? 0),
    actionsStored: r.actions.inserted,
    actionsExisting: r.actions.existing,
  };
}
