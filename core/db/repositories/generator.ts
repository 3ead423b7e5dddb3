/**
 * Writes the synthetic dataset. Reference and daily rows go in as one set-based statement per
 * batch (unnest of arrays, `on conflict do nothing` on each natural key, so a rerun adds
 * nothing); ticks stream in through COPY, one chunk per transaction together with its
 * job_checkpoints row, so a crash loses at most the chunk in flight and a rerun skips the rest.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { from as copyFrom } from 'pg-copy-streams';
import { rawTransaction, type Knex } from '../knex.ts';
import { claimCheckpointOn, writeCheckpointOn } from './checkpoints.ts';
import { col, ident } from './sql.ts';

export interface IssuerInsert {
  issuerId: string;
  name: string;
  country: string;
  sector: string;
  industry: string;
  lei: string;
}

export interface RatingInsert {
  issuerId: string;
  agency: 'S&P' | 'MOODYS' | 'FITCH';
  rating: string;
  ratingDate: string;
  action: 'NEW' | 'AFFIRMED' | 'UPGRADE' | 'DOWNGRADE';
}

export interface SecurityInsert {
  securityId: string;
  ticker: string;
  isin: string;
  cusip: string | null;
  sedol: string;
  name: string;
  type: string;
  assetClass: string;
  currency: string;
  exchange: string;
  issuerId: string | null;
  issueDate: string | null;
  maturityDate: string | null;
  couponRate: string | null;
  couponFrequency: number | null;
  faceValue: string | null;
  /** security_id (code) of an option's underlying. */
  underlying: string | null;
  strike: string | null;
  optionType: string | null;
  multiplier: string;
  marginable: boolean;
  houseMarginRate: string | null;
  status: string;
}

export interface DailyBarInsert {
  securityId: number;
  sessionDate: string;
  open: string;
  high: string;
  low: string;
  close: string;
  volume: number;
  vwap: string;
  tradeCount: number;
}

export interface FxInsert {
  from: string;
  to: string;
  date: string;
  rate: string;
}

export interface ActionInsert {
  actionId: string;
  securityId: string;
  actionType: string;
  exDate: string;
  recordDate: string | null;
  paymentDate: string | null;
  ratio: string | null;
  amount: string | null;
  currency: string;
}

export interface PortfolioInsert {
  portfolioId: string;
  name: string;
  type: string;
  benchmark: string;
  inceptionDate: string;
  baseCurrency: string;
}

export interface ClientInsert {
  clientCode: string;
  name: string;
  currency: string;
  cash: string;
  loan: string;
  positions: { securityId: string; quantity: string; costBasis: string }[];
}

export interface TransactionInsert {
  txnId: string;
  portfolioId: string | null;
  clientCode: string | null;
  securityId: string;
  txnType: string;
  quantity: string;
  price: string;
  txnDate: string;
  settlementDate: string;
  fees: string;
  currency: string;
}

/** One portfolio's variance over a period (portfolioId null: every portfolio), sums in numeric. */
export interface VarianceSummaryRow {
  portfolioId: string | null;
  mvStart: string | null;
  mvEnd: string | null;
  corporateAction: string | null;
  quantity: string | null;
  price: string | null;
  fx: string | null;
  distributions: string | null;
  total: string | null;
  rows: number;
  /** Rows flagged for a missing price or rate (their money columns are null, left out of the sums). */
  flagged: number;
}

const TICK_COPY_COLUMNS = '(security_id, ts, seq, price, size, bid, ask)';

/**
 * COPY text rows (7 columns, each ending in a newline) with a last column added to every row: the
 * ticks' origin, which the generator's buffers do not carry. Rows may span buffers; only the
 * newlines are touched.
 */
