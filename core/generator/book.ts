/**
 * Portfolios with quarter-end holdings and the trades between them, and the client book
 * (margin accounts, long and short positions). Quantities follow the corporate actions: a
 * split multiplies the quantity held across its ex-date and leaves total cost unchanged, a
 * matured bond leaves the portfolio.
 */
import { addDays } from '../calendar/nyse.ts';
import { dailyPath, PRICE_SCALE, priceText, type DailyPath } from './paths.ts';
import { createRng, Stream, streamKey, type Rng } from './prng.ts';
import type { Plan, SecuritySpec, SecurityType } from './universe.ts';
import type {
  ClientInsert,
  HoldingInsert,
  PortfolioInsert,
  TransactionInsert,
} from '../db/repositories/generator.ts';

export interface PortfolioRow extends PortfolioInsert {
  type: 'EQUITY' | 'FIXED_INCOME' | 'MIXED' | 'HEDGE';
}

/** market_value and weight are computed in SQL from these exact decimals. */
export type HoldingRow = HoldingInsert;

export interface TransactionRow extends TransactionInsert {
  txnType: 'BUY' | 'SELL' | 'SHORT' | 'COVER';
}

export type ClientRow = ClientInsert;

const PORTFOLIOS: readonly (Omit<PortfolioRow, 'inceptionDate' | 'baseCurrency'> & { holds: SecurityType[] })[] = [
  { portfolioId: 'PORT-001', name: 'US Large Cap Equity', type: 'EQUITY', benchmark: 'S&P 500', holds: ['EQUITY'] },
  { portfolioId: 'PORT-002', name: 'Global Equity Opportunities', type: 'EQUITY', benchmark: 'MSCI World', holds: ['EQUITY'] },
  { portfolioId: 'PORT-003', name: 'Equity Growth', type: 'EQUITY', benchmark: 'Russell 1000 Growth', holds: ['EQUITY'] },
  { portfolioId: 'PORT-004', name: 'Core Fixed Income', type: 'FIXED_INCOME', benchmark: 'Bloomberg US Aggregate', holds: ['BOND'] },
  { portfolioId: 'PORT-005', name: 'Global Credit & Structured', type: 'FIXED_INCOME', benchmark: 'Bloomberg Global Aggregate', holds: ['BOND', 'CLO', 'ABS'] },
  { portfolioId: 'PORT-006', name: 'Balanced 60/40', type: 'MIXED', benchmark: '60% MSCI ACWI / 40% Global Agg', holds: ['EQUITY', 'BOND'] },
  { portfolioId: 'PORT-007', name: 'Macro Hedge', type: 'HEDGE', benchmark: 'HFRI Macro', holds: ['EQUITY', 'OPTION', 'FUTURE'] },
]; // prettier-ignore

const FIRST = [
  'James',
  'Maria',
  'Wei',
  'Aisha',
  'Lukas',
  'Sofia',
  'Hiroshi',
  'Emma',
  'Carlos',
  'Priya',
  'Noah',
  'Olga',
] as const;
const LAST = [
  'Smith',
  'Garcia',
  'Chen',
  'Khan',
  'Müller',
  'Rossi',
  'Tanaka',
  'Brown',
  'Silva',
  'Patel',
  'Novak',
  'Jones',
] as const;

/** Shared lookups: daily paths (computed once per security) and FX by date. */
export class Market {
  private readonly paths = new Map<number, DailyPath>();
  private readonly plan: Plan;
  private readonly specs: readonly SecuritySpec[];
  private readonly fx: Map<string, Map<string, number>>;

  constructor(plan: Plan, specs: readonly SecuritySpec[], fx: Map<string, Map<string, number>>) {
    this.plan = plan;
    this.specs = specs;
    this.fx = fx;
  }

  path(index: number): DailyPath {
    let p = this.paths.get(index);
    if (!p) {
      const spec = this.specs[index];
      if (!spec) throw new Error(`no security #${index}`);
      p = dailyPath(this.plan, spec);
      this.paths.set(index, p);
    }
    return p;
  }

  /** Scaled close of a security on a session index. */
  close(index: number, session: number): number {
    return this.path(index).close[session] ?? PRICE_SCALE;
  }

  /** USD per unit of a currency on a weekday. */
  fxRate(currency: string, date: string): number {
    if (currency === 'USD') return 1;
    const rate = this.fx.get(currency)?.get(date);
    if (rate === undefined) throw new Error(`no ${currency} rate on ${date}`);
    return rate;
  }
}

function lotOf(type: SecurityType): number {
  if (type === 'EQUITY') return 100;
  if (type === 'FUTURE') return 1;
  if (type === 'OPTION') return 10;
  return 1000;
}

function settlement(date: string): string {
  // US equities moved from T+2 to T+1 on 2024-05-28.
  let d = date;
  for (let k = date >= '2024-05-28' ? 1 : 2; k > 0;) {
    d = addDays(d, 1);
    const dow = new Date(`${d}T00:00:00Z`).getUTCDay();
    if (dow !== 0 && dow !== 6) k--;
  }
  return d;
}

