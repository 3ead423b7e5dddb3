/**
 * Paper trading (issue 11, seed 3): orders, the pre-trade what-if, deposits and withdrawals of a
 * client's margin account. The rules are core/domain/trading.ts and core/domain/margin.ts; the SQL
 * is core/db/repositories/trading.ts; this module puts them together in one transaction per
 * request, with the account row locked (`repos.trading.withAccount`), so concurrent requests on
 * one account serialize and a refused request changes nothing.
 *
 * An order, in that transaction:
 *  1. the idempotency key: an order already stored under it (same account) is returned as it is
 *     when the request is the same (SHA-256 of its canonical form), refused
 *     (`idempotency_key_reused`) when it differs. Refusals store nothing, so a refused order's
 *     key can be used again (a retry after a deposit is evaluated afresh);
 *  2. the book: every position of the account and the ordered security, each with its latest
 *     price (the newer of the newest tick and the newest daily close: /margin's rule, one SQL
 *     definition) and FX rate to the account currency;
 *  3. the price: a MARKET order fills at the latest price; a LIMIT order only when marketable
 *     against it (BUY/COVER: latest ≤ limit; SELL/SHORT: latest ≥ limit), and then at the latest
 *     price, which is at least as good as the limit (a marketable limit order executes at the
 *     market, as on any venue; the limit is a bound). Paper trading keeps no resting book: an
 *     order that is not marketable is refused (`not_marketable`), never queued;
 *  4. the position (average cost, realized P/L, no flips) and the cash (notional to the cent);
 *  5. Regulation T for BUY and SHORT: margin before and after with accountMargin(), refused with
 *     `deposit_required` and the amount to the cent when it would breach;
 *  6. writes: the `transactions` row (the audit record, with the market price, FX rate, notional
 *     and realized P/L), the position, and the cash through `account_cash_move()`.
 *
 * Trade date = the exchange date of the clock; settlement T+1 on the NYSE calendar; fees 0.
 */
import { createHash } from 'node:crypto';
import { nextTradingDay, sessionDateOf } from './calendar/nyse.ts';
import type { AccountTx, BookRow, CashMovementRecord, TradeRecord } from './db/repositories/trading.ts';
import type { MarginBookRow } from './db/repositories/clients.ts';
import type { Deps } from './deps.ts';
import { accountMargin, type AccountMargin, type HouseRules, type MarginPosition } from './domain/margin.ts';
import { dec, ONE, round, toNumeric, ZERO, type Dec } from './domain/money.ts';
import {
  applyFill,
  cashDelta,
  cashMove,
  COST_PLACES,
  isMarketable,
  isOpening,
  notional,
  regTCheck,
  withdrawable,
  type OrderType,
  type Side,
} from './domain/trading.ts';

/** A refusal with its HTTP meaning; the API maps `kind` to a status. */
export class TradingError extends Error {
  readonly kind: 'not_found' | 'unprocessable';
  readonly code: string;
  readonly fields: { path: string; message: string }[] | undefined;
  /** Extra machine-readable figures for the error body (e.g. `deposit_required`). */
  readonly extra: Record<string, unknown> | undefined;
  constructor(
    kind: TradingError['kind'],
    code: string,
    message: string,
    opts: { fields?: { path: string; message: string }[]; extra?: Record<string, unknown> } = {},
  ) {
    super(message);
    this.name = 'TradingError';
    this.kind = kind;
    this.code = code;
    this.fields = opts.fields;
    this.extra = opts.extra;
  }
}

export interface OrderRequest {
  symbol: string;
  side: Side;
  /** Decimal text, > 0. */
  quantity: string;
  type: OrderType;
  /** Decimal text, > 0; present exactly for LIMIT orders. */
  limitPrice: string | null;
}

/** SHA-256 of the order's canonical form: `10`, `10.0` and `10.00` are the same quantity. */
export function orderHash(o: OrderRequest): string {
  const canon = [
    o.symbol,
    o.side,
    dec(o.quantity).toFixed(),
    o.type,
    o.limitPrice ? dec(o.limitPrice).toFixed() : '',
  ];
  return createHash('sha256').update(JSON.stringify(canon)).digest('hex');
}

