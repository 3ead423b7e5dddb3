/**
 * Job checkpoints and watermarks (`job_checkpoints`): small JSON states keyed by job and key.
 *
 * The repository's methods each run on their own. The `…On(conn, …)` functions run inside a
 * transaction another repository holds, so a unit of work and its checkpoint commit together
 * (ingest.ts commitBatch, ticks.ts storeQuote, generator.ts copyTicks): `claimCheckpointOn`
 * takes the advisory lock on the key and says whether the work is already done, and
 * `writeCheckpointOn` records it.
 */
import type { Knex } from '../knex.ts';
import type { Conn } from './sql.ts';

/** A LIKE pattern matching every key that starts with `prefix` (wildcards in it escaped). */
const startsWith = (prefix: string): string => `${prefix.replace(/[\\%_]/g, '\\$&')}%`;

/** A transaction-scoped advisory lock on `key` (`<job name>:<checkpoint key>` by convention). */
export async function lockKeyOn(conn: Conn, key: string): Promise<void> {
  await conn.query('select pg_advisory_xact_lock(hashtextextended($1, 0))', [key]);
}

/**
 * Locks the checkpoint's key for the rest of the transaction (two workers never do the same unit
 * of work) and tells whether the checkpoint exists already (the work is done: skip it).
 */
export async function claimCheckpointOn(conn: Conn, jobName: string, key: string): Promise<boolean> {
  await lockKeyOn(conn, `${jobName}:${key}`);
  const done = await conn.query('select 1 from job_checkpoints where job_name = $1 and checkpoint_key = $2', [
    jobName,
    key,
  ]);
  return Boolean(done.rowCount);
}

/** A checkpoint's state in the caller's transaction, or undefined. */
export async function checkpointStateOn<T>(conn: Conn, jobName: string, key: string): Promise<T | undefined> {
  const res = await conn.query<{ state: T }>(
    'select state from job_checkpoints where job_name = $1 and checkpoint_key = $2',
    [jobName, key],
  );
  return res.rows[0]?.state;
}

/** Writes (or replaces) a checkpoint in the caller's transaction. */
export async function writeCheckpointOn(
  conn: Conn,
  jobName: string,
  key: string,
  state: unknown,
): Promise<void> {
  await conn.query(
    `insert into job_checkpoints (job_name, checkpoint_key, state) values ($1, $2, $3)
     on conflict (job_name, checkpoint_key) do update set state = excluded.state, updated_at = now()`,
    [jobName, key, JSON.stringify(state)],
  );
}

export function createCheckpointsRepository(db: Knex) {
  const withPrefix = (jobName: string, keyPrefix: string) =>
    db('job_checkpoints').where('job_name', jobName).andWhereLike('checkpoint_key', startsWith(keyPrefix));

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
      const rows = await withPrefix(jobName, keyPrefix).select<{ checkpoint_key: string }[]>(
        'checkpoint_key',
      );
      return new Set(rows.map((r) => r.checkpoint_key));
    },

    /** States of a job's checkpoints whose key starts with `keyPrefix`, by key. */
    async statesWithPrefix(
      jobName: string,
      keyPrefix: string,
    ): Promise<Map<string, Record<string, unknown>>> {
      const rows = await withPrefix(jobName, keyPrefix).select<
        { checkpoint_key: string; state: Record<string, unknown> }[]
      >('checkpoint_key', 'state');
      return new Map(rows.map((r) => [r.checkpoint_key, r.state]));
    },

    /** Deletes a job's checkpoints whose key starts with `keyPrefix` (a finished run's resume points). */
    async deleteWithPrefix(jobName: string, keyPrefix: string): Promise<number> {
      return withPrefix(jobName, keyPrefix).delete();
    },
  };
}

export type CheckpointsRepository = ReturnType<typeof createCheckpointsRepository>;
