/**
 * Market data: the watch list `prices.fetch` polls, and the change log that drives incremental
 * rollups.
 *
 * bar_changes is a queue of ranges in a table: every writer of ticks (provider ingest, corrections)
 * appends the time range it touched per security, in the same transaction as the ticks; the
 * 5-minute rollup consumes rows by deleting them in the transaction that rewrites their buckets,
 * and appends the ranges it changed at level '1d' for the daily rollup. Consuming by delete (not
 * by an id watermark) is what makes it safe with concurrent writers: a row whose transaction has
 * not committed yet is simply picked up by the next run.
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    create table watchlist (
      security_id integer primary key references securities on delete cascade,
      added_at timestamptz not null default now(),
      added_by text
    );

    create table bar_changes (
      id bigint generated always as identity primary key,
      level text not null check (level in ('5m', '1d')),
      security_id integer not null,
      from_ts timestamptz not null,
      to_ts timestamptz not null,
      recorded_at timestamptz not null default now(),
      check (to_ts > from_ts)
    );
    create index bar_changes_level_idx on bar_changes (level, id);

    -- Quarantine lookups by job (a job's result names its quarantined rows).
    create index quarantined_rows_job_idx on quarantined_rows (job_name, job_id);
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    drop index if exists quarantined_rows_job_idx;
    drop table if exists bar_changes, watchlist;
  `);
}
