/**
 * Nightly margin (issue 11): house rules, the set-based batch that writes margin snapshots and
 * moves the margin call lifecycle, and the reads behind `/api/margin/calls` and
 * `/api/margin/snapshots`.
 *
 * The batch re-states `accountMargin()` (core/domain/margin.ts) in SQL `numeric` for speed: one
 * INSERT … SELECT … ON CONFLICT (client_id, run_date) DO UPDATE computes, for every client of the
 * batch, the long and short market value at the run date's close in the account currency, the
 * balances, equity, the FINRA 4210 + house requirement per position, shortfall and call flag.
 * test/margin-nightly.test.ts holds the two to the same figures on random books.
 *
 * Price = the close of the newest `bars_1d` row on or before the run date, no older than
 * `maxPriceAgeDays` calendar days (a halted security, or a run on a non-trading day, uses the last
 * close; older than that it is missing). FX = the newest `fx_rates` row on or before that close's
 * session date, security → account currency, the direct pair or the reciprocal of the inverse one
 * (whichever is newer, the direct one on a tie), the rule `clients.marginBook` follows. A client
 * with a position lacking either is flagged (`flag`, `missing`) with no figures and no call.
 */
import { NYSE_TIME_ZONE } from '../../calendar/nyse.ts';
import { dec, type Dec } from '../../domain/money.ts';
import type { HouseRules } from '../../domain/margin.ts';
import type { Knex } from '../knex.ts';
import { NYSE_EXCHANGE } from './calendar.ts';

export interface HouseRulesRecord {
  id: number;
  effectiveFrom: string;
  concentrationThreshold: string | null;
  concentrationMinValue: string | null;
  concentrationRate: string | null;
  lowPriceBelow: string | null;
  lowPriceRate: string | null;
}

export const CALL_STATUSES = ['OPEN', 'MET', 'OVERDUE', 'CANCELLED'] as const;
export type CallStatus = (typeof CALL_STATUSES)[number];

/** What a batch counts; margin.nightly's finalize sums them over the run (MarginRunResult). */
export interface MarginCounts {
  snapshots: number;
  flagged: number;
  calls: number;
  /** Sum of the shortfalls of the valued clients (numeric text, cents). */
  shortfall: string;
  issued: number;
  updated: number;
  met: number;
  cancelled: number;
  reopened: number;
}

export interface BatchOutcome extends MarginCounts {
  /** Outstanding calls of the batch's clients past their due date after this run. */
  overdue: { callId: number; clientId: number; amount: string; dueDate: string }[];
  /** Clients flagged, with why (first ones only). */
  flaggedClients: { clientId: number; flag: string }[];
}

export interface CallRecord {
  id: number;
  clientId: number;
  status: CallStatus;
  /** The stored status; `status` shows OVERDUE for an OPEN call past its due date as of today. */
  storedStatus: CallStatus;
  issuedOn: string;
  dueDate: string;
  amount: string;
  initialAmount: string;
  currency: string | null;
  metOn: string | null;
  lastRunDate: string;
  snapshotId: number;
  lastSnapshotId: number | null;
  note: string | null;
  updatedAt: Date;
}

export interface SnapshotRecord {
  id: number;
  clientId: number;
  runDate: string;
  asOf: Date;
  accountId: number | null;
  currency: string | null;
  positions: number;
  stalePositions: number;
  flag: string | null;
  missing: { symbol: string; reason: 'price' | 'fx' }[] | null;
  longMarketValue: string | null;
  shortMarketValue: string | null;
  creditBalance: string | null;
  debitBalance: string | null;
  netEquity: string | null;
  marginRequirement: string | null;
  marginShortfall: string | null;
  marginCallTriggered: boolean | null;
  callAmount: string | null;
  computedAt: Date;
}

const RULES_FOR = `
  select id, to_char(effective_from, 'YYYY-MM-DD') as "effectiveFrom",
         concentration_threshold as "concentrationThreshold",
         concentration_min_value as "concentrationMinValue",
         concentration_rate as "concentrationRate",
         low_price_below as "lowPriceBelow", low_price_rate as "lowPriceRate"
    from margin_house_rules where effective_from <= :asOf::date
   order by effective_from desc limit 1`;

/**
 * The snapshot statement. Named bindings: runDate, ids (int[]), maxAge (days), jobId, tz,
 * exchange. Every CTE is over the batch's clients only.
 */
