/**
 * The synthetic universe: sizes and dates resolved from a payload, then issuers, securities
 * (with the parameters of their price paths), portfolios and the client book, all drawn from
 * seeded streams so the same seed always gives the same universe.
 */
import { addDays, dayOfWeek, sessionsBetween, type Session } from '../calendar/nyse.ts';
import { cusipCheckDigit, encode, isinCheckDigit, leiWithCheck, sedolFor } from './identifiers.ts';
import { focusQuarter } from './periods.ts';
import { createRng, Stream, streamKey, type Rng } from './prng.ts';
import type { IssuerInsert } from '../db/repositories/generator.ts';

export type SecurityType = 'EQUITY' | 'BOND' | 'OPTION' | 'FUTURE' | 'CLO' | 'ABS';

export interface Plan {
  seed: number;
  scale: 'small' | 'seed';
  securities: number;
  years: number;
  /** First and last calendar dates of the daily history (inclusive). */
  from: string;
  to: string;
  sessions: Session[];
  /** Index into `sessions` of the first session with ticks (sessions.length when none). */
  tickStart: number;
  /** Identifies the dataset's shape in checkpoint keys, so a different payload never reuses them. */
  signature: string;
}

export const SCALES = {
  small: { securities: 60, years: 2, tickSessions: 20, clients: 20 },
  seed: { securities: 1000, years: 5, tickSessions: Number.POSITIVE_INFINITY, clients: 200 },
} as const;

export function resolvePlan(input: {
  seed: number;
  scale: 'small' | 'seed';
  securities?: number | undefined;
  years?: number | undefined;
  tickSessions?: number | undefined;
  endDate: string;
}): Plan {
  const base = SCALES[input.scale];
  const securities = input.securities ?? base.securities;
  const years = input.years ?? base.years;
  const to = input.endDate;
  const from = addDays(to, -Math.round(years * 365.25) + 1);
  const sessions = sessionsBetween(from, to);
  const tickSessions = Math.min(input.tickSessions ?? base.tickSessions, sessions.length);
  const tickStart = sessions.length - tickSessions;
  const signature = `${input.scale}-n${securities}-${from}-${to}-t${tickSessions}`;
  return {
    seed: input.seed,
    scale: input.scale,
    securities,
    years,
    from,
    to,
    sessions,
    tickStart,
    signature,
  };
}

export interface Issuer extends IssuerInsert {
  index: number;
  root: string;
}

export interface Split {
  /** Index of the ex-date session in plan.sessions. */
  session: number;
  ratio: number;
}

export interface SecuritySpec {
  index: number;
  securityId: string;
  ticker: string;
  name: string;
  type: SecurityType;
  assetClass: string;
  currency: string;
  exchange: string;
  issuer: Issuer | null;
  isin: string;
  cusip: string | null;
  sedol: string;
  issueDate: string | null;
  maturityDate: string | null;
  /** Annual coupon as a fraction (0.045 = 4.5%). */
  couponRate: number | null;
  couponFrequency: 1 | 2 | 4 | 12 | null;
  faceValue: number | null;
  underlying: number | null;
  strike: number | null;
  optionType: 'C' | 'P' | null;
  multiplier: number;
  marginable: boolean;
  houseMarginRate: number | null;
  status: 'ACTIVE' | 'MATURED';
  /** Price model: start level, daily volatility, mean reversion towards the start level. */
  p0: number;
  vol: number;
  reversion: number;
  /** Last session index with a price (the session before maturity for matured bonds). */
  lastSession: number;
  splits: Split[];
  dividendYield: number;
  /**
   * Loading on the market factor (marketReturns): each session's log return gains beta × the
   * market's. Equities 0.4–1.6, the benchmark 1, everything else 0.
   */
  beta: number;
}

/**
 * The benchmark the generated universe carries, an index ETF whose daily returns are the market
 * factor (plus a little tracking noise), so beta against the default RISK_BENCHMARK means
 * something on generated data.
 */
export const BENCHMARK_TICKER = 'SPY';
/** Daily volatility of the market factor (~16% a year). */
export const MARKET_VOL = 0.01;

const marketCache = new Map<string, Float64Array>();
/**
 * The market factor's log return for each session of the plan (index 0 is 0), from a stream of
 * its own: the same for every security, so their returns co-move through their betas.
 */
