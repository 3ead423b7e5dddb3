/**
 * Client management and paper trading (issue 11 with seed 3), behind the `trading` scope:
 *
 * - `POST /api/clients`: a client and its MARGIN account (currency, USD by default);
 * - `POST /api/clients/{clientId}/deposits` and `/withdrawals`: cash through
 *   `account_cash_move()`; a withdrawal only up to the Reg T excess (core/domain/trading.ts);
 * - `POST /api/clients/{clientId}/orders`: BUY, SELL, SHORT, COVER at market or a marketable
 *   limit, with a required `Idempotency-Key` header (core/trading.ts has the steps);
 * - `POST /api/clients/{clientId}/what-if`: the same order evaluated, nothing stored;
 * - `GET /api/clients/{clientId}/trades` (`results:read`): newest first, keyset pagination.
 *
 * Why a scope of its own: `jobs:write` triggers market-data jobs; moving a client's cash and
 * trading are another authority (a desk that may re-run a rollup should not be able to withdraw
 * client money). `admin` implies it, like every scope.
 *
 * Amounts, quantities and prices arrive as a decimal string or a JSON number and are kept as
 * decimal text from there on (no float arithmetic): a number is read by its shortest decimal
 * form, so `100.25` is exactly 100.25, and anything with more decimals than the column holds is a
 * 400 naming the field, never rounded.
 */
import { randomUUID } from 'node:crypto';
import type { Request } from 'express';
import { z } from 'zod';
import type { Deps } from '../../core/deps.ts';
import type { CashMovementRecord, TradeRecord } from '../../core/db/repositories/trading.ts';
import { dec } from '../../core/domain/money.ts';
import { ORDER_TYPES, SIDES } from '../../core/domain/trading.ts';
import { calendarDate, dateRange, decimalInt, strictObject } from '../../core/input.ts';
import {
  deposit,
  placeOrder,
  TradingError,
  whatIf,
  withdraw,
  type OrderRequest,
  type TradingOptions,
} from '../../core/trading.ts';
import {
  BadRequestError,
  ConflictError,
  defineRoute,
  HttpError,
  NotFoundError,
  Reply,
  type RouteDef,
} from '../http.ts';
import { clientParams } from './margin.ts';
import { isoZ } from './stocks.ts';

const TICKER = /^[A-Z0-9._=^-]{1,20}$/;
const IDEMPOTENCY_KEY = /^[A-Za-z0-9_.:-]{1,200}$/;

/** The Idempotency-Key header, for the document (the handler checks it: `idempotencyKey`). */
const keyHeader = (required: boolean) => {
  const key = z.string().regex(IDEMPOTENCY_KEY).openapi({
    description:
      'Client-chosen key, unique per account: a retry with the same key and request returns the first result (200, `Idempotent-Replayed: true`) and creates nothing; with a different request, 422 `idempotency_key_reused`.',
    example: 'order-2024-03-28-0001',
  });
  return z.object({ 'idempotency-key': required ? key : key.optional() });
};

/**
 * A positive decimal as a string or a JSON number, with at most `places` decimals and
 * `intDigits` integer digits; the output is its decimal text.
 */
function positiveDecimal(places: number, intDigits: number, example: string) {
  const shape = new RegExp(`^(?:0|[1-9][0-9]{0,${intDigits - 1}})(?:\\.([0-9]+))?$`);
  return z
    .union([z.string(), z.number()], { error: 'must be a decimal string or a number' })
    .transform((v, ctx) => {
      const text = typeof v === 'number' ? (Number.isFinite(v) ? String(v) : 'x') : v;
      const m = shape.exec(text);
      if (!m) {
        const message = /^-/.test(text)
          ? 'must be greater than 0'
          : `must be a plain decimal number (digits, one optional point, at most ${intDigits} integer digits)`;
        ctx.addIssue({ code: 'custom', message });
        return z.NEVER;
      }
      if ((m[1]?.length ?? 0) > places) {
        ctx.addIssue({ code: 'custom', message: `must have at most ${places} decimal places` });
        return z.NEVER;
      }
      if (!dec(text).greaterThan(0)) {
        ctx.addIssue({ code: 'custom', message: 'must be greater than 0' });
        return z.NEVER;
      }
      return text;
    })
    .openapi({
      description: `A positive decimal, as a string or a number, at most ${places} decimal places.`,
      example,
    });
}

