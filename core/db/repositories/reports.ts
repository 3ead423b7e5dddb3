/**
 * Reports (issue 10): the catalogue (`report_runs`), the file store (`report_chunks`, bytea chunks
 * of ~1 MB keyed by run and sequence) and the reads a variance workbook is rendered from.
 *
 * A render reads everything through one `ReportSnapshot`: one pooled connection holding a
 * REPEATABLE READ, READ ONLY transaction, so every sheet (summary, details, movers, FX, actions)
 * sees the same data, and the detail rows arrive through pg-query-stream (a cursor: a bounded
 * batch in memory, never a whole sheet). Chunks are written on other pooled connections, one
 * autocommitted statement each; a run becomes SUCCEEDED only in `finishRun`'s transaction, which
 * checks that every chunk is there.
 */
import type pg from 'pg';
import QueryStream from 'pg-query-stream';
import type { Knex } from '../knex.ts';
import type { VarianceRowValues } from './books.ts';

export type ReportStatus = 'RUNNING' | 'SUCCEEDED' | 'FAILED';

export interface ReportRun {
  id: number;
  reportType: string;
  periodLabel: string;
  periodFrom: string | null;
  periodTo: string | null;
  portfolioIds: string[] | null;
  portfolioSet: string;
  version: number;
  status: ReportStatus;
  params: Record<string, unknown>;
  jobId: string | null;
  fileName: string | null;
  bytes: number | null;
  chunks: number | null;
  rowCount: number | null;
  sha256: string | null;
  error: string | null;
  startedAt: Date;
  finishedAt: Date | null;
  heartbeatAt: Date;
  renderMs: number | null;
  timings: Record<string, number>;
}

interface RunRow {
  id: string;
  report_type: string;
  period_label: string;
  period_from: string | null;
  period_to: string | null;
  portfolio_ids: string[] | null;
  portfolio_set: string;
  version: number;
  status: ReportStatus;
  params: Record<string, unknown>;
  job_id: string | null;
  file_name: string | null;
  bytes: string | null;
  chunks: number | null;
  row_count: number | null;
  sha256: string | null;
  error: string | null;
  started_at: Date;
  finished_at: Date | null;
  heartbeat_at: Date;
  render_ms: number | null;
  timings: Record<string, number>;
}

const toRun = (r: RunRow): ReportRun => ({
  id: Number(r.id),
  reportType: r.report_type,
  periodLabel: r.period_label,
  periodFrom: r.period_from,
  periodTo: r.period_to,
  portfolioIds: r.portfolio_ids,
  portfolioSet: r.portfolio_set,
  version: r.version,
  status: r.status,
  params: r.params,
  jobId: r.job_id,
  fileName: r.file_name,
  bytes: r.bytes === null ? null : Number(r.bytes),
  chunks: r.chunks,
  rowCount: r.row_count,
  sha256: r.sha256,
  error: r.error,
  startedAt: r.started_at,
  finishedAt: r.finished_at,
  heartbeatAt: r.heartbeat_at,
  renderMs: r.render_ms,
  timings: r.timings,
});

/** One portfolio's figures in a period: sums over its valued rows (numeric strings, exact). */
export interface PortfolioSummary {
  portfolioId: string;
  portfolioName: string;
  baseCurrency: string;
  rows: number;
  flagged: number;
  mvStart: string | null;
  mvEnd: string | null;
  priceEffect: string | null;
  qtyEffect: string | null;
  fxEffect: string | null;
  corpActionEffect: string | null;
  distributions: string | null;
  totalPnl: string | null;
}

/** A detail row as it streams (numeric columns as pg's strings; null = missing, flagged). */
export interface VarianceDetailRow extends VarianceRowValues {
  security_id: string;
  ticker: string;
  isin: string | null;
  cusip: string | null;
  security_name: string;
  security_type: string;
  currency: string;
}

export interface TopMover {
  portfolio_id: string;
  ticker: string;
  security_name: string;
  security_type: string;
  currency: string;
  mv_start: string;
  mv_end: string;
  total_pnl: string;
  return_pct: string | null;
}

