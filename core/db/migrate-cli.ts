/** `npm run migrate [-- --down|--down-all]`: creates the database if missing, then migrates. */
import { loadConfig } from '../config.ts';
import { createLogger } from '../logger.ts';
import { createDb, ensureDatabase } from './knex.ts';
import { migrateLatest, migrateRollback } from './migrate.ts';

const config = loadConfig();
const logger = createLogger(config, 'migrate');
const arg = process.argv[2];
const { created, name } = await ensureDatabase(config.db.url);
if (created) logger.info({ database: name }, 'created database');
const db = createDb(config, { poolMax: 2 });
try {
  if (arg === '--down' || arg === '--down-all') {
    const rolled = await migrateRollback(db, arg === '--down-all');
    logger.info({ rolled }, rolled.length ? 'rolled back' : 'nothing to roll back');
  } else {
    const applied = await migrateLatest(db);
    logger.info({ applied }, applied.length ? 'migrated' : 'already up to date');
  }
} finally {
  await db.destroy();
}
