/**
 * Rows for the books tests (holdings.snapshot, variance.quarterly), inserted directly: securities,
 * portfolios, daily closes, FX rates, trades, corporate actions and ledger rows as the apply job
 * writes them (an APPLY with signed quantity_delta / cash_amount; a REVERSE negates an APPLY).
 */
import type { Knex } from 'knex';

export interface SecurityFixture {
  code: string;
  ticker: string;
  type?: 'EQUITY' | 'BOND';
  currency: string;
  face?: string;
  couponRate?: string;
  couponFrequency?: number;
  maturity?: string;
}

export async function addSecurity(db: Knex, s: SecurityFixture): Promise<number> {
  const bond = s.type === 'BOND';
  const rows = await db('securities')
    .insert({
      security_id: s.code,
      ticker: s.ticker,
      security_name: `${s.ticker} test`,
      security_type: s.type ?? 'EQUITY',
      asset_class: bond ? 'Fixed Income' : 'Equity',
      currency: s.currency,
      exchange: bond ? 'OTC' : 'NYSE',
      maturity_date: s.maturity ?? null,
      face_value: bond ? (s.face ?? '100') : null,
      coupon_rate: s.couponRate ?? null,
      coupon_frequency: s.couponFrequency ?? null,
    })
    .returning<{ id: number }[]>('id');
  return rows[0]!.id;
}

export async function addPortfolio(db: Knex, id: string, base = 'USD'): Promise<void> {
  await db('portfolios').insert({
    portfolio_id: id,
    portfolio_name: `${id} test`,
    portfolio_type: 'MIXED',
    inception_date: '2000-01-03',
    base_currency: base,
  });
}

export async function addCloses(db: Knex, securityId: number, closes: Record<string, string>): Promise<void> {
  const rows = Object.entries(closes).map(([d, c]) => ({
    security_id: securityId,
    session_date: d,
    open: c,
    high: c,
    low: c,
    close: c,
    volume: 1000,
    source: 'test',
  }));
  if (rows.length)
    await db('bars_1d')
      .insert(rows)
      .onConflict(['security_id', 'session_date'])
      .merge(['open', 'high', 'low', 'close']);
}

export async function addFx(
  db: Knex,
  from: string,
  to: string,
  rates: Record<string, string>,
): Promise<void> {
  const rows = Object.entries(rates).map(([d, r]) => ({
    from_currency: from,
    to_currency: to,
    rate_date: d,
    rate: r,
    source: 'test',
  }));
  if (rows.length)
    await db('fx_rates')
      .insert(rows)
      .onConflict(['from_currency', 'to_currency', 'rate_date'])
      .merge(['rate']);
}

let txnNo = 0;
export async function addTrade(
  db: Knex,
  t: {
    portfolio: string;
    securityId: number;
    type: 'BUY' | 'SELL' | 'SHORT' | 'COVER';
    quantity: string;
    price: string;
    date: string;
    currency: string;
    fees?: string;
  },
): Promise<string> {
  const txnId = `TXN-T${process.pid}-${++txnNo}`;
  await db('transactions').insert({
    txn_id: txnId,
    portfolio_id: t.portfolio,
    security_id: t.securityId,
    txn_type: t.type,
    quantity: t.quantity,
    price: t.price,
    txn_date: t.date,
    settlement_date: t.date,
    fees: t.fees ?? '0',
    currency: t.currency,
  });
  return txnId;
}

let actionNo = 0;
export async function addAction(
  db: Knex,
  a: {
    securityId: number;
    type: 'STOCK_SPLIT' | 'REVERSE_SPLIT' | 'DIVIDEND' | 'COUPON' | 'MATURITY';
    exDate: string;
    ratio?: string;
    amount?: string;
    currency: string;
  },
): Promise<number> {
  const rows = await db('corporate_actions')
    .insert({
      action_id: `CA-T${process.pid}-${++actionNo}`,
      security_id: a.securityId,
      action_type: a.type,
      ex_date: a.exDate,
      payment_date: a.type === 'DIVIDEND' || a.type === 'COUPON' ? a.exDate : null,
      ratio: a.ratio ?? null,
      amount: a.amount ?? null,
      currency: a.currency,
      source: 'test',
    })
    .returning<{ id: number }[]>('id');
  return rows[0]!.id;
}

export async function addLedger(
  db: Knex,
  l: {
    actionId: number;
    portfolio: string;
    entry?: 'APPLY' | 'REVERSE';
    revision?: number;
    type: 'STOCK_SPLIT' | 'REVERSE_SPLIT' | 'DIVIDEND' | 'COUPON' | 'MATURITY';
    exDate: string;
    currency: string;
    held: string;
    delta?: string;
    cash?: string;
    costDelta?: string;
    cashInLieu?: string;
    ratio?: string;
    amount?: string;
  },
): Promise<void> {
  await db('corporate_action_ledger').insert({
    action_id: l.actionId,
    action_revision: l.revision ?? 1,
    portfolio_id: l.portfolio,
    entry: l.entry ?? 'APPLY',
    action_type: l.type,
    ex_date: l.exDate,
    payment_date: l.exDate,
    ratio: l.ratio ?? null,
    amount: l.amount ?? null,
    currency: l.currency,
    quantity_held: l.held,
    quantity_delta: l.delta ?? '0',
    cost_delta: l.costDelta ?? '0',
    cash_amount: l.cash ?? '0',
    cash_in_lieu: l.cashInLieu ?? '0',
  });
}

export interface HoldingRow {
  portfolio_id: string;
  security_id: number;
  as_of_date: string;
  quantity: string;
  local_price: string | null;
  fx_rate: string | null;
  market_value: string | null;
  weight: string | null;
  cost_basis: string | null;
  accrued_interest: string | null;
  flag: string | null;
}

export async function holdingsOf(db: Knex, portfolio: string, date?: string): Promise<HoldingRow[]> {
  const rows = await db.raw<{ rows: HoldingRow[] }>(
    `select portfolio_id, security_id, as_of_date::text, quantity::text, local_price::text, fx_rate::text,
            market_value::text, weight::text, cost_basis::text, accrued_interest::text, flag
       from holdings where portfolio_id = ? and (?::date is null or as_of_date = ?::date)
      order by as_of_date, security_id`,
    [portfolio, date ?? null, date ?? null],
  );
  return rows.rows;
}
