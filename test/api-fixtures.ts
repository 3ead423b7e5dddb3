/**
 * Rows the API tests read back: one security with 5-minute and daily bars, written straight to
 * the real tables. Tickers and security ids are random so test files can share the database.
 */
import { randomBytes } from 'node:crypto';
import type { Deps } from '../core/deps.ts';

export interface PriceFixture {
  id: number;
  ticker: string;
  /** Bucket starts of the 5-minute bars, ascending. */
  buckets: Date[];
  /** Session dates of the daily bars, ascending. */
  dates: string[];
}

/** `n` consecutive 5-minute buckets ending at `last`, ascending. */
function bucketsEndingAt(last: Date, n: number): Date[] {
  return Array.from({ length: n }, (_, i) => new Date(last.getTime() - (n - 1 - i) * 300_000));
}

export async function insertPriceFixture(
  deps: Deps,
  opts: { bars5m: number; lastBucket: string; dates: string[] },
): Promise<PriceFixture> {
  const tag = randomBytes(3).toString('hex').toUpperCase();
  const [sec] = await deps
    .db('securities')
    .insert({
      security_id: `SEC-${Math.floor(Math.random() * 9e8) + 1e8}`,
      ticker: `API${tag}`,
      security_name: `API test ${tag}`,
      security_type: 'EQUITY',
      asset_class: 'Equity',
      currency: 'USD',
      exchange: 'NYSE',
    })
    .returning<{ id: number; ticker: string }[]>(['id', 'ticker']);
  const { id, ticker } = sec!;

  const buckets = bucketsEndingAt(new Date(opts.lastBucket), opts.bars5m);
  if (buckets.length > 0) {
    await deps.db.raw(`select ensure_month_partitions('bars_5m', ?, ?)`, [
      buckets[0]!,
      new Date(buckets.at(-1)!.getTime() + 300_000),
    ]);
    await deps.db('bars_5m').insert(
      buckets.map((bucket, i) => {
        // The last bar has no volume, so its VWAP is null (the table requires that pairing).
        const volume = i === buckets.length - 1 ? 0 : 1000 + i;
        const open = (100 + i / 100).toFixed(8);
        return {
          security_id: id,
          bucket,
          open,
          high: (101 + i / 100).toFixed(8),
          low: (99 + i / 100).toFixed(8),
          close: (100.5 + i / 100).toFixed(8),
          volume,
          pv: (volume * (100.25 + i / 100)).toFixed(8),
          vwap: volume === 0 ? null : (100.25 + i / 100).toFixed(8),
          trade_count: 10 + i,
        };
      }),
    );
  }
  if (opts.dates.length > 0) {
    await deps.db('bars_1d').insert(
      opts.dates.map((date, i) => ({
        security_id: id,
        session_date: date,
        open: '187.12345678',
        high: '190.00000000',
        low: '185.50000000',
        close: (188 + (i % 4) / 4).toFixed(8),
        // Provider history carries no adjusted close on odd days.
        adj_close: i % 2 === 0 ? (187.5 + (i % 4) / 4).toFixed(8) : null,
        volume: 50_000_000 + i,
        pv: null,
        vwap: i % 2 === 0 ? '188.25000000' : null,
        trade_count: i % 2 === 0 ? 400_000 : null,
        source: 'test',
      })),
    );
  }
  return { id, ticker, buckets, dates: opts.dates };
}
