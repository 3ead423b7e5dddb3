/**
 * JSON bodies whose numbers are written from PostgreSQL `numeric` text, digit for digit, never
 * through a binary float: `cents('1587.5')` leaves as `1587.50` and `exact('0.1234567800')` as
 * `0.12345678`, however many significant digits (a JS number keeps 15-17 of them).
 *
 * A value is wrapped in `ExactNumber`, whose `toJSON()` gives a marker string; `exactJson()`
 * stringifies the body and replaces each marker (a NUL, then the digits, quoted) by the bare
 * digits. The marker cannot come from data: PostgreSQL `text` cannot hold NUL, and the replacement
 * only matches a decimal number after it.
 */
import { dec, round } from '../core/domain/money.ts';
import { JsonText } from './http.ts';

const MARK = '\u0000#';
const NUMBER = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?$/;
// JSON.stringify writes the NUL as the six characters \u0000.
const MARKED = /"\\u0000#(-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?)"/g;

export class ExactNumber {
  readonly text: string;
  constructor(text: string) {
    if (!NUMBER.test(text)) throw new TypeError(`not a JSON number: "${text}"`);
    this.text = text;
  }
  toJSON(): string {
    return MARK + this.text;
  }
}

/**
 * Money: a numeric string rounded to the cent, half away from zero (as SQL round(numeric, 2)),
 * written with exactly two decimals. Null stays null.
 */
export function cents(value: string): ExactNumber;
export function cents(value: string | null): ExactNumber | null;
export function cents(value: string | null): ExactNumber | null {
  if (value === null) return null;
  const r = round(dec(value), 2);
  return new ExactNumber(r.isZero() ? '0.00' : r.toFixed(2));
}

/** Any other numeric (quantity, price, rate, weight) exactly as stored, trailing zeros dropped. */
export function exact(value: string): ExactNumber;
export function exact(value: string | null): ExactNumber | null;
export function exact(value: string | null): ExactNumber | null {
  if (value === null) return null;
  const d = dec(value);
  return new ExactNumber(d.isZero() ? '0' : d.toFixed());
}

/** The body as JSON text with every ExactNumber written as its digits. */
export function exactJson(body: unknown): JsonText {
  return new JsonText(JSON.stringify(body).replace(MARKED, '$1'));
}