export function marketReturns(plan: Plan): Float64Array {
  const key = `${plan.seed}:${plan.sessions.length}`;
  let m = marketCache.get(key);
  if (!m) {
    const rng = createRng(streamKey(plan.seed, Stream.market, 0));
    m = new Float64Array(plan.sessions.length);
    for (let s = 1; s < m.length; s++) m[s] = MARKET_VOL * rng.normal();
    if (marketCache.size > 8) marketCache.clear();
    marketCache.set(key, m);
  }
  return m;
}

const COUNTRIES = [
  ['US', 'USD', 'NYSE', 40],
  ['GB', 'GBP', 'LSE', 6],
  ['DE', 'EUR', 'XETRA', 5],
  ['FR', 'EUR', 'EURONEXT', 5],
  ['JP', 'JPY', 'TSE', 6],
  ['CH', 'CHF', 'SIX', 4],
  ['CA', 'CAD', 'TSX', 5],
  ['AU', 'AUD', 'ASX', 4],
  ['NL', 'EUR', 'EURONEXT', 3],
  ['IE', 'EUR', 'EURONEXT', 2],
  ['IT', 'EUR', 'BIT', 3],
  ['ES', 'EUR', 'BME', 3],
  ['SE', 'SEK', 'NASDAQ-STO', 3],
  ['HK', 'HKD', 'HKEX', 4],
  ['SG', 'SGD', 'SGX', 3],
] as const;

export const CURRENCIES = ['USD', 'EUR', 'GBP', 'JPY', 'CHF', 'CAD', 'AUD', 'SEK', 'HKD', 'SGD'] as const;

/** Units of USD per one unit of the currency, the start of each FX random walk. */
export const FX_START: Record<string, number> = {
  EUR: 1.09,
  GBP: 1.27,
  JPY: 0.0068,
  CHF: 1.12,
  CAD: 0.74,
  AUD: 0.66,
  SEK: 0.095,
  HKD: 0.128,
  SGD: 0.74,
};

const SECTORS = [
  ['Technology', 'TechCorp', 'TEC', ['Software', 'Semiconductors', 'IT Services']],
  ['Healthcare', 'MediHealth', 'MED', ['Pharmaceuticals', 'Biotechnology', 'Medical Devices']],
  ['Financials', 'FinServ', 'FIN', ['Banks', 'Insurance', 'Asset Management']],
  ['Energy', 'EnerGen', 'ENR', ['Oil & Gas', 'Renewables']],
  ['Industrials', 'IndusWorks', 'IND', ['Aerospace', 'Machinery', 'Transport']],
  ['Consumer Discretionary', 'RetailCo', 'RTL', ['Retail', 'Automobiles', 'Leisure']],
  ['Consumer Staples', 'FoodCo', 'FOD', ['Food Products', 'Beverages', 'Household Products']],
  ['Utilities', 'PowerUtil', 'PWR', ['Electric Utilities', 'Water Utilities']],
  ['Materials', 'MatCorp', 'MAT', ['Chemicals', 'Metals & Mining']],
  ['Real Estate', 'PropTrust', 'PRP', ['REITs', 'Real Estate Services']],
  ['Communication Services', 'CommNet', 'COM', ['Telecom', 'Media']],
] as const;

const GREEK = [
  'Alpha', 'Beta', 'Gamma', 'Delta', 'Epsilon', 'Zeta', 'Eta', 'Theta', 'Iota', 'Kappa', 'Lambda', 'Mu',
  'Nu', 'Xi', 'Omicron', 'Pi', 'Rho', 'Sigma', 'Tau', 'Upsilon', 'Phi', 'Chi', 'Psi', 'Omega',
] as const; // prettier-ignore

const FUTURE_ROOTS = [
  ['ES', 'E-mini S&P 500', 5000],
  ['NQ', 'E-mini Nasdaq-100', 17000],
  ['CL', 'Crude Oil', 75],
  ['GC', 'Gold', 2000],
  ['ZN', '10-Year T-Note', 110],
  ['YM', 'E-mini Dow', 38000],
  ['SI', 'Silver', 24],
  ['NG', 'Natural Gas', 3],
] as const;
const MONTH_CODES = 'FGHJKMNQUVXZ';

