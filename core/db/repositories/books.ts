/**
 * Portfolio books (issue 9): the events daily holdings are derived from, the set-based write of
 * holdings over a date range, the inputs of the variance attribution and its rows, and the reads
 * the API serves (summary, details, top movers).
 *
 * Conventions shared by every statement here (and by the attribution in jobs/processors/holdings.ts):
 * - Units: MV = Q · P · unit · X, with unit = face_value / 100 for BOND, CLO and ABS (prices are per
 *   100 face; the generator's face is 100, so unit = 1 there) and 1 otherwise. Accrued interest is
 *   a column of its own (Q · face · coupon_rate · days since the last coupon / 365 · X), not in MV.
 * - FX local → base on a day: the direct pair (ccy → base) dated on or before the day, else the
 *   inverse pair's reciprocal (rounded to 10 places, as fx_rates stores rates); a rate older than
 *   FX_MAX_AGE_DAYS calendar days is missing (the row is flagged), never carried forward further.
 *   A base-currency security has rate 1.
 * - Prices: the day's daily bar close as traded (bars_1d.close, session_date = the day); none =
 *   missing (flagged), never a previous close.
 */
import { preparedQuery, rawTransaction, type Knex } from '../knex.ts';
import { claimCheckpointOn, lockKeyOn, writeCheckpointOn } from './checkpoints.ts';
import { NYSE_EXCHANGE } from './calendar.ts';
import { col, type Conn } from './sql.ts';

/** How old (calendar days) a rate may be and still value a holding on a day (weekends, FX holidays). */
export const FX_MAX_AGE_DAYS = 5;

const BOND_TYPES = `('BOND', 'CLO', 'ABS')`;

/** SQL: the value of one unit of price × quantity for the securities row aliased `sec`. */
const unitOf = (sec: string): string =>
  `(case when ${sec}.security_type in ${BOND_TYPES} then coalesce(${sec}.face_value, 100) / 100 else 1 end)`;

/**
 * SQL: the FX rate ccy → base on `day` (expressions), at most `maxAge` days old; with `after`, the
 * earliest later rate when there is none on or before (a trade's historical cost).
 */
function fxSql(ccy: string, base: string, day: string, maxAge: number | null, after = false): string {
  const age = maxAge === null ? '' : ` and x.rate_date >= ${day} - ${maxAge}`;
  const terms = [
    `(select x.rate from fx_rates x where x.from_currency = ${ccy} and x.to_currency = ${base}
        and x.rate_date <= ${day}${age} order by x.rate_date desc limit 1)`,
    `(select round(1 / x.rate, 10) from fx_rates x where x.from_currency = ${base} and x.to_currency = ${ccy}
        and x.rate_date <= ${day}${age} order by x.rate_date desc limit 1)`,
  ];
  if (after)
    terms.push(
      `(select x.rate from fx_rates x where x.from_currency = ${ccy} and x.to_currency = ${base}
          and x.rate_date > ${day} order by x.rate_date limit 1)`,
      `(select round(1 / x.rate, 10) from fx_rates x where x.from_currency = ${base} and x.to_currency = ${ccy}
          and x.rate_date > ${day} order by x.rate_date limit 1)`,
    );
  return `(case when ${ccy} = ${base} then 1::numeric else coalesce(${terms.join(', ')}) end)`;
}

export interface PortfolioRef {
  portfolioId: string;
  baseCurrency: string;
}

/** One event of a position's replay (core/domain/books.ts), as text decimals. */
export interface BookEventRow {
  portfolioId: string;
  securityId: number;
  date: string;
  kind: 'trade' | 'action';
  quantity: string | null;
  price: string | null;
  unit: string | null;
  fx: string | null;
  fees: string | null;
  actionType: string | null;
  quantityHeld: string | null;
  quantityDelta: string | null;
  ratio: string | null;
}

/** A position's state over [from, until) (until null = open-ended), as the replay produced it. */
export interface HoldingInterval {
  portfolioId: string;
  securityId: number;
  from: string;
  until: string | null;
  quantity: string;
  /** Cost basis in base currency (unrounded decimal text), null = unknown. */
  cost: string | null;
}

