/**
 * `npm run bench`: the speed figures the issues ask for, each as a ratio against a baseline
 * measured in the same run on the same machine. Runs in a scratch database it creates and drops.
 *
 * Sections (BENCH_ONLY=generate,rollup,ingest,incremental,indicators,api,orders,books,margin,reports picks some; default all):
 *  1. generate: the generator + COPY load vs server-side COPY (issue 2)
 *  2. rollup: the full 5-minute rollup vs a bare GROUP BY (issue 2)
 *  3. ingest: the provider path (synthetic 1-minute bars → validate → ticks) vs server-side COPY
 *  4. incremental: one new 5-minute slice for 1,000 securities with 1x vs 10x history
 *  5. indicators: all indicators for 1,000 securities x 5 years of daily bars
 *  6. api: historical and intraday endpoints vs /health under a bounded local load (bench/api.ts)
 *  7. orders: paper-trading orders through the API vs /health, many clients and one (bench/orders.ts)
 *  8. books: holdings.snapshot (5 years of daily books) vs INSERT … SELECT, variance.quarterly
 *     (21 quarters) vs a bare SQL aggregation (issue 9; bench/books.ts; BENCH_BOOKS_SECURITIES)
 *  9. margin: margin.nightly for BENCH_MARGIN_CLIENTS (default 100,000) x BENCH_MARGIN_POSITIONS
 *     (default 10) vs one bare SQL aggregation of MV per client (bench/margin.ts)
 * 10. reports: a BENCH_REPORT_ROWS-row (default 1,000,000) variance workbook vs COPY of its query (bench/reports.ts)
 *
 * Sizes: BENCH_SECURITIES (default 100) x BENCH_SESSIONS (default 20) sessions of 20-second ticks
 * for 1-2; BENCH_LANES (default 2): concurrent COPY connections of the generator;
 * BENCH_INGEST_ROWS (default 500,000); BENCH_INCREMENTAL_SESSIONS (default 2, the 1x history);
 * BENCH_INDICATOR_SECURITIES (default 1,000) x BENCH_INDICATOR_YEARS (default 5).
 */
import { randomBytes } from 'node:crypto';
import { loadConfig } from '../core/config.ts';
import { createDb, dropDatabase, ensureDatabase } from '../core/db/knex.ts';
import { migrateLatest } from '../core/db/migrate.ts';
import { buildDeps, closeDeps } from '../core/deps.ts';
import { dataGenerate } from '../jobs/processors/data-generate.ts';
import { directContext } from '../jobs/types.ts';
import { benchApi } from './api.ts';
import { benchBooks } from './books.ts';
import { benchGenerate } from './generate.ts';
import { benchIndicators } from './indicators.ts';
import { benchIngest } from './ingest.ts';
import { benchMargin } from './margin.ts';
import { benchOrders } from './orders.ts';
import { benchRollup } from './rollup.ts';
import { benchIncrementalRollup } from './rollup-incremental.ts';
import { benchReports } from './reports.ts';

