/**
 * An independent replay of a book (for tests): trades and corporate actions in date order, with
 * the apply job's rules written out again here (a split of ratio r: Q·r, a reverse split leaves
 * floor(Q·r); a maturity closes the position), reporting every sale that exceeds what is held,
 * every trade after a maturity, and which cases each quarter holds. Decimal arithmetic; nothing
 * from core/generator.
 */
import { Decimal } from 'decimal.js';
import { sessionsBetween } from '../core/calendar/nyse.ts';

export interface ReplayTrade {
  portfolio: string;
  security: string;
  type: string;
  quantity: string;
  date: string;
}

export interface ReplayAction {
  security: string;
  type: string;
  exDate: string;
  ratio: string | null;
}

export type Case =
  | 'split'
  | 'reverse-split'
  | 'reverse-split-fraction'
  | 'dividend'
  | 'coupon'
  | 'maturity'
  | 'fx-EUR'
  | 'fx-GBP'
  | 'fx-JPY'
  | 'new-position'
  | 'full-exit';

export interface Replay {
  violations: string[];
  /** Quarter label (2024Q3) → the cases it holds, with the portfolio|security that showed each. */
  quarters: Map<string, Map<Case, string[]>>;
  /** The quarters, in order, whose start and end are both sessions of the range. */
  labels: string[];
}

/** Quarter ends of [from, to] as the session on or before each (label, session date). */
export function quarterEndSessions(from: string, to: string): { label: string; date: string }[] {
  const sessions = sessionsBetween(from, to).map((s) => s.date);
  const out: { label: string; date: string }[] = [];
  for (let y = Number(from.slice(0, 4)); y <= Number(to.slice(0, 4)); y++) {
    ['03-31', '06-30', '09-30', '12-31'].forEach((md, q) => {
      const end = `${y}-${md}`;
      if (end > to) return;
      const last = sessions.filter((d) => d <= end).at(-1);
      if (last !== undefined && out.at(-1)?.date !== last) out.push({ label: `${y}Q${q + 1}`, date: last });
    });
  }
  return out;
}

export function replayBooks(
  trades: readonly ReplayTrade[],
  actions: readonly ReplayAction[],
  currencyOf: ReadonlyMap<string, string>,
  range: { from: string; to: string },
): Replay {
  const ends = quarterEndSessions(range.from, range.to);
  const quarterOf = (date: string): string | undefined => {
    for (let k = 1; k < ends.length; k++) {
      if (date > ends[k - 1]!.date && date <= ends[k]!.date) return ends[k]!.label;
    }
    return undefined;
  };
  const quarters = new Map<string, Map<Case, string[]>>();
  const note = (date: string, c: Case, who: string): void => {
    const q = quarterOf(date);
    if (q === undefined) return;
    const m = quarters.get(q) ?? new Map<Case, string[]>();
    quarters.set(q, m);
    m.set(c, [...(m.get(c) ?? []), who]);
  };
  const violations: string[] = [];
  const keys = new Set(trades.map((t) => `${t.portfolio}|${t.security}`));
  for (const key of keys) {
    const [portfolio, security] = key.split('|') as [string, string];
    const mine = trades.filter((t) => t.portfolio === portfolio && t.security === security);
    const acts = actions.filter((a) => a.security === security);
    const dates = [
      ...new Set([...mine.map((t) => t.date), ...acts.map((a) => a.exDate), ...ends.map((e) => e.date)]),
    ].sort();
    let q = new Decimal(0);
    let matured: string | null = null;
    const atEnd = new Map<string, Decimal>();
    const opened: string[] = [];
    const exited: string[] = [];
    for (const d of dates) {
      for (const a of acts.filter((x) => x.exDate === d)) {
        if (q.isZero()) continue;
        if (a.type === 'STOCK_SPLIT' || a.type === 'REVERSE_SPLIT') {
          const r = new Decimal(a.ratio ?? '1');
          const exact = q.times(r);
          if (r.lessThan(1)) {
            note(d, 'reverse-split', key);
            if (!exact.isInteger())
              note(d, 'reverse-split-fraction', `${key} ${q.toString()}×${r.toString()}`);
            q = exact.isNegative() ? exact.ceil() : exact.floor();
          } else {
            note(d, 'split', key);
            q = exact;
          }
        } else if (a.type === 'DIVIDEND') note(d, 'dividend', key);
        else if (a.type === 'COUPON') note(d, 'coupon', key);
        else if (a.type === 'MATURITY') {
          note(d, 'maturity', key);
          q = new Decimal(0);
          matured = d;
        }
      }
      for (const t of mine.filter((x) => x.date === d)) {
        const n = new Decimal(t.quantity);
        const before = q;
        if (matured !== null)
          violations.push(`${key}: ${t.type} ${t.quantity} on ${d}, after its maturity ${matured}`);
        if (t.type === 'BUY') q = q.plus(n);
        else if (t.type === 'SHORT') q = q.minus(n);
        else if (t.type === 'SELL') {
          if (n.greaterThan(q))
            violations.push(`${key}: SELL ${t.quantity} on ${d} with ${q.toString()} held`);
          q = q.minus(n);
        } else if (t.type === 'COVER') {
          if (n.greaterThan(q.negated()))
            violations.push(`${key}: COVER ${t.quantity} on ${d} with ${q.toString()} held`);
          q = q.plus(n);
        } else violations.push(`${key}: unknown type ${t.type}`);
        if (before.isZero() && !q.isZero()) opened.push(d);
        if (!before.isZero() && q.isZero()) exited.push(d);
      }
      if (ends.some((e) => e.date === d)) atEnd.set(d, q);
    }
    for (let k = 1; k < ends.length; k++) {
      const [a, b] = [ends[k - 1]!, ends[k]!];
      const heldA = !(atEnd.get(a.date) ?? new Decimal(0)).isZero();
      const heldB = !(atEnd.get(b.date) ?? new Decimal(0)).isZero();
      const ccy = currencyOf.get(security);
      if (heldA && heldB && (ccy === 'EUR' || ccy === 'GBP' || ccy === 'JPY')) note(b.date, `fx-${ccy}`, key);
      if (!heldA && heldB && opened.some((d) => d > a.date && d <= b.date)) note(b.date, 'new-position', key);
      if (heldA && !heldB && exited.some((d) => d > a.date && d <= b.date)) note(b.date, 'full-exit', key);
    }
  }
  return { violations, quarters, labels: ends.slice(1).map((e) => e.label) };
}