/** Securities per type for a universe of n: roughly 55/29/5/4/3.5/3.5 with at least one of each. */
export function typeCounts(n: number): Record<SecurityType, number> {
  const share = { BOND: 0.29, OPTION: 0.05, FUTURE: 0.04, CLO: 0.035, ABS: 0.035 } as const;
  const counts: Record<SecurityType, number> = { EQUITY: 0, BOND: 0, OPTION: 0, FUTURE: 0, CLO: 0, ABS: 0 };
  let rest = n;
  for (const t of ['BOND', 'OPTION', 'FUTURE', 'CLO', 'ABS'] as const) {
    const c = Math.min(rest - 1, Math.max(n >= 6 ? 1 : 0, Math.round(n * share[t])));
    counts[t] = Math.max(0, c);
    rest -= counts[t];
  }
  counts.EQUITY = rest;
  return counts;
}

function weightedCountry(rng: Rng): (typeof COUNTRIES)[number] {
  const total = COUNTRIES.reduce((s, c) => s + c[3], 0);
  let r = rng.next() * total;
  for (const c of COUNTRIES) {
    r -= c[3];
    if (r < 0) return c;
  }
  return COUNTRIES[0];
}

function countryOf(code: string): (typeof COUNTRIES)[number] {
  return COUNTRIES.find((c) => c[0] === code) ?? COUNTRIES[0];
}

function round(x: number, decimals: number): number {
  const f = 10 ** decimals;
  return Math.round(x * f) / f;
}

/** A weekday on or after a date (maturities and payments never fall on a weekend). */
function weekdayOnOrAfter(date: string): string {
  let d = date;
  while (dayOfWeek(d) === 0 || dayOfWeek(d) === 6) d = addDays(d, 1);
  return d;
}

export interface Universe {
  issuers: Issuer[];
  securities: SecuritySpec[];
}

