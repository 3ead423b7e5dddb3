/**
 * Incremental 5-minute rollup of one new 5-minute slice for every security, with 1x and 10x as
 * much history in the tables (issue 3: the ratio of the two times, aim <= 1.3).
 *
 * Each case runs in a scratch database of its own (created next to `databaseUrl`, migrated,
 * dropped at the end): `securities` securities; H (or 10 H) NYSE sessions of ticks every
 * TICK_SPACING_S seconds, loaded set-based (generate_series) and rolled up in full; then, for each
 * repetition, one new 5-minute slice of ticks for every security is written together with its
 * bar_changes rows (as a writer must) and the scheduled rollup (`bars.rollup-5m` with an empty
 * payload) is timed. Both cases are loaded first and their slices then timed alternately (1x,
 * 10x, 1x, …), so drift in the machine's load hits both alike; the first pair is a warm-up and
 * each figure is the median of the rest (a run is ~50-100 ms, mostly fixed per-statement cost,
 * so a busy machine moves single runs by more than the effect being measured).
 * The slices land in the same monthly partition as the newest history, so a plan that scanned
 * the partition instead of the primary key would show in the ratio.
 *
 * Tick spacing: 60 s (390 ticks per security per full session), so 10x history of the default
 * H = 2 (20 sessions x 1,000 securities = 7.8M ticks) loads in minutes on two cores; the slice has
 * 5 ticks per security (5,000 ticks, 1,000 changes, 1,000 new bars).
 */
import { randomBytes } from 'node:crypto';
import { addDays, sessionsBetween } from '../core/calendar/nyse.ts';
import { loadConfig } from '../core/config.ts';
import { createDb, dropDatabase, ensureDatabase } from '../core/db/knex.ts';
import { migrateLatest } from '../core/db/migrate.ts';
import { buildDeps, closeDeps, type Deps } from '../core/deps.ts';
import { rollup5m } from '../jobs/processors/bars-rollup.ts';
import { directContext } from '../jobs/types.ts';

/** Seconds between two ticks of one security. */
export const TICK_SPACING_S = 60;
/** Timed repetitions per case (after one warm-up). */
const REPETITIONS = 9;
/** The last history session; the slices are written in the session after it. */
const LAST_HISTORY_SESSION = '2024-11-26';

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

async function withScratch<T>(databaseUrl: string, fn: (deps: Deps) => Promise<T>): Promise<T> {
  const url = new URL(databaseUrl);
  url.pathname = `/mdw_bench_ri_${randomBytes(4).toString('hex')}`;
  const dbUrl = url.toString();
  await ensureDatabase(dbUrl);
  try {
    const migrator = createDb({ db: { url: dbUrl, poolMax: 2 } });
    try {
      await migrateLatest(migrator);
    } finally {
      await migrator.destroy();
    }
    const config = loadConfig({ ...process.env, LOG_LEVEL: 'warn', DATABASE_URL: dbUrl });
    const deps = buildDeps({ name: 'bench', config, poolMax: 4 });
    try {
      return await fn(deps);
    } finally {
      await closeDeps(deps);
    }
  } finally {
    await dropDatabase(dbUrl);
  }
}

interface PreparedCase {
  /** Writes slice `rep` with its changes and times the incremental rollup of it, in seconds. */
  slice(rep: number): Promise<number>;
  /** Writes one more slice and logs the plan of its incremental statements (untimed). */
  explain(rep: number): Promise<void>;
}

