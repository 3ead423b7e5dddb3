/** Job checkpoints and watermarks (`job_checkpoints`): small JSON states keyed by job and key. */
import type { Knex } from '../knex.ts';

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

    async remove(jobName: string, keyPrefix = ''): Promise<number> {
      return db('job_checkpoints')
        .where('job_name', jobName)
        .andWhereLike('checkpoint_key', `${keyPrefix.replace(/[\\%_]/g, '\\$&')}%`)
        .delete();
    },
  };
}

export type CheckpointsRepository = ReturnType<typeof createCheckpointsRepository>;