const SNAPSHOT_BATCH = `
  with rules as (
    select * from margin_house_rules where effective_from <= :runDate::date
     order by effective_from desc limit 1
  ),
  -- One row per client of the batch with a margin account (n > 1: several, flagged below).
  acct as (
    select a.client_id, min(a.id) as id, min(a.currency) as currency, min(a.cash_balance) as cash_balance,
           min(a.loan_balance) as loan_balance, count(*) as n
      from accounts a
     where a.client_id = any(:ids::int[]) and a.account_type = 'MARGIN'
     group by a.client_id
  ),
  -- One row per position of the batch, narrow: what it takes to value it is per security.
  pos as materialized (
    select ac.client_id, ac.currency as acur, ac.cash_balance - ac.loan_balance as bal, p.security_id, p.quantity
      from acct ac
      join positions p on p.account_id = ac.id
     where ac.n = 1
  ),
  -- Once per (security, account currency) of the batch, not per position: the close, its date,
  -- the FX to the account currency, and the security's rule inputs.
  sec as materialized (
    select k.security_id, k.acur, s.ticker, s.marginable, s.house_margin_rate,
           coalesce(s.issuer_id, '#' || s.id::text) as issuer_key, px.close as price,
           px.session_date as price_date,
           case when s.currency = k.acur then 1::numeric
                when r.inverted then 1::numeric(41,40) / r.rate
                else r.rate end as fx
      from (select distinct security_id, acur from pos) k
      join securities s on s.id = k.security_id
      left join lateral (
        select b.close, b.session_date from bars_1d b
         where b.security_id = k.security_id
           and b.session_date <= :runDate::date and b.session_date > :runDate::date - :maxAge::int
         order by b.session_date desc limit 1
      ) px on true
      left join lateral (
        select x.rate, x.inverted
          from ((select rate, rate_date, false as inverted from fx_rates
                  where from_currency = s.currency and to_currency = k.acur and rate_date <= px.session_date
                  order by rate_date desc limit 1)
                union all
                (select rate, rate_date, true from fx_rates
                  where from_currency = k.acur and to_currency = s.currency and rate_date <= px.session_date
                  order by rate_date desc limit 1)) x
         where s.currency <> k.acur
         order by x.rate_date desc, x.inverted
         limit 1
      ) r on true
  ),
  -- One narrow row per position (no account or text columns but the ticker of a position that
  -- cannot be valued): the rows the sort and windows below carry.
  valued as (
    select pos.client_id, pos.bal, pos.quantity, sec.issuer_key, sec.marginable, sec.house_margin_rate,
           sec.price, sec.price_date, sec.fx, abs(pos.quantity) * sec.price * sec.fx as mv,
           case when sec.price is null or sec.fx is null then sec.ticker end as missing_ticker
      from pos join sec on sec.security_id = pos.security_id and sec.acur = pos.acur
  ),
  -- Issuer gross MV and the client's equity on every row (equity = long MV − short MV + credit −
  -- debit; numeric sums are exact, so the order of the terms does not change the figure). One sort
  -- (client, issuer) serves both windows and the per-client aggregate below.
  grossed as (
    select v.*,
           sum(v.mv) over (partition by v.client_id, v.issuer_key) as issuer_gross,
           coalesce(sum(v.mv) filter (where v.quantity > 0) over c, 0)
             - coalesce(sum(v.mv) filter (where v.quantity < 0) over c, 0) + v.bal as eq
      from valued v
    window c as (partition by v.client_id)
  ),
  agg as (
    select g.client_id,
           count(*) as n_pos,
           count(*) filter (where g.price_date < :runDate::date) as n_stale,
           bool_or(g.price is null) as no_price,
           bool_or(g.price is not null and g.fx is null) as no_fx,
           jsonb_agg(jsonb_build_object('symbol', g.missing_ticker, 'reason', case when g.price is null then 'price' else 'fx' end))
             filter (where g.missing_ticker is not null) as missing,
           coalesce(sum(g.mv) filter (where g.quantity > 0), 0) as lmv,
           coalesce(sum(g.mv) filter (where g.quantity < 0), 0) as smv,
           coalesce(sum(
             case when not g.marginable then g.mv
                  when g.quantity > 0 then greatest(0.25, h.rate) * g.mv
                  when g.price < 5 then greatest(greatest(1, h.rate) * g.mv, 2.5 * abs(g.quantity) * g.fx)
                  else greatest(greatest(0.30, h.rate) * g.mv, 5 * abs(g.quantity) * g.fx)
             end), 0) as req
      from grossed g
      left join rules r on true
      cross join lateral (
        select greatest(0, g.house_margin_rate,
                 case when r.concentration_rate is not null
                       and (r.concentration_min_value is null or g.issuer_gross > r.concentration_min_value)
                       and (g.eq <= 0 or g.issuer_gross > r.concentration_threshold * g.eq)
                      then r.concentration_rate end,
                 case when g.price < r.low_price_below then r.low_price_rate end) as rate
      ) h
     group by g.client_id
  ),
  result as (
    select ac.client_id, ac.id as account_id, ac.currency, ac.n, ac.cash_balance, ac.loan_balance,
           coalesce(a.n_pos, 0) as n_pos, coalesce(a.n_stale, 0) as n_stale,
           coalesce(a.no_price, false) as no_price, coalesce(a.no_fx, false) as no_fx, a.missing,
           coalesce(a.lmv, 0) as lmv, coalesce(a.smv, 0) as smv,
           coalesce(a.lmv, 0) + ac.cash_balance - ac.loan_balance - coalesce(a.smv, 0) as eq,
           coalesce(a.req, 0) as req
      from acct ac
      left join agg a on a.client_id = ac.client_id
  ),
  flagged as (
    select r.*,
           case when r.n > 1 then 'multiple_margin_accounts'
                when r.no_price and r.no_fx then 'missing_price_and_fx'
                when r.no_price then 'missing_price'
                when r.no_fx then 'missing_fx' end as flag,
           greatest(r.req - r.eq, 0) as shortfall
      from result r
  )
  insert into margin_snapshots as m
    (client_id, run_date, as_of, account_id, currency, positions, stale_positions, flag, missing,
     long_market_value, short_market_value, credit_balance, debit_balance, net_equity,
     margin_requirement, margin_shortfall, margin_call_triggered, call_amount, house_rules_id,
     job_id, computed_at)
  select r.client_id, :runDate::date,
         coalesce((select close_at from market_sessions where exchange = :exchange and session_date = :runDate::date),
                  (:runDate::date + time '16:00') at time zone :tz),
         case when r.n = 1 then r.account_id end, case when r.n = 1 then r.currency end,
         r.n_pos, r.n_stale, r.flag, case when r.flag is not null then r.missing end,
         case when r.flag is null then r.lmv end, case when r.flag is null then r.smv end,
         case when r.n = 1 then r.cash_balance end, case when r.n = 1 then r.loan_balance end,
         case when r.flag is null then r.eq end, case when r.flag is null then r.req end,
         case when r.flag is null then r.shortfall end,
         case when r.flag is null then r.shortfall > 0 end,
         case when r.flag is null and r.shortfall > 0 then ceil(r.shortfall * 100) / 100 end,
         (select id from rules), :jobId, now()
    from flagged r
  on conflict (client_id, run_date) do update set
    as_of = excluded.as_of, account_id = excluded.account_id, currency = excluded.currency,
    positions = excluded.positions, stale_positions = excluded.stale_positions, flag = excluded.flag,
    missing = excluded.missing, long_market_value = excluded.long_market_value,
    short_market_value = excluded.short_market_value, credit_balance = excluded.credit_balance,
    debit_balance = excluded.debit_balance, net_equity = excluded.net_equity,
    margin_requirement = excluded.margin_requirement, margin_shortfall = excluded.margin_shortfall,
    margin_call_triggered = excluded.margin_call_triggered, call_amount = excluded.call_amount,
    house_rules_id = excluded.house_rules_id, job_id = excluded.job_id, computed_at = excluded.computed_at
  returning m.client_id as "clientId", m.flag, m.margin_call_triggered as "call", m.margin_shortfall as shortfall`;

