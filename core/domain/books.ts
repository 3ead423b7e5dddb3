/**
 * Daily books (issue 9): the replay of one portfolio's position in one security, from its trades
 * and the corporate actions the ledger applied to it, to quantity and average cost in the base
 * currency. Pure and decimal (decimal.js): holdings.snapshot feeds it the events of the database
 * and writes the states it returns, day by day, set-based.
 *
 * Quantity is exactly Σ signed trades (BUY/COVER +, SELL/SHORT −) + Σ ledger quantity_delta (APPLY
 * and REVERSE rows both; they are signed) up to the day. The cost basis is average cost, signed
 * with the position (a short carries a negative cost: its proceeds), in the base currency at
 * historical rates:
 * - a trade that opens or adds to the position adds quantity × price × unit × FX(trade date) plus
 *   its fees (fees are stored in the base currency, as the generator writes them);
 * - a trade that reduces the position removes the average cost of what it closes (cost × closed /
 *   held); its fees are realised P&L, not cost. A trade through zero closes all, then opens the rest
 *   at its own price with its share of the fees;
 * - a split or reverse split leaves total cost unchanged, except the fraction paid as cash in lieu,
 *   which takes its average share: cost × kept / (held × ratio), kept = held + quantity_delta;
 * - a maturity (or any other action that changes the quantity) removes cost in proportion to the
 *   quantity it removes; dividends and coupons change neither quantity nor cost;
 * - a position back at zero has zero cost; a trade whose FX rate is unknown makes the cost unknown
 *   (null) until the position is flat again (never a zero or a guess).
 * Events of one date: the actions first (an action is entitled on the shares held at the end of the
 * day before its ex-date), then that day's trades in their order.
 */
import { dec, ONE, ZERO, type Dec } from './money.ts';

export interface TradeEvent {
  kind: 'trade';
  date: string;
  /** Signed quantity: BUY/COVER positive, SELL/SHORT negative. */
  quantity: string;
  /** Local price (bonds per 100 face). */
  price: string;
  /** Value per unit of price × quantity: face/100 for bonds, else 1. */
  unit: string;
  /** FX local → base on the trade date; null = unknown. */
  fx: string | null;
  /** Fees in the base currency. */
  fees: string;
}

export interface ActionEvent {
  kind: 'action';
  date: string;
  actionType: string;
  /** Shares held at the end of the day before the ex-date, as the ledger recorded them. */
  quantityHeld: string;
  quantityDelta: string;
  ratio: string | null;
}

export type BookEvent = TradeEvent | ActionEvent;

export interface PositionState {
  /** The state holds from this date (after all its events) until the next state's date. */
  date: string;
  quantity: Dec;
  /** Average cost in base currency, unrounded; null = unknown. */
  cost: Dec | null;
}

const SPLITS = new Set(['STOCK_SPLIT', 'REVERSE_SPLIT']);

function applyTrade(q: Dec, cost: Dec | null, t: TradeEvent): { q: Dec; cost: Dec | null } {
  const dq = dec(t.quantity);
  const fees = dec(t.fees);
  const next = q.plus(dq);
  if (dq.isZero()) return { q, cost };
  const opening = (qty: Dec, share: Dec): Dec | null =>
    t.fx === null ? null : qty.times(t.price).times(t.unit).times(t.fx).plus(fees.times(share));
  if (q.isZero() || q.isNegative() === dq.isNegative()) {
    const add = opening(dq, ONE);
    return { q: next, cost: cost === null || add === null ? null : cost.plus(add) };
  }
  // Reducing: close min(|dq|, |q|) at the average cost, open any remainder at the trade's price.
  const closed = dq.abs().lessThan(q.abs()) ? dq.abs() : q.abs();
  const remainder = dq.abs().minus(closed);
  let c = cost === null ? null : cost.minus(cost.times(closed).dividedBy(q.abs()));
  if (next.isZero()) c = ZERO;
  if (remainder.greaterThan(0)) {
    const add = opening(dq.isNegative() ? remainder.negated() : remainder, remainder.dividedBy(dq.abs()));
    c = c === null || add === null ? null : c.plus(add);
  }
  return { q: next, cost: c };
}

function applyAction(q: Dec, cost: Dec | null, a: ActionEvent): { q: Dec; cost: Dec | null } {
  const delta = dec(a.quantityDelta);
  const next = q.plus(delta);
  if (next.isZero()) return { q: next, cost: ZERO };
  if (cost === null || delta.isZero()) return { q: next, cost };
  if (SPLITS.has(a.actionType) && a.ratio !== null) {
    const held = dec(a.quantityHeld);
    const expected = held.times(a.ratio);
    const kept = held.plus(delta);
    if (expected.isZero() || kept.abs().greaterThanOrEqualTo(expected.abs())) return { q: next, cost };
    return { q: next, cost: cost.times(kept).dividedBy(expected) };
  }
  if (q.isZero()) return { q: next, cost };
  return { q: next, cost: cost.times(next).dividedBy(q) };
}

/** The position's state after each date with events (events in date order, actions first). */
export function replayPosition(events: readonly BookEvent[]): PositionState[] {
  const states: PositionState[] = [];
  let q = ZERO;
  let cost: Dec | null = ZERO;
  for (const e of events) {
    ({ q, cost } = e.kind === 'trade' ? applyTrade(q, cost, e) : applyAction(q, cost, e));
    const last = states[states.length - 1];
    if (last && last.date === e.date) {
      last.quantity = q;
      last.cost = cost;
    } else states.push({ date: e.date, quantity: q, cost });
  }
  return states;
}

/** Orders one position's events: by date, actions before trades, otherwise as given. */
export function orderEvents<E extends BookEvent>(events: readonly E[]): E[] {
  return events
    .map((e, i) => ({ e, i }))
    .sort(
      (a, b) =>
        (a.e.date < b.e.date ? -1 : a.e.date > b.e.date ? 1 : 0) ||
        (a.e.kind === b.e.kind ? 0 : a.e.kind === 'action' ? -1 : 1) ||
        a.i - b.i,
    )
    .map(({ e }) => e);
}
