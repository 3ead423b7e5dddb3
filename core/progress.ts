/**
 * What long-running core work reports while it runs: a percentage and log lines. A BullMQ job's
 * context implements it (Bull Board shows both); a CLI implements it with a progress bar.
 */
export interface ProgressReporter {
  /**
   * Percent complete, 0–100, with an optional detail of where the work stands (e.g. `{ chunk: 3,
   * chunks: 40 }`), shown beside the percentage (Bull Board's Progress tab).
   */
  progress(percent: number, detail?: Readonly<Record<string, string | number>>): Promise<void>;
  /** One human-readable line. */
  log(line: string): Promise<void>;
  /**
   * Aborted when the process running the work shuts down (SIGTERM) and the work is of a kind that
   * hands itself back (for a job: jobs/options.ts `handsOff`): stop at the next checkpoint and
   * throw; the worker host puts the job back in waiting for another worker, without using an
   * attempt. Absent outside a worker.
   */
  readonly shutdown?: AbortSignal;
}
