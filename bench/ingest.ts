/**
 * Ingest through the provider path against PostgreSQL's own server-side COPY of the same rows.
 *
 * Provider path, as prices.backfill runs it: the synthetic provider's 1-minute bars, chunk by
 * chunk within its request limits (planChunks), validated, encoded as four prints per bar, and
 * stored by the ingest repository (one transaction per chunk, bar_changes appended; into an
 * empty span that is a COPY straight into the table, else staging + insert … on conflict do
 * nothing), the next chunk fetched while the current one is stored, each chunk committed with
 * its checkpoint row through the same repository call as the backfill's (commitBatch). Not
 * included: the job's progress update in Redis per chunk. Baseline: the very same tick rows
 * (written to a file beforehand, untimed) loaded by the server's own COPY. Both load into empty
 * scratch copies of `ticks` (same constraints, primary key and monthly partitions), dropped
 * afterwards, so the ratio isolates what the provider path costs over the bare load.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { chmod, rm } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { addDays, lastCompletedSession, sessionsBetween } from '../core/calendar/nyse.ts';
import { loadConfig } from '../core/config.ts';
import { tickCopyText, type TickInsert } from '../core/db/repositories/ticks.ts';
import { buildDeps, closeDeps } from '../core/deps.ts';
import { BAR_SEQ, intradayTicks } from '../core/ingest/load.ts';
import { validateIntradayBars } from '../core/ingest/validate.ts';
import { createSyntheticProvider } from '../core/providers/synthetic.ts';
import { planChunks } from '../jobs/processors/prices.ts';

const SECURITIES = 4;
/** Checkpoint rows written per chunk exactly as prices.backfill writes them (deleted afterwards). */
const CHECKPOINT_JOB = 'bench.ingest';
const BARS_PER_SESSION = 390;