export function* withOrigin(source: Iterable<Buffer>, origin: string): Generator<Buffer> {
  const suffix = Buffer.from(`\t${origin}\n`, 'latin1');
  for (const buf of source) {
    let lines = 0;
    for (let i = buf.indexOf(10); i !== -1; i = buf.indexOf(10, i + 1)) lines++;
    const out = Buffer.allocUnsafe(buf.length + lines * (suffix.length - 1));
    let from = 0;
    let pos = 0;
    for (let i = buf.indexOf(10); i !== -1; i = buf.indexOf(10, i + 1)) {
      pos += buf.copy(out, pos, from, i);
      pos += suffix.copy(out, pos);
      from = i + 1;
    }
    pos += buf.copy(out, pos, from);
    yield out.subarray(0, pos);
  }
}

async function* withOriginAsync(source: AsyncIterable<Buffer>, origin: string): AsyncGenerator<Buffer> {
  for await (const buf of source) yield* withOrigin([buf], origin);
}
/** Tables the generator fills, children first, for wiping a scratch database between test runs. */
const DATASET_TABLES = [
  'ticks',
  'bars_5m',
  'bars_1d',
  'holdings',
  'transactions',
  'positions',
  'accounts',
  'clients',
  'corporate_actions',
  'fx_rates',
  'credit_ratings',
  'securities',
  'issuers',
  'portfolios',
  'market_sessions',
];

