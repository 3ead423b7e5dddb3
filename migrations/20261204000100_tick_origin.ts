/**
 * Where a tick came from, stored instead of inferred from its seq (issue 7): seq only orders prints
 * that share a timestamp, so a late trade with seq 1..4 was taken for a provider bar print and
 * deleted unrelated quotes and generated ticks.
 *
 * - `ticks.origin`: 'quote' (a provider quote, seq 0), 'bar' (a provider intraday bar's four
 *   prints, seq 1..4), 'generated' (the synthetic generator), 'trade' (any other print). Our
 *   writers always name it; the default 'trade' is what a writer that says nothing gets, and what
 *   rows stored before this migration get (their origin was never recorded; a constant default
 *   is a catalog change, no rewrite of the ticks partitions).
 * - `tick_corrections`: a repeated tick key with other values from the same origin replaces the
 *   stored tick (a provider's corrected bar); this keeps what it replaced. A repeated key from
 *   another origin is quarantined instead (reason `conflicting_duplicate`).
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    create type tick_origin as enum ('quote', 'bar', 'generated', 'trade');
    alter table ticks add column origin tick_origin not null default 'trade';

    create table tick_corrections (
      id bigint generated always as identity primary key,
      security_id integer not null,
      ts timestamptz not null,
      seq integer not null,
      origin tick_origin not null,
      old_price numeric(20,8) not null,
      old_size bigint not null,
      old_bid numeric(20,8),
      old_ask numeric(20,8),
      price numeric(20,8) not null,
      size bigint not null,
      bid numeric(20,8),
      ask numeric(20,8),
      corrected_at timestamptz not null default now()
    );
    create index tick_corrections_key_idx on tick_corrections (security_id, ts, seq);
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    drop table if exists tick_corrections;
    alter table ticks drop column if exists origin;
    drop type if exists tick_origin;
  `);
}
