/**
 * variance.quarterly alone over a kept database (issue 9 profiling): the first run creates
 * `mdw_vspeed_bench` (or BENCH_DB), fills it as bench/books.ts does and writes the 5 years of
 * holdings once; later runs only measure variance vs the bare aggregation. BENCH_DROP=1 drops it.
 *   ./scripts/with-node.sh node bench/variance-profile.ts
 */
import { loadConfig } from '../core/config.ts';
import { createDb, dropDatabase, ensureDatabase } from '../core/db/knex.ts';
import { migrateLatest } from '../core/db/migrate.ts';
import { buildDeps, closeDeps } from '../core/deps.ts';
import { holdingsSnapshot } from '../jobs/processors/holdings.ts';
import { directContext } from '../jobs/types.ts';
import { fillBooks, measureVariance } from './books.ts';

const base = loadConfig({ ...process.env, LOG_LEVEL: 'warn' });
const url = new URL(base.db.url);
url.pathname = `/${process.env.BENCH_DB ?? 'mdw_vspeed_bench'}`;
const config = loadConfig({ ...process.env, LOG_LEVEL: 'warn', DATABASE_URL: url.toString() });
if (process.env.BENCH_DROP === '1') {
  await dropDatabase(config.db.url);
  process.exit(0);
}
await ensureDatabase(config.db.url);
const migrator = createDb(config, { poolMax: 2 });
await migrateLatest(migrator);
await migrator.destroy();
const deps = buildDeps({ name: 'bench', config, poolMax: 4 });
try {
  const n = await deps.db.raw<{ rows: { n: number }[] }>('select count(*)::int as n from holdings');
  if ((n.rows[0]?.n ?? 0) === 0) {
    await fillBooks(deps, Number(process.env.BENCH_BOOKS_SECURITIES ?? 1050), (l) => console.log(l));
    const ids = (await deps.repos.books.portfolios()).found.map((p) => p.portfolioId);
    await holdingsSnapshot(
      deps,
      { from: '2020-09-30', to: '2025-12-31', portfolioIds: ids },
      directContext(),
    );
    await deps.db.raw('vacuum analyze');
    console.log('holdings written');
  }
  const v = await measureVariance(deps);
  console.log(
    `variance.quarterly: ${v.quarters} quarters, ${v.varianceRows} rows in ${v.varianceSeconds.toFixed(2)} s; ` +
      `bare aggregation ${v.aggregationSeconds.toFixed(2)} s; ratio ${v.varianceRatio.toFixed(2)}; ` +
      `write floor ${v.writeFloorSeconds.toFixed(2)} s`,
  );
} finally {
  await closeDeps(deps);
}