export interface SnapshotWrite {
  rows: number;
  flagged: number;
  /** True when a checkpoint said this chunk was already written (nothing done). */
  skipped: boolean;
}

export interface VarianceInputRow {
  portfolioId: string;
  securityId: number;
  securityCode: string;
  currency: string;
  baseCurrency: string;
  unit: string;
  inStart: boolean;
  q0: string | null;
  p0: string | null;
  x0: string | null;
  q1: string | null;
  p1: string | null;
  x1: string | null;
  close0: string | null;
  fx0: string | null;
  firstTradePrice: string | null;
  firstTradeDate: string | null;
  splitRatios: string[] | null;
  splitDates: string[] | null;
  distributions: string | null;
  distributionFxMissing: boolean;
}

export interface VarianceRowInsert {
  securityId: number;
  qtyStart: string;
  qtyEnd: string;
  priceStart: string | null;
  priceEnd: string | null;
  fxStart: string | null;
  fxEnd: string | null;
  splitFactor: string;
  mvStart: string | null;
  mvEnd: string | null;
  priceEffect: string | null;
  qtyEffect: string | null;
  fxEffect: string | null;
  corpActionEffect: string | null;
  totalPnl: string | null;
  distributions: string;
  flag: string | null;
}

/** One portfolio's part of a period written by writeVariance. */
export interface VarianceWrite {
  portfolioId: string;
  rows: number;
  flagged: number;
  /** Σ total_pnl of its valued rows (numeric text). */
  totalPnl: string;
}

/**
 * The stored values of one variance_rows row as pg returns them (numeric as text; money columns
 * null on a flagged row, `flag` saying why). The API (platform.ts) and the workbook (reports.ts)
 * read these columns with the security's columns of their own.
 */
export interface VarianceRowValues {
  qty_start: string;
  qty_end: string;
  price_start: string | null;
  price_end: string | null;
  fx_start: string | null;
  fx_end: string | null;
  split_factor: string;
  mv_start: string | null;
  mv_end: string | null;
  price_effect: string | null;
  qty_effect: string | null;
  fx_effect: string | null;
  corp_action_effect: string | null;
  distributions: string;
  total_pnl: string | null;
  flag: string | null;
}

export interface StoredPeriod {
  label: string;
  start: string;
  end: string;
}

/**
 * Writes the holdings of `portfolioIds` for every NYSE session from..to from the replayed
 * intervals, in the caller's transaction: deletes the range's rows first (a position that went to
 * zero after a correction disappears), then one INSERT … SELECT values, weights and flags them.
 */