export function createGeneratorRepository(db: Knex) {
  async function affected(sql: string, bindings: readonly unknown[]): Promise<number> {
    const res = await db.raw<{ rowCount: number }>(sql, bindings as Knex.RawBinding[]);
    return res.rowCount;
  }

  return {
    async insertIssuers(rows: readonly IssuerInsert[]): Promise<number> {
      return affected(
        `insert into issuers (issuer_id, issuer_name, country, sector, industry, lei)
         select * from unnest(?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[])
         on conflict (issuer_id) do nothing`,
        [
          col(rows, 'issuerId'),
          col(rows, 'name'),
          col(rows, 'country'),
          col(rows, 'sector'),
          col(rows, 'industry'),
          col(rows, 'lei'),
        ],
      );
    },

    async insertCreditRatings(rows: readonly RatingInsert[]): Promise<number> {
      return affected(
        `insert into credit_ratings (issuer_id, agency, rating, rating_date, action)
         select * from unnest(?::text[], ?::text[], ?::text[], ?::date[], ?::text[])
         on conflict (issuer_id, agency, rating_date) do nothing`,
        [
          col(rows, 'issuerId'),
          col(rows, 'agency'),
          col(rows, 'rating'),
          col(rows, 'ratingDate'),
          col(rows, 'action'),
        ],
      );
    },

    /** Inserts securities by natural key; options go second so their underlying's id exists. */
    async insertSecurities(rows: readonly SecurityInsert[]): Promise<number> {
      let n = 0;
      for (const batch of [
        rows.filter((r) => r.underlying === null),
        rows.filter((r) => r.underlying !== null),
      ]) {
        if (batch.length === 0) continue;
        n += await affected(
          `insert into securities (security_id, ticker, isin, cusip, sedol, security_name, security_type, asset_class,
             currency, exchange, issuer_id, issue_date, maturity_date, coupon_rate, coupon_frequency, face_value,
             underlying_id, strike, option_type, contract_multiplier, marginable, house_margin_rate, price_provider, status)
           select r.sid, r.ticker, r.isin, r.cusip, r.sedol, r.name, r.type, r.asset_class, r.currency, r.exchange,
                  r.issuer_id, r.issue_date, r.maturity_date, r.coupon_rate, r.coupon_frequency, r.face_value,
                  u.id, r.strike, r.option_type, r.multiplier, r.marginable, r.house_rate, 'synthetic', r.status
             from unnest(?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::text[],
                         ?::text[], ?::text[], ?::text[], ?::date[], ?::date[], ?::numeric[], ?::smallint[], ?::numeric[],
                         ?::text[], ?::numeric[], ?::text[], ?::numeric[], ?::boolean[], ?::numeric[], ?::text[])
                  as r(sid, ticker, isin, cusip, sedol, name, type, asset_class, currency, exchange, issuer_id, issue_date,
                       maturity_date, coupon_rate, coupon_frequency, face_value, underlying, strike, option_type,
                       multiplier, marginable, house_rate, status)
             left join securities u on u.security_id = r.underlying
           order by r.sid
           on conflict do nothing`,
          [
            col(batch, 'securityId'),
            col(batch, 'ticker'),
            col(batch, 'isin'),
            col(batch, 'cusip'),
            col(batch, 'sedol'),
            col(batch, 'name'),
            col(batch, 'type'),
            col(batch, 'assetClass'),
            col(batch, 'currency'),
            col(batch, 'exchange'),
            col(batch, 'issuerId'),
            col(batch, 'issueDate'),
            col(batch, 'maturityDate'),
            col(batch, 'couponRate'),
            col(batch, 'couponFrequency'),
            col(batch, 'faceValue'),
            col(batch, 'underlying'),
            col(batch, 'strike'),
            col(batch, 'optionType'),
            col(batch, 'multiplier'),
            col(batch, 'marginable'),
            col(batch, 'houseMarginRate'),
            col(batch, 'status'),
          ],
        );
      }
      return n;
    },

    /** securities.id (the key of ticks and bars) for each security_id code given. */
    async securityIds(codes: readonly string[]): Promise<Map<string, number>> {
      const rows = await db('securities')
        .select<{ id: number; security_id: string }[]>('id', 'security_id')
        .whereIn('security_id', codes as string[]);
      return new Map(rows.map((r) => [r.security_id, r.id]));
    },

    async insertFxRates(rows: readonly FxInsert[]): Promise<number> {
      return affected(
        `insert into fx_rates (from_currency, to_currency, rate_date, rate, source)
         select f, t, d, r, 'synthetic' from unnest(?::text[], ?::text[], ?::date[], ?::numeric[]) as x(f, t, d, r)
         on conflict do nothing`,
        [col(rows, 'from'), col(rows, 'to'), col(rows, 'date'), col(rows, 'rate')],
      );
    },

    async insertCorporateActions(rows: readonly ActionInsert[]): Promise<number> {
      return affected(
        `insert into corporate_actions (action_id, security_id, action_type, ex_date, record_date, payment_date, ratio,
           amount, currency, source)
         select a.aid, s.id, a.t, a.ex, a.rec, a.pay, a.ratio, a.amount, a.ccy, 'synthetic'
           from unnest(?::text[], ?::text[], ?::text[], ?::date[], ?::date[], ?::date[], ?::numeric[], ?::numeric[], ?::text[])
                as a(aid, sid, t, ex, rec, pay, ratio, amount, ccy)
           join securities s on s.security_id = a.sid
          order by a.aid
         on conflict do nothing`,
        [
          col(rows, 'actionId'),
          col(rows, 'securityId'),
          col(rows, 'actionType'),
          col(rows, 'exDate'),
          col(rows, 'recordDate'),
          col(rows, 'paymentDate'),
          col(rows, 'ratio'),
          col(rows, 'amount'),
          col(rows, 'currency'),
        ],
      );
    },

    async insertDailyBars(rows: readonly DailyBarInsert[]): Promise<number> {
      return affected(
        // adj_close starts as the close; the database's trigger adjusts the rows an action follows.
        `insert into bars_1d (security_id, session_date, open, high, low, close, adj_close, volume, vwap, trade_count,
                              source)
         select sid, d, o, h, l, c, c, v, vw, tc, 'synthetic'
           from unnest(?::int[], ?::date[], ?::numeric[], ?::numeric[], ?::numeric[], ?::numeric[],
                       ?::bigint[], ?::numeric[], ?::int[]) as x(sid, d, o, h, l, c, v, vw, tc)
         on conflict do nothing`,
        [
          col(rows, 'securityId'),
          col(rows, 'sessionDate'),
          col(rows, 'open'),
          col(rows, 'high'),
          col(rows, 'low'),
          col(rows, 'close'),
          col(rows, 'volume'),
          col(rows, 'vwap'),
          col(rows, 'tradeCount'),
        ],
      );
    },

    async insertPortfolios(rows: readonly PortfolioInsert[]): Promise<number> {
      return affected(
        `insert into portfolios (portfolio_id, portfolio_name, portfolio_type, benchmark, inception_date, base_currency)
         select * from unnest(?::text[], ?::text[], ?::text[], ?::text[], ?::date[], ?::text[])
         on conflict do nothing`,
        [
          col(rows, 'portfolioId'),
          col(rows, 'name'),
          col(rows, 'type'),
          col(rows, 'benchmark'),
          col(rows, 'inceptionDate'),
          col(rows, 'baseCurrency'),
        ],
      );
    },

    /** Clients, one MARGIN account each (credit and debit balance), and their positions. */
    async insertClients(rows: readonly ClientInsert[]): Promise<{ clients: number; positions: number }> {
      return db.transaction(async (trx) => {
        const c = await trx.raw<{ rowCount: number }>(
          `insert into clients (client_code, name) select * from unnest(?::text[], ?::text[]) order by 1
           on conflict (client_code) do nothing`,
          [col(rows, 'clientCode'), col(rows, 'name')],
        );
        await trx.raw(
          `insert into accounts (client_id, account_type, currency, cash_balance, loan_balance)
           select c.id, 'MARGIN', a.ccy, a.cash, a.loan
             from unnest(?::text[], ?::text[], ?::numeric[], ?::numeric[]) as a(code, ccy, cash, loan)
             join clients c on c.client_code = a.code
            order by c.id
           on conflict (client_id, account_type, currency) do nothing`,
          [col(rows, 'clientCode'), col(rows, 'currency'), col(rows, 'cash'), col(rows, 'loan')],
        );
        const flat = rows.flatMap((r) =>
          r.positions.map((p) => ({ code: r.clientCode, ccy: r.currency, ...p })),
        );
        const p = await trx.raw<{ rowCount: number }>(
          `insert into positions (account_id, security_id, quantity, cost_basis)
           select a.id, s.id, x.q, x.cb
             from unnest(?::text[], ?::text[], ?::text[], ?::numeric[], ?::numeric[]) with ordinality as x(code, ccy, sec, q, cb, n)
             join clients c on c.client_code = x.code
             join accounts a on a.client_id = c.id and a.account_type = 'MARGIN' and a.currency = x.ccy
             join securities s on s.security_id = x.sec
            order by x.n
           on conflict (account_id, security_id) do nothing`,
          [
            col(flat, 'code'),
            col(flat, 'ccy'),
            col(flat, 'securityId'),
            col(flat, 'quantity'),
            col(flat, 'costBasis'),
          ],
        );
        return { clients: c.rowCount, positions: p.rowCount };
      });
    },

    async insertTransactions(rows: readonly TransactionInsert[]): Promise<number> {
      return affected(
        `insert into transactions (txn_id, portfolio_id, account_id, security_id, txn_type, quantity, price, txn_date,
           settlement_date, fees, currency)
         select t.tid, t.pid, a.id, s.id, t.typ, t.q, t.px, t.d, t.sd, t.fees, t.ccy
           from unnest(?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::numeric[], ?::numeric[], ?::date[],
                       ?::date[], ?::numeric[], ?::text[]) as t(tid, pid, code, sec, typ, q, px, d, sd, fees, ccy)
           join securities s on s.security_id = t.sec
           left join clients c on c.client_code = t.code
           left join accounts a on a.client_id = c.id and a.account_type = 'MARGIN' and a.currency = 'USD'
          order by t.tid
         on conflict (txn_id) do nothing`,
        [
          col(rows, 'txnId'),
          col(rows, 'portfolioId'),
          col(rows, 'clientCode'),
          col(rows, 'securityId'),
          col(rows, 'txnType'),
          col(rows, 'quantity'),
          col(rows, 'price'),
          col(rows, 'txnDate'),
          col(rows, 'settlementDate'),
          col(rows, 'fees'),
          col(rows, 'currency'),
        ],
      );
    },

    /**
     * The demo's summary of a period's attribution: variance_rows summed per portfolio and over
     * all of them (the last row, portfolioId null), in numeric, as text. Empty when the period
     * has no rows.
     */
    async varianceSummary(periodLabel: string): Promise<VarianceSummaryRow[]> {
      const res = await db.raw<{ rows: VarianceSummaryRow[] }>(
        `select portfolio_id as "portfolioId",
                sum(mv_start)::text as "mvStart", sum(mv_end)::text as "mvEnd",
                sum(corp_action_effect)::text as "corporateAction", sum(qty_effect)::text as quantity,
                sum(price_effect)::text as price, sum(fx_effect)::text as fx,
                sum(distributions)::text as distributions, sum(total_pnl)::text as total,
                count(*)::int as rows, (count(*) filter (where flag is not null))::int as flagged
           from variance_rows
          where period_label = ?
          group by rollup (portfolio_id)
         having count(*) > 0
          order by portfolio_id nulls last`,
        [periodLabel],
      );
      return res.rows;
    },

    /** Monthly partitions of a time-partitioned table covering [from, to). */
    async ensureMonthPartitions(table: string, from: Date, to: Date): Promise<number> {
      const res = await db.raw<{ rows: { n: number }[] }>(
        'select ensure_month_partitions(?::regclass, ?, ?) as n',
        [ident(table), from.toISOString(), to.toISOString()],
      );
      return res.rows[0]?.n ?? 0;
    },

    /**
     * COPYs one chunk of ticks (COPY text rows of TICK_COPY_COLUMNS from `source`) into `table`,
     * each stored with origin 'generated' (ticks.origin; added to every row here). With a checkpoint,
     * the COPY and the checkpoint row commit together, under an advisory lock on the key so two
     * workers never load the same chunk; an already-checkpointed chunk is skipped.
     */
    async copyTicks(opts: {
      table?: string;
      source: Iterable<Buffer> | AsyncIterable<Buffer>;
      checkpoint?: { jobName: string; key: string; state: Record<string, unknown> };
    }): Promise<{ skipped: boolean; rows: number }> {
      const table = ident(opts.table ?? 'ticks');
      return rawTransaction(db, async (conn) => {
        const cp = opts.checkpoint;
        // Loaded by an earlier run or another worker: nothing to write (the commit only ends
        // this transaction and its lock).
        if (cp && (await claimCheckpointOn(conn, cp.jobName, cp.key))) return { skipped: true, rows: 0 };
        const copy = conn.query(
          copyFrom(`copy ${table} (security_id, ts, seq, price, size, bid, ask, origin) from stdin`),
        );
        const src = opts.source;
        const rows =
          Symbol.asyncIterator in src ? withOriginAsync(src, 'generated') : withOrigin(src, 'generated');
        await pipeline(Readable.from(rows, { objectMode: false }), copy);
        if (cp) await writeCheckpointOn(conn, cp.jobName, cp.key, { ...cp.state, rows: copy.rowCount });
        return { skipped: false, rows: copy.rowCount };
      });
    },

    /** An empty copy of ticks (same columns, constraints, indexes, monthly partitions) for benchmarks. */
    async createScratchTicks(name: string, from: Date, to: Date): Promise<void> {
      const t = ident(name);
      await db.raw(`create table ${t} (like ticks including all) partition by range (ts)`);
      await db.raw('select ensure_month_partitions(?::regclass, ?, ?)', [
        t,
        from.toISOString(),
        to.toISOString(),
      ]);
    },

    async dropTable(name: string): Promise<void> {
      await db.raw(`drop table if exists ${ident(name)} cascade`);
    },

    /**
     * PostgreSQL's own server-side COPY from a file the server can read; returns rows loaded.
     * `withOrigin`: the file's rows carry the origin column too (ticks.ts tickCopyText).
     */
    async serverCopyTicks(table: string, file: string, opts: { withOrigin?: boolean } = {}): Promise<number> {
      if (!/^\/tmp\/[A-Za-z0-9._-]+$/.test(file)) throw new Error(`unexpected bench file path: ${file}`);
      const columns = opts.withOrigin
        ? '(security_id, ts, seq, price, size, bid, ask, origin)'
        : TICK_COPY_COLUMNS;
      const res = await db.raw<{ rowCount: number }>(`copy ${ident(table)} ${columns} from '${file}'`);
      return res.rowCount;
    },

    /**
     * Empties every table the generator writes and its checkpoints. Destroys data: only for
     * scratch databases (tests, benchmarks).
     */
    async truncateDataset(): Promise<void> {
      await db.raw(`truncate ${DATASET_TABLES.join(', ')} restart identity cascade`);
      await db('job_checkpoints').where('job_name', 'data.generate').delete();
    },

    /**
     * md5 of every generated table's content in a stable order, keyed by natural keys (never by
     * identity ids), for comparing two runs. Meant for test-sized datasets.
     */
    async fingerprint(): Promise<Record<string, string>> {
      const queries: Record<string, string> = {
        issuers: `select md5(string_agg(concat_ws('|', issuer_id, issuer_name, country, sector, industry, lei), ',' order by issuer_id)) from issuers`,
        securities: `select md5(string_agg(concat_ws('|', s.security_id, s.ticker, s.isin, s.cusip, s.sedol, s.security_name,
            s.security_type, s.asset_class, s.currency, s.exchange, s.issuer_id, s.issue_date, s.maturity_date, s.coupon_rate,
            s.coupon_frequency, s.face_value, u.security_id, s.strike, s.option_type, s.contract_multiplier, s.marginable,
            s.house_margin_rate, s.status), ',' order by s.security_id))
            from securities s left join securities u on u.id = s.underlying_id`,
        ticks: `select md5(string_agg(concat_ws('|', s.security_id, t.ts, t.seq, t.price, t.size, t.bid, t.ask), ','
            order by s.security_id, t.ts, t.seq)) from ticks t join securities s on s.id = t.security_id`,
        bars_1d: `select md5(string_agg(concat_ws('|', s.security_id, b.session_date, b.open, b.high, b.low, b.close, b.volume,
            b.vwap, b.trade_count, b.source), ',' order by s.security_id, b.session_date))
            from bars_1d b join securities s on s.id = b.security_id`,
        fx_rates: `select md5(string_agg(concat_ws('|', from_currency, to_currency, rate_date, rate), ','
            order by from_currency, to_currency, rate_date)) from fx_rates`,
        corporate_actions: `select md5(string_agg(concat_ws('|', c.action_id, s.security_id, c.action_type, c.ex_date,
            c.record_date, c.payment_date, c.ratio, c.amount, c.currency), ',' order by c.action_id))
            from corporate_actions c join securities s on s.id = c.security_id`,
        clients: `select md5(string_agg(concat_ws('|', c.client_code, c.name, a.account_type, a.currency, a.cash_balance,
            a.loan_balance), ',' order by c.client_code)) from clients c join accounts a on a.client_id = c.id`,
        positions: `select md5(string_agg(concat_ws('|', c.client_code, s.security_id, p.quantity, p.cost_basis), ','
            order by c.client_code, s.security_id)) from positions p join accounts a on a.id = p.account_id
            join clients c on c.id = a.client_id join securities s on s.id = p.security_id`,
        transactions: `select md5(string_agg(concat_ws('|', t.txn_id, t.portfolio_id, c.client_code, s.security_id, t.txn_type,
            t.quantity, t.price, t.txn_date, t.settlement_date, t.fees, t.currency), ',' order by t.txn_id))
            from transactions t join securities s on s.id = t.security_id left join accounts a on a.id = t.account_id
            left join clients c on c.id = a.client_id`,
        credit_ratings: `select md5(string_agg(concat_ws('|', issuer_id, agency, rating, rating_date, action), ','
            order by issuer_id, agency, rating_date)) from credit_ratings`,
        market_sessions: `select md5(string_agg(concat_ws('|', exchange, session_date, open_at, close_at, early_close), ','
            order by exchange, session_date)) from market_sessions`,
      };
      const out: Record<string, string> = {};
      for (const [name, sql] of Object.entries(queries)) {
        const res = await db.raw<{ rows: { md5: string | null }[] }>(sql);
        out[name] = res.rows[0]?.md5 ?? 'empty';
      }
      return out;
    },
  };
}

export type GeneratorRepository = ReturnType<typeof createGeneratorRepository>;
