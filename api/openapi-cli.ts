/**
 * The OpenAPI document without a running API: `node api/openapi-cli.ts write <file>` writes it as
 * JSON; `node api/openapi-cli.ts lint` (`npm run lint:openapi`, part of `npm run lint`) writes it
 * to a temporary file and lints it with @redocly/cli against the committed redocly.yaml, exiting
 * with redocly's status. The routes are built exactly as the API builds them, over connections
 * that never connect (nothing here needs PostgreSQL or Redis to be up).
 */
// First: api/http.ts installs zod's .openapi() before any schema (the job catalogue's) is built.
import { apiRoutes } from './app.ts';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { loadConfig } from '../core/config.ts';
import { createDb } from '../core/db/knex.ts';
import { createRepositories } from '../core/db/repositories/index.ts';
import type { Deps } from '../core/deps.ts';
import { createLogger } from '../core/logger.ts';
import { createProviders } from '../core/providers/index.ts';
import { createQueues } from '../jobs/queues.ts';
import { buildOpenApiDocument, type OpenApiDocument } from './openapi.ts';

const root = fileURLToPath(new URL('..', import.meta.url));

/** The document the API serves at /docs/openapi.json, built offline. */
export async function offlineOpenApiDocument(): Promise<OpenApiDocument> {
  const config = loadConfig();
  // knex connects on first query and this Redis on first command: neither happens here.
  const redis = new Redis(config.redis.url, { lazyConnect: true });
  const db = createDb(config, { poolMax: 1 });
  const deps: Deps = {
    config,
    logger: createLogger({ logLevel: 'silent' }, 'openapi'),
    db,
    repos: createRepositories(db),
    redis,
    clock: { now: () => new Date() },
    providers: createProviders(config),
  };
  const queues = createQueues(config, redis);
  try {
    return buildOpenApiDocument(apiRoutes(deps, queues), { publicUrl: config.api.publicUrl });
  } finally {
    await queues.close();
    await db.destroy();
    redis.disconnect();
  }
}

/** Lints a document file with the committed redocly.yaml; redocly's exit status and output. */
export function lintOpenApiFile(file: string): { status: number; output: string } {
  const pkg = createRequire(import.meta.url).resolve('@redocly/cli/package.json');
  const cli = join(dirname(pkg), 'bin', 'cli.js');
  const run = spawnSync(
    process.execPath,
    [cli, 'lint', file, '--config', join(root, 'redocly.yaml'), '--format', 'stylish'],
    { encoding: 'utf8', cwd: root },
  );
  return { status: run.status ?? 1, output: `${run.stdout}${run.stderr}` };
}

async function main(argv: string[]): Promise<number> {
  const [command, file] = argv;
  if (command === 'write' && file) {
    writeFileSync(file, `${JSON.stringify(await offlineOpenApiDocument(), null, 2)}\n`);
    return 0;
  }
  if (command === 'lint') {
    const dir = mkdtempSync(join(tmpdir(), 'openapi-'));
    try {
      const path = join(dir, 'openapi.json');
      writeFileSync(path, JSON.stringify(await offlineOpenApiDocument(), null, 2));
      const { status, output } = lintOpenApiFile(path);
      process.stdout.write(output);
      return status;
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  process.stderr.write('usage: node api/openapi-cli.ts write <file> | lint\n');
  return 2;
}

if (import.meta.main) {
  process.exitCode = await main(process.argv.slice(2));
}
