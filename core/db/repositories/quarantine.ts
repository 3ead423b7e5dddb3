/**
 * The quarantine (`quarantined_rows`): provider rows that failed validation, with their reason
 * code and raw payload, written in the same transaction as the good rows of the same fetch
 * (`insertQuarantineOn`: ingest.ts, ticks.ts, fx.ts) or on their own when nothing else is stored
 * (`insert`). Ticks whose key a tick of another origin holds with other values are quarantined by
 * ticks.ts straight from its staging table (reason `conflicting_duplicate`).
 */
import { rawTransaction, type Knex } from '../knex.ts';
import { col, type Conn } from './sql.ts';

export interface QuarantineInsert {
  source: string;
  jobName: string | null;
  jobId: string | null;
  entity: string;
  symbol: string | null;
  reason: string;
  raw: unknown;
}

/** JSON for jsonb: non-finite numbers kept as text (JSON has none), NUL characters removed. */
function jsonForQuarantine(raw: unknown): string {
  const text = JSON.stringify(raw === undefined ? null : raw, (_k, v: unknown) => {
    if (typeof v === 'number' && !Number.isFinite(v)) return String(v);
    if (typeof v === 'string') return v.replaceAll('\u0000', '');
    if (typeof v === 'bigint') return v.toString();
    if (v === undefined) return null;
    return v;
  });
  return text ?? 'null';
}

/** Quarantines rows in the caller's transaction; returns how many were stored. */
export async function insertQuarantineOn(conn: Conn, rows: readonly QuarantineInsert[]): Promise<number> {
  if (rows.length === 0) return 0;
  const res = await conn.query(
    `insert into quarantined_rows (source, job_name, job_id, entity, symbol, reason, raw)
     select * from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::jsonb[])`,
    [
      col(rows, 'source'),
      col(rows, 'jobName'),
      col(rows, 'jobId'),
      col(rows, 'entity'),
      col(rows, 'symbol'),
      col(rows, 'reason'),
      rows.map((r) => jsonForQuarantine(r.raw)),
    ],
  );
  return res.rowCount ?? 0;
}

export function createQuarantineRepository(db: Knex) {
  return {
    /** Quarantines rows of a fetch that stored nothing else. */
    async insert(rows: readonly QuarantineInsert[]): Promise<number> {
      return rawTransaction(db, (conn) => insertQuarantineOn(conn, rows));
    },
  };
}

export type QuarantineRepository = ReturnType<typeof createQuarantineRepository>;
