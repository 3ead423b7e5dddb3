/**
 * holdings.snapshot and variance.quarterly (issue 9): the daily books and the attribution of
 * their changes, thin over core/domain (books.ts: the position replay; attribution.ts: SPEC §8;
 * periods.ts) and the set-based SQL of core/db/repositories/books.ts.
 *
 * holdings.snapshot `{date?} | {from, to}`, `portfolioIds?` (default: the latest completed NYSE
 * session as of the clock, every portfolio). Holdings are derived, never kept on their own: the
 * trades and the ledger's applied actions up to `to` are replayed per position (quantity, average
 * cost in base currency) into intervals of constant state, and each calendar month of the range is
 * written in one transaction (delete the month's rows of the portfolios, then one INSERT … SELECT
 * over the sessions × intervals that values them at the day's close and FX, weights them and
 * flags what cannot be valued). A month commits with its checkpoint (keyed by the job id), so a
 * killed or retried run resumes after the last month written; the checkpoints are removed when the
 * run ends. Re-running a range rewrites it exactly (a position gone to zero disappears).
 *
 * variance.quarterly `quarter | month | from/to`, `portfolioIds?`: the attribution of SPEC §8 per
 * portfolio × security between the snapshots d0 (last trading day before the period) and d1 (last
 * trading day of the period); see core/domain/periods.ts. It reads the stored holdings of d0 and
 * d1; a portfolio whose stored day disagrees with its trades and ledger (a quantity that is not
 * Σ trades + Σ ledger deltas, a missing or extra position, a price that is not the day's close) or
 * has none is derived again first by the same replay, so the attribution never reads stale books.
 * The attribution is then one INSERT … SELECT for all the portfolios of the period, after a DELETE
 * of the period's rows, in one transaction (BooksRepository.writeVariance): SPEC §8 in numeric,
 * digit for digit what attribute() + inCents() of core/domain compute (test/variance-sql.test.ts
 * compares both on thousands of random holdings; test/variance-oracle.ts is the JS reference). With
 * an empty payload (the schedule) it works only on the first NYSE trading day after a quarter end
 * and attributes that quarter; on any other day it returns `{skipped}`.
 */
import { UnrecoverableError } from 'bullmq';
import { addDays, isValidDate, lastCompletedSession, sessionDateOf } from '../../core/calendar/nyse.ts';
import type { Deps } from '../../core/deps.ts';
import { replayPosition, type BookEvent } from '../../core/domain/books.ts';
import { dec } from '../../core/domain/money.ts';
import { quarterClosedOn, resolvePeriod, type Period } from '../../core/domain/periods.ts';
import type { BookEventRow, HoldingInterval } from '../../core/db/repositories/books.ts';
import type { JobPayload } from '../catalogue.ts';
import type { JobContext } from '../types.ts';

const SNAPSHOT_JOB = 'holdings.snapshot';

export interface SnapshotResult {
  from: string;
  to: string;
  portfolios: number;
  positions: number;
  rows: number;
  flagged: number;
  chunks: number;
  /** Chunks an earlier attempt of this job had already written (resumed). */
  resumedChunks: number;
}

export interface VarianceResult {
  period: string;
  periodFrom: string;
  periodTo: string;
  d0: string;
  d1: string;
  portfolios: number;
  rows: number;
  flagged: number;
  /** The scheduled run only: the job id of the quarter's workbook it enqueued. */
  report?: string;
}

export type VarianceOutcome = VarianceResult | { skipped: string };

async function portfoliosOf(deps: Deps, ids: readonly string[] | undefined): Promise<string[]> {
  const { found, unknown } = await deps.repos.books.portfolios(ids);
  if (unknown.length)
    throw new UnrecoverableError(`portfolioIds: unknown portfolio(s) ${unknown.join(', ')}`);
  return found.map((p) => p.portfolioId);
}

/** Replays every position of the portfolios through `through` into intervals of constant state. */
export async function holdingIntervals(
  deps: Deps,
  portfolioIds: readonly string[],
  through: string,
): Promise<HoldingInterval[]> {
  const rows = await deps.repos.books.bookEvents(portfolioIds, through);
  const out: HoldingInterval[] = [];
  let start = 0;
  while (start < rows.length) {
    const first = rows[start]!;
    let end = start;
    while (
      end < rows.length &&
      rows[end]!.portfolioId === first.portfolioId &&
      rows[end]!.securityId === first.securityId
    )
      end++;
    const states = replayPosition(rows.slice(start, end).map(toEvent));
    states.forEach((s, i) => {
      if (s.quantity.isZero()) return;
      out.push({
        portfolioId: first.portfolioId,
        securityId: first.securityId,
        from: s.date,
        until: states[i + 1]?.date ?? null,
        quantity: s.quantity.toFixed(),
        cost: s.cost === null ? null : s.cost.toFixed(),
      });
    });
    start = end;
  }
  return out;
}

