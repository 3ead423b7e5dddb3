/**
 * Reads behind seed 2's securities-platform API (issue 9, item 5): the security master with its
 * issuers, portfolios, daily holdings, variance rows, top movers, corporate actions with what the
 * ledger says about them, and FX rates. Reads only; the books jobs write these tables.
 *
 * Every filter value is a bind parameter; the WHERE clauses are assembled from fixed fragments.
 * Numerics stay pg's strings (the route prints them exactly, money rounded to the cent); sums of
 * money are taken here, in SQL `numeric`, never in JS floats.
 *
 * Index use (measured in notes/h-api9.md): holdings are read per portfolio through the primary
 * key (portfolio_id, as_of_date, security_id), joining `portfolios` so that a date across all
 * portfolios is a handful of index probes rather than a scan; variance rows of one portfolio and
 * period through the primary key (portfolio_id, period_from, period_to, security_id); a period's
 * rows across portfolios through `variance_rows_period_idx` (period_label, portfolio_id).
 */
import type { Knex } from '../knex.ts';
import type { VarianceRowValues } from './books.ts';

type Binding = string | number | string[] | null;

/** `where a and b …` from fixed SQL fragments with `?` placeholders and their values. */
class Where {
  readonly parts: string[] = [];
  readonly values: Binding[] = [];
  add(sql: string, ...values: Binding[]): this {
    this.parts.push(sql);
    this.values.push(...values);
    return this;
  }
  get sql(): string {
    return this.parts.length === 0 ? '' : `where ${this.parts.join(' and ')}`;
  }
}

export interface Page {
  limit: number;
  offset: number;
}

export interface SecurityFilter {
  securityType?: string | undefined;
  /** Issuer sector, compared case-insensitively. */
  sector?: string | undefined;
  currency?: string | undefined;
  /** Issuer country (ISO 3166 alpha-2). */
  country?: string | undefined;
}

export interface PlatformSecurity {
  security_id: string;
  isin: string | null;
  cusip: string | null;
  sedol: string | null;
  ticker: string;
  security_name: string;
  security_type: string;
  asset_class: string;
  currency: string;
  exchange: string;
  issuer_id: string | null;
  issuer_name: string | null;
  sector: string | null;
  country: string | null;
  issue_date: string | null;
  maturity_date: string | null;
  coupon_rate: string | null;
  coupon_frequency: number | null;
  face_value: string | null;
  status: string;
}

const SECURITY_COLUMNS = `
  s.security_id, s.isin, s.cusip, s.sedol, s.ticker, s.security_name, s.security_type, s.asset_class,
  s.currency, s.exchange, s.issuer_id, i.issuer_name, i.sector, i.country, s.issue_date, s.maturity_date,
  s.coupon_rate, s.coupon_frequency, s.face_value, s.status`;

export interface PlatformPortfolio {
  portfolio_id: string;
  portfolio_name: string;
  portfolio_type: 'EQUITY' | 'FIXED_INCOME' | 'MIXED' | 'HEDGE';
  benchmark: string | null;
  inception_date: string;
  currency: string;
}

export interface HoldingRecord {
  portfolio_id: string;
  security_id: string;
  ticker: string;
  currency: string;
  as_of_date: string;
  quantity: string;
  local_price: string | null;
  fx_rate: string | null;
  market_value: string | null;
  weight: string | null;
  cost_basis: string;
  accrued_interest: string;
  flag: string | null;
}

/**
 * Which variance rows a request means. `labels`: the period labels equivalent to the request
 * (`2025Q1`, `2025-03`, `2025-01-01/2025-03-31`), earlier ones preferred; `snapshots`: also rows
 * keyed by these (period_from, period_to) snapshot dates. `latestQuarter`: the newest quarter
 * label not after `notAfter` that has rows.
 */
export type PeriodSpec =
  | { kind: 'labels'; labels: string[]; snapshots?: { from: string; to: string } }
  | { kind: 'latestQuarter'; notAfter: string };

export interface ResolvedPeriod {
  period_label: string;
  period_from: string;
  period_to: string;
}

