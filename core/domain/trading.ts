/**
 * Paper trading's rules (issue 11, seed 3): pure decimal functions of a position, an order and
 * the account's margin, used by the order and what-if endpoints (core/trading.ts) and by the
 * tests that replay the books.
 *
 * - A position is `quantity` (negative = short) and `costBasis` per share: the average cost of a
 *   long, the average proceeds of a short, in the security's currency, kept to 8 decimals (the
 *   column's scale; half away from zero) so a replay computes exactly what is stored.
 * - BUY opens or adds to a long (average cost); SELL reduces a long at its average cost and
 *   realizes quantity × (price − cost); SHORT opens or adds to a short (average proceeds); COVER
 *   reduces a short and realizes quantity × (proceeds − price). Realized P/L is rounded to the
 *   cent in the security's currency. One order never flips a position: SELL more than the long
 *   (or any SELL without one), COVER more than the short, BUY while short or SHORT while long are
 *   refused (close first, then open), so every figure has one meaning.
 * - Cash: the order's notional in the account currency is round(quantity × price × FX, 2); BUY and
 *   COVER pay it, SELL and SHORT receive it (short proceeds are a credit). `cashMove` mirrors SQL
 *   `account_cash_move()` (a credit pays down the loan first).
 * - Regulation T (SPEC §8): an opening order (BUY, SHORT) of value V is accepted when equity after
 *   it covers max(maintenance requirement after it, maintenance requirement before it + 50% of V):
 *   what the account already holds keeps its FINRA/house maintenance requirement and the new
 *   purchase or short sale needs 50% initial margin, never less than its own maintenance (a
 *   non-marginable purchase needs 100%, a short under $5 its per-share minimum). Otherwise the
 *   deposit needed is that requirement minus equity, rounded up to the cent (a deposit raises
 *   equity by exactly its amount). Equal is accepted. Closing orders (SELL, COVER) only lower
 *   requirements and are not checked.
 * - Withdrawals are allowed up to the Reg T excess: equity − max(maintenance requirement,
 *   50% × (long MV + short MV)), rounded down to the cent and never negative; a margin account may
 *   borrow (raise its loan) to pay one within that limit.
 */
import { Decimal } from 'decimal.js';
import { regTInitialRequirement, type AccountMargin } from './margin.ts';
import { dec, max, round, ZERO, type Dec } from './money.ts';

export const SIDES = ['BUY', 'SELL', 'SHORT', 'COVER'] as const;
export type Side = (typeof SIDES)[number];
export const ORDER_TYPES = ['MARKET', 'LIMIT'] as const;
export type OrderType = (typeof ORDER_TYPES)[number];

/** Decimals of a stored per-share cost basis (positions.cost_basis numeric(20,8)). */
export const COST_PLACES = 8;

export interface Holding {
  /** Negative = short; zero = no position. */
  quantity: Dec;
  /** Per share, security currency: average cost (long) or average proceeds (short). */
  costBasis: Dec;
}

export const FLAT: Holding = { quantity: ZERO, costBasis: ZERO };

export type FillRefusal =
  | 'no_long_position'
  | 'insufficient_long'
  | 'no_short_position'
  | 'insufficient_short'
  | 'short_position_open'
  | 'long_position_open';

export type FillResult =
  { ok: true; holding: Holding; realizedPnl: Dec | null } | { ok: false; code: FillRefusal; message: string };

/** BUY and SHORT open or add; SELL and COVER close or reduce. */
export function isOpening(side: Side): boolean {
  return side === 'BUY' || side === 'SHORT';
}

const average = (heldShares: Dec, heldCost: Dec, shares: Dec, price: Dec): Dec =>
  round(heldShares.times(heldCost).plus(shares.times(price)).dividedBy(heldShares.plus(shares)), COST_PLACES);