function shuffle<T>(rng: Rng, items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = rng.int(0, i);
    const t = items[i] as T;
    items[i] = items[j] as T;
    items[j] = t;
  }
  return items;
}

/** Session indices of the last session on or before each quarter-end inside the range. */
export function quarterEndSessions(plan: Plan): number[] {
  const out: number[] = [];
  for (let y = Number(plan.from.slice(0, 4)); y <= Number(plan.to.slice(0, 4)); y++) {
    for (const md of ['03-31', '06-30', '09-30', '12-31']) {
      const q = `${y}-${md}`;
      if (q > plan.to) continue;
      let idx = -1;
      for (let s = 0; s < plan.sessions.length && (plan.sessions[s]?.date ?? '') <= q; s++) idx = s;
      if (idx >= 0 && !out.includes(idx)) out.push(idx);
    }
  }
  return out;
}

function money(x: number): string {
  return (Math.round(x * 100) / 100).toFixed(2);
}

function accrued(spec: SecuritySpec, date: string): number {
  if (spec.couponRate === null || spec.couponFrequency === null || spec.maturityDate === null) return 0;
  const step = 12 / spec.couponFrequency;
  let last = spec.maturityDate;
  for (let k = 1; last > date; k++) {
    const y = Number(spec.maturityDate.slice(0, 4));
    const m = Number(spec.maturityDate.slice(5, 7)) - 1 - k * step;
    last = new Date(Date.UTC(y, m, Math.min(28, Number(spec.maturityDate.slice(8, 10)))))
      .toISOString()
      .slice(0, 10);
  }
  const days = (Date.parse(date) - Date.parse(last)) / 86_400_000;
  return ((spec.faceValue ?? 100) * spec.couponRate * days) / 365;
}

export interface PortfolioBook {
  portfolios: PortfolioRow[];
  holdings: HoldingRow[];
  transactions: TransactionRow[];
}

export function buildPortfolios(plan: Plan, specs: readonly SecuritySpec[], market: Market): PortfolioBook {
  const snapshots = quarterEndSessions(plan);
  const portfolios: PortfolioRow[] = [];
  const holdings: HoldingRow[] = [];
  const transactions: TransactionRow[] = [];
  const perPortfolio = Math.max(6, Math.round(6 + plan.securities * 0.02));
  PORTFOLIOS.forEach((def, p) => {
    const rng = createRng(streamKey(plan.seed, Stream.portfolios, p));
    portfolios.push({
      portfolioId: def.portfolioId,
      name: def.name,
      type: def.type,
      benchmark: def.benchmark,
      inceptionDate: addDays(plan.from, -rng.int(200, 3000)),
      baseCurrency: 'USD',
    });
    const eligible = specs.filter(
      (s) => def.holds.includes(s.type) && (p !== 0 || s.currency === 'USD' || s.type !== 'EQUITY'),
    );
    const members = shuffle(rng, eligible.slice()).slice(0, perPortfolio);
    const state = new Map<number, { qty: number; cost: number }>();
    let txnNo = 0;
    const trade = (spec: SecuritySpec, session: number, qty: number): void => {
      const date = plan.sessions[session]?.date ?? plan.from;
      const price = market.close(spec.index, session);
      const type = qty > 0 ? 'BUY' : 'SELL';
      txnNo++;
      transactions.push({
        txnId: `TXN-${def.portfolioId.slice(5)}-${String(txnNo).padStart(6, '0')}`,
        portfolioId: def.portfolioId,
        clientCode: null,
        securityId: spec.securityId,
        txnType: spec.type === 'FUTURE' && def.type === 'HEDGE' ? (qty > 0 ? 'COVER' : 'SHORT') : type,
        quantity: String(Math.abs(qty)),
        price: priceText(price),
        txnDate: date,
        settlementDate: settlement(date),
        fees: money(Math.abs(qty) * (price / PRICE_SCALE) * 0.0005 * market.fxRate(spec.currency, date)),
        currency: spec.currency,
      });
    };
    snapshots.forEach((s, j) => {
      const date = plan.sessions[s]?.date ?? plan.to;
      const prev = j > 0 ? (snapshots[j - 1] ?? -1) : -1;
      for (const spec of members) {
        if (s > spec.lastSession) {
          state.delete(spec.index);
          continue;
        }
        const lot = lotOf(spec.type);
        let held = state.get(spec.index);
        if (!held) {
          if (j > 0 && !rng.chance(0.15)) continue;
          const when = Math.max(0, s - rng.int(1, 40));
          const fx = market.fxRate(spec.currency, plan.sessions[when]?.date ?? plan.from);
          const unit = (market.close(spec.index, when) / PRICE_SCALE) * fx;
          const targetUsd = 1e6 + rng.next() * 9e6;
          const sign = spec.type === 'FUTURE' && def.type === 'HEDGE' ? -1 : 1;
          const qty = sign * Math.max(lot, Math.round(targetUsd / unit / lot) * lot);
          trade(spec, when, qty);
          held = { qty, cost: qty * unit };
          state.set(spec.index, held);
        } else {
          let lastSplit = prev;
          for (const split of spec.splits) {
            if (split.session > prev && split.session <= s) {
              held.qty *= split.ratio;
              lastSplit = Math.max(lastSplit, split.session);
            }
          }
          if (rng.chance(0.35) && s > lastSplit + 1) {
            const delta = Math.round((held.qty * (rng.next() * 0.7 - 0.3)) / lot) * lot;
            if (delta !== 0 && Math.sign(held.qty + delta) === Math.sign(held.qty)) {
              const when = rng.int(lastSplit + 1, s);
              const fx = market.fxRate(spec.currency, plan.sessions[when]?.date ?? plan.from);
              const unit = (market.close(spec.index, when) / PRICE_SCALE) * fx;
              trade(spec, when, delta);
              held.cost =
                Math.sign(delta) === Math.sign(held.qty)
                  ? held.cost + delta * unit
                  : (held.cost * (held.qty + delta)) / held.qty;
              held.qty += delta;
            }
          }
        }
        const fx = market.fxRate(spec.currency, date);
        holdings.push({
          portfolioId: def.portfolioId,
          securityId: spec.securityId,
          asOfDate: date,
          quantity: String(held.qty),
          localPrice: priceText(market.close(spec.index, s)),
          fxRate: fx.toFixed(10),
          costBasis: money(held.cost),
          accruedInterest: money(held.qty * accrued(spec, date) * fx),
        });
      }
    });
  });
  return { portfolios, holdings, transactions };
}

