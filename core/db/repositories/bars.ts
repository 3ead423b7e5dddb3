/**
 * Reads of the price tables (ticks, 5-minute and daily bars) for the API. Prices, volumes and pv
 * come back as the strings pg gives for numeric and int8: the caller decides how to present them.
 * Split and dividend adjustment is done here, in numeric arithmetic, so no price passes through a
 * float.
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

export interface TickRecord {
  ts: Date;
  seq: number;
  price: string;
  size: string;
  bid: string | null;
  ask: string | null;
}

/** A security with its newest stored price (a tick), if it has any. */
export interface LatestPriceRecord {
  ticker: string;
  ts: Date | null;
  price: string | null;
}

export type DailyAdjustment = 'none' | 'split' | 'all';

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

const toDaily = (r: DailyBarRow): DailyBarRecord => ({
  sessionDate: r.session_date,
  open: r.open,
  high: r.high,
  low: r.low,
  close: r.close,
  adjClose: r.adj_close,
  volume: r.volume,
  vwap: r.vwap,
  tradeCount: r.trade_count,
});

/**
 * Daily bars back-adjusted by the cumulative factors of price_adjustments() (the one definition,
 * migrations/20261204000200_adjusted_history.ts), counting actions with ex-dates on or before
 * `asOf`: history is not adjusted for an announced future split. 'split': prices ÷ the split
 * factor, volume × it; 'all': prices also × the dividend factor (volume as for 'split'). In
 * numeric arithmetic, prices rounded to the column's 8 decimals (half away from zero), volumes to
 * whole shares.
 */
const ADJUSTED_DAILY = `
  select b.session_date,
         round(b.open * k.m / k.s, 8) as open,
         round(b.high * k.m / k.s, 8) as high,
         round(b.low * k.m / k.s, 8) as low,
         round(b.close * k.m / k.s, 8) as close,
         b.adj_close,
         round(b.volume * k.s)::bigint as volume,
         round(b.vwap * k.m / k.s, 8) as vwap,
         b.trade_count
    from bars_1d b
    left join price_adjustments(array[:id]::int[], :asOf::date) f
      on b.session_date >= f.valid_from and b.session_date < f.valid_to
    cross join lateral (
      select coalesce(f.split_factor, 1) as s,
             case when :all::boolean then coalesce(f.dividend_factor, 1) else 1 end as m
    ) k
   where b.security_id = :id and b.session_date between :from and :to
   order by b.session_date`;

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

    /** Ids of the first `n` active equities that have 5-minute bars (the demo's watch list). */
    async sampleEquityIds(n: number): Promise<number[]> {
      const rows = (await db('securities as s')
        .select('s.id')
        .where({ 's.security_type': 'EQUITY', 's.status': 'ACTIVE' })
        .whereExists(db('bars_5m as b').select(db.raw('1')).whereRaw('b.security_id = s.id'))
        .orderBy('s.id')
        .limit(n)) as { id: number }[];
      return rows.map((r) => r.id);
    },

    /**
     * Daily bars of a security for session dates in [from, to] ('YYYY-MM-DD', inclusive), oldest
     * first. `adjust: 'split'` back-adjusts each bar by the splits with ex-dates after it and on or
     * before `asOf` (prices ÷ cumulative ratio, volume ×); `'all'` by the dividends too (prices ×
     * Π(1 − amount ÷ previous close)). `adj_close` is returned as stored (split- and
     * dividend-adjusted by every action up to the security's newest bar).
     */
    async daily(
      securityId: number,
      from: string,
      to: string,
      opts: { adjust?: DailyAdjustment; asOf?: string } = {},
    ): Promise<DailyBarRecord[]> {
      if (opts.adjust === 'split' || opts.adjust === 'all') {
        const res = await db.raw<{ rows: DailyBarRow[] }>(ADJUSTED_DAILY, {
          id: securityId,
          from,
          to,
          asOf: opts.asOf ?? '9999-12-31',
          all: opts.adjust === 'all',
        });
        return res.rows.map(toDaily);
      }
      const rows = (await db('bars_1d')
        .select('session_date', 'open', 'high', 'low', 'close', 'adj_close', 'volume', 'vwap', 'trade_count')
        .where({ security_id: securityId })
        .whereBetween('session_date', [from, to])
        .orderBy('session_date', 'asc')) as DailyBarRow[];
      return rows.map(toDaily);
    },

    /**
     * The newest `limit` ticks of a security, newest first (by time, then sequence). Walks the
     * primary key (security_id, ts, seq) backwards across the monthly partitions and stops after
     * `limit` rows.
     */
    async latestTicks(securityId: number, limit: number): Promise<TickRecord[]> {
      return (await db('ticks')
        .select('ts', 'seq', 'price', 'size', 'bid', 'ask')
        .where({ security_id: securityId })
        .orderBy([
          { column: 'ts', order: 'desc' },
          { column: 'seq', order: 'desc' },
        ])
        .limit(limit)) as TickRecord[];
    },

    /**
     * One page of securities of a type (ticker order) with each one's newest tick price, or
     * nulls when it has none. One index probe per security (the lateral newest-tick lookup).
     */
    async latestPrices(opts: {
      securityType: string;
      limit: number;
      offset: number;
    }): Promise<LatestPriceRecord[]> {
      const res = await db.raw<{ rows: LatestPriceRecord[] }>(
        `select s.ticker, t.ts, t.price
           from (select id, ticker from securities where security_type = :type
                  order by ticker limit :limit offset :offset) s
           left join lateral (
             select ts, price from ticks where security_id = s.id order by ts desc, seq desc limit 1
           ) t on true
          order by s.ticker`,
        { type: opts.securityType, limit: opts.limit, offset: opts.offset },
      );
      return res.rows;
    },
  };
}

export type BarsRepository = ReturnType<typeof createBarsRepository>;
