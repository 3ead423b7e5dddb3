/**
 * Seed 2's securities-platform endpoints (issue 9, item 5), read-only, behind `results:read`:
 * securities, portfolios, holdings, variance attribution per portfolio and top movers, corporate
 * actions with their ledger, FX rates. The reads are core/db/repositories/platform.ts.
 *
 * Numbers leave exactly as PostgreSQL stores them (api/exact-json.ts): money rounded to the cent
 * (half away from zero) and written with two decimals, `1587.50`; quantities, prices, rates and
 * weights digit for digit. Portfolio totals are sums in SQL numeric over the same rows the
 * details list, never sums of JS floats.
 *
 * Periods: `quarter=2025Q1`, `month=2025-03` or `from`/`to` (inclusive calendar dates) name the
 * variance rows of that period; rows are found by their `period_label` (a quarter or month, or
 * `from/to`, whichever equivalent label the run stored) and, for from/to, also by their snapshot
 * dates (`period_from`, `period_to`). The default is the latest complete quarter that has rows.
 */
import { z } from 'zod';
import { addDays, isTradingDay, previousTradingDay, sessionDateOf } from '../../core/calendar/nyse.ts';
import type {
  ActionRecord,
  PeriodSpec,
  PlatformSecurity,
  ResolvedPeriod,
  TopMoverRecord,
  VarianceDetailRecord,
} from '../../core/db/repositories/platform.ts';
import type { Deps } from '../../core/deps.ts';
import { calendarDate, decimalInt, MAX_DATE, MIN_DATE } from '../../core/input.ts';
import { cents, exact, exactJson } from '../exact-json.ts';
import { BadRequestError, defineRoute, NotFoundError, type RouteDef } from '../http.ts';

export const SECURITY_TYPES = ['EQUITY', 'BOND', 'OPTION', 'FUTURE', 'CLO', 'ABS'] as const;
export const ACTION_TYPES = ['STOCK_SPLIT', 'REVERSE_SPLIT', 'DIVIDEND', 'COUPON', 'MATURITY'] as const;
const MAX_PAGE = 500;
const MAX_OFFSET = 1_000_000;

// ---------------------------------------------------------------------------------------------
// Input

/** A code given in any case, checked upper-cased against a list (documented as the list). */
const codeOf = (values: readonly string[], description: string) =>
  z
    .string()
    .toUpperCase()
    .refine((v) => values.includes(v), { message: `must be one of ${values.join(', ')}` })
    .openapi({ enum: [...values], description: `${description} Any case.` });

const currency = (description: string) =>
  z
    .string()
    .toUpperCase()
    .regex(/^[A-Z]{3}$/, 'must be an ISO 4217 code like EUR')
    .openapi({ example: 'EUR', pattern: '^[A-Za-z]{3}$', description: `${description} Any case.` });

const portfolioId = z
  .string()
  .toUpperCase()
  .regex(/^PORT-[0-9]{3,}$/, 'must be a portfolio id like PORT-001')
  .openapi({ example: 'PORT-001', pattern: '^[Pp][Oo][Rr][Tt]-[0-9]{3,}$' });

const securityId = z
  .string()
  .toUpperCase()
  .regex(/^SEC-[0-9]{4,}$/, 'must be a security id like SEC-0001')
  .openapi({ example: 'SEC-0001', pattern: '^[Ss][Ee][Cc]-[0-9]{4,}$' });

const inYears = (label: string) => {
  const y = label.slice(0, 4);
  return y >= MIN_DATE.slice(0, 4) && y <= MAX_DATE.slice(0, 4);
};

const quarter = z
  .string()
  .toUpperCase()
  .regex(/^[0-9]{4}Q[1-4]$/, 'must be a quarter like 2025Q1')
  .refine(inYears, {
    message: `must be a quarter of a year from ${MIN_DATE.slice(0, 4)} to ${MAX_DATE.slice(0, 4)}`,
  })
  .openapi({ example: '2025Q1', pattern: '^[0-9]{4}[Qq][1-4]$', description: 'A calendar quarter.' });

const month = z
  .string()
  .regex(/^[0-9]{4}-(0[1-9]|1[0-2])$/, 'must be a month like 2025-03')
  .refine(inYears, {
    message: `must be a month of a year from ${MIN_DATE.slice(0, 4)} to ${MAX_DATE.slice(0, 4)}`,
  })
  .openapi({ example: '2025-03', pattern: '^[0-9]{4}-(0[1-9]|1[0-2])$', description: 'A calendar month.' });

const periodQuery = {
  quarter: quarter.optional(),
  month: month.optional(),
  from: calendarDate.optional().openapi({ description: 'First day of the period (with `to`).' }),
  to: calendarDate.optional().openapi({ description: 'Last day of the period (with `from`).' }),
};

const limitOf = (def: number, max: number) => decimalInt({ min: 1, max, default: def });
const offset = decimalInt({ min: 0, max: MAX_OFFSET, default: 0 });

