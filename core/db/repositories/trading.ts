/**
 * Paper trading's SQL (issue 11): creating a client with its margin account, and the one
 * transaction in which an order, a deposit or a withdrawal reads and changes an account.
 *
 * `withAccount(clientId, fn)` opens a transaction and locks the client's margin account row
 * (`select … for update`, then its position rows: see there) before anything else, so every
 * order and cash movement of one account runs one after another (a concurrent one waits for the
 * lock, then reads what the first committed). `fn` gets `AccountTx`, whose reads and writes all run in that transaction: the book
 * (positions with their latest price and FX rate, `PRICE_AND_FX_JOINS` from clients.ts, so the
 * price is the one /margin uses), earlier orders by idempotency key, and the writes: the
 * `transactions` row, the position (deleted when it reaches zero), and cash through
 * `account_cash_move()`. If `fn` throws, nothing is written.
 *
 * Numerics stay pg's strings; the caller computes in decimal (core/domain/trading.ts).
 */
import { randomUUID } from 'node:crypto';
import { NYSE_TIME_ZONE } from '../../calendar/nyse.ts';
import type { Knex } from '../knex.ts';
import { NYSE_EXCHANGE } from './calendar.ts';
import { PRICE_AND_FX_JOINS, type MarginBookRow } from './clients.ts';

export interface LockedAccount {
  accountId: number;
  clientId: number;
  currency: string;
  cashBalance: string;
  loanBalance: string;
}

/** A book row: a held position, or (quantity '0') the security an order names. */
export type BookRow = MarginBookRow & {
  costBasis: string | null;
  /** securities.status: ACTIVE, MATURED, DELISTED, SUSPENDED. */
  status: string;
};

export interface TradeRecord {
  id: number;
  txnId: string;
  accountId: number;
  securityId: number;
  ticker: string;
  side: 'BUY' | 'SELL' | 'SHORT' | 'COVER';
  quantity: string;
  price: string;
  orderType: 'MARKET' | 'LIMIT';
  limitPrice: string | null;
  marketPrice: string;
  priceTime: Date;
  fxRate: string;
  notional: string;
  realizedPnl: string | null;
  fees: string;
  currency: string;
  accountCurrency: string;
  txnDate: string;
  settlementDate: string;
  idempotencyKey: string;
  requestHash: string;
  placedBy: string | null;
  createdAt: Date;
}

export interface NewTrade {
  securityId: number;
  side: TradeRecord['side'];
  quantity: string;
  price: string;
  orderType: TradeRecord['orderType'];
  limitPrice: string | null;
  marketPrice: string;
  priceTime: Date;
  fxRate: string;
  notional: string;
  realizedPnl: string | null;
  fees: string;
  currency: string;
  txnDate: string;
  settlementDate: string;
  idempotencyKey: string;
  requestHash: string;
  placedBy: string | null;
}

export interface CashMovementRecord {
  id: number;
  accountId: number;
  kind: 'DEPOSIT' | 'WITHDRAWAL';
  amount: string;
  currency: string;
  cashAfter: string;
  loanAfter: string;
  idempotencyKey: string | null;
  requestHash: string | null;
  placedBy: string | null;
  createdAt: Date;
}

const TRADE_COLUMNS = `
  t.id::int as id, t.txn_id as "txnId", t.account_id as "accountId", t.security_id as "securityId",
  s.ticker, t.txn_type as side, t.quantity, t.price, t.order_type as "orderType",
  t.limit_price as "limitPrice", t.market_price as "marketPrice", t.price_time as "priceTime",
  t.fx_rate as "fxRate", t.notional, t.realized_pnl as "realizedPnl", t.fees, t.currency,
  a.currency as "accountCurrency", to_char(t.txn_date, 'YYYY-MM-DD') as "txnDate",
  to_char(t.settlement_date, 'YYYY-MM-DD') as "settlementDate", t.idempotency_key as "idempotencyKey",
  t.request_hash as "requestHash", t.placed_by as "placedBy", t.created_at as "createdAt"`;

