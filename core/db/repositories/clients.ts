/**
 * Clients, their accounts and positions, and what the margin endpoint values them with (issue 11,
 * first slice). Reads only; the books (orders, fills) arrive with later slices.
 *
 * `marginBook` is set-based: one statement returns every position of a client's margin accounts
 * with its latest price and FX rate; no per-position queries. Latest price = the newer of the
 * security's newest tick (by ts, seq) and its newest daily close, a daily close being as of its
 * session's close (`market_sessions.close_at`, or 16:00 in the exchange time zone when the
 * session is not stored); a tick at the same instant wins. FX = the newest `fx_rates` row on or
 * before the price's exchange date, security currency → account currency (the direct pair, or the
 * inverse pair flagged `fxInverted`, whichever is newer; the direct one on a tie); none is needed
 * when the currencies are equal. Numerics stay pg's strings; the caller computes in decimal.
 */
import { NYSE_TIME_ZONE } from '../../calendar/nyse.ts';
import type { Knex } from '../knex.ts';
import { NYSE_EXCHANGE } from './calendar.ts';

export interface ClientPositionRecord {
  accountId: number;
  ticker: string;
  /** numeric text; negative = short. */
  quantity: string;
  /** Per-share cost basis, numeric text. */
  costBasis: string;
  /** The security's currency (cost basis and price are in it). */
  currency: string;
  /** Latest price (module doc), numeric text; null when none is stored. */
  price: string | null;
  priceTime: Date | null;
}

export interface MarginAccountRecord {
  accountId: number;
  currency: string;
  /** cash_balance (the credit balance), numeric text. */
  cashBalance: string;
  /** loan_balance (the debit balance), numeric text. */
  loanBalance: string;
}

export interface MarginBookRow {
  accountId: number;
  securityId: number;
  ticker: string;
  issuerId: string | null;
  quantity: string;
  securityCurrency: string;
  accountCurrency: string;
  marginable: boolean;
  houseMarginRate: string | null;
  /** Latest price (security currency), or null when neither a tick nor a daily close is stored. */
  price: string | null;
  priceTime: Date | null;
  priceSource: 'tick' | 'close' | null;
  /** The price's date in the exchange time zone (what the FX rate is looked up for). */
  priceDate: string | null;
  /** Stored rate of the pair used, null when none (or when the currencies are equal). */
  fxRate: string | null;
  fxDate: string | null;
  /** True when the stored rate is account → security currency (use its reciprocal). */
  fxInverted: boolean | null;
}

/**
 * The latest price of security `s` (px.price, px.price_time, px.source) and its FX rate into the
 * currency of `a` (fx.rate, fx.rate_date, fx.inverted): the module doc's rules, as SQL joins for
 * any query with `securities s` and a row `a` with a `currency` column. Bindings :tz, :exchange.
 * Shared by the margin book and the trading repository, so "latest price" has one definition.
 */
export const PRICE_AND_FX_JOINS = `
    left join lateral (
      select c.price, c.price_time, c.source
        from ((select t.price, t.ts as price_time, 'tick' as source, 1 as pref
                 from ticks t where t.security_id = s.id
                order by t.ts desc, t.seq desc limit 1)
              union all
              (select b.close, coalesce(m.close_at, (b.session_date + time '16:00') at time zone :tz),
                      'close', 0
                 from bars_1d b
                 left join market_sessions m on m.exchange = :exchange and m.session_date = b.session_date
                where b.security_id = s.id
                order by b.session_date desc limit 1)) c
       order by c.price_time desc, c.pref desc
       limit 1
    ) px on true
    left join lateral (
      select r.rate, r.rate_date, r.inverted
        from ((select rate, rate_date, false as inverted from fx_rates
                where from_currency = s.currency and to_currency = a.currency
                  and rate_date <= (px.price_time at time zone :tz)::date
                order by rate_date desc limit 1)
              union all
              (select rate, rate_date, true from fx_rates
                where from_currency = a.currency and to_currency = s.currency
                  and rate_date <= (px.price_time at time zone :tz)::date
                order by rate_date desc limit 1)) r
       order by r.rate_date desc, r.inverted
       limit 1
    ) fx on s.currency <> a.currency and px.price_time is not null`;