/** Quarter label → its first and last calendar day. */
function quarterDays(label: string): { from: string; to: string } {
  const year = label.slice(0, 4);
  const q = Number(label.slice(5));
  const startMonth = String(q * 3 - 2).padStart(2, '0');
  const endMonth = String(q * 3).padStart(2, '0');
  return { from: `${year}-${startMonth}-01`, to: lastDayOfMonth(`${year}-${endMonth}`) };
}

function lastDayOfMonth(ym: string): string {
  const [y, m] = ym.split('-').map(Number) as [number, number];
  return `${ym}-${String(new Date(Date.UTC(y, m, 0)).getUTCDate()).padStart(2, '0')}`;
}

function quarterOf(date: string): string {
  return `${date.slice(0, 4)}Q${Math.floor((Number(date.slice(5, 7)) - 1) / 3) + 1}`;
}

function previousQuarter(label: string): string {
  const y = Number(label.slice(0, 4));
  const q = Number(label.slice(5));
  return q === 1 ? `${y - 1}Q4` : `${y}Q${q - 1}`;
}

function nextQuarter(label: string): string {
  const y = Number(label.slice(0, 4));
  const q = Number(label.slice(5));
  return q === 4 ? `${y + 1}Q1` : `${y}Q${q + 1}`;
}

/** Every label a run may have stored for the calendar days from..to, the plainest first. */
function labelsFor(from: string, to: string): string[] {
  const labels: string[] = [];
  const q = quarterOf(from);
  const qd = quarterDays(q);
  if (qd.from === from && qd.to === to) labels.push(q);
  if (from.endsWith('-01') && to === lastDayOfMonth(from.slice(0, 7))) labels.push(from.slice(0, 7));
  labels.push(`${from}/${to}`);
  return labels;
}

interface PeriodInput {
  quarter?: string | undefined;
  month?: string | undefined;
  from?: string | undefined;
  to?: string | undefined;
}

/**
 * The period a query names (a 400 naming the field when it names two, or half a range), or the
 * latest complete quarter as of `today` (the exchange date).
 */
function periodSpec(q: PeriodInput, today: string): { spec: PeriodSpec; asked: string } {
  const given = (['quarter', 'month', 'from', 'to'] as const).filter((k) => q[k] !== undefined);
  const conflict = (field: string) =>
    BadRequestError.field(
      `query.${field}`,
      `give one of quarter, month or from/to, not ${given.join(' and ')}`,
    );
  if (q.quarter !== undefined) {
    if (given.length > 1) throw conflict('quarter');
    const d = quarterDays(q.quarter);
    return { spec: { kind: 'labels', labels: labelsFor(d.from, d.to) }, asked: q.quarter };
  }
  if (q.month !== undefined) {
    if (given.length > 1) throw conflict('month');
    return {
      spec: { kind: 'labels', labels: labelsFor(`${q.month}-01`, lastDayOfMonth(q.month)) },
      asked: q.month,
    };
  }
  if (q.from !== undefined || q.to !== undefined) {
    if (q.from === undefined) throw BadRequestError.field('query.from', 'from and to come together');
    if (q.to === undefined) throw BadRequestError.field('query.to', 'from and to come together');
    if (q.from > q.to) throw BadRequestError.field('query.from', `must be on or before to (${q.to})`);
    return {
      spec: { kind: 'labels', labels: labelsFor(q.from, q.to), snapshots: { from: q.from, to: q.to } },
      asked: `${q.from}/${q.to}`,
    };
  }
  const latest = previousQuarter(quarterOf(today));
  return {
    spec: { kind: 'latestQuarter', notAfter: latest },
    asked: `the latest complete quarter (≤ ${latest})`,
  };
}

/**
 * The quarter-end snapshot dates between two dates: for each calendar quarter, its last NYSE
 * session (what variance.quarterly values a quarter's end at).
 */
