/**
 * The core schema: reference data, clients and accounts, positions, transactions, holdings,
 * FX, corporate actions, the NYSE session calendar, ticks and bars (partitioned by month),
 * analytics outputs, margin, report runs, job checkpoints and the quarantine.
 *
 * Constraints are the last line of defence: a row that breaks one is a bug or a bad feed, so
 * prices are positive, volumes non-negative, high >= low, natural keys unique. Money and prices
 * are `numeric`; indicator values are `double precision` (they are floating-point statistics,
 * and TA-Lib, the reference, computes them in doubles).
 */
import type { Knex } from 'knex';

const PRICE = 'numeric(20,8)';
const MONEY = 'numeric(24,2)';
const QTY = 'numeric(24,8)';

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    -- Monthly range partitions for a time-partitioned table: creates any missing partition
    -- covering [from_ts, to_ts), named <table>_pYYYY_MM, bounds at UTC month starts. Safe to call
    -- concurrently (a partition created by a racing session is skipped).
    create or replace function ensure_month_partitions(parent regclass, from_ts timestamptz, to_ts timestamptz)
    returns integer language plpgsql as $$
    declare
      m timestamptz := date_trunc('month', from_ts at time zone 'UTC') at time zone 'UTC';
      created integer := 0;
      part text;
    begin
      while m < to_ts loop
        part := format('%s_p%s', parent::text, to_char(m at time zone 'UTC', 'YYYY_MM'));
        if to_regclass(part) is null then
          begin
            execute format('create table %I partition of %s for values from (%L) to (%L)',
              part, parent, m, (m at time zone 'UTC' + interval '1 month') at time zone 'UTC');
            created := created + 1;
          exception when duplicate_table then
            null;
          end;
        end if;
        m := (m at time zone 'UTC' + interval '1 month') at time zone 'UTC';
      end loop;
      return created;
    end $$;

    create table issuers (
      issuer_id text primary key check (issuer_id ~ '^ISS-[0-9]{3,}$'),
      issuer_name text not null,
      country char(2) not null check (country ~ '^[A-Z]{2}$'),
      sector text not null,
      industry text,
      lei char(20) unique check (lei ~ '^[A-Z0-9]{20}$')
    );

    create table credit_ratings (
      id bigint generated always as identity primary key,
      issuer_id text not null references issuers,
      agency text not null check (agency in ('S&P', 'MOODYS', 'FITCH')),
      rating text not null,
      rating_date date not null,
      action text not null check (action in ('NEW', 'AFFIRMED', 'UPGRADE', 'DOWNGRADE')),
      unique (issuer_id, agency, rating_date)
    );

    create table securities (
      id integer generated always as identity primary key,
      security_id text not null unique check (security_id ~ '^SEC-[0-9]{4,}$'),
      ticker text not null unique check (ticker ~ '^[A-Z0-9._=^-]{1,20}$'),
      isin char(12) unique check (isin ~ '^[A-Z]{2}[A-Z0-9]{9}[0-9]$'),
      cusip char(9) unique check (cusip ~ '^[A-Z0-9]{9}$'),
      sedol char(7) unique check (sedol ~ '^[A-Z0-9]{7}$'),
      security_name text not null,
      security_type text not null check (security_type in ('EQUITY', 'BOND', 'OPTION', 'FUTURE', 'CLO', 'ABS')),
      asset_class text not null,
      currency char(3) not null check (currency ~ '^[A-Z]{3}$'),
      exchange text not null,
      issuer_id text references issuers,
      issue_date date,
      maturity_date date,
      coupon_rate numeric(9,6) check (coupon_rate >= 0),
      coupon_frequency smallint check (coupon_frequency in (1, 2, 4, 12)),
      face_value ${PRICE} check (face_value > 0),
      underlying_id integer references securities,
      strike ${PRICE} check (strike > 0),
      option_type char(1) check (option_type in ('C', 'P')),
      contract_multiplier numeric(12,4) not null default 1 check (contract_multiplier > 0),
      -- Margin: non-marginable securities carry a 100% requirement; a house rate overrides 25%.
      marginable boolean not null default true,
      house_margin_rate numeric(6,4) check (house_margin_rate between 0 and 1),
      price_provider text not null default 'synthetic',
      status text not null default 'ACTIVE' check (status in ('ACTIVE', 'MATURED', 'DELISTED', 'SUSPENDED')),
      created_at timestamptz not null default now(),
      updated_at timestamptz not null default now(),
      check (maturity_date is null or issue_date is null or maturity_date > issue_date),
      check (security_type <> 'OPTION' or (underlying_id is not null and strike is not null and option_type is not null)),
      check (security_type not in ('BOND', 'CLO', 'ABS') or (maturity_date is not null and face_value is not null))
    );
    create index securities_type_idx on securities (security_type);
    create index securities_currency_idx on securities (currency);
    create index securities_issuer_idx on securities (issuer_id);

    create table portfolios (
      portfolio_id text primary key check (portfolio_id ~ '^PORT-[0-9]{3,}$'),
      portfolio_name text not null,
      portfolio_type text not null check (portfolio_type in ('EQUITY', 'FIXED_INCOME', 'MIXED', 'HEDGE')),
      benchmark text,
      inception_date date not null,
      base_currency char(3) not null check (base_currency ~ '^[A-Z]{3}$')
    );

    create table holdings (
      portfolio_id text not null references portfolios,
      security_id integer not null references securities,
      as_of_date date not null,
      quantity ${QTY} not null,
      local_price ${PRICE} not null check (local_price > 0),
      fx_rate numeric(20,10) not null check (fx_rate > 0),
      market_value ${MONEY} not null,
      weight numeric(12,8) not null,
      cost_basis ${MONEY} not null,
      accrued_interest ${MONEY} not null default 0,
      primary key (portfolio_id, as_of_date, security_id)
    );
    create index holdings_security_idx on holdings (security_id, as_of_date);

    create table clients (
      id integer generated always as identity primary key,
      client_code text not null unique,
      name text not null,
      created_at timestamptz not null default now()
    );

    -- cash_balance is the credit balance; loan_balance the debit balance (margin loan), never negative.
    create table accounts (
      id integer generated always as identity primary key,
      client_id integer not null references clients on delete cascade,
      account_type text not null check (account_type in ('MARGIN', 'CASH')),
      currency char(3) not null check (currency ~ '^[A-Z]{3}$'),
      cash_balance ${MONEY} not null default 0 check (cash_balance >= 0),
      loan_balance ${MONEY} not null default 0 check (loan_balance >= 0),
      updated_at timestamptz not null default now(),
      unique (client_id, account_type, currency)
    );

    -- Negative quantity is a short position. cost_basis is per share (seed 0's shape).
    create table positions (
      id integer generated always as identity primary key,
      account_id integer not null references accounts on delete cascade,
      security_id integer not null references securities,
      quantity ${QTY} not null check (quantity <> 0),
      cost_basis ${PRICE} not null check (cost_basis >= 0),
      updated_at timestamptz not null default now(),
      unique (account_id, security_id)
    );
    create index positions_security_idx on positions (security_id);

    create table transactions (
      id bigint generated always as identity primary key,
      txn_id text not null unique,
      portfolio_id text references portfolios,
      account_id integer references accounts,
      security_id integer not null references securities,
      txn_type text not null check (txn_type in ('BUY', 'SELL', 'SHORT', 'COVER')),
      quantity ${QTY} not null check (quantity > 0),
      price ${PRICE} not null check (price > 0),
      txn_date date not null,
      settlement_date date not null,
      fees ${MONEY} not null default 0 check (fees >= 0),
      currency char(3) not null check (currency ~ '^[A-Z]{3}$'),
      check (settlement_date >= txn_date),
      check (num_nonnulls(portfolio_id, account_id) = 1)
    );
    create index transactions_security_idx on transactions (security_id, txn_date);
    create index transactions_portfolio_idx on transactions (portfolio_id, txn_date);
    create index transactions_account_idx on transactions (account_id, txn_date);

    -- One rate per currency pair and day: units of to_currency per one from_currency.
    create table fx_rates (
      from_currency char(3) not null check (from_currency ~ '^[A-Z]{3}$'),
      to_currency char(3) not null check (to_currency ~ '^[A-Z]{3}$'),
      rate_date date not null,
      rate numeric(20,10) not null check (rate > 0),
      source text not null,
      primary key (from_currency, to_currency, rate_date),
      check (from_currency <> to_currency)
    );
    create index fx_rates_date_idx on fx_rates (rate_date);

    -- ratio: new shares per old (2:1 split = 2, 1:10 reverse split = 0.1). amount: cash per share
    -- (dividend) or per unit of face (coupon, maturity).
    create table corporate_actions (
      id bigint generated always as identity primary key,
      action_id text not null unique,
      security_id integer not null references securities,
      action_type text not null check (action_type in ('STOCK_SPLIT', 'REVERSE_SPLIT', 'DIVIDEND', 'COUPON', 'MATURITY')),
      ex_date date not null,
      record_date date,
      payment_date date,
      ratio numeric(20,10) check (ratio > 0),
      amount ${PRICE} check (amount >= 0),
      currency char(3) check (currency ~ '^[A-Z]{3}$'),
      source text not null,
      created_at timestamptz not null default now(),
      unique (security_id, action_type, ex_date),
      check (action_type not in ('STOCK_SPLIT', 'REVERSE_SPLIT') or ratio is not null),
      check (action_type not in ('DIVIDEND', 'COUPON') or (amount is not null and payment_date is not null)),
      check (payment_date is null or payment_date >= ex_date)
    );
    create index corporate_actions_ex_idx on corporate_actions (ex_date);

    -- The exchange calendar as data, so rollups can join sessions set-based: one row per trading
    -- day with its regular-session bounds (early closes end at 13:00 New York time).
    create table market_sessions (
      exchange text not null,
      session_date date not null,
      open_at timestamptz not null,
      close_at timestamptz not null,
      early_close boolean not null default false,
      primary key (exchange, session_date),
      check (close_at > open_at)
    );
    create index market_sessions_open_idx on market_sessions (exchange, open_at);

    -- Ticks: (security, time, sequence) is the natural key; seq orders prints sharing a timestamp.
    -- No foreign key to securities: a per-row FK trigger would halve COPY throughput on billions
    -- of rows; ingestion validates the security and quarantines unknown ones instead.
    create table ticks (
      security_id integer not null,
      ts timestamptz not null,
      seq integer not null default 0 check (seq >= 0),
      price ${PRICE} not null check (price > 0),
      size bigint not null check (size >= 0),
      bid ${PRICE} check (bid > 0),
      ask ${PRICE} check (ask > 0),
      primary key (security_id, ts, seq),
      check (bid is null or ask is null or bid <= ask)
    ) partition by range (ts);

    -- 5-minute bars: bucket is the epoch-aligned start of [bucket, bucket + 5m). pv = sum(price*size)
    -- is kept so daily VWAP rolls up exactly.
    create table bars_5m (
      security_id integer not null references securities,
      bucket timestamptz not null check (extract(epoch from bucket)::bigint % 300 = 0),
      open ${PRICE} not null check (open > 0),
      high ${PRICE} not null,
      low ${PRICE} not null check (low > 0),
      close ${PRICE} not null check (close > 0),
      volume bigint not null check (volume >= 0),
      pv numeric(38,8) not null check (pv >= 0),
      vwap ${PRICE} check (vwap > 0),
      trade_count integer not null check (trade_count > 0),
      updated_at timestamptz not null default now(),
      primary key (security_id, bucket),
      check (high >= low and high >= open and high >= close and low <= open and low <= close),
      check ((volume = 0) = (vwap is null))
    ) partition by range (bucket);

    -- Daily bars by exchange-local session date. source: 'rollup' (from 5-minute bars) or the
    -- provider that supplied the day (history older than the tick window).
    create table bars_1d (
      security_id integer not null references securities,
      session_date date not null,
      open ${PRICE} not null check (open > 0),
      high ${PRICE} not null,
      low ${PRICE} not null check (low > 0),
      close ${PRICE} not null check (close > 0),
      adj_close ${PRICE} check (adj_close > 0),
      volume bigint not null check (volume >= 0),
      pv numeric(38,8) check (pv >= 0),
      vwap ${PRICE} check (vwap > 0),
      trade_count integer check (trade_count >= 0),
      source text not null,
      updated_at timestamptz not null default now(),
      primary key (security_id, session_date),
      check (high >= low and high >= open and high >= close and low <= open and low <= close)
    );
    create index bars_1d_date_idx on bars_1d (session_date);

    create table indicators (
      security_id integer not null references securities,
      interval text not null check (interval in ('5m', '1d')),
      ts timestamptz not null,
      name text not null,
      value double precision not null check (value = value and value not in ('Infinity', '-Infinity')),
      primary key (security_id, interval, name, ts)
    );

    create table risk_metrics (
      security_id integer not null references securities,
      as_of_date date not null,
      window_days integer not null check (window_days > 1),
      volatility double precision,
      var_95 double precision check (var_95 >= 0),
      var_99 double precision check (var_99 >= 0),
      es_95 double precision check (es_95 >= 0),
      es_99 double precision check (es_99 >= 0),
      beta double precision,
      benchmark_id integer references securities,
      computed_at timestamptz not null default now(),
      primary key (security_id, as_of_date, window_days)
    );

    create table variance_rows (
      portfolio_id text not null references portfolios,
      security_id integer not null references securities,
      quarter_label text not null check (quarter_label ~ '^[0-9]{4}Q[1-4]$'),
      period_from date not null,
      period_to date not null,
      qty_start ${QTY} not null,
      qty_end ${QTY} not null,
      price_start ${PRICE},
      price_end ${PRICE},
      fx_start numeric(20,10),
      fx_end numeric(20,10),
      split_factor numeric(20,10) not null default 1 check (split_factor > 0),
      mv_start ${MONEY} not null,
      mv_end ${MONEY} not null,
      price_effect ${MONEY} not null,
      qty_effect ${MONEY} not null,
      fx_effect ${MONEY} not null,
      corp_action_effect ${MONEY} not null,
      total_pnl ${MONEY} not null,
      computed_at timestamptz not null default now(),
      primary key (portfolio_id, period_from, period_to, security_id),
      check (period_to > period_from)
    );
    create index variance_rows_quarter_idx on variance_rows (quarter_label, portfolio_id);

    create table margin_snapshots (
      id bigint generated always as identity primary key,
      client_id integer not null references clients,
      run_date date not null,
      as_of timestamptz not null,
      long_market_value ${MONEY} not null check (long_market_value >= 0),
      short_market_value ${MONEY} not null check (short_market_value >= 0),
      credit_balance ${MONEY} not null check (credit_balance >= 0),
      debit_balance ${MONEY} not null check (debit_balance >= 0),
      net_equity ${MONEY} not null,
      margin_requirement ${MONEY} not null check (margin_requirement >= 0),
      margin_shortfall ${MONEY} not null check (margin_shortfall >= 0),
      margin_call_triggered boolean not null,
      unique (client_id, run_date),
      check (margin_call_triggered = (margin_shortfall > 0))
    );

    create table margin_calls (
      id bigint generated always as identity primary key,
      client_id integer not null references clients,
      snapshot_id bigint not null references margin_snapshots on delete cascade,
      issued_on date not null,
      due_date date not null,
      amount ${MONEY} not null check (amount > 0),
      status text not null default 'OPEN' check (status in ('OPEN', 'MET', 'CANCELLED')),
      unique (client_id, issued_on),
      check (due_date >= issued_on)
    );

    create table report_runs (
      id bigint generated always as identity primary key,
      report_type text not null,
      period_label text not null,
      status text not null check (status in ('RUNNING', 'SUCCEEDED', 'FAILED')),
      params jsonb not null default '{}',
      file_path text,
      bytes bigint check (bytes >= 0),
      row_count integer check (row_count >= 0),
      error text,
      started_at timestamptz not null default now(),
      finished_at timestamptz,
      check (status <> 'SUCCEEDED' or (file_path is not null and finished_at is not null))
    );
    create index report_runs_type_idx on report_runs (report_type, started_at desc);

    -- Progress of long jobs (resume points) and watermarks of incremental ones.
    create table job_checkpoints (
      job_name text not null,
      checkpoint_key text not null,
      state jsonb not null,
      updated_at timestamptz not null default now(),
      primary key (job_name, checkpoint_key)
    );

    -- Bad rows from providers, kept with the reason and the raw payload instead of being dropped.
    create table quarantined_rows (
      id bigint generated always as identity primary key,
      source text not null,
      job_name text,
      job_id text,
      entity text not null,
      symbol text,
      reason text not null check (reason <> ''),
      raw jsonb not null,
      received_at timestamptz not null default now()
    );
    create index quarantined_rows_received_idx on quarantined_rows (received_at desc);
    create index quarantined_rows_symbol_idx on quarantined_rows (symbol, received_at desc);
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    drop table if exists quarantined_rows, job_checkpoints, report_runs, margin_calls, margin_snapshots,
      variance_rows, risk_metrics, indicators, bars_1d, bars_5m, ticks, market_sessions, corporate_actions,
      fx_rates, transactions, positions, accounts, clients, holdings, portfolios, securities, credit_ratings,
      issuers cascade;
    drop function if exists ensure_month_partitions(regclass, timestamptz, timestamptz);
  `);
}