function toEvent(r: BookEventRow): BookEvent {
  if (r.kind === 'trade')
    return {
      kind: 'trade',
      date: r.date,
      quantity: r.quantity!,
      price: r.price!,
      unit: r.unit!,
      fx: r.fx,
      fees: r.fees!,
    };
  return {
    kind: 'action',
    date: r.date,
    actionType: r.actionType!,
    quantityHeld: r.quantityHeld!,
    quantityDelta: r.quantityDelta!,
    ratio: r.ratio,
  };
}

/** Calendar-month chunks of from..to (inclusive). */
export function monthChunks(from: string, to: string): { from: string; to: string }[] {
  const out: { from: string; to: string }[] = [];
  let a = from;
  while (a <= to) {
    const y = Number(a.slice(0, 4));
    const m = Number(a.slice(5, 7));
    const monthEnd = new Date(Date.UTC(y, m, 0)).toISOString().slice(0, 10);
    const b = monthEnd < to ? monthEnd : to;
    out.push({ from: a, to: b });
    a = addDays(b, 1);
  }
  return out;
}

export async function holdingsSnapshot(
  deps: Deps,
  payload: JobPayload<'holdings.snapshot'>,
  ctx: JobContext,
): Promise<SnapshotResult> {
  const from = payload.from ?? payload.date ?? lastCompletedSession(deps.clock.now()).date;
  const to = payload.to ?? payload.date ?? from;
  for (const k of ['date', 'from', 'to'] as const) {
    const v = payload[k];
    if (v !== undefined && !isValidDate(v)) throw new UnrecoverableError(`${k}: not a calendar date: ${v}`);
  }
  if (from > to) throw new UnrecoverableError(`from: must be on or before to (${to})`);
  const latest = lastCompletedSession(deps.clock.now()).date;
  if (to > latest)
    throw new UnrecoverableError(
      `${payload.date !== undefined ? 'date' : 'to'}: ${to} is after the last completed session (${latest}): no close to value it at`,
    );
  const ids = await portfoliosOf(deps, payload.portfolioIds);
  await deps.repos.calendar.ensureSessions(from, to);
  const intervals = await holdingIntervals(deps, ids, to);
  const chunks = monthChunks(from, to);
  await ctx.log(
    `holdings.snapshot ${from}..${to}: ${ids.length} portfolio(s), ${intervals.length} position interval(s), ${chunks.length} month(s)`,
  );
  const result: SnapshotResult = {
    from,
    to,
    portfolios: ids.length,
    positions: new Set(intervals.map((i) => `${i.portfolioId}/${i.securityId}`)).size,
    rows: 0,
    flagged: 0,
    chunks: chunks.length,
    resumedChunks: 0,
  };
  for (const [n, c] of chunks.entries()) {
    if (ctx.shutdown?.aborted)
      throw new Error('holdings.snapshot: shutting down; resumes from its checkpoint');
    const live = intervals.filter((i) => i.from <= c.to && (i.until === null || i.until > c.from));
    const w = await deps.repos.books.writeHoldings(ids, c.from, c.to, live, {
      jobName: SNAPSHOT_JOB,
      key: `${ctx.id}:${c.from}`,
    });
    if (w.skipped) result.resumedChunks++;
    result.rows += w.rows;
    result.flagged += w.flagged;
    await ctx.progress(Math.round(((n + 1) / chunks.length) * 100), {
      chunk: n + 1,
      chunks: chunks.length,
      through: c.to,
    });
    if (chunks.length > 1 || w.skipped)
      await ctx.log(
        w.skipped
          ? `${c.from}..${c.to}: already written by an earlier attempt`
          : `${c.from}..${c.to}: ${w.rows} holdings, ${w.flagged} flagged`,
      );
  }
  await deps.repos.checkpoints.deleteWithPrefix(SNAPSHOT_JOB, `${ctx.id}:`);
  await ctx.log(`holdings.snapshot done: ${result.rows} holdings, ${result.flagged} flagged`);
  return result;
}