export async function writeHoldingsOn(
  conn: Conn,
  portfolioIds: readonly string[],
  from: string,
  to: string,
  intervals: readonly HoldingInterval[],
): Promise<{ rows: number; flagged: number }> {
  // Two writers of the same portfolio's books (the nightly run and a backfill) take turns, in one
  // order (no deadlock), instead of deleting under each other and colliding on the insert.
  for (const id of [...portfolioIds].sort()) await lockKeyOn(conn, `holdings:${id}`);
  await conn.query(
    'delete from holdings where portfolio_id = any($1::text[]) and as_of_date between $2::date and $3::date',
    [portfolioIds, from, to],
  );
  const res = await conn.query<{ rows: number; flagged: number }>(
    `with iv as (
       -- Each interval with what valuing it needs of its security and portfolio (joined once per
       -- interval, not per day).
       select iv.p, iv.s, iv.f, iv.u, iv.q, iv.c, sec.currency::text as ccy, port.base_currency::text as base,
              ${unitOf('sec')} as unit, coalesce(sec.face_value, 100) * sec.coupon_rate as coupon,
              sec.coupon_frequency as freq, sec.maturity_date as maturity
         from unnest($4::text[], $5::int[], $6::date[], $7::date[], $8::numeric[], $9::numeric[])
              as iv(p, s, f, u, q, c)
         join securities sec on sec.id = iv.s
         join portfolios port on port.portfolio_id = iv.p
        where iv.q <> 0
     ), days as (
       select session_date as d from market_sessions
        where exchange = $3 and session_date between $1::date and $2::date
     ), pos as (
       select iv.*, days.d
         from iv join days on days.d >= iv.f and (iv.u is null or days.d < iv.u)
     ), px as materialized (
       -- The range's closes in one scan by date (hash-joined), not one index probe per holding.
       select b.security_id, b.session_date, b.close from bars_1d b
        where b.session_date between $1::date and $2::date
          and b.security_id in (select distinct s from iv)
     ), pairs as (
       select distinct ccy, base from iv where ccy <> base
     ), fxd as (
       select pairs.ccy, pairs.base, days.d, ${fxSql('pairs.ccy', 'pairs.base', 'days.d', FX_MAX_AGE_DAYS)} as rate
         from pairs cross join days
     ), val as (
       select pos.p, pos.s, pos.d, pos.q, pos.c, b.close as lp,
              case when pos.ccy = pos.base then 1::numeric else fxd.rate end as x,
              pos.unit,
              case when pos.coupon is not null and pos.freq is not null and pos.maturity is not null
                   then pos.coupon * coalesce(pos.d - last_coupon_date(pos.maturity, pos.freq, pos.d), 0) / 365
                   else 0 end as ai
         from pos
         left join px b on b.security_id = pos.s and b.session_date = pos.d
         left join fxd on fxd.ccy = pos.ccy and fxd.base = pos.base and fxd.d = pos.d
     ), mv as (
       select val.*, round(q * lp * unit * x, 2) as mv from val
     ), w as (
       select mv.*, mv / nullif(sum(mv) over (partition by p, d), 0) as wt from mv
     ), ins as (
       insert into holdings (portfolio_id, security_id, as_of_date, quantity, local_price, fx_rate, market_value,
                             weight, cost_basis, accrued_interest, flag, computed_at)
       select p, s, d, q, lp, x, mv,
              case when abs(wt) < 10000 then round(wt, 8) end,
              round(c, 2),
              round(q * ai * x, 2),
              nullif(concat_ws(',', case when lp is null then 'missing_price' end,
                                    case when x is null then 'missing_fx' end), ''),
              now()
         from w
       returning flag
     )
     select count(*)::int as rows, count(flag)::int as flagged from ins`,
    [
      from,
      to,
      NYSE_EXCHANGE,
      col(intervals, 'portfolioId'),
      col(intervals, 'securityId'),
      col(intervals, 'from'),
      col(intervals, 'until'),
      col(intervals, 'quantity'),
      col(intervals, 'cost'),
    ],
  );
  return res.rows[0] ?? { rows: 0, flagged: 0 };
}

/**
 * The attribution inputs ($1 portfolio ids, $2 d0, $3 d1), one row per portfolio × security, as
 * text (the shape VarianceInputRow names): read by varianceInputs and by the set-based write.
 */
const FIRST_TRADE = (what: string): string =>
  `select ${what} from transactions t
    where t.portfolio_id = k.p and t.security_id = k.s and t.txn_date > $2::date and t.txn_date <= $3::date
    order by t.txn_date, t.id limit 1`;

