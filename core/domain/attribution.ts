/**
 * Variance attribution of one holding between two dates, in the base currency (SPEC §8).
 *
 * MV = Q·P·X (quantity, local price, FX rate to base). The start is first restated on the
 * post-action basis, Q₀* = Q₀·f and P₀* = P₀ / f, with f the product of the split ratios whose
 * ex-date falls inside the period; then, in this order:
 *
 *   corporate-action effect = Q₀*·P₀*·X₀ − Q₀·P₀·X₀ + cash distributions received (in base)
 *   quantity effect         = (Q₁ − Q₀*)·P₀*·X₀
 *   price effect            = Q₁·(P₁ − P₀*)·X₀
 *   FX effect               = Q₁·P₁·(X₁ − X₀)
 *
 * which add up exactly to MV₁ − MV₀ + distributions (see the note in `attribute`). Inputs are decimals (numeric strings from
 * PostgreSQL); nothing here is a binary float. A missing price or rate is never read as zero: the
 * result is a flag naming what is missing.
 */
import { dec, ONE, round, roundPreservingSum, ZERO, type Dec } from './money.ts';

/** Decimals kept of Q₁·P₀*·X₀ (see `attribute`); values up to 1e20 stay exact at 40 digits. */
const T_PLACES = 20;

export interface HoldingPeriod {
  /** Quantity at the start (0 for a position opened in the period). */
  q0: Dec | string;
  /**
   * Price at the start, local currency. For a new position (q0 = 0): the period-start close, or
   * the first trade price where the security had no price yet. Null = not known.
   */
  p0: Dec | string | null;
  /** FX rate local → base at the start (1 for a base-currency security). Null = not known. */
  x0: Dec | string | null;
  /** Quantity at the end (0 after a full exit). */
  q1: Dec | string;
  p1: Dec | string | null;
  x1: Dec | string | null;
  /** Cumulative split factor of the period (new shares per old; 1 without splits). */
  splitFactor?: Dec | string;
  /** Cash distributions received in the period (dividends, coupons), already in base currency. */
  distributions?: Dec | string;
}

export interface Effects {
  corporateAction: Dec;
  quantity: Dec;
  price: Dec;
  fx: Dec;
  /** Sum of the four effects = mv1 − mv0 + distributions. */
  total: Dec;
  mv0: Dec;
  mv1: Dec;
}

export type MissingInput = 'price_start' | 'price_end' | 'fx_start' | 'fx_end';

export type Attribution = { ok: true; effects: Effects } | { ok: false; missing: MissingInput[] };

/** The four effects of one holding over one period, exact (round only for presentation). */
export function attribute(h: HoldingPeriod): Attribution {
  const q0 = dec(h.q0);
  const q1 = dec(h.q1);
  const f = h.splitFactor === undefined ? ONE : dec(h.splitFactor);
  if (!f.greaterThan(0)) throw new RangeError(`splitFactor must be positive, got ${f.toString()}`);
  const distributions = h.distributions === undefined ? ZERO : dec(h.distributions);

  // The start price and rate enter every effect unless the position is zero at both ends (a new
  // position's quantity effect is valued at P₀*·X₀); the end price and rate only when Q₁ ≠ 0.
  const needStart = !q0.isZero() || !q1.isZero();
  const needEnd = !q1.isZero();
  const missing: MissingInput[] = [];
  if (needStart && h.p0 === null) missing.push('price_start');
  if (needEnd && h.p1 === null) missing.push('price_end');
  if (needStart && h.x0 === null) missing.push('fx_start');
  if (needEnd && h.x1 === null) missing.push('fx_end');
  if (missing.length > 0) return { ok: false, missing };

  const p0 = h.p0 === null ? ZERO : dec(h.p0);
  const x0 = h.x0 === null ? ZERO : dec(h.x0);
  const p1 = h.p1 === null ? ZERO : dec(h.p1);
  const x1 = h.x1 === null ? ZERO : dec(h.x1);

  // Q₀*·P₀* = Q₀·f · P₀/f = Q₀·P₀ exactly, so the restatement term is zero by construction and
  // the only division, P₀/f, enters through one product t = Q₁·P₀*·X₀ (fixed at T_PLACES
  // decimals, so every later sum is exact at 40 digits) that the quantity effect adds and the
  // price effect subtracts: the four effects add up exactly even when P₀/f does not terminate
  // (a 3:1 split of 100); each effect is then within 1e-20 of its formula.
  const mv0 = q0.times(p0).times(x0);
  const mv1 = q1.times(p1).times(x1);
  const t = q1.times(p0.dividedBy(f)).times(x0).toDecimalPlaces(T_PLACES);
  const corporateAction = distributions;
  const quantity = t.minus(mv0);
  const price = q1.times(p1).times(x0).minus(t);
  const fx = q1.times(p1).times(x1.minus(x0));
  const total = corporateAction.plus(quantity).plus(price).plus(fx);
  return { ok: true, effects: { corporateAction, quantity, price, fx, total, mv0, mv1 } };
}

/**
 * The effects in cents as the books show them: MV₀ and MV₁ rounded to the cent, and the four
 * effects rounded so that they add up exactly to round(MV₁) − round(MV₀) + round(distributions)
 * (largest remainder: the at most one or two cents that rounding MV₀ and MV₁ separately moves go
 * to the effects whose rounding lost the most, never to an effect that is exactly zero).
 */
export function inCents(e: Effects, distributions: Dec | string = ZERO): Effects {
  const mv0 = round(e.mv0);
  const mv1 = round(e.mv1);
  const total = mv1.minus(mv0).plus(round(dec(distributions)));
  const exact = [e.corporateAction, e.quantity, e.price, e.fx];
  const nonZero = exact.map((v, i) => ({ v, i })).filter(({ v }) => !v.isZero());
  const rounded = roundPreservingSum(
    nonZero.map(({ v }) => v),
    2,
    total,
  );
  const out = exact.map(() => ZERO);
  nonZero.forEach(({ i }, k) => (out[i] = rounded[k]!));
  const [corporateAction, quantity, price, fx] = out as [Dec, Dec, Dec, Dec];
  return { corporateAction, quantity, price, fx, total, mv0, mv1 };
}
