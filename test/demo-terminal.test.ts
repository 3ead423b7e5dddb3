/**
 * The demo's terminal is for a person: run through a pseudo-terminal (`script`), it shows progress
 * bars and plain lines, no JSON log lines; the JSON log goes to LOG_FILE instead, complete.
 * A real process on its own database and queue prefix, the pipeline through real queues.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dropPrefix, scratchDatabase, testDeps, uniquePrefix, closeDeps } from './support.ts';
import { loadConfig } from '../core/config.ts';

const run = promisify(execFile);
const dir = mkdtempSync(join(tmpdir(), 'demo-tty-'));
let db: { url: string; drop: () => Promise<void> };
const prefix = uniquePrefix();

beforeAll(async () => {
  db = await scratchDatabase();
});
afterAll(async () => {
  const deps = testDeps({
    config: loadConfig({ DATABASE_URL: db.url, QUEUE_PREFIX: prefix, LOG_LEVEL: 'silent' }),
  });
  await dropPrefix(deps);
  await closeDeps(deps);
  await db.drop();
  rmSync(dir, { recursive: true, force: true });
});

describe('npm run demo on a terminal', () => {
  it('shows bars and plain lines; the JSON log goes to the log file', async () => {
    const logFile = join(dir, 'demo.log');
    const command = `${JSON.stringify(process.execPath)} workers/demo.ts --securities 3 --tick-sessions 1 --years 0.3 --no-serve`;
    const { stdout } = await run('script', ['-qec', command, '/dev/null'], {
      env: {
        ...process.env,
        DATABASE_URL: db.url,
        QUEUE_PREFIX: prefix,
        LOG_FILE: logFile,
        LOG_LEVEL: 'info',
        SCHEDULERS_ENABLED: 'false',
      },
      timeout: 120_000,
    });
    // eslint-disable-next-line no-control-regex -- terminal escape sequences are what we strip
    const screen = stdout.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '');
    expect(screen).toContain('pipeline finished');
    expect(screen).toContain(`JSON log: ${logFile}`);
    expect(screen).not.toMatch(/\{"level":/);
    expect(existsSync(logFile)).toBe(true);
    const lines = readFileSync(logFile, 'utf8').trim().split('\n');
    expect(lines.length).toBeGreaterThan(3);
    for (const line of lines) expect(() => JSON.parse(line) as unknown).not.toThrow();
  });
});
