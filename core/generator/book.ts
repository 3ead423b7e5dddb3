/**
 * Portfolios' trades and the client book (margin accounts, long and short positions). Holdings
 * are not written here: the holdings.snapshot job derives them from these transactions and the
 * corporate actions the corporate-actions.apply job applies, so every trade is coherent with
 * those actions: a quantity after a split is in post-split shares, a 1:n reverse split leaves
 * floor(Q / n) (the fraction is paid in lieu), a sale never exceeds what is held, a full exit
 * sells exactly that, and nothing trades at or after a bond's maturity (which closes it) or on a
 * split's ex-date. Prices are the security's close on the trade date.
 *
 * The focus quarter (the last complete one, periods.ts) is scripted so the demo's attribution
 * shows every case: see planRoles.
 */
import { addDays } from '../calendar/nyse.ts';
import { corporateActions, dailyPath, PRICE_SCALE, priceText, type DailyPath } from './paths.ts';
import { focusQuarter, quarterEnds } from './periods.ts';
import { createRng, Stream, streamKey, type Rng } from './prng.ts';
import { BENCHMARK_TICKER, type Plan, type SecuritySpec, type SecurityType } from './universe.ts';
import type { ClientInsert, PortfolioInsert, TransactionInsert } from '../db/repositories/generator.ts';

export interface PortfolioRow extends PortfolioInsert {
  type: 'EQUITY' | 'FIXED_INCOME' | 'MIXED' | 'HEDGE';
}

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

function money(x: number): string {
  return (Math.round(x * 100) / 100).toFixed(2);
}

/** What a portfolio's book is built to show in the focus quarter (see planRoles). */
export type RoleKind =
  | 'split'
  | 'reverse-split'
  | 'dividend'
  | 'coupon'
  | 'maturity'
  | 'fx-EUR'
  | 'fx-GBP'
  | 'fx-JPY'
  | 'new-position'
  | 'full-exit';

export interface Role {
  kind: RoleKind;
  portfolioId: string;
  securityId: string;
  /** The session of the role's scripted trade in the focus quarter, if it has one. */
  session: number | null;
}

export interface PortfolioBook {
  portfolios: PortfolioRow[];
  transactions: TransactionRow[];
  /** The securities forced into the books so the focus quarter holds every case (empty without one). */
  roles: Role[];
}

/** An open position as the corporate-actions.apply job will carry it: splits applied up to `at`. */
interface Position {
  qty: number;
  /** Session index through which the security's splits have been applied. */
  at: number;
}

/**
 * The quantity after the splits of sessions (pos.at, session]: a forward split of integer ratio r
 * multiplies it, a 1:n reverse split leaves floor(Q / n) shares (the fraction is paid as cash in
 * lieu), exactly as the apply job does. Integer arithmetic only.
 */
function carry(spec: SecuritySpec, pos: Position, session: number): void {
  for (const split of spec.splits) {
    if (split.session <= pos.at || split.session > session) continue;
    if (split.ratio >= 1) {
      pos.qty *= Math.round(split.ratio);
    } else {
      const n = Math.round(1 / split.ratio);
      pos.qty = Math.sign(pos.qty) * Math.floor(Math.abs(pos.qty) / n);
    }
  }
  pos.at = Math.max(pos.at, session);
}

function isExDate(spec: SecuritySpec, session: number): boolean {
  return spec.splits.some((x) => x.session === session);
}

function splitIn(spec: SecuritySpec, from: number, to: number): boolean {
  return spec.splits.some((x) => x.session > from && x.session <= to);
}

type PortfolioDef = (typeof PORTFOLIOS)[number];

function eligibleFor(def: PortfolioDef, spec: SecuritySpec): boolean {
  return (
    def.holds.includes(spec.type) &&
    (def.portfolioId !== 'PORT-001' || spec.currency === 'USD' || spec.type !== 'EQUITY')
  );
}

/**
 * Forces every case the attribution must show into the focus quarter (the last complete one):
 * a 2:1 split and a 1:10 reverse split held across their ex-dates (the reverse split on an odd
 * quantity, so a fraction is paid in lieu), a dividend, a coupon and a maturity on held
 * securities, EUR, GBP and JPY holdings across both quarter ends, a position opened inside the
 * quarter and one sold in full. Chosen from the universe's own securities and actions, in a
 * fixed order, so the same plan always gives the same roles; a universe too small for a case
 * simply lacks it.
 */