export function buildClients(
  plan: Plan,
  specs: readonly SecuritySpec[],
  market: Market,
  count: number,
): { clients: ClientRow[]; transactions: TransactionRow[] } {
  const end = plan.sessions.length - 1;
  const usable = specs.filter((s) => s.type === 'EQUITY' && s.marginable && s.lastSession === end);
  const usd = usable.filter((s) => s.currency === 'USD');
  const pool = usd.length >= 8 ? usd : usable;
  const clients: ClientRow[] = [];
  const transactions: TransactionRow[] = [];
  for (let c = 0; c < count; c++) {
    const rng = createRng(streamKey(plan.seed, Stream.clients, c));
    const clientCode = `CLIENT-${String(c + 1).padStart(4, '0')}`;
    const picks = shuffle(rng, pool.slice());
    const longs = picks.slice(0, Math.min(picks.length, rng.int(3, 6)));
    const shorts = rng.chance(0.3) ? picks.slice(longs.length, longs.length + rng.int(1, 2)) : [];
    let lmv = 0;
    let smv = 0;
    const positions: ClientRow['positions'] = [];
    let txnNo = 0;
    for (const [spec, side] of [
      ...longs.map((s) => [s, 1] as const),
      ...shorts.map((s) => [s, -1] as const),
    ]) {
      const lastSplit = Math.max(-1, ...spec.splits.map((x) => x.session));
      const when = Math.max(lastSplit + 1, end - rng.int(1, 60));
      const cost = market.close(spec.index, when);
      const px = market.close(spec.index, end) / PRICE_SCALE;
      const qty = Math.max(1, Math.round((2e4 + rng.next() * 1.3e5) / px / 10) * 10);
      if (side > 0) lmv += qty * px;
      else smv += qty * px;
      positions.push({
        securityId: spec.securityId,
        quantity: String(side * qty),
        costBasis: priceText(cost),
      });
      const date = plan.sessions[when]?.date ?? plan.to;
      txnNo++;
      transactions.push({
        txnId: `TXN-${clientCode}-${String(txnNo).padStart(4, '0')}`,
        portfolioId: null,
        clientCode,
        securityId: spec.securityId,
        txnType: side > 0 ? 'BUY' : 'SHORT',
        quantity: String(qty),
        price: priceText(cost),
        txnDate: date,
        settlementDate: settlement(date),
        fees: money(Math.min(9.99, qty * 0.005)),
        currency: spec.currency,
      });
    }
    const cash = smv > 0 ? smv * 1.5 + rng.next() * 1e4 : rng.chance(0.5) ? rng.next() * 2e4 : 0;
    // Every fifth client is leveraged so far that equity is below the 25% maintenance requirement.
    const thin = c % 5 === 2;
    const loan = thin
      ? Math.max(0, lmv + cash - smv - lmv * (0.08 + rng.next() * 0.1))
      : lmv * rng.next() * 0.45;
    clients.push({
      clientCode,
      name: `${rng.pick(FIRST)} ${rng.pick(LAST)}`,
      currency: 'USD',
      cash: money(cash),
      loan: money(loan),
      positions,
    });
  }
  return { clients, transactions };
}
