/**
 * Corporate actions on a position (SPEC §8, issue 9): the arithmetic of a split with cash in lieu,
 * a cash dividend, a coupon and a maturity, and the entitlement basis (the position at the end of
 * the day before the ex-date) replayed from trades and earlier ledger rows. Pure decimal
 * functions: corporate-actions.apply (jobs/processors/books.ts) calls them with the rows its
 * repository (core/db/repositories/ledger.ts) reads, and writes what they return.
 *
 * Conventions
 * - Quantities are signed (negative = short); numeric(24,8) in the database.
 * - Total cost is signed with the quantity (a short's cost is negative, as the generator's
 *   portfolio books keep it), in the security's currency, average-cost method, fees excluded.
 *   A client position's per-share `cost_basis` is |total cost ÷ quantity|.
 * - A split of ratio r (new per old) keeps whole shares only: the position becomes Q·r rounded
 *   toward zero (a long keeps floor, a short's obligation shrinks to ceil), and the fraction left,
 *   signed like the position, is paid as cash in lieu at the ex-date price: a long receives it, a
 *   short pays it. The fraction's share of total cost leaves with it; total cost of the kept shares
 *   is unchanged, so per-share cost is cost ÷ r.
 * - Cash is rounded to the cent (half away from zero, as SQL round(numeric, 2)); a short's dividend
 *   or coupon is negative (it owes it).
 */
import { D, dec, round, ZERO, type Dec } from './money.ts';

export type ActionType = 'STOCK_SPLIT' | 'REVERSE_SPLIT' | 'DIVIDEND' | 'COUPON' | 'MATURITY';
export type TxnType = 'BUY' | 'SELL' | 'SHORT' | 'COVER';

/** The effect of one action on one position, as the ledger stores it (numeric text). */
export interface ActionEffect {
  quantityDelta: Dec;
  costDelta: Dec;
  cashAmount: Dec;
  cashInLieu: Dec;
}

const QTY_PLACES = 8;
const MONEY_PLACES = 2;

/** BUY and COVER add to the position, SELL and SHORT take from it. */
export function signedQuantity(type: TxnType, quantity: Dec): Dec {
  return type === 'BUY' || type === 'COVER' ? quantity : quantity.negated();
}

/** A position: signed quantity and signed total cost. */
export interface Position {
  quantity: Dec;
  cost: Dec;
}

/** One event of a position's history: a trade, or an applied ledger row (its deltas). */
export type PositionEvent =
  | { kind: 'trade'; date: string; seq: number; type: TxnType; quantity: Dec; price: Dec }
  | { kind: 'ledger'; date: string; seq: number; quantityDelta: Dec; costDelta: Dec };

/**
 * The position after `events` (average cost): a trade that adds to the position (or opens one)
 * adds quantity × price to cost; one that reduces it takes the same fraction of cost off; one that
 * crosses zero leaves the remainder at the trade price. A ledger row adds its deltas. Events are
 * ordered by date, ledger rows before trades of the same date (an action on its ex-date applies
 * before the day's trading), then by `seq`.
 */
export function replayPosition(events: readonly PositionEvent[]): Position {
  const ordered = [...events].sort(
    (a, b) =>
      (a.date < b.date ? -1 : a.date > b.date ? 1 : 0) ||
      (a.kind === b.kind ? 0 : a.kind === 'ledger' ? -1 : 1) ||
      a.seq - b.seq,
  );
  let quantity = ZERO;
  let cost = ZERO;
  for (const e of ordered) {
    if (e.kind === 'ledger') {
      quantity = quantity.plus(e.quantityDelta);
      cost = cost.plus(e.costDelta);
      continue;
    }
    const t = signedQuantity(e.type, e.quantity);
    if (quantity.isZero() || t.isNegative() === quantity.isNegative()) {
      quantity = quantity.plus(t);
      cost = cost.plus(t.times(e.price));
    } else if (t.abs().lessThanOrEqualTo(quantity.abs())) {
      const next = quantity.plus(t);
      cost = cost.times(next).dividedBy(quantity);
      quantity = next;
    } else {
      quantity = quantity.plus(t);
      cost = quantity.times(e.price);
    }
  }
  return { quantity, cost: round(cost, MONEY_PLACES) };
}

/** Whole shares a split of `ratio` leaves (toward zero) and the signed fraction paid in lieu. */
export function splitShares(quantity: Dec, ratio: Dec): { kept: Dec; fraction: Dec } {
  const exact = quantity.times(ratio);
  const kept = exact.toDecimalPlaces(0, D.ROUND_DOWN);
  return { kept, fraction: exact.minus(kept) };
}

/** True when a split of `ratio` leaves a fraction on `quantity` (a price is then needed). */
export function splitNeedsPrice(quantity: Dec, ratio: Dec): boolean {
  return !splitShares(quantity, ratio).fraction.isZero();
}

