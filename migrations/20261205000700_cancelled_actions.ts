/**
 * A cancelled corporate action (status CANCELLED, 20261205000100) no longer adjusts price history:
 * `price_adjustments()` — the one source of split and dividend factors for indicators, risk,
 * adj_close and the historical endpoint — reads only ACTIVE actions. Cancelling is an UPDATE of
 * `corporate_actions`, so the existing statement triggers refresh adj_close and notify the series
 * cache as for any other change.
 */
import type { Knex } from 'knex';

function priceAdjustments(statusFilter: string): string {
  return `
    create or replace function price_adjustments(ids int[], as_of date default null)
    returns table (security_id int, valid_from date, valid_to date, split_factor numeric, dividend_factor numeric)
    language sql stable as $$
      with acts as (
        select a.security_id, a.ex_date,
               numeric_product(case when a.action_type in ('STOCK_SPLIT', 'REVERSE_SPLIT') then a.ratio else 1 end)
                 as split,
               numeric_product(coalesce(d.factor, 1)) as dividend
          from corporate_actions a
          left join lateral (
            select 1 - a.amount / p.close as factor
              from bars_1d p
             where a.action_type = 'DIVIDEND' and p.security_id = a.security_id and p.session_date < a.ex_date
             order by p.session_date desc
             limit 1
          ) d on d.factor > 0
         where a.security_id = any(ids)
           and a.action_type in ('STOCK_SPLIT', 'REVERSE_SPLIT', 'DIVIDEND')${statusFilter}
           and a.ex_date <= coalesce(as_of, (select max(b.session_date) from bars_1d b
                                              where b.security_id = a.security_id))
         group by a.security_id, a.ex_date
      )
      select security_id,
             coalesce(lag(ex_date) over (partition by security_id order by ex_date), '-infinity'::date),
             ex_date,
             numeric_product(split) over (partition by security_id order by ex_date desc),
             numeric_product(dividend) over (partition by security_id order by ex_date desc)
        from acts
    $$;`;
}

export async function up(knex: Knex): Promise<void> {
  await knex.raw(priceAdjustments(`\n           and a.status = 'ACTIVE'`));
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(priceAdjustments(''));
}
