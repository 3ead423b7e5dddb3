import type { JobsOptions } from 'bullmq';
import type { Deps } from '../core/deps.ts';
import type { JobInput, JobName } from './catalogue.ts';

/** What a processor may do besides its work: report progress and log lines for Bull Board. */
export interface JobContext {
  /** BullMQ job id (or a synthetic id when a processor is called directly). */
  readonly id: string;
  /** 0-based count of attempts already made before this one. */
  readonly attemptsMade: number;
  /** Percent complete, 0–100; shown as Bull Board's progress bar. */
  progress(percent: number): Promise<void>;
  /** One line in the job's log (Bull Board "Logs" tab). */
  log(line: string): Promise<void>;
  /**
   * Return values of the jobs this one waited for in a flow (its BullMQ children), so a step can
   * take its range from the step before it. Empty when called outside a flow.
   */
  upstreamResults(): Promise<unknown[]>;
  /**
   * Aborted when the worker process running the job shuts down (SIGTERM) and the job is one that
   * hands itself back (jobs/options.ts `handsOff`): the processor stops at its next checkpoint and
   * throws, and the host puts the job back in waiting for another worker, without using an
   * attempt. Absent outside a worker.
   */
  readonly shutdown?: AbortSignal;
  /**
   * Enqueues a follow-on job (validated against the catalogue; laned jobs go to their provider's
   * lane). Returns the job id, or undefined when deduplication collapsed it into a pending job.
   */
  enqueue<N extends JobName>(name: N, payload: JobInput<N>, opts?: JobsOptions): Promise<string | undefined>;
}

export type Processor<P, R> = (deps: Deps, payload: P, ctx: JobContext) => Promise<R>;

/** A context for calling a processor directly (tests, CLIs): collects progress and log lines. */
export function directContext(onLog?: (line: string) => void): JobContext & {
  logs: string[];
  progressSeen: number[];
  /** What the processor enqueued (nothing is sent to Redis). */
  enqueued: { name: JobName; payload: unknown; opts: JobsOptions | undefined }[];
} {
  const logs: string[] = [];
  const progressSeen: number[] = [];
  const enqueued: { name: JobName; payload: unknown; opts: JobsOptions | undefined }[] = [];
  return {
    enqueued,
    async enqueue(name, payload, opts) {
      enqueued.push({ name, payload, opts });
      return `direct-${enqueued.length}`;
    },
    id: `direct-${Date.now()}`,
    attemptsMade: 0,
    logs,
    progressSeen,
    async progress(p) {
      progressSeen.push(p);
    },
    async log(line) {
      logs.push(line);
      onLog?.(line);
    },
    async upstreamResults() {
      return [];
    },
  };
}
