/**
 * Partition upkeep for the monthly range-partitioned tables (`ticks`, `bars_5m`) and the
 * retention of what hangs off them.
 *
 * Partition bounds are read from the catalog (`pg_get_expr(relpartbound)`), never from the
 * `<table>_pYYYY_MM` naming convention, so a partition created by hand under another name is
 * still seen and an oddly named one is never mistaken for a month. The DEFAULT partition (if one
 * is ever added) has no bounds and is never dropped.
 *
 * bar_changes pruning: a change row is a promise that its range will be recomputed from the table
 * below it, so an unconsumed row is never pruned for age alone (that would leave stale bars).
 * Only rows whose whole range lies before the oldest remaining partition of their source table
 * are pruned: level '5m' against `ticks`, level '1d' against `bars_5m`. Recomputing those would
 * find no source rows and delete bars that outlive their source (bars_5m kept longer than ticks,
 * daily bars kept for ever). Consumed rows need no pruning: the rollups consume by deleting.
 */
import type { Knex } from '../knex.ts';

export type PartitionedTable = 'ticks' | 'bars_5m';

export interface PartitionInfo {
  table: PartitionedTable;
  name: string;
  /** Lower (inclusive) and upper (exclusive) bound; null for a DEFAULT or MINVALUE/MAXVALUE bound. */
  from: Date | null;
  to: Date | null;
}

/** The bar_changes level whose ranges are recomputed from each table. */
const CHANGE_LEVEL: Record<PartitionedTable, '5m' | '1d'> = { ticks: '5m', bars_5m: '1d' };
const TABLES: readonly PartitionedTable[] = ['ticks', 'bars_5m'];
/** Candidate indicator tables, newest schema first; 5-minute rows are identified by `interval`. */
const INDICATOR_TABLES = ['indicator_values', 'indicators'] as const;
const INDICATOR_TIME_COLUMNS = ['ts', 'bucket'] as const;

const checkTable = (table: string): PartitionedTable => {
  if (!(TABLES as readonly string[]).includes(table)) throw new Error(`not a partitioned table: ${table}`);
  return table as PartitionedTable;
};

const PARTITIONS_SQL = `
  select c.relname as name,
         (regexp_match(pg_get_expr(c.relpartbound, c.oid), $re$FROM \\('([^']+)'\\) TO \\('([^']+)'\\)$re$))[1]::timestamptz as lo,
         (regexp_match(pg_get_expr(c.relpartbound, c.oid), $re$FROM \\('([^']+)'\\) TO \\('([^']+)'\\)$re$))[2]::timestamptz as hi
    from pg_inherits i
    join pg_class c on c.oid = i.inhrelid
   where i.inhparent = to_regclass(?)
   order by lo nulls last, c.relname`;

