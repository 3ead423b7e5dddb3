/** Job checkpoints and watermarks (`job_checkpoints`): small JSON states keyed by job and key. */
import type { Knex } from '../knex.ts';

/** A LIKE pattern matching every key that starts with `prefix` (wildcards in it escaped). */
const startsWith = (prefix: string): string => `${prefix.replace(/[\\%_]/g, '\\$&')}%`;

export function createCheckpointsRepository(db: Knex) {
  return {
    async get<T>(jobName: string, key: string): Promise<T | undefined> {
      const row = await db('job_checkpoints')
        .where({ job_name: jobName, checkpoint_key: key })
        .first<{ state: T } | undefined>('state');
      return row?.state;
    },

    async set(jobName: string, key: string, state: unknown): Promise<void> {
      await db('job_checkpoints')
        .insert({
          job_name: jobName,
          checkpoint_key: key,
          state: JSON.stringify(state),
          updated_at: db.fn.now(),
        })
        .onConflict(['job_name', 'checkpoint_key'])
        .merge(['state', 'updated_at']);
    },

    /** The keys of a job's checkpoints that start with `keyPrefix` (e.g. the chunks already done). */
    async keysWithPrefix(jobName: string, keyPrefix: string): Promise<Set<string>> {
      const rows = await db('job_checkpoints')
        .select<{ checkpoint_key: string }[]>('checkpoint_key')
        .where('job_name', jobName)
        .andWhereLike('checkpoint_key', startsWith(keyPrefix));
      return new Set(rows.map((r) => r.checkpoint_key));
    },
  };
}

export type CheckpointsRepository = ReturnType<typeof createCheckpointsRepository>;