const OrderBody = strictObject({
  symbol: z
    .string()
    .regex(TICKER, 'must be a ticker (A-Z, 0-9, . _ = ^ -, up to 20)')
    .openapi({ example: 'AAPL' }),
  side: z.enum(SIDES).openapi({ description: 'BUY, SELL (a long), SHORT, COVER (a short).' }),
  quantity: positiveDecimal(8, 12, '100'),
  type: z.enum(ORDER_TYPES).default('MARKET'),
  limitPrice: positiveDecimal(8, 12, '150.25').optional(),
})
  .superRefine((b, ctx) => {
    if (b.type === 'LIMIT' && b.limitPrice === undefined)
      ctx.addIssue({ code: 'custom', path: ['limitPrice'], message: 'required for a LIMIT order' });
    if (b.type === 'MARKET' && b.limitPrice !== undefined)
      ctx.addIssue({ code: 'custom', path: ['limitPrice'], message: 'only for a LIMIT order' });
  })
  .openapi('OrderRequest');

const CreateClientBody = strictObject({
  name: z.string().trim().min(1, 'must not be empty').max(200).openapi({ example: 'Jane Doe' }),
  clientCode: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be 1-64 of A-Z a-z 0-9 _ . -')
    .optional()
    .openapi({ description: 'Unique business code; generated when absent.' }),
  currency: z
    .string()
    .regex(/^[A-Z]{3}$/, 'must be an ISO 4217 code (three capitals)')
    .default('USD')
    .openapi({ description: 'Currency of the margin account.' }),
}).openapi('CreateClient');

const AmountBody = strictObject({ amount: positiveDecimal(2, 13, '1000.00') }).openapi('CashAmount');

const TradesQuery = strictObject({
  symbol: z.string().regex(TICKER, 'must be a ticker').optional(),
  from: calendarDate.optional().openapi({ description: 'Trade date on or after (YYYY-MM-DD).' }),
  to: calendarDate.optional().openapi({ description: 'Trade date on or before (YYYY-MM-DD).' }),
  limit: decimalInt({ min: 1, max: 500, default: 100 }),
  before: decimalInt({ min: 1, max: Number.MAX_SAFE_INTEGER }).openapi({
    description: 'Keyset cursor: the `next_before` of the previous page.',
  }),
}).superRefine(dateRange({ maxYears: 200, kind: 'date' }));

const Client = z
  .object({
    clientId: z.number().int(),
    client_code: z.string(),
    name: z.string(),
    created_at: z.string(),
    account: z.object({
      account_id: z.number().int(),
      account_type: z.literal('MARGIN'),
      currency: z.string(),
      cash_balance: z.number(),
      loan_balance: z.number(),
    }),
  })
  .openapi('Client');

const CashMovement = z
  .object({
    movement_id: z.number().int(),
    clientId: z.number().int(),
    account_id: z.number().int(),
    kind: z.enum(['DEPOSIT', 'WITHDRAWAL']),
    amount: z.number(),
    currency: z.string(),
    cash_balance: z.number().openapi({ description: 'Credit balance after the movement.' }),
    loan_balance: z.number().openapi({ description: 'Debit balance (margin loan) after the movement.' }),
    idempotency_key: z.string().nullable(),
    placed_by: z.string().nullable(),
    created_at: z.string(),
  })
  .openapi('CashMovement');

const Trade = z
  .object({
    trade_id: z.string().openapi({ example: 'ORD-4b0c…' }),
    id: z.number().int(),
    account_id: z.number().int(),
    symbol: z.string(),
    side: z.enum(SIDES),
    quantity: z.number(),
    price: z.number().openapi({ description: 'Fill price, security currency.' }),
    order_type: z.enum(ORDER_TYPES),
    limit_price: z.number().nullable(),
    market_price: z
      .number()
      .openapi({ description: 'The latest stored price the order was checked against.' }),
    price_time: z.string(),
    fx_rate: z.number().openapi({ description: 'Security currency → account currency.' }),
    notional: z.number().openapi({ description: 'Cash moved, account currency (to the cent).' }),
    realized_pnl: z.number().nullable().openapi({
      description: 'SELL/COVER: quantity × (price − average cost), security currency; else null.',
    }),
    fees: z.number(),
    currency: z.string().openapi({ description: 'The security currency (price, realized P/L).' }),
    account_currency: z.string(),
    trade_date: z.string(),
    settlement_date: z.string(),
    idempotency_key: z.string(),
    placed_by: z
      .string()
      .nullable()
      .openapi({ description: 'Client id (or subject) of the token that placed it.' }),
    created_at: z.string(),
  })
  .openapi('Trade');