function periodOf(deps: Deps, payload: JobPayload<'variance.quarterly'>): Period | { skipped: string } {
  const given = payload.quarter ?? payload.month ?? payload.from;
  if (given === undefined) {
    const today = sessionDateOf(deps.clock.now());
    const quarter = quarterClosedOn(today);
    if (quarter === null)
      return { skipped: `${today} is not the first NYSE trading day after a quarter end (scheduled run)` };
    return resolvePeriod({ quarter });
  }
  try {
    return resolvePeriod(payload);
  } catch (err) {
    throw new UnrecoverableError((err as Error).message);
  }
}

export async function varianceQuarterly(
  deps: Deps,
  payload: JobPayload<'variance.quarterly'>,
  ctx: JobContext,
): Promise<VarianceOutcome> {
  const period = periodOf(deps, payload);
  const scheduled =
    payload.quarter === undefined && payload.month === undefined && payload.from === undefined;
  if ('skipped' in period) {
    await ctx.log(`variance.quarterly skipped: ${period.skipped}`);
    return period;
  }
  const latest = lastCompletedSession(deps.clock.now()).date;
  if (period.d1 > latest)
    throw new UnrecoverableError(
      `${payload.quarter ? 'quarter' : payload.month ? 'month' : 'to'}: period ${period.label} ends after the last completed session (${latest})`,
    );
  const ids = await portfoliosOf(deps, payload.portfolioIds);
  await ctx.log(
    `variance ${period.label} (${period.start}..${period.end}): snapshots ${period.d0} → ${period.d1}, ${ids.length} portfolio(s)`,
  );
  // The books at both ends, as the trades and the ledger give them now: stored snapshot days that
  // disagree with them (or are missing) are derived again first, by the same replay.
  const started = performance.now();
  await deps.repos.calendar.ensureSessions(period.d0, period.d1);
  const stale = await deps.repos.books.staleSnapshots(ids, [period.d0, period.d1]);
  const checked = performance.now();
  const any = [...new Set([...stale.values()].flat())];
  if (any.length) {
    const intervals = await holdingIntervals(deps, any, period.d1);
    for (const [day, ports] of stale) {
      if (ports.length === 0) continue;
      const w = await deps.repos.books.writeHoldings(
        ports,
        day,
        day,
        intervals.filter((i) => ports.includes(i.portfolioId)),
      );
      await ctx.log(
        `books of ${day} derived for ${ports.length} portfolio(s) (${w.rows} holdings, ${w.flagged} flagged)`,
      );
    }
  }
  await ctx.progress(10, { step: 'holdings', portfolios: ids.length });

  // One statement attributes every portfolio of the period (SPEC §8 in numeric, see
  // BooksRepository.writeVariance) and replaces its rows, in one transaction.
  const attributing = performance.now();
  const written = await deps.repos.books.writeVariance(ids, period, period.d0, period.d1);
  const ms = (a: number, b: number): string => `${Math.round(b - a)} ms`;
  await ctx.log(
    `${period.label}: books checked in ${ms(started, checked)}, attributed and written in ${ms(attributing, performance.now())}`,
  );
  const result: VarianceResult = {
    period: period.label,
    periodFrom: period.start,
    periodTo: period.end,
    d0: period.d0,
    d1: period.d1,
    portfolios: ids.length,
    rows: 0,
    flagged: 0,
  };
  const byPortfolio = new Map(written.map((w) => [w.portfolioId, w]));
  for (const portfolioId of ids) {
    const w = byPortfolio.get(portfolioId) ?? { rows: 0, flagged: 0, totalPnl: '0' };
    result.rows += w.rows;
    result.flagged += w.flagged;
    await ctx.log(
      `${portfolioId} ${period.label}: ${w.rows} rows, ${w.flagged} flagged, total_pnl ${dec(w.totalPnl).toFixed(2)}`,
    );
  }
  await ctx.progress(100, { step: 'attribution', portfolios: ids.length, rows: result.rows });
  // The scheduled run (after a quarter end) ends with the quarter's workbook (issue 10); on-demand
  // runs leave reports to their caller (a flow parent, the API).
  if (scheduled) {
    const reportJob = await ctx.enqueue(
      'reports.variance-excel',
      { quarter: period.label },
      { jobId: `scheduled-variance-excel-${period.label}` },
    );
    result.report = reportJob ?? `scheduled-variance-excel-${period.label}`;
    await ctx.log(`scheduled run: reports.variance-excel ${period.label} enqueued (job ${result.report})`);
  }
  return result;
}