export function planRoles(plan: Plan, specs: readonly SecuritySpec[], market: Market): Role[] {
  const focus = focusQuarter(plan);
  if (!focus) return [];
  const { startSession: start, endSession: end } = focus;
  const startDate = plan.sessions[start]?.date ?? plan.from;
  const endDate = plan.sessions[end]?.date ?? plan.to;
  const rng = createRng(streamKey(plan.seed, Stream.roles, 1));
  const roles: Role[] = [];
  const used = new Set<string>();
  const def = (id: string): PortfolioDef | undefined => PORTFOLIOS.find((d) => d.portfolioId === id);
  const assign = (
    kind: RoleKind,
    candidates: readonly SecuritySpec[],
    portfolios: readonly string[],
    session: number | null = null,
  ): void => {
    for (const spec of candidates) {
      const key = spec.securityId;
      const portfolio = portfolios.find((p) => {
        const d = def(p);
        return d !== undefined && eligibleFor(d, spec) && !used.has(`${p}|${key}`);
      });
      if (portfolio === undefined) continue;
      used.add(`${portfolio}|${key}`);
      roles.push({ kind, portfolioId: portfolio, securityId: key, session });
      return;
    }
  };
  const actionsOf = (spec: SecuritySpec) => corporateActions(plan, spec, market.path(spec.index));
  const alive = (spec: SecuritySpec): boolean => spec.lastSession >= end;
  const equities = ['PORT-002', 'PORT-003', 'PORT-006', 'PORT-007', 'PORT-001'];
  const splitWithin = (spec: SecuritySpec, forward: boolean): boolean =>
    spec.splits.some((x) => x.session > start + 1 && x.session <= end && x.ratio > 1 === forward);

  assign(
    'split',
    specs.filter((s) => splitWithin(s, true)),
    equities,
  );
  const reverse = specs.find((s) => splitWithin(s, false));
  if (reverse) {
    const x = reverse.splits.find((sp) => sp.ratio < 1 && sp.session > start)?.session ?? end;
    // A sale of post-split shares after the ex-date: it must not exceed floor(Q / 10).
    assign('reverse-split', [reverse], equities, x + 2 <= end ? rng.int(x + 2, end) : null);
  }
  const dividend = (s: SecuritySpec): boolean =>
    actionsOf(s).some((a) => a.actionType === 'DIVIDEND' && a.exDate > startDate && a.exDate <= endDate);
  const spy = specs.filter((s) => s.ticker === BENCHMARK_TICKER);
  assign('dividend', [...spy, ...specs.filter((s) => s.type === 'EQUITY')].filter(dividend), [
    'PORT-001',
    ...equities,
  ]);
  const credit = ['PORT-004', 'PORT-005', 'PORT-006'];
  assign(
    'coupon',
    specs.filter(
      (s) =>
        alive(s) &&
        actionsOf(s).some((a) => a.actionType === 'COUPON' && a.exDate > startDate && a.exDate <= endDate),
    ),
    credit,
  );
  assign(
    'maturity',
    specs
      .filter((s) => s.maturityDate !== null && s.maturityDate > startDate && s.maturityDate <= endDate)
      .filter((s) => actionsOf(s).some((a) => a.actionType === 'MATURITY')),
    credit,
  );
  for (const ccy of ['EUR', 'GBP', 'JPY'] as const) {
    const inCcy = specs.filter((s) => s.currency === ccy && alive(s));
    assign(
      `fx-${ccy}`,
      [...inCcy.filter((s) => !splitIn(s, start, end)), ...inCcy.filter((s) => splitIn(s, start, end))],
      ['PORT-002', 'PORT-006', 'PORT-003', 'PORT-007', 'PORT-005', 'PORT-004'],
    );
  }
  const len = end - start;
  const plain = specs.filter(
    (s) => s.type === 'EQUITY' && s.currency === 'USD' && alive(s) && !splitIn(s, start - 1, end),
  );
  const taken = new Set(roles.map((r) => r.securityId));
  const fresh = plain.filter((s) => !taken.has(s.securityId));
  assign(
    'new-position',
    fresh,
    ['PORT-003', 'PORT-001', 'PORT-002'],
    start + 2 + Math.floor(len * 0.1) + rng.int(0, Math.floor(len * 0.2)),
  );
  const chosen = new Set(roles.map((r) => r.securityId));
  assign(
    'full-exit',
    fresh.filter((s) => !chosen.has(s.securityId)),
    ['PORT-003', 'PORT-001', 'PORT-002'],
    start + Math.floor(len * 0.55) + rng.int(0, Math.floor(len * 0.3)),
  );
  return roles;
}

