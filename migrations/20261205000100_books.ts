/**
 * Portfolio accounting (issue 9): the corporate-action ledger, corrected and cancelled actions,
 * holdings that can carry a missing price or rate as a flag, and variance rows for any period.
 *
 * - `corporate_actions.revision` counts corrections of one action (same `action_id`, a new ratio,
 *   amount or date); `status` CANCELLED is a provider's withdrawal. The apply job compares the
 *   revision it applied (in the ledger) with the current one.
 * - `corporate_action_ledger`: one row per (action, revision, APPLY|REVERSE, portfolio or
 *   account), written in the same transaction as the effect, so the unique key is the
 *   exactly-once guard: a second worker, a retry or a resumed run meets the row and skips. A
 *   correction writes a REVERSE row for the old revision (the exact negation of its APPLY) and an
 *   APPLY row for the new one; nothing in the ledger is ever updated except `paid_at`.
 *   `quantity_delta` is the change to the position on the ex-date (a split: Q·(r − 1) less any
 *   fraction paid in lieu; a maturity: −Q); `cash_amount` the cash in `currency` (a dividend
 *   entitlement, negative for a short; a coupon; maturity principal; cash in lieu), booked on the
 *   ex-date and paid on `payment_date`; `paid_at` marks the payment step done (its own
 *   exactly-once guard: `update … where paid_at is null`).
 * - `account_cash_move(account, amount)`: the one way cash moves in a client account. Credit and
 *   debit balances are both non-negative, so a credit first pays down the loan and a debit first
 *   spends cash: net = cash − loan + amount; cash = max(net, 0), loan = max(−net, 0). Dividends,
 *   coupons, cash in lieu, orders, deposits and withdrawals all go through it.
 * - Holdings: a holding whose price or FX rate is missing is stored with `flag` naming why and
 *   null values, never valued at zero.
 * - Variance rows: `period_label` is `2025Q1`, `2025-03` or `2025-01-01/2025-03-31`;
 *   `distributions` is the cash received in the period (in the corporate-action effect, base
 *   currency); a row missing a price or rate carries `flag` and null money columns.
 */
import type { Knex } from 'knex';

const MONEY = 'numeric(24,2)';
const QTY = 'numeric(24,8)';
const PRICE = 'numeric(20,8)';

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    alter table corporate_actions
      add column revision integer not null default 1 check (revision >= 1),
      add column status text not null default 'ACTIVE' check (status in ('ACTIVE', 'CANCELLED')),
      add column updated_at timestamptz not null default now();

    create table corporate_action_ledger (
      id bigint generated always as identity primary key,
      action_id bigint not null references corporate_actions,
      action_revision integer not null check (action_revision >= 1),
      portfolio_id text references portfolios,
      account_id integer references accounts on delete cascade,
      entry text not null check (entry in ('APPLY', 'REVERSE')),
      -- The terms as applied (a copy: the action row may be corrected later).
      action_type text not null check (action_type in ('STOCK_SPLIT', 'REVERSE_SPLIT', 'DIVIDEND', 'COUPON', 'MATURITY')),
      ex_date date not null,
      payment_date date,
      ratio numeric(20,10),
      amount ${PRICE},
      currency char(3) not null check (currency ~ '^[A-Z]{3}$'),
      -- Shares (or bonds) held at the end of the day before the ex-date: the entitlement basis.
      quantity_held ${QTY} not null,
      quantity_delta ${QTY} not null default 0,
      -- Total cost moved by the action (cash in lieu takes the fraction's cost; a maturity all of it).
      cost_delta ${MONEY} not null default 0,
      cash_amount ${MONEY} not null default 0,
      -- The part of cash_amount that is cash in lieu of a fractional share (already in cash_amount).
      cash_in_lieu ${MONEY} not null default 0,
      paid_at timestamptz,
      applied_at timestamptz not null default now(),
      job_id text,
      check (num_nonnulls(portfolio_id, account_id) = 1),
      unique nulls not distinct (action_id, action_revision, entry, portfolio_id, account_id)
    );
    create index corporate_action_ledger_portfolio_idx on corporate_action_ledger (portfolio_id, ex_date);
    create index corporate_action_ledger_account_idx on corporate_action_ledger (account_id, ex_date);
    create index corporate_action_ledger_unpaid_idx on corporate_action_ledger (payment_date) where paid_at is null;

    create function account_cash_move(acct integer, amount numeric) returns accounts
    language sql as $$
      update accounts
         set cash_balance = greatest(cash_balance - loan_balance + amount, 0),
             loan_balance = greatest(loan_balance - cash_balance - amount, 0),
             updated_at = now()
       where id = acct
      returning *
    $$;

    alter table holdings
      alter column local_price drop not null,
      alter column fx_rate drop not null,
      alter column market_value drop not null,
      alter column weight drop not null,
      add column flag text check (flag <> ''),
      add column computed_at timestamptz not null default now(),
      add constraint holdings_valued_or_flagged
        check ((flag is null) = (local_price is not null and fx_rate is not null and market_value is not null));

    alter table variance_rows rename column quarter_label to period_label;
    alter table variance_rows drop constraint variance_rows_quarter_label_check;
    alter table variance_rows
      add constraint variance_rows_period_label_check
        check (period_label ~ '^([0-9]{4}Q[1-4]|[0-9]{4}-[0-9]{2}|[0-9]{4}-[0-9]{2}-[0-9]{2}/[0-9]{4}-[0-9]{2}-[0-9]{2})$'),
      add column distributions ${MONEY} not null default 0,
      add column flag text check (flag <> ''),
      alter column mv_start drop not null,
      alter column mv_end drop not null,
      alter column price_effect drop not null,
      alter column qty_effect drop not null,
      alter column fx_effect drop not null,
      alter column corp_action_effect drop not null,
      alter column total_pnl drop not null,
      add constraint variance_rows_valued_or_flagged check ((flag is null) = (total_pnl is not null));
    alter index variance_rows_quarter_idx rename to variance_rows_period_idx;
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    delete from variance_rows where flag is not null;
    alter table variance_rows
      drop constraint variance_rows_valued_or_flagged,
      drop column flag,
      drop column distributions,
      drop constraint variance_rows_period_label_check;
    delete from variance_rows where period_label !~ '^[0-9]{4}Q[1-4]$';
    alter table variance_rows rename column period_label to quarter_label;
    alter table variance_rows add constraint variance_rows_quarter_label_check check (quarter_label ~ '^[0-9]{4}Q[1-4]$');
    alter index variance_rows_period_idx rename to variance_rows_quarter_idx;
    alter table variance_rows
      alter column mv_start set not null, alter column mv_end set not null, alter column price_effect set not null,
      alter column qty_effect set not null, alter column fx_effect set not null,
      alter column corp_action_effect set not null, alter column total_pnl set not null;
    delete from holdings where flag is not null;
    alter table holdings
      drop constraint holdings_valued_or_flagged,
      drop column flag,
      drop column computed_at,
      alter column local_price set not null,
      alter column fx_rate set not null,
      alter column market_value set not null,
      alter column weight set not null;
    drop function account_cash_move(integer, numeric);
    drop table corporate_action_ledger;
    alter table corporate_actions drop column revision, drop column status, drop column updated_at;
  `);
}