const securities = Number(process.env.BENCH_SECURITIES ?? 100);
const sessions = Number(process.env.BENCH_SESSIONS ?? 20);
const only = new Set(
  (
    process.env.BENCH_ONLY ?? 'generate,rollup,ingest,incremental,indicators,api,orders,books,margin,reports'
  ).split(','),
);

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

  if (only.has('generate')) {
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
  }

  if (only.has('rollup')) {
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
      `   write floor (GROUP BY + same insert into bars_5m): ${fmt(r.writeFloorSeconds, 2)} s   ratio ${fmt(r.ratioToWriteFloor, 2)}\n`,
    );
  }

  if (only.has('ingest')) {
    const rows = Number(process.env.BENCH_INGEST_ROWS ?? 500_000);
    console.log('3. ingest through the provider path into ticks (issue: market data)');
    // benchIngest prints both rates and their ratio itself.
    await benchIngest({ databaseUrl: config.db.url, rows, log: (l) => console.log(l) });
    console.log('');
  }

  if (only.has('incremental')) {
    const historySessions = Number(process.env.BENCH_INCREMENTAL_SESSIONS ?? 2);
    console.log('4. incremental 5-minute rollup of one new slice, 1,000 securities (issue: market data)');
    const r = await benchIncrementalRollup({
      databaseUrl: config.db.url,
      securities: 1000,
      historySessions,
      log: (l) => console.log(`   ${l}`),
    });
    console.log(
      `   1x history: ${fmt(r.oneX * 1000)} ms   10x history: ${fmt(r.tenX * 1000)} ms   ratio ${fmt(r.ratio, 2)}   aim <= 1.3\n`,
    );
  }

  if (only.has('indicators')) {
    const n = Number(process.env.BENCH_INDICATOR_SECURITIES ?? 1000);
    const years = Number(process.env.BENCH_INDICATOR_YEARS ?? 5);
    console.log(
      `5. all indicators, ${fmt(n)} securities x ${years} years of daily bars (issue: market data)`,
    );
    const r = await benchIndicators({
      databaseUrl: config.db.url,
      securities: n,
      years,
      log: (l) => console.log(`   ${l}`),
    });
    console.log(`   seconds: ${fmt(r.seconds, 2)} (${fmt(r.rowsWritten)} rows written)   aim < 10\n`);
  }

  if (only.has('api')) {
    const connections = Number(process.env.BENCH_API_CONNECTIONS ?? 20);
    const seconds = Number(process.env.BENCH_API_SECONDS ?? 5);
    const rate = Number(process.env.BENCH_API_RATE ?? 500);
    console.log(
      `6. API under load: ${connections} connections, ${seconds} s per endpoint (issue: structure)`,
    );
    const r = await benchApi({
      databaseUrl: config.db.url,
      connections,
      seconds,
      rate,
      log: (l) => console.log(`   ${l}`),
    });
    const line = (
      name: string,
      x: { perSecond: number; p50Ms: number; p99Ms: number; errors: number; hitRatio?: number | null },
    ): string =>
      `${name} ${fmt(x.perSecond)} req/s   p50 ${fmt(x.p50Ms, 1)} ms   p99 ${fmt(x.p99Ms, 1)} ms${x.errors ? `   ${x.errors} errors` : ''}` +
      (x.hitRatio === undefined
        ? ''
        : `   cache hits ${x.hitRatio === null ? 'n/a' : fmt(x.hitRatio * 100, 1) + '%'}`);
    const ratio = (x: { perSecond: number }): string => `ratio ${fmt(x.perSecond / r.health.perSecond, 2)}`;
    console.log(`   ${line('/health:              ', r.health)}`);
    console.log(`   series cache ${r.cached ? 'on' : 'off (API_SERIES_CACHE_MB=0)'}:`);
    console.log(`   ${line('historical (1 year):  ', r.historical)}   ${ratio(r.historical)}   aim >= 0.2`);
    console.log(`   ${line('intraday (100 bars):  ', r.intraday)}   ${ratio(r.intraday)}   aim >= 0.2`);
    console.log('   uncached (a second app, cache off: every request reads PostgreSQL):');
    console.log(
      `   ${line('historical (1 year):  ', r.historicalUncached)}   ${ratio(r.historicalUncached)}`,
    );
    console.log(`   ${line('intraday (100 bars):  ', r.intradayUncached)}   ${ratio(r.intradayUncached)}`);
    console.log(`   at ${fmt(r.rate)} req/s offered (open loop):`);
    console.log(`   ${line('historical:           ', r.historicalAtRate)}   aim p99 < 20 ms`);
    console.log(`   ${line('intraday:             ', r.intradayAtRate)}   aim p99 < 20 ms`);
    console.log(`   ${line('historical, uncached: ', r.historicalUncachedAtRate)}`);
    console.log(`   ${line('intraday, uncached:   ', r.intradayUncachedAtRate)}\n`);
  }

  if (only.has('orders')) {
    const connections = Number(process.env.BENCH_ORDERS_CONNECTIONS ?? 20);
    const seconds = Number(process.env.BENCH_ORDERS_SECONDS ?? 5);
    const clients = Number(process.env.BENCH_ORDERS_CLIENTS ?? 200);
    console.log(
      `7. paper-trading orders through the API: ${connections} connections, ${seconds} s, ${fmt(clients)} clients (issue 11)`,
    );
    const r = await benchOrders({
      databaseUrl: config.db.url,
      connections,
      seconds,
      clients,
      log: (l) => console.log(`   ${l}`),
    });
    const line = (
      name: string,
      x: { perSecond: number; p50Ms: number; p99Ms: number; errors: number },
    ): string =>
      `${name} ${fmt(x.perSecond)} req/s   p50 ${fmt(x.p50Ms, 1)} ms   p99 ${fmt(x.p99Ms, 1)} ms${x.errors ? `   ${x.errors} errors` : ''}`;
    console.log(`   ${line('/health:                 ', r.health)}`);
    console.log(
      `   ${line('orders, many clients:    ', r.manyClients)}   ratio to /health ${fmt(r.manyClients.perSecond / r.health.perSecond, 3)}`,
    );
    console.log(
      `   ${line('orders, one client:      ', r.oneClient)}   ratio to /health ${fmt(r.oneClient.perSecond / r.health.perSecond, 3)}   (the account lock serializes them)\n`,
    );
  }

  if (only.has('books')) {
    console.log("8. books at seed 2's shape: 7 portfolios x ~150 positions x 5 years (issue 9)");
    const b = await benchBooks(deps, {
      securities: Number(process.env.BENCH_BOOKS_SECURITIES ?? 1050),
      log: (l) => console.log(`   ${l}`),
    });
    console.log(`   holdings.snapshot:      ${fmt(b.holdings)} rows in ${fmt(b.snapshotSeconds, 2)} s`);
    console.log(
      `   INSERT … SELECT:        ${fmt(b.insertSelectSeconds, 2)} s   ratio ${fmt(b.snapshotRatio, 2)}   aim <= 2`,
    );
    console.log(
      `   variance.quarterly:     ${b.quarters} quarters, ${fmt(b.varianceRows)} rows in ${fmt(b.varianceSeconds, 2)} s`,
    );
    console.log(
      `   bare SQL aggregation:   ${fmt(b.aggregationSeconds, 2)} s   ratio ${fmt(b.varianceRatio, 2)}   aim <= 2`,
    );
    console.log(
      `   (write floor: the same rows replaced in variance_rows, 21 transactions: ${fmt(b.writeFloorSeconds, 2)} s)\n`,
    );
  }

  if (only.has('margin')) {
    const clients = Number(process.env.BENCH_MARGIN_CLIENTS ?? 100_000);
    const positions = Number(process.env.BENCH_MARGIN_POSITIONS ?? 10);
    console.log(`9. margin.nightly, ${fmt(clients)} clients x ${positions} positions (issue 11)`);
    const r = await benchMargin({
      databaseUrl: config.db.url,
      clients,
      positionsPerClient: positions,
      log: (l) => console.log(`   ${l}`),
    });
    console.log(
      `   margin.nightly: ${fmt(r.seconds, 2)} s (${r.batches} batches, ${fmt(r.calls)} in call)   re-run ${fmt(r.rerunSeconds, 2)} s`,
    );
    console.log(`   bare MV aggregation: ${fmt(r.bareSeconds, 2)} s   ratio ${fmt(r.ratio, 2)}   aim <= 3\n`);
  }

  if (only.has('reports')) {
    const rows = Number(process.env.BENCH_REPORT_ROWS ?? 1_000_000);
    const r = await benchReports(deps, { rows });
    console.log(`10. variance workbook, ${fmt(r.rows)} detail rows in ${r.portfolios} sheets (issue 10)`);
    console.log(`   seed (set-based SQL):   ${fmt(r.seedSeconds, 1)} s`);
    console.log(
      `   render (child process): ${fmt(r.renderSeconds, 1)} s   ${fmt(r.rowsPerSecond)} rows/s   ${fmt(r.bytes / 1048576, 1)} MB xlsx`,
    );
    console.log(
      `   peak RSS of the render: ${fmt(r.peakRssMb)} MB   aim < 300   (node ${r.nodeOptions || 'defaults'})`,
    );
    if (r.uncapped)
      console.log(
        `   without heap flags:     ${fmt(r.uncapped.renderSeconds, 1)} s   peak RSS ${fmt(r.uncapped.peakRssMb)} MB`,
      );
    console.log(
      `   COPY … TO STDOUT (CSV): ${fmt(r.copySeconds, 2)} s   ${fmt(r.copyBytes / 1048576, 1)} MB`,
    );
    console.log(`   ratio render / COPY:    ${fmt(r.ratio, 1)}   aim <= 4\n`);
  }
} finally {
  await closeDeps(deps);
  await dropDatabase(config.db.url);
}
