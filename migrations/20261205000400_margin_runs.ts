/**
 * Nightly margin runs (issue 11, items 3 and 4): the house rules table, flagged snapshots and the
 * margin call lifecycle.
 *
 * - `margin_house_rules`: effective-dated rows; a run (and `GET /margin/{clientId}`) uses the row
 *   with the newest `effective_from` on or before its date. Per-security rates stay on
 *   `securities.house_margin_rate` / `marginable`. Concentration: an issuer whose gross market
 *   value (longs and shorts, account currency) is more than `concentration_threshold` × equity AND
 *   more than `concentration_min_value` takes `concentration_rate`; low-priced: a price (security
 *   currency) below `low_price_below` takes `low_price_rate`. A null pair turns that rule off.
 *   Seeded defaults (effective 1900-01-01): concentration over 50% of equity and over 100,000 →
 *   40%; price under 5.00 → 50%. The minimum value keeps a small single-stock account (seed 0's
 *   20,000 position on 10,000 equity) at FINRA's 25%, as seed 0 requires.
 * - `margin_snapshots`: one per (client, run date), replaced by a re-run. A client that cannot be
 *   valued (a position without a close or an FX rate, or several margin accounts) carries `flag`
 *   and `missing` (which positions and why) and no figures: never a value of zero, never a call.
 *   Balances are kept when known (null only for several margin accounts). Figures are rounded to the cent; `call_amount` is the exact shortfall rounded UP to the cent
 *   (what a call asks), present exactly when a call is triggered.
 * - `margin_calls`: at most one outstanding call (OPEN or OVERDUE) per client (partial unique
 *   index); later runs update it (`amount` = current shortfall rounded up, `last_snapshot_id`,
 *   `last_run_date`), a run without shortfall closes it (MET, `met_on`), a run after its
 *   `due_date` still short marks it OVERDUE; a re-run of the night that issued it that no longer
 *   finds a shortfall CANCELS it. `initial_amount` keeps what was first asked.
 */
import type { Knex } from 'knex';

