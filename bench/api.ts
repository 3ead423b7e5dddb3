/**
 * The API under a bounded local load (issue 8): historical (a year of daily bars) and intraday
 * (the newest 100 five-minute bars) against `/health` in the same run, through the real app
 * (bearer verification, validation, the database) in this process and a load generator in
 * another (bench/load.ts), so server and client each have a core.
 *
 * Figures: closed-loop throughput with BENCH_API_CONNECTIONS (default 20) connections for
 * BENCH_API_SECONDS (default 5) each, as ratios to /health; then p50/p99 at a fixed offered rate
 * of BENCH_API_RATE (default 500) requests per second (open loop). Each series endpoint is measured
 * twice: through the app as configured (series cache on unless API_SERIES_CACHE_MB=0; its hit ratio
 * during each load is reported, so a reader knows what was measured) and through a second app on
 * the same pool with the cache off (every request reads PostgreSQL).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { benchStack, serve } from './app-stack.ts';
import { closeApp, createApp, seriesCacheOf } from '../api/app.ts';
import { createClient } from '../api/auth/accounts.ts';
import type { LoadOptions, LoadResult } from './load.ts';

const run = promisify(execFile);
const loadScript = join(dirname(fileURLToPath(import.meta.url)), 'load.ts');

async function load(opts: LoadOptions): Promise<LoadResult> {
  const { stdout } = await run(process.execPath, [loadScript, JSON.stringify(opts)], {
    maxBuffer: 1 << 20,
  });
  return JSON.parse(stdout) as LoadResult;
}

/** A load's result with the series cache's hit ratio during it (null: no cache). */
export type SeriesLoadResult = LoadResult & { hitRatio: number | null };

export interface ApiBenchResult {
  health: LoadResult;
  historical: SeriesLoadResult;
  intraday: SeriesLoadResult;
  historicalAtRate: SeriesLoadResult;
  intradayAtRate: SeriesLoadResult;
  historicalUncached: SeriesLoadResult;
  intradayUncached: SeriesLoadResult;
  historicalUncachedAtRate: SeriesLoadResult;
  intradayUncachedAtRate: SeriesLoadResult;
  rate: number;
  /** Whether the configured app has a series cache (API_SERIES_CACHE_MB > 0). */
  cached: boolean;
}

