/**
 * analytics.indicators and analytics.risk: thin processors over the pure maths in core/analytics
 * and the set-based reads and writes in core/db/repositories/analytics.ts. Securities go in
 * batches (one read, one compute, one write transaction each), so memory stays flat however many
 * there are; the next batch's bars are read while the current one is computed, and two batches
 * are written at once, so PostgreSQL (the bottleneck: inserting the rows) works on both cores.
 *
 * Bars come split-adjusted from the repository (SPEC §8; price_adjustments() in the database), so
 * a split is not a price jump in any indicator or return.
 *
 * Windows:
 * - 1d indicators use each security's full daily history: TA-Lib's EMA, RSI, MACD and ATR depend
 *   on where the series starts, and SPEC §8 asks for TA-Lib's values given the full history.
 * - 5m indicators use a trailing window: rows are stored for the last 20 NYSE sessions up to the
 *   newest 5-minute bar (the newest among the job's securities), computed from bars read from the
 *   Monday (New York) of the week holding the 5th session before those 20. So every stored row has
 *   at least 5 sessions (390 bars) of warm-up, and the input starts at the same bar all week, so
 *   re-runs in the week find the stored rows unchanged and only append (the start moves once a
 *   week, and the window is rewritten then). Values are TA-Lib's over that input. Against TA-Lib
 *   over the full history they differ in proportion to the series' scale: after 390 bars the
 *   seed's weight is (25/27)^390 ≈ 1e-13 in EMA(26) and (13/14)^390 ≈ 3e-13 in Wilder's RSI and
 *   ATR, and STDDEV and Bollinger differ by TA-Lib's own running-sum rounding over the full
 *   history (~1e-11 of the price near 46,000); test/indicators.test.ts bounds it at 1e-10 of the
 *   price level (of 100 for RSI and the stochastic). Rows older than the 20 sessions are kept as
 *   they were computed.
 * - Risk uses the last config.risk.windowDays daily returns up to `asOf` (core/domain/risk.ts).
 */
import { UnrecoverableError } from 'bullmq';
import {
  addDays,
  dayOfWeek,
  isTradingDay,
  isValidDate,
  newYorkTime,
  sessionDateOf,
} from '../../core/calendar/nyse.ts';
import { computeIndicators } from '../../core/domain/indicators.ts';
import { riskMetrics } from '../../core/domain/risk.ts';
import type { Deps } from '../../core/deps.ts';
import type { BarSeries, IndicatorWrite, RiskRow } from '../../core/db/repositories/analytics.ts';
import type { JobPayload } from '../catalogue.ts';
import type { JobContext } from '../types.ts';

/** Securities per batch: ~63k daily bars for 5 years of history, ~15 MB of values per batch. */
const INDICATOR_BATCH = 50;
const RISK_BATCH = 250;
/** Indicator batches written at once (each its own transaction and connection). */
const WRITE_CONCURRENCY = 2;
/** 5m: sessions stored per run, and sessions before them read as warm-up only. */
export const FIVE_MIN_STORED_SESSIONS = 20;
export const FIVE_MIN_WARMUP_SESSIONS = 5;

export interface IndicatorsResult {
  interval: '1d' | '5m';
  securities: number;
  batches: number;
  barsRead: number;
  rowsWritten: number;
  rowsDeleted: number;
  securitiesChanged: number;
  /** 5m only: the bars read from, and the rows stored from (ISO instants). */
  window: { readFrom: string; storedFrom: string } | null;
}

export interface RiskResult {
  asOf: string | null;
  windowDays: number;
  benchmark: string | null;
  securities: number;
  rowsWritten: number;
  withBeta: number;
  /** Securities with too few returns for any measure (stored with nulls). */
  insufficient: number;
}

async function resolveSecurities(deps: Deps, symbols: string[] | undefined): Promise<number[] | undefined> {
  if (!symbols) return undefined;
  const found = await deps.repos.securities.idsForTickers(symbols);
  const missing = symbols.filter((s) => !found.has(s));
  if (missing.length) throw new UnrecoverableError(`symbols: unknown ticker(s) ${missing.join(', ')}`);
  return [...new Set(found.values())].sort((a, b) => a - b);
}

