/**
 * Seed 0's client endpoints (issue 11, first slice): `GET /positions/{clientId}` and
 * `GET /margin/{clientId}`, read-only, behind `results:read`.
 *
 * Margin is computed on the fly by `accountMargin()` (core/domain/margin.ts, FINRA 4210 and the
 * security's own house rate) from one set-based read (`clients.marginBook`): each position's
 * latest price (the newer of its newest tick and its newest daily close) and FX rate to the
 * account currency, with the house rules (`margin_house_rules`) in force today, the table
 * `margin.nightly` reads for its run date.
 *
 * A position without a price or FX rate is never valued at zero: the answer is a 422
 * (`unpriced_positions`) naming each such position (`fields`: `positions.<ticker>`) and why.
 *
 * Money is computed exactly in decimal; the figures leave as JSON numbers rounded to the cent
 * (half away from zero), like the seed's `20000.0`. Quantities, prices and rates leave as stored.
 */
import { z } from 'zod';
import { sessionDateOf } from '../../core/calendar/nyse.ts';
import type { Deps } from '../../core/deps.ts';
import type { ClientPositionRecord } from '../../core/db/repositories/clients.ts';
import type { AccountMargin } from '../../core/domain/margin.ts';
import { dec, round, type Dec } from '../../core/domain/money.ts';
import { unrealizedPnl } from '../../core/domain/trading.ts';
import { decimalInt } from '../../core/input.ts';
import { marginOfBook, marginView, TradingError } from '../../core/trading.ts';
import { defineRoute, HttpError, NotFoundError, type RouteDef } from '../http.ts';
import { isoZ } from './stocks.ts';

const MAX_ID = 2_147_483_647;

export const clientParams = z.object({
  clientId: decimalInt({ min: 1, max: MAX_ID })
    .unwrap()
    .openapi({ param: { description: 'Client id (a positive integer in decimal digits).' } }),
});

const Position = z
  .object({
    symbol: z.string().openapi({ example: 'AAPL' }),
    quantity: z.number().openapi({ example: 100, description: 'Shares; negative = short.' }),
    cost_basis: z.number().openapi({ example: 150.0, description: 'Per share, security currency.' }),
    account_id: z.number().int().openapi({ description: 'The account holding the position.' }),
    currency: z
      .string()
      .openapi({ example: 'USD', description: "The security's currency (cost basis, price, P/L)." }),
    market_price: z.number().nullable().openapi({
      description:
        'Latest stored price (as /margin: the newer of the newest tick and daily close); null when none.',
    }),
    price_time: z.string().nullable(),
    market_value: z.number().nullable().openapi({
      description: 'quantity × market_price (negative for a short), security currency, to the cent.',
    }),
    unrealized_pnl: z.number().nullable().openapi({
      description:
        'quantity × (market_price − cost_basis), security currency, to the cent: a long gains when the price rises above its average cost, a short when it falls below its average proceeds. Null without a price.',
    }),
  })
  .openapi('ClientPosition');

const Positions = z
  .object({ clientId: z.number().int().openapi({ example: 1 }), positions: z.array(Position) })
  .openapi('ClientPositions');

const money = (example: number) => z.number().openapi({ example, description: 'Rounded to the cent.' });

const MarginPositionOut = z
  .object({
    symbol: z.string(),
    quantity: z.number(),
    price: z.number().openapi({ description: 'Latest price, security currency.' }),
    price_source: z.enum(['tick', 'close']).openapi({
      description:
        "'tick': the newest stored tick; 'close': the newest daily close (as of its session's close).",
    }),
    price_time: z.string(),
    fx_rate: z.number().openapi({ description: 'Security currency → account currency (1 when equal).' }),
    market_value: money(20000),
    requirement: money(5000),
    rule: z.string().openapi({ example: 'finra', description: 'The rule that set the requirement.' }),
  })
  .openapi('MarginPosition');

const Margin = z
  .object({
    timestamp: z.string().openapi({
      example: '2024-03-28T10:30:00Z',
      description: 'Time of the newest price used (the time of computation when no position is held).',
    }),
    clientId: z.number().int().openapi({ example: 1 }),
    portfolio_value: money(20000).openapi({ description: 'Long market value, rounded to the cent.' }),
    loan_amount: money(10000).openapi({ description: 'Debit balance, rounded to the cent.' }),
    net_equity: money(10000).openapi({
      description: 'Long MV + credit balance − loan − short MV, rounded to the cent.',
    }),
    margin_requirement: money(5000),
    margin_shortfall: money(0),
    margin_call_triggered: z.boolean().openapi({ description: 'Shortfall > 0 (equal is not a call).' }),
    short_market_value: money(0),
    credit_balance: money(0),
    currency: z.string().openapi({ example: 'USD', description: 'The margin account currency.' }),
    account_id: z.number().int(),
    positions: z.array(MarginPositionOut),
  })
  .openapi('ClientMargin');

