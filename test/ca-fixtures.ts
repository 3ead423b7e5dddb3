/**
 * Rows for corporate-action tests, written to the real tables of a scratch database: securities,
 * portfolios, client accounts with positions (and the transaction each came from), trades, actions,
 * daily closes and FX rates; and readers of the ledger, positions and cash.
 */
import type { Knex } from '../core/db/knex.ts';
import type { Deps } from '../core/deps.ts';
import { corporateActionsApply, type CorporateActionsApplyResult } from '../jobs/processors/books.ts';
import { directContext } from '../jobs/types.ts';
import { parsePayload, type JobInput } from '../jobs/catalogue.ts';

let counter = 0;
const next = (): number => {
  counter += 1;
  return counter;
};
const tag = `${process.pid % 1000}`.padStart(3, '0');

export async function insertSecurity(
  db: Knex,
  opts: { type?: 'EQUITY' | 'BOND'; currency?: string; face?: string } = {},
): Promise<{ id: number; ticker: string }> {
  const n = next();
  const ticker = `CA${tag}X${n}`;
  const bond = opts.type === 'BOND';
  const [row] = await db('securities')
    .insert({
      security_id: `SEC-9${tag}${String(n).padStart(4, '0')}`,
      ticker,
      security_name: ticker,
      security_type: bond ? 'BOND' : 'EQUITY',
      asset_class: bond ? 'Fixed Income' : 'Equity',
      currency: opts.currency ?? 'USD',
      exchange: 'NYSE',
      maturity_date: bond ? '2030-01-01' : null,
      face_value: bond ? (opts.face ?? '1000') : null,
    })
    .returning(['id', 'ticker']);
  return row as { id: number; ticker: string };
}

export async function insertPortfolio(db: Knex): Promise<string> {
  const id = `PORT-${tag}${String(next()).padStart(4, '0')}`;
  await db('portfolios').insert({
    portfolio_id: id,
    portfolio_name: id,
    portfolio_type: 'MIXED',
    inception_date: '2020-01-01',
    base_currency: 'USD',
  });
  return id;
}

export async function insertAccount(
  db: Knex,
  opts: { currency?: string; cash?: string; loan?: string } = {},
): Promise<number> {
  const [client] = await db('clients')
    .insert({ client_code: `CA-${tag}-${next()}`, name: 'corporate actions test' })
    .returning('id');
  const [acct] = await db('accounts')
    .insert({
      client_id: (client as { id: number }).id,
      account_type: 'MARGIN',
      currency: opts.currency ?? 'USD',
      cash_balance: opts.cash ?? '0',
      loan_balance: opts.loan ?? '0',
    })
    .returning('id');
  return (acct as { id: number }).id;
}

export type Target = { portfolioId: string } | { accountId: number };

export async function insertTrade(
  db: Knex,
  target: Target,
  securityId: number,
  type: 'BUY' | 'SELL' | 'SHORT' | 'COVER',
  quantity: string,
  price: string,
  date: string,
): Promise<void> {
  await db('transactions').insert({
    txn_id: `TXN-CA-${tag}-${next()}`,
    portfolio_id: 'portfolioId' in target ? target.portfolioId : null,
    account_id: 'accountId' in target ? target.accountId : null,
    security_id: securityId,
    txn_type: type,
    quantity,
    price,
    txn_date: date,
    settlement_date: date,
    currency: 'USD',
  });
}

/** A client position as the generator writes it: the positions row and the one trade behind it. */
export async function insertPosition(
  db: Knex,
  accountId: number,
  securityId: number,
  quantity: number,
  costBasis: string,
  date: string,
): Promise<void> {
  await db('positions').insert({
    account_id: accountId,
    security_id: securityId,
    quantity,
    cost_basis: costBasis,
  });
  await insertTrade(
    db,
    { accountId },
    securityId,
    quantity > 0 ? 'BUY' : 'SHORT',
    String(Math.abs(quantity)),
    costBasis,
    date,
  );
}

export async function insertAction(
  db: Knex,
  a: {
    securityId: number;
    type: 'STOCK_SPLIT' | 'REVERSE_SPLIT' | 'DIVIDEND' | 'COUPON' | 'MATURITY';
    exDate: string;
    paymentDate?: string;
    ratio?: string;
    amount?: string;
    currency?: string;
  },
): Promise<string> {
  const actionId = `CA-T${tag}-${next()}`;
  await db('corporate_actions').insert({
    action_id: actionId,
    security_id: a.securityId,
    action_type: a.type,
    ex_date: a.exDate,
    payment_date: a.paymentDate ?? (a.type === 'DIVIDEND' || a.type === 'COUPON' ? a.exDate : null),
    ratio: a.ratio ?? null,
    amount: a.amount ?? null,
    currency: a.currency ?? null,
    source: 'test',
  });
  return actionId;
}

export async function insertClose(db: Knex, securityId: number, date: string, close: string): Promise<void> {
  await db('bars_1d').insert({
    security_id: securityId,
    session_date: date,
    open: close,
    high: close,
    low: close,
    close,
    volume: 1000,
    source: 'test',
  });
}

export async function insertFx(
  db: Knex,
  from: string,
  to: string,
  date: string,
  rate: string,
): Promise<void> {
  await db('fx_rates').insert({
    from_currency: from,
    to_currency: to,
    rate_date: date,
    rate,
    source: 'test',
  });
}

export interface LedgerView {
  entry: 'APPLY' | 'REVERSE';
  revision: number;
  restatement: number;
  portfolioId: string | null;
  accountId: number | null;
  quantityHeld: string;
  quantityDelta: string;
  costDelta: string;
  cashAmount: string;
  cashInLieu: string;
  paid: boolean;
  paidAmount: string | null;
}

export async function ledgerOf(db: Knex, actionId: string): Promise<LedgerView[]> {
  const res = await db.raw<{ rows: LedgerView[] }>(
    `select l.entry, l.action_revision as revision, l.restatement, l.portfolio_id as "portfolioId", l.account_id as "accountId",
            l.quantity_held::text as "quantityHeld", l.quantity_delta::text as "quantityDelta",
            l.cost_delta::text as "costDelta", l.cash_amount::text as "cashAmount", l.cash_in_lieu::text as "cashInLieu",
            l.paid_at is not null as paid, l.paid_amount::text as "paidAmount"
       from corporate_action_ledger l join corporate_actions a on a.id = l.action_id
      where a.action_id = ? order by l.id`,
    [actionId],
  );
  return res.rows;
}

export async function positionOf(
  db: Knex,
  accountId: number,
  securityId: number,
): Promise<{ quantity: string; costBasis: string } | null> {
  const row = await db('positions')
    .where({ account_id: accountId, security_id: securityId })
    .first<{ quantity: string; cost_basis: string } | undefined>('quantity', 'cost_basis');
  return row ? { quantity: row.quantity, costBasis: row.cost_basis } : null;
}

export async function cashOf(db: Knex, accountId: number): Promise<{ cash: string; loan: string }> {
  const row = await db('accounts')
    .where({ id: accountId })
    .first<{ cash_balance: string; loan_balance: string }>();
  return { cash: row.cash_balance, loan: row.loan_balance };
}

/** Calls the processor directly (the BullMQ tests go through real workers). */
export async function runApply(
  deps: Deps,
  payload: JobInput<'corporate-actions.apply'>,
): Promise<CorporateActionsApplyResult & { logs: string[] }> {
  const ctx = directContext();
  const result = await corporateActionsApply(deps, parsePayload('corporate-actions.apply', payload), ctx);
  return { ...result, logs: ctx.logs };
}