export interface FxUsed {
  from_currency: string;
  to_currency: string;
  fx_start: string | null;
  fx_end: string | null;
  start_date: string | null;
  end_date: string | null;
  source: string | null;
  rows: number;
}

export interface ActionInPeriod {
  action_id: string;
  ticker: string;
  action_type: string;
  ex_date: string;
  payment_date: string | null;
  ratio: string | null;
  amount: string | null;
  currency: string | null;
  status: string;
  revision: number;
  portfolio_id: string | null;
  entry: string | null;
  action_revision: number | null;
  quantity_delta: string | null;
  cash_amount: string | null;
  applied_at: Date | null;
  paid_at: Date | null;
}

export interface DetailWidths {
  security_id: number;
  ticker: number;
  isin: number;
  cusip: number;
  security_name: number;
  security_type: number;
  flag: number;
  /** Digits of the largest absolute value among quantities and money columns. */
  money_digits: number;
  qty_digits: number;
}

/** The SQL behind each sheet, as it runs (for the About sheet). `$1` = period label, `$2` = portfolio ids. */
export const REPORT_SQL = {
  summary: `select p.portfolio_id, p.portfolio_name, p.base_currency, count(*)::int as rows,
       count(vr.flag)::int as flagged, sum(vr.mv_start) filter (where vr.flag is null) as mv_start,
       sum(vr.mv_end) filter (where vr.flag is null) as mv_end,
       sum(vr.price_effect) filter (where vr.flag is null) as price_effect,
       sum(vr.qty_effect) filter (where vr.flag is null) as qty_effect,
       sum(vr.fx_effect) filter (where vr.flag is null) as fx_effect,
       sum(vr.corp_action_effect) filter (where vr.flag is null) as corp_action_effect,
       sum(vr.distributions) filter (where vr.flag is null) as distributions,
       sum(vr.total_pnl) filter (where vr.flag is null) as total_pnl
  from variance_rows vr join portfolios p using (portfolio_id)
 where vr.period_label = $1 and ($2::text[] is null or vr.portfolio_id = any($2))
 group by p.portfolio_id order by p.portfolio_id`,
  detail: `select s.security_id, s.ticker, s.isin, s.cusip, s.security_name, s.security_type, s.currency,
       vr.qty_start, vr.qty_end, vr.split_factor, vr.price_start, vr.price_end, vr.fx_start, vr.fx_end,
       vr.mv_start, vr.mv_end, vr.price_effect, vr.qty_effect, vr.fx_effect, vr.corp_action_effect,
       vr.distributions, vr.total_pnl, vr.flag
  from variance_rows vr join securities s on s.id = vr.security_id
 where vr.period_label = $1 and vr.portfolio_id = $2
 order by s.security_type, s.ticker`,
  topMovers: `select vr.portfolio_id, s.ticker, s.security_name, s.security_type, s.currency, vr.mv_start, vr.mv_end,
       vr.total_pnl, case when vr.mv_start <> 0 then vr.total_pnl / abs(vr.mv_start) end as return_pct
  from variance_rows vr join securities s on s.id = vr.security_id
 where vr.period_label = $1 and ($2::text[] is null or vr.portfolio_id = any($2)) and vr.flag is null
 order by abs(vr.total_pnl) desc, vr.portfolio_id, s.ticker limit $3`,
  fx: `select s.currency as from_currency, p.base_currency as to_currency, vr.fx_start, vr.fx_end,
       min(vr.period_from)::text as start_date, max(vr.period_to)::text as end_date,
       (select string_agg(distinct f.source, ', ') from fx_rates f
         where f.from_currency = s.currency and f.to_currency = p.base_currency
           and f.rate_date in (min(vr.period_from), max(vr.period_to))) as source,
       count(*)::int as rows
  from variance_rows vr join securities s on s.id = vr.security_id join portfolios p using (portfolio_id)
 where vr.period_label = $1 and ($2::text[] is null or vr.portfolio_id = any($2))
 group by s.currency, p.base_currency, vr.fx_start, vr.fx_end order by 1, 2, 3, 4`,
  actions: `select ca.action_id, s.ticker, ca.action_type, ca.ex_date, ca.payment_date, ca.ratio, ca.amount, ca.currency,
       ca.status, ca.revision, l.portfolio_id, l.entry, l.action_revision, l.quantity_delta, l.cash_amount,
       l.applied_at, l.paid_at
  from corporate_actions ca join securities s on s.id = ca.security_id
  left join corporate_action_ledger l on l.action_id = ca.id and l.portfolio_id is not null
       and ($2::text[] is null or l.portfolio_id = any($2))
 where ca.ex_date between $3 and $4
   and exists (select 1 from variance_rows vr where vr.period_label = $1 and vr.security_id = ca.security_id
                 and ($2::text[] is null or vr.portfolio_id = any($2)))
 order by ca.ex_date, s.ticker, ca.action_id, l.portfolio_id, l.id`,
} as const;