export interface VarianceDetailRecord extends VarianceRowValues {
  security_id: string;
  ticker: string;
  security_type: string;
  currency: string;
}

/** Sums over the rows without a flag, in SQL numeric (text). */
export interface VarianceTotals {
  total_mv_start: string;
  total_mv_end: string;
  total_price_effect: string;
  total_qty_effect: string;
  total_fx_effect: string;
  total_corp_action_effect: string;
  total_distributions: string;
  total_pnl: string;
  securities: number;
  flagged: number;
}

/** The window sums of portfolioVariance (prefixed: variance_rows has a total_pnl of its own). */
interface SumColumns {
  sum_mv_start: string;
  sum_mv_end: string;
  sum_price_effect: string;
  sum_qty_effect: string;
  sum_fx_effect: string;
  sum_corp_action_effect: string;
  sum_distributions: string;
  sum_pnl: string;
  sum_securities: number;
  sum_flagged: number;
}

export interface TopMoverRecord {
  portfolio_id: string;
  security_id: string;
  ticker: string;
  security_name: string;
  security_type: string;
  currency: string;
  mv_start: string;
  mv_end: string;
  price_effect: string;
  qty_effect: string;
  fx_effect: string;
  corp_action_effect: string;
  distributions: string;
  total_pnl: string;
}

export interface TopMoverFilter {
  portfolioId?: string | undefined;
  securityType?: string | undefined;
  currency?: string | undefined;
}

export interface ActionFilter {
  securityId?: string | undefined;
  actionType?: string | undefined;
  status?: string | undefined;
  /** Inclusive ex_date bounds. */
  from?: string | undefined;
  to?: string | undefined;
}

export interface ActionRecord {
  action_id: string;
  security_id: string;
  ticker: string;
  action_type: string;
  ex_date: string;
  record_date: string | null;
  payment_date: string | null;
  ratio: string | null;
  amount: string | null;
  currency: string;
  revision: number;
  status: string;
  source: string;
  updated_at: Date;
  entries: number;
  apply_entries: number;
  reverse_entries: number;
  /** An APPLY entry for the current revision exists … */
  applied_current: boolean;
  /** … and a REVERSE entry for it (a cancellation or correction undid it). */
  reversed_current: boolean;
  first_applied_at: Date | null;
  last_applied_at: Date | null;
  cash_entries: number;
  paid_entries: number;
  last_paid_at: Date | null;
  /** corporate-actions.apply processed the current revision for every holder it had … */
  processed_current: boolean;
  /** … this many (null: never processed). */
  holders: number | null;
  processed_at: Date | null;
}

export interface LedgerRecord {
  id: string;
  entry: string;
  action_revision: number;
  portfolio_id: string | null;
  account_id: number | null;
  action_type: string;
  ex_date: string;
  payment_date: string | null;
  ratio: string | null;
  amount: string | null;
  currency: string;
  quantity_held: string;
  quantity_delta: string;
  cost_delta: string;
  cash_amount: string;
  cash_in_lieu: string;
  paid_at: Date | null;
  applied_at: Date;
  job_id: string | null;
}

export interface FxFilter {
  fromCurrency?: string | undefined;
  toCurrency?: string | undefined;
  rateDate?: string | undefined;
  from?: string | undefined;
  to?: string | undefined;
}

export interface FxRecord {
  from_currency: string;
  to_currency: string;
  rate_date: string;
  rate: string;
  source: string;
}