export function cashHash(kind: string, amount: string): string {
  return createHash('sha256')
    .update(JSON.stringify([kind, dec(amount).toFixed(2)]))
    .digest('hex');
}

/** What /margin/{clientId} answers, computed from a book (numbers rounded to the cent). */
export interface MarginView {
  timestamp: string;
  clientId: number;
  portfolio_value: number;
  loan_amount: number;
  net_equity: number;
  margin_requirement: number;
  margin_shortfall: number;
  margin_call_triggered: boolean;
  short_market_value: number;
  credit_balance: number;
  currency: string;
  account_id: number;
  positions: {
    symbol: string;
    quantity: number;
    price: number;
    price_source: 'tick' | 'close';
    price_time: string;
    fx_rate: number;
    market_value: number;
    requirement: number;
    rule: string;
  }[];
}

const cents = (v: Dec): number => round(v, 2).toNumber();
const isoZ = (d: Date): string => d.toISOString().replace(/\.000Z$/, 'Z');

/** Security currency → account currency: 1 when equal, the stored rate or its reciprocal, null when none. */
export function fxOf(row: MarginBookRow): Dec | null {
  if (row.securityCurrency === row.accountCurrency) return ONE;
  if (row.fxRate === null) return null;
  return row.fxInverted ? ONE.dividedBy(dec(row.fxRate)) : dec(row.fxRate);
}

const held = <R extends MarginBookRow>(rows: readonly R[]): R[] =>
  rows.filter((r) => !dec(r.quantity).isZero());

function unpriced(rows: readonly MarginBookRow[], whose: string): TradingError | undefined {
  const missing: { symbol: string; message: string }[] = [];
  for (const r of held(rows)) {
    if (r.price === null)
      missing.push({ symbol: r.ticker, message: 'no stored price (no tick and no daily close)' });
    else if (fxOf(r) === null)
      missing.push({
        symbol: r.ticker,
        message: `no ${r.securityCurrency}→${r.accountCurrency} rate on or before ${r.priceDate}`,
      });
  }
  if (missing.length === 0) return undefined;
  return new TradingError(
    'unprocessable',
    'unpriced_positions',
    `cannot value ${missing.length} position(s)${whose}: ${missing.map((m) => `${m.symbol} (${m.message})`).join('; ')}`,
    { fields: missing.map((m) => ({ path: `positions.${m.symbol}`, message: m.message })) },
  );
}

/**
 * accountMargin() of a book and balances; throws `unpriced_positions` when a held row lacks a price
 * or rate (`whose`, e.g. " of client 7", is put after "position(s)" in its message). The one
 * computation behind orders, what-if and GET /margin/{clientId}.
 */
export function marginOfBook(
  rows: readonly MarginBookRow[],
  balances: { cash: Dec | string; loan: Dec | string },
  house?: HouseRules,
  whose = '',
): AccountMargin {
  const bad = unpriced(rows, whose);
  if (bad) throw bad;
  const inputs: MarginPosition[] = held(rows).map((r) => ({
    securityId: r.ticker,
    issuerId: r.issuerId,
    quantity: r.quantity,
    price: r.price,
    fxRate: fxOf(r),
    marginable: r.marginable,
    houseRate: r.houseMarginRate,
  }));
  const result = accountMargin({
    positions: inputs,
    creditBalance: balances.cash,
    debitBalance: balances.loan,
    ...(house ? { house } : {}),
  });
  if (!result.ok) throw new Error(`accountMargin flagged ${JSON.stringify(result.missing)} after the checks`);
  return result;
}

