/**
 * Indicators become one wide row per (security, interval, bar) instead of one long row per
 * (security, interval, bar, indicator name).
 *
 * Why: all indicators for 1,000 securities × 5 years of daily bars are 16 series × 1.26M bars. As
 * long rows that is ~20M inserts and ~20M primary-key entries, far beyond the issue's 10 s; as
 * wide rows it is 1.26M rows of doubles, loaded by binary COPY. Every series is computed on every
 * run anyway (they share the bars), readers want several series of the same bar, and SPEC §8 fixes
 * the set of series, so columns fit.
 *
 * - Values are double precision (TA-Lib's arithmetic), null while an indicator warms up (TA-Lib's
 *   lookback), never NaN or ±Infinity. One CHECK covers every column: x − x = 0 holds for every
 *   finite x and fails for NaN and ±Infinity (Inf − Inf is NaN, and NaN = 0 is false), and a null
 *   column leaves the conjunction null, which a CHECK accepts. (The old table's `value = value`
 *   let NaN through: PostgreSQL treats NaN as equal to itself.) One constraint with cheap terms
 *   instead of 16 `not in (...)` checks: measured ~25% of the insert time otherwise.
 * - input_hash: a 53-bit hash of the bars (time, high, low, close) from the start of the series
 *   the row was computed from up to and including this bar, plus the algorithm version. A run
 *   compares it with the new series' hash at the stored last row to know, from one row per
 *   security, that no earlier bar changed.
 * - ts: for '5m' the bucket start; for '1d' the session's close (16:00 New York, 13:00 on early
 *   closes) on the bar's session date.
 * - No foreign key to securities, as with ticks: the per-row RI trigger made the bulk insert 3.4×
 *   slower (measured). Rows are only written for securities read from bars (which have the key),
 *   and a statement-level trigger keeps the old key's ON DELETE RESTRICT behaviour.
 */
import type { Knex } from 'knex';

/** The stored series, in column order (core/domain/indicators.ts INDICATOR_NAMES matches). */
const SERIES = [
  'sma_20',
  'sma_50',
  'sma_200',
  'ema_12',
  'ema_26',
  'rsi_14',
  'macd',
  'macd_signal',
  'macd_hist',
  'bb_upper',
  'bb_middle',
  'bb_lower',
  'atr_14',
  'stoch_k',
  'stoch_d',
  'stddev_20',
];

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    drop table indicators;

    create table indicator_values (
      security_id integer not null,
      interval text collate "C" not null check (interval in ('5m', '1d')),
      ts timestamptz not null,
      ${SERIES.map((c) => `${c} double precision`).join(',\n      ')},
      input_hash bigint not null,
      computed_at timestamptz not null default now(),
      primary key (security_id, interval, ts),
      constraint indicator_values_finite check (${SERIES.map((c) => `${c} - ${c} = 0`).join(' and ')})
    );

    -- ON DELETE RESTRICT for the foreign key the table does not have (see the header).
    create function indicator_values_restrict_security_delete() returns trigger language plpgsql as $$
    begin
      if exists (select 1 from indicator_values v join gone g on v.security_id = g.id) then
        raise foreign_key_violation using
          message = 'securities rows are still referenced from indicator_values';
      end if;
      return null;
    end $$;
    create trigger securities_restrict_indicator_values after delete on securities
      referencing old table as gone for each statement
      execute function indicator_values_restrict_security_delete();
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    drop trigger if exists securities_restrict_indicator_values on securities;
    drop function if exists indicator_values_restrict_security_delete();
    drop table if exists indicator_values;

    create table indicators (
      security_id integer not null references securities,
      interval text not null check (interval in ('5m', '1d')),
      ts timestamptz not null,
      name text not null,
      value double precision not null check (value = value and value not in ('Infinity', '-Infinity')),
      primary key (security_id, interval, name, ts)
    );
  `);
}
