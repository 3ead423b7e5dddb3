/**
 * Turning validated provider rows into stored rows (pure; the repository writes them).
 *
 * Quotes → one tick at the quote's market time with seq 0 (QUOTE_SEQ): a re-fetch of the same
 * quote has the same (security, ts, seq) and is a duplicate, not a second print. Its size is the
 * increase of the provider's cumulative session volume since the last stored quote of the same
 * session; the first stored quote of a session carries the whole volume traded so far (so the
 * sizes of a session's quotes sum to the last cumulative volume seen, and the daily rollup's
 * volume matches the provider's); 0 when the provider gives no volume or the quote is older than
 * the last one stored. See core/ingest/quotes.ts. A closing print (stamped exactly at a session's
 * close) is stored at close − 1 ms, inside the session's last 5-minute bucket, so the daily
 * rollup counts it (core/ingest/validate.ts).
 *
 * Intraday bars → ticks. A bar is not a list of trades, so we store four prints at the bar's
 * start: open, high, low, close with seq 1, 2, 3, 4, all size 0 except the close, which carries
 * the bar's whole volume. Consequences: the 5-minute rollup of these prints reproduces the
 * provider's open, high, low, close and volume exactly (first/last by (ts, seq), max, min, sum);
 * trade_count counts prints (4 per provider bar), not trades; VWAP is approximated as the
 * volume-weighted mean of the bars' closes. Seq 0 stays free for a quote at the same instant,
 * which then sorts before the bar's prints (a trade at t precedes the rest of [t, t + interval)).
 *
 * Daily bars → bars_1d with source = the provider's name and its adjusted close; a bar whose
 * source is 'rollup' is not overwritten unless the rolled-up day is partial (its 5-minute bars do
 * not fill its session); see core/db/repositories/provider-bars.ts. Bar prints (origin 'bar')
 * replace the ticks of other origins inside the minutes their bars cover, in the same transaction:
 * bars from a backfill are the authoritative record of those minutes, and mixing both would double
 * the volume (core/db/repositories/ticks.ts).
 *
 * Events → corporate_actions with a deterministic action_id `${provider}:${ticker}:${type}:${exDate}`
 * (so a re-fetch is a conflict, not a new row); a split ratio < 1 is a REVERSE_SPLIT; providers
 * report no payment date for dividends, and the table requires one, so the ex-date stands in for
 * it (the cash amount is right; only the payment date is a placeholder).
 */
import type { ActionUpsert } from '../db/repositories/corporate-actions.ts';
import type { DailyBarUpsert } from '../db/repositories/provider-bars.ts';
import type { QuarantineInsert } from '../db/repositories/quarantine.ts';
import type { TickInsert } from '../db/repositories/ticks.ts';
import type { DailyRow, EventRow, IntradayRow, Rejected } from './validate.ts';

export const QUOTE_SEQ = 0;
/** Seqs of a bar's prints; the close print stands for the provider row when counting. */
export const BAR_SEQ = { open: 1, high: 2, low: 3, close: 4 } as const;

/** Decimal text of a finite number, never in exponent notation (numeric accepts both; we keep it plain). */
export function decimalText(x: number): string {
  // JavaScript prints plain decimals for 1e-6 <= |x| < 1e21.
  if ((x >= 1e-6 && x < 1e21) || x === 0) return String(x);
  const s = String(x);
  if (!/e/i.test(s)) return s;
  const fixed = x.toFixed(20);
  return fixed.includes('.') ? fixed.replace(/0+$/, '').replace(/\.$/, '') : fixed;
}

export function intradayTicks(securityId: number, rows: readonly IntradayRow[]): TickInsert[] {
  const out: TickInsert[] = [];
  for (const r of rows) {
    const print = (seq: number, price: number, size: number): TickInsert => ({
      securityId,
      ts: r.ts,
      seq,
      origin: 'bar',
      price: decimalText(price),
      size,
      bid: null,
      ask: null,
    });
    out.push(
      print(BAR_SEQ.open, r.open, 0),
      print(BAR_SEQ.high, r.high, 0),
      print(BAR_SEQ.low, r.low, 0),
      print(BAR_SEQ.close, r.close, r.volume),
    );
  }
  return out;
}

export function dailyBarRows(
  securityId: number,
  rows: readonly DailyRow[],
  source: string,
): DailyBarUpsert[] {
  return rows.map((r) => ({
    securityId,
    sessionDate: r.date,
    open: decimalText(r.open),
    high: decimalText(r.high),
    low: decimalText(r.low),
    close: decimalText(r.close),
    adjClose: r.adjClose === null ? null : decimalText(r.adjClose),
    volume: r.volume,
    source,
  }));
}

export function actionRows(
  security: { id: number; ticker: string; currency: string },
  events: readonly EventRow[],
  provider: string,
): ActionUpsert[] {
  return events.map((e) => {
    const actionType =
      e.kind === 'dividend' ? 'DIVIDEND' : (e.ratio ?? 1) < 1 ? 'REVERSE_SPLIT' : 'STOCK_SPLIT';
    return {
      actionId: `${provider}:${security.ticker}:${actionType}:${e.exDate}`,
      securityId: security.id,
      actionType,
      exDate: e.exDate,
      paymentDate: e.kind === 'dividend' ? e.exDate : null,
      ratio: e.kind === 'split' && e.ratio !== null ? decimalText(e.ratio) : null,
      amount: e.kind === 'dividend' && e.amount !== null ? decimalText(e.amount) : null,
      currency: e.kind === 'dividend' ? security.currency : null,
      source: provider,
    };
  });
}

export interface QuarantineMeta {
  source: string;
  jobName: string | null;
  jobId: string | null;
  symbol: string | null;
}

export function quarantineRows(rejected: readonly Rejected[], meta: QuarantineMeta): QuarantineInsert[] {
  return rejected.map((r) => ({ ...meta, entity: r.entity, reason: r.reason, raw: r.raw }));
}