function quarterEndSessions(first: string, last: string): string[] {
  const out: string[] = [];
  for (let q = quarterOf(first); ; q = nextQuarter(q)) {
    const end = quarterDays(q).to;
    const session = isTradingDay(end) ? end : previousTradingDay(end);
    if (session > last) break;
    if (session >= first) out.push(session);
    if (addDays(end, 1) > last) break;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Output (documentation; the bodies are written by exactJson)

const money = (example: number) =>
  z.number().openapi({
    example,
    description: 'Base-currency money from numeric, rounded to the cent (two decimals).',
  });
const moneyOrNull = (example: number) => money(example).nullable();
const numeric = (example: number, description: string) =>
  z.number().openapi({ example, description: `${description} Exactly as stored.` });

const Security = z
  .object({
    security_id: z.string().openapi({ example: 'SEC-0001' }),
    isin: z.string().nullable().openapi({ example: 'US0000000001' }),
    cusip: z.string().nullable(),
    sedol: z.string().nullable(),
    ticker: z.string().openapi({ example: 'TECH_A' }),
    security_name: z.string().openapi({ example: 'TechCorp Alpha' }),
    security_type: z.enum(SECURITY_TYPES),
    asset_class: z.string().openapi({ example: 'Equity' }),
    currency: z.string().openapi({ example: 'USD' }),
    exchange: z.string().openapi({ example: 'NYSE' }),
    issuer_id: z.string().nullable().openapi({ example: 'ISS-001' }),
    issuer_name: z.string().nullable(),
    sector: z.string().nullable().openapi({ description: "The issuer's sector.", example: 'Technology' }),
    country: z
      .string()
      .nullable()
      .openapi({ description: "The issuer's country (ISO 3166).", example: 'US' }),
    issue_date: z.string().nullable(),
    maturity_date: z.string().nullable().openapi({ description: 'Bonds, CLOs and ABS.' }),
    coupon_rate: z.number().nullable().openapi({ description: 'Annual rate as a fraction (0.045 = 4.5%).' }),
    coupon_frequency: z.number().int().nullable().openapi({ description: 'Coupons per year.' }),
    face_value: z.number().nullable(),
    status: z.string().openapi({ example: 'ACTIVE' }),
  })
  .openapi('PlatformSecurity');

const pageFields = {
  total: z.number().int().openapi({ description: 'Rows matching the filters, over all pages.' }),
  limit: z.number().int(),
  offset: z.number().int(),
  count: z.number().int().openapi({ description: 'Rows in this page.' }),
};

const SecurityPage = z.object({ ...pageFields, data: z.array(Security) }).openapi('PlatformSecurityPage');

const Portfolio = z
  .object({
    portfolio_id: z.string().openapi({ example: 'PORT-001' }),
    portfolio_name: z.string(),
    portfolio_type: z.enum(['EQUITY', 'FIXED_INCOME', 'MIXED', 'HEDGE']),
    benchmark: z.string().nullable(),
    inception_date: z.string().openapi({ example: '2020-01-02' }),
    currency: z.string().openapi({ example: 'USD', description: 'The base currency of its books.' }),
  })
  .openapi('Portfolio');

const Portfolios = z.object({ count: z.number().int(), data: z.array(Portfolio) }).openapi('Portfolios');

const Holding = z
  .object({
    security_id: z.string().openapi({ example: 'SEC-0001' }),
    ticker: z.string(),
    currency: z.string().openapi({ description: 'The security currency (local_price is in it).' }),
    portfolio_id: z.string().openapi({ example: 'PORT-001' }),
    as_of_date: z.string().openapi({ example: '2025-03-31' }),
    quantity: numeric(1500, 'Shares, or face for bonds.'),
    local_price: numeric(187.25, 'Close in the security currency (bonds: per 100 face).').nullable(),
    fx_rate: numeric(1.0825, 'Security currency → base currency.').nullable(),
    market_value: moneyOrNull(280875.0),
    weight: numeric(0.0215, 'Share of the portfolio market value that day.').nullable(),
    cost_basis: money(250000.0),
    accrued_interest: money(0),
    flag: z.string().nullable().openapi({
      description:
        'Why the holding could not be valued (a missing price or FX rate); its price, rate, value and weight are then null.',
    }),
  })
  .openapi('Holding');

const Holdings = z
  .object({
    as_of_date: z
      .string()
      .nullable()
      .openapi({ description: 'The snapshot date listed (null: no holdings at all).' }),
    period: z.number().int().nullable().openapi({ description: 'The `period` asked for, if any.' }),
    portfolio_id: z.string().nullable(),
    ...pageFields,
    data: z.array(Holding),
  })
  .openapi('Holdings');

const effects = {
  mv_start: moneyOrNull(125000),
  mv_end: moneyOrNull(131500),
  price_effect: moneyOrNull(4200),
  qty_effect: moneyOrNull(1100),
  fx_effect: moneyOrNull(-300),
  corp_action_effect: moneyOrNull(1500),
  distributions: money(0).openapi({
    description:
      'Cash received in the period (dividends, coupons, principal, cash in lieu), in the corporate-action effect.',
  }),
  total_pnl: moneyOrNull(6500).openapi({ description: 'price + qty + fx + corp_action effects.' }),
};

const VarianceDetail = z
  .object({
    security_id: z.string(),
    ticker: z.string(),
    security_type: z.string(),
    currency: z.string(),
    qty_start: numeric(100, 'Q₀.'),
    qty_end: numeric(250, 'Q₁.'),
    price_start: numeric(50, 'P₀, local.').nullable(),
    price_end: numeric(27, 'P₁, local.').nullable(),
    fx_start: numeric(1.1, 'X₀.').nullable(),
    fx_end: numeric(1.05, 'X₁.').nullable(),
    split_factor: numeric(2, 'f: the cumulative split ratio in the period.'),
    ...effects,
    flag: z.string().nullable().openapi({
      description:
        'Why the row could not be attributed (missing price or FX); its money columns are null and it is left out of the summary.',
    }),
  })
  .openapi('VarianceDetail');

const VarianceSummary = z
  .object({
    portfolio_id: z.string().openapi({ example: 'PORT-001' }),
    period_label: z.string().openapi({ example: '2025Q1' }),
    period_from: z.string().openapi({ example: '2024-12-31', description: 'The start snapshot date.' }),
    period_to: z.string().openapi({ example: '2025-03-31', description: 'The end snapshot date.' }),
    total_mv_start: money(125000000),
    total_mv_end: money(131500000),
    total_price_effect: money(4200000),
    total_qty_effect: money(1100000),
    total_fx_effect: money(-300000),
    total_corp_action_effect: money(1500000),
    total_distributions: money(0),
    total_pnl: money(6500000),
    securities: z.number().int().openapi({ description: 'Detail rows, flagged ones included.' }),
    flagged: z.number().int().openapi({ description: 'Flagged detail rows (not in the totals).' }),
  })
  .openapi('VarianceSummary');

const PortfolioVariance = z
  .object({ summary: VarianceSummary, details: z.array(VarianceDetail) })
  .openapi('PortfolioVariance');

const TopMover = z
  .object({
    portfolio_id: z.string(),
    security_id: z.string(),
    ticker: z.string(),
    security_name: z.string(),
    security_type: z.string(),
    currency: z.string(),
    mv_start: money(125000),
    mv_end: money(131500),
    price_effect: money(4200),
    qty_effect: money(1100),
    fx_effect: money(-300),
    corp_action_effect: money(1500),
    distributions: money(0),
    total_pnl: money(6500),
  })
  .openapi('TopMover');

const TopMovers = z
  .object({
    period_label: z.string(),
    period_from: z.string(),
    period_to: z.string(),
    count: z.number().int(),
    data: z.array(TopMover),
  })
  .openapi('TopMovers');

const Application = z
  .object({
    applied: z.boolean().openapi({
      description:
        'The current revision of an ACTIVE action has been applied to every book and account that held the security at its ex-date (`holders`, possibly 0) and not reversed.',
    }),
    holders: z.number().int().nullable().openapi({
      description:
        'Books and accounts holding the security the day before the ex-date when corporate-actions.apply processed the current revision (null: not processed yet).',
    }),
    processed_at: z
      .string()
      .nullable()
      .openapi({ description: 'When corporate-actions.apply processed the current revision.' }),
    entries: z.number().int(),
    apply_entries: z.number().int(),
    reverse_entries: z.number().int(),
    first_applied_at: z
      .string()
      .nullable()
      .openapi({ description: 'When the first ledger entry was written.' }),
    last_applied_at: z
      .string()
      .nullable()
      .openapi({ description: 'When the last ledger entry was written.' }),
    cash_entries: z.number().int().openapi({ description: 'Entries that move cash.' }),
    paid_entries: z.number().int().openapi({ description: 'Cash entries paid (paid_at set).' }),
    paid: z.boolean().openapi({ description: 'Every cash entry is paid (false when there is none).' }),
    last_paid_at: z.string().nullable(),
  })
  .openapi('ActionApplication');

const CorporateAction = z
  .object({
    action_id: z.string(),
    security_id: z.string(),
    ticker: z.string(),
    action_type: z.enum(ACTION_TYPES),
    ex_date: z.string(),
    record_date: z.string().nullable(),
    payment_date: z.string().nullable(),
    ratio: z.number().nullable().openapi({ description: 'New shares per old (splits).' }),
    amount: z.number().nullable().openapi({ description: 'Cash per share, or per unit of face.' }),
    currency: z.string(),
    revision: z.number().int().openapi({ description: 'Corrections of this action so far (1 = original).' }),
    status: z.enum(['ACTIVE', 'CANCELLED']),
    source: z.string(),
    updated_at: z.string(),
    ledger: Application,
  })
  .openapi('CorporateAction');

const CorporateActions = z
  .object({ ...pageFields, data: z.array(CorporateAction) })
  .openapi('CorporateActions');

const LedgerEntry = z
  .object({
    id: z.number().int(),
    entry: z.enum(['APPLY', 'REVERSE']),
    action_revision: z.number().int(),
    portfolio_id: z.string().nullable(),
    account_id: z.number().int().nullable(),
    action_type: z.enum(ACTION_TYPES),
    ex_date: z.string(),
    payment_date: z.string().nullable(),
    ratio: z.number().nullable(),
    amount: z.number().nullable(),
    currency: z.string(),
    quantity_held: z.number().openapi({ description: 'Held at the end of the day before the ex-date.' }),
    quantity_delta: z.number(),
    cost_delta: money(0),
    cash_amount: money(0),
    cash_in_lieu: money(0),
    paid_at: z.string().nullable(),
    applied_at: z.string(),
    job_id: z.string().nullable(),
  })
  .openapi('LedgerEntry');

const ActionLedger = z
  .object({ action: CorporateAction, ...pageFields, data: z.array(LedgerEntry) })
  .openapi('ActionLedger');

const FxRate = z
  .object({
    from_currency: z.string().openapi({ example: 'EUR' }),
    to_currency: z.string().openapi({ example: 'USD' }),
    rate_date: z.string().openapi({ example: '2024-12-31' }),
    rate: numeric(1.0389, 'Units of to_currency per one from_currency.'),
    source: z.string(),
  })
  .openapi('FxRate');

const FxRates = z.object({ ...pageFields, data: z.array(FxRate) }).openapi('FxRates');

// ---------------------------------------------------------------------------------------------
// Rows → bodies

const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);

function detailBody(r: VarianceDetailRecord) {
  return {
    security_id: r.security_id,
    ticker: r.ticker,
    security_type: r.security_type,
    currency: r.currency,
    qty_start: exact(r.qty_start),
    qty_end: exact(r.qty_end),
    price_start: exact(r.price_start),
    price_end: exact(r.price_end),
    fx_start: exact(r.fx_start),
    fx_end: exact(r.fx_end),
    split_factor: exact(r.split_factor),
    mv_start: cents(r.mv_start),
    mv_end: cents(r.mv_end),
    price_effect: cents(r.price_effect),
    qty_effect: cents(r.qty_effect),
    fx_effect: cents(r.fx_effect),
    corp_action_effect: cents(r.corp_action_effect),
    distributions: cents(r.distributions),
    total_pnl: cents(r.total_pnl),
    flag: r.flag,
  };
}

function moverBody(r: TopMoverRecord) {
  return {
    portfolio_id: r.portfolio_id,
    security_id: r.security_id,
    ticker: r.ticker,
    security_name: r.security_name,
    security_type: r.security_type,
    currency: r.currency,
    mv_start: cents(r.mv_start),
    mv_end: cents(r.mv_end),
    price_effect: cents(r.price_effect),
    qty_effect: cents(r.qty_effect),
    fx_effect: cents(r.fx_effect),
    corp_action_effect: cents(r.corp_action_effect),
    distributions: cents(r.distributions),
    total_pnl: cents(r.total_pnl),
  };
}

function actionBody(a: ActionRecord) {
  return {
    action_id: a.action_id,
    security_id: a.security_id,
    ticker: a.ticker,
    action_type: a.action_type,
    ex_date: a.ex_date,
    record_date: a.record_date,
    payment_date: a.payment_date,
    ratio: exact(a.ratio),
    amount: exact(a.amount),
    currency: a.currency,
    revision: a.revision,
    status: a.status,
    source: a.source,
    updated_at: a.updated_at.toISOString(),
    ledger: {
      applied: a.status === 'ACTIVE' && a.processed_current && !a.reversed_current,
      holders: a.processed_current ? a.holders : null,
      processed_at: a.processed_current ? iso(a.processed_at) : null,
      entries: a.entries,
      apply_entries: a.apply_entries,
      reverse_entries: a.reverse_entries,
      first_applied_at: iso(a.first_applied_at),
      last_applied_at: iso(a.last_applied_at),
      cash_entries: a.cash_entries,
      paid_entries: a.paid_entries,
      paid: a.cash_entries > 0 && a.paid_entries === a.cash_entries,
      last_paid_at: iso(a.last_paid_at),
    },
  };
}

const periodOut = (p: ResolvedPeriod) => ({
  period_label: p.period_label,
  period_from: p.period_from,
  period_to: p.period_to,
});

// ---------------------------------------------------------------------------------------------

const MONEY_NOTE =
  'Money is computed and summed in PostgreSQL numeric and written as JSON numbers rounded to the cent (half away from zero) with two decimals, e.g. 1587.50; quantities, prices, rates and weights are written digit for digit as stored. No figure passes through a binary float.';

export function platformRoutes(deps: Deps): RouteDef[] {
  const { repos, clock } = deps;
  const platform = repos.platform;
  const unknownPortfolio = (id: string) => new NotFoundError(`unknown portfolio ${id}`);
  const requirePortfolio = async (id: string | undefined): Promise<void> => {
    if (id !== undefined && !(await platform.portfolioExists(id))) throw unknownPortfolio(id);
  };

  return [
    defineRoute({
      method: 'get',
      path: '/api/securities',
      summary: 'Securities',
      description: `The security master with its issuers, by security_id, a page at a time: \`limit\` (default 100, at most ${MAX_PAGE}) rows from \`offset\`; \`total\` counts every match. Filters combine: \`security_type\`, \`sector\` (the issuer's, case-insensitive), \`currency\`, \`country\` (the issuer's).`,
      tags: ['securities platform'],
      access: 'results:read',
      query: z
        .object({
          security_type: codeOf(SECURITY_TYPES, 'Security type.').optional(),
          sector: z
            .string()
            .min(1)
            .max(100)
            .optional()
            .openapi({ example: 'Technology', description: "The issuer's sector, case-insensitive." }),
          currency: currency('Security currency.').optional(),
          country: z
            .string()
            .toUpperCase()
            .regex(/^[A-Z]{2}$/, 'must be an ISO 3166 country code like US')
            .optional()
            .openapi({
              example: 'US',
              pattern: '^[A-Za-z]{2}$',
              description: "The issuer's country. Any case.",
            }),
          limit: limitOf(100, MAX_PAGE),
          offset,
        })
        .strict(),
      response: SecurityPage,
      async handler({ query }) {
        const { total, rows } = await platform.securities(
          {
            securityType: query.security_type,
            sector: query.sector,
            currency: query.currency,
            country: query.country,
          },
          { limit: query.limit, offset: query.offset },
        );
        return exactJson(pageBody(query, total, rows, securityBody));
      },
    }),

    defineRoute({
      method: 'get',
      path: '/api/securities/{security_id}',
      summary: 'One security',
      description:
        "A security by its id, with its issuer's name, sector and country. 404 names an unknown id.",
      tags: ['securities platform'],
      access: 'results:read',
      params: z.object({
        security_id: securityId.openapi({ param: { description: 'Security id, any case.' } }),
      }),
      response: Security,
      errors: [404],
      async handler({ params }) {
        const sec = await platform.security(params.security_id);
        if (!sec) throw new NotFoundError(`unknown security ${params.security_id}`);
        return exactJson(securityBody(sec));
      },
    }),

    defineRoute({
      method: 'get',
      path: '/api/portfolios',
      summary: 'Portfolios',
      description: 'Every portfolio, by id, with its base currency (`currency`).',
      tags: ['securities platform'],
      access: 'results:read',
      response: Portfolios,
      async handler() {
        const rows = await platform.portfolios();
        return { count: rows.length, data: rows };
      },
    }),

    defineRoute({
      method: 'get',
      path: '/api/holdings',
      summary: 'Holdings on a date',
      description: `The daily books on one date, largest market value first (flagged holdings, which have no value, last), a page at a time (\`limit\` default 100, at most ${MAX_PAGE}; \`total\` counts all). The date: \`as_of\`, or \`period\` N = the N-th quarter-end snapshot in the books, counting from the oldest: a quarter's snapshot is its last NYSE session (the date variance.quarterly values the quarter's end at), and only quarters whose snapshot exists in holdings (of any portfolio: a period is the same date for every portfolio) count, so with books from 2024-12-31 period 1 = 2024-12-31 and 2 = 2025-03-31 as in seed 2. Default: the latest date in the books (of \`portfolio_id\` when given). A holding without a price or FX rate has \`flag\` set and null price, rate, value and weight. ${MONEY_NOTE}`,
      tags: ['securities platform'],
      access: 'results:read',
      query: z
        .object({
          portfolio_id: portfolioId.optional(),
          as_of: calendarDate.optional().openapi({ example: '2025-03-31', description: 'Snapshot date.' }),
          period: decimalInt({ min: 1, max: 10_000 }).openapi({
            description: 'N-th quarter-end snapshot (1 = the oldest).',
          }),
          limit: limitOf(100, MAX_PAGE),
          offset,
        })
        .strict(),
      response: Holdings,
      errors: [404],
      async handler({ query }) {
        if (query.as_of !== undefined && query.period !== undefined)
          throw BadRequestError.field('query.period', 'give as_of or period, not both');
        await requirePortfolio(query.portfolio_id);
        let asOf = query.as_of;
        if (asOf === undefined) {
          const range = await platform.holdingsDateRange(
            query.period === undefined ? query.portfolio_id : undefined,
          );
          if (range && query.period === undefined) asOf = range.last;
          else if (query.period !== undefined) {
            const present = range
              ? await platform.holdingsDatesPresent(quarterEndSessions(range.first, range.last))
              : [];
            asOf = present[query.period - 1];
            if (asOf === undefined)
              throw new NotFoundError(
                `period ${query.period}: the books hold ${present.length} quarter-end snapshot(s)` +
                  (present.length > 0 ? ` (1 = ${present[0]} … ${present.length} = ${present.at(-1)})` : ''),
              );
          }
        }
        const page = { limit: query.limit, offset: query.offset };
        const { total, rows } = asOf
          ? await platform.holdings(asOf, query.portfolio_id, page)
          : { total: 0, rows: [] };
        return exactJson({
          as_of_date: asOf ?? null,
          period: query.period ?? null,
          portfolio_id: query.portfolio_id ?? null,
          ...pageBody(query, total, rows, (h) => ({
            security_id: h.security_id,
            ticker: h.ticker,
            currency: h.currency,
            portfolio_id: h.portfolio_id,
            as_of_date: h.as_of_date,
            quantity: exact(h.quantity),
            local_price: exact(h.local_price),
            fx_rate: exact(h.fx_rate),
            market_value: cents(h.market_value),
            weight: exact(h.weight),
            cost_basis: cents(h.cost_basis),
            accrued_interest: cents(h.accrued_interest),
            flag: h.flag,
          })),
        });
      },
    }),

    defineRoute({
      method: 'get',
      path: '/api/variance/portfolio/{portfolio_id}',
      summary: "A portfolio's variance attribution",
      description: `Seed 2's \`{summary, details}\`: one detail per security with its quantities, prices and FX rates at both snapshots, the four effects (SPEC §8: corporate action, quantity, price, FX; distributions received are in the corporate-action effect) and total_pnl; the summary's totals are the sums of the details, taken in SQL numeric. Flagged details (a missing price or FX rate: \`flag\` says which, money columns null) are listed but left out of every total; \`flagged\` counts them. Period: \`quarter\` (2025Q1), \`month\` (2025-03) or \`from\`/\`to\` (calendar days; also matched against the rows' snapshot dates period_from/period_to); default the latest complete quarter (ended before today, exchange time) that has rows. 404 names an unknown portfolio, or a period without rows (run variance.quarterly for it). ${MONEY_NOTE}`,
      tags: ['securities platform'],
      access: 'results:read',
      params: z.object({
        portfolio_id: portfolioId.openapi({ param: { description: 'Portfolio id, any case.' } }),
      }),
      query: z.object(periodQuery).strict(),
      response: PortfolioVariance,
      errors: [404],
      async handler({ params, query }) {
        const { spec, asked } = periodSpec(query, sessionDateOf(clock.now()));
        await requirePortfolio(params.portfolio_id);
        const found = await platform.portfolioVariance(params.portfolio_id, spec);
        if (!found) throw new NotFoundError(`no variance rows for ${params.portfolio_id} in ${asked}`);
        const t = found.totals;
        return exactJson({
          summary: {
            portfolio_id: params.portfolio_id,
            ...periodOut(found.period),
            total_mv_start: cents(t.total_mv_start),
            total_mv_end: cents(t.total_mv_end),
            total_price_effect: cents(t.total_price_effect),
            total_qty_effect: cents(t.total_qty_effect),
            total_fx_effect: cents(t.total_fx_effect),
            total_corp_action_effect: cents(t.total_corp_action_effect),
            total_distributions: cents(t.total_distributions),
            total_pnl: cents(t.total_pnl),
            securities: t.securities,
            flagged: t.flagged,
          },
          details: found.details.map(detailBody),
        });
      },
    }),

    defineRoute({
      method: 'get',
      path: '/api/variance/top-movers',
      summary: 'Top movers',
      description: `The rows of a period with the largest absolute total_pnl across portfolios (ties by portfolio, then security), each with its four effects; \`limit\` default 20, at most 100. Filters: \`portfolio_id\`, \`security_type\`, \`currency\` (the security's). Period as for the portfolio variance (default the latest complete quarter with rows); flagged rows are left out. ${MONEY_NOTE}`,
      tags: ['securities platform'],
      access: 'results:read',
      query: z
        .object({
          ...periodQuery,
          portfolio_id: portfolioId.optional(),
          security_type: codeOf(SECURITY_TYPES, 'Security type.').optional(),
          currency: currency('Security currency.').optional(),
          limit: limitOf(20, 100),
        })
        .strict(),
      response: TopMovers,
      errors: [404],
      async handler({ query }) {
        const { spec, asked } = periodSpec(query, sessionDateOf(clock.now()));
        await requirePortfolio(query.portfolio_id);
        const period = await platform.resolvePeriod(spec, query.portfolio_id);
        if (!period) throw new NotFoundError(`no variance rows in ${asked}`);
        const rows = await platform.topMovers(
          period,
          { portfolioId: query.portfolio_id, securityType: query.security_type, currency: query.currency },
          query.limit,
        );
        return exactJson({ ...periodOut(period), count: rows.length, data: rows.map(moverBody) });
      },
    }),

    defineRoute({
      method: 'get',
      path: '/api/corporate-actions',
      summary: 'Corporate actions',
      description: `Splits, reverse splits, dividends, coupons and maturities, newest ex-date first, each with its revision and status (a provider's correction raises the revision; CANCELLED is a withdrawal) and what the ledger says of it (\`ledger\`: whether the current revision is applied, APPLY and REVERSE entries, when the first and last were written, cash entries paid). Filters: \`security_id\`, \`action_type\`, \`status\`, ex-date \`from\`/\`to\` (inclusive, either alone). \`limit\` default 100, at most ${MAX_PAGE}. The entries themselves: /api/corporate-actions/{action_id}/ledger.`,
      tags: ['securities platform'],
      access: 'results:read',
      query: z
        .object({
          security_id: securityId.optional(),
          action_type: codeOf(ACTION_TYPES, 'Action type.').optional(),
          status: codeOf(['ACTIVE', 'CANCELLED'], 'Action status.').optional(),
          from: calendarDate.optional().openapi({ description: 'Earliest ex-date.' }),
          to: calendarDate.optional().openapi({ description: 'Latest ex-date.' }),
          limit: limitOf(100, MAX_PAGE),
          offset,
        })
        .strict(),
      response: CorporateActions,
      async handler({ query }) {
        requireOrdered(query);
        const { total, rows } = await platform.corporateActions(
          {
            securityId: query.security_id,
            actionType: query.action_type,
            status: query.status,
            from: query.from,
            to: query.to,
          },
          { limit: query.limit, offset: query.offset },
        );
        return exactJson(pageBody(query, total, rows, actionBody));
      },
    }),

    defineRoute({
      method: 'get',
      path: '/api/corporate-actions/{action_id}/ledger',
      summary: "A corporate action's ledger",
      description: `The action and its ledger entries in the order they were written: one APPLY per portfolio or client account and revision, and a REVERSE (the exact negation) for a corrected or cancelled revision, with the quantity and cost moved and the cash booked and when it was paid. \`limit\` default 100, at most ${MAX_PAGE}. ${MONEY_NOTE}`,
      tags: ['securities platform'],
      access: 'results:read',
      params: z.object({
        action_id: z
          .string()
          .regex(/^[A-Za-z0-9._:-]{1,200}$/, 'must be an action id (1-200 of A-Z a-z 0-9 . _ : -)')
          .openapi({ example: 'CA-0001', param: { description: 'Corporate action id.' } }),
      }),
      query: z.object({ limit: limitOf(100, MAX_PAGE), offset }).strict(),
      response: ActionLedger,
      errors: [404],
      async handler({ params, query }) {
        const action = await platform.corporateAction(params.action_id);
        if (!action) throw new NotFoundError(`unknown corporate action ${params.action_id}`);
        const rows = await platform.ledger(params.action_id, { limit: query.limit, offset: query.offset });
        return exactJson({
          action: actionBody(action),
          ...pageBody(query, action.entries, rows, (e) => ({
            id: exact(e.id),
            entry: e.entry,
            action_revision: e.action_revision,
            portfolio_id: e.portfolio_id,
            account_id: e.account_id,
            action_type: e.action_type,
            ex_date: e.ex_date,
            payment_date: e.payment_date,
            ratio: exact(e.ratio),
            amount: exact(e.amount),
            currency: e.currency,
            quantity_held: exact(e.quantity_held),
            quantity_delta: exact(e.quantity_delta),
            cost_delta: cents(e.cost_delta),
            cash_amount: cents(e.cash_amount),
            cash_in_lieu: cents(e.cash_in_lieu),
            paid_at: iso(e.paid_at),
            applied_at: e.applied_at.toISOString(),
            job_id: e.job_id,
          })),
        });
      },
    }),

    defineRoute({
      method: 'get',
      path: '/api/fx-rates',
      summary: 'FX rates',
      description: `Daily FX rates (units of to_currency per one from_currency), newest date first, then by pair. Filters: \`from_currency\`, \`to_currency\`, \`rate_date\` (one day) or \`from\`/\`to\` (inclusive, either alone). \`limit\` default 100, at most ${MAX_PAGE}. Rates are written digit for digit as stored.`,
      tags: ['securities platform'],
      access: 'results:read',
      query: z
        .object({
          from_currency: currency('Source currency.').optional(),
          to_currency: currency('Target currency.').optional(),
          rate_date: calendarDate.optional().openapi({ example: '2024-12-31', description: 'One day.' }),
          from: calendarDate.optional().openapi({ description: 'Earliest rate date.' }),
          to: calendarDate.optional().openapi({ description: 'Latest rate date.' }),
          limit: limitOf(100, MAX_PAGE),
          offset,
        })
        .strict(),
      response: FxRates,
      async handler({ query }) {
        if (query.rate_date !== undefined && (query.from !== undefined || query.to !== undefined))
          throw BadRequestError.field('query.rate_date', 'give rate_date or from/to, not both');
        requireOrdered(query);
        const { total, rows } = await platform.fxRates(
          {
            fromCurrency: query.from_currency,
            toCurrency: query.to_currency,
            rateDate: query.rate_date,
            from: query.from,
            to: query.to,
          },
          { limit: query.limit, offset: query.offset },
        );
        return exactJson(pageBody(query, total, rows, (r) => ({ ...r, rate: exact(r.rate) })));
      },
    }),
  ];
}

/** A page's envelope (in this key order): the total matching, the page asked for, its rows. */
function pageBody<R, B>(
  page: { limit: number; offset: number },
  total: number,
  rows: readonly R[],
  body: (row: R) => B,
) {
  return {
    total,
    limit: page.limit,
    offset: page.offset,
    count: rows.length,
    data: rows.map((r) => body(r)),
  };
}

/** 400 when both bounds are given and `from` is after `to`. */
function requireOrdered(query: { from?: string | undefined; to?: string | undefined }): void {
  if (query.from !== undefined && query.to !== undefined && query.from > query.to)
    throw BadRequestError.field('query.from', `must be on or before to (${query.to})`);
}

function securityBody(s: PlatformSecurity) {
  return {
    ...s,
    coupon_rate: exact(s.coupon_rate),
    face_value: exact(s.face_value),
  };
}
