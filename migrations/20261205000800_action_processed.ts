/**
 * Which revision of each corporate action corporate-actions.apply has processed, and over how many
 * holders. The ledger alone cannot say that an action no book held at its ex-date was looked at
 * (it has no entries then), so the API could not tell "applied to nobody" from "not run yet".
 * A separate table, not columns of corporate_actions: writing those would fire the adj_close
 * refresh and the series-cache notification of every action on every run.
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    create table corporate_action_processed (
      action_id bigint primary key references corporate_actions on delete cascade,
      revision integer not null check (revision >= 1),
      holders integer not null check (holders >= 0),
      processed_at timestamptz not null default now(),
      job_id text
    );
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('drop table corporate_action_processed');
}