/**
 * A split or reverse split of `ratio` on a position (quantity, total cost). `price` is the
 * ex-date price (post-split basis), needed only when a fraction is left.
 */
export function splitEffect(position: Position, ratio: Dec, price: Dec | null): ActionEffect {
  if (!ratio.greaterThan(0)) throw new RangeError(`split ratio must be > 0, got ${ratio.toString()}`);
  const { quantity, cost } = position;
  const { kept, fraction } = splitShares(quantity, ratio);
  const quantityDelta = kept.minus(quantity);
  if (fraction.isZero()) return { quantityDelta, costDelta: ZERO, cashAmount: ZERO, cashInLieu: ZERO };
  if (price === null) throw new RangeError('a split leaving a fraction needs the ex-date price');
  const exact = quantity.times(ratio);
  const costDelta = round(cost.times(fraction).dividedBy(exact), MONEY_PLACES).negated();
  const cashInLieu = round(fraction.times(price), MONEY_PLACES);
  return { quantityDelta, costDelta: normalize(costDelta), cashAmount: cashInLieu, cashInLieu };
}

/** A cash dividend: shares held at the end of the day before the ex-date × amount per share. */
export function dividendEffect(quantityHeld: Dec, amount: Dec): ActionEffect {
  return cashOnly(round(quantityHeld.times(amount), MONEY_PLACES));
}

/** A coupon: units held × face value × amount per unit of face (rate ÷ frequency). */
export function couponEffect(quantityHeld: Dec, faceValue: Dec, amount: Dec): ActionEffect {
  return cashOnly(round(quantityHeld.times(faceValue).times(amount), MONEY_PLACES));
}

/**
 * A maturity: pays units × face × amount (1.0 = par) and closes the position (quantity and all of
 * its cost leave). The final coupon is an action of its own.
 */
export function maturityEffect(position: Position, faceValue: Dec, amount: Dec): ActionEffect {
  return {
    quantityDelta: normalize(position.quantity.negated()),
    costDelta: normalize(position.cost.negated()),
    cashAmount: round(position.quantity.times(faceValue).times(amount), MONEY_PLACES),
    cashInLieu: ZERO,
  };
}

export interface ActionTerms {
  actionType: ActionType;
  ratio: Dec | null;
  amount: Dec | null;
  faceValue: Dec | null;
}

/**
 * The effect of an action on a position held at the end of the day before its ex-date. Throws a
 * RangeError naming what is missing (a ratio, an amount, a face value, the price for cash in lieu).
 */
export function actionEffect(terms: ActionTerms, position: Position, price: Dec | null): ActionEffect {
  const need = (v: Dec | null, what: string): Dec => {
    if (v === null) throw new RangeError(`${terms.actionType} without ${what}`);
    return v;
  };
  switch (terms.actionType) {
    case 'STOCK_SPLIT':
    case 'REVERSE_SPLIT':
      return splitEffect(position, need(terms.ratio, 'a ratio'), price);
    case 'DIVIDEND':
      return dividendEffect(position.quantity, need(terms.amount, 'an amount'));
    case 'COUPON':
      return couponEffect(
        position.quantity,
        need(terms.faceValue, 'a face value'),
        need(terms.amount, 'an amount'),
      );
    case 'MATURITY':
      return maturityEffect(position, need(terms.faceValue, 'a face value'), terms.amount ?? dec(1));
  }
}

/**
 * A client position after a ledger row's deltas: new quantity and per-share cost basis (8 places),
 * or null when the position closes. `current` is the positions row (null: none).
 */
export function positionAfter(
  current: { quantity: Dec; costBasis: Dec } | null,
  quantityDelta: Dec,
  costDelta: Dec,
): { quantity: Dec; costBasis: Dec } | null {
  const quantity = (current?.quantity ?? ZERO).plus(quantityDelta);
  if (quantity.isZero()) return null;
  const total = (current ? current.quantity.times(current.costBasis) : ZERO).plus(costDelta);
  const costBasis = total.dividedBy(quantity).abs().toDecimalPlaces(QTY_PLACES, D.ROUND_HALF_UP);
  return { quantity: quantity.toDecimalPlaces(QTY_PLACES, D.ROUND_HALF_UP), costBasis };
}

/** Cash converted at `rate` (units of the target currency per unit of the source), to the cent. */
export function convertCash(amount: Dec, rate: Dec): Dec {
  return normalize(round(amount.times(rate), MONEY_PLACES));
}

function cashOnly(cash: Dec): ActionEffect {
  return { quantityDelta: ZERO, costDelta: ZERO, cashAmount: normalize(cash), cashInLieu: ZERO };
}

/** −0 → 0, so numeric text never reads "-0.00". */
function normalize(v: Dec): Dec {
  return v.isZero() ? ZERO : v;
}
