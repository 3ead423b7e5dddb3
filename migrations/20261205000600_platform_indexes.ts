/**
 * Indexes for seed 2's platform API (issue 9, item 5), each measured (notes/h-api9.md).
 *
 * - variance_rows (period_to, period_from): top movers read one period's rows across every
 *   portfolio by their snapshot dates. The primary key leads with portfolio_id and the period
 *   index with period_label, so that read was a sequential scan of every period's rows (21,000
 *   at seed 2's shape, 5.7–14.7 ms on the shared test machine), now an index scan of one
 *   period's (0.7 ms). It grows with every month and ad-hoc period computed.
 *
 * Holdings need none: reads of one date join `portfolios` and probe the primary key
 * (portfolio_id, as_of_date, …) once per portfolio (1.0 ms for 1,050 rows out of 1.37M).
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.raw('create index variance_rows_snapshots_idx on variance_rows (period_to, period_from)');
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('drop index if exists variance_rows_snapshots_idx');
}