const CASH_COLUMNS = `
  id::int as id, account_id as "accountId", kind, amount, currency, cash_after as "cashAfter",
  loan_after as "loanAfter", idempotency_key as "idempotencyKey", request_hash as "requestHash",
  placed_by as "placedBy", created_at as "createdAt"`;

const BOOK = `
  select a.id as "accountId", s.id as "securityId", s.ticker, s.issuer_id as "issuerId",
         coalesce(p.quantity, 0) as quantity, p.cost_basis as "costBasis", s.status,
         s.currency as "securityCurrency", a.currency as "accountCurrency",
         s.marginable, s.house_margin_rate as "houseMarginRate",
         px.price, px.price_time as "priceTime", px.source as "priceSource",
         to_char((px.price_time at time zone :tz)::date, 'YYYY-MM-DD') as "priceDate",
         fx.rate as "fxRate", to_char(fx.rate_date, 'YYYY-MM-DD') as "fxDate", fx.inverted as "fxInverted"
    from accounts a
    join (select security_id as id from positions where account_id = :accountId
          union
          select id from securities where ticker = :ticker) ids on true
    join securities s on s.id = ids.id
    left join positions p on p.account_id = a.id and p.security_id = s.id
    ${PRICE_AND_FX_JOINS}
   where a.id = :accountId
   order by s.ticker`;