const MONEY = 'numeric(24,2)';
const PRICE = 'numeric(20,8)';
const RATE = 'numeric(6,4)';

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    create table margin_house_rules (
      id integer generated always as identity primary key,
      effective_from date not null unique,
      concentration_threshold ${RATE} check (concentration_threshold > 0),
      concentration_min_value ${MONEY} check (concentration_min_value >= 0),
      concentration_rate ${RATE} check (concentration_rate between 0 and 1),
      low_price_below ${PRICE} check (low_price_below > 0),
      low_price_rate ${RATE} check (low_price_rate between 0 and 1),
      note text,
      created_at timestamptz not null default now(),
      check ((concentration_threshold is null) = (concentration_rate is null)),
      check (concentration_min_value is null or concentration_rate is not null),
      check ((low_price_below is null) = (low_price_rate is null))
    );
    insert into margin_house_rules
      (effective_from, concentration_threshold, concentration_min_value, concentration_rate,
       low_price_below, low_price_rate, note)
    values ('1900-01-01', 0.5, 100000, 0.40, 5, 0.50,
            'defaults: issuer over 50% of equity and over 100,000 → 40%; price under 5.00 → 50%');

    alter table margin_snapshots
      drop constraint margin_snapshots_check,
      add column account_id integer references accounts on delete set null,
      add column currency char(3) check (currency ~ '^[A-Z]{3}$'),
      add column positions integer not null default 0 check (positions >= 0),
      add column stale_positions integer not null default 0 check (stale_positions >= 0),
      add column flag text check (flag <> ''),
      add column missing jsonb,
      add column call_amount ${MONEY} check (call_amount > 0),
      add column house_rules_id integer references margin_house_rules on delete set null,
      add column job_id text,
      add column computed_at timestamptz not null default now(),
      alter column long_market_value drop not null,
      alter column short_market_value drop not null,
      alter column credit_balance drop not null,
      alter column debit_balance drop not null,
      alter column net_equity drop not null,
      alter column margin_requirement drop not null,
      alter column margin_shortfall drop not null,
      alter column margin_call_triggered drop not null,
      add constraint margin_snapshots_valued_or_flagged check (
        (flag is null) = (long_market_value is not null and short_market_value is not null
          and net_equity is not null and margin_requirement is not null
          and margin_shortfall is not null and margin_call_triggered is not null)),
      add constraint margin_snapshots_call_amount check (
        flag is not null or (margin_call_triggered = (call_amount is not null)
          and (margin_shortfall = 0 or margin_call_triggered)));
    create index margin_snapshots_run_date_idx on margin_snapshots (run_date);

    alter table margin_calls
      drop constraint margin_calls_client_id_issued_on_key,
      drop constraint margin_calls_status_check,
      add constraint margin_calls_status_check check (status in ('OPEN', 'MET', 'OVERDUE', 'CANCELLED')),
      add column initial_amount ${MONEY} check (initial_amount > 0),
      add column currency char(3) check (currency ~ '^[A-Z]{3}$'),
      add column last_snapshot_id bigint references margin_snapshots on delete set null,
      add column last_run_date date,
      add column met_on date,
      add column note text,
      add column created_at timestamptz not null default now(),
      add column updated_at timestamptz not null default now();
    update margin_calls set initial_amount = amount, last_run_date = issued_on, last_snapshot_id = snapshot_id,
      met_on = case when status = 'MET' then issued_on end;
    alter table margin_calls
      alter column initial_amount set not null,
      alter column last_run_date set not null,
      add constraint margin_calls_met_on check ((status = 'MET') = (met_on is not null)),
      add constraint margin_calls_dates check (last_run_date >= issued_on and (met_on is null or met_on > issued_on));
    create unique index margin_calls_one_outstanding on margin_calls (client_id) where status in ('OPEN', 'OVERDUE');
    create index margin_calls_client_idx on margin_calls (client_id, id);
    create index margin_calls_status_idx on margin_calls (status, due_date);
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    drop index margin_calls_status_idx;
    drop index margin_calls_client_idx;
    drop index margin_calls_one_outstanding;
    delete from margin_calls where status = 'OVERDUE' or id not in
      (select min(id) from margin_calls group by client_id, issued_on);
    alter table margin_calls
      drop constraint margin_calls_dates,
      drop constraint margin_calls_met_on,
      drop column initial_amount, drop column currency, drop column last_snapshot_id,
      drop column last_run_date, drop column met_on, drop column note, drop column created_at,
      drop column updated_at,
      drop constraint margin_calls_status_check,
      add constraint margin_calls_status_check check (status in ('OPEN', 'MET', 'CANCELLED')),
      add constraint margin_calls_client_id_issued_on_key unique (client_id, issued_on);
    drop index margin_snapshots_run_date_idx;
    delete from margin_snapshots where flag is not null or credit_balance is null or debit_balance is null;
    alter table margin_snapshots
      drop constraint margin_snapshots_call_amount,
      drop constraint margin_snapshots_valued_or_flagged,
      drop column account_id, drop column currency, drop column positions, drop column stale_positions,
      drop column flag, drop column missing, drop column call_amount, drop column house_rules_id,
      drop column job_id, drop column computed_at,
      alter column long_market_value set not null,
      alter column short_market_value set not null,
      alter column credit_balance set not null,
      alter column debit_balance set not null,
      alter column net_equity set not null,
      alter column margin_requirement set not null,
      alter column margin_shortfall set not null,
      alter column margin_call_triggered set not null;
    update margin_snapshots set margin_call_triggered = (margin_shortfall > 0);
    alter table margin_snapshots add constraint margin_snapshots_check check (margin_call_triggered = (margin_shortfall > 0));
    drop table margin_house_rules;
  `);
}