async function prepareCase(
  deps: Deps,
  securities: number,
  sessions: number,
  log: (line: string) => void,
): Promise<PreparedCase> {
  const db = deps.db;
  const all = sessionsBetween(
    addDays(LAST_HISTORY_SESSION, -Math.ceil(sessions * 1.6) - 20),
    addDays(LAST_HISTORY_SESSION, 10),
  );
  const lastIdx = all.findIndex((s) => s.date === LAST_HISTORY_SESSION);
  const history = all.slice(lastIdx - sessions + 1, lastIdx + 1);
  const sliceSession = all[lastIdx + 1]!;
  if (history.length !== sessions) throw new Error('bench: calendar window too short');
  await deps.repos.calendar.ensureSessions(history[0]!.date, sliceSession.date);
  for (const t of ['ticks', 'bars_5m'])
    await db.raw(`select ensure_month_partitions(?, ?, ?)`, [t, history[0]!.openAt, sliceSession.closeAt]);

  await db.raw(
    `insert into securities (security_id, ticker, security_name, security_type, asset_class, currency, exchange)
     select format('SEC-%s', lpad(g::text, 6, '0')), format('BX%s', g), format('Bench %s', g), 'EQUITY', 'Equity', 'USD', 'NYSE'
       from generate_series(1, ?::int) g`,
    [securities],
  );

  // History: one statement per session, in primary-key order within it.
  const t0 = process.hrtime.bigint();
  for (const s of history) {
    const n = Math.floor((s.closeAt.getTime() - s.openAt.getTime()) / 1000 / TICK_SPACING_S);
    await db.raw(
      `insert into ticks (security_id, ts, seq, price, size)
       select id, ?::timestamptz + make_interval(secs => k * ?::int), 0,
              round((50 + id % 97 + 5 * sin(k / 40.0 + id))::numeric, 4), 100 + (k * 7 + id) % 400
         from securities cross join generate_series(0, ?::int - 1) k
        order by id, k`,
      [s.openAt, TICK_SPACING_S, n],
    );
  }
  await db.raw('vacuum analyze ticks');
  const ticks = Number(
    ((await db.raw('select count(*) as n from ticks')) as { rows: { n: string }[] }).rows[0]!.n,
  );
  log(
    `    history: ${sessions} sessions ${history[0]!.date}..${history.at(-1)!.date}, ${ticks.toLocaleString('en-US')} ticks loaded in ${(Number(process.hrtime.bigint() - t0) / 1e9).toFixed(1)} s`,
  );

  const t1 = process.hrtime.bigint();
  await rollup5m(
    deps,
    { from: history[0]!.openAt.toISOString(), to: history.at(-1)!.closeAt.toISOString() },
    directContext(),
  );
  await db.raw('vacuum analyze bars_5m');
  await db.raw('delete from bar_changes');
  const bars = Number(
    ((await db.raw('select count(*) as n from bars_5m')) as { rows: { n: string }[] }).rows[0]!.n,
  );
  log(
    `    full rollup of the history: ${bars.toLocaleString('en-US')} bars in ${(Number(process.hrtime.bigint() - t1) / 1e9).toFixed(1)} s`,
  );

  // Slices: 5 minutes of ticks for every security, written with their bar_changes in one transaction.
  const perSlice = Math.floor(300 / TICK_SPACING_S);
  const write = async (rep: number): Promise<void> => {
    const start = new Date(sliceSession.openAt.getTime() + rep * 300_000);
    await db.transaction(async (trx) => {
      await trx.raw(
        `insert into ticks (security_id, ts, seq, price, size)
         select id, ?::timestamptz + make_interval(secs => k * ?::int), 0,
                round((50 + id % 97 + 5 * sin(k / 40.0 + id))::numeric, 4), 100 + (k * 7 + id) % 400
           from securities cross join generate_series(0, ?::int - 1) k`,
        [start, TICK_SPACING_S, perSlice],
      );
      await trx.raw(
        `insert into bar_changes (level, security_id, from_ts, to_ts)
         select '5m', id, ?::timestamptz, ?::timestamptz + interval '5 minutes' from securities`,
        [start, start],
      );
    });
  };
  return {
    async slice(rep) {
      await write(rep);
      const tr = process.hrtime.bigint();
      const res = await rollup5m(deps, {}, directContext());
      const seconds = Number(process.hrtime.bigint() - tr) / 1e9;
      if (res.changes !== securities || res.upserted !== securities)
        throw new Error(`bench: slice ${rep} rolled ${res.changes} changes into ${res.upserted} bars`);
      return seconds;
    },
    async explain(rep) {
      await write(rep);
      const r = await deps.repos.rollups.rollup5mChanges({ limit: 20_000, explain: true });
      const scans = (r.plan ?? '')
        .split('\n')
        .filter((l) => /Scan/.test(l))
        .map((l) => l.trim().replace(/\s+\(cost.*$/, ''));
      log(`    plan scans: ${[...new Set(scans)].join('; ')}`);
    },
  };
}

export async function benchIncrementalRollup(opts: {
  databaseUrl: string;
  securities: number;
  historySessions: number;
  log: (line: string) => void;
}): Promise<{ oneX: number; tenX: number; ratio: number }> {
  const { databaseUrl, securities, historySessions, log } = opts;
  return withScratch(databaseUrl, (one) =>
    withScratch(databaseUrl, async (ten) => {
      log(
        `  1x history (${historySessions} sessions, ticks every ${TICK_SPACING_S} s, ${securities} securities):`,
      );
      const a = await prepareCase(one, securities, historySessions, log);
      log(`  10x history (${historySessions * 10} sessions):`);
      const b = await prepareCase(ten, securities, historySessions * 10, log);
      const oneX: number[] = [];
      const tenX: number[] = [];
      for (let rep = 0; rep <= REPETITIONS; rep++) {
        const x = await a.slice(rep);
        const y = await b.slice(rep);
        if (rep > 0) {
          oneX.push(x);
          tenX.push(y);
        }
      }
      const ms = (xs: number[]): string => xs.map((t) => (t * 1000).toFixed(0)).join(', ');
      log(`  incremental rollup of one slice, alternating: 1x ${ms(oneX)} ms; 10x ${ms(tenX)} ms`);
      await a.explain(REPETITIONS + 1);
      await b.explain(REPETITIONS + 1);
      return { oneX: median(oneX), tenX: median(tenX), ratio: median(tenX) / median(oneX) };
    }),
  );
}