/** The reads and writes of one locked account (module doc). */
export function accountTx(trx: Knex.Transaction, account: LockedAccount) {
  return {
    account,

    /** Every position of the account, plus `ticker` (quantity '0' when not held; absent when unknown). */
    async book(ticker: string | null): Promise<BookRow[]> {
      // A named prepared statement on the transaction's connection (knex passes `options` to
      // pg), planned once per connection: planning the latest-price joins over every `ticks`
      // partition costs more than running them (27 monthly partitions: 2.8 ms per read planned
      // each time, 0.7 ms prepared, measured interleaved on one connection).
      const res = await trx
        .raw<{ rows: BookRow[] }>(BOOK, {
          accountId: account.accountId,
          ticker: ticker ?? '',
          tz: NYSE_TIME_ZONE,
          exchange: NYSE_EXCHANGE,
        })
        .options({ name: 'trading_book' });
      return res.rows;
    },

    async orderByKey(idempotencyKey: string): Promise<TradeRecord | undefined> {
      const res = await trx.raw<{ rows: TradeRecord[] }>(
        `select ${TRADE_COLUMNS}
           from transactions t join securities s on s.id = t.security_id join accounts a on a.id = t.account_id
          where t.account_id = :accountId and t.idempotency_key = :key`,
        { accountId: account.accountId, key: idempotencyKey },
      );
      return res.rows[0];
    },

    async insertTrade(trade: NewTrade): Promise<TradeRecord> {
      const out = await trx.raw<{ rows: TradeRecord[] }>(
        `with t as (
           insert into transactions (txn_id, account_id, security_id, txn_type, quantity, price, txn_date,
                                     settlement_date, fees, currency, order_type, limit_price, market_price,
                                     price_time, fx_rate, notional, realized_pnl, idempotency_key, request_hash,
                                     placed_by)
           values (:txnId, :accountId, :securityId, :side, :quantity, :price, :txnDate, :settlementDate, :fees,
                   :currency, :orderType, :limitPrice, :marketPrice, :priceTime, :fxRate, :notional, :realizedPnl,
                   :idempotencyKey, :requestHash, :placedBy)
           returning *)
         select ${TRADE_COLUMNS}
           from t join securities s on s.id = t.security_id join accounts a on a.id = t.account_id`,
        { ...trade, txnId: `ORD-${randomUUID()}`, accountId: account.accountId },
      );
      return out.rows[0]!;
    },

    /**
     * Sets the account's position in a security; a zero quantity deletes it. `held`: whether the
     * book read it (then it is updated, else inserted), so a row that appeared or vanished since
     * the read fails the transaction instead of being overwritten.
     */
    async setPosition(securityId: number, quantity: string, costBasis: string, held: boolean): Promise<void> {
      const keys = { accountId: account.accountId, securityId, quantity, costBasis };
      let n: number;
      if (!held) {
        if (/^-?0*(\.0*)?$/.test(quantity)) return;
        await trx.raw(
          `insert into positions (account_id, security_id, quantity, cost_basis)
           values (:accountId, :securityId, :quantity, :costBasis)`,
          keys,
        );
        return;
      }
      if (/^-?0*(\.0*)?$/.test(quantity)) {
        const res = await trx.raw<{ rowCount: number }>(
          `delete from positions where account_id = :accountId and security_id = :securityId`,
          keys,
        );
        n = res.rowCount;
      } else {
        const res = await trx.raw<{ rowCount: number }>(
          `update positions set quantity = :quantity, cost_basis = :costBasis, updated_at = now()
            where account_id = :accountId and security_id = :securityId`,
          keys,
        );
        n = res.rowCount;
      }
      if (n !== 1) throw new Error(`position ${account.accountId}/${securityId} vanished during the order`);
    },

    /** Moves cash through `account_cash_move()`; returns the balances after. */
    async cashMove(amount: string): Promise<{ cashBalance: string; loanBalance: string }> {
      const res = await trx.raw<{ rows: { cashBalance: string; loanBalance: string }[] }>(
        `select cash_balance as "cashBalance", loan_balance as "loanBalance" from account_cash_move(:id, :amount)`,
        { id: account.accountId, amount },
      );
      return res.rows[0]!;
    },

    async cashMovementByKey(idempotencyKey: string): Promise<CashMovementRecord | undefined> {
      const res = await trx.raw<{ rows: CashMovementRecord[] }>(
        `select ${CASH_COLUMNS} from cash_movements where account_id = :accountId and idempotency_key = :key`,
        { accountId: account.accountId, key: idempotencyKey },
      );
      return res.rows[0];
    },

    async insertCashMovement(m: {
      kind: CashMovementRecord['kind'];
      amount: string;
      cashAfter: string;
      loanAfter: string;
      idempotencyKey: string | null;
      requestHash: string | null;
      placedBy: string | null;
    }): Promise<CashMovementRecord> {
      const res = await trx.raw<{ rows: CashMovementRecord[] }>(
        `insert into cash_movements (account_id, kind, amount, currency, cash_after, loan_after, idempotency_key,
                                     request_hash, placed_by)
         values (:accountId, :kind, :amount, :currency, :cashAfter, :loanAfter, :idempotencyKey, :requestHash,
                 :placedBy)
         returning ${CASH_COLUMNS}`,
        { ...m, accountId: account.accountId, currency: account.currency },
      );
      return res.rows[0]!;
    },
  };
}

export type AccountTx = ReturnType<typeof accountTx>;

export interface TradeFilter {
  symbol?: string | undefined;
  from?: string | undefined;
  to?: string | undefined;
  /** Keyset cursor: only trades with an id below this. */
  before?: number | undefined;
  limit: number;
}

