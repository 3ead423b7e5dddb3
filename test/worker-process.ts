/**
 * Real processes for fault tests: spawn a worker (node running the worker host for some jobs, with
 * environment overrides such as another DATABASE_URL, a queue prefix or short lock times) or the
 * API, SIGKILL it, poll until a condition holds, and cut a service off with a TCP proxy.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import type { JobName } from '../jobs/catalogue.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Every process started here, so a test's afterAll can kill what is left. */
export const workerProcesses: ChildProcess[] = [];

/**
 * A worker process for `names` (default: every job) with `env` over the test's environment
 * (schedulers off, NODE_ENV test). Its stderr goes to the test's unless `captureStderr`.
 */
export function startWorkerProcess(
  env: Record<string, string>,
  opts: { names?: JobName[]; capture?: boolean } = {},
): ChildProcess {
  const script = `
    import { buildDeps } from ${JSON.stringify(`${ROOT}core/deps.ts`)};
    import { startWorkers } from ${JSON.stringify(`${ROOT}jobs/worker-host.ts`)};
    const deps = buildDeps({ name: 'test-worker' });
    startWorkers(deps, ${opts.names ? `{ names: ${JSON.stringify(opts.names)} }` : '{}'});
  `;
  return startProcess(['--input-type=module', '-e', script], env, opts.capture);
}

/** The worker entry point (workers/worker.ts: every job, SIGTERM handling) with `env` over the test's environment. */
export function startWorkerEntry(
  env: Record<string, string>,
  opts: { capture?: boolean } = {},
): ChildProcess {
  return startProcess([`${ROOT}workers/worker.ts`], env, opts.capture);
}

/** The API process (workers/api.ts) with `env` over the test's environment. */
export function startApiProcess(env: Record<string, string>, opts: { capture?: boolean } = {}): ChildProcess {
  return startProcess([`${ROOT}workers/api.ts`], env, opts.capture);
}

function startProcess(args: string[], env: Record<string, string>, capture = false): ChildProcess {
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: { ...process.env, LOG_LEVEL: 'warn', SCHEDULERS_ENABLED: 'false', NODE_ENV: 'test', ...env },
    // Captured: stdout (pino's JSON lines) and stderr are piped for the test to read.
    stdio: ['ignore', capture ? 'pipe' : 'ignore', capture ? 'pipe' : 'inherit'],
  });
  workerProcesses.push(child);
  return child;
}

/** Lines a captured process writes, per stream, as they arrive. */
export function collectLines(child: ChildProcess): { stdout: string[]; stderr: string[] } {
  const out = { stdout: [] as string[], stderr: [] as string[] };
  for (const stream of ['stdout', 'stderr'] as const) {
    let rest = '';
    child[stream]?.setEncoding('utf8');
    child[stream]?.on('data', (chunk: string) => {
      const parts = (rest + chunk).split('\n');
      rest = parts.pop() ?? '';
      out[stream].push(...parts);
    });
  }
  return out;
}

/** SIGKILL (kill -9): no cleanup, no lock released, the job stays active until its lock expires. */
export async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGKILL');
  await exited;
}

export async function killAll(): Promise<void> {
  for (const c of workerProcesses.splice(0)) await kill(c);
}

/** Polls `check` every 20 ms until it holds; throws after `ms`. */
export async function until(check: () => Promise<boolean>, ms: number, what = 'condition'): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

export /** A TCP proxy to host:port that can be cut: open connections are destroyed and new ones closed at once. */
async function tcpProxy(
  host: string,
  port: number,
): Promise<{ port: number; cut(): void; restore(): void; close(): Promise<void> }> {
  let down = false;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    if (down) {
      client.destroy();
      return;
    }
    const upstream = net.connect(port, host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    cut() {
      down = true;
      for (const s of sockets) s.destroy();
    },
    restore() {
      down = false;
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}
