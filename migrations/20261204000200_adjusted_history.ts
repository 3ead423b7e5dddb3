/**
 * Adjusted history (SPEC §3 "daily also adjusted close", §8 "history before an ex-date is
 * back-adjusted by the cumulative factor"): the one definition of the cumulative adjustment
 * factors, and `bars_1d.adj_close` kept from it by the database itself.
 *
 * - `numeric_product(numeric)`: a product aggregate (numeric has none, and exp(sum(ln(x))) is not
 *   exact), usable as a window function.
 * - `price_adjustments(ids, as_of)`: per security, one row per ex-date of a split or dividend
 *   (several actions on one ex-date are one row) with the range of session dates it covers,
 *   [valid_from, valid_to) = [the previous ex-date, this ex-date), and the cumulative factors of
 *   every action from this ex-date on:
 *     split_factor    = Π ratio (new shares per old): prices ÷ it, volumes × it;
 *     dividend_factor = Π (1 − amount ÷ the close of the last bar before the ex-date) (the CRSP
 *                       and Yahoo convention), both on the as-traded basis of that day.
 *   A bar on or after the newest ex-date has no row (factors 1). Actions count when their ex-date
 *   is on or before `as_of`; null means each security's newest daily bar, so the newest bar is
 *   never adjusted (an announced split changes nothing until the security trades on the new
 *   basis) and stored results depend on data alone, not on the clock. A dividend without an
 *   earlier bar, or not below that bar's close, adjusts nothing.
 *   Readers: split-adjusted bars for indicators and the API, split-adjusted closes for risk, and
 *   adj_close below (core/db/repositories/adjustments.ts holds the joins).
 * - `refresh_adj_close(ids, lo, hi)`: adj_close = round(close × dividend_factor ÷ split_factor, 8)
 *   for each security's bars with session dates in [lo, hi], writing only rows that change.
 * - Triggers keep it current whoever writes: statement-level, with transition tables, so a bulk
 *   load costs one set-based refresh per statement. A write of bars refreshes those bars (from the
 *   transition table, no read of bars_1d), and all earlier ones when the write can change an
 *   action's factor or whether it counts: an action with an ex-date after the last bar before the
 *   first written date and no bar between the last written date and it (the written bars then
 *   hold its "last bar before the ex-date", or move the newest bar across it). A write of actions
 *   refreshes the security's bars before the latest ex-date written. The refresh's own update of
 *   adj_close does not recurse (pg_trigger_depth).
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    create aggregate numeric_product(numeric) (sfunc = numeric_mul, stype = numeric);

    create function price_adjustments(ids int[], as_of date default null)
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
           and a.action_type in ('STOCK_SPLIT', 'REVERSE_SPLIT', 'DIVIDEND')
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
    $$;

    create function refresh_adj_close(ids int[], lo date[], hi date[]) returns integer
    language sql volatile as $$
      with f as (select * from price_adjustments(ids)),
      target as (
        select b.security_id, b.session_date,
               nullif(round(b.close * coalesce(f.dividend_factor, 1) / coalesce(f.split_factor, 1), 8), 0) as adj
          from unnest(ids, lo, hi) as r(security_id, lo, hi)
          join bars_1d b on b.security_id = r.security_id and b.session_date >= r.lo and b.session_date <= r.hi
          left join f on f.security_id = b.security_id and b.session_date >= f.valid_from
                     and b.session_date < f.valid_to
      ), up as (
        update bars_1d b set adj_close = t.adj
          from target t
         where b.security_id = t.security_id and b.session_date = t.session_date
           and b.adj_close is distinct from t.adj
        returning 1
      )
      select count(*)::int from up
    $$;

    -- Bars written: refresh them, and everything before when an action may depend on them.
    create function bars_1d_refresh_adj_close() returns trigger language plpgsql as $$
    declare
      deep_ids int[];
      deep_his date[];
      shallow_ids int[];
    begin
      if pg_trigger_depth() > 1 then
        return null;
      end if;
      with written as (
        select security_id, min(session_date) as lo, max(session_date) as hi
          from changed_bars group by security_id
      ), classified as (
        select w.security_id, w.hi,
               exists (
                 select 1 from corporate_actions a
                  where a.security_id = w.security_id
                    and a.action_type in ('STOCK_SPLIT', 'REVERSE_SPLIT', 'DIVIDEND')
                    and a.ex_date > coalesce((select max(b.session_date) from bars_1d b
                                               where b.security_id = w.security_id and b.session_date < w.lo),
                                             '-infinity'::date)
                    and not exists (select 1 from bars_1d b
                                     where b.security_id = w.security_id
                                       and b.session_date > w.hi and b.session_date < a.ex_date)
               ) as deep
          from written w
      )
      select array_agg(security_id) filter (where deep), array_agg(hi) filter (where deep),
             array_agg(security_id) filter (where not deep)
        into deep_ids, deep_his, shallow_ids
        from classified;
      if deep_ids is not null then
        perform refresh_adj_close(deep_ids, array_fill('-infinity'::date, array[cardinality(deep_ids)]), deep_his);
      end if;
      -- Otherwise only the written rows can change, and they are at hand (no read of bars_1d).
      if shallow_ids is not null and tg_op <> 'DELETE' then
        with f as (select * from price_adjustments(shallow_ids)),
        t as (
          select c.security_id, c.session_date, c.adj_close as old,
                 nullif(round(c.close * coalesce(f.dividend_factor, 1) / coalesce(f.split_factor, 1), 8), 0) as adj
            from changed_bars c
            left join f on f.security_id = c.security_id and c.session_date >= f.valid_from
                       and c.session_date < f.valid_to
           where c.security_id = any(shallow_ids)
        )
        update bars_1d b set adj_close = t.adj
          from t
         where b.security_id = t.security_id and b.session_date = t.session_date
           and t.old is distinct from t.adj;
      end if;
      return null;
    end $$;

    create trigger bars_1d_adj_close_insert after insert on bars_1d
      referencing new table as changed_bars for each statement execute function bars_1d_refresh_adj_close();
    create trigger bars_1d_adj_close_update after update on bars_1d
      referencing new table as changed_bars for each statement execute function bars_1d_refresh_adj_close();
    create trigger bars_1d_adj_close_delete after delete on bars_1d
      referencing old table as changed_bars for each statement execute function bars_1d_refresh_adj_close();

    -- Actions written: refresh the security's bars before the latest ex-date written.
    create function corporate_actions_refresh_adj_close() returns trigger language plpgsql as $$
    declare
      ids int[];
      his date[];
    begin
      select array_agg(security_id), array_agg(hi - 1) into ids, his
        from (select security_id, max(ex_date) as hi from changed_actions group by security_id) c;
      if ids is not null then
        perform refresh_adj_close(ids, array_fill('-infinity'::date, array[cardinality(ids)]), his);
      end if;
      return null;
    end $$;

    create trigger corporate_actions_adj_close_insert after insert on corporate_actions
      referencing new table as changed_actions for each statement
      execute function corporate_actions_refresh_adj_close();
    create trigger corporate_actions_adj_close_update_new after update on corporate_actions
      referencing new table as changed_actions for each statement
      execute function corporate_actions_refresh_adj_close();
    create trigger corporate_actions_adj_close_update_old after update on corporate_actions
      referencing old table as changed_actions for each statement
      execute function corporate_actions_refresh_adj_close();
    create trigger corporate_actions_adj_close_delete after delete on corporate_actions
      referencing old table as changed_actions for each statement
      execute function corporate_actions_refresh_adj_close();
  `);
  // Bars already stored: every one gets its adjusted close (a provider's own value is replaced, so
  // one rule holds for every row).
  await knex.raw(`
    select refresh_adj_close(array_agg(id), array_agg('-infinity'::date), array_agg('infinity'::date))
      from (select distinct security_id as id from bars_1d) s;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    drop trigger corporate_actions_adj_close_delete on corporate_actions;
    drop trigger corporate_actions_adj_close_update_old on corporate_actions;
    drop trigger corporate_actions_adj_close_update_new on corporate_actions;
    drop trigger corporate_actions_adj_close_insert on corporate_actions;
    drop function corporate_actions_refresh_adj_close();
    drop trigger bars_1d_adj_close_delete on bars_1d;
    drop trigger bars_1d_adj_close_update on bars_1d;
    drop trigger bars_1d_adj_close_insert on bars_1d;
    drop function bars_1d_refresh_adj_close();
    drop function refresh_adj_close(int[], date[], date[]);
    drop function price_adjustments(int[], date);
    drop aggregate numeric_product(numeric);
  `);
}