export function buildUniverse(plan: Plan): Universe {
  const rng = createRng(streamKey(plan.seed, Stream.universe));
  const n = plan.securities;
  const issuerCount = Math.max(15 + Math.round(n * 0.1), Math.round(n * 0.209));
  const issuers: Issuer[] = [];
  const sectorUse = new Map<string, number>();
  for (let i = 0; i < issuerCount; i++) {
    const country = i < COUNTRIES.length ? (COUNTRIES[i] ?? COUNTRIES[0]) : weightedCountry(rng);
    const sector = rng.pick(SECTORS);
    const k = sectorUse.get(sector[0]) ?? 0;
    sectorUse.set(sector[0], k + 1);
    const greek = GREEK[k % GREEK.length] ?? 'Alpha';
    const round24 = Math.floor(k / GREEK.length);
    issuers.push({
      index: i,
      issuerId: `ISS-${String(i + 1).padStart(3, '0')}`,
      name: `${sector[1]} ${greek}${round24 > 0 ? ` ${round24 + 1}` : ''}`,
      country: country[0],
      sector: sector[0],
      industry: rng.pick(sector[3]),
      lei: leiWithCheck(
        `5493${encode(plan.seed % 1000, 2)}${encode(i, 4)}${encode(rng.int(0, 36 ** 8 - 1), 8)}`,
      ),
      root: `${sector[2]}${greek.slice(0, 1)}${round24 > 0 ? String(round24 + 1) : ''}`,
    });
  }

  // Most listed equities are American, as in the seed: later share lines lean towards US issuers.
  const usIssuers = issuers.filter((i) => i.country === 'US').map((i) => i.index);
  const pickUs = (r: Rng): number => usIssuers[r.int(0, usIssuers.length - 1)] ?? 0;
  // n securities in all: n − 1 drawn by type, and the benchmark ETF last.
  const counts = typeCounts(Math.max(0, n - 1));
  const types: SecurityType[] = [];
  for (const t of ['EQUITY', 'BOND', 'OPTION', 'FUTURE', 'CLO', 'ABS'] as const) {
    for (let k = 0; k < counts[t]; k++) types.push(t);
  }

  const tickers = new Set<string>([BENCHMARK_TICKER]);
  const uniqueTicker = (want: string): string => {
    let t = want.slice(0, 18);
    for (let k = 2; tickers.has(t); k++) t = `${want.slice(0, 16)}.${k}`;
    tickers.add(t);
    return t;
  };
  const issueSerial = new Map<number, number>();
  const sessionCount = plan.sessions.length;
  // Splits fall in the history without ticks when there is one, so their jump shows in the raw
  // daily closes; when every session has ticks (seed scale) anywhere in the range.
  const splitSpan = plan.tickStart >= 40 ? plan.tickStart - 1 : sessionCount - 1;
  const securities: SecuritySpec[] = [];
  const equities: SecuritySpec[] = [];
  let equityNo = 0;
  let bondNo = 0;
  // The demo attributes the last complete quarter: the 2:1 split, the 1:10 reverse split and the
  // bond maturity that the book must show are placed inside it (from a stream of their own, after
  // the universe's own draws, so every other security stays as it was).
  const focus = focusQuarter(plan);
  const roles = createRng(streamKey(plan.seed, Stream.roles, 0));
  const inFocus = (lo: number, hi: number, last: number): number | null => {
    if (!focus) return null;
    const a = focus.startSession + 3;
    const b = Math.min(focus.endSession - 3, last);
    if (b - a < 8) return null;
    const span = b - a;
    return a + Math.floor(span * lo) + roles.int(0, Math.max(0, Math.floor(span * (hi - lo)) - 1));
  };

  for (let index = 0; index < types.length; index++) {
    const type = types[index] ?? 'EQUITY';
    const securityId = `SEC-${String(index + 1).padStart(4, '0')}`;
    const issuer =
      type === 'EQUITY'
        ? (issuers[
            equityNo < issuerCount ? equityNo : rng.chance(0.5) ? pickUs(rng) : rng.int(0, issuerCount - 1)
          ] ?? null)
        : type === 'OPTION' || type === 'FUTURE'
          ? null
          : (issuers[rng.int(0, issuerCount - 1)] ?? null);
    const country = countryOf(issuer?.country ?? 'US');
    const serial = issueSerial.get(issuer?.index ?? -1) ?? 0;
    issueSerial.set(issuer?.index ?? -1, serial + 1);
    const cusipBase = `${encode((plan.seed * 7919 + (issuer?.index ?? 9999) * 104729) % 36 ** 6, 6)}${encode(index % 1296, 2)}`;
    const cusip9 = cusipBase + cusipCheckDigit(cusipBase);
    const isinBase = `${type === 'OPTION' || type === 'FUTURE' ? 'US' : country[0]}${cusip9}`;
    const spec: SecuritySpec = {
      index,
      securityId,
      ticker: '',
      name: '',
      type,
      assetClass: 'Equity',
      currency: country[1],
      exchange: country[2],
      issuer,
      isin: isinBase + isinCheckDigit(isinBase),
      cusip: country[0] === 'US' || country[0] === 'CA' ? cusip9 : null,
      sedol: sedolFor(plan.seed * 10007 + index),
      issueDate: null,
      maturityDate: null,
      couponRate: null,
      couponFrequency: null,
      faceValue: null,
      underlying: null,
      strike: null,
      optionType: null,
      multiplier: 1,
      marginable: true,
      houseMarginRate: null,
      status: 'ACTIVE',
      p0: 50,
      vol: 0.02,
      reversion: 0,
      lastSession: sessionCount - 1,
      splits: [],
      dividendYield: 0,
      beta: 0,
    };

    if (type === 'EQUITY') {
      // From a stream of its own, so the universe's draws (and every other security) stay put.
      spec.beta = 0.4 + createRng(streamKey(plan.seed, Stream.market, index + 1)).next() * 1.2;
      const root = issuer?.root ?? 'EQ';
      const shareClass = serial === 0 ? '' : String.fromCharCode(65 + Math.min(serial, 25));
      spec.ticker = uniqueTicker(shareClass === '' ? root : `${root}.${shareClass}`);
      spec.name = `${issuer?.name ?? 'Equity'} ${shareClass === '' ? 'Common Stock' : `Class ${shareClass}`}`;
      spec.issueDate = addDays(plan.from, -rng.int(365, 365 * 30));
      spec.p0 = round(Math.exp(Math.log(8) + rng.next() * Math.log(400 / 8)), 2);
      spec.vol = 0.01 + rng.next() * 0.02;
      spec.dividendYield = rng.chance(0.45) ? 0.01 + rng.next() * 0.04 : 0;
      if (spec.p0 < 12) spec.houseMarginRate = 0.5;
      else if (rng.chance(0.1)) spec.houseMarginRate = 0.3;
      const lo = Math.floor(splitSpan * 0.15);
      const hi = Math.floor(splitSpan * 0.85);
      const forced = equityNo === 1 ? 2 : equityNo === 2 ? 0.1 : equityNo === 3 ? 3 : null;
      if (hi > lo + 2) {
        if (forced !== null) {
          const drawn = rng.int(lo, hi);
          // The 2:1 in the first half of the focus quarter, the 1:10 in its middle (sessions after
          // it are left for a sale of post-split shares); the 3:1 anywhere. Before the ticked
          // sessions when the quarter has room, else anywhere in it (the jump then shows in the
          // ticks and the bars rolled from them).
          const [a, b] = forced === 2 ? [0.1, 0.35] : [0.4, 0.6];
          const placed = forced === 3 ? null : (inFocus(a, b, splitSpan) ?? inFocus(a, b, sessionCount - 1));
          spec.splits.push({ session: placed ?? drawn, ratio: forced });
        } else if (rng.chance(0.02 * plan.years)) {
          spec.splits.push({ session: rng.int(lo, hi), ratio: rng.pick([2, 2, 2, 3, 4, 0.1]) });
        }
      }
      const split = spec.splits[0];
      if (split && split.ratio < 1) spec.p0 = round(1.5 + rng.next() * 3, 2);
      if (split && split.ratio > 1) spec.p0 = round(150 + rng.next() * 350, 2);
      equities.push(spec);
      equityNo++;
    } else if (type === 'BOND') {
      const rate = round(0.01 + rng.next() * 0.06, 4);
      const matures = rng.chance(0.12) && sessionCount > 40;
      spec.couponRate = rate;
      spec.couponFrequency = rng.pick([2, 2, 2, 1, 4] as const);
      spec.faceValue = 100;
      spec.issueDate = weekdayOnOrAfter(addDays(plan.from, -rng.int(200, 365 * 12)));
      spec.maturityDate = matures
        ? weekdayOnOrAfter(addDays(plan.from, rng.int(60, Math.max(61, Math.round(plan.years * 365) - 30))))
        : weekdayOnOrAfter(addDays(plan.to, rng.int(200, 365 * 25)));
      // The first bond matures inside the focus quarter, on a session (the book holds it to then).
      const maturing = bondNo === 0 ? inFocus(0.5, 0.8, sessionCount - 1) : null;
      if (maturing !== null) spec.maturityDate = plan.sessions[maturing]?.date ?? spec.maturityDate;
      bondNo++;
      spec.assetClass = 'Fixed Income';
      spec.exchange = 'OTC';
      spec.p0 = round(92 + rng.next() * 14, 4);
      spec.vol = 0.002 + rng.next() * 0.003;
      spec.reversion = 0.03;
      const yy = spec.maturityDate.slice(2, 4);
      spec.ticker = uniqueTicker(`${issuer?.root ?? 'BD'}-${(rate * 100).toFixed(2)}-${yy}`);
      spec.name = `${issuer?.name ?? 'Issuer'} ${(rate * 100).toFixed(3)}% ${spec.maturityDate.slice(0, 4)}`;
      spec.marginable = rng.chance(0.8);
    } else if (type === 'OPTION') {
      const under = equities.length > 0 ? rng.pick(equities) : null;
      spec.underlying = under?.index ?? null;
      spec.optionType = rng.chance(0.6) ? 'C' : 'P';
      const underPrice = under ? under.p0 / (under.splits[0]?.ratio ?? 1) : 50;
      spec.strike = round(Math.max(1, underPrice * (0.85 + rng.next() * 0.3)), 2);
      spec.issueDate = plan.from;
      spec.maturityDate = weekdayOnOrAfter(addDays(plan.to, rng.int(20, 400)));
      spec.multiplier = 100;
      spec.currency = 'USD';
      spec.exchange = 'CBOE';
      spec.assetClass = 'Derivative';
      spec.p0 = round(Math.max(0.5, underPrice * (0.03 + rng.next() * 0.07)), 2);
      spec.vol = 0.035 + rng.next() * 0.02;
      spec.reversion = 0.01;
      spec.marginable = false;
      const ym = spec.maturityDate.slice(2, 7).replace('-', '');
      const root = under?.ticker.replace(/[^A-Z0-9]/g, '').slice(0, 6) ?? 'OPT';
      spec.ticker = uniqueTicker(`${root}-${ym}${spec.optionType}${Math.round(spec.strike)}`);
      spec.name = `${under?.name.replace(/ (Common Stock|Class [A-Z])$/, '') ?? 'Index'} ${spec.maturityDate} ${spec.optionType === 'C' ? 'Call' : 'Put'} ${spec.strike.toFixed(2)}`;
      if (spec.underlying === null) {
        throw new Error('an option needs an equity underlying: raise `securities`');
      }
    } else if (type === 'FUTURE') {
      const root = rng.pick(FUTURE_ROOTS);
      spec.maturityDate = weekdayOnOrAfter(addDays(plan.to, rng.int(20, 500)));
      spec.issueDate = plan.from;
      const month = Number(spec.maturityDate.slice(5, 7));
      spec.ticker = uniqueTicker(
        `${root[0]}${MONTH_CODES[month - 1] ?? 'Z'}${spec.maturityDate.slice(2, 4)}`,
      );
      spec.name = `${root[1]} Future ${spec.maturityDate.slice(0, 7)}`;
      spec.currency = 'USD';
      spec.exchange = 'CME';
      spec.assetClass = 'Derivative';
      spec.multiplier = 50;
      spec.p0 = round(root[2] * (0.85 + rng.next() * 0.3), 2);
      spec.vol = 0.01 + rng.next() * 0.01;
      spec.marginable = false;
    } else {
      const isClo = type === 'CLO';
      spec.couponRate = round(isClo ? 0.05 + rng.next() * 0.04 : 0.03 + rng.next() * 0.04, 4);
      spec.couponFrequency = isClo ? 4 : 12;
      spec.faceValue = 100;
      spec.issueDate = weekdayOnOrAfter(addDays(plan.from, -rng.int(100, 365 * 5)));
      spec.maturityDate = weekdayOnOrAfter(addDays(plan.to, rng.int(365, 365 * 12)));
      spec.assetClass = 'Structured Credit';
      spec.exchange = 'OTC';
      spec.currency = rng.chance(0.8) ? 'USD' : 'EUR';
      spec.p0 = round(94 + rng.next() * 6, 4);
      spec.vol = 0.0015 + rng.next() * 0.002;
      spec.reversion = 0.04;
      spec.marginable = false;
      const kind = isClo ? 'CLO' : rng.pick(['AUTO', 'CARD', 'STUD', 'EQP'] as const);
      const vintage = spec.issueDate.slice(2, 4);
      spec.ticker = uniqueTicker(`${isClo ? 'CLO' : `ABS-${kind}`}-${vintage}-${index + 1}`);
      spec.name = isClo
        ? `${issuer?.name ?? 'Manager'} CLO ${spec.issueDate.slice(0, 4)}-${serial + 1} Class A`
        : `${issuer?.name ?? 'Issuer'} ${kind} Receivables Trust ${spec.issueDate.slice(0, 4)}-${serial + 1}`;
    }

    if (spec.maturityDate !== null && spec.maturityDate <= plan.to) {
      spec.status = 'MATURED';
      let last = -1;
      for (let s = 0; s < sessionCount; s++) {
        if ((plan.sessions[s]?.date ?? '') < spec.maturityDate) last = s;
      }
      spec.lastSession = last;
    }
    securities.push(spec);
  }
  if (n > 0) securities.push(benchmarkSpec(plan, types.length));
  return { issuers, securities };
}