function batches<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** The NYSE session dates ending at `last` (inclusive, counting back), oldest first. */
function sessionsBack(last: string, count: number): string[] {
  const out: string[] = [];
  for (let d = last; out.length < count; d = addDays(d, -1)) if (isTradingDay(d)) out.unshift(d);
  return out;
}

/** The 5m window for a newest session date (see the header): read from, and store from. */
export function fiveMinuteWindow(latestSession: string): { readFrom: Date; storedFrom: Date } {
  const days = sessionsBack(latestSession, FIVE_MIN_WARMUP_SESSIONS + FIVE_MIN_STORED_SESSIONS);
  const first = days[0]!;
  const monday = addDays(first, -((dayOfWeek(first) + 6) % 7));
  // Midnight New York: every bar of those days is in.
  return {
    readFrom: newYorkTime(monday, 0, 0),
    storedFrom: newYorkTime(days[FIVE_MIN_WARMUP_SESSIONS]!, 0, 0),
  };
}

export async function analyticsIndicators(
  deps: Deps,
  payload: JobPayload<'analytics.indicators'>,
  ctx: JobContext,
): Promise<IndicatorsResult> {
  const { interval } = payload;
  const requested = await resolveSecurities(deps, payload.symbols);
  const analytics = deps.repos.analytics;

  let window: { readFrom: Date; storedFrom: Date } | undefined;
  if (interval === '5m') {
    const latest = await analytics.latestBucket(requested);
    if (latest) window = fiveMinuteWindow(sessionDateOf(latest));
  }
  const result: IndicatorsResult = {
    interval,
    securities: 0,
    batches: 0,
    barsRead: 0,
    rowsWritten: 0,
    rowsDeleted: 0,
    securitiesChanged: 0,
    window: window
      ? { readFrom: window.readFrom.toISOString(), storedFrom: window.storedFrom.toISOString() }
      : null,
  };
  if (interval === '5m' && !window) {
    await ctx.log('no 5-minute bars: nothing to compute');
    return result;
  }

  const withBars = new Set(await analytics.securityIdsWithBars(interval, window?.readFrom));
  const ids = requested ? requested.filter((id) => withBars.has(id)) : [...withBars];
  if (requested && ids.length < requested.length) {
    await ctx.log(`${requested.length - ids.length} of the requested securities have no ${interval} bars`);
  }
  const groups = batches(ids, INDICATOR_BATCH);
  await ctx.log(
    `indicators ${interval} for ${ids.length} securities in ${groups.length} batches` +
      (window ? `; 5m bars from ${result.window!.readFrom}, stored from ${result.window!.storedFrom}` : ''),
  );
  const load = (group: number[]): Promise<BarSeries[]> => {
    const p =
      interval === '1d' ? analytics.dailyBars(group) : analytics.fiveMinuteBars(group, window!.readFrom);
    // A prefetch may fail while the current batch is being written; it is awaited (and throws) next.
    p.catch(() => undefined);
    return p;
  };

  // Pipeline: the next batch's bars are read while this one is computed, and up to
  // WRITE_CONCURRENCY batches are written at once (distinct securities, so their locks never
  // meet), keeping PostgreSQL busy on more than one core while Node computes.
  const storedFrom = window?.storedFrom.getTime() ?? -Infinity;
  const writing = new Set<Promise<void>>();
  let done = 0;
  let next = groups.length ? load(groups[0]!) : undefined;
  let failure: { error: unknown } | undefined;
  try {
    for (const [b, group] of groups.entries()) {
      const series = await next!;
      next = b + 1 < groups.length ? load(groups[b + 1]!) : undefined;
      const writes: IndicatorWrite[] = series.map((s) => {
        let from = 0;
        while (from < s.ts.length && s.ts[from]! < storedFrom) from++;
        return { bars: s, values: computeIndicators(s), from };
      });
      const bars = series.reduce((n, s) => n + s.ts.length, 0);
      const task = (async () => {
        const w = await analytics.writeIndicators(
          interval,
          writes,
          window ? { scopeFrom: window.storedFrom } : {},
        );
        result.securities += group.length;
        result.batches++;
        result.barsRead += bars;
        result.rowsWritten += w.rowsWritten;
        result.rowsDeleted += w.rowsDeleted;
        result.securitiesChanged += w.securitiesChanged;
        done++;
        await ctx.log(
          `batch ${b + 1}/${groups.length}: ${group.length} securities, ${bars} bars, ` +
            `${w.securitiesChanged} changed, ${w.rowsWritten} rows written, ${w.rowsDeleted} removed`,
        );
        await ctx.progress(Math.round((done / groups.length) * 100));
      })();
      writing.add(task);
      void task.then(
        () => writing.delete(task),
        () => undefined,
      );
      if (writing.size >= WRITE_CONCURRENCY) await Promise.race(writing);
    }
  } catch (error) {
    failure = { error };
  }
  // Never leave a write running behind a failure: wait for all, then report the first error.
  const failed = (await Promise.allSettled(writing)).find((r) => r.status === 'rejected');
  if (failure) throw failure.error;
  if (failed) throw failed.reason;
  deps.logger.info({ job: 'analytics.indicators', ...result }, 'indicators done');
  return result;
}

