/**
 * Creates one throw-away database for the whole run, applies the real migrations to it, and
 * drops it afterwards. Tests read its URL with `inject('databaseUrl')` (see test/support.ts).
 */
import { randomBytes } from 'node:crypto';
import type { TestProject } from 'vitest/node';
import { loadConfig } from '../core/config.ts';
import { createDb, dropDatabase, ensureDatabase } from '../core/db/knex.ts';
import { migrateLatest } from '../core/db/migrate.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const base = loadConfig({ ...process.env, NODE_ENV: 'test' });
  const url = new URL(base.db.url);
  url.pathname = `/mdw_test_${Date.now().toString(36)}_${randomBytes(3).toString('hex')}`;
  const databaseUrl = url.toString();
  await ensureDatabase(databaseUrl);
  const db = createDb({ db: { url: databaseUrl, poolMax: 2 } });
  try {
    await migrateLatest(db);
  } finally {
    await db.destroy();
  }
  project.provide('databaseUrl', databaseUrl);
  return async () => {
    await dropDatabase(databaseUrl);
  };
}