/**
 * The benchmark ETF, after every other security (its draws disturb no other security's): US
 * listed, no splits, a 1.3% dividend yield, beta 1 and 0.1% daily tracking noise.
 */
function benchmarkSpec(plan: Plan, index: number): SecuritySpec {
  const cusipBase = `${encode((plan.seed * 7919 + 8888 * 104729) % 36 ** 6, 6)}${encode(index % 1296, 2)}`;
  const cusip9 = cusipBase + cusipCheckDigit(cusipBase);
  const isinBase = `US${cusip9}`;
  return {
    index,
    securityId: `SEC-${String(index + 1).padStart(4, '0')}`,
    ticker: BENCHMARK_TICKER,
    name: 'Synthetic Market Index ETF',
    type: 'EQUITY',
    assetClass: 'Equity',
    currency: 'USD',
    exchange: 'NYSE',
    issuer: null,
    isin: isinBase + isinCheckDigit(isinBase),
    cusip: cusip9,
    sedol: sedolFor(plan.seed * 10007 + index),
    issueDate: addDays(plan.from, -365 * 10),
    maturityDate: null,
    couponRate: null,
    couponFrequency: null,
    faceValue: null,
    underlying: null,
    strike: null,
    optionType: null,
    multiplier: 1,
    marginable: true,
    houseMarginRate: null,
    status: 'ACTIVE',
    p0: 450,
    vol: 0.001,
    reversion: 0,
    lastSession: plan.sessions.length - 1,
    splits: [],
    dividendYield: 0.013,
    beta: 1,
  };
}
