/**
 * Daily price paths, corporate actions and FX walks. Prices are kept as integers scaled by
 * 10^4 (four decimals), so a daily close and the last tick of its session are the very same
 * number and print identically.
 */
import { addDays, dayOfWeek, type Session } from '../calendar/nyse.ts';
import { createRng, Stream, streamKey } from './prng.ts';
import { FX_START, marketReturns, type Plan, type SecuritySpec } from './universe.ts';
import type { ActionInsert } from '../db/repositories/generator.ts';

export const PRICE_SCALE = 10_000;

export interface DailyPath {
  /** Per session index (up to spec.lastSession), scaled by PRICE_SCALE. */
  open: Float64Array;
  high: Float64Array;
  low: Float64Array;
  close: Float64Array;
  volume: Float64Array;
  /** Split factor in force on each session (product of ratios with ex-date <= session). */
  factor: Float64Array;
}

function scaled(price: number): number {
  return Math.max(1, Math.round(price * PRICE_SCALE));
}

/**
 * A mean-reverting geometric random walk of the economic value, loading `spec.beta` on the
 * market factor (marketReturns: every security's walk shares it, and the benchmark ETF is it);
 * the raw (unadjusted) price is that value divided by the split factor, so a 2:1 split halves the
 * raw price on its ex-date.
 */
export function dailyPath(plan: Plan, spec: SecuritySpec): DailyPath {
  const n = spec.lastSession + 1;
  const rng = createRng(streamKey(plan.seed, Stream.dailyPath, spec.index));
  const path: DailyPath = {
    open: new Float64Array(n),
    high: new Float64Array(n),
    low: new Float64Array(n),
    close: new Float64Array(n),
    volume: new Float64Array(n),
    factor: new Float64Array(n),
  };
  const anchor = Math.log(spec.p0);
  const drift = spec.type === 'EQUITY' ? 0.0002 : 0;
  const market = marketReturns(plan);
  const baseVolume =
    spec.type === 'EQUITY'
      ? Math.exp(Math.log(2e5) + rng.next() * Math.log(50))
      : spec.type === 'FUTURE' || spec.type === 'OPTION'
        ? 2e4 + rng.next() * 2e5
        : 1e3 + rng.next() * 2e4;
  let x = anchor;
  let factor = 1;
  for (let s = 0; s < n; s++) {
    for (const split of spec.splits) if (split.session === s) factor *= split.ratio;
    const prev = x;
    if (s > 0)
      x = x + spec.reversion * (anchor - x) + drift + spec.beta * market[s]! + spec.vol * rng.normal();
    const gap = spec.vol * 0.3 * rng.normal();
    const open = scaled(Math.exp(prev + (s === 0 ? 0 : gap)) / factor);
    const close = scaled(Math.exp(x) / factor);
    const wiggle = spec.vol * 0.5;
    path.open[s] = open;
    path.close[s] = close;
    path.high[s] = Math.max(
      open,
      close,
      scaled((Math.max(open, close) / PRICE_SCALE) * (1 + Math.abs(rng.normal()) * wiggle)),
    );
    path.low[s] = Math.min(
      open,
      close,
      scaled((Math.min(open, close) / PRICE_SCALE) * (1 - Math.min(0.5, Math.abs(rng.normal()) * wiggle))),
    );
    // Share counts scale with the split factor: twice the shares trade after a 2:1 split.
    path.volume[s] = Math.max(1, Math.round(baseVolume * Math.exp(0.4 * rng.normal()) * factor));
    path.factor[s] = factor;
  }
  return path;
}

/** Formats a scaled price as a decimal string with four places. */
export function priceText(v: number): string {
  const i = Math.floor(v / PRICE_SCALE);
  return `${i}.${String(v - i * PRICE_SCALE).padStart(4, '0')}`;
}

export interface ActionRow extends ActionInsert {
  actionType: 'STOCK_SPLIT' | 'REVERSE_SPLIT' | 'DIVIDEND' | 'COUPON' | 'MATURITY';
}

function weekdayOnOrAfter(date: string): string {
  let d = date;
  while (dayOfWeek(d) === 0 || dayOfWeek(d) === 6) d = addDays(d, 1);
  return d;
}

function addMonths(date: string, months: number): string {
  const y = Number(date.slice(0, 4));
  const m = Number(date.slice(5, 7)) - 1 + months;
  const d = Number(date.slice(8, 10));
  const last = new Date(Date.UTC(y, m + 1, 0)).getUTCDate();
  return new Date(Date.UTC(y, m, Math.min(d, last))).toISOString().slice(0, 10);
}