/**
 * The lifecycle of the batch's clients' calls for a run date, after its snapshots are written. The
 * client's latest call is "live" for the run when the run is not older than its last run and it
 * is outstanding or was closed by an earlier run of this same date (a re-run replays the night).
 * Live: still short → amount = call_amount, OPEN, or OVERDUE past the due date; no shortfall →
 * MET on the run date, or CANCELLED when the run is the night that issued it. Flagged clients'
 * calls are left as they are.
 */
const UPDATE_CALLS = `
  with c as (
    select distinct on (client_id) id, client_id, status, last_run_date
      from margin_calls where client_id = any(:ids::int[])
     order by client_id, id desc
  ),
  live as (
    select c.id, c.status as was, s.id as sid, s.margin_call_triggered as call, s.call_amount
      from c
      join lateral (
        select x.id, x.margin_call_triggered, x.call_amount from margin_snapshots x
         where x.client_id = c.client_id and x.run_date = :runDate::date and x.flag is null
      ) s on true
     where c.last_run_date <= :runDate::date
       and (c.status in ('OPEN', 'OVERDUE') or c.last_run_date = :runDate::date)
  )
  update margin_calls m set
    status = case when l.call then case when :runDate::date > m.due_date then 'OVERDUE' else 'OPEN' end
                  when m.issued_on = :runDate::date then 'CANCELLED'
                  else 'MET' end,
    amount = case when l.call then l.call_amount else m.amount end,
    met_on = case when not l.call and m.issued_on < :runDate::date then :runDate::date end,
    note = case when not l.call and m.issued_on = :runDate::date
                then 'cancelled: a re-run of the night that issued it found no shortfall' end,
    last_snapshot_id = l.sid, last_run_date = :runDate::date, updated_at = now()
    from live l
   where m.id = l.id
  returning m.id, l.was, m.status`;