export async function analyticsRisk(
  deps: Deps,
  payload: JobPayload<'analytics.risk'>,
  ctx: JobContext,
): Promise<RiskResult> {
  if (payload.asOf !== undefined && !isValidDate(payload.asOf)) {
    throw new UnrecoverableError(`asOf: not a calendar date: ${payload.asOf}`);
  }
  const { windowDays, benchmark: benchmarkTicker } = deps.config.risk;
  const analytics = deps.repos.analytics;
  const requested = await resolveSecurities(deps, payload.symbols);
  const withBars = new Set(await analytics.securityIdsWithBars('1d'));
  const ids = requested ? requested.filter((id) => withBars.has(id)) : [...withBars];

  const benchmarkId = (await deps.repos.securities.idsForTickers([benchmarkTicker])).get(benchmarkTicker);
  const benchmark =
    benchmarkId === undefined
      ? undefined
      : (await analytics.dailyCloses([benchmarkId], payload.asOf ? { asOf: payload.asOf } : {})).get(
          benchmarkId,
        );
  const benchmarkNote =
    benchmarkId === undefined
      ? `benchmark ${benchmarkTicker} is not in the security master: beta is null`
      : !benchmark
        ? `benchmark ${benchmarkTicker} has no daily bars: beta is null`
        : `benchmark ${benchmarkTicker}: ${benchmark.dates.length} daily closes`;
  const groups = batches(ids, RISK_BATCH);
  await ctx.log(
    `risk for ${ids.length} securities as of ${payload.asOf ?? 'each one’s latest close'}, window ${windowDays} returns; ${benchmarkNote}`,
  );

  const result: RiskResult = {
    asOf: payload.asOf ?? null,
    windowDays,
    benchmark: benchmark ? benchmarkTicker : null,
    securities: 0,
    rowsWritten: 0,
    withBeta: 0,
    insufficient: 0,
  };
  for (const [b, group] of groups.entries()) {
    const closes = await analytics.dailyCloses(group, {
      ...(payload.asOf ? { asOf: payload.asOf } : {}),
      count: windowDays + 1,
    });
    const rows: RiskRow[] = [];
    for (const [securityId, series] of closes) {
      const m = riskMetrics(series, benchmark, windowDays);
      if (!m) continue;
      if (m.beta !== null) result.withBeta++;
      if (m.volatility === null) result.insufficient++;
      rows.push({
        securityId,
        asOf: m.asOf,
        windowDays,
        volatility: m.volatility,
        var95: m.var95,
        var99: m.var99,
        es95: m.es95,
        es99: m.es99,
        beta: m.beta,
        benchmarkId: benchmark ? benchmarkId! : null,
      });
    }
    const written = await analytics.writeRisk(rows);
    result.securities += group.length;
    result.rowsWritten += written;
    await ctx.log(`batch ${b + 1}/${groups.length}: ${group.length} securities, ${written} rows written`);
    await ctx.progress(Math.round(((b + 1) / groups.length) * 100));
  }
  deps.logger.info({ job: 'analytics.risk', ...result }, 'risk done');
  return result;
}