function sessionIndexOnOrAfter(sessions: Session[], date: string): number {
  let lo = 0;
  let hi = sessions.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((sessions[mid]?.date ?? '') < date) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Splits (whose jump is in the raw path), quarterly dividends sized from the price before the
 * ex-date, coupons on the schedule stepped back from maturity, and maturities inside the range.
 * Coupon and maturity amounts are per unit of face value (a coupon pays face × rate / frequency).
 */
export function corporateActions(plan: Plan, spec: SecuritySpec, path: DailyPath): ActionRow[] {
  const rows: ActionRow[] = [];
  const rng = createRng(streamKey(plan.seed, Stream.actions, spec.index));
  const id = (code: string, date: string): string =>
    `CA-${spec.securityId}-${code}-${date.replaceAll('-', '')}`;
  for (const split of spec.splits) {
    const exDate = plan.sessions[split.session]?.date;
    if (exDate === undefined || split.session > spec.lastSession) continue;
    const forward = split.ratio > 1;
    rows.push({
      actionId: id(forward ? 'SPLIT' : 'RSPLIT', exDate),
      securityId: spec.securityId,
      actionType: forward ? 'STOCK_SPLIT' : 'REVERSE_SPLIT',
      exDate,
      recordDate: null,
      paymentDate: null,
      ratio: split.ratio.toFixed(10),
      amount: null,
      currency: spec.currency,
    });
  }
  if (spec.dividendYield > 0) {
    const firstYear = Number(plan.from.slice(0, 4));
    const lastYear = Number(plan.to.slice(0, 4));
    for (let y = firstYear; y <= lastYear; y++) {
      for (const month of [2, 5, 8, 11]) {
        const want = `${y}-${String(month).padStart(2, '0')}-${String(rng.int(5, 20)).padStart(2, '0')}`;
        const s = sessionIndexOnOrAfter(plan.sessions, want);
        const session = plan.sessions[s];
        if (session === undefined || s < 1 || s > spec.lastSession || session.date < plan.from) continue;
        const before = (path.close[s - 1] ?? PRICE_SCALE) / PRICE_SCALE;
        const amount = Math.max(0.01, Math.round(before * spec.dividendYield * 25) / 100);
        rows.push({
          actionId: id('DIV', session.date),
          securityId: spec.securityId,
          actionType: 'DIVIDEND',
          exDate: session.date,
          recordDate: session.date,
          paymentDate: weekdayOnOrAfter(addDays(session.date, rng.int(14, 30))),
          ratio: null,
          amount: amount.toFixed(2),
          currency: spec.currency,
        });
      }
    }
  }
  if (spec.couponRate !== null && spec.couponFrequency !== null && spec.maturityDate !== null) {
    const step = 12 / spec.couponFrequency;
    const perPeriod = (spec.couponRate / spec.couponFrequency).toFixed(8);
    for (let k = 0; ; k++) {
      const scheduled = addMonths(spec.maturityDate, -k * step);
      if (scheduled < plan.from || (spec.issueDate !== null && scheduled <= spec.issueDate)) break;
      const date = weekdayOnOrAfter(scheduled);
      if (date > plan.to) continue;
      rows.push({
        actionId: id('CPN', date),
        securityId: spec.securityId,
        actionType: 'COUPON',
        exDate: date,
        recordDate: date,
        paymentDate: date,
        ratio: null,
        amount: perPeriod,
        currency: spec.currency,
      });
    }
    if (spec.maturityDate <= plan.to && spec.maturityDate >= plan.from) {
      rows.push({
        actionId: id('MAT', spec.maturityDate),
        securityId: spec.securityId,
        actionType: 'MATURITY',
        exDate: spec.maturityDate,
        recordDate: spec.maturityDate,
        paymentDate: spec.maturityDate,
        ratio: null,
        amount: '1.00000000',
        currency: spec.currency,
      });
    }
  }
  return rows;
}

/** Every weekday from..to with each non-USD currency's rate in USD (a mean-reverting walk). */
export function fxRates(plan: Plan, currencies: readonly string[]): Map<string, Map<string, number>> {
  const out = new Map<string, Map<string, number>>();
  currencies.forEach((ccy, k) => {
    if (ccy === 'USD') return;
    const start = FX_START[ccy] ?? 1;
    const rng = createRng(streamKey(plan.seed, Stream.fx, k));
    const anchor = Math.log(start * (0.95 + rng.next() * 0.1));
    let x = anchor;
    const series = new Map<string, number>();
    for (let d = plan.from; d <= plan.to; d = addDays(d, 1)) {
      if (dayOfWeek(d) === 0 || dayOfWeek(d) === 6) continue;
      x = x + 0.01 * (anchor - x) + 0.005 * rng.normal();
      series.set(d, Number(Math.exp(x).toPrecision(8)));
    }
    out.set(ccy, series);
  });
  return out;
}