/** The /margin shape of a book's margin (held rows only, ticker order). */
export function marginView(opts: {
  clientId: number;
  accountId: number;
  currency: string;
  rows: readonly MarginBookRow[];
  margin: AccountMargin;
  now: Date;
}): MarginView {
  const rows = held(opts.rows);
  const newest = rows.reduce<Date | null>(
    (t, r) => (r.priceTime && (!t || r.priceTime > t) ? r.priceTime : t),
    null,
  );
  const byTicker = new Map(opts.margin.positions.map((p) => [p.securityId, p]));
  const m = opts.margin;
  return {
    timestamp: isoZ(newest ?? opts.now),
    clientId: opts.clientId,
    portfolio_value: cents(m.longMarketValue),
    loan_amount: cents(m.debitBalance),
    net_equity: cents(m.equity),
    margin_requirement: cents(m.requirement),
    margin_shortfall: cents(m.shortfall),
    margin_call_triggered: m.call,
    short_market_value: cents(m.shortMarketValue),
    credit_balance: cents(m.creditBalance),
    currency: opts.currency,
    account_id: opts.accountId,
    positions: rows.map((r) => {
      const p = byTicker.get(r.ticker)!;
      return {
        symbol: r.ticker,
        quantity: Number(r.quantity),
        price: Number(r.price),
        price_source: r.priceSource!,
        price_time: isoZ(r.priceTime!),
        fx_rate: fxOf(r)!.toNumber(),
        market_value: cents(p.marketValue),
        requirement: cents(p.requirement),
        rule: p.rule,
      };
    }),
  };
}

/** A plan for one order against a locked (or, for the what-if, read) account. */
interface Plan {
  row: BookRow;
  price: Dec;
  fx: Dec;
  quantityAfter: Dec;
  costBasisAfter: Dec;
  realizedPnl: Dec | null;
  notional: Dec;
  cashDelta: Dec;
  rowsAfter: BookRow[];
  balancesAfter: { cash: Dec; loan: Dec };
  /** Null when margin was not needed (closing order outside the what-if). */
  before: AccountMargin | null;
  after: AccountMargin | null;
  refusal: TradingError | null;
}

function orderFields(path: string, message: string) {
  return { fields: [{ path, message }] };
}

