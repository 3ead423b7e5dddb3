/**
 * Paper trading (issue 11): orders are `transactions` rows with what an audit needs to replay
 * them, cash movements (deposits, withdrawals) have a table of their own, and the OAuth scope
 * `trading` exists.
 *
 * - `transactions` gains the order's terms (`order_type`, `limit_price`), the market price it was
 *   checked against (`market_price`, `price_time`), the FX rate and the cash it moved in the
 *   account currency (`fx_rate`, `notional`), the realized P/L of a SELL or COVER (in the
 *   security's currency, `currency`), the client's `idempotency_key` with the SHA-256 of the
 *   request it came with (`request_hash`), and `created_at`. The key is unique per account (a
 *   partial unique index: rows written before this migration, or by loaders, have none), and who
 *   placed it (`placed_by`: the token's client id or subject). All new
 *   columns are nullable for those older rows; a check makes an order row (one with a key) carry
 *   all of them.
 * - `cash_movements`: one row per deposit or withdrawal (the amount in the account currency, the
 *   balances after it, an optional idempotency key unique per account). Cash itself still moves
 *   only through `account_cash_move()` (migrations/20261205000100_books.ts).
 * - `oauth_clients.scopes` may hold `trading` (create clients, move cash, place orders).
 */
import type { Knex } from 'knex';

const MONEY = 'numeric(24,2)';
const PRICE = 'numeric(20,8)';

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    alter table transactions
      add column order_type text check (order_type in ('MARKET', 'LIMIT')),
      add column limit_price ${PRICE} check (limit_price > 0),
      add column market_price ${PRICE} check (market_price > 0),
      add column price_time timestamptz,
      add column fx_rate numeric check (fx_rate > 0),
      add column notional ${MONEY} check (notional >= 0),
      add column realized_pnl ${MONEY},
      add column idempotency_key text check (idempotency_key ~ '^[A-Za-z0-9_.:-]{1,200}$'),
      add column request_hash text check (request_hash ~ '^[0-9a-f]{64}$'),
      add column placed_by text,
      add column created_at timestamptz not null default now(),
      add constraint transactions_order_complete check (
        idempotency_key is null or (
          account_id is not null and order_type is not null and request_hash is not null
          and market_price is not null and price_time is not null and fx_rate is not null
          and notional is not null
          and (order_type = 'LIMIT') = (limit_price is not null)
          and (realized_pnl is not null) = (txn_type in ('SELL', 'COVER'))
        )
      );
    create unique index transactions_idempotency_idx on transactions (account_id, idempotency_key)
      where idempotency_key is not null;
    create index transactions_account_created_idx on transactions (account_id, created_at desc, id desc);

    create table cash_movements (
      id bigint generated always as identity primary key,
      account_id integer not null references accounts on delete cascade,
      kind text not null check (kind in ('DEPOSIT', 'WITHDRAWAL')),
      amount ${MONEY} not null check (amount > 0),
      currency char(3) not null check (currency ~ '^[A-Z]{3}$'),
      cash_after ${MONEY} not null check (cash_after >= 0),
      loan_after ${MONEY} not null check (loan_after >= 0),
      idempotency_key text check (idempotency_key ~ '^[A-Za-z0-9_.:-]{1,200}$'),
      request_hash text check (request_hash ~ '^[0-9a-f]{64}$'),
      placed_by text,
      created_at timestamptz not null default now(),
      check ((idempotency_key is null) = (request_hash is null))
    );
    create unique index cash_movements_idempotency_idx on cash_movements (account_id, idempotency_key)
      where idempotency_key is not null;
    create index cash_movements_account_idx on cash_movements (account_id, created_at);

    alter table oauth_clients drop constraint oauth_clients_scopes_check;
    alter table oauth_clients add constraint oauth_clients_scopes_check
      check (scopes <@ array['results:read', 'jobs:write', 'trading', 'admin']::text[]);
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    update oauth_clients set scopes = array_remove(scopes, 'trading');
    alter table oauth_clients drop constraint oauth_clients_scopes_check;
    alter table oauth_clients add constraint oauth_clients_scopes_check
      check (scopes <@ array['results:read', 'jobs:write', 'admin']::text[]);
    drop table cash_movements;
    drop index transactions_account_created_idx;
    drop index transactions_idempotency_idx;
    alter table transactions
      drop constraint transactions_order_complete,
      drop column order_type, drop column limit_price, drop column market_price, drop column price_time,
      drop column fx_rate, drop column notional, drop column realized_pnl, drop column idempotency_key,
      drop column request_hash, drop column placed_by, drop column created_at;
  `);
}