const ISSUE_CALLS = `
  insert into margin_calls
    (client_id, snapshot_id, issued_on, due_date, amount, initial_amount, currency, status,
     last_snapshot_id, last_run_date)
  select s.client_id, s.id, :runDate::date, :dueDate::date, s.call_amount, s.call_amount, s.currency,
         'OPEN', s.id, :runDate::date
    from unnest(:callIds::int[]) as k(client_id)
    join lateral (
      select x.id, x.client_id, x.call_amount, x.currency from margin_snapshots x
       where x.client_id = k.client_id and x.run_date = :runDate::date and x.flag is null
         and x.margin_call_triggered
    ) s on true
   where not exists (select 1 from margin_calls m
                      where m.client_id = s.client_id
                        and (m.status in ('OPEN', 'OVERDUE') or m.last_run_date > :runDate::date))
  on conflict (client_id) where status in ('OPEN', 'OVERDUE') do nothing
  returning id`;

const CALL_COLUMNS = `
  m.id, m.client_id as "clientId",
  case when m.status = 'OPEN' and m.due_date < :today::date then 'OVERDUE' else m.status end as status,
  m.status as "storedStatus",
  to_char(m.issued_on, 'YYYY-MM-DD') as "issuedOn", to_char(m.due_date, 'YYYY-MM-DD') as "dueDate",
  m.amount, m.initial_amount as "initialAmount", m.currency,
  to_char(m.met_on, 'YYYY-MM-DD') as "metOn", to_char(m.last_run_date, 'YYYY-MM-DD') as "lastRunDate",
  m.snapshot_id as "snapshotId", m.last_snapshot_id as "lastSnapshotId", m.note, m.updated_at as "updatedAt"`;

const SNAPSHOT_COLUMNS = `
  s.id, s.client_id as "clientId", to_char(s.run_date, 'YYYY-MM-DD') as "runDate", s.as_of as "asOf",
  s.account_id as "accountId", s.currency, s.positions, s.stale_positions as "stalePositions",
  s.flag, s.missing, s.long_market_value as "longMarketValue", s.short_market_value as "shortMarketValue",
  s.credit_balance as "creditBalance", s.debit_balance as "debitBalance", s.net_equity as "netEquity",
  s.margin_requirement as "marginRequirement", s.margin_shortfall as "marginShortfall",
  s.margin_call_triggered as "marginCallTriggered", s.call_amount as "callAmount",
  s.computed_at as "computedAt"`;

const OVERDUE_LIST_LIMIT = 50;

/** House rules as the domain function takes them. */
export function toHouseRules(r: HouseRulesRecord | undefined): HouseRules {
  const d = (v: string | null): Dec | null => (v === null ? null : dec(v));
  return {
    concentrationThreshold: d(r?.concentrationThreshold ?? null),
    concentrationRate: d(r?.concentrationRate ?? null),
    concentrationMinValue: d(r?.concentrationMinValue ?? null),
    lowPriceBelow: d(r?.lowPriceBelow ?? null),
    lowPriceRate: d(r?.lowPriceRate ?? null),
  };
}