/** Reads of one render, all in one REPEATABLE READ snapshot on one connection. */
export interface ReportSnapshot {
  /** The backend pid of the snapshot's connection (tests cut it with pg_terminate_backend). */
  readonly pid: number;
  summary(periodLabel: string, portfolioIds: string[] | null): Promise<PortfolioSummary[]>;
  /** Newest `computed_at` of the rows the report reads. */
  dataAsOf(periodLabel: string, portfolioIds: string[] | null): Promise<Date | null>;
  /** Period dates as stored in the rows (min from, max to). */
  periodDates(periodLabel: string): Promise<{ from: string | null; to: string | null }>;
  detailWidths(periodLabel: string, portfolioIds: string[] | null): Promise<DetailWidths>;
  /** One portfolio's rows, ordered by security type then ticker, through a cursor. */
  detail(periodLabel: string, portfolioId: string): AsyncIterable<VarianceDetailRow>;
  topMovers(periodLabel: string, portfolioIds: string[] | null, limit: number): Promise<TopMover[]>;
  fxUsed(periodLabel: string, portfolioIds: string[] | null): Promise<FxUsed[]>;
  actions(
    periodLabel: string,
    portfolioIds: string[] | null,
    from: string,
    to: string,
  ): Promise<ActionInPeriod[]>;
}

export interface ListFilter {
  type?: string;
  period?: string;
  status?: ReportStatus;
  limit: number;
  offset: number;
}

/** The store's chunk layout of one run, for ranged reads. */
export interface ChunkInfo {
  seq: number;
  bytes: number;
}