/** The position after one fill of `quantity` (> 0) shares at `price` (> 0). */
export function applyFill(
  held: Holding,
  side: Side,
  quantity: Dec | string,
  price: Dec | string,
): FillResult {
  const n = dec(quantity);
  const p = dec(price);
  if (!n.greaterThan(0) || !p.greaterThan(0))
    throw new RangeError('applyFill: quantity and price must be > 0');
  const q = held.quantity;
  switch (side) {
    case 'BUY':
      if (q.lessThan(0))
        return {
          ok: false,
          code: 'short_position_open',
          message: `a short of ${q.abs()} is open: COVER it first`,
        };
      return {
        ok: true,
        holding: { quantity: q.plus(n), costBasis: q.isZero() ? p : average(q, held.costBasis, n, p) },
        realizedPnl: null,
      };
    case 'SHORT':
      if (q.greaterThan(0))
        return { ok: false, code: 'long_position_open', message: `a long of ${q} is open: SELL it first` };
      return {
        ok: true,
        holding: { quantity: q.minus(n), costBasis: q.isZero() ? p : average(q.abs(), held.costBasis, n, p) },
        realizedPnl: null,
      };
    case 'SELL':
      if (!q.greaterThan(0))
        return { ok: false, code: 'no_long_position', message: 'no long position to sell' };
      if (n.greaterThan(q))
        return { ok: false, code: 'insufficient_long', message: `sells ${n} but only ${q} are held long` };
      return {
        ok: true,
        holding: { quantity: q.minus(n), costBasis: q.equals(n) ? ZERO : held.costBasis },
        realizedPnl: round(n.times(p.minus(held.costBasis)), 2),
      };
    case 'COVER':
      if (!q.lessThan(0))
        return { ok: false, code: 'no_short_position', message: 'no short position to cover' };
      if (n.greaterThan(q.abs()))
        return {
          ok: false,
          code: 'insufficient_short',
          message: `covers ${n} but only ${q.abs()} are short`,
        };
      return {
        ok: true,
        holding: { quantity: q.plus(n), costBasis: q.abs().equals(n) ? ZERO : held.costBasis },
        realizedPnl: round(n.times(held.costBasis.minus(p)), 2),
      };
  }
}

export interface Fill {
  side: Side;
  quantity: Dec | string;
  price: Dec | string;
}

/** The position a sequence of fills leaves, or the first refusal (a replay of the trades). */
export function replayFills(fills: readonly Fill[]): FillResult {
  let holding = FLAT;
  let realized: Dec | null = null;
  for (const f of fills) {
    const r = applyFill(holding, f.side, f.quantity, f.price);
    if (!r.ok) return r;
    holding = r.holding;
    realized = r.realizedPnl;
  }
  return { ok: true, holding, realizedPnl: realized };
}

/** A marketable limit: BUY/COVER when the latest price is at or below the limit, SELL/SHORT at or above. */
export function isMarketable(side: Side, latest: Dec | string, limit: Dec | string): boolean {
  const l = dec(latest);
  return side === 'BUY' || side === 'COVER' ? l.lessThanOrEqualTo(limit) : l.greaterThanOrEqualTo(limit);
}

/** The order's value in the account currency, to the cent: round(quantity × price × FX, 2). */
export function notional(quantity: Dec | string, price: Dec | string, fx: Dec | string): Dec {
  return round(dec(quantity).times(price).times(fx), 2);
}

/** The signed cash an order moves: BUY and COVER pay, SELL and SHORT receive. */
export function cashDelta(side: Side, value: Dec): Dec {
  return side === 'BUY' || side === 'COVER' ? value.negated() : value;
}

/** `account_cash_move()` in decimal: net = cash − loan + amount; cash = max(net, 0), loan = max(−net, 0). */
export function cashMove(
  balances: { cash: Dec | string; loan: Dec | string },
  amount: Dec | string,
): { cash: Dec; loan: Dec } {
  const net = dec(balances.cash).minus(balances.loan).plus(amount);
  return { cash: max(net, ZERO), loan: max(net.negated(), ZERO) };
}

export interface RegTCheck {
  ok: boolean;
  /** The equity the account needs after the order. */
  required: Dec;
  equityAfter: Dec;
  /** Zero when ok; else required − equity rounded up to the cent. */
  depositRequired: Dec;
}

/** Regulation T for an opening order of `orderValue` (account currency); see the module doc. */
export function regTCheck(opts: { before: AccountMargin; after: AccountMargin; orderValue: Dec }): RegTCheck {
  const required = max(
    opts.after.requirement,
    opts.before.requirement.plus(regTInitialRequirement(opts.orderValue)),
  );
  const gap = required.minus(opts.after.equity);
  const depositRequired = gap.greaterThan(0) ? gap.toDecimalPlaces(2, Decimal.ROUND_UP) : ZERO;
  return { ok: !gap.greaterThan(0), required, equityAfter: opts.after.equity, depositRequired };
}

/** The most a client may withdraw (see the module doc): never negative, rounded down to the cent. */
export function withdrawable(margin: AccountMargin): Dec {
  const held = regTInitialRequirement(margin.longMarketValue.plus(margin.shortMarketValue));
  const excess = margin.equity.minus(max(margin.requirement, held));
  return excess.greaterThan(0) ? excess.toDecimalPlaces(2, Decimal.ROUND_DOWN) : ZERO;
}

/** Unrealized P/L of a position at `price`, security currency: quantity × (price − cost basis). */
export function unrealizedPnl(quantity: Dec | string, costBasis: Dec | string, price: Dec | string): Dec {
  return dec(quantity).times(dec(price).minus(costBasis));
}
