/**
 * Paper-trading orders through the API under a bounded local load (issue 11): the real app (bearer
 * verification, validation, the account lock, Reg T with accountMargin, the transactions row, the
 * position and account_cash_move) in this process, the load generator in another (this file run
 * as a script, like bench/load.ts for GETs), and `/health` in the same run as the baseline.
 *
 * - orders, many clients: BENCH_ORDERS_CONNECTIONS (default 20) keep-alive connections for
 *   BENCH_ORDERS_SECONDS (default 5), each order a BUY of 1 share of one of 5 securities for the
 *   next of BENCH_ORDERS_CLIENTS (default 200) clients, round robin, with a fresh Idempotency-Key;
 * - orders, one client: the same load on one account, where the account lock serializes them
 *   (what contention costs);
 * - the figures: orders/s, p50/p99 latency, errors (any status but 201), and the ratio of
 *   orders/s to /health's requests/s measured with the same connections.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { benchStack, serve } from './app-stack.ts';
import { closeApp, createApp } from '../api/app.ts';
import { createClient } from '../api/auth/accounts.ts';
import type { LoadResult } from './load.ts';

const run = promisify(execFile);
const self = fileURLToPath(import.meta.url);
const loadScript = fileURLToPath(new URL('./load.ts', import.meta.url));

interface OrderLoadOptions {
  base: string;
  token: string;
  clientIds: number[];
  symbols: string[];
  connections: number;
  seconds: number;
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

/** The order load itself (closed loop), run in the child process. */
async function runOrderLoad(
  opts: OrderLoadOptions,
): Promise<LoadResult & { statuses: Record<string, number> }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: opts.connections });
  const target = new URL(opts.base);
  const tag = randomBytes(4).toString('hex');
  const statuses: Record<string, number> = {};
  let next = 0;
  const send = (): Promise<number> =>
    new Promise((resolve) => {
      const n = next++;
      const clientId = opts.clientIds[n % opts.clientIds.length]!;
      const body = JSON.stringify({
        symbol: opts.symbols[n % opts.symbols.length],
        side: 'BUY',
        quantity: 1,
      });
      const req = http.request(
        {
          agent,
          method: 'POST',
          host: target.hostname,
          port: target.port,
          path: `/api/clients/${clientId}/orders`,
          headers: {
            authorization: `Bearer ${opts.token}`,
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(body),
            'idempotency-key': `bench-${tag}-${n}`,
          },
        },
        (res) => {
          res.on('data', () => {});
          res.on('end', () => resolve(res.statusCode ?? 0));
          res.on('error', () => resolve(0));
        },
      );
      req.on('error', () => resolve(0));
      req.end(body);
    });
  const latencies: number[] = [];
  let errors = 0;
  const start = performance.now();
  const end = start + opts.seconds * 1000;
  await Promise.all(
    Array.from({ length: opts.connections }, async () => {
      while (performance.now() < end) {
        const t = performance.now();
        const status = await send();
        latencies.push(performance.now() - t);
        statuses[status] = (statuses[status] ?? 0) + 1;
        if (status !== 201) errors += 1;
      }
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  return {
    requests: latencies.length,
    errors,
    seconds,
    perSecond: latencies.length / seconds,
    p50Ms: quantile(latencies, 0.5),
    p99Ms: quantile(latencies, 0.99),
    maxMs: latencies.at(-1) ?? Number.NaN,
    statuses,
  };
}

async function orderLoad(opts: OrderLoadOptions): Promise<LoadResult & { statuses: Record<string, number> }> {
  const { stdout } = await run(process.execPath, [self, JSON.stringify(opts)], { maxBuffer: 1 << 20 });
  return JSON.parse(stdout) as LoadResult & { statuses: Record<string, number> };
}

async function getLoad(opts: { url: string; connections: number; seconds: number }): Promise<LoadResult> {
  const { stdout } = await run(process.execPath, [loadScript, JSON.stringify(opts)], { maxBuffer: 1 << 20 });
  return JSON.parse(stdout) as LoadResult;
}

export interface OrdersBenchResult {
  health: LoadResult;
  manyClients: LoadResult & { statuses: Record<string, number> };
  oneClient: LoadResult & { statuses: Record<string, number> };
  clients: number;
  connections: number;
}

export async function benchOrders(opts: {
  databaseUrl: string;
  connections: number;
  seconds: number;
  clients: number;
  log: (line: string) => void;
}): Promise<OrdersBenchResult> {
  const stack = await benchStack('bench-orders', opts.databaseUrl, { API_SERIES_CACHE_MB: '0' });
  const { deps, queues, auth } = stack;
  const app = await createApp(deps, { queues, auth });
  const served = await serve(app);
  const base = served.base;
  try {
    const tag = randomBytes(2).toString('hex').toUpperCase();
    const symbols: string[] = [];
    // Tick partitions as a production database has them (RETENTION_TICKS_DAYS 730 and a few months
    // ahead): the latest-price lookup looks at every partition, and planning it costs with their number.
    await deps.db.raw(
      `select ensure_month_partitions('ticks', now() - interval '24 months', now() + interval '3 months')`,
    );
    for (let i = 0; i < 5; i += 1) {
      const ticker = `ORD${tag}${i}`;
      const [sec] = await deps
        .db('securities')
        .insert({
          security_id: `SEC-${800_000_000 + randomBytes(3).readUIntBE(0, 3)}`,
          ticker,
          security_name: 'orders bench',
          security_type: 'EQUITY',
          asset_class: 'Equity',
          currency: 'USD',
          exchange: 'NYSE',
        })
        .returning<{ id: number }[]>('id');
      await deps.db.raw(
        `insert into bars_1d (security_id, session_date, open, high, low, close, volume, pv, vwap, trade_count, source)
         values (:id, (now() - interval '1 day')::date, :p, :p, :p, :p, 1000000, null, :p, null, 'bench')`,
        { id: sec!.id, p: 50 + i * 10 },
      );
      await deps.db.raw(
        `insert into ticks (security_id, ts, seq, price, size) values (:id, now(), 0, :p, 100)`,
        {
          id: sec!.id,
          p: 50 + i * 10 + 0.5,
        },
      );
      symbols.push(ticker);
    }
    // Clients with a margin account and a deposit large enough that Reg T never refuses.
    const clientIds = (
      await deps.db.raw<{ rows: { id: number }[] }>(
        `with c as (
           insert into clients (client_code, name)
           select 'BENCH-' || ? || '-' || g, 'orders bench ' || g from generate_series(1, ?) g
           returning id)
         insert into accounts (client_id, account_type, currency, cash_balance)
         select id, 'MARGIN', 'USD', 1000000000 from c
         returning client_id as id`,
        [randomBytes(4).toString('hex'), opts.clients],
      )
    ).rows.map((r) => r.id);
    const client = await createClient(deps, { name: 'orders bench', scopes: ['trading'] });
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

    // One order by hand first: a setup problem fails here with its body, not as 100% errors.
    const probe = await fetch(`${base}/api/clients/${clientIds[0]}/orders`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        'idempotency-key': 'probe',
      },
      body: JSON.stringify({ symbol: symbols[0], side: 'BUY', quantity: 1 }),
    });
    if (probe.status !== 201) throw new Error(`probe order answered ${probe.status}: ${await probe.text()}`);

    const common = { base, token, symbols, connections: opts.connections };
    await orderLoad({ ...common, clientIds, seconds: 1 }); // warm-up, not reported
    const health = await getLoad({
      url: `${base}/health`,
      connections: opts.connections,
      seconds: opts.seconds,
    });
    const manyClients = await orderLoad({ ...common, clientIds, seconds: opts.seconds });
    const oneClient = await orderLoad({ ...common, clientIds: [clientIds[1]!], seconds: opts.seconds });
    const trades = await deps.db.raw<{ rows: { n: string }[] }>(
      `select count(*) as n from transactions t join accounts a on a.id = t.account_id
        where a.client_id = any(?)`,
      [clientIds],
    );
    opts.log(`${trades.rows[0]!.n} orders stored over ${opts.clients} clients`);
    return { health, manyClients, oneClient, clients: opts.clients, connections: opts.connections };
  } finally {
    await served.close();
    await closeApp(app);
    await stack.close();
  }
}

if (import.meta.main) {
  const result = await runOrderLoad(JSON.parse(process.argv[2] ?? '{}') as OrderLoadOptions);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