const ACTION_SELECT = `
  select ca.action_id, s.security_id, s.ticker, ca.action_type, ca.ex_date, ca.record_date, ca.payment_date,
         ca.ratio, ca.amount, coalesce(ca.currency, s.currency) as currency, ca.revision, ca.status, ca.source,
         ca.updated_at, l.entries, l.apply_entries, l.reverse_entries, l.applied_current, l.reversed_current,
         l.first_applied_at, l.last_applied_at, l.cash_entries, l.paid_entries, l.last_paid_at,
         coalesce(p.revision = ca.revision, false) as processed_current, p.holders, p.processed_at
    from corporate_actions ca
    join securities s on s.id = ca.security_id
    left join corporate_action_processed p on p.action_id = ca.id
    cross join lateral (
      select count(*)::int as entries,
             count(*) filter (where e.entry = 'APPLY')::int as apply_entries,
             count(*) filter (where e.entry = 'REVERSE')::int as reverse_entries,
             coalesce(bool_or(e.entry = 'APPLY' and e.action_revision = ca.revision), false) as applied_current,
             coalesce(bool_or(e.entry = 'REVERSE' and e.action_revision = ca.revision), false) as reversed_current,
             min(e.applied_at) as first_applied_at, max(e.applied_at) as last_applied_at,
             count(*) filter (where e.cash_amount <> 0)::int as cash_entries,
             count(*) filter (where e.cash_amount <> 0 and e.paid_at is not null)::int as paid_entries,
             max(e.paid_at) as last_paid_at
        from corporate_action_ledger e
       where e.action_id = ca.id
    ) l`;

/** The variance columns of a detail row (`v` = variance_rows, `s` = securities). */
const DETAIL_COLUMNS = `
  s.security_id, s.ticker, s.security_type, s.currency, v.qty_start, v.qty_end, v.price_start, v.price_end,
  v.fx_start, v.fx_end, v.split_factor, v.mv_start, v.mv_end, v.price_effect, v.qty_effect, v.fx_effect,
  v.corp_action_effect, v.distributions, v.total_pnl, v.flag`;

const QUARTER_LABEL = '^[0-9]{4}Q[1-4]$';

/**
 * SQL picking one (period_label, period_from, period_to) of variance_rows `v` matching `spec`
 * within `scope` (extra conditions on `v`): the most preferred label first, then the newest row.
 * The latest quarter is found first on its own (a backward scan of variance_rows_period_idx
 * that stops at the first match), then only its rows are looked at.
 */
function pickPeriod(spec: PeriodSpec, scope: Where): { sql: string; values: Binding[] } {
  const where = new Where();
  where.parts.push(...scope.parts);
  where.values.push(...scope.values);
  const columns = 'select v.period_label, v.period_from, v.period_to from variance_rows v';
  if (spec.kind === 'latestQuarter') {
    const inner = new Where();
    inner.parts.push(...scope.parts);
    inner.values.push(...scope.values);
    inner.add(`v.period_label ~ '${QUARTER_LABEL}'`).add('v.period_label <= ?', spec.notAfter);
    // The subquery's alias v shadows the outer one: the scope's conditions apply to both.
    where.add(`v.period_label = (select max(v.period_label) from variance_rows v ${inner.sql})`);
    where.values.push(...inner.values);
    return { sql: `${columns} ${where.sql} order by v.computed_at desc limit 1`, values: where.values };
  }
  if (spec.snapshots) {
    where.add(
      '(v.period_label = any(?::text[]) or (v.period_from = ? and v.period_to = ?))',
      spec.labels,
      spec.snapshots.from,
      spec.snapshots.to,
    );
  } else where.add('v.period_label = any(?::text[])', spec.labels);
  return {
    sql: `${columns} ${where.sql}
           order by coalesce(array_position(?::text[], v.period_label), 2147483647), v.computed_at desc
           limit 1`,
    values: [...where.values, spec.labels],
  };
}

