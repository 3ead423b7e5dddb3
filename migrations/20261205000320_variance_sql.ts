/**
 * variance.quarterly in SQL (issue 9, speed): the helpers that let one INSERT … SELECT reproduce
 * core/domain/attribution.ts attribute() + inCents() to the last digit (test/variance-sql.test.ts
 * proves it on thousands of random holdings against the decimal.js functions):
 * - `dec40(v)`: v rounded to 40 significant digits, half away from zero — what every decimal.js
 *   operation of core/domain/money.ts does to its exact result (precision 40, ROUND_HALF_UP).
 *   numeric's + − × are exact, so `dec40(a * b)` is decimal.js's `a.times(b)`.
 * - `dec40_product(v order by …)`: the running product with dec40 after each step (the split
 *   factor f = Π ratios, as splitFactors() in test/variance-oracle.ts multiplies them).
 * (inCents' largest remainder is plain SQL expressions: centsPreservingSum in
 * core/db/repositories/books.ts.)
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    create function dec40(v numeric) returns numeric
    language plpgsql immutable strict parallel safe as $$
    declare k int;
    begin
      -- At most 40 significant digits already (integer digits + scale <= 40): unchanged.
      if v = 0 or (scale(v) <= 40 and abs(v) < 10::numeric ^ (40 - scale(v))) then return v; end if;
      -- k = the decimal exponent of the first significant digit + 1 (digits before the point, or
      -- minus the zeros between the point and the first significant digit).
      k := case when abs(v) >= 1 then length(trunc(abs(v))::text)
                else length(ltrim(split_part(abs(v)::text, '.', 2), '0')) - length(split_part(abs(v)::text, '.', 2)) end;
      return round(v, 40 - k);
    end $$;

    create function dec40_mul(a numeric, b numeric) returns numeric
    language sql immutable strict parallel safe as $$ select dec40(a * b) $$;

    create aggregate dec40_product(numeric) (sfunc = dec40_mul, stype = numeric, initcond = '1');
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    drop aggregate dec40_product(numeric);
    drop function dec40_mul(numeric, numeric);
    drop function dec40(numeric);
  `);
}