const MARGIN_BOOK = `
  select a.id as "accountId", s.id as "securityId", s.ticker, s.issuer_id as "issuerId",
         p.quantity, s.currency as "securityCurrency", a.currency as "accountCurrency",
         s.marginable, s.house_margin_rate as "houseMarginRate",
         px.price, px.price_time as "priceTime", px.source as "priceSource",
         to_char((px.price_time at time zone :tz)::date, 'YYYY-MM-DD') as "priceDate",
         fx.rate as "fxRate", to_char(fx.rate_date, 'YYYY-MM-DD') as "fxDate", fx.inverted as "fxInverted"
    from accounts a
    join positions p on p.account_id = a.id
    join securities s on s.id = p.security_id
    ${PRICE_AND_FX_JOINS}
   where a.client_id = :clientId and a.account_type = 'MARGIN'
   order by a.id, s.ticker`;

export function createClientsRepository(db: Knex) {
  return {
    /**
     * The positions of every account of a client (ticker, then account order), or undefined when
     * there is no such client. One statement.
     */
    async positions(clientId: number): Promise<ClientPositionRecord[] | undefined> {
      const res = await db
        .raw<{
          rows: (Omit<ClientPositionRecord, 'accountId' | 'ticker'> & {
            accountId: number | null;
            ticker: string | null;
          })[];
        }>(
          `select a.id as "accountId", s.ticker, p.quantity, p.cost_basis as "costBasis",
                s.currency, px.price, px.price_time as "priceTime"
           from clients c
           left join accounts a on a.client_id = c.id
           left join positions p on p.account_id = a.id
           left join securities s on s.id = p.security_id
           ${PRICE_AND_FX_JOINS}
          where c.id = :clientId
          order by s.ticker nulls first, a.id`,
          { clientId, tz: NYSE_TIME_ZONE, exchange: NYSE_EXCHANGE },
        )
        // Prepared once per pooled connection: see the trading book (repositories/trading.ts).
        .options({ name: 'client_positions' });
      if (res.rows.length === 0) return undefined;
      return res.rows
        .filter((r) => r.ticker !== null)
        .map((r) => ({
          accountId: r.accountId!,
          ticker: r.ticker!,
          quantity: r.quantity,
          costBasis: r.costBasis,
          currency: r.currency,
          price: r.price,
          priceTime: r.priceTime,
        }));
    },

    /** The client's margin accounts (account order), or undefined when there is no such client. */
    async marginAccounts(clientId: number): Promise<MarginAccountRecord[] | undefined> {
      const res = await db.raw<{
        rows: (Omit<MarginAccountRecord, 'accountId'> & { accountId: number | null })[];
      }>(
        `select a.id as "accountId", a.currency, a.cash_balance as "cashBalance", a.loan_balance as "loanBalance"
           from clients c
           left join accounts a on a.client_id = c.id and a.account_type = 'MARGIN'
          where c.id = :clientId
          order by a.id nulls first`,
        { clientId },
      );
      if (res.rows.length === 0) return undefined;
      return res.rows.filter((r) => r.accountId !== null) as MarginAccountRecord[];
    },

    /** Every position of the client's margin accounts with its latest price and FX rate (module doc). */
    async marginBook(clientId: number): Promise<MarginBookRow[]> {
      const res = await db.raw<{ rows: MarginBookRow[] }>(MARGIN_BOOK, {
        clientId,
        tz: NYSE_TIME_ZONE,
        exchange: NYSE_EXCHANGE,
      });
      return res.rows;
    },
  };
}

export type ClientsRepository = ReturnType<typeof createClientsRepository>;