const Trades = z
  .object({
    clientId: z.number().int(),
    trades: z.array(Trade),
    next_before: z
      .number()
      .int()
      .nullable()
      .openapi({ description: 'Cursor of the next page; null on the last.' }),
  })
  .openapi('Trades');

const MarginFigures = z
  .object({
    timestamp: z.string(),
    clientId: z.number().int(),
    portfolio_value: z.number(),
    loan_amount: z.number(),
    net_equity: z.number(),
    margin_requirement: z.number(),
    margin_shortfall: z.number(),
    margin_call_triggered: z.boolean(),
    short_market_value: z.number(),
    credit_balance: z.number(),
    currency: z.string(),
    account_id: z.number().int(),
    positions: z.array(
      z.object({
        symbol: z.string(),
        quantity: z.number(),
        price: z.number(),
        price_source: z.enum(['tick', 'close']),
        price_time: z.string(),
        fx_rate: z.number(),
        market_value: z.number(),
        requirement: z.number(),
        rule: z.string(),
      }),
    ),
  })
  .openapi('WhatIfMargin', { description: 'The fields of GET /margin/{clientId}.' });

const WhatIf = z
  .object({
    accepted: z.boolean(),
    reason: z
      .object({ code: z.string(), message: z.string(), deposit_required: z.number().optional() })
      .nullable()
      .openapi({ description: 'Why the order would be refused (the code the order endpoint answers with).' }),
    fill: z
      .object({
        price: z.number(),
        fx_rate: z.number(),
        notional: z.number(),
        cash_delta: z.number(),
        quantity_after: z.number(),
        cost_basis_after: z.number(),
        realized_pnl: z.number().nullable(),
      })
      .nullable(),
    before: MarginFigures,
    after: MarginFigures.nullable(),
  })
  .openapi('WhatIf');

const num = (v: string): number => Number(v);

export function tradeOut(t: TradeRecord): z.input<typeof Trade> {
  return {
    trade_id: t.txnId,
    id: t.id,
    account_id: t.accountId,
    symbol: t.ticker,
    side: t.side,
    quantity: num(t.quantity),
    price: num(t.price),
    order_type: t.orderType,
    limit_price: t.limitPrice === null ? null : num(t.limitPrice),
    market_price: num(t.marketPrice),
    price_time: isoZ(t.priceTime),
    fx_rate: num(t.fxRate),
    notional: num(t.notional),
    realized_pnl: t.realizedPnl === null ? null : num(t.realizedPnl),
    fees: num(t.fees),
    currency: t.currency,
    account_currency: t.accountCurrency,
    trade_date: t.txnDate,
    settlement_date: t.settlementDate,
    idempotency_key: t.idempotencyKey,
    placed_by: t.placedBy,
    created_at: t.createdAt.toISOString(),
  };
}

function movementOut(clientId: number, m: CashMovementRecord): z.input<typeof CashMovement> {
  return {
    movement_id: m.id,
    clientId,
    account_id: m.accountId,
    kind: m.kind,
    amount: num(m.amount),
    currency: m.currency,
    cash_balance: num(m.cashAfter),
    loan_balance: num(m.loanAfter),
    idempotency_key: m.idempotencyKey,
    placed_by: m.placedBy,
    created_at: m.createdAt.toISOString(),
  };
}

/** The Idempotency-Key header: required for orders, optional for cash movements. */
function idempotencyKey(req: Request, required: boolean): string | null {
  const values = req.headersDistinct['idempotency-key'];
  const path = 'headers.idempotency-key';
  if (!values || values.length === 0) {
    if (required) throw BadRequestError.field(path, 'required (a client-chosen key that makes a retry safe)');
    return null;
  }
  if (values.length > 1) throw BadRequestError.field(path, 'must be given once');
  const key = values[0]!;
  if (!IDEMPOTENCY_KEY.test(key)) throw BadRequestError.field(path, 'must be 1-200 of A-Z a-z 0-9 _ . : -');
  return key;
}

