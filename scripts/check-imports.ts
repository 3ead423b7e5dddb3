/**
 * `npm run lint` part two: the import graph of the project's own modules.
 *
 * - Layers point one way: `core/` (domain, data, providers) imports neither `jobs/`, `api/`,
 *   `reports/` nor `workers/`; `jobs/` and `reports/` never import `api/` or `workers/`; `api/`
 *   never imports `workers/` (entry points sit on top of everything).
 * - No import cycles among runtime imports. `import type` is erased before Node runs the file, so
 *   it cannot create a runtime cycle; it still counts for the layer rule.
 *
 * Reads the sources with a scanner of import/export specifiers (the project uses erasable
 * TypeScript only, so every import is a plain static `import … from '…'`, `export … from '…'` or
 * a literal `import('…')`). Exits 1 with every violation listed.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const roots = ['core', 'jobs', 'api', 'reports', 'workers', 'bench', 'scripts', 'migrations', 'test'];

/** Which top-level folders each layer must not import. */
const forbidden: Record<string, readonly string[]> = {
  core: ['jobs', 'api', 'reports', 'workers', 'bench', 'test'],
  jobs: ['api', 'workers', 'bench', 'test'],
  reports: ['api', 'workers', 'bench', 'test'],
  api: ['workers', 'bench', 'test'],
  migrations: ['jobs', 'api', 'reports', 'workers', 'bench', 'test'],
};

function walk(dir: string, out: string[]): string[] {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of entries) {
    if (name === 'node_modules' || name === 'fixtures') continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path, out);
    else if (name.endsWith('.ts')) out.push(path);
  }
  return out;
}

interface Edge {
  to: string;
  typeOnly: boolean;
}

const SPECIFIER =
  /(?:^|[;\n])\s*(import|export)\s+(type\s+)?(?:[^'";]*?\sfrom\s+)?['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

export function importsOf(file: string, source: string): Edge[] {
  const edges: Edge[] = [];
  for (const m of source.matchAll(SPECIFIER)) {
    const spec = m[3] ?? m[4];
    if (spec === undefined || !spec.startsWith('.')) continue;
    edges.push({ to: resolve(dirname(file), spec), typeOnly: m[2] !== undefined });
  }
  return edges;
}

/** Every layer violation and runtime import cycle among the project's modules under `root`. */
export function checkImports(root: string): { modules: number; problems: string[] } {
  const layerOf = (file: string): string => relative(root, file).split('/')[0] ?? '';
  const files = roots.flatMap((r) => walk(join(root, r), []));
  const graph = new Map<string, Edge[]>();
  for (const f of files) graph.set(f, importsOf(f, readFileSync(f, 'utf8')));

  const problems: string[] = [];
  for (const [from, edges] of graph) {
    const banned = forbidden[layerOf(from)] ?? [];
    for (const e of edges) {
      if (banned.includes(layerOf(e.to))) {
        problems.push(
          `layer: ${relative(root, from)} imports ${relative(root, e.to)} (${layerOf(from)}/ must not import ${layerOf(e.to)}/)`,
        );
      }
    }
  }

  // Tarjan's strongly connected components over runtime edges: any component of two or more
  // files (or a file importing itself) is a cycle.
  let index = 0;
  const indexOf = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const strongConnect = (v: string): void => {
    indexOf.set(v, index);
    low.set(v, index);
    index += 1;
    stack.push(v);
    onStack.add(v);
    for (const e of graph.get(v) ?? []) {
      if (e.typeOnly || !graph.has(e.to)) continue;
      if (!indexOf.has(e.to)) {
        strongConnect(e.to);
        low.set(v, Math.min(low.get(v)!, low.get(e.to)!));
      } else if (onStack.has(e.to)) {
        low.set(v, Math.min(low.get(v)!, indexOf.get(e.to)!));
      }
    }
    if (low.get(v) !== indexOf.get(v)) return;
    const component: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    const selfLoop = (graph.get(v) ?? []).some((e) => !e.typeOnly && e.to === v);
    if (component.length > 1 || selfLoop) {
      problems.push(
        `cycle: ${component
          .map((c) => relative(root, c))
          .sort()
          .join(' <-> ')}`,
      );
    }
  };
  for (const v of graph.keys()) if (!indexOf.has(v)) strongConnect(v);
  return { modules: graph.size, problems };
}

if (import.meta.main) {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
  const { modules, problems } = checkImports(root);
  if (problems.length > 0) {
    console.error(
      `check-imports: ${problems.length} problem(s)\n${problems.map((p) => `  ${p}`).join('\n')}`,
    );
    process.exit(1);
  }
  console.log(`check-imports: ${modules} modules, layers one way, no runtime import cycles`);
}