export function createRetentionRepository(db: Knex) {
  const listPartitions = async (conn: Knex | Knex.Transaction, table: PartitionedTable) => {
    const res = await conn.raw<{ rows: { name: string; lo: Date | null; hi: Date | null }[] }>(
      PARTITIONS_SQL,
      [table],
    );
    return res.rows.map((r): PartitionInfo => ({ table, name: r.name, from: r.lo, to: r.hi }));
  };

  return {
    /** Every partition of a table with its catalog bounds, oldest first. */
    async partitions(table: PartitionedTable): Promise<PartitionInfo[]> {
      return listPartitions(db, checkTable(table));
    },

    /** Lower bound of the oldest bounded partition, or undefined when the table has none. */
    async oldestPartitionStart(table: PartitionedTable): Promise<Date | undefined> {
      const parts = await listPartitions(db, checkTable(table));
      return parts.find((p) => p.from !== null)?.from ?? undefined;
    },

    /**
     * The UTC months in [from, to) that no existing partition covers (what ensurePartitions would
     * create), named by the convention ensure_month_partitions() uses.
     */
    async missingMonths(table: PartitionedTable, from: Date, to: Date): Promise<PartitionInfo[]> {
      checkTable(table);
      const res = await db.raw<{ rows: { name: string; lo: Date; hi: Date }[] }>(
        `
        with parts as (${PARTITIONS_SQL}),
        months as (
          select mm at time zone 'UTC' as lo, (mm + interval '1 month') at time zone 'UTC' as hi, mm
            from generate_series(date_trunc('month', ?::timestamptz at time zone 'UTC'),
                                 ?::timestamptz at time zone 'UTC' - interval '1 microsecond',
                                 interval '1 month') as g(mm)
        )
        select format('%s_p%s', ?::text, to_char(mm, 'YYYY_MM')) as name, lo, hi
          from months
         where not exists (select 1 from parts p where p.lo <= months.lo and p.hi >= months.hi)
         order by lo
        `,
        [table, from, to, table],
      );
      return res.rows.map((r) => ({ table, name: r.name, from: r.lo, to: r.hi }));
    },

    /** Creates the missing monthly partitions covering [from, to); returns how many were created. */
    async ensurePartitions(table: PartitionedTable, from: Date, to: Date): Promise<number> {
      const res = await db.raw<{ rows: { n: number }[] }>(`select ensure_month_partitions(?, ?, ?) as n`, [
        checkTable(table),
        from,
        to,
      ]);
      return Number(res.rows[0]?.n ?? 0);
    },

    /**
     * Drops the given partitions of a table in one transaction (a short lock_timeout, so a long
     * query on the table makes the job retry later instead of queueing everyone behind the DROP),
     * notifies the API's series cache when bars went, then prunes the bar_changes rows that now
     * lie wholly before the table's oldest partition.
     * Names are checked against the catalog: only actual partitions of `table` are dropped.
     */
    async dropPartitions(
      table: PartitionedTable,
      names: string[],
    ): Promise<{ dropped: PartitionInfo[]; changesPruned: number }> {
      checkTable(table);
      return db.transaction(async (trx) => {
        await trx.raw(`set local lock_timeout = '10s'`);
        const parts = await listPartitions(trx, table);
        const dropped = parts.filter((p) => names.includes(p.name));
        for (const p of dropped) await trx.raw('drop table ??', [p.name]);
        // Dropping a partition fires no trigger: tell the API's series cache (delivered at commit;
        // migrations/20261204000500_series_notify.ts) that any 5-minute series may have changed.
        if (table === 'bars_5m' && dropped.length > 0)
          await trx.raw(`select pg_notify('series_changed', '*')`);
        const oldest = parts.find((p) => p.from !== null && !names.includes(p.name))?.from;
        let changesPruned = 0;
        if (oldest) {
          const del = await trx.raw<{ rowCount: number }>(
            `delete from bar_changes where level = ? and to_ts <= ?`,
            [CHANGE_LEVEL[table], oldest],
          );
          changesPruned = del.rowCount;
        }
        return { dropped, changesPruned };
      });
    },

    /** How many bar_changes rows dropPartitions would prune if the table's oldest partition began at `oldest`. */
    async countStaleChanges(table: PartitionedTable, oldest: Date): Promise<number> {
      const res = await db.raw<{ rows: { n: string }[] }>(
        `select count(*) as n from bar_changes where level = ? and to_ts <= ?`,
        [CHANGE_LEVEL[checkTable(table)], oldest],
      );
      return Number(res.rows[0]?.n ?? 0);
    },

    /**
     * Deletes (or, dry, counts) 5-minute indicator rows older than `before`. The indicator schema
     * belongs to the analytics work and may change, so the table is found at run time: the first of
     * INDICATOR_TABLES that exists with an `interval` column and a time column (ts or bucket).
     */
    async expireIndicators5m(
      before: Date,
      dryRun: boolean,
    ): Promise<{ table: string; rows: number } | { table: null; note: string }> {
      for (const table of INDICATOR_TABLES) {
        const cols = await db.raw<{ rows: { column_name: string }[] }>(
          `select column_name from information_schema.columns
            where table_schema = current_schema() and table_name = ?`,
          [table],
        );
        if (cols.rows.length === 0) continue;
        const names = new Set(cols.rows.map((r) => r.column_name));
        const time = INDICATOR_TIME_COLUMNS.find((c) => names.has(c));
        if (!names.has('interval') || !time) {
          return {
            table: null,
            note: `${table} has no interval/ts columns; 5-minute indicators not expired`,
          };
        }
        const res = dryRun
          ? await db.raw<{ rows: { n: string }[] }>(
              `select count(*) as n from ?? where ?? = '5m' and ?? < ?`,
              [table, 'interval', time, before],
            )
          : await db.raw<{ rowCount: number }>(`delete from ?? where ?? = '5m' and ?? < ?`, [
              table,
              'interval',
              time,
              before,
            ]);
        const rows = dryRun
          ? Number((res as { rows: { n: string }[] }).rows[0]?.n ?? 0)
          : (res as { rowCount: number }).rowCount;
        return { table, rows };
      }
      return { table: null, note: 'no indicator table found' };
    },
  };
}

export type RetentionRepository = ReturnType<typeof createRetentionRepository>;