export function createTradingRepository(db: Knex) {
  return {
    /**
     * A client and its MARGIN account in `currency`, in one transaction; 'duplicate' when the
     * client code is taken.
     */
    async createClient(opts: {
      name: string;
      clientCode: string;
      currency: string;
    }): Promise<{ clientId: number; accountId: number; createdAt: Date } | 'duplicate'> {
      return db.transaction(async (trx) => {
        const res = await trx.raw<{ rows: { id: number; createdAt: Date }[] }>(
          `insert into clients (client_code, name) values (:code, :name)
           on conflict (client_code) do nothing
           returning id, created_at as "createdAt"`,
          { code: opts.clientCode, name: opts.name },
        );
        const client = res.rows[0];
        if (!client) return 'duplicate' as const;
        const acct = await trx.raw<{ rows: { id: number }[] }>(
          `insert into accounts (client_id, account_type, currency) values (:clientId, 'MARGIN', :currency) returning id`,
          { clientId: client.id, currency: opts.currency },
        );
        return { clientId: client.id, accountId: acct.rows[0]!.id, createdAt: client.createdAt };
      });
    },

    /**
     * Runs `fn` in one transaction holding the lock on the client's margin account (module doc;
     * `lock: false` for a read that writes nothing, the what-if).
     * 'no_client' / 'no_account' when there is none; 'several_accounts' when the client has
     * margin accounts in more than one currency (one per client is supported, as in /margin).
     */
    async withAccount<T>(
      clientId: number,
      fn: (tx: AccountTx) => Promise<T>,
      opts: { lock?: boolean } = {},
    ): Promise<T | 'no_client' | 'no_account' | { severalAccounts: string[] }> {
      const lock = opts.lock !== false;
      const attempt = () =>
        db.transaction(async (trx) => {
          const res = await trx.raw<{ rows: LockedAccount[] }>(
            `select a.id as "accountId", a.client_id as "clientId", a.currency, a.cash_balance as "cashBalance",
                    a.loan_balance as "loanBalance"
               from accounts a
              where a.client_id = :clientId and a.account_type = 'MARGIN'
              order by a.id
              ${lock ? 'for update' : ''}`,
            { clientId },
          );
          if (res.rows.length === 0) {
            const client = await trx.raw<{ rows: unknown[] }>(`select 1 from clients where id = :clientId`, {
              clientId,
            });
            return client.rows.length === 0 ? ('no_client' as const) : ('no_account' as const);
          }
          if (res.rows.length > 1) return { severalAccounts: res.rows.map((a) => a.currency) };
          const account = res.rows[0]!;
          if (lock) {
            // Then its positions: no other writer (a corporate action) changes one between our
            // read and our write. Orders take the account first, so they never deadlock with each
            // other; a writer that takes a position and then the account can deadlock with us,
            // which PostgreSQL breaks by aborting one side: we retry (below).
            await trx.raw(`select id from positions where account_id = :accountId order by id for update`, {
              accountId: account.accountId,
            });
          }
          return fn(accountTx(trx, account));
        });
      for (let tries = 1; ; tries += 1) {
        try {
          return await attempt();
        } catch (err) {
          const code = (err as { code?: string }).code;
          if (tries >= 3 || (code !== '40P01' && code !== '40001')) throw err;
        }
      }
    },

    /** The trades of a client's accounts, newest first (id order), filtered; `limit + 1` tells if there are more. */
    async trades(clientId: number, filter: TradeFilter): Promise<TradeRecord[]> {
      const res = await db.raw<{ rows: TradeRecord[] }>(
        `select ${TRADE_COLUMNS}
           from accounts a
           join transactions t on t.account_id = a.id
           join securities s on s.id = t.security_id
          where a.client_id = :clientId
            and (cast(:symbol as text) is null or s.ticker = :symbol)
            and (cast(:from as date) is null or t.txn_date >= cast(:from as date))
            and (cast(:to as date) is null or t.txn_date <= cast(:to as date))
            and (cast(:before as bigint) is null or t.id < cast(:before as bigint))
          order by t.id desc
          limit :limit`,
        {
          clientId,
          symbol: filter.symbol ?? null,
          from: filter.from ?? null,
          to: filter.to ?? null,
          before: filter.before ?? null,
          limit: filter.limit,
        },
      );
      return res.rows;
    },

    /** Whether the client exists. */
    async clientExists(clientId: number): Promise<boolean> {
      const res = await db.raw<{ rows: unknown[] }>(`select 1 from clients where id = :clientId`, {
        clientId,
      });
      return res.rows.length > 0;
    },

    /** Whether a security with this ticker exists. */
    async tickerExists(ticker: string): Promise<boolean> {
      const res = await db.raw<{ rows: unknown[] }>(`select 1 from securities where ticker = :ticker`, {
        ticker,
      });
      return res.rows.length > 0;
    },
  };
}

export type TradingRepository = ReturnType<typeof createTradingRepository>;
