/**
 * What long-running core work reports while it runs: a percentage and log lines. A BullMQ job's
 * context implements it (Bull Board shows both); a CLI implements it with a progress bar.
 */
export interface ProgressReporter {
  /** Percent complete, 0–100. */
  progress(percent: number): Promise<void>;
  /** One human-readable line. */
  log(line: string): Promise<void>;
}
