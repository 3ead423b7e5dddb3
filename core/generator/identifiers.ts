/** Security identifiers with valid check digits (CUSIP, ISIN, SEDOL) and ISO 17442 LEIs. */

function charValue(ch: string): number {
  const c = ch.charCodeAt(0);
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 65 && c <= 90) return c - 55;
  throw new Error(`identifier character out of range: ${ch}`);
}

/** CUSIP check digit over 8 characters (modulus 10 "double-add-double"). */
export function cusipCheckDigit(base8: string): string {
  let sum = 0;
  for (let i = 0; i < 8; i++) {
    let v = charValue(base8[i] ?? '0');
    if (i % 2 === 1) v *= 2;
    sum += Math.floor(v / 10) + (v % 10);
  }
  return String((10 - (sum % 10)) % 10);
}

/** ISIN check digit: letters expanded to two digits, then Luhn. */
export function isinCheckDigit(base11: string): string {
  let digits = '';
  for (const ch of base11) digits += String(charValue(ch));
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = Number(digits[digits.length - 1 - i]);
    if (i % 2 === 0) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return String((10 - (sum % 10)) % 10);
}

const SEDOL_WEIGHTS = [1, 3, 1, 7, 3, 9];

export function sedolCheckDigit(base6: string): string {
  let sum = 0;
  for (let i = 0; i < 6; i++) sum += charValue(base6[i] ?? '0') * (SEDOL_WEIGHTS[i] ?? 0);
  return String((10 - (sum % 10)) % 10);
}

/** ISO 17442: two check digits so that the 20 characters, read as ISO 7064 MOD 97-10, give 1. */
export function leiWithCheck(base18: string): string {
  let num = '';
  for (const ch of base18) num += String(charValue(ch));
  const check = 98n - ((BigInt(num) * 100n) % 97n);
  return base18 + String(check).padStart(2, '0');
}

const ALNUM = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ';
const SEDOL_CHARS = '0123456789BCDFGHJKLMNPQRSTVWXYZ';

/** Fixed-width base-N code of a non-negative integer. */
export function encode(n: number, width: number, alphabet = ALNUM): string {
  let s = '';
  let v = n;
  for (let i = 0; i < width; i++) {
    s = (alphabet[v % alphabet.length] ?? '0') + s;
    v = Math.floor(v / alphabet.length);
  }
  return s;
}

export function sedolFor(n: number): string {
  const base = 'B' + encode(n, 5, SEDOL_CHARS);
  return base + sedolCheckDigit(base);
}