/** Steps 2–5 of the module doc; never writes. `withMargin`: compute margin even for closing orders. */
function plan(
  rows: readonly BookRow[],
  account: { currency: string; cashBalance: string; loanBalance: string },
  order: OrderRequest,
  withMargin: boolean,
  house?: HouseRules,
): Plan {
  const row = rows.find((r) => r.ticker === order.symbol);
  if (!row)
    throw new TradingError(
      'unprocessable',
      'unknown_symbol',
      `unknown symbol ${order.symbol}`,
      orderFields('body.symbol', 'no such security'),
    );
  if (row.price === null)
    throw new TradingError(
      'unprocessable',
      'no_price',
      `no stored price for ${order.symbol} (no tick and no daily close)`,
      orderFields('body.symbol', 'no stored price'),
    );
  const fx = fxOf(row);
  if (fx === null)
    throw new TradingError(
      'unprocessable',
      'no_fx_rate',
      `no ${row.securityCurrency}→${row.accountCurrency} rate on or before ${row.priceDate} for ${order.symbol}`,
      orderFields('body.symbol', `no ${row.securityCurrency}→${row.accountCurrency} rate`),
    );
  const price = dec(row.price);
  let refusal: TradingError | null = null;
  if (isOpening(order.side) && row.status !== 'ACTIVE')
    refusal = new TradingError(
      'unprocessable',
      'not_tradable',
      `${order.symbol} is ${row.status}: only closing orders (SELL, COVER) are accepted`,
      orderFields('body.symbol', `security is ${row.status}`),
    );
  if (!refusal && order.type === 'LIMIT' && !isMarketable(order.side, price, order.limitPrice!)) {
    refusal = new TradingError(
      'unprocessable',
      'not_marketable',
      `${order.side} limit ${order.limitPrice} is not marketable against the latest price ${row.price} of ${order.symbol} (no resting orders in paper trading)`,
      { ...orderFields('body.limitPrice', 'not marketable'), extra: { latest_price: Number(row.price) } },
    );
  }
  const fill = applyFill(
    { quantity: dec(row.quantity), costBasis: dec(row.costBasis ?? '0') },
    order.side,
    order.quantity,
    price,
  );
  if (!fill.ok) {
    if (!refusal)
      refusal = new TradingError(
        'unprocessable',
        fill.code,
        fill.message,
        orderFields('body.quantity', fill.message),
      );
    return {
      row,
      price,
      fx,
      quantityAfter: dec(row.quantity),
      costBasisAfter: dec(row.costBasis ?? '0'),
      realizedPnl: null,
      notional: ZERO,
      cashDelta: ZERO,
      rowsAfter: [...rows],
      balancesAfter: { cash: dec(account.cashBalance), loan: dec(account.loanBalance) },
      before: withMargin
        ? marginOfBook(rows, { cash: account.cashBalance, loan: account.loanBalance }, house)
        : null,
      after: null,
      refusal,
    };
  }
  const value = notional(order.quantity, price, fx);
  const delta = cashDelta(order.side, value);
  const balancesAfter = cashMove({ cash: account.cashBalance, loan: account.loanBalance }, delta);
  const quantityAfter = fill.holding.quantity;
  const costBasisAfter = fill.holding.costBasis;
  const rowsAfter = rows.map((r) =>
    r === row
      ? { ...r, quantity: quantityAfter.toFixed(), costBasis: costBasisAfter.toFixed(COST_PLACES) }
      : r,
  );
  let before: AccountMargin | null = null;
  let after: AccountMargin | null = null;
  if (withMargin || isOpening(order.side)) {
    before = marginOfBook(rows, { cash: account.cashBalance, loan: account.loanBalance }, house);
    after = marginOfBook(rowsAfter, balancesAfter, house);
  }
  if (!refusal && isOpening(order.side)) {
    const check = regTCheck({ before: before!, after: after!, orderValue: value });
    if (!check.ok) {
      const deposit = toNumeric(check.depositRequired);
      refusal = new TradingError(
        'unprocessable',
        'deposit_required',
        `Regulation T: ${order.side} ${order.quantity} ${order.symbol} (${toNumeric(value)} ${account.currency}) needs equity of ${toNumeric(check.required)} ${account.currency} after the order; equity would be ${toNumeric(check.equityAfter)}: deposit ${deposit} ${account.currency} first`,
        {
          fields: [{ path: 'body.quantity', message: `needs a deposit of ${deposit} ${account.currency}` }],
          extra: {
            deposit_required: Number(deposit),
            currency: account.currency,
            required_equity: cents(check.required),
            equity_after: cents(check.equityAfter),
          },
        },
      );
    }
  }
  return {
    row,
    price,
    fx,
    quantityAfter,
    costBasisAfter,
    realizedPnl: fill.realizedPnl,
    notional: value,
    cashDelta: delta,
    rowsAfter,
    balancesAfter,
    before,
    after,
    refusal,
  };
}

function accountOutcome<T>(
  clientId: number,
  r: T | 'no_client' | 'no_account' | { severalAccounts: string[] },
): T {
  if (r === 'no_client') throw new TradingError('not_found', 'not_found', `unknown client ${clientId}`);
  if (r === 'no_account')
    throw new TradingError('not_found', 'not_found', `client ${clientId} has no margin account`);
  if (typeof r === 'object' && r !== null && 'severalAccounts' in r)
    throw new TradingError(
      'unprocessable',
      'multiple_margin_accounts',
      `client ${clientId} has margin accounts in ${(r as { severalAccounts: string[] }).severalAccounts.join(', ')}; one margin account per client is supported so far`,
    );
  return r as T;
}

export interface TradingOptions {
  /**
   * The house rules in force on an exchange date, for the margin computations: pass the same
   * source GET /margin/{clientId} uses, so an order, a what-if and /margin agree. None by default.
   */
  houseRules?: (asOf: string) => Promise<HouseRules>;
  /** Who asks (the token's client id or subject), recorded on the trade or cash movement. */
  placedBy?: string | null;
}