export function createReportsRepository(db: Knex) {
  const runCols = `id, report_type, period_label, period_from::text, period_to::text, portfolio_ids,
    portfolio_set, version, status, params, job_id, file_name, bytes, chunks, row_count, sha256, error,
    started_at, finished_at, heartbeat_at, render_ms, timings`;

  return {
    /**
     * Opens a RUNNING run with the next version of (type, period, portfolio set). A transaction
     * advisory lock on the key serialises two renders of the same report starting at once.
     */
    async startRun(input: {
      reportType: string;
      periodLabel: string;
      periodFrom: string | null;
      periodTo: string | null;
      portfolioIds: string[] | null;
      params: Record<string, unknown>;
      jobId: string | null;
    }): Promise<ReportRun> {
      const set = input.portfolioIds ? [...input.portfolioIds].sort().join(',') : 'ALL';
      return db.transaction(async (trx) => {
        await trx.raw('select pg_advisory_xact_lock(hashtextextended(?, 10))', [
          `${input.reportType}|${input.periodLabel}|${set}`,
        ]);
        const res = await trx.raw<{ rows: RunRow[] }>(
          `insert into report_runs (report_type, period_label, period_from, period_to, portfolio_ids, portfolio_set,
                                    version, status, params, job_id)
           select ?, ?, ?::date, ?::date, ?::text[], ?,
                  coalesce(max(version), 0) + 1, 'RUNNING', ?::jsonb, ?
             from report_runs where report_type = ? and period_label = ? and portfolio_set = ?
           returning ${runCols}`,
          [
            input.reportType,
            input.periodLabel,
            input.periodFrom,
            input.periodTo,
            input.portfolioIds ? [...input.portfolioIds].sort() : null,
            set,
            JSON.stringify(input.params),
            input.jobId,
            input.reportType,
            input.periodLabel,
            set,
          ],
        );
        return toRun(res.rows[0]!);
      });
    },

    /**
     * Stores chunk `seq` of a RUNNING run and beats its heartbeat in the same statement. Throws
     * when the run is no longer RUNNING (a sweep found it stale and failed it): the render stops.
     */
    async appendChunk(runId: number, seq: number, data: Buffer): Promise<void> {
      const res = await db.raw<{ rows: { id: string }[] }>(
        `with run as (
           update report_runs set heartbeat_at = now() where id = ? and status = 'RUNNING' returning id
         ), chunk as (
           insert into report_chunks (run_id, seq, data) select id, ?, ? from run returning run_id
         )
         select run_id as id from chunk`,
        [runId, seq, data],
      );
      if (res.rows.length === 0)
        throw new Error(`report run ${runId} is no longer RUNNING; render abandoned`);
    },

    async heartbeat(runId: number): Promise<boolean> {
      const n = await db('report_runs')
        .where({ id: runId, status: 'RUNNING' })
        .update({ heartbeat_at: db.fn.now() });
      return n === 1;
    },

    /**
     * Turns a RUNNING run SUCCEEDED, in one transaction that checks the stored chunks (count
     * 0..n−1 and total bytes) against what the render wrote. Throws, leaving it RUNNING for the
     * caller to fail, when anything is missing.
     */
    async finishRun(
      runId: number,
      done: {
        sha256: string;
        bytes: number;
        chunks: number;
        rowCount: number;
        fileName: string;
        renderMs: number;
        timings: Record<string, number>;
      },
    ): Promise<ReportRun> {
      return db.transaction(async (trx) => {
        const run = await trx.raw<{ rows: { status: ReportStatus }[] }>(
          'select status from report_runs where id = ? for update',
          [runId],
        );
        if (run.rows[0]?.status !== 'RUNNING')
          throw new Error(`report run ${runId} is ${run.rows[0]?.status ?? 'gone'}, not RUNNING`);
        const stored = await trx.raw<{ rows: { n: number; bytes: string; max_seq: number | null }[] }>(
          `select count(*)::int as n, coalesce(sum(octet_length(data)), 0)::bigint as bytes, max(seq) as max_seq
             from report_chunks where run_id = ?`,
          [runId],
        );
        const s = stored.rows[0]!;
        if (s.n !== done.chunks || Number(s.bytes) !== done.bytes || (s.max_seq ?? -1) !== done.chunks - 1)
          throw new Error(
            `report run ${runId}: the store holds ${s.n} chunk(s) of ${s.bytes} bytes, the render wrote ${done.chunks} of ${done.bytes}`,
          );
        const res = await trx.raw<{ rows: RunRow[] }>(
          `update report_runs
              set status = 'SUCCEEDED', sha256 = ?, bytes = ?, chunks = ?, row_count = ?, file_name = ?,
                  render_ms = ?, timings = ?::jsonb, finished_at = now(), heartbeat_at = now()
            where id = ? returning ${runCols}`,
          [
            done.sha256,
            done.bytes,
            done.chunks,
            done.rowCount,
            done.fileName,
            done.renderMs,
            JSON.stringify(done.timings),
            runId,
          ],
        );
        return toRun(res.rows[0]!);
      });
    },

    /** Fails a RUNNING run with its error and deletes its chunks (one transaction). False if not RUNNING. */
    async failRun(runId: number, error: string, rowCount?: number): Promise<boolean> {
      return db.transaction(async (trx) => {
        const n = await trx('report_runs')
          .where({ id: runId, status: 'RUNNING' })
          .update({
            status: 'FAILED',
            error: error.slice(0, 4000) || 'unknown error',
            finished_at: trx.fn.now(),
            ...(rowCount === undefined ? {} : { row_count: rowCount }),
          });
        await trx('report_chunks').where({ run_id: runId }).delete();
        return n === 1;
      });
    },

    /**
     * Fails RUNNING runs whose render is gone: those of `jobId` (a retry of a job whose worker
     * died finds its own run) and those whose heartbeat is older than `staleBefore`. Deletes their chunks.
     */
    async failAbandoned(opts: { jobId?: string; staleBefore?: Date; reason: string }): Promise<number[]> {
      return db.transaction(async (trx) => {
        const res = await trx.raw<{ rows: { id: string }[] }>(
          `update report_runs set status = 'FAILED', finished_at = now(),
                  error = ? || ' (heartbeat ' || to_char(heartbeat_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') || ')'
            where status = 'RUNNING' and ((?::text is not null and job_id = ?) or heartbeat_at < ?::timestamptz)
           returning id`,
          [opts.reason, opts.jobId ?? null, opts.jobId ?? null, opts.staleBefore ?? null],
        );
        const ids = res.rows.map((r) => Number(r.id));
        if (ids.length) await trx('report_chunks').whereIn('run_id', ids).delete();
        return ids;
      });
    },

    /**
     * Retention: deletes runs finished before `before`, except the newest SUCCEEDED version of each
     * (type, period, portfolio set), which stays until a newer version supersedes it. Chunks cascade.
     */
    async expire(before: Date, dryRun: boolean): Promise<{ runs: number; bytes: number }> {
      const sql = `select r.id, coalesce(r.bytes, 0) as bytes from report_runs r
         where r.status <> 'RUNNING' and r.finished_at < ?
           and r.id <> coalesce((select n.id from report_runs n
                                  where n.report_type = r.report_type and n.period_label = r.period_label
                                    and n.portfolio_set = r.portfolio_set and n.status = 'SUCCEEDED'
                                  order by n.version desc limit 1), -1)`;
      const found = await db.raw<{ rows: { id: string; bytes: string }[] }>(sql, [before]);
      const bytes = found.rows.reduce((n, r) => n + Number(r.bytes), 0);
      if (!dryRun && found.rows.length)
        await db('report_runs')
          .whereIn(
            'id',
            found.rows.map((r) => r.id),
          )
          .delete();
      return { runs: found.rows.length, bytes };
    },

    async get(id: number): Promise<ReportRun | undefined> {
      const res = await db.raw<{ rows: RunRow[] }>(`select ${runCols} from report_runs where id = ?`, [id]);
      return res.rows[0] ? toRun(res.rows[0]) : undefined;
    },

    async list(f: ListFilter): Promise<{ total: number; runs: ReportRun[] }> {
      const where: string[] = [];
      const values: (string | number)[] = [];
      if (f.type !== undefined) {
        where.push('report_type = ?');
        values.push(f.type);
      }
      if (f.period !== undefined) {
        where.push('period_label = ?');
        values.push(f.period);
      }
      if (f.status !== undefined) {
        where.push('status = ?');
        values.push(f.status);
      }
      const w = where.length ? `where ${where.join(' and ')}` : '';
      const res = await db.raw<{ rows: (RunRow & { total: string })[] }>(
        `select ${runCols}, count(*) over () as total from report_runs ${w} order by id desc limit ? offset ?`,
        [...values, f.limit, f.offset],
      );
      let total = res.rows[0] ? Number(res.rows[0].total) : 0;
      if (!res.rows[0] && f.offset > 0) {
        const c = await db.raw<{ rows: { n: string }[] }>(
          `select count(*) as n from report_runs ${w}`,
          values,
        );
        total = Number(c.rows[0]!.n);
      }
      return { total, runs: res.rows.map(toRun) };
    },

    async chunkLayout(runId: number): Promise<ChunkInfo[]> {
      const res = await db.raw<{ rows: { seq: number; bytes: number }[] }>(
        'select seq, octet_length(data) as bytes from report_chunks where run_id = ? order by seq',
        [runId],
      );
      return res.rows;
    },

    /** Bytes [start, start+length) of one chunk (1-based substring in SQL). */
    async chunkSlice(runId: number, seq: number, start: number, length: number): Promise<Buffer> {
      const res = await db.raw<{ rows: { data: Buffer }[] }>(
        'select substring(data from ? for ?) as data from report_chunks where run_id = ? and seq = ?',
        [start + 1, length, runId, seq],
      );
      if (!res.rows[0]) throw new Error(`report run ${runId}: chunk ${seq} is missing`);
      return res.rows[0].data;
    },

    /**
     * Runs `fn` with a snapshot of its own: one connection, REPEATABLE READ READ ONLY, named
     * `appName` in pg_stat_activity. A connection that failed is closed, not reused.
     */
    async withSnapshot<T>(appName: string, fn: (snap: ReportSnapshot) => Promise<T>): Promise<T> {
      const conn = (await db.client.acquireConnection()) as pg.Client;
      // The server's own words when the connection dies (pg then only says "not queryable").
      let lost: Error | undefined;
      const onError = (err: Error): void => {
        lost ??= err;
      };
      conn.on('error', onError);
      let healthy = true;
      try {
        await conn.query(`select set_config('application_name', $1, false)`, [appName]);
        const pidRes = await conn.query<{ pid: number }>('select pg_backend_pid() as pid');
        await conn.query('begin isolation level repeatable read read only');
        const snap = snapshotOn(conn, pidRes.rows[0]!.pid, () => lost);
        try {
          const out = await fn(snap);
          await conn.query('commit');
          return out;
        } catch (err) {
          await conn.query('rollback').catch(() => {
            healthy = false;
          });
          throw err;
        }
      } catch (err) {
        if (lost) {
          healthy = false;
          throw new Error(`database connection lost mid-render: ${lost.message}`, { cause: err });
        }
        throw err;
      } finally {
        conn.off('error', onError);
        if (healthy)
          await conn
            .query(`select set_config('application_name', 'market-data-workers', false)`)
            .catch(() => {
              healthy = false;
            });
        // Not awaited: end() on a connection the server already closed never resolves.
        if (!healthy) void conn.end().catch(() => undefined);
        await db.client.releaseConnection(conn);
      }
    },

    /** `COPY (detail query) TO STDOUT` as CSV into `sink` (the bench's baseline). Returns bytes. */
    async copyDetailCsv(
      periodLabel: string,
      portfolioId: string,
      sink: NodeJS.WritableStream,
    ): Promise<number> {
      const { to: copyTo } = await import('pg-copy-streams');
      const conn = (await db.client.acquireConnection()) as pg.Client;
      try {
        const q = REPORT_SQL.detail
          .replace('$1', conn.escapeLiteral(periodLabel))
          .replace('$2', conn.escapeLiteral(portfolioId));
        const stream = conn.query(copyTo(`copy (${q}) to stdout with (format csv, header)`));
        let bytes = 0;
        await new Promise<void>((resolve, reject) => {
          const resume = (): void => {
            stream.resume();
          };
          sink.on('drain', resume);
          const done = (err?: Error): void => {
            sink.off('drain', resume);
            if (err) reject(err);
            else resolve();
          };
          stream.on('data', (b: Buffer) => {
            bytes += b.length;
            if (!sink.write(b)) stream.pause();
          });
          stream.on('end', () => done());
          stream.on('error', done);
        });
        return bytes;
      } finally {
        await db.client.releaseConnection(conn);
      }
    },
  };
}

