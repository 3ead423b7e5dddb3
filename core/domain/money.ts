/**
 * Decimal money: the one way business rules do arithmetic where a cent can be lost (SPEC §8).
 *
 * PostgreSQL `numeric` arrives from pg as a string and goes back as one; in between, values are
 * `Decimal`s from a decimal.js clone with 40 significant digits (numeric(20,8) holds at most 20,
 * so products of three such values and their sums stay exact; a quotient that does not terminate,
 * e.g. a price divided by a 3:1 split, carries 40 digits, far below a cent). Binary floats never
 * enter: `dec()` refuses JS numbers that are not safe integers, so `0.1 + 0.2` cannot sneak in.
 *
 * Sign tests use comparisons (`greaterThan(0)`): decimal.js's `isPositive()` is true for zero.
 *
 * Rounding to the cent is half away from zero (`ROUND_HALF_UP` in decimal.js), the same rule as
 * PostgreSQL's `round(numeric, 2)`, so figures computed here and in SQL agree to the cent.
 */
import { Decimal } from 'decimal.js';

export const D = Decimal.clone({
  precision: 40,
  rounding: Decimal.ROUND_HALF_UP,
  toExpNeg: -30,
  toExpPos: 40,
});
export type Dec = InstanceType<typeof D>;

const NUMERIC = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;

/** A decimal from a numeric string (as pg returns it), a safe integer, or another decimal. */
export function dec(value: string | number | Dec): Dec {
  if (value instanceof D) return value;
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) {
      throw new TypeError(`dec(): ${value} is not a safe integer; pass decimals as strings`);
    }
    return new D(value);
  }
  const text = value.trim();
  if (!NUMERIC.test(text)) throw new TypeError(`dec(): "${value}" is not a decimal number`);
  return new D(text);
}

/** A nullable numeric column: null stays null. */
export function decOrNull(value: string | null | undefined): Dec | null {
  return value === null || value === undefined ? null : dec(value);
}

export const ZERO = new D(0);
export const ONE = new D(1);

export function sum(values: Iterable<Dec>): Dec {
  let total = ZERO;
  for (const v of values) total = total.plus(v);
  return total;
}

/** Rounded to `places` decimals (2 = cents), half away from zero, as SQL round(numeric, n). */
export function round(value: Dec, places = 2): Dec {
  return value.toDecimalPlaces(places, Decimal.ROUND_HALF_UP);
}

/** The text PostgreSQL stores for numeric(p, places): fixed notation, exactly `places` decimals. */
export function toNumeric(value: Dec, places = 2): string {
  return round(value, places).toFixed(places);
}

export function max(...values: Dec[]): Dec {
  return values.reduce((a, b) => (b.greaterThan(a) ? b : a));
}

/**
 * Rounds parts to `places` decimals so that they add up exactly to `total` (default: their own sum
 * rounded), by largest remainder: each part is truncated toward −∞ to the grid, then the units
 * still missing go, one each, to the parts that lost the most (ties: the earlier part); a surplus
 * (only when `total` is given and lies below the truncated sum) comes off the parts that lost the
 * least. Use it where rounded effects must sum to a rounded change (attribution to the cent).
 */
export function roundPreservingSum(parts: readonly Dec[], places = 2, total?: Dec): Dec[] {
  const unit = new D(1).dividedBy(new D(10).pow(places));
  const target = round(total ?? sum(parts), places);
  const floors = parts.map((p) => p.toDecimalPlaces(places, Decimal.ROUND_FLOOR));
  let missing = target.minus(sum(floors)).dividedBy(unit).round().toNumber();
  const byRemainder = parts
    .map((p, i) => ({ i, remainder: p.minus(floors[i]!) }))
    .sort((a, b) => b.remainder.comparedTo(a.remainder) || a.i - b.i);
  const out = [...floors];
  if (byRemainder.length === 0) return out;
  for (let k = 0; missing > 0; k += 1, missing -= 1) {
    const { i } = byRemainder[k % byRemainder.length]!;
    out[i] = out[i]!.plus(unit);
  }
  for (let k = byRemainder.length - 1; missing < 0; k -= 1, missing += 1) {
    const { i } = byRemainder[((k % byRemainder.length) + byRemainder.length) % byRemainder.length]!;
    out[i] = out[i]!.minus(unit);
  }
  return out;
}