/** A TradingError as the API's typed error (422 with its figures, or 404). */
async function mapped<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (!(err instanceof TradingError)) throw err;
    if (err.kind === 'not_found') throw new NotFoundError(err.message);
    const e = new HttpError(422, err.code, err.message, err.fields);
    e.extra = err.extra;
    throw e;
  }
}

const toOrder = (b: z.output<typeof OrderBody>): OrderRequest => ({
  symbol: b.symbol,
  side: b.side,
  quantity: b.quantity,
  type: b.type,
  limitPrice: b.limitPrice ?? null,
});

const REFUSALS =
  '422 refusals (`error.code`): `unknown_symbol`, `no_price`, `no_fx_rate` (the ordered security cannot be priced), `not_tradable` (BUY or SHORT of a security that is not ACTIVE), `not_marketable` (a LIMIT order the latest price does not reach; `error.latest_price`), `no_long_position`, `insufficient_long`, `no_short_position`, `insufficient_short`, `short_position_open`, `long_position_open` (one order never flips a position), `deposit_required` (Regulation T; `error.deposit_required` is the amount to deposit, to the cent, in `error.currency`, with `required_equity` and `equity_after`), `unpriced_positions` (another position cannot be valued, so margin cannot be checked), `idempotency_key_reused`, `multiple_margin_accounts`.';