const VARIANCE_INPUTS = `with hd as materialized (
           -- Both snapshot days in one range read (hash-joined below, not probed per position).
           select portfolio_id, security_id, as_of_date, quantity, local_price, fx_rate from holdings
            where portfolio_id = any($1::text[]) and as_of_date in ($2::date, $3::date)
         ), keys as (
           select portfolio_id as p, security_id as s from hd
           union
           select portfolio_id, security_id from transactions
            where portfolio_id = any($1::text[]) and txn_date > $2::date and txn_date <= $3::date
           union
           select l.portfolio_id, ca.security_id from corporate_action_ledger l
             join corporate_actions ca on ca.id = l.action_id
            where l.portfolio_id = any($1::text[]) and l.ex_date > $2::date and l.ex_date <= $3::date
              and l.cash_amount <> 0
         )
         select k.p as "portfolioId", k.s as "securityId", sec.security_id as "securityCode",
                sec.currency::text as currency, port.base_currency::text as "baseCurrency",
                ${unitOf('sec')} as unit,
                h0.portfolio_id is not null as "inStart",
                h0.quantity as q0, h0.local_price as p0, h0.fx_rate as x0,
                h1.quantity as q1, h1.local_price as p1, h1.fx_rate as x1,
                -- What only a new position needs (its start price and rate), looked up only for one.
                case when h0.portfolio_id is null then
                  (select b.close from bars_1d b where b.security_id = k.s and b.session_date = $2::date) end as close0,
                case when h0.portfolio_id is null then
                  ${fxSql('sec.currency::text', 'port.base_currency::text', '$2::date', FX_MAX_AGE_DAYS)} end as fx0,
                case when h0.portfolio_id is null then (${FIRST_TRADE('t.price')}) end as "firstTradePrice",
                case when h0.portfolio_id is null then (${FIRST_TRADE('t.txn_date::text')}) end as "firstTradeDate",
                sp.ratios as "splitRatios", sp.dates as "splitDates",
                dist.amount as distributions, coalesce(dist.missing, false) as "distributionFxMissing"
           from keys k
           join securities sec on sec.id = k.s
           join portfolios port on port.portfolio_id = k.p
           left join hd h0 on h0.portfolio_id = k.p and h0.security_id = k.s and h0.as_of_date = $2::date
           left join hd h1 on h1.portfolio_id = k.p and h1.security_id = k.s and h1.as_of_date = $3::date
           left join lateral (
             select array_agg(ca.ratio order by ca.ex_date) as ratios,
                    array_agg(ca.ex_date::text order by ca.ex_date) as dates
               from corporate_actions ca
              where ca.security_id = k.s and ca.action_type in ('STOCK_SPLIT', 'REVERSE_SPLIT')
                and ca.status = 'ACTIVE' and ca.ratio is not null
                and ca.ex_date > $2::date and ca.ex_date <= $3::date) sp on true
           left join lateral (
             select sum(l.cash_amount * r.x) as amount, bool_or(r.x is null) as missing
               from corporate_action_ledger l
               join corporate_actions ca on ca.id = l.action_id
               cross join lateral (
                 select ${fxSql('l.currency::text', 'port.base_currency::text', 'l.ex_date', FX_MAX_AGE_DAYS)} as x) r
              where l.portfolio_id = k.p and ca.security_id = k.s and l.cash_amount <> 0
                and l.ex_date > $2::date and l.ex_date <= $3::date) dist on true`;

/**
 * SQL: CTEs (the last one named `out`) reproducing inCents' rounding of core/domain/attribution.ts
 * (money.ts roundPreservingSum of the non-zero parts, places 2, given total) on the rows of `from`,
 * which has the exact parts e1..e4 and the total in cents `total`: `out` adds c1..c4. A zero part
 * stays 0; the others are floored to the cent, then the cents still missing go one each, cycling,
 * to the parts that lost the most (ties: the earlier part); a surplus comes off the parts that lost
 * the least. Plain expressions over four columns (no function call per row), in three steps.
 */