/** A decimal figure as a JSON number rounded to the cent (the computation stays exact). */
const cents = (v: Dec): number => round(v, 2).toNumber();

/** The extra fields of a position (beyond seed 0's): its latest price, value and unrealized P/L. */
function pnlFields(r: ClientPositionRecord) {
  return {
    currency: r.currency,
    market_price: r.price === null ? null : Number(r.price),
    price_time: r.priceTime === null ? null : isoZ(r.priceTime),
    market_value: r.price === null ? null : cents(dec(r.quantity).times(r.price)),
    unrealized_pnl: r.price === null ? null : cents(unrealizedPnl(r.quantity, r.costBasis, r.price)),
  };
}

export function marginRoutes(deps: Deps): RouteDef[] {
  const { repos, clock } = deps;
  const unknownClient = (id: number) => new NotFoundError(`unknown client ${id}`);

  return [
    defineRoute({
      method: 'get',
      path: '/positions/{clientId}',
      summary: "A client's positions",
      description:
        'Every position of every account of the client, by symbol: quantity (negative = short) and per-share cost basis (seed 0), then its currency, latest price, market value and unrealized P/L.',
      tags: ['clients'],
      access: 'results:read',
      params: clientParams,
      response: Positions,
      errors: [404],
      async handler({ params }) {
        const rows = await repos.clients.positions(params.clientId);
        if (!rows) throw unknownClient(params.clientId);
        return {
          clientId: params.clientId,
          positions: rows.map((r) => ({
            symbol: r.ticker,
            quantity: Number(r.quantity),
            cost_basis: Number(r.costBasis),
            account_id: r.accountId,
            ...pnlFields(r),
          })),
        };
      },
    }),

    defineRoute({
      method: 'get',
      path: '/margin/{clientId}',
      summary: "A client's margin status",
      description:
        "FINRA 4210 maintenance margin of the client's margin account, computed now from the latest stored prices: per position the newer of its newest tick and its newest daily close (a close counts as of its session's close), converted to the account currency with the newest `fx_rates` rate on or before the price's date. portfolio_value = long market value, loan_amount = debit balance, net_equity = equity. Figures are computed in decimal and rounded to the cent. 404 for an unknown client or one without a margin account; 422 (`unpriced_positions`) when a position has no price or FX rate, naming each (`fields`: `positions.<symbol>`): nothing is valued at zero.",
      tags: ['clients'],
      access: 'results:read',
      params: clientParams,
      response: Margin,
      errors: [404, 422],
      async handler({ params }) {
        const { clientId } = params;
        const accounts = await repos.clients.marginAccounts(clientId);
        if (!accounts) throw unknownClient(clientId);
        if (accounts.length === 0) throw new NotFoundError(`client ${clientId} has no margin account`);
        if (accounts.length > 1) {
          // unique (client_id, account_type, currency): several margin accounts differ in currency.
          throw new HttpError(
            422,
            'multiple_margin_accounts',
            `client ${clientId} has margin accounts in ${accounts.map((a) => a.currency).join(', ')}; one margin account per client is supported so far`,
          );
        }
        const account = accounts[0]!;
        const book = await repos.clients.marginBook(clientId);

        // The house rules in force today (exchange date), the table margin.nightly reads too.
        const house = await repos.margin.houseRules(sessionDateOf(clock.now()));
        let margin: AccountMargin;
        try {
          margin = marginOfBook(
            book,
            { cash: account.cashBalance, loan: account.loanBalance },
            house,
            ` of client ${clientId}`,
          );
        } catch (err) {
          // unpriced_positions: a 422 naming each position (fields: positions.<symbol>).
          if (!(err instanceof TradingError)) throw err;
          throw new HttpError(422, err.code, err.message, err.fields);
        }
        return marginView({
          clientId,
          accountId: account.accountId,
          currency: account.currency,
          rows: book,
          margin,
          now: clock.now(),
        });
      },
    }),
  ];
}
