/**
 * Runs the knex migrations in migrations/ (timestamped names, each with up and down). A custom
 * migration source imports the .ts files directly (Node runs TypeScript natively), and the
 * server version is checked first so an old PostgreSQL fails with a clear message.
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Knex } from './knex.ts';

const migrationsDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../migrations');
const MIN_SERVER_VERSION = 150000;

interface MigrationModule {
  up(knex: Knex): Promise<void>;
  down(knex: Knex): Promise<void>;
}

class DirectoryMigrationSource implements Knex.MigrationSource<string> {
  async getMigrations(): Promise<string[]> {
    const files = await readdir(migrationsDir);
    return files.filter((f) => /^\d{14}_[a-z0-9_]+\.ts$/.test(f)).sort();
  }
  getMigrationName(migration: string): string {
    return migration;
  }
  async getMigration(migration: string): Promise<Knex.Migration> {
    const mod = (await import(pathToFileURL(path.join(migrationsDir, migration)).href)) as MigrationModule;
    return { up: mod.up, down: mod.down };
  }
}

const migrationConfig: Knex.MigratorConfig = {
  migrationSource: new DirectoryMigrationSource(),
  tableName: 'knex_migrations',
};

async function checkServer(db: Knex): Promise<void> {
  const res = await db.raw<{ rows: { server_version_num: string }[] }>('show server_version_num');
  const version = Number(res.rows[0]?.server_version_num ?? 0);
  if (version < MIN_SERVER_VERSION) {
    throw new Error(
      `PostgreSQL ${MIN_SERVER_VERSION / 10000}+ is required (found ${version}); declarative partitioning and generated columns are used.`,
    );
  }
}

/** Applies every pending migration; running it again changes nothing. Returns the names applied. */
export async function migrateLatest(db: Knex): Promise<string[]> {
  await checkServer(db);
  const [, applied] = (await db.migrate.latest(migrationConfig)) as [number, string[]];
  return applied;
}

/** Rolls back the last batch (or all batches). Returns the names rolled back. */
export async function migrateRollback(db: Knex, all = false): Promise<string[]> {
  const [, rolled] = (await db.migrate.rollback(migrationConfig, all)) as [number, string[]];
  return rolled;
}

/** Undoes the latest applied migration only (tests of a migration's data conversion). */
export async function migrateDownOne(db: Knex): Promise<string[]> {
  const [, rolled] = (await db.migrate.down(migrationConfig)) as [number, string[]];
  return rolled;
}