export function clientRoutes(deps: Deps, opts: TradingOptions = {}): RouteDef[] {
  const { repos } = deps;
  const replayed = (req: Request): void => {
    req.res?.setHeader('Idempotent-Replayed', 'true');
  };
  /** A first request answers with the route's status (201); a replay of its Idempotency-Key, 200 and marked. */
  const answer = <T>(req: Request, wasReplayed: boolean, body: T): T | Reply<T> => {
    if (!wasReplayed) return body;
    replayed(req);
    return new Reply(200, body);
  };
  /** A deposit or a withdrawal (optional Idempotency-Key), answered as `answer` says. */
  const moveCash = async (req: Request, clientId: number, amount: string, move: typeof deposit) => {
    const key = idempotencyKey(req, false);
    const r = await mapped(() => move(deps, clientId, amount, key, asCaller(req)));
    return answer(req, r.replayed, movementOut(clientId, r.movement));
  };
  /** The route options plus who is calling, as the bearer guard verified it. */
  const asCaller = (req: Request): TradingOptions => {
    const p = req.res?.locals.principal;
    return { ...opts, placedBy: p?.clientId ?? p?.subject ?? null };
  };

  return [
    defineRoute({
      method: 'post',
      path: '/api/clients',
      summary: 'Create a client and its margin account',
      description:
        'Creates a client and one MARGIN account in `currency` (USD by default) with zero balances. 409 when `clientCode` is taken.',
      tags: ['trading'],
      access: 'trading',
      body: CreateClientBody,
      status: 201,
      response: Client,
      errors: [409],
      async handler({ body }) {
        const code = body.clientCode ?? `CL-${randomUUID()}`;
        const r = await repos.trading.createClient({
          name: body.name,
          clientCode: code,
          currency: body.currency,
        });
        if (r === 'duplicate') throw new ConflictError(`client code ${code} is taken`);
        return {
          clientId: r.clientId,
          client_code: code,
          name: body.name,
          created_at: r.createdAt.toISOString(),
          account: {
            account_id: r.accountId,
            account_type: 'MARGIN' as const,
            currency: body.currency,
            cash_balance: 0,
            loan_balance: 0,
          },
        };
      },
    }),

    defineRoute({
      method: 'post',
      path: '/api/clients/{clientId}/deposits',
      summary: 'Deposit cash',
      description:
        'Credits the margin account: the amount pays down the loan first, the rest is cash (`account_cash_move`). Optional `Idempotency-Key` header: a retry with the same key and amount returns the first deposit (200, `Idempotent-Replayed: true`); with another amount, 422 `idempotency_key_reused`.',
      tags: ['trading'],
      access: 'trading',
      params: clientParams,
      body: AmountBody,
      docsHeaders: keyHeader(false),
      status: 201,
      response: CashMovement,
      errors: [404, 422],
      async handler({ params, body, req }) {
        return moveCash(req, params.clientId, body.amount, deposit);
      },
    }),

    defineRoute({
      method: 'post',
      path: '/api/clients/{clientId}/withdrawals',
      summary: 'Withdraw cash',
      description:
        'Debits the margin account (cash first, then the loan), only up to the Regulation T excess: equity − max(maintenance requirement, 50% × (long MV + short MV)), computed now from the latest prices. More is a 422 `exceeds_withdrawable` with `error.withdrawable`; an unpriced position is a 422 `unpriced_positions` (the excess cannot be known). Optional `Idempotency-Key` as for deposits.',
      tags: ['trading'],
      access: 'trading',
      params: clientParams,
      body: AmountBody,
      docsHeaders: keyHeader(false),
      status: 201,
      response: CashMovement,
      errors: [404, 422],
      async handler({ params, body, req }) {
        return moveCash(req, params.clientId, body.amount, withdraw);
      },
    }),

    defineRoute({
      method: 'post',
      path: '/api/clients/{clientId}/orders',
      summary: 'Place a paper-trading order',
      description:
        "Fills at once or is refused; nothing rests. MARKET fills at the latest stored price (as /margin: the newer of the newest tick and the newest daily close); LIMIT only when marketable (BUY/COVER: latest ≤ limit; SELL/SHORT: latest ≥ limit), at the latest price. Updates the position (average cost; realized P/L on SELL and COVER) and the cash (BUY/COVER pay, SELL/SHORT receive, in the account currency at the price's FX rate), and records a `transactions` row, all in one transaction with the account locked. BUY and SHORT must leave Regulation T's 50% initial margin: equity after ≥ max(maintenance after, maintenance before + 50% of the order's value). The `Idempotency-Key` header is required: a retry with the same key and order returns the same trade (200, `Idempotent-Replayed: true`) and creates nothing. " +
        REFUSALS,
      tags: ['trading'],
      access: 'trading',
      params: clientParams,
      body: OrderBody,
      docsHeaders: keyHeader(true),
      status: 201,
      response: Trade,
      errors: [404, 422],
      async handler({ params, body, req }) {
        const key = idempotencyKey(req, true)!;
        const r = await mapped(() => placeOrder(deps, params.clientId, toOrder(body), key, asCaller(req)));
        return answer(req, r.replayed, tradeOut(r.trade));
      },
    }),

    defineRoute({
      method: 'post',
      path: '/api/clients/{clientId}/what-if',
      summary: 'Evaluate an order without placing it',
      description:
        "The order endpoint's evaluation with nothing stored and nothing locked: the margin before and after (GET /margin/{clientId}'s fields), the fill it would get, and whether it would be accepted; when not, `reason` carries the code the order would be refused with (and `deposit_required` for Regulation T). 422 only when the order cannot be evaluated: `unknown_symbol`, `no_price`, `no_fx_rate`, `unpriced_positions`.",
      tags: ['trading'],
      access: 'trading',
      params: clientParams,
      body: OrderBody,
      response: WhatIf,
      errors: [404, 422],
      async handler({ params, body }) {
        return mapped(() => whatIf(deps, params.clientId, toOrder(body), opts));
      },
    }),

    defineRoute({
      method: 'get',
      path: '/api/clients/{clientId}/trades',
      summary: "A client's trades",
      description:
        'Newest first, `limit` per page (default 100, at most 500); `next_before` is the cursor of the next page (`before=`). Filters: `symbol`, `from`/`to` on the trade date (inclusive).',
      tags: ['trading'],
      access: 'results:read',
      params: clientParams,
      query: TradesQuery,
      response: Trades,
      errors: [404],
      async handler({ params, query }) {
        if (!(await repos.trading.clientExists(params.clientId)))
          throw new NotFoundError(`unknown client ${params.clientId}`);
        const rows = await repos.trading.trades(params.clientId, {
          symbol: query.symbol,
          from: query.from,
          to: query.to,
          before: query.before,
          limit: query.limit + 1,
        });
        const page = rows.slice(0, query.limit);
        return {
          clientId: params.clientId,
          trades: page.map(tradeOut),
          next_before: rows.length > query.limit ? page.at(-1)!.id : null,
        };
      },
    }),
  ];
}
