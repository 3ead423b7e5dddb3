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
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    drop index corporate_action_ledger_action_idx;
    alter table corporate_action_ledger
      drop constraint corporate_action_ledger_paid_amount_check,
      drop column fx_rate,
      drop column paid_currency,
      drop column paid_amount;
  `);
}