export function createMarginRepository(db: Knex) {
  return {
    /** The house rules row in force on a date (newest effective_from on or before it). */
    async houseRulesRow(asOf: string): Promise<HouseRulesRecord | undefined> {
      const res = await db.raw<{ rows: HouseRulesRecord[] }>(RULES_FOR, { asOf });
      return res.rows[0];
    },

    /** The house rules in force on a date, as `accountMargin()` takes them (none → no house rules). */
    async houseRules(asOf: string): Promise<HouseRules> {
      return toHouseRules(await this.houseRulesRow(asOf));
    },

    /** Clients with a margin account, in id order (all of them, or those of `ids`). */
    async marginClientIds(ids?: readonly number[]): Promise<number[]> {
      const res = await db.raw<{ rows: { id: number }[] }>(
        `select distinct client_id as id from accounts
          where account_type = 'MARGIN' and (:ids::int[] is null or client_id = any(:ids::int[]))
          order by client_id`,
        { ids: ids ? [...ids] : null },
      );
      return res.rows.map((r) => r.id);
    },

    /** Of `ids`, those that are no client at all. */
    async unknownClientIds(ids: readonly number[]): Promise<number[]> {
      const res = await db.raw<{ rows: { id: number }[] }>(
        `select i.id from unnest(:ids::int[]) as i(id)
          where not exists (select 1 from clients c where c.id = i.id) order by i.id`,
        { ids: [...ids] },
      );
      return res.rows.map((r) => r.id);
    },

    /**
     * One batch of a nightly run, in one transaction: the clients' rows are locked (`for no key
     * update`: concurrent runs over the same clients take turns; trading's writes to accounts and
     * positions are not blocked), one statement writes every snapshot, then the calls move.
     */
    async runBatch(opts: {
      runDate: string;
      clientIds: readonly number[];
      dueDate: string;
      maxPriceAgeDays: number;
      jobId: string | null;
    }): Promise<BatchOutcome> {
      const ids = [...opts.clientIds];
      return db.transaction(async (trx) => {
        // A batch reads ~1% of accounts and positions: with the default random_page_cost (4, spinning
        // disks) the planner scans both tables whole for every batch (0.5 s of 0.7 s at 100k
        // clients); at SSD cost it probes their indexes.
        await trx.raw('set local random_page_cost = 1.1');
        // Its sorts (windows per client, 10 rows a client × 5,000 clients of ~250 bytes) spill to
        // disk at the default 4 MB; in memory they need ~10 MB each.
        await trx.raw(`set local work_mem = '64MB'`);
        await trx.raw(`select 1 from clients where id = any(:ids::int[]) order by id for no key update`, {
          ids,
        });
        const snaps = await trx.raw<{
          rows: { clientId: number; flag: string | null; call: boolean | null; shortfall: string | null }[];
        }>(SNAPSHOT_BATCH, {
          runDate: opts.runDate,
          ids,
          maxAge: opts.maxPriceAgeDays,
          jobId: opts.jobId,
          tz: NYSE_TIME_ZONE,
          exchange: NYSE_EXCHANGE,
        });
        const updated = await trx.raw<{ rows: { id: number; was: CallStatus; status: CallStatus }[] }>(
          UPDATE_CALLS,
          { runDate: opts.runDate, ids },
        );
        const issued = await trx.raw<{ rows: { id: number }[] }>(ISSUE_CALLS, {
          runDate: opts.runDate,
          dueDate: opts.dueDate,
          callIds: snaps.rows.filter((r) => r.call === true).map((r) => r.clientId),
        });
        const overdue = await trx.raw<{
          rows: { callId: number; clientId: number; amount: string; dueDate: string }[];
        }>(
          `select id as "callId", client_id as "clientId", amount, to_char(due_date, 'YYYY-MM-DD') as "dueDate"
             from margin_calls where client_id = any(:ids::int[]) and status = 'OVERDUE'
            order by client_id limit ${OVERDUE_LIST_LIMIT}`,
          { ids },
        );
        const outstanding = (s: CallStatus) => s === 'OPEN' || s === 'OVERDUE';
        const rows = snaps.rows;
        let shortfall = dec(0);
        for (const r of rows) if (r.shortfall !== null) shortfall = shortfall.plus(dec(r.shortfall));
        const u = updated.rows;
        return {
          snapshots: rows.length,
          flagged: rows.filter((r) => r.flag !== null).length,
          calls: rows.filter((r) => r.call === true).length,
          shortfall: shortfall.toFixed(2),
          issued: issued.rows.length,
          updated: u.filter((r) => outstanding(r.was) && outstanding(r.status)).length,
          met: u.filter((r) => r.status === 'MET' && r.was !== 'MET').length,
          cancelled: u.filter((r) => r.status === 'CANCELLED' && r.was !== 'CANCELLED').length,
          reopened: u.filter((r) => !outstanding(r.was) && outstanding(r.status)).length,
          overdue: overdue.rows,
          flaggedClients: rows
            .filter((r) => r.flag !== null)
            .slice(0, OVERDUE_LIST_LIMIT)
            .map((r) => ({ clientId: r.clientId, flag: r.flag! })),
        };
      });
    },

    /** How many outstanding calls are OVERDUE (stored) among all clients or `ids`. */
    async overdueCount(ids?: readonly number[]): Promise<number> {
      const res = await db.raw<{ rows: { n: string }[] }>(
        `select count(*) as n from margin_calls
          where status = 'OVERDUE' and (:ids::int[] is null or client_id = any(:ids::int[]))`,
        { ids: ids ? [...ids] : null },
      );
      return Number(res.rows[0]!.n);
    },

    /**
     * Calls, newest first (by id), keyset-paged with `before` (an id). `status` filters on the
     * effective status: an OPEN call past its due date as of `today` counts as OVERDUE.
     */
    async calls(opts: {
      today: string;
      status?: CallStatus;
      clientId?: number;
      limit: number;
      before?: number;
    }): Promise<CallRecord[]> {
      const res = await db.raw<{ rows: CallRecord[] }>(
        `select ${CALL_COLUMNS}
           from margin_calls m
          where (:clientId::int is null or m.client_id = :clientId::int)
            and (:before::bigint is null or m.id < :before::bigint)
            and (:status::text is null or
                 (case when m.status = 'OPEN' and m.due_date < :today::date then 'OVERDUE' else m.status end) = :status::text)
          order by m.id desc
          limit :limit`,
        {
          today: opts.today,
          status: opts.status ?? null,
          clientId: opts.clientId ?? null,
          before: opts.before ?? null,
          limit: opts.limit,
        },
      );
      return res.rows;
    },

    /** Snapshots by run date then client (newest run first), keyset-paged with `before` (an id). */
    async snapshots(opts: {
      clientId?: number;
      from?: string;
      to?: string;
      limit: number;
      before?: number;
    }): Promise<SnapshotRecord[]> {
      const res = await db.raw<{ rows: SnapshotRecord[] }>(
        `select ${SNAPSHOT_COLUMNS}
           from margin_snapshots s
          where (:clientId::int is null or s.client_id = :clientId::int)
            and (:from::date is null or s.run_date >= :from::date)
            and (:to::date is null or s.run_date <= :to::date)
            and (:before::bigint is null or s.id < :before::bigint)
          order by s.id desc
          limit :limit`,
        {
          clientId: opts.clientId ?? null,
          from: opts.from ?? null,
          to: opts.to ?? null,
          before: opts.before ?? null,
          limit: opts.limit,
        },
      );
      return res.rows;
    },

    /**
     * One night at a glance (the demo, operators): every snapshot of `runDate` with its client's
     * code, whether it is in call and for how much, or the flag that kept it from being computed.
     */
    async nightSummary(
      runDate: string,
    ): Promise<{ clientCode: string; inCall: boolean; shortfall: string | null; flag: string | null }[]> {
      const res = await db.raw<{
        rows: { clientCode: string; inCall: boolean; shortfall: string | null; flag: string | null }[];
      }>(
        `select c.client_code as "clientCode", coalesce(s.margin_call_triggered, false) as "inCall",
                s.margin_shortfall as shortfall, s.flag
           from margin_snapshots s join clients c on c.id = s.client_id
          where s.run_date = :runDate::date
          order by c.client_code`,
        { runDate },
      );
      return res.rows;
    },

    /** The snapshot of one client and run date, if any. */
    async snapshot(clientId: number, runDate: string): Promise<SnapshotRecord | undefined> {
      const res = await db.raw<{ rows: SnapshotRecord[] }>(
        `select ${SNAPSHOT_COLUMNS} from margin_snapshots s where s.client_id = :clientId and s.run_date = :runDate::date`,
        { clientId, runDate },
      );
      return res.rows[0];
    },
  };
}

export type MarginRepository = ReturnType<typeof createMarginRepository>;