async function houseOf(deps: Pick<Deps, 'clock'>, opts: TradingOptions): Promise<HouseRules | undefined> {
  return opts.houseRules ? opts.houseRules(sessionDateOf(deps.clock.now())) : undefined;
}

/** Places an order (module doc). `replayed` when the idempotency key returned an earlier trade. */
export async function placeOrder(
  deps: Pick<Deps, 'repos' | 'clock'>,
  clientId: number,
  order: OrderRequest,
  idempotencyKey: string,
  opts: TradingOptions = {},
): Promise<{ trade: TradeRecord; replayed: boolean }> {
  const hash = orderHash(order);
  const house = await houseOf(deps, opts);
  const r = await deps.repos.trading.withAccount(clientId, async (tx: AccountTx) => {
    const earlier = await tx.orderByKey(idempotencyKey);
    if (earlier) {
      if (earlier.requestHash !== hash)
        throw new TradingError(
          'unprocessable',
          'idempotency_key_reused',
          `Idempotency-Key ${idempotencyKey} was used for a different order (trade ${earlier.txnId})`,
          { fields: [{ path: 'headers.idempotency-key', message: 'used for a different order' }] },
        );
      return { trade: earlier, replayed: true };
    }
    const rows = await tx.book(order.symbol);
    const p = plan(rows, tx.account, order, false, house);
    if (p.refusal) throw p.refusal;
    const txnDate = sessionDateOf(deps.clock.now());
    const trade = await tx.insertTrade({
      securityId: p.row.securityId,
      side: order.side,
      quantity: order.quantity,
      price: p.price.toFixed(),
      orderType: order.type,
      limitPrice: order.limitPrice,
      marketPrice: p.row.price!,
      priceTime: p.row.priceTime!,
      fxRate: p.fx.toFixed(),
      notional: toNumeric(p.notional),
      realizedPnl: p.realizedPnl === null ? null : toNumeric(p.realizedPnl),
      fees: '0.00',
      currency: p.row.securityCurrency,
      txnDate,
      settlementDate: nextTradingDay(txnDate),
      idempotencyKey,
      requestHash: hash,
      placedBy: opts.placedBy ?? null,
    });
    await tx.setPosition(
      p.row.securityId,
      p.quantityAfter.toFixed(),
      p.costBasisAfter.toFixed(COST_PLACES),
      p.row.costBasis !== null,
    );
    await tx.cashMove(p.cashDelta.toFixed(2));
    return { trade, replayed: false };
  });
  return accountOutcome(clientId, r);
}

export interface WhatIfResult {
  accepted: boolean;
  /** Why not, when refused: the code and message the order would be refused with. */
  reason: { code: string; message: string; deposit_required?: number } | null;
  fill: {
    price: number;
    fx_rate: number;
    notional: number;
    cash_delta: number;
    quantity_after: number;
    cost_basis_after: number;
    realized_pnl: number | null;
  } | null;
  before: MarginView;
  after: MarginView | null;
}

/** The order's outcome without placing it: nothing is locked or written. */
export async function whatIf(
  deps: Pick<Deps, 'repos' | 'clock'>,
  clientId: number,
  order: OrderRequest,
  opts: TradingOptions = {},
): Promise<WhatIfResult> {
  const house = await houseOf(deps, opts);
  const r = await deps.repos.trading.withAccount(
    clientId,
    async (tx: AccountTx) => {
      const rows = await tx.book(order.symbol);
      const p = plan(rows, tx.account, order, true, house);
      const now = deps.clock.now();
      const view = (rs: readonly BookRow[], m: AccountMargin) =>
        marginView({
          clientId,
          accountId: tx.account.accountId,
          currency: tx.account.currency,
          rows: rs,
          margin: m,
          now,
        });
      return {
        accepted: p.refusal === null,
        reason: p.refusal
          ? {
              code: p.refusal.code,
              message: p.refusal.message,
              ...(typeof p.refusal.extra?.deposit_required === 'number'
                ? { deposit_required: p.refusal.extra.deposit_required }
                : {}),
            }
          : null,
        fill: p.after
          ? {
              price: p.price.toNumber(),
              fx_rate: p.fx.toNumber(),
              notional: cents(p.notional),
              cash_delta: cents(p.cashDelta),
              quantity_after: p.quantityAfter.toNumber(),
              cost_basis_after: p.costBasisAfter.toNumber(),
              realized_pnl: p.realizedPnl === null ? null : cents(p.realizedPnl),
            }
          : null,
        before: view(rows, p.before!),
        after: p.after ? view(p.rowsAfter, p.after) : null,
      };
    },
    { lock: false },
  );
  return accountOutcome(clientId, r);
}

