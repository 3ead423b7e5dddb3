/**
 * The repository stands alone: a user clones this project, not the folder it was developed in.
 * No tracked file may read or link anything outside the repository (a sibling folder such as the
 * specification's), and the lock must be complete so that `npm ci` leaves the tree unchanged.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const tracked = execFileSync('git', ['ls-files'], { cwd: root, encoding: 'utf8' })
  .split('\n')
  .filter((f) => f !== '' && f !== 'package-lock.json' && !f.startsWith('test/fixtures/'));

describe('the repository stands alone', () => {
  it('no tracked file refers to a sibling folder of the checkout', () => {
    const outside = /\.\.\/shared\b|'\.\.',\s*'\.\.',\s*'shared'/;
    const offenders = tracked.filter(
      (f) => f !== 'test/standalone.test.ts' && outside.test(readFileSync(join(root, f), 'utf8')),
    );
    expect(offenders).toEqual([]);
  });

  it('the recorded provider responses the tests serve are inside the repository', () => {
    const fixtures = execFileSync('git', ['ls-files', 'test/fixtures/yahoo'], {
      cwd: root,
      encoding: 'utf8',
    });
    expect(fixtures).toContain('chart-AAPL-2020-08-31-to-2020-11-07.json');
  });

  it('the lock lists every platform build of the optional native packages (npm ci keeps it clean)', () => {
    const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, unknown>;
    };
    const builds = Object.keys(lock.packages).filter((k) => k.startsWith('node_modules/@msgpackr-extract/'));
    expect(builds.length).toBeGreaterThanOrEqual(6);
  });

  it('engines names the Node that runs .ts directly and import.meta.main (>= 22.18)', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { engines: { node: string } };
    expect(pkg.engines.node).toBe('>=22.18');
  });
});