function snapshotOn(conn: pg.Client, pid: number, lost: () => Error | undefined): ReportSnapshot {
  return {
    pid,
    async summary(periodLabel, portfolioIds) {
      const res = await conn.query<{
        portfolio_id: string;
        portfolio_name: string;
        base_currency: string;
        rows: number;
        flagged: number;
        mv_start: string | null;
        mv_end: string | null;
        price_effect: string | null;
        qty_effect: string | null;
        fx_effect: string | null;
        corp_action_effect: string | null;
        distributions: string | null;
        total_pnl: string | null;
      }>(REPORT_SQL.summary, [periodLabel, portfolioIds]);
      return res.rows.map((r) => ({
        portfolioId: r.portfolio_id,
        portfolioName: r.portfolio_name,
        baseCurrency: r.base_currency,
        rows: r.rows,
        flagged: r.flagged,
        mvStart: r.mv_start,
        mvEnd: r.mv_end,
        priceEffect: r.price_effect,
        qtyEffect: r.qty_effect,
        fxEffect: r.fx_effect,
        corpActionEffect: r.corp_action_effect,
        distributions: r.distributions,
        totalPnl: r.total_pnl,
      }));
    },
    async dataAsOf(periodLabel, portfolioIds) {
      const res = await conn.query<{ t: Date | null }>(
        `select max(computed_at) as t from variance_rows
          where period_label = $1 and ($2::text[] is null or portfolio_id = any($2))`,
        [periodLabel, portfolioIds],
      );
      return res.rows[0]?.t ?? null;
    },
    async periodDates(periodLabel) {
      const res = await conn.query<{ f: string | null; t: string | null }>(
        'select min(period_from)::text as f, max(period_to)::text as t from variance_rows where period_label = $1',
        [periodLabel],
      );
      return { from: res.rows[0]?.f ?? null, to: res.rows[0]?.t ?? null };
    },
    async detailWidths(periodLabel, portfolioIds) {
      const res = await conn.query<DetailWidths>(
        `select coalesce(max(length(s.security_id)), 0)::int as security_id, coalesce(max(length(s.ticker)), 0)::int as ticker,
                coalesce(max(length(s.isin)), 0)::int as isin, coalesce(max(length(s.cusip)), 0)::int as cusip,
                coalesce(max(length(s.security_name)), 0)::int as security_name,
                coalesce(max(length(s.security_type)), 0)::int as security_type,
                coalesce(max(length(vr.flag)), 0)::int as flag,
                coalesce(length(trunc(greatest(max(abs(vr.mv_start)), max(abs(vr.mv_end)), max(abs(vr.total_pnl)),
                   max(abs(vr.price_effect)), max(abs(vr.qty_effect)), max(abs(vr.fx_effect)),
                   max(abs(vr.corp_action_effect))))::text), 1)::int as money_digits,
                coalesce(length(trunc(greatest(max(abs(vr.qty_start)), max(abs(vr.qty_end))))::text), 1)::int as qty_digits
           from variance_rows vr join securities s on s.id = vr.security_id
          where vr.period_label = $1 and ($2::text[] is null or vr.portfolio_id = any($2))`,
        [periodLabel, portfolioIds],
      );
      return res.rows[0]!;
    },
    async *detail(periodLabel, portfolioId) {
      // A cursor opened on a connection that already died waits forever (pg-cursor): refuse it,
      // and end a running one with the connection's error.
      const dead = lost();
      if (dead) throw dead;
      const stream = conn.query(
        new QueryStream(REPORT_SQL.detail, [periodLabel, portfolioId], {
          batchSize: 2000,
          highWaterMark: 2000,
        }),
      );
      // pg-query-stream's _destroy closes the cursor and waits for the server's ReadyForQuery,
      // which a dead connection never sends: after an error, finish destroying at once (the
      // transaction is rolled back, or the connection discarded, by withSnapshot).
      const destroy = stream._destroy.bind(stream);
      stream._destroy = (err: Error | null, cb: (e?: Error | null) => void): void => {
        if (err) cb(err);
        else destroy(err as unknown as Error, cb);
      };
      const onError = (err: Error): void => {
        stream.destroy(err);
      };
      conn.on('error', onError);
      try {
        yield* stream as AsyncIterable<VarianceDetailRow>;
      } finally {
        conn.off('error', onError);
      }
    },
    async topMovers(periodLabel, portfolioIds, limit) {
      return (await conn.query<TopMover>(REPORT_SQL.topMovers, [periodLabel, portfolioIds, limit])).rows;
    },
    async fxUsed(periodLabel, portfolioIds) {
      return (await conn.query<FxUsed>(REPORT_SQL.fx, [periodLabel, portfolioIds])).rows;
    },
    async actions(periodLabel, portfolioIds, from, to) {
      return (await conn.query<ActionInPeriod>(REPORT_SQL.actions, [periodLabel, portfolioIds, from, to]))
        .rows;
    },
  };
}