/** A deposit (credit pays down the loan first). An idempotency key, when given, makes a retry return the first. */
export async function deposit(
  deps: Pick<Deps, 'repos' | 'clock'>,
  clientId: number,
  amount: string,
  idempotencyKey: string | null,
  opts: TradingOptions = {},
): Promise<{ movement: CashMovementRecord; replayed: boolean }> {
  return cashMovement(deps, clientId, 'DEPOSIT', amount, idempotencyKey, opts);
}

/** A withdrawal, up to the Reg T excess (core/domain/trading.ts `withdrawable`). */
export async function withdraw(
  deps: Pick<Deps, 'repos' | 'clock'>,
  clientId: number,
  amount: string,
  idempotencyKey: string | null,
  opts: TradingOptions = {},
): Promise<{ movement: CashMovementRecord; replayed: boolean }> {
  return cashMovement(deps, clientId, 'WITHDRAWAL', amount, idempotencyKey, opts);
}

async function cashMovement(
  deps: Pick<Deps, 'repos' | 'clock'>,
  clientId: number,
  kind: 'DEPOSIT' | 'WITHDRAWAL',
  amount: string,
  idempotencyKey: string | null,
  opts: TradingOptions,
): Promise<{ movement: CashMovementRecord; replayed: boolean }> {
  const hash = idempotencyKey ? cashHash(kind, amount) : null;
  const house = kind === 'WITHDRAWAL' ? await houseOf(deps, opts) : undefined;
  const r = await deps.repos.trading.withAccount(clientId, async (tx: AccountTx) => {
    if (idempotencyKey) {
      const earlier = await tx.cashMovementByKey(idempotencyKey);
      if (earlier) {
        if (earlier.requestHash !== hash)
          throw new TradingError(
            'unprocessable',
            'idempotency_key_reused',
            `Idempotency-Key ${idempotencyKey} was used for a different request`,
            { fields: [{ path: 'headers.idempotency-key', message: 'used for a different request' }] },
          );
        return { movement: earlier, replayed: true };
      }
    }
    const value = dec(amount);
    if (kind === 'WITHDRAWAL') {
      const rows = await tx.book(null);
      const margin = marginOfBook(
        rows,
        { cash: tx.account.cashBalance, loan: tx.account.loanBalance },
        house,
      );
      const most = withdrawable(margin);
      if (value.greaterThan(most))
        throw new TradingError(
          'unprocessable',
          'exceeds_withdrawable',
          `withdrawal of ${toNumeric(value)} ${tx.account.currency} exceeds the ${toNumeric(most)} ${tx.account.currency} that may be withdrawn (equity ${toNumeric(margin.equity)} less the larger of the maintenance requirement ${toNumeric(margin.requirement)} and 50% of market value)`,
          {
            fields: [{ path: 'body.amount', message: `at most ${toNumeric(most)} may be withdrawn` }],
            extra: { withdrawable: most.toNumber(), currency: tx.account.currency },
          },
        );
    }
    const after = await tx.cashMove((kind === 'DEPOSIT' ? value : value.negated()).toFixed(2));
    const movement = await tx.insertCashMovement({
      kind,
      amount: toNumeric(value),
      cashAfter: after.cashBalance,
      loanAfter: after.loanBalance,
      idempotencyKey,
      requestHash: hash,
      placedBy: opts.placedBy ?? null,
    });
    return { movement, replayed: false };
  });
  return accountOutcome(clientId, r);
}
