/**
 * maintenance.retention (daily, jobs/options.ts): keeps the monthly partitions of `ticks` and
 * `bars_5m` created ahead of time and drops the expired ones, per table:
 * - creates the partitions of the current UTC month through config.retention.partitionsAheadMonths
 *   months ahead (so writers never meet a missing partition, and no partition is created under
 *   their feet: CREATE … PARTITION OF locks the parent);
 * - drops every partition whose upper bound is at or before now − the table's retention
 *   (config.retention.ticksDays / bars5mDays): whole months only, so a partition goes once its
 *   newest possible row has expired, and a kept partition's rows are never touched;
 * - prunes the bar_changes rows that now lie wholly before the oldest partition left (see
 *   core/db/repositories/retention.ts: recomputing them would delete bars that outlive their source);
 * - deletes 5-minute indicator rows older than the bars_5m retention, in whichever indicator table
 *   exists (found at run time; reported in the result, or why it was skipped).
 * `{dryRun: true}` reports all of it without changing anything. Time comes from deps.clock.
 */
import type { Deps } from '../../core/deps.ts';
import type { PartitionedTable, PartitionInfo } from '../../core/db/repositories/retention.ts';
import type { JobPayload } from '../catalogue.ts';
import type { JobContext } from '../types.ts';

const DAY_MS = 86_400_000;

export interface PartitionRef {
  table: PartitionedTable;
  name: string;
  from: string | null;
  to: string | null;
}

export interface RetentionResult {
  dryRun: boolean;
  now: string;
  /** Cutoff per table: partitions ending at or before it are dropped. */
  cutoffs: Record<PartitionedTable, string>;
  /** Partitions created (or, dry, that would be). */
  created: PartitionRef[];
  /** Partitions dropped (or, dry, that would be). */
  dropped: PartitionRef[];
  /** bar_changes rows pruned (or, dry, that would be). */
  changesPruned: number;
  /** 5-minute indicator rows expired (or, dry, that would be), or why none were looked at. */
  indicators: { table: string; rows: number } | { table: null; note: string };
  /**
   * Report runs (issue 10) finished before now − REPORTS_RETENTION_DAYS, deleted with their files
   * (the newest successful version of each report is kept), and RUNNING renders found stale and failed.
   */
  reports?: { runs: number; bytes: number; staleFailed: number };
}

const ref = (p: PartitionInfo): PartitionRef => ({
  table: p.table,
  name: p.name,
  from: p.from?.toISOString() ?? null,
  to: p.to?.toISOString() ?? null,
});

const monthStart = (t: Date, plus = 0): Date =>
  new Date(Date.UTC(t.getUTCFullYear(), t.getUTCMonth() + plus, 1));

export async function maintenanceRetention(
  deps: Deps,
  payload: JobPayload<'maintenance.retention'>,
  ctx: JobContext,
): Promise<RetentionResult> {
  const { retention } = deps.config;
  const repo = deps.repos.retention;
  const dryRun = payload.dryRun;
  const now = deps.clock.now();
  const aheadFrom = monthStart(now);
  const aheadTo = monthStart(now, retention.partitionsAheadMonths + 1);
  const days: Record<PartitionedTable, number> = {
    ticks: retention.ticksDays,
    bars_5m: retention.bars5mDays,
  };
  const cutoffs = {
    ticks: new Date(now.getTime() - days.ticks * DAY_MS),
    bars_5m: new Date(now.getTime() - days.bars_5m * DAY_MS),
  };
  const result: RetentionResult = {
    dryRun,
    now: now.toISOString(),
    cutoffs: { ticks: cutoffs.ticks.toISOString(), bars_5m: cutoffs.bars_5m.toISOString() },
    created: [],
    dropped: [],
    changesPruned: 0,
    indicators: { table: null, note: 'not run' },
  };

  const tables: PartitionedTable[] = ['ticks', 'bars_5m'];
  for (const [i, table] of tables.entries()) {
    // Ahead first: the drop below must never leave a table without a partition for now.
    const missing = await repo.missingMonths(table, aheadFrom, aheadTo);
    if (!dryRun && missing.length) await repo.ensurePartitions(table, aheadFrom, aheadTo);
    result.created.push(...missing.map(ref));

    const parts = await repo.partitions(table);
    const expired = parts.filter((p) => p.to !== null && p.to.getTime() <= cutoffs[table].getTime());
    if (dryRun) {
      const oldestKept = parts.find((p) => p.from !== null && !expired.includes(p))?.from ?? aheadFrom;
      result.changesPruned += await repo.countStaleChanges(table, oldestKept);
      result.dropped.push(...expired.map(ref));
    } else {
      // Also run with nothing expired: prunes changes recorded for ranges older than every partition.
      const r = await repo.dropPartitions(
        table,
        expired.map((p) => p.name),
      );
      result.changesPruned += r.changesPruned;
      result.dropped.push(...r.dropped.map(ref));
    }
    await ctx.log(
      `${table}: ${missing.length} partition(s) ${dryRun ? 'to create' : 'created'} ` +
        `(${aheadFrom.toISOString().slice(0, 7)}..${new Date(aheadTo.getTime() - 1).toISOString().slice(0, 7)}), ` +
        `${expired.length} ${dryRun ? 'to drop' : 'dropped'} (ending at or before ${cutoffs[table].toISOString()})` +
        (expired.length ? `: ${expired.map((p) => p.name).join(', ')}` : ''),
    );
    await ctx.progress(Math.round(((i + 1) / (tables.length + 1)) * 100));
  }

  const ind = await repo.expireIndicators5m(cutoffs.bars_5m, dryRun);
  result.indicators = ind;
  await ctx.log(
    ind.table === null
      ? `indicators: ${ind.note}`
      : `${ind.table}: ${ind.rows} 5-minute indicator row(s) ${dryRun ? 'to delete' : 'deleted'}`,
  );
  const reportCutoff = new Date(now.getTime() - deps.config.reports.retentionDays * DAY_MS);
  const expiredReports = await deps.repos.reports.expire(reportCutoff, dryRun);
  const stale = dryRun
    ? []
    : await deps.repos.reports.failAbandoned({
        staleBefore: new Date(now.getTime() - deps.config.reports.staleSeconds * 1000),
        reason: 'render abandoned: no heartbeat (found by maintenance.retention)',
      });
  result.reports = { ...expiredReports, staleFailed: stale.length };
  await ctx.log(
    `reports: ${expiredReports.runs} run(s), ${expiredReports.bytes} bytes ${dryRun ? 'to delete' : 'deleted'} (finished before ${reportCutoff.toISOString()}); ${stale.length} stale render(s) failed`,
  );
  await ctx.progress(100);
  deps.logger.info(
    {
      job: 'maintenance.retention',
      dryRun,
      created: result.created.map((p) => p.name),
      dropped: result.dropped.map((p) => p.name),
      changesPruned: result.changesPruned,
      indicators: result.indicators,
    },
    'retention done',
  );
  return result;
}
