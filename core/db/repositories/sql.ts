/**
 * Small helpers the repositories share (no SQL of any table lives here): the raw pg client that
 * COPY and raw transactions run on, a guard for table names spliced into SQL, and the column
 * arrays that `unnest(...)` bulk statements bind.
 */
import type pg from 'pg';

/**
 * A raw pg client, as `rawTransaction` (core/db/knex.ts) hands it out: pg-copy-streams needs one.
 * Functions named `…On(conn, …)` run on a transaction the caller holds.
 */
export type Conn = pg.Client;

const IDENT = /^[a-z_][a-z0-9_]*$/;

/** A plain table name, safe to splice into SQL (benchmarks pass scratch copies of ticks). */
export function ident(name: string): string {
  if (!IDENT.test(name)) throw new Error(`not a plain table name: ${name}`);
  return name;
}

/** One field of every row, as the array an `unnest($n::type[])` parameter binds. */
export const col = <T, K extends keyof T>(rows: readonly T[], key: K): T[K][] => rows.map((r) => r[key]);
