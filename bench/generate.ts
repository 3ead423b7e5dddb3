/**
 * Generator + COPY load of ticks against PostgreSQL's own server-side COPY of exactly the same
 * rows. Both load into empty scratch copies of `ticks` (same constraints, primary key and
 * monthly partitions) that are dropped afterwards; the server's rows come from a file the
 * generator wrote beforehand (untimed), so the ratio isolates what our client path costs.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { chmod, rm } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { lastCompletedSession } from '../core/calendar/nyse.ts';
import type { Deps } from '../core/deps.ts';
import { dailyPath } from '../core/generator/paths.ts';
import { withOrigin } from '../core/db/repositories/generator.ts';
import { tickBuffers } from '../core/generator/ticks.ts';
import { buildUniverse, resolvePlan, type Plan, type SecuritySpec } from '../core/generator/universe.ts';

export interface GenerateBench {
  ticks: number;
  seconds: number;
  ticksPerSecond: number;
  serverCopySeconds: number;
  serverCopyTicksPerSecond: number;
  ratio: number;
  /** COPY streams the client path ran at once (default 2, as data.generate). */
  lanes: number;
}

const LANES = 2;

interface Chunk {
  spec: SecuritySpec;
  sessions: number[];
}

function chunksOf(plan: Plan, specs: readonly SecuritySpec[]): Chunk[] {
  const chunks: Chunk[] = [];
  for (const spec of specs) {
    let month = '';
    for (let s = plan.tickStart; s <= spec.lastSession; s++) {
      const m = plan.sessions[s]?.date.slice(0, 7) ?? '';
      if (m !== month) {
        chunks.push({ spec, sessions: [] });
        month = m;
      }
      chunks.at(-1)?.sessions.push(s);
    }
  }
  return chunks;
}

/** The same rows copyTicks sends: the generator's, each with its origin column. */
function* allRows(plan: Plan, chunks: readonly Chunk[]): Generator<Buffer> {
  for (const c of chunks)
    yield* withOrigin(
      tickBuffers(plan, c.spec, dailyPath(plan, c.spec), c.spec.index + 1, c.sessions),
      'generated',
    );
}

export async function benchGenerate(
  deps: Deps,
  opts: { securities: number; sessions: number; lanes?: number },
): Promise<GenerateBench> {
  const lanes = opts.lanes ?? LANES;
  const plan = resolvePlan({
    seed: 1,
    scale: 'small',
    securities: opts.securities,
    years: Math.max(0.2, opts.sessions / 240 + 0.1),
    tickSessions: opts.sessions,
    endDate: lastCompletedSession(deps.clock.now()).date,
  });
  const { securities } = buildUniverse(plan);
  const chunks = chunksOf(plan, securities);
  const first = plan.sessions[plan.tickStart];
  const last = plan.sessions.at(-1);
  if (!first || !last) throw new Error('bench: no tick sessions');
  const tag = randomBytes(4).toString('hex');
  const clientTable = `bench_ticks_client_${tag}`;
  const serverTable = `bench_ticks_server_${tag}`;
  const file = `/tmp/mdw_bench_ticks_${tag}.tsv`;
  const repo = deps.repos.generator;
  try {
    await repo.createScratchTicks(clientTable, first.openAt, last.closeAt);
    await repo.createScratchTicks(serverTable, first.openAt, last.closeAt);

    const t0 = process.hrtime.bigint();
    let next = 0;
    let ticks = 0;
    const lane = async (): Promise<void> => {
      while (next < chunks.length) {
        const c = chunks[next++];
        if (!c) break;
        const res = await repo.copyTicks({
          table: clientTable,
          source: tickBuffers(plan, c.spec, dailyPath(plan, c.spec), c.spec.index + 1, c.sessions),
        });
        ticks += res.rows;
      }
    };
    await Promise.all(Array.from({ length: lanes }, () => lane()));
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;

    await pipeline(Readable.from(allRows(plan, chunks)), createWriteStream(file, { mode: 0o644 }));
    // The server process runs as another OS user; the umask must not hide the file from it.
    await chmod(file, 0o644);
    const t1 = process.hrtime.bigint();
    const serverRows = await repo.serverCopyTicks(serverTable, file, { withOrigin: true });
    const serverCopySeconds = Number(process.hrtime.bigint() - t1) / 1e9;
    if (serverRows !== ticks)
      throw new Error(`bench: server COPY loaded ${serverRows} rows, client ${ticks}`);

    const ticksPerSecond = ticks / seconds;
    const serverCopyTicksPerSecond = serverRows / serverCopySeconds;
    return {
      ticks,
      seconds,
      ticksPerSecond,
      serverCopySeconds,
      serverCopyTicksPerSecond,
      ratio: ticksPerSecond / serverCopyTicksPerSecond,
      lanes,
    };
  } finally {
    await repo.dropTable(clientTable);
    await repo.dropTable(serverTable);
    await rm(file, { force: true });
  }
}
