/**
 * Reads of the bar tables for the API. Prices, volumes and pv come back as the strings pg gives
 * for numeric and int8: the caller decides how to present them.
 */
import type { Knex } from '../knex.ts';

export interface Bar5mRecord {
  /** Start of the epoch-aligned bucket [bucket, bucket + 5 minutes). */
  bucket: Date;
  open: string;
  high: string;
  low: string;
  close: string;
  volume: string;
  /** Null exactly when volume is 0. */
  vwap: string | null;
  tradeCount: number;
}

export interface DailyBarRecord {
  /** Exchange-local session date, 'YYYY-MM-DD'. */
  sessionDate: string;
  open: string;
  high: string;
  low: string;
  close: string;
  adjClose: string | null;
  volume: string;
  vwap: string | null;
  tradeCount: number | null;
}

interface Bar5mRow {
  bucket: Date;
  open: string;
  high: string;
  low: string;
  close: string;
  volume: string;
  vwap: string | null;
  trade_count: number;
}

interface DailyBarRow {
  session_date: string;
  open: string;
  high: string;
  low: string;
  close: string;
  adj_close: string | null;
  volume: string;
  vwap: string | null;
  trade_count: number | null;
}

export function createBarsRepository(db: Knex) {
  return {
    /**
     * The newest `limit` 5-minute bars of a security, oldest first. The inner query walks the
     * primary key backwards across the monthly partitions (a merge append that stops after
     * `limit` rows); the outer one only re-sorts those rows.
     */
    async latest5m(securityId: number, limit: number): Promise<Bar5mRecord[]> {
      const newest = db('bars_5m')
        .select('bucket', 'open', 'high', 'low', 'close', 'volume', 'vwap', 'trade_count')
        .where({ security_id: securityId })
        .orderBy('bucket', 'desc')
        .limit(limit)
        .as('newest');
      const rows = (await db.select('*').from(newest).orderBy('bucket', 'asc')) as Bar5mRow[];
      return rows.map((r) => ({
        bucket: r.bucket,
        open: r.open,
        high: r.high,
        low: r.low,
        close: r.close,
        volume: r.volume,
        vwap: r.vwap,
        tradeCount: r.trade_count,
      }));
    },

    /** A ticker that has 5-minute bars (for examples printed by the demo), or undefined. */
    async sampleSymbolWith5m(): Promise<string | undefined> {
      const row = (await db('securities as s')
        .select('s.ticker')
        .whereExists(db('bars_5m as b').select(db.raw('1')).whereRaw('b.security_id = s.id'))
        .orderBy('s.id')
        .first()) as { ticker: string } | undefined;
      return row?.ticker;
    },

    /** Daily bars of a security for session dates in [from, to] ('YYYY-MM-DD', inclusive), oldest first. */
    async daily(securityId: number, from: string, to: string): Promise<DailyBarRecord[]> {
      const rows = (await db('bars_1d')
        .select('session_date', 'open', 'high', 'low', 'close', 'adj_close', 'volume', 'vwap', 'trade_count')
        .where({ security_id: securityId })
        .whereBetween('session_date', [from, to])
        .orderBy('session_date', 'asc')) as DailyBarRow[];
      return rows.map((r) => ({
        sessionDate: r.session_date,
        open: r.open,
        high: r.high,
        low: r.low,
        close: r.close,
        adjClose: r.adj_close,
        volume: r.volume,
        vwap: r.vwap,
        tradeCount: r.trade_count,
      }));
    },
  };
}

export type BarsRepository = ReturnType<typeof createBarsRepository>;
