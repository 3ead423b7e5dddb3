/**
 * Variance rows for report tests and the bench, written set-based (generate_series), as
 * variance.quarterly would leave them: securities of two types in three currencies, portfolios,
 * one row per (portfolio, security) with effects that add up to MV end − MV start +
 * distributions, every 97th row flagged (missing price: null money), FX rates at both period ends,
 * and corporate actions in the period, applied through the ledger for some portfolios.
 */
import type { Knex } from '../core/db/knex.ts';

export interface FixtureSpec {
  securities: number;
  portfolios: number;
  /** Variance rows per portfolio (≤ securities); default all. */
  rowsPerPortfolio?: number;
  periodLabel?: string;
  periodFrom?: string;
  periodTo?: string;
  /** Offset of portfolio ids (PORT-<offset+1>…) so several fixtures can share a database. */
  portfolioOffset?: number;
  /** Skip creating securities (already there from an earlier call). */
  reuseSecurities?: boolean;
}

export async function seedVarianceFixture(db: Knex, spec: FixtureSpec): Promise<{ portfolioIds: string[] }> {
  const label = spec.periodLabel ?? '2025Q1';
  const from = spec.periodFrom ?? '2025-01-01';
  const to = spec.periodTo ?? '2025-03-31';
  const off = spec.portfolioOffset ?? 0;
  const per = Math.min(spec.rowsPerPortfolio ?? spec.securities, spec.securities);
  if (!spec.reuseSecurities) {
    await db.raw(
      `insert into securities (security_id, ticker, isin, cusip, security_name, security_type, asset_class, currency,
                               exchange, maturity_date, face_value)
       select 'SEC-' || lpad(i::text, 7, '0'), 'T' || i, 'US' || lpad(i::text, 9, '0') || (i % 10),
              lpad(i::text, 9, '0'), 'Security number ' || i || case when i % 7 = 0 then ' Holdings & Co. plc' else '' end,
              case when i % 5 = 0 then 'BOND' else 'EQUITY' end,
              case when i % 5 = 0 then 'FIXED_INCOME' else 'EQUITY' end,
              (array['USD','EUR','GBP'])[1 + i % 3], 'XNYS',
              case when i % 5 = 0 then date '2035-06-30' end, case when i % 5 = 0 then 1000 end
         from generate_series(1, ?) i
       on conflict do nothing`,
      [spec.securities],
    );
    await db.raw(
      `insert into fx_rates (from_currency, to_currency, rate_date, rate, source)
       select c, 'USD', d, case c when 'EUR' then (case when d = ?::date then 1.0850000000 else 1.0790000000 end)
                                   else (case when d = ?::date then 1.2650000000 else 1.2620000000 end) end, 'ecb'
         from unnest(array['EUR','GBP']) c, unnest(array[?::date, ?::date]) d
       on conflict do nothing`,
      [from, from, from, to],
    );
  }
  const ids = Array.from(
    { length: spec.portfolios },
    (_, i) => `PORT-${String(off + i + 1).padStart(3, '0')}`,
  );
  await db.raw(
    `insert into portfolios (portfolio_id, portfolio_name, portfolio_type, inception_date, base_currency)
     select id, 'Fund ' || id, 'MIXED', date '2020-01-01', 'USD' from unnest(?::text[]) id on conflict do nothing`,
    [ids],
  );
  await db.raw(
    `insert into variance_rows (portfolio_id, security_id, period_label, period_from, period_to, qty_start, qty_end,
                                price_start, price_end, fx_start, fx_end, split_factor, mv_start, mv_end, price_effect,
                                qty_effect, fx_effect, corp_action_effect, distributions, total_pnl, flag)
     select p.id, s.id, ?, ?::date, ?::date, v.q0, v.q1, v.p0, case when v.flagged then null else v.p1 end,
            v.fx0, v.fx1, 1, m.mv0, m.mv1, m.pe, m.qe, m.fe,
            case when v.flagged then null else m.mv1 - m.mv0 + m.dist - m.pe - m.qe - m.fe end,
            case when v.flagged then 0 else m.dist end,
            case when v.flagged then null else m.mv1 - m.mv0 + m.dist end,
            case when v.flagged then 'missing price at period end' end
       from (select id, row_number() over (order by id) as n from unnest(?::text[]) id) p
       join lateral (select id, security_id, currency from securities
                      where security_id ~ '^SEC-[0-9]{7}$' order by id limit ?) s on true
       cross join lateral (
         select ((s.id * 31 + p.n * 17) % 97 = 0) as flagged,
                ((s.id * 13 + p.n * 7) % 5000 + 1)::numeric(24,8) as q0,
                ((s.id * 13 + p.n * 7) % 5000 + 1 + (s.id % 11) - 5)::numeric(24,8) as q1,
                (10 + (s.id * 37 + p.n) % 900 + 0.25)::numeric(20,8) as p0,
                (10 + (s.id * 41 + p.n * 3) % 900 + 0.75)::numeric(20,8) as p1,
                case s.currency when 'USD' then 1 when 'EUR' then 1.085 else 1.265 end::numeric(20,10) as fx0,
                case s.currency when 'USD' then 1 when 'EUR' then 1.079 else 1.262 end::numeric(20,10) as fx1
       ) v
       cross join lateral (
         select round(v.q0 * v.p0 * v.fx0, 2) as mv0,
                case when v.flagged then null else round(v.q1 * v.p1 * v.fx1, 2) end as mv1,
                case when v.flagged then null else round(v.q0 * (v.p1 - v.p0) * v.fx0, 2) end as pe,
                case when v.flagged then null else round((v.q1 - v.q0) * v.p1 * v.fx0, 2) end as qe,
                case when v.flagged then null else round(v.q1 * v.p1 * (v.fx1 - v.fx0), 2) end as fe,
                case when s.id % 4 = 0 then round(v.q0 * 0.37, 2) else 0 end as dist
       ) m0
       cross join lateral (select m0.mv0, m0.mv1, m0.pe, m0.qe, m0.fe, m0.dist) m`,
    [label, from, to, ids, per],
  );
  if (!spec.reuseSecurities) {
    await db.raw(
      `insert into corporate_actions (action_id, security_id, action_type, ex_date, payment_date, ratio, amount, currency, source)
       select 'CA-' || s.id || '-' || t, s.id, t, ?::date + (s.id % 60), case when t = 'DIVIDEND' then ?::date + (s.id % 60) + 14 end,
              case when t = 'STOCK_SPLIT' then 2 end, case when t = 'DIVIDEND' then 0.37 end, s.currency, 'fixture'
         from (select id, currency from securities where security_id ~ '^SEC-[0-9]{7}$' order by id limit 12) s,
              unnest(array['DIVIDEND','STOCK_SPLIT']) t
        where (t = 'DIVIDEND') = (s.id % 2 = 0)
       on conflict do nothing`,
      [from, from],
    );
  }
  await db.raw(
    `insert into corporate_action_ledger (action_id, action_revision, portfolio_id, entry, action_type, ex_date, payment_date,
                                          ratio, amount, currency, quantity_held, quantity_delta, cash_amount, applied_at)
     select ca.id, 1, vr.portfolio_id, 'APPLY', ca.action_type, ca.ex_date, ca.payment_date, ca.ratio, ca.amount, ca.currency,
            vr.qty_start, case when ca.action_type = 'STOCK_SPLIT' then vr.qty_start else 0 end,
            case when ca.action_type = 'DIVIDEND' then round(vr.qty_start * ca.amount, 2) else 0 end,
            ca.ex_date + time '06:05'
       from corporate_actions ca join variance_rows vr on vr.security_id = ca.security_id
      where vr.period_label = ? and vr.portfolio_id = any(?) and ca.source = 'fixture'
        and (ca.id + length(vr.portfolio_id)) % 3 <> 0
     on conflict do nothing`,
    [label, ids],
  );
  return { portfolioIds: ids };
}