export function centsPreservingSum(from: string, out: string): string {
  const I = [1, 2, 3, 4];
  const rank = (i: number): string =>
    I.filter((j) => j !== i)
      .map((j) => `case when z${j} and (r${j} > r${i}${j < i ? ` or r${j} = r${i}` : ''}) then 1 else 0 end`)
      .join(' + ');
  const cents = (i: number): string =>
    `case when not z${i} then 0 else f${i} + 0.01 * case
       when m >= 0 then floor(m / n) + case when k${i} < mod(m, n) then 1 else 0 end
       else -(floor(-m / n) + case when mod(n - 1 - k${i}, n) < mod(-m, n) then 1 else 0 end) end end as c${i}`;
  const floor = (i: number): string => `floor(e${i} * 100) * 0.01`;
  return `${out}_b as materialized (
             select ${from}.*, ${I.map((i) => `e${i} <> 0 as z${i}, ${floor(i)} as f${i}, e${i} - ${floor(i)} as r${i}`).join(', ')},
                    nullif(${I.map((i) => `(e${i} <> 0)::int`).join(' + ')}, 0) as n,
                    (round(total, 2) - (${I.map((i) => `case when e${i} <> 0 then ${floor(i)} else 0 end`).join(' + ')})) * 100 as m
               from ${from}
           ), ${out}_k as materialized (
             select ${out}_b.*, ${I.map((i) => `${rank(i)} as k${i}`).join(', ')} from ${out}_b
           ), ${out} as materialized (
             select ${out}_k.*, ${I.map(cents).join(', ')} from ${out}_k
           )`;
}

/**
 * SQL: decimal.js's rounding of an operation's exact result `e` to 40 significant digits (dec40),
 * skipping the call when e visibly has at most 40 digits (the common case). `e` is repeated: pass
 * an operation on columns only.
 */
const d40 = (e: string): string =>
  `(case when (scale(${e}) <= 20 and abs(${e}) < 1e20) or (scale(${e}) <= 30 and abs(${e}) < 1e10) then ${e} else dec40(${e}) end)`;

/**
 * The attribution of one period, inserted into variance_rows ($1 portfolio ids, $2 d0, $3 d1,
 * $4 label, $5 period start, $6 period end); see writeVariance. Exported for EXPLAIN.
 */
export const WRITE_VARIANCE = `with inp as materialized (${VARIANCE_INPUTS}
           ), s1 as materialized (
             select i."portfolioId" as p, i."securityId" as s, i."distributionFxMissing" as dfx,
                    trim_scale(i.unit) as u,
                    trim_scale(coalesce(i.q0, 0)) as q0, trim_scale(coalesce(i.q1, 0)) as q1,
                    trim_scale(case when i."inStart" then i.p0
                         else coalesce(i.close0,
                                       dec40(i."firstTradePrice" * case when i."splitRatios" is null then 1 else coalesce((
                                         select dec40_product(z.r order by z.o)
                                           from unnest(i."splitRatios") with ordinality as z(r, o)
                                          where i."firstTradeDate" is not null
                                            and coalesce(i."splitDates"[z.o]::date <= i."firstTradeDate"::date, true)), 1) end))
                    end) as p0,
                    trim_scale(case when i."inStart" then i.x0 else i.fx0 end) as x0,
                    trim_scale(i.p1) as p1, trim_scale(i.x1) as x1,
                    case when i."splitRatios" is null then 1 else coalesce((
                      select dec40_product(z.r order by z.o)
                        from unnest(i."splitRatios") with ordinality as z(r, o)), 1) end as f,
                    round(coalesce(i.distributions, 0), 2) as dist
               from inp i
           ), s2 as materialized (
             select s1.*,
                    nullif(concat_ws(',',
                      case when (q0 <> 0 or q1 <> 0) and p0 is null then 'price_start' end,
                      case when q1 <> 0 and p1 is null then 'price_end' end,
                      case when (q0 <> 0 or q1 <> 0) and x0 is null then 'fx_start' end,
                      case when q1 <> 0 and x1 is null then 'fx_end' end,
                      case when dfx then 'fx_distribution' end), '') as flag,
                    ${d40('coalesce(p0, 0) * u')} as p0u, ${d40('coalesce(p1, 0) * u')} as p1u,
                    coalesce(x0, 0) as x0z, coalesce(x1, 0) as x1z
               from s1
           ), s3 as materialized (
             -- One decimal.js operation per column and step, as attribute() does them.
             select s2.*, ${d40('q0 * p0u')} as q0p0, ${d40('q1 * p1u')} as q1p1, ${d40('x1z - x0z')} as dx,
                    -- P₀/f: the quotient at 100 decimals, then 40 digits (P₀ itself when f = 1)
                    case when f = 1 then p0u else dec40(round(p0u, 100) / f) end as p0f
               from s2
           ), s3b as materialized (
             select s3.*, ${d40('q0p0 * x0z')} as mv0, ${d40('q1p1 * x1z')} as mv1, ${d40('q1 * p0f')} as q1p0f,
                    ${d40('q1p1 * x0z')} as q1p1x0, ${d40('q1p1 * dx')} as e4
               from s3
           ), s3c as materialized (
             -- t = Q₁·(P₀/f)·X₀ at 20 decimals
             select s3b.*, round(${d40('q1p0f * x0z')}, 20) as t from s3b
           ), s4 as materialized (
             select s3c.*, dist as e1, ${d40('t - mv0')} as e2, ${d40('q1p1x0 - t')} as e3,
                    round(mv1, 2) - round(mv0, 2) + dist as total
               from s3c
           ), ${centsPreservingSum('s4', 'c')}
           , ins as (
             insert into variance_rows (portfolio_id, security_id, period_label, period_from, period_to, qty_start, qty_end,
                 price_start, price_end, fx_start, fx_end, split_factor, mv_start, mv_end, price_effect, qty_effect,
                 fx_effect, corp_action_effect, total_pnl, distributions, flag, computed_at)
             select p, s, $4::text, $5::date, $6::date, q0, q1, p0, p1, x0, x1, round(f, 10),
                    case when flag is null then round(mv0, 2) end, case when flag is null then round(mv1, 2) end,
                    case when flag is null then c3 end, case when flag is null then c2 end,
                    case when flag is null then c4 end, case when flag is null then c1 end,
                    case when flag is null then round(mv1, 2) - round(mv0, 2) + dist end,
                    case when dfx then 0 else dist end, flag, now()
               from c
             returning portfolio_id, flag, total_pnl
           )
           select portfolio_id as "portfolioId", count(*)::int as rows, count(flag)::int as flagged,
                  coalesce(sum(total_pnl), 0)::text as "totalPnl"
             from ins group by portfolio_id order by portfolio_id`;

