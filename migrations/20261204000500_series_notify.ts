/**
 * The API's series cache (api/series-cache.ts) is invalidated by PostgreSQL itself: every write
 * to a table a served series is computed from (`bars_1d`, `bars_5m`, `corporate_actions`,
 * `securities`) sends `pg_notify('series_changed', '<id>,<id>,…')` with the distinct security ids
 * the statement touched, or '*' (everything) when that list would pass ~7,000 bytes (NOTIFY's
 * payload limit is 8,000) or the statement was a TRUNCATE.
 *
 * - Statement-level AFTER triggers with transition tables: one NOTIFY per statement, whatever its
 *   size; no row lock, no extra row written, so writers keep their lock order. PostgreSQL allows
 *   transition tables only on triggers with one event, hence one trigger per event. On the
 *   partitioned `bars_5m` the triggers are on the parent and fire for statements that target it
 *   (everything in this code base writes through the parent); a statement naming a partition
 *   directly would not fire them. Dropping a partition fires nothing: the retention repository
 *   sends '*' in the transaction that drops (core/db/repositories/retention.ts).
 * - NOTIFY is transactional: it is delivered at commit and never for a rollback, so a listener
 *   never hears of data it cannot read yet; identical notifications in one transaction are sent
 *   once.
 * - The adj_close refresh (20261204000200) updates bars_1d from a trigger: that statement notifies
 *   too (these triggers do not check pg_trigger_depth).
 */
import type { Knex } from 'knex';

const BAR_TABLES = ['bars_1d', 'bars_5m', 'corporate_actions'] as const;

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    create function series_notify(ids int[]) returns void language plpgsql as $$
    declare
      payload text;
    begin
      if ids is null or cardinality(ids) = 0 then
        return;
      end if;
      payload := array_to_string(ids, ',');
      if length(payload) > 7000 then
        payload := '*';
      end if;
      perform pg_notify('series_changed', payload);
    end $$;

    -- TG_ARGV[0]: the security id column ('security_id', or 'id' for securities).
    create function series_notify_rows() returns trigger language plpgsql as $$
    declare
      ids int[];
    begin
      if tg_op = 'INSERT' then
        execute format('select array_agg(distinct %I) from new_rows', tg_argv[0]) into ids;
      elsif tg_op = 'DELETE' then
        execute format('select array_agg(distinct %I) from old_rows', tg_argv[0]) into ids;
      else
        execute format('select array_agg(distinct x) from (select %1$I as x from new_rows union all select %1$I from old_rows) u',
                       tg_argv[0]) into ids;
      end if;
      perform series_notify(ids);
      return null;
    end $$;

    create function series_notify_all() returns trigger language plpgsql as $$
    begin
      perform pg_notify('series_changed', '*');
      return null;
    end $$;
  `);
  const targets: [string, string][] = [
    ...BAR_TABLES.map((t): [string, string] => [t, 'security_id']),
    ['securities', 'id'],
  ];
  for (const [table, column] of targets) {
    await knex.raw(`
      create trigger ${table}_series_notify_insert after insert on ${table}
        referencing new table as new_rows for each statement execute function series_notify_rows('${column}');
      create trigger ${table}_series_notify_update after update on ${table}
        referencing old table as old_rows new table as new_rows for each statement
        execute function series_notify_rows('${column}');
      create trigger ${table}_series_notify_delete after delete on ${table}
        referencing old table as old_rows for each statement execute function series_notify_rows('${column}');
      create trigger ${table}_series_notify_truncate after truncate on ${table}
        for each statement execute function series_notify_all();
    `);
  }
}

export async function down(knex: Knex): Promise<void> {
  for (const table of [...BAR_TABLES, 'securities']) {
    await knex.raw(`
      drop trigger ${table}_series_notify_truncate on ${table};
      drop trigger ${table}_series_notify_delete on ${table};
      drop trigger ${table}_series_notify_update on ${table};
      drop trigger ${table}_series_notify_insert on ${table};
    `);
  }
  await knex.raw(`
    drop function series_notify_all();
    drop function series_notify_rows();
    drop function series_notify(int[]);
  `);
}
