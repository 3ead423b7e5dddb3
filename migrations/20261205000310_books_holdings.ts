/**
 * Daily books (issue 9, holdings.snapshot):
 * - `holdings.cost_basis` and `accrued_interest` may be null: a cost whose trade-date FX rate is
 *   unknown, or an accrual that cannot be converted to the base currency (no rate that day), is
 *   stored as unknown, never as zero;
 * - `last_coupon_date(maturity, frequency, on_date)`: the coupon date on or before `on_date` of a
 *   bond paying `frequency` times a year, stepping back from its maturity by 12/frequency months
 *   (day of month capped at 28, the generator's schedule); null on or after maturity. Accrued
 *   interest = quantity × face × coupon_rate × (on_date − last coupon) / 365.
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    alter table holdings
      alter column cost_basis drop not null,
      alter column accrued_interest drop not null;

    -- One expression (inlined by the planner): k = the smallest k >= 1 with c_k <= on_date, where
    -- c_k = maturity's month - k * 12/frequency months, on day least(28, maturity's day).
    create function last_coupon_date(maturity date, frequency integer, on_date date) returns date
    language sql immutable strict parallel safe as $$
      select case when on_date < maturity then
        (date_trunc('month', maturity) - make_interval(months => (12 / frequency) * greatest(1,
           ceil(((extract(year from maturity)::int * 12 + extract(month from maturity)::int)
                 - (extract(year from on_date)::int * 12 + extract(month from on_date)::int))
                / (12 / frequency)::numeric)::int
           + case when ((extract(year from maturity)::int * 12 + extract(month from maturity)::int)
                        - (extract(year from on_date)::int * 12 + extract(month from on_date)::int)) % (12 / frequency) = 0
                       and least(28, extract(day from maturity)::int) > extract(day from on_date)::int
                  then 1 else 0 end)))::date
        + (least(28, extract(day from maturity)::int) - 1)
      end
    $$;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    drop function last_coupon_date(date, integer, date);
    update holdings set cost_basis = 0 where cost_basis is null;
    update holdings set accrued_interest = 0 where accrued_interest is null;
    alter table holdings
      alter column cost_basis set not null,
      alter column accrued_interest set not null;
  `);
}