export function createBooksRepository(db: Knex) {
  return {
    /** The portfolios named (all when none), with their base currency; `unknown` lists ids not found. */
    async portfolios(ids?: readonly string[]): Promise<{ found: PortfolioRef[]; unknown: string[] }> {
      const rows = await db.raw<{ rows: { portfolio_id: string; base_currency: string }[] }>(
        `select portfolio_id, base_currency from portfolios
          where ?::text[] is null or portfolio_id = any(?::text[]) order by portfolio_id`,
        [ids ? [...ids] : null, ids ? [...ids] : null],
      );
      const found = rows.rows.map((r) => ({ portfolioId: r.portfolio_id, baseCurrency: r.base_currency }));
      const known = new Set(found.map((p) => p.portfolioId));
      return { found, unknown: (ids ?? []).filter((id) => !known.has(id)) };
    },

    /** Stored NYSE session dates from..to (inclusive). */
    async sessionDates(from: string, to: string): Promise<string[]> {
      const res = await db.raw<{ rows: { d: string }[] }>(
        `select session_date::text as d from market_sessions
          where exchange = ? and session_date between ?::date and ?::date order by 1`,
        [NYSE_EXCHANGE, from, to],
      );
      return res.rows.map((r) => r.d);
    },

    /**
     * Every trade and every ledger row of the portfolios dated on or before `through`, ordered by
     * position, date, actions before trades, then id. An APPLY and the REVERSE that exactly negates
     * it (same action, revision, portfolio, ex-date) cancel and are both left out (their sum is
     * zero on every day on or after the ex-date); any other ledger row counts as its signed delta.
     * A trade carries its FX to the portfolio's base currency on its date (the newest rate on or
     * before, else the earliest after: historical cost, as close to the trade as known).
     */
    async bookEvents(portfolioIds: readonly string[], through: string): Promise<BookEventRow[]> {
      const res = await db.raw<{ rows: BookEventRow[] }>(
        `with tr as (
           select t.*, port.base_currency::text as base, ${unitOf('sec')} as unit
             from transactions t
             join securities sec on sec.id = t.security_id
             join portfolios port on port.portfolio_id = t.portfolio_id
            where t.portfolio_id = any(?::text[]) and t.txn_date <= ?::date
         ), rates as (
           -- One FX look-up per (currency, base, trade date), not per trade.
           select k.currency, k.base, k.txn_date,
                  ${fxSql('k.currency::text', 'k.base', 'k.txn_date', null, true)} as fx
             from (select distinct currency, base, txn_date from tr) k
         )
         select * from (
           select tr.portfolio_id as "portfolioId", tr.security_id as "securityId", tr.txn_date::text as date,
                  'trade' as kind,
                  (case when tr.txn_type in ('BUY', 'COVER') then tr.quantity else -tr.quantity end)::text as quantity,
                  tr.price::text as price, tr.unit::text as unit, rates.fx::text as fx,
                  tr.fees::text as fees, null as "actionType", null as "quantityHeld", null as "quantityDelta",
                  null as ratio, tr.id as ord
             from tr join rates on rates.currency = tr.currency and rates.base = tr.base and rates.txn_date = tr.txn_date
           union all
           select l.portfolio_id, ca.security_id, l.ex_date::text, 'action', null, null, null, null, null,
                  l.action_type, l.quantity_held::text, l.quantity_delta::text, l.ratio::text, l.id
             from corporate_action_ledger l
             join corporate_actions ca on ca.id = l.action_id
            where l.portfolio_id = any(?::text[]) and l.ex_date <= ?::date and l.quantity_delta <> 0
              and not exists (
                select 1 from corporate_action_ledger o
                 where o.action_id = l.action_id and o.action_revision = l.action_revision
                   and o.portfolio_id = l.portfolio_id and o.entry <> l.entry
                   and o.ex_date = l.ex_date and o.quantity_delta = -l.quantity_delta)
         ) e
         order by "portfolioId", "securityId", date, kind, ord`,
        [[...portfolioIds], through, [...portfolioIds], through],
      );
      return res.rows;
    },

    /**
     * For each of `days`, the portfolios whose stored holdings of that day are not the books the
     * trades and the ledger give now: a position whose quantity differs from Σ signed trades + Σ
     * ledger deltas through the day (or is missing, or should be gone), or whose stored price is
     * not that day's close. One set-based statement for all the days; variance.quarterly
     * re-derives exactly those before it reads them.
     */
    async staleSnapshots(
      portfolioIds: readonly string[],
      days: readonly string[],
    ): Promise<Map<string, string[]>> {
      const sorted = [...new Set(days)].sort();
      const rows = await preparedQuery<{ d: string; p: string }>(
        db,
        `books.staleSnapshots.${sorted.length}`,
        `with days as (select unnest($1::date[]) as d),
         m as (
           -- Σ signed quantities per position through each day, in one pass over the moves
           select x.p, x.s, ${sorted.map((_, i) => `sum(x.q) filter (where x.at <= ($1::date[])[${i + 1}]) as q${i}`).join(', ')}
             from (select portfolio_id as p, security_id as s, txn_date as at,
                          case when txn_type in ('BUY', 'COVER') then quantity else -quantity end as q
                     from transactions where portfolio_id = any($2::text[]) and txn_date <= (select max(d) from days)
                   union all
                   select l.portfolio_id, ca.security_id, l.ex_date, l.quantity_delta
                     from corporate_action_ledger l join corporate_actions ca on ca.id = l.action_id
                    where l.portfolio_id = any($2::text[]) and l.ex_date <= (select max(d) from days)) x
            group by 1, 2
         ), want as (
           select x.d, m.p, m.s, x.q
             from m cross join lateral (values ${sorted.map((_, i) => `(($1::date[])[${i + 1}], m.q${i})`).join(', ')}) x(d, q)
            where x.q <> 0
         ), px as materialized (
           -- The days' closes read by date (hash-joined), not probed once per holding.
           select b.security_id, b.session_date, b.close from bars_1d b where b.session_date in (select d from days)
         ), have as (
           select h.as_of_date as d, h.portfolio_id as p, h.security_id as s, h.quantity as q,
                  h.local_price is distinct from px.close as bad_price
             from holdings h
             left join px on px.security_id = h.security_id and px.session_date = h.as_of_date
            where h.portfolio_id = any($2::text[]) and h.as_of_date in (select d from days)
         )
         select distinct coalesce(w.d, h.d)::text as d, coalesce(w.p, h.p) as p
           from want w full join have h on h.d = w.d and h.p = w.p and h.s = w.s
          where w.q is distinct from h.q or h.bad_price
          order by 1, 2`,
        [sorted, [...portfolioIds]],
      );
      const out = new Map<string, string[]>(days.map((d) => [d, []]));
      for (const r of rows) out.get(r.d)?.push(r.p);
      return out;
    },

    /**
     * Writes one chunk of holdings (see writeHoldingsOn) in one transaction; with a checkpoint, a
     * chunk already written by an earlier attempt of the same job is skipped, and the checkpoint
     * commits with the rows.
     */
    async writeHoldings(
      portfolioIds: readonly string[],
      from: string,
      to: string,
      intervals: readonly HoldingInterval[],
      checkpoint?: { jobName: string; key: string },
    ): Promise<SnapshotWrite> {
      return rawTransaction(db, async (conn) => {
        if (checkpoint && (await claimCheckpointOn(conn, checkpoint.jobName, checkpoint.key)))
          return { rows: 0, flagged: 0, skipped: true };
        const out = await writeHoldingsOn(conn, portfolioIds, from, to, intervals);
        if (checkpoint)
          await writeCheckpointOn(conn, checkpoint.jobName, checkpoint.key, { from, to, ...out });
        return { ...out, skipped: false };
      });
    },

    /**
     * The attribution inputs of every security a portfolio held at d0 or d1, traded in (d0, d1], or
     * received a distribution for in (d0, d1], from the holdings rows of d0 and d1.
     */
    async varianceInputs(
      portfolioIds: readonly string[],
      d0: string,
      d1: string,
    ): Promise<VarianceInputRow[]> {
      return preparedQuery<VarianceInputRow>(db, 'books.varianceInputs', `${VARIANCE_INPUTS} order by 1, 2`, [
        portfolioIds,
        d0,
        d1,
      ]);
    },

    /**
     * Attributes one period for all `portfolioIds` and replaces their variance rows of that period
     * (its calendar dates), in one transaction: one DELETE, then one INSERT … SELECT that computes
     * SPEC §8's effects from the inputs of VARIANCE_INPUTS in numeric, reproducing to the digit
     * varianceRow() of test/variance-oracle.ts (attribute() + inCents() of core/domain, which stay
     * the reference: test/variance-sql.test.ts compares both on thousands of random holdings).
     * Every decimal.js step (40 significant digits, half up) is mirrored by dec40() around the
     * exact numeric operation (migration 20261205000320_variance_sql); the cents follow inCents'
     * largest remainder (centsPreservingSum).
     */
    async writeVariance(
      portfolioIds: readonly string[],
      period: StoredPeriod,
      d0: string,
      d1: string,
    ): Promise<VarianceWrite[]> {
      return rawTransaction(db, async (conn) => {
        for (const id of [...portfolioIds].sort()) await lockKeyOn(conn, `variance:${id}`);
        await conn.query(
          'delete from variance_rows where portfolio_id = any($1::text[]) and period_from = $2::date and period_to = $3::date',
          [portfolioIds, period.start, period.end],
        );
        const res = await conn.query<VarianceWrite>(WRITE_VARIANCE, [
          portfolioIds,
          d0,
          d1,
          period.label,
          period.start,
          period.end,
        ]);
        return res.rows;
      });
    },
  };
}

export type BooksRepository = ReturnType<typeof createBooksRepository>;
