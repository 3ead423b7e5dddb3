/**
 * Report catalogue and store (issue 10).
 *
 * - `report_runs` gains the period (label and dates), the portfolio set (sorted ids, or none =
 *   every portfolio with rows), a version per (type, period, portfolio set), the job that ran it,
 *   a heartbeat (a RUNNING row whose heartbeat is stale belongs to a killed render), the SHA-256
 *   and size of the file, the chunk count, timings (render and store) and the error.
 * - `report_chunks`: the file itself, in ~1 MB bytea chunks keyed by (run, seq), written while the
 *   workbook streams. A run is downloadable only when SUCCEEDED, and it becomes SUCCEEDED only in
 *   the transaction that checks every chunk is there (count and total bytes), so a failed or
 *   killed render never serves a partial file; its chunks are deleted when it is marked FAILED.
 *   PostgreSQL is the store every API host already reads (no shared disk, no object store to run).
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    alter table report_runs
      drop constraint report_runs_check,
      add column period_from date,
      add column period_to date,
      add column portfolio_ids text[],
      add column portfolio_set text not null default 'ALL',
      add column version integer not null default 1 check (version >= 1),
      add column job_id text,
      add column heartbeat_at timestamptz not null default now(),
      add column sha256 char(64) check (sha256 ~ '^[0-9a-f]{64}$'),
      add column chunks integer check (chunks >= 0),
      add column file_name text,
      add column render_ms integer check (render_ms >= 0),
      add column timings jsonb not null default '{}',
      add constraint report_runs_succeeded_complete
        check (status <> 'SUCCEEDED' or (sha256 is not null and bytes is not null and chunks is not null
                                          and row_count is not null and finished_at is not null)),
      add constraint report_runs_failed_error check (status <> 'FAILED' or (error is not null and finished_at is not null)),
      add constraint report_runs_version_unique unique (report_type, period_label, portfolio_set, version);
    create index report_runs_status_idx on report_runs (status, heartbeat_at) where status = 'RUNNING';
    create index report_runs_period_idx on report_runs (period_label, started_at desc);

    create table report_chunks (
      run_id bigint not null references report_runs on delete cascade,
      seq integer not null check (seq >= 0),
      data bytea not null,
      primary key (run_id, seq)
    );
    -- Chunks are written once and read whole: no compression (xlsx is a zip already), out of line.
    alter table report_chunks alter column data set storage external;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    drop table report_chunks;
    drop index report_runs_status_idx;
    drop index report_runs_period_idx;
    delete from report_runs where status = 'SUCCEEDED' and file_path is null;
    alter table report_runs
      drop constraint report_runs_version_unique,
      drop constraint report_runs_failed_error,
      drop constraint report_runs_succeeded_complete,
      drop column period_from, drop column period_to, drop column portfolio_ids, drop column portfolio_set,
      drop column version, drop column job_id, drop column heartbeat_at, drop column sha256,
      drop column chunks, drop column file_name, drop column render_ms, drop column timings,
      add constraint report_runs_check check (status <> 'SUCCEEDED' or (file_path is not null and finished_at is not null));
  `);
}
