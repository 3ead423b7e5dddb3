/**
 * `npm run bench`: the speed figures the issues ask for, each as a ratio against a baseline
 * measured in the same run on the same machine. Runs in a scratch database it creates and drops.
 *
 * Sizes: BENCH_SECURITIES (default 100) x BENCH_SESSIONS (default 20) sessions of 20-second ticks;
 * BENCH_LANES (default 2): concurrent COPY connections of the generator.
 */
import { randomBytes } from 'node:crypto';
import { loadConfig } from '../core/config.ts';
import { createDb, dropDatabase, ensureDatabase } from '../core/db/knex.ts';
import { migrateLatest } from '../core/db/migrate.ts';
import { buildDeps, closeDeps } from '../core/deps.ts';
import { dataGenerate } from '../jobs/processors/data-generate.ts';
import { directContext } from '../jobs/types.ts';
import { benchGenerate } from './generate.ts';
import { benchRollup } from './rollup.ts';

const securities = Number(process.env.BENCH_SECURITIES ?? 100);
const sessions = Number(process.env.BENCH_SESSIONS ?? 20);

const base = loadConfig({ ...process.env, LOG_LEVEL: 'warn' });
const url = new URL(base.db.url);
url.pathname = `/mdw_bench_${randomBytes(4).toString('hex')}`;
const config = loadConfig({ ...process.env, LOG_LEVEL: 'warn', DATABASE_URL: url.toString() });
await ensureDatabase(config.db.url);
const migrator = createDb(config, { poolMax: 2 });
await migrateLatest(migrator);
await migrator.destroy();
const deps = buildDeps({ name: 'bench', config, poolMax: 4 });

const fmt = (n: number, d = 0): string =>
  n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
try {
  console.log(
    `bench: ${securities} securities x ${sessions} sessions of 20-second ticks (scratch database ${url.pathname.slice(1)})\n`,
  );

  const lanes = process.env.BENCH_LANES ? Number(process.env.BENCH_LANES) : undefined;
  const g = await benchGenerate(deps, { securities, sessions, ...(lanes ? { lanes } : {}) });
  console.log('1. generator + COPY load of ticks (issue: foundation)');
  console.log(`   ticks:                  ${fmt(g.ticks)}`);
  console.log(
    `   generator + COPY:       ${fmt(g.ticksPerSecond)} ticks/s  (${fmt(g.seconds, 2)} s)   aim >= 300,000`,
  );
  console.log(
    `   server-side COPY:       ${fmt(g.serverCopyTicksPerSecond)} ticks/s  (${fmt(g.serverCopySeconds, 2)} s)`,
  );
  console.log(`   ratio to server COPY:   ${fmt(g.ratio, 2)}   aim >= 0.6\n`);

  await dataGenerate(
    deps,
    { seed: 7, scale: 'small', securities, tickSessions: sessions, years: 0.2 },
    directContext(),
  );
  const r = await benchRollup(deps);
  console.log('2. full 5-minute rollup of the generated ticks (issue: foundation)');
  console.log(`   ticks -> bars:          ${fmt(r.ticks)} -> ${fmt(r.bars)}`);
  console.log(`   rollup (first run):     ${fmt(r.rollupSeconds, 2)} s`);
  console.log(
    `   floor (bare GROUP BY):  ${fmt(r.floorSeconds, 2)} s   ratio ${fmt(r.ratio, 2)}   aim <= 1.5`,
  );
  console.log(
    `   write floor (GROUP BY + same insert into bars_5m): ${fmt(r.writeFloorSeconds, 2)} s   ratio ${fmt(r.ratioToWriteFloor, 2)}`,
  );
} finally {
  await closeDeps(deps);
  await dropDatabase(config.db.url);
}
