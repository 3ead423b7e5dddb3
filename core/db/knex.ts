import knexFactory, { type Knex } from 'knex';
import pg from 'pg';
import type { Config } from '../config.ts';

export type { Knex };

// pg returns numeric and int8 as strings; we keep them that way on purpose (money is parsed
// deliberately with decimal arithmetic, never through a binary float). `date` columns stay
// 'YYYY-MM-DD' strings instead of becoming local-midnight Date objects that shift by time zone.
pg.types.setTypeParser(pg.types.builtins.DATE, (v: string) => v);

/** A knex instance over a pg pool. One per process; close it with `destroy()`. */
export function createDb(config: Pick<Config, 'db'>, opts: { poolMax?: number } = {}): Knex {
  return knexFactory({
    client: 'pg',
    connection: { connectionString: config.db.url, application_name: 'market-data-workers' },
    pool: { min: 0, max: opts.poolMax ?? config.db.poolMax },
    acquireConnectionTimeout: 30_000,
  });
}

/**
 * Runs `fn` in one transaction on one pooled connection, as the raw pg client (COPY through
 * pg-copy-streams needs it; knex transactions do not expose it). `before` runs on the connection
 * before `begin` (session settings). A connection whose rollback failed is closed, not reused.
 */
export async function rawTransaction<T>(
  db: Knex,
  fn: (conn: pg.Client) => Promise<T>,
  before?: (conn: pg.Client) => Promise<void>,
): Promise<T> {
  const conn = (await db.client.acquireConnection()) as pg.Client;
  let healthy = true;
  try {
    if (before) await before(conn);
    await conn.query('begin');
    const out = await fn(conn);
    await conn.query('commit');
    return out;
  } catch (err) {
    try {
      await conn.query('rollback');
    } catch {
      healthy = false;
    }
    throw err;
  } finally {
    if (!healthy) await conn.end().catch(() => undefined);
    await db.client.releaseConnection(conn);
  }
}

/**
 * One statement as a named prepared statement on a pooled connection (the API's hot reads): each
 * connection parses and plans it once, later calls only bind and execute, and knex's query
 * builder is skipped. `name` must stand for this one `text` in the whole process.
 */
export async function preparedQuery<R extends object>(
  db: Knex,
  name: string,
  text: string,
  values: unknown[],
): Promise<R[]> {
  const conn = (await db.client.acquireConnection()) as pg.Client;
  try {
    return (await conn.query<R>({ name, text, values })).rows;
  } finally {
    await db.client.releaseConnection(conn);
  }
}

/** Creates the database named in the URL if it does not exist (connects to `postgres` to do it). */
export async function ensureDatabase(url: string): Promise<{ created: boolean; name: string }> {
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.replace(/^\//, ''));
  if (!/^[A-Za-z0-9_-]+$/.test(name)) throw new Error(`DATABASE_URL: unsupported database name "${name}"`);
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    const found = await client.query('select 1 from pg_database where datname = $1', [name]);
    if (found.rowCount) return { created: false, name };
    await client.query(`create database "${name}"`);
    return { created: true, name };
  } catch (err) {
    // Two processes racing to create it: the loser sees duplicate_database, which is fine.
    if ((err as { code?: string }).code === '42P04') return { created: false, name };
    throw err;
  } finally {
    await client.end();
  }
}

/** Drops a database (tests only), terminating its connections first. */
export async function dropDatabase(url: string): Promise<void> {
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.replace(/^\//, ''));
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const client = new pg.Client({ connectionString: admin.toString() });
  await client.connect();
  try {
    await client.query(`drop database if exists "${name}" with (force)`);
  } finally {
    await client.end();
  }
}
