/**
 * A small HTTP load generator, run as its own process so that the server under test keeps its
 * core (`node bench/load.ts <json options>`; prints one JSON result line).
 *
 * - closed loop (`rate` absent): `connections` keep-alive connections, each sending its next
 *   request as soon as the previous answered, for `seconds`: the throughput the server sustains;
 * - open loop (`rate` set): requests start on a fixed schedule, `rate` per second, whatever the
 *   answers do; each latency is measured from its scheduled start, so a stalled server shows as
 *   latency rather than as fewer requests (no coordinated omission). At most `connections`
 *   requests are in flight; a request that finds none free waits and that wait counts.
 */
import http from 'node:http';

export interface LoadOptions {
  url: string;
  headers?: Record<string, string>;
  connections: number;
  seconds: number;
  rate?: number;
}

export interface LoadResult {
  requests: number;
  errors: number;
  seconds: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

export async function runLoad(opts: LoadOptions): Promise<LoadResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: opts.connections });
  const target = new URL(opts.url);
  const once = (): Promise<boolean> =>
    new Promise((resolve) => {
      const req = http.request(
        {
          agent,
          host: target.hostname,
          port: target.port,
          path: `${target.pathname}${target.search}`,
          headers: opts.headers,
        },
        (res) => {
          res.on('data', () => {});
          res.on('end', () => resolve(res.statusCode === 200));
          res.on('error', () => resolve(false));
        },
      );
      req.on('error', () => resolve(false));
      req.end();
    });

  const latencies: number[] = [];
  let errors = 0;
  const start = performance.now();
  const end = start + opts.seconds * 1000;

  if (opts.rate === undefined) {
    await Promise.all(
      Array.from({ length: opts.connections }, async () => {
        while (performance.now() < end) {
          const t = performance.now();
          const ok = await once();
          latencies.push(performance.now() - t);
          if (!ok) errors += 1;
        }
      }),
    );
  } else {
    const interval = 1000 / opts.rate;
    const total = Math.floor(opts.seconds * opts.rate);
    let free = opts.connections;
    const waiting: (() => void)[] = [];
    const slot = async (): Promise<void> => {
      if (free > 0) {
        free -= 1;
        return;
      }
      await new Promise<void>((resolve) => waiting.push(resolve));
    };
    const release = (): void => {
      const next = waiting.shift();
      if (next) next();
      else free += 1;
    };
    const inFlight: Promise<void>[] = [];
    for (let i = 0; i < total; i += 1) {
      const scheduled = start + i * interval;
      const delay = scheduled - performance.now();
      if (delay > 1) await new Promise((r) => setTimeout(r, delay));
      inFlight.push(
        (async () => {
          await slot();
          const ok = await once();
          release();
          latencies.push(performance.now() - scheduled);
          if (!ok) errors += 1;
        })(),
      );
    }
    await Promise.all(inFlight);
  }
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
  };
}

if (import.meta.main) {
  const result = await runLoad(JSON.parse(process.argv[2] ?? '{}') as LoadOptions);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
