/**
 * reports.variance-excel (issue 10): renders the variance attribution of a period (a quarter, a
 * month, or from/to) for a portfolio set (default: every portfolio with rows in the period) as an
 * Excel workbook, streamed (reports/variance-excel.ts) into the PostgreSQL store (report_chunks),
 * catalogued in report_runs.
 *
 * - Every run is a new `report_runs` row, RUNNING, with the next version of (type, period,
 *   portfolio set); it turns SUCCEEDED only in the transaction that confirms every chunk
 *   (`finishRun`), or FAILED with the error and its chunks deleted. A render whose worker died
 *   leaves a RUNNING row: the retry of the same job (same job id) fails it first, and any run
 *   sweeps RUNNING rows whose heartbeat (beaten by every stored chunk) is older than
 *   REPORTS_STALE_SECONDS. So no partial file is ever downloadable.
 * - The scheduled run (payload `{}`), on the first NYSE trading day of a month only (the schedule
 *   fires 07:00 on weekdays 1–7; other days return `{ skipped }`), does not render itself: it adds
 *   the month just ended as a flow, variance.quarterly `{month}` then reports.variance-excel
 *   `{month}` (jobs/report-flow.ts), with job ids fixed by the month so a retry adds nothing twice,
 *   and returns `{ chained }`. Monthly attribution rows exist only if computed, and this computes
 *   them from the books as they stand. An explicit empty payload from the API means the same.
 * - No variance rows for the period and set: a permanent failure naming the period (the run is
 *   FAILED with that message); run variance.quarterly for the period first.
 */
import { UnrecoverableError } from 'bullmq';
import type { ReportRun } from '../../core/db/repositories/reports.ts';
import type { Deps } from '../../core/deps.ts';
import { addDays, isTradingDay, sessionDateOf } from '../../core/calendar/nyse.ts';
import { ChunkSink } from '../../reports/chunk-sink.ts';
import { renderVarianceWorkbook } from '../../reports/variance-excel.ts';
import type { JobPayload } from '../catalogue.ts';
import { addVarianceThenReport } from '../report-flow.ts';
import type { JobContext } from '../types.ts';

export const VARIANCE_REPORT_TYPE = 'variance-excel';

export interface Period {
  label: string;
  from: string;
  to: string;
}

const lastDayOfMonth = (year: number, month: number): string =>
  new Date(Date.UTC(year, month, 0)).toISOString().slice(0, 10);

/** The period a payload names (inclusive dates), or undefined for `{}` (the scheduled default). */
export function periodOf(payload: JobPayload<'reports.variance-excel'>): Period | undefined {
  if (payload.quarter) {
    const year = Number(payload.quarter.slice(0, 4));
    const q = Number(payload.quarter.slice(5));
    const m0 = (q - 1) * 3 + 1;
    return {
      label: payload.quarter,
      from: `${year}-${String(m0).padStart(2, '0')}-01`,
      to: lastDayOfMonth(year, m0 + 2),
    };
  }
  if (payload.month) {
    const [y, m] = payload.month.split('-').map(Number) as [number, number];
    return { label: payload.month, from: `${payload.month}-01`, to: lastDayOfMonth(y, m) };
  }
  if (payload.from && payload.to)
    return { label: `${payload.from}/${payload.to}`, from: payload.from, to: payload.to };
  return undefined;
}

/**
 * The scheduled default: on the first NYSE trading day of a month (New York date of `now`), the
 * month just ended; any other day, undefined.
 */
export function scheduledPeriod(now: Date): { period?: Period; reason: string } {
  const today = sessionDateOf(now);
  const monthStart = `${today.slice(0, 7)}-01`;
  if (!isTradingDay(today)) return { reason: `${today} is not an NYSE trading day` };
  for (let d = monthStart; d < today; d = addDays(d, 1))
    if (isTradingDay(d)) return { reason: `${today} is not the first trading day of its month (${d} was)` };
  const prev = addDays(monthStart, -1).slice(0, 7);
  return {
    period: periodOf({ month: prev } as JobPayload<'reports.variance-excel'>)!,
    reason: `first trading day ${today}`,
  };
}

export interface ReportResult {
  runId: number;
  version: number;
  period: string;
  status: 'SUCCEEDED';
  rows: number;
  bytes: number;
  sha256: string;
  portfolios: number;
  download: string;
}

export type ReportOutcome =
  ReportResult | { skipped: string } | { chained: { month: string; reportJobId: string } };