export function buildPortfolios(plan: Plan, specs: readonly SecuritySpec[], market: Market): PortfolioBook {
  const ends = quarterEnds(plan).map((q) => q.session);
  const focus = focusQuarter(plan);
  const roles = planRoles(plan, specs, market);
  const portfolios: PortfolioRow[] = [];
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
    const mine = roles.filter((r) => r.portfolioId === def.portfolioId);
    const roleOf = new Map<number, Role>();
    for (const r of mine) {
      const spec = specs.find((s) => s.securityId === r.securityId);
      if (spec) roleOf.set(spec.index, r);
    }
    // The new position is bought in the focus quarter only; every other role is held from the start.
    const late = new Set(mine.filter((r) => r.kind === 'new-position').map((r) => r.securityId));
    const eligible = specs.filter((s) => eligibleFor(def, s) && !late.has(s.securityId));
    const members = shuffle(rng, eligible.slice()).slice(0, perPortfolio);
    for (const [index] of roleOf) {
      const spec = specs[index];
      if (spec && !late.has(spec.securityId) && !members.includes(spec)) members.push(spec);
    }
    const state = new Map<number, Position>();
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
    const open = (spec: SecuritySpec, when: number, odd: boolean): void => {
      const lot = lotOf(spec.type);
      const fx = market.fxRate(spec.currency, plan.sessions[when]?.date ?? plan.from);
      const unit = (market.close(spec.index, when) / PRICE_SCALE) * fx;
      const targetUsd = 1e6 + rng.next() * 9e6;
      const sign = spec.type === 'FUTURE' && def.type === 'HEDGE' ? -1 : 1;
      // An odd lot (…05 shares) for the reverse split's holder, so Q × 1/10 is not whole.
      const qty = sign * (Math.max(lot, Math.round(targetUsd / unit / lot) * lot) + (odd ? 5 : 0));
      trade(spec, when, qty);
      state.set(spec.index, { qty, at: when });
    };
    ends.forEach((s, j) => {
      const prev = j > 0 ? (ends[j - 1] ?? -1) : -1;
      const inFocus = focus !== undefined && s === focus.endSession;
      for (const spec of members) {
        const role = roleOf.get(spec.index);
        // Matured: the maturity closes the position; nothing trades in its final quarter or after.
        if (s > spec.lastSession) {
          state.delete(spec.index);
          continue;
        }
        const held = state.get(spec.index);
        if (!held) {
          if (j > 0 && (role !== undefined || !rng.chance(0.15))) continue;
          let when = Math.max(prev + 1, s - rng.int(1, 40));
          if (isExDate(spec, when)) when = when > prev + 1 ? when - 1 : when + 1;
          if (when > s || isExDate(spec, when)) continue;
          open(spec, when, role?.kind === 'reverse-split');
          continue;
        }
        // A role's quarter is scripted below; its earlier quarters trade like any other holding.
        if (role !== undefined && inFocus) continue;
        const exitNow = role === undefined && j > 0 && rng.chance(0.05);
        const adjust = rng.chance(0.35);
        if (!exitNow && !adjust) continue;
        const when = rng.int(prev + 1, s);
        if (isExDate(spec, when)) continue;
        carry(spec, held, when);
        if (exitNow) {
          trade(spec, when, -held.qty);
          state.delete(spec.index);
          continue;
        }
        const lot = lotOf(spec.type);
        const delta = Math.round((held.qty * (rng.next() * 0.7 - 0.3)) / lot) * lot;
        if (delta !== 0 && Math.sign(held.qty + delta) === Math.sign(held.qty)) {
          trade(spec, when, delta);
          held.qty += delta;
        }
      }
      if (!inFocus) return;
      // The focus quarter's scripted trades, each on its role's session.
      for (const role of mine) {
        const spec = specs.find((x) => x.securityId === role.securityId);
        if (!spec || role.session === null) continue;
        if (role.kind === 'new-position') {
          open(spec, role.session, false);
          continue;
        }
        const held = state.get(spec.index);
        if (!held) continue;
        carry(spec, held, role.session);
        if (role.kind === 'full-exit') {
          trade(spec, role.session, -held.qty);
          state.delete(spec.index);
        } else if (role.kind === 'reverse-split') {
          const sell = Math.floor((held.qty * 0.3) / 10) * 10;
          if (sell > 0 && sell < held.qty) {
            trade(spec, role.session, -sell);
            held.qty -= sell;
          }
        }
      }
    });
  });
  return { portfolios, transactions, roles };
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