export async function benchIngest(opts: {
  databaseUrl: string;
  rows: number;
  log: (line: string) => void;
}): Promise<{ providerRowsPerSec: number; copyRowsPerSec: number; ratio: number }> {
  const config = loadConfig({ ...process.env, LOG_LEVEL: 'warn', DATABASE_URL: opts.databaseUrl });
  const deps = buildDeps({ name: 'bench-ingest', config, poolMax: 4 });
  const now = lastCompletedSession(new Date()).closeAt;
  const clock = { now: () => new Date(now) };
  const provider = createSyntheticProvider(config, { clock });
  const tag = randomBytes(4).toString('hex');
  const clientTable = `bench_ingest_client_${tag}`;
  const serverTable = `bench_ingest_server_${tag}`;
  const file = `/tmp/mdw_bench_ingest_${tag}.tsv`;
  const tickers = Array.from({ length: SECURITIES }, (_, i) => `BI${tag.toUpperCase()}${i}`);
  let ids: number[] = [];
  try {
    // Enough whole sessions of 1-minute bars (4 prints each) for `rows` ticks over the securities.
    const sessionsEach = Math.max(1, Math.ceil(opts.rows / (4 * BARS_PER_SESSION * SECURITIES)));
    const to = lastCompletedSession(now).date;
    let from = to;
    while (sessionsBetween(from, to).length < sessionsEach) from = addDays(from, -7);
    const sessions = sessionsBetween(from, to).slice(-sessionsEach);
    from = sessions[0]!.date;

    const inserted = await deps
      .db('securities')
      .insert(
        tickers.map((ticker, i) => ({
          security_id: `SEC-9${tag.replace(/[a-f]/g, '0')}${i}`,
          ticker,
          security_name: `bench ingest ${ticker}`,
          security_type: 'EQUITY',
          asset_class: 'Equity',
          currency: 'USD',
          exchange: 'NYSE',
        })),
      )
      .returning<{ id: number; ticker: string }[]>(['id', 'ticker']);
    ids = inserted.map((r) => r.id);
    const securities = inserted.map((r) => ({ id: r.id, ticker: r.ticker, currency: 'USD' }));
    const first = sessions[0]!.openAt;
    const last = sessions.at(-1)!.closeAt;
    await deps.repos.generator.createScratchTicks(clientTable, first, last);
    await deps.repos.generator.createScratchTicks(serverTable, first, last);
    const plan = planChunks({ from, to, interval: '1m', limits: provider.limits, now });

    /** One chunk through the provider path up to the rows to store. */
    const chunkTicks = async (s: (typeof securities)[number], c: (typeof plan.chunks)[number]) => {
      const h = await provider.intraday(s.ticker, c.sessions[0]!.openAt, c.sessions.at(-1)!.closeAt, 1);
      const v = validateIntradayBars(h, { security: s, intervalMinutes: 1, now });
      if (v.rejected.length) throw new Error(`bench: ${v.rejected[0]!.reason}`);
      return intradayTicks(s.id, v.accepted);
    };

    // The baseline's input: the same rows as a COPY file (untimed).
    async function* allRows(): AsyncGenerator<Buffer> {
      for (const s of securities)
        for (const c of plan.chunks) yield* tickCopyText((await chunkTicks(s, c)) as TickInsert[]);
    }
    await pipeline(Readable.from(allRows()), createWriteStream(file, { mode: 0o644 }));
    // The server process runs as another OS user; the umask must not hide the file from it.
    await chmod(file, 0o644);

    // As prices.backfill does: the next chunk is fetched and encoded while this one is stored.
    const t0 = process.hrtime.bigint();
    let ticks = 0;
    let bars = 0;
    const work = securities.flatMap((s) => plan.chunks.map((c) => ({ s, c })));
    let next = work[0] ? chunkTicks(work[0].s, work[0].c) : undefined;
    for (let i = 0; i < work.length; i++) {
      const rows = await next!;
      // Start the commit first (it waits on the database), then prepare the next chunk meanwhile.
      const committing = deps.repos.ingest.commitBatch({
        ticks: { rows, countSeq: BAR_SEQ.close, table: clientTable },
        checkpoint: { jobName: CHECKPOINT_JOB, key: `${tag}:${i}`, state: {} },
      });
      const w = work[i + 1];
      next = w ? chunkTicks(w.s, w.c) : undefined;
      const res = await committing;
      ticks += res.ticks.ticksInserted;
      bars += res.ticks.rowsInserted;
    }
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;

    const t1 = process.hrtime.bigint();
    const serverRows = await deps.repos.generator.serverCopyTicks(serverTable, file, { withOrigin: true });
    const serverSeconds = Number(process.hrtime.bigint() - t1) / 1e9;
    if (serverRows !== ticks)
      throw new Error(`bench: server COPY loaded ${serverRows} rows, provider path ${ticks}`);

    const providerRowsPerSec = ticks / seconds;
    const copyRowsPerSec = serverRows / serverSeconds;
    const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
    opts.log(
      `   provider path:          ${fmt(providerRowsPerSec)} ticks/s  (${bars.toLocaleString('en-US')} 1-minute bars -> ${ticks.toLocaleString('en-US')} ticks, ${plan.chunks.length * SECURITIES} chunks, ${seconds.toFixed(2)} s)`,
    );
    opts.log(`   server-side COPY:       ${fmt(copyRowsPerSec)} ticks/s  (${serverSeconds.toFixed(2)} s)`);
    opts.log(`   ratio to server COPY:   ${(providerRowsPerSec / copyRowsPerSec).toFixed(2)}   aim >= 0.6`);
    return { providerRowsPerSec, copyRowsPerSec, ratio: providerRowsPerSec / copyRowsPerSec };
  } finally {
    await deps.repos.generator.dropTable(clientTable);
    await deps.repos.generator.dropTable(serverTable);
    await deps.repos.checkpoints.deleteWithPrefix(CHECKPOINT_JOB, `${tag}:`);
    if (ids.length) {
      await deps.db('bar_changes').whereIn('security_id', ids).delete();
      await deps.db('securities').whereIn('id', ids).delete();
    }
    await rm(file, { force: true });
    await closeDeps(deps);
  }
}
