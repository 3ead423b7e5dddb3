/**
 * The corporate-action ledger's payment record (issue 9, corporate-actions.apply): what a client
 * account actually received or paid, so a reversal undoes exactly that amount even if the FX rate
 * row is later corrected.
 *
 * - `paid_amount`: the cash moved into the account (`account_cash_move`), in `paid_currency` (the
 *   account's currency), at `fx_rate` (units of the account currency per one unit of the ledger
 *   `currency`: the payment date's direct pair, or the reciprocal of the inverse pair; 1 when the
 *   currencies are equal). Portfolios keep no cash account: the three stay null for them.
 *   A row settled without moving cash (an APPLY reversed before its payment date, and that
 *   REVERSE) carries paid_amount 0.
 * - `restatement`: an entitlement builds on the quantity the earlier actions left, so when an
 *   earlier action's effect on a position changes (a correction or cancellation reversed it, or an
 *   action with an earlier ex-date is applied after later ones), the later APPLY rows of that
 *   position are reversed and applied again on the new basis: the same action revision, the next
 *   restatement. The unique key gains the column, so each (action, revision, restatement, entry,
 *   target) is still written once. Every row of every restatement stays in the ledger; sums of
 *   quantity_delta, cost_delta and cash_amount over all rows stay the net effect.
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    alter table corporate_action_ledger
      add column paid_amount numeric(24,2),
      add column paid_currency char(3) check (paid_currency ~ '^[A-Z]{3}$'),
      add column fx_rate numeric(20,10) check (fx_rate > 0),
      add constraint corporate_action_ledger_paid_amount_check
        check (paid_amount is null or paid_at is not null);
    create index corporate_action_ledger_action_idx on corporate_action_ledger (action_id, entry);

    alter table corporate_action_ledger
      add column restatement integer not null default 0 check (restatement >= 0);
    do $$
    declare
      c text;
    begin
      select conname into strict c from pg_constraint
       where conrelid = 'corporate_action_ledger'::regclass and contype = 'u';
      execute format('alter table corporate_action_ledger drop constraint %I', c);
    end $$;
    alter table corporate_action_ledger
      add constraint corporate_action_ledger_once
        unique nulls not distinct (action_id, action_revision, restatement, entry, portfolio_id, account_id);
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    alter table corporate_action_ledger drop constraint corporate_action_ledger_once;
    delete from corporate_action_ledger where restatement > 0;
    alter table corporate_action_ledger
      drop column restatement,
      add unique nulls not distinct (action_id, action_revision, entry, portfolio_id, account_id);
    drop index corporate_action_ledger_action_idx;
    alter table corporate_action_ledger
      drop constraint corporate_action_ledger_paid_amount_check,
      drop column fx_rate,
      drop column paid_currency,
      drop column paid_amount;
  `);
}
