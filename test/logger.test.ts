/**
 * LOG_FILE: the JSON log goes to the file (so a person's terminal shows only readable lines),
 * secrets stay redacted there too, and nothing is written to stdout.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../core/config.ts';
import { createLogger } from '../core/logger.ts';

const dir = mkdtempSync(join(tmpdir(), 'logger-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('createLogger with LOG_FILE', () => {
  it('writes JSON lines to the file, creating its folder, and nothing to stdout', () => {
    const file = join(dir, 'nested', 'app.log');
    const config = loadConfig({ LOG_LEVEL: 'info', LOG_FILE: file });
    expect(config.logFile).toBe(file);
    const stdout = vi.spyOn(process.stdout, 'write');
    try {
      const logger = createLogger(config, 'logger-test');
      logger.info({ client: { clientSecret: 's3cret' } }, 'hello file');
      logger.flush();
    } finally {
      stdout.mockRestore();
    }
    expect(stdout).not.toHaveBeenCalled();
    const lines = readFileSync(file, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      name: 'logger-test',
      msg: 'hello file',
      client: { clientSecret: '[redacted]' },
    });
  });

  it('without LOG_FILE the log stays on stdout (a service under a supervisor)', () => {
    expect(loadConfig({}).logFile).toBeUndefined();
  });
});
