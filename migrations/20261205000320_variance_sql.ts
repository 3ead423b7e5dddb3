/**
 * variance.quarterly in SQL (issue 9, speed): the helpers that let one INSERT … SELECT reproduce
 * core/domain/attribution.ts attribute() + inCents() to the last digit (test/variance-sql.test.ts
 * proves it on thousands of random holdings against the decimal.js functions):
 * - `dec40(v)`: v rounded to 40 significant digits, half away from zero — what every decimal.js
 *   operation of core/domain/money.ts does to its exact result (precision 40, ROUND_HALF_UP).
 *   numeric's + − × are exact, so `dec40(a * b)` is decimal.js's `a.times(b)`.
 * - `dec40_product(v order by …)`: the running product with dec40 after each step (the split
 *   factor f = Π ratios, as splitFactors() in jobs/processors/holdings.ts multiplies them).
 * - `cents_preserving_sum(parts, total)`: money.ts roundPreservingSum(nonZero parts, 2, total) as
 *   inCents uses it: zero parts stay 0; the others are floored to the cent, then the cents still
 *   missing go one each, cycling, to the parts that lost the most (ties: the earlier part), a
 *   surplus comes off the parts that lost the least.
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    create function dec40(v numeric) returns numeric
    language sql immutable strict parallel safe as $$
      select case when v = 0 then v else round(v, 40 - (
        case when abs(v) >= 1 then length(trunc(abs(v))::text)
             -- 0.00ddd: minus the zeros between the point and the first significant digit
             else length(ltrim(split_part(abs(v)::text, '.', 2), '0')) - length(split_part(abs(v)::text, '.', 2))
        end)) end
    $$;

    create function dec40_mul(a numeric, b numeric) returns numeric
    language sql immutable strict parallel safe as $$ select dec40(a * b) $$;

    create aggregate dec40_product(numeric) (sfunc = dec40_mul, stype = numeric, initcond = '1');

    create function cents_preserving_sum(parts numeric[], total numeric) returns numeric[]
    language sql immutable strict parallel safe as $$
      with p as (
        select u.i, u.v, floor(u.v * 100) * 0.01 as fl
          from unnest(parts) with ordinality as u(v, i)
         where u.v <> 0
      ), r as (
        select p.i, p.fl, row_number() over (order by p.v - p.fl desc, p.i) - 1 as rk,
               count(*) over () as n, (round(total, 2) - sum(p.fl) over ()) * 100 as m
          from p
      ), adj as (
        select r.i, r.fl + 0.01 * case
                 when r.m >= 0 then floor(r.m / r.n) + case when r.rk < mod(r.m, r.n) then 1 else 0 end
                 else -(floor(-r.m / r.n) + case when mod(r.n - 1 - r.rk, r.n) < mod(-r.m, r.n) then 1 else 0 end)
               end as c
          from r
      )
      select array(select coalesce(adj.c, 0)
                     from generate_series(1, cardinality(parts)) g(i)
                     left join adj on adj.i = g.i
                    order by g.i)
    $$;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    drop function cents_preserving_sum(numeric[], numeric);
    drop aggregate dec40_product(numeric);
    drop function dec40_mul(numeric, numeric);
    drop function dec40(numeric);
  `);
}
