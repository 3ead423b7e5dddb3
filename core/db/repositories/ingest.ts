/**
 * Ingest batches: one unit of ingest work (a backfill chunk: its ticks or daily bars, corporate
 * actions, quarantined rows and its checkpoint) committed in one transaction, under an advisory
 * lock on the checkpoint key: a crash loses at most the batch in flight, and two workers never
 * commit the same chunk. The rows go through the writers of their own modules (ticks.ts,
 * provider-bars.ts, corporate-actions.ts, quarantine.ts, checkpoints.ts) on this transaction.
 */
import { rawTransaction, type Knex } from '../knex.ts';
import { claimCheckpointOn, writeCheckpointOn } from './checkpoints.ts';
import { upsertActionsOn, type ActionUpsert } from './corporate-actions.ts';
import { upsertDailyOn, type DailyBarUpsert, type DailyCounts } from './provider-bars.ts';
import { insertQuarantineOn, type QuarantineInsert } from './quarantine.ts';
import { ident } from './sql.ts';
import {
  emptyTickCounts,
  ensureTickPartitionsOn,
  insertTicksOn,
  type TickCounts,
  type TickInsert,
} from './ticks.ts';

interface CheckpointWrite {
  jobName: string;
  key: string;
  state: Record<string, unknown>;
}

export interface BatchResult {
  /** The checkpoint already existed: nothing was written. */
  skipped: boolean;
  ticks: TickCounts;
  daily: DailyCounts;
  actions: { inserted: number; existing: number };
  quarantined: number;
}

export interface IngestBatch {
  /**
   * `table`: a scratch copy of ticks, for benchmarks only (default ticks). `barMinutes`: the
   * interval of the provider bars whose prints these are (inferred when absent; see ticks.ts).
   */
  ticks?: { rows: readonly TickInsert[]; countSeq: number; table?: string; barMinutes?: number };
  dailyBars?: readonly DailyBarUpsert[];
  actions?: readonly ActionUpsert[];
  quarantine?: readonly QuarantineInsert[];
  /** Written last, in the same transaction; when it already exists the batch is skipped. */
  checkpoint?: CheckpointWrite;
}

export function createIngestRepository(db: Knex) {
  return {
    /**
     * One unit of ingest in one transaction; see IngestBatch. A batch with a checkpoint commits
     * asynchronously (synchronous_commit off: no WAL flush wait per chunk). That is safe here: its
     * rows and its checkpoint are in the same transaction, so a database crash can only lose whole
     * recent batches together with their checkpoints, and a resumed job fetches them again. The
     * caller ends its run with an ordinary commit (prices.backfill deletes its checkpoints), which
     * flushes the WAL of every batch before it, so nothing a finished job reported can be lost.
     */
    async commitBatch(batch: IngestBatch): Promise<BatchResult> {
      const tickRows = batch.ticks?.rows ?? [];
      const table = ident(batch.ticks?.table ?? 'ticks');
      return rawTransaction(
        db,
        async (conn) => {
          const result: BatchResult = {
            skipped: false,
            ticks: emptyTickCounts(),
            daily: { inserted: 0, updated: 0, unchanged: 0, keptRollup: 0 },
            actions: { inserted: 0, existing: 0 },
            quarantined: 0,
          };
          const cp = batch.checkpoint;
          if (cp) {
            await conn.query('set local synchronous_commit = off');
            if (await claimCheckpointOn(conn, cp.jobName, cp.key)) return { ...result, skipped: true };
          }
          if (batch.ticks)
            result.ticks = await insertTicksOn(
              conn,
              table,
              tickRows,
              batch.ticks.countSeq,
              batch.ticks.barMinutes,
            );
          if (batch.dailyBars) result.daily = await upsertDailyOn(conn, batch.dailyBars);
          if (batch.actions) result.actions = await upsertActionsOn(conn, batch.actions);
          if (batch.quarantine) result.quarantined = await insertQuarantineOn(conn, batch.quarantine);
          if (cp)
            await writeCheckpointOn(conn, cp.jobName, cp.key, {
              ...cp.state,
              result: { ...result, skipped: undefined },
            });
          return result;
        },
        (conn) => ensureTickPartitionsOn(conn, table, tickRows),
      );
    },
  };
}

export type IngestRepository = ReturnType<typeof createIngestRepository>;
