/**
 * The layer rule and the cycle check that `npm run lint` runs (scripts/check-imports.ts): the
 * project itself passes, and the checker really finds a cycle and a layer violation when shown
 * one (a checker that finds nothing proves nothing).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { checkImports } from '../scripts/check-imports.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const scratch = mkdtempSync(join(tmpdir(), 'check-imports-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function tree(files: Record<string, string>): string {
  const dir = mkdtempSync(join(scratch, 'tree-'));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}

describe('import graph', () => {
  it('the project: core never imports jobs, api or workers, and there are no runtime cycles', () => {
    const { modules, problems } = checkImports(root);
    expect(problems).toEqual([]);
    expect(modules).toBeGreaterThan(100);
  });

  it('finds a runtime cycle, but not one made only of erased type imports', () => {
    const dir = tree({
      'core/a.ts': "import { b } from './b.ts';\nexport const a = (): number => b();\n",
      'core/b.ts': "import { a } from './a.ts';\nexport const b = (): number => a();\n",
      'core/c.ts': "import type { D } from './d.ts';\nexport type C = D;\n",
      'core/d.ts': "import type { C } from './c.ts';\nexport type D = C | number;\n",
    });
    expect(checkImports(dir).problems).toEqual(['cycle: core/a.ts <-> core/b.ts']);
  });

  it('finds a core module that imports the job layer, even a type import', () => {
    const dir = tree({
      'jobs/types.ts': 'export interface Ctx { id: string }\n',
      'core/x.ts':
        "import type { Ctx } from '../jobs/types.ts';\nexport const x = (c: Ctx): string => c.id;\n",
    });
    expect(checkImports(dir).problems).toEqual([
      'layer: core/x.ts imports jobs/types.ts (core/ must not import jobs/)',
    ]);
  });
});
