/**
 * FX rates (`fx_rates`): daily rates to the base currency from providers, stored as sent or as the
 * reciprocal of the inverse pair (computed in numeric), and the crosses triangulated from them in
 * SQL `numeric`, never through a binary float.
 */
import { rawTransaction, type Knex } from '../knex.ts';
import { insertQuarantineOn, type QuarantineInsert } from './quarantine.ts';
import { col } from './sql.ts';

export interface FxUpsert {
  from: string;
  to: string;
  date: string;
  /** Decimal text; with `invert`, the rate of to→from, stored as its reciprocal (in numeric). */
  rate: string;
  invert?: boolean;
  source: string;
}

export function createFxRepository(db: Knex) {
  return {
    /**
     * FX rates to store (direct pairs, or reciprocals of the inverse pair computed in numeric), with
     * the quarantined rows of the same fetch. Idempotent: the same rate is left untouched.
     */
    async upsertRates(
      rows: readonly FxUpsert[],
      quarantine: readonly QuarantineInsert[] = [],
    ): Promise<{ inserted: number; updated: number; unchanged: number; quarantined: number }> {
      return rawTransaction(db, async (conn) => {
        let inserted = 0;
        let updated = 0;
        if (rows.length) {
          const res = await conn.query<{ inserted: number; updated: number }>(
            `with input as (
               select f, t, d, case when inv then round(1::numeric(60,30) / r, 10) else round(r, 10) end as rate, src
                 from unnest($1::text[], $2::text[], $3::date[], $4::numeric[], $5::boolean[], $6::text[])
                      as x(f, t, d, r, inv, src)
             ), up as (
               insert into fx_rates as x (from_currency, to_currency, rate_date, rate, source)
               select f, t, d, rate, src from input
               on conflict (from_currency, to_currency, rate_date) do update
                  set rate = excluded.rate, source = excluded.source
                where (x.rate, x.source) is distinct from (excluded.rate, excluded.source)
               returning (xmax = 0) as inserted
             )
             select (count(*) filter (where inserted))::int as inserted,
                    (count(*) filter (where not inserted))::int as updated
               from up`,
            [
              col(rows, 'from'),
              col(rows, 'to'),
              col(rows, 'date'),
              col(rows, 'rate'),
              rows.map((r) => r.invert ?? false),
              col(rows, 'source'),
            ],
          );
          inserted = res.rows[0]?.inserted ?? 0;
          updated = res.rows[0]?.updated ?? 0;
        }
        const quarantined = await insertQuarantineOn(conn, quarantine);
        return { inserted, updated, unchanged: rows.length - inserted - updated, quarantined };
      });
    },

    /**
     * Cross rates A→B for every ordered pair of `currencies` (none the base) on every date from..to
     * where both A→base and B→base are stored: A→B = (A→base) / (B→base), divided in numeric at 30
     * decimal places and rounded to the column's 10, never through a binary float.
     */
    async triangulate(
      base: string,
      currencies: readonly string[],
      from: string,
      to: string,
      source: string,
    ): Promise<{ inserted: number; updated: number; unchanged: number }> {
      const res = await db.raw<{ rows: { inserted: number; updated: number; total: number }[] }>(
        `with input as (
           select a.from_currency as f, b.from_currency as t, a.rate_date as d,
                  round(a.rate::numeric(60,30) / b.rate, 10) as rate
             from fx_rates a
             join fx_rates b on b.rate_date = a.rate_date and b.to_currency = a.to_currency
            where a.to_currency = :base and a.from_currency = any(:ccy::text[]) and b.from_currency = any(:ccy::text[])
              and a.from_currency <> b.from_currency and a.rate_date between :from::date and :to::date
         ), up as (
           insert into fx_rates as x (from_currency, to_currency, rate_date, rate, source)
           select f, t, d, rate, :source from input
           on conflict (from_currency, to_currency, rate_date) do update
              set rate = excluded.rate, source = excluded.source
            where (x.rate, x.source) is distinct from (excluded.rate, excluded.source)
           returning (xmax = 0) as inserted
         )
         select (select count(*) from input)::int as total,
                (count(*) filter (where inserted))::int as inserted,
                (count(*) filter (where not inserted))::int as updated
           from up`,
        { base, ccy: currencies.filter((c) => c !== base), from, to, source },
      );
      const r = res.rows[0] ?? { inserted: 0, updated: 0, total: 0 };
      return { inserted: r.inserted, updated: r.updated, unchanged: r.total - r.inserted - r.updated };
    },
  };
}

export type FxRepository = ReturnType<typeof createFxRepository>;