export function createPlatformRepository(db: Knex) {
  const rows = async <R>(sql: string, values: readonly Binding[]): Promise<R[]> =>
    (await db.raw<{ rows: R[] }>(sql, values as Binding[])).rows;

  return {
    /** A page of securities (by security_id) matching the filter, and how many match in all. */
    async securities(
      filter: SecurityFilter,
      page: Page,
    ): Promise<{ total: number; rows: PlatformSecurity[] }> {
      const where = new Where();
      if (filter.securityType) where.add('s.security_type = ?', filter.securityType);
      if (filter.currency) where.add('s.currency = ?', filter.currency);
      if (filter.country) where.add('i.country = ?', filter.country);
      if (filter.sector) where.add('lower(i.sector) = lower(?)', filter.sector);
      const from = `from securities s left join issuers i on i.issuer_id = s.issuer_id ${where.sql}`;
      const [count, list] = await Promise.all([
        rows<{ total: number }>(`select count(*)::int as total ${from}`, where.values),
        rows<PlatformSecurity>(`select ${SECURITY_COLUMNS} ${from} order by s.security_id limit ? offset ?`, [
          ...where.values,
          page.limit,
          page.offset,
        ]),
      ]);
      return { total: count[0]!.total, rows: list };
    },

    async security(securityId: string): Promise<PlatformSecurity | undefined> {
      const found = await rows<PlatformSecurity>(
        `select ${SECURITY_COLUMNS} from securities s left join issuers i on i.issuer_id = s.issuer_id
          where s.security_id = ?`,
        [securityId],
      );
      return found[0];
    },

    async portfolios(): Promise<PlatformPortfolio[]> {
      return rows<PlatformPortfolio>(
        `select portfolio_id, portfolio_name, portfolio_type, benchmark, inception_date, base_currency as currency
           from portfolios order by portfolio_id`,
        [],
      );
    },

    async portfolioExists(portfolioId: string): Promise<boolean> {
      const found = await rows(`select 1 from portfolios where portfolio_id = ?`, [portfolioId]);
      return found.length > 0;
    },

    /**
     * The first and last as_of_date in holdings (of one portfolio, or of all): per portfolio
     * through the primary key, so no scan of the table.
     */
    async holdingsDateRange(portfolioId?: string): Promise<{ first: string; last: string } | undefined> {
      const where = new Where();
      if (portfolioId) where.add('p.portfolio_id = ?', portfolioId);
      const [r] = await rows<{ first: string | null; last: string | null }>(
        `select min(d.first) as first, max(d.last) as last
           from portfolios p
           cross join lateral (
             select (select h.as_of_date from holdings h where h.portfolio_id = p.portfolio_id
                      order by h.as_of_date limit 1) as first,
                    (select h.as_of_date from holdings h where h.portfolio_id = p.portfolio_id
                      order by h.as_of_date desc limit 1) as last
           ) d ${where.sql}`,
        where.values,
      );
      return r?.first && r.last ? { first: r.first, last: r.last } : undefined;
    },

    /** Of the given dates, those with at least one holdings row (any portfolio), ascending. */
    async holdingsDatesPresent(dates: string[]): Promise<string[]> {
      if (dates.length === 0) return [];
      const found = await rows<{ d: string }>(
        `select d from unnest(?::date[]) as d
          where exists (select 1 from portfolios p join holdings h
                          on h.portfolio_id = p.portfolio_id and h.as_of_date = d)
          order by d`,
        [dates],
      );
      return found.map((r) => r.d);
    },

    /**
     * A page of the holdings on one date (of one portfolio, or of all), largest market value
     * first (flagged, unvalued holdings last), and how many there are in all.
     */
    async holdings(
      asOf: string,
      portfolioId: string | undefined,
      page: Page,
    ): Promise<{ total: number; rows: HoldingRecord[] }> {
      const where = new Where();
      if (portfolioId) where.add('p.portfolio_id = ?', portfolioId);
      const from = `from portfolios p join holdings h on h.portfolio_id = p.portfolio_id and h.as_of_date = ?
                    join securities s on s.id = h.security_id ${where.sql}`;
      const values = [asOf, ...where.values];
      const [count, list] = await Promise.all([
        rows<{ total: number }>(`select count(*)::int as total ${from}`, values),
        rows<HoldingRecord>(
          `select h.portfolio_id, s.security_id, s.ticker, s.currency, h.as_of_date, h.quantity, h.local_price,
                  h.fx_rate, h.market_value, h.weight, h.cost_basis, h.accrued_interest, h.flag
             ${from}
            order by h.market_value desc nulls last, h.portfolio_id, s.security_id
            limit ? offset ?`,
          [...values, page.limit, page.offset],
        ),
      ]);
      return { total: count[0]!.total, rows: list };
    },

    /**
     * One portfolio's variance for the period `spec` picks: every row (by security_id) and the
     * totals over the rows without a flag, summed in SQL numeric in the same statement (one
     * snapshot: a re-run replacing the period cannot split them). Undefined when no row matches.
     */
    async portfolioVariance(
      portfolioId: string,
      spec: PeriodSpec,
    ): Promise<
      { period: ResolvedPeriod; totals: VarianceTotals; details: VarianceDetailRecord[] } | undefined
    > {
      const pick = pickPeriod(spec, new Where().add('v.portfolio_id = ?', portfolioId));
      const ok = 'v.flag is null';
      const found = await rows<VarianceDetailRecord & ResolvedPeriod & SumColumns>(
        `with pick as (${pick.sql})
         select pick.period_label, pick.period_from, pick.period_to, ${DETAIL_COLUMNS},
                coalesce(sum(v.mv_start) filter (where ${ok}) over (), 0) as sum_mv_start,
                coalesce(sum(v.mv_end) filter (where ${ok}) over (), 0) as sum_mv_end,
                coalesce(sum(v.price_effect) filter (where ${ok}) over (), 0) as sum_price_effect,
                coalesce(sum(v.qty_effect) filter (where ${ok}) over (), 0) as sum_qty_effect,
                coalesce(sum(v.fx_effect) filter (where ${ok}) over (), 0) as sum_fx_effect,
                coalesce(sum(v.corp_action_effect) filter (where ${ok}) over (), 0) as sum_corp_action_effect,
                coalesce(sum(v.distributions) filter (where ${ok}) over (), 0) as sum_distributions,
                coalesce(sum(v.total_pnl) filter (where ${ok}) over (), 0) as sum_pnl,
                (count(*) over ())::int as sum_securities,
                (count(*) filter (where v.flag is not null) over ())::int as sum_flagged
           from pick
           join variance_rows v
             on v.portfolio_id = ? and v.period_from = pick.period_from and v.period_to = pick.period_to
           join securities s on s.id = v.security_id
          order by s.security_id`,
        [...pick.values, portfolioId],
      );
      const first = found[0];
      if (!first) return undefined;
      const totals: VarianceTotals = {
        total_mv_start: first.sum_mv_start,
        total_mv_end: first.sum_mv_end,
        total_price_effect: first.sum_price_effect,
        total_qty_effect: first.sum_qty_effect,
        total_fx_effect: first.sum_fx_effect,
        total_corp_action_effect: first.sum_corp_action_effect,
        total_distributions: first.sum_distributions,
        total_pnl: first.sum_pnl,
        securities: first.sum_securities,
        flagged: first.sum_flagged,
      };
      return {
        period: {
          period_label: first.period_label,
          period_from: first.period_from,
          period_to: first.period_to,
        },
        totals,
        details: found.map((r) => ({
          security_id: r.security_id,
          ticker: r.ticker,
          security_type: r.security_type,
          currency: r.currency,
          qty_start: r.qty_start,
          qty_end: r.qty_end,
          price_start: r.price_start,
          price_end: r.price_end,
          fx_start: r.fx_start,
          fx_end: r.fx_end,
          split_factor: r.split_factor,
          mv_start: r.mv_start,
          mv_end: r.mv_end,
          price_effect: r.price_effect,
          qty_effect: r.qty_effect,
          fx_effect: r.fx_effect,
          corp_action_effect: r.corp_action_effect,
          distributions: r.distributions,
          total_pnl: r.total_pnl,
          flag: r.flag,
        })),
      };
    },

    /** The period `spec` picks across portfolios (or within one), or undefined when none has rows. */
    async resolvePeriod(spec: PeriodSpec, portfolioId?: string): Promise<ResolvedPeriod | undefined> {
      const scope = new Where();
      if (portfolioId) scope.add('v.portfolio_id = ?', portfolioId);
      const pick = pickPeriod(spec, scope);
      return (await rows<ResolvedPeriod>(pick.sql, pick.values))[0];
    },

    /**
     * The `limit` unflagged rows of a period with the largest |total_pnl| (ties: portfolio, then
     * security), filtered by portfolio, security type and currency.
     */
    async topMovers(
      period: ResolvedPeriod,
      filter: TopMoverFilter,
      limit: number,
    ): Promise<TopMoverRecord[]> {
      const where = new Where()
        .add('v.period_from = ?', period.period_from)
        .add('v.period_to = ?', period.period_to)
        .add('v.flag is null');
      if (filter.portfolioId) where.add('v.portfolio_id = ?', filter.portfolioId);
      if (filter.securityType) where.add('s.security_type = ?', filter.securityType);
      if (filter.currency) where.add('s.currency = ?', filter.currency);
      return rows<TopMoverRecord>(
        `select v.portfolio_id, s.security_id, s.ticker, s.security_name, s.security_type, s.currency,
                v.mv_start, v.mv_end, v.price_effect, v.qty_effect, v.fx_effect, v.corp_action_effect,
                v.distributions, v.total_pnl
           from variance_rows v
           join securities s on s.id = v.security_id
          ${where.sql}
          order by abs(v.total_pnl) desc, v.portfolio_id, s.security_id
          limit ?`,
        [...where.values, limit],
      );
    },

    /** A page of corporate actions (newest ex-date first) with their ledger summary, and the total. */
    async corporateActions(
      filter: ActionFilter,
      page: Page,
    ): Promise<{ total: number; rows: ActionRecord[] }> {
      const where = new Where();
      if (filter.securityId) where.add('s.security_id = ?', filter.securityId);
      if (filter.actionType) where.add('ca.action_type = ?', filter.actionType);
      if (filter.status) where.add('ca.status = ?', filter.status);
      if (filter.from) where.add('ca.ex_date >= ?', filter.from);
      if (filter.to) where.add('ca.ex_date <= ?', filter.to);
      const [count, list] = await Promise.all([
        rows<{ total: number }>(
          `select count(*)::int as total from corporate_actions ca join securities s on s.id = ca.security_id
            ${where.sql}`,
          where.values,
        ),
        rows<ActionRecord>(
          `${ACTION_SELECT} ${where.sql} order by ca.ex_date desc, ca.action_id limit ? offset ?`,
          [...where.values, page.limit, page.offset],
        ),
      ]);
      return { total: count[0]!.total, rows: list };
    },

    async corporateAction(actionId: string): Promise<ActionRecord | undefined> {
      return (await rows<ActionRecord>(`${ACTION_SELECT} where ca.action_id = ?`, [actionId]))[0];
    },

    /** A page of one action's ledger entries in the order they were written, and their number. */
    async ledger(actionId: string, page: Page): Promise<LedgerRecord[]> {
      return rows<LedgerRecord>(
        `select e.id, e.entry, e.action_revision, e.portfolio_id, e.account_id, e.action_type, e.ex_date,
                e.payment_date, e.ratio, e.amount, e.currency, e.quantity_held, e.quantity_delta, e.cost_delta,
                e.cash_amount, e.cash_in_lieu, e.paid_at, e.applied_at, e.job_id
           from corporate_actions ca
           join corporate_action_ledger e on e.action_id = ca.id
          where ca.action_id = ?
          order by e.id
          limit ? offset ?`,
        [actionId, page.limit, page.offset],
      );
    },

    /** A page of FX rates (newest date first, then pair), and how many match. */
    async fxRates(filter: FxFilter, page: Page): Promise<{ total: number; rows: FxRecord[] }> {
      const where = new Where();
      if (filter.fromCurrency) where.add('from_currency = ?', filter.fromCurrency);
      if (filter.toCurrency) where.add('to_currency = ?', filter.toCurrency);
      if (filter.rateDate) where.add('rate_date = ?', filter.rateDate);
      if (filter.from) where.add('rate_date >= ?', filter.from);
      if (filter.to) where.add('rate_date <= ?', filter.to);
      const [count, list] = await Promise.all([
        rows<{ total: number }>(`select count(*)::int as total from fx_rates ${where.sql}`, where.values),
        rows<FxRecord>(
          `select from_currency, to_currency, rate_date, rate, source from fx_rates ${where.sql}
            order by rate_date desc, from_currency, to_currency limit ? offset ?`,
          [...where.values, page.limit, page.offset],
        ),
      ]);
      return { total: count[0]!.total, rows: list };
    },
  };
}

export type PlatformRepository = ReturnType<typeof createPlatformRepository>;