export async function reportsVarianceExcel(
  deps: Deps,
  payload: JobPayload<'reports.variance-excel'>,
  ctx: JobContext,
): Promise<ReportOutcome> {
  const { repos, clock } = deps;
  const period = periodOf(payload);
  if (!period) {
    const s = scheduledPeriod(clock.now());
    if (!s.period) {
      await ctx.log(`skipped: ${s.reason}`);
      return { skipped: s.reason };
    }
    const jobId = `scheduled-variance-excel-${s.period.label}`;
    const node = await addVarianceThenReport(
      deps.config,
      deps.redis,
      { month: s.period.label },
      undefined,
      jobId,
    );
    await ctx.log(
      `scheduled run (${s.reason}): month ${s.period.label}: variance.quarterly then reports.variance-excel added as one flow (report job ${node.job.id})`,
    );
    return { chained: { month: s.period.label, reportJobId: node.job.id ?? jobId } };
  }
  const portfolioIds = payload.portfolioIds ? [...new Set(payload.portfolioIds)].sort() : null;

  // A previous attempt of this job (its worker killed) and any render silent for too long.
  const swept = await repos.reports.failAbandoned({
    jobId: ctx.id,
    staleBefore: new Date(clock.now().getTime() - deps.config.reports.staleSeconds * 1000),
    reason: 'render abandoned: its worker stopped before finishing',
  });
  if (swept.length) await ctx.log(`marked ${swept.length} abandoned run(s) FAILED: ${swept.join(', ')}`);

  const run: ReportRun = await repos.reports.startRun({
    reportType: VARIANCE_REPORT_TYPE,
    periodLabel: period.label,
    periodFrom: period.from,
    periodTo: period.to,
    portfolioIds,
    params: { ...payload },
    jobId: ctx.id,
  });
  await ctx.log(`run ${run.id}: ${period.label} (${period.from} to ${period.to}), version ${run.version}`);
  const started = performance.now();
  const generatedAt = clock.now();
  let rowsWritten = 0;
  try {
    const sink = new ChunkSink((seq, data) => repos.reports.appendChunk(run.id, seq, data));
    const result = await repos.reports.withSnapshot(`report-render-${run.id}`, async (snap) => {
      const summary = await snap.summary(period.label, portfolioIds);
      if (summary.length === 0)
        throw new UnrecoverableError(
          `no variance rows for ${period.label}${portfolioIds ? ` and portfolios ${portfolioIds.join(', ')}` : ''}: run variance.quarterly for the period first`,
        );
      if (portfolioIds) {
        const found = new Set(summary.map((s) => s.portfolioId));
        const missing = portfolioIds.filter((id) => !found.has(id));
        if (missing.length)
          throw new UnrecoverableError(
            `portfolioIds: no variance rows for ${missing.join(', ')} in ${period.label}`,
          );
      }
      let lastPct = -1;
      return renderVarianceWorkbook(
        snap,
        {
          runId: run.id,
          version: run.version,
          jobId: ctx.id,
          periodLabel: period.label,
          periodFrom: period.from,
          periodTo: period.to,
          portfolioIds,
          params: { ...payload },
          generatedAt,
        },
        sink,
        {
          every: 5000,
          async onRows(written, total) {
            rowsWritten = written;
            const pct = total === 0 ? 95 : Math.min(95, Math.floor((written / total) * 95));
            if (pct !== lastPct) {
              lastPct = pct;
              await ctx.progress(pct, { rows: written, of: total, bytes: sink.bytes });
            }
          },
        },
      );
    });
    const renderMs = Math.round(performance.now() - started);
    const sha256 = sink.digest();
    const fileName = `variance-${period.label.replace('/', '_')}-${run.portfolioSet === 'ALL' ? 'all' : `${portfolioIds!.length}p`}-v${run.version}.xlsx`;
    const done = await repos.reports.finishRun(run.id, {
      sha256,
      bytes: sink.bytes,
      chunks: sink.chunks,
      rowCount: result.detailRows,
      fileName,
      renderMs,
      timings: { renderMs, totalMs: Math.round(performance.now() - started) },
    });
    await ctx.progress(100, { rows: result.detailRows, bytes: sink.bytes });
    await ctx.log(
      `run ${run.id} SUCCEEDED: ${result.detailRows} rows, ${result.portfolios.length} portfolio(s), ${sink.bytes} bytes in ${sink.chunks} chunk(s), sha256 ${sha256}, ${renderMs} ms`,
    );
    return {
      runId: done.id,
      version: done.version,
      period: period.label,
      status: 'SUCCEEDED',
      rows: result.detailRows,
      bytes: sink.bytes,
      sha256,
      portfolios: result.portfolios.length,
      download: `/api/reports/${done.id}/download`,
    };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const failed = await repos.reports
      .failRun(run.id, `${message} (after ${rowsWritten} detail rows)`, rowsWritten)
      .catch(async (e: unknown) => {
        // The database itself may be gone: the retry (same job id) or the stale sweep fails it later.
        await ctx.log(
          `could not mark run ${run.id} FAILED now: ${e instanceof Error ? e.message : String(e)}`,
        );
        return false;
      });
    if (failed) await ctx.log(`run ${run.id} FAILED: ${message}`);
    throw err;
  }
}