export async function benchApi(opts: {
  databaseUrl: string;
  connections: number;
  seconds: number;
  rate: number;
  log: (line: string) => void;
}): Promise<ApiBenchResult> {
  const stack = await benchStack('bench-api', opts.databaseUrl);
  const { config, deps, queues, auth } = stack;
  const app = await createApp(deps, { queues, auth });
  const cache = seriesCacheOf(app);
  // The same process, pool and auth with the cache off: what every request costs PostgreSQL.
  const plainApp = await createApp(
    { ...deps, config: { ...config, api: { ...config.api, seriesCacheBytes: 0 } } },
    { queues, auth },
  );
  const [served, plainServed] = await Promise.all([serve(app), serve(plainApp)]);
  const base = served.base;
  const plainBase = plainServed.base;
  try {
    await cache?.listening();
    const ticker = `BENCH${randomBytes(2).toString('hex').toUpperCase()}`;
    const [sec] = await deps
      .db('securities')
      .insert({
        security_id: `SEC-${900_000_000 + randomBytes(3).readUIntBE(0, 3)}`,
        ticker,
        security_name: 'API bench',
        security_type: 'EQUITY',
        asset_class: 'Equity',
        currency: 'USD',
        exchange: 'NYSE',
      })
      .returning<{ id: number }[]>('id');
    const id = sec!.id;
    // A year of daily bars before 2026-06-30 and 500 five-minute bars before its close.
    await deps.db.raw(
      `insert into bars_1d (security_id, session_date, open, high, low, close, volume, pv, vwap, trade_count, source)
       select ?, d::date, 100 + i % 7, 101 + i % 7, 99 + i % 7, 100.5 + i % 7, 1000000 + i, null, 100.25 + i % 7, 5000, 'bench'
         from generate_series('2025-07-01'::date, '2026-06-30'::date, interval '1 day') with ordinality as g(d, i)
        where extract(isodow from d) < 6`,
      [id],
    );
    await deps.db.raw(
      `select ensure_month_partitions('bars_5m', '2026-06-01'::timestamptz, '2026-07-01'::timestamptz)`,
    );
    await deps.db.raw(
      `insert into bars_5m (security_id, bucket, open, high, low, close, volume, pv, vwap, trade_count)
       select ?, timestamptz '2026-06-30 19:55:00+00' - (i * interval '5 minutes'),
              100 + i % 5, 101 + i % 5, 99 + i % 5, 100.5 + i % 5, 1000 + i, (1000 + i) * (100.25 + i % 5), 100.25 + i % 5, 20
         from generate_series(0, 499) as i`,
      [id],
    );
    const client = await createClient(deps, { name: 'api bench', scopes: ['results:read'] });
    const tokenRes = await fetch(`${base}/oauth/token`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`${client.clientId}:${client.clientSecret}`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: 'grant_type=client_credentials',
    });
    if (tokenRes.status !== 200) throw new Error(`token endpoint answered ${tokenRes.status}`);
    const token = ((await tokenRes.json()) as { access_token: string }).access_token;
    const headers = { authorization: `Bearer ${token}` };

    const urls = {
      health: `${base}/health`,
      historical: `${base}/api/v2/historical/prices/${ticker}?start_date=2025-07-01&end_date=2026-06-30`,
      intraday: `${base}/api/v2/intraday/prices/${ticker}?limit=100`,
    };
    for (const [name, url] of Object.entries(urls)) {
      const res = await fetch(url, { headers });
      if (res.status !== 200) throw new Error(`${name}: ${url} answered ${res.status}: ${await res.text()}`);
      const body = (await res.json()) as { count?: number };
      if (name !== 'health') opts.log(`${name}: ${body.count} rows per response`);
    }
    const plain = (url: string): string => plainBase + url.slice(base.length);
    /** One load, with the hit ratio of this app's cache during it. */
    const measure = async (url: string, rate?: number): Promise<SeriesLoadResult> => {
      const own = url.startsWith(base) ? cache : undefined;
      const before = own?.stats();
      const res = await load({
        url,
        headers,
        connections: opts.connections,
        seconds: opts.seconds,
        ...(rate ? { rate } : {}),
      });
      const after = own?.stats();
      const looked = before && after ? after.hits + after.misses - before.hits - before.misses : 0;
      return { ...res, hitRatio: before && after && looked > 0 ? (after.hits - before.hits) / looked : null };
    };
    // Warm-up (JIT, pool connections, key cache), not reported.
    await load({ url: urls.historical, headers, connections: opts.connections, seconds: 1 });
    await load({ url: plain(urls.historical), headers, connections: opts.connections, seconds: 1 });
    const health = await load({
      url: urls.health,
      headers,
      connections: opts.connections,
      seconds: opts.seconds,
    });
    const historical = await measure(urls.historical);
    const intraday = await measure(urls.intraday);
    const historicalUncached = await measure(plain(urls.historical));
    const intradayUncached = await measure(plain(urls.intraday));
    const historicalAtRate = await measure(urls.historical, opts.rate);
    const intradayAtRate = await measure(urls.intraday, opts.rate);
    const historicalUncachedAtRate = await measure(plain(urls.historical), opts.rate);
    const intradayUncachedAtRate = await measure(plain(urls.intraday), opts.rate);
    return {
      health,
      historical,
      intraday,
      historicalAtRate,
      intradayAtRate,
      historicalUncached,
      intradayUncached,
      historicalUncachedAtRate,
      intradayUncachedAtRate,
      rate: opts.rate,
      cached: cache !== undefined,
    };
  } finally {
    await Promise.all([served.close(), plainServed.close()]);
    await closeApp(plainApp);
    await closeApp(app);
    await stack.close();
  }
}
