/**
 * The corporate-action ledger (issue 9): what corporate-actions.apply reads and writes. The
 * arithmetic is core/domain/corporate-actions.ts; this file holds the SQL.
 *
 * Exactly once: every effect on one target (a portfolio or a client account) for one security runs
 * in `inTarget`, one transaction holding a transaction-scoped advisory lock on (target, security),
 * so two workers never compute an entitlement from the same stale state. Inside it the ledger row
 * is inserted with ON CONFLICT DO NOTHING on the ledger's unique key (action, revision, entry,
 * target); the caller applies the effect (positions, cash) only when the row was inserted, in the
 * same transaction. A crash loses at most the one transaction in flight; a rerun finds the row.
 * The payment step's guard is `paid_at is null` on the row, read FOR UPDATE under the same lock.
 */
import { rawTransaction, type Knex } from '../knex.ts';
import { cancelAction, correctAction, type ActionCorrection } from './corporate-actions.ts';
import type { Conn } from './sql.ts';

/** Advisory lock class of the ledger's per-(target, security) locks. */
const LOCK_CLASS = 90_901;

export type ActionType = 'STOCK_SPLIT' | 'REVERSE_SPLIT' | 'DIVIDEND' | 'COUPON' | 'MATURITY';

export interface DueAction {
  /** corporate_actions.id */
  id: number;
  actionId: string;
  securityId: number;
  ticker: string;
  actionType: ActionType;
  exDate: string;
  /** The date cash moves: the action's payment date, or its ex-date when it has none. */
  paymentDate: string;
  ratio: string | null;
  amount: string | null;
  /** The action's currency, or the security's when the action names none. */
  currency: string;
  faceValue: string | null;
  revision: number;
}

export type Target = { portfolioId: string; accountId: null } | { portfolioId: null; accountId: number };

export interface TargetHeld {
  target: Target;
  /** True when this revision is already applied to the target (a rerun skips it). */
  applied: boolean;
}

export interface StaleApply {
  /** corporate_action_ledger.id of the APPLY to reverse. */
  ledgerId: number;
  exDate: string;
  actionId: string;
  securityId: number;
  actionType: ActionType;
  revision: number;
  status: 'ACTIVE' | 'CANCELLED';
  target: Target;
}

export interface TradeRow {
  id: number;
  txnType: 'BUY' | 'SELL' | 'SHORT' | 'COVER';
  quantity: string;
  price: string;
  txnDate: string;
}

export interface LedgerDeltaRow {
  id: number;
  exDate: string;
  quantityDelta: string;
  costDelta: string;
}

export interface UnpaidAccountRow {
  ledgerId: number;
  securityId: number;
  accountId: number;
  actionId: string;
  actionType: ActionType;
  /** The ledger row's currency (the action's). */
  currency: string;
  accountCurrency: string;
  paymentDate: string;
  cashAmount: string;
}

export interface LedgerInsert {
  action: DueAction;
  target: Target;
  quantityHeld: string;
  quantityDelta: string;
  costDelta: string;
  cashAmount: string;
  cashInLieu: string;
  jobId: string;
}

export interface LedgerRow {
  id: number;
  actionId: number;
  actionRevision: number;
  restatement: number;
  entry: 'APPLY' | 'REVERSE';
  actionType: ActionType;
  portfolioId: string | null;
  accountId: number | null;
  exDate: string;
  paymentDate: string | null;
  currency: string;
  quantityHeld: string;
  quantityDelta: string;
  costDelta: string;
  cashAmount: string;
  cashInLieu: string;
  paidAt: Date | null;
  paidAmount: string | null;
  paidCurrency: string | null;
  fxRate: string | null;
}

const LEDGER_COLUMNS = `l.id::int as id, l.action_id::int as "actionId", l.action_revision as "actionRevision",
  l.restatement, l.entry,
  l.action_type as "actionType", l.portfolio_id as "portfolioId", l.account_id as "accountId", l.ex_date as "exDate",
  l.payment_date as "paymentDate", l.currency, l.quantity_held as "quantityHeld", l.quantity_delta as "quantityDelta",
  l.cost_delta as "costDelta", l.cash_amount as "cashAmount", l.cash_in_lieu as "cashInLieu", l.paid_at as "paidAt",
  l.paid_amount as "paidAmount", l.paid_currency as "paidCurrency", l.fx_rate as "fxRate"`;

/** `alias` is an APPLY row that no REVERSE of the same revision and restatement undoes. */
const live = (alias: string): string => `${alias}.entry = 'APPLY' and not exists (
  select 1 from corporate_action_ledger r
   where r.action_id = ${alias}.action_id and r.action_revision = ${alias}.action_revision
     and r.restatement = ${alias}.restatement and r.entry = 'REVERSE'
     and r.portfolio_id is not distinct from ${alias}.portfolio_id and r.account_id is not distinct from ${alias}.account_id)`;

const targetOf = (r: { portfolioId: string | null; accountId: number | null }): Target =>
  r.portfolioId !== null
    ? { portfolioId: r.portfolioId, accountId: null }
    : { portfolioId: null, accountId: r.accountId! };

/** Operations on one (target, security) inside its locked transaction. */
export interface TargetTx {
  /** The action's APPLY on this target that is not reversed (any revision), if any. */
  liveApply(actionId: number): Promise<LedgerRow | null>;
  /** Live APPLY rows on this target and security of actions with an ex-date after `exDate`, newest first. */
  laterLiveApplies(exDate: string): Promise<LedgerRow[]>;
  /** The target's trades in the security dated before `exDate`. */
  tradesBefore(exDate: string): Promise<TradeRow[]>;
  /** The target's ledger rows (both entries) for the security with an ex-date before `exDate`. */
  ledgerBefore(exDate: string): Promise<LedgerDeltaRow[]>;
  /** The client position (null: none, or a portfolio), locked. */
  accountPosition(): Promise<{ quantity: string; costBasis: string } | null>;
  /** Writes the client position: null deletes it. */
  writeAccountPosition(next: { quantity: string; costBasis: string } | null): Promise<void>;
  /** Inserts a ledger row; null when it is already there (the effect must then be skipped). */
  insertApply(row: LedgerInsert): Promise<LedgerRow | null>;
  /** Inserts the exact negation of an APPLY row; null when already reversed. */
  insertReverse(applyId: number, jobId: string): Promise<LedgerRow | null>;
  /** Locks a ledger row and returns it. */
  lockRow(ledgerId: number): Promise<LedgerRow | null>;
  /** Marks a row paid (only if unpaid); false when it was already paid. */
  markPaid(
    ledgerId: number,
    paid: { amount: string; currency: string | null; fxRate: string | null } | null,
  ): Promise<boolean>;
  /** account_cash_move(account, amount). */
  moveCash(accountId: number, amount: string): Promise<void>;
  /** The account's currency. */
  accountCurrency(accountId: number): Promise<string | null>;
}

function targetTx(conn: Conn, target: Target, securityId: number): TargetTx {
  // Index-friendly (no `is not distinct from`): the target's own column equals, the other is null.
  const byTarget = (alias = ''): string =>
    target.portfolioId !== null
      ? `${alias}portfolio_id = $1 and ${alias}account_id is null and $2::int is null`
      : `${alias}account_id = $2 and ${alias}portfolio_id is null and $1::text is null`;
  const t = [target.portfolioId, target.accountId] as const;
  const one = async (sql: string, params: unknown[]): Promise<LedgerRow | null> =>
    ((await conn.query<LedgerRow>(sql, params)).rows[0] ?? null) as LedgerRow | null;
  return {
    liveApply: (actionId) =>
      one(
        `select ${LEDGER_COLUMNS} from corporate_action_ledger l
          where ${byTarget('l.')} and l.action_id = $3 and ${live('l')}
          order by l.id desc limit 1`,
        [...t, actionId],
      ),
    async laterLiveApplies(exDate) {
      const res = await conn.query<LedgerRow>(
        `select ${LEDGER_COLUMNS} from corporate_action_ledger l join corporate_actions a on a.id = l.action_id
          where ${byTarget('l.')} and a.security_id = $3 and l.ex_date > $4 and ${live('l')}
          order by l.ex_date desc, l.id desc`,
        [...t, securityId, exDate],
      );
      return res.rows;
    },
    async tradesBefore(exDate) {
      const res = await conn.query<TradeRow>(
        `select id::int as id, txn_type as "txnType", quantity, price, txn_date as "txnDate"
           from transactions
          where ${byTarget()} and security_id = $3 and txn_date < $4
          order by txn_date, id`,
        [...t, securityId, exDate],
      );
      return res.rows;
    },
    async ledgerBefore(exDate) {
      const res = await conn.query<LedgerDeltaRow>(
        `select l.id::int as id, l.ex_date as "exDate", l.quantity_delta as "quantityDelta", l.cost_delta as "costDelta"
           from corporate_action_ledger l join corporate_actions a on a.id = l.action_id
          where ${byTarget('l.')} and a.security_id = $3 and l.ex_date < $4
          order by l.ex_date, l.id`,
        [...t, securityId, exDate],
      );
      return res.rows;
    },
    async accountPosition() {
      if (target.accountId === null) return null;
      const res = await conn.query<{ quantity: string; costBasis: string }>(
        `select quantity, cost_basis as "costBasis" from positions
          where account_id = $1 and security_id = $2 for update`,
        [target.accountId, securityId],
      );
      return res.rows[0] ?? null;
    },
    async writeAccountPosition(next) {
      if (target.accountId === null) throw new Error('writeAccountPosition on a portfolio');
      if (next === null) {
        await conn.query(`delete from positions where account_id = $1 and security_id = $2`, [
          target.accountId,
          securityId,
        ]);
        return;
      }
      await conn.query(
        `insert into positions (account_id, security_id, quantity, cost_basis) values ($1, $2, $3, $4)
         on conflict (account_id, security_id)
         do update set quantity = excluded.quantity, cost_basis = excluded.cost_basis, updated_at = now()`,
        [target.accountId, securityId, next.quantity, next.costBasis],
      );
    },
    insertApply: (row) =>
      one(
        `insert into corporate_action_ledger as l
           (action_id, action_revision, restatement, portfolio_id, account_id, entry, action_type, ex_date,
            payment_date, ratio, amount, currency, quantity_held, quantity_delta, cost_delta, cash_amount,
            cash_in_lieu, job_id)
         values ($1, $2,
                 (select coalesce(max(p.restatement) + 1, 0) from corporate_action_ledger p
                   where p.action_id = $1 and p.action_revision = $2
                     and p.portfolio_id is not distinct from $3::text and p.account_id is not distinct from $4::int),
                 $3, $4, 'APPLY', $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
         on conflict do nothing
         returning ${LEDGER_COLUMNS}`,
        [
          row.action.id,
          row.action.revision,
          row.target.portfolioId,
          row.target.accountId,
          row.action.actionType,
          row.action.exDate,
          row.action.paymentDate,
          row.action.ratio,
          row.action.amount,
          row.action.currency,
          row.quantityHeld,
          row.quantityDelta,
          row.costDelta,
          row.cashAmount,
          row.cashInLieu,
          row.jobId,
        ],
      ),
    insertReverse: (applyId, jobId) =>
      one(
        `insert into corporate_action_ledger as l
           (action_id, action_revision, restatement, portfolio_id, account_id, entry, action_type, ex_date,
            payment_date, ratio, amount, currency, quantity_held, quantity_delta, cost_delta, cash_amount,
            cash_in_lieu, job_id)
         select action_id, action_revision, restatement, portfolio_id, account_id, 'REVERSE', action_type, ex_date,
                payment_date,
                ratio, amount, currency, quantity_held, -quantity_delta, -cost_delta, -cash_amount, -cash_in_lieu, $2
           from corporate_action_ledger where id = $1 and entry = 'APPLY'
         on conflict do nothing
         returning ${LEDGER_COLUMNS}`,
        [applyId, jobId],
      ),
    lockRow: (ledgerId) =>
      one(`select ${LEDGER_COLUMNS} from corporate_action_ledger l where l.id = $1 for update`, [ledgerId]),
    async markPaid(ledgerId, paid) {
      const res = await conn.query(
        `update corporate_action_ledger
            set paid_at = now(), paid_amount = $2, paid_currency = $3, fx_rate = $4
          where id = $1 and paid_at is null`,
        [ledgerId, paid?.amount ?? null, paid?.currency ?? null, paid?.fxRate ?? null],
      );
      return (res.rowCount ?? 0) === 1;
    },
    async moveCash(accountId, amount) {
      const res = await conn.query(`select id from account_cash_move($1, $2::numeric)`, [accountId, amount]);
      if (res.rowCount !== 1) throw new Error(`account ${accountId} not found for a cash move`);
    },
    async accountCurrency(accountId) {
      const res = await conn.query<{ currency: string }>(`select currency from accounts where id = $1`, [
        accountId,
      ]);
      return res.rows[0]?.currency ?? null;
    },
  };
}

const DUE_ACTION_COLUMNS = `a.id::int as id, a.action_id as "actionId", a.security_id as "securityId", s.ticker,
  a.action_type as "actionType", a.ex_date as "exDate", coalesce(a.payment_date, a.ex_date) as "paymentDate",
  a.ratio, a.amount, coalesce(a.currency, s.currency) as currency, s.face_value as "faceValue", a.revision`;

export function createLedgerRepository(db: Knex) {
  return {
    /**
     * Active actions with ex_date ≤ asOf, in apply order (ex-date, then id). With `actionIds`:
     * every due action of the named actions' securities (an entitlement builds on the earlier
     * actions' quantities, and applying an earlier one restates the later ones). Unknown ids are
     * returned in `unknown`.
     */
    async dueActions(
      asOf: string,
      actionIds: readonly string[] | null,
    ): Promise<{ actions: DueAction[]; unknown: string[] }> {
      const res = await db.raw<{ rows: DueAction[] }>(
        `select ${DUE_ACTION_COLUMNS}
           from corporate_actions a join securities s on s.id = a.security_id
          where a.status = 'ACTIVE' and a.ex_date <= :asOf
            and (:ids::text[] is null or exists (
                  select 1 from corporate_actions n
                   where n.action_id = any(:ids::text[]) and n.security_id = a.security_id))
          order by a.ex_date, a.id`,
        { asOf, ids: actionIds === null ? null : [...actionIds] },
      );
      let unknown: string[] = [];
      if (actionIds !== null) {
        const known = await db.raw<{ rows: { action_id: string }[] }>(
          `select action_id from corporate_actions where action_id = any(?::text[])`,
          [[...actionIds]],
        );
        const have = new Set(known.rows.map((r) => r.action_id));
        unknown = actionIds.filter((id) => !have.has(id));
      }
      return { actions: res.rows, unknown };
    },

    /**
     * APPLY rows to reverse: the action was cancelled, or corrected since (its revision moved on),
     * and no REVERSE of that revision exists for the target. In the order they were applied,
     * newest first (a reversal undoes the latest effect first).
     */
    /**
     * Records that `revision` of an action has been applied to every holder it had (`holders`,
     * possibly none), so the API can say an action no book held was processed. Kept at the
     * first time a revision was processed; a new revision replaces it.
     */
    async markProcessed(actionId: number, revision: number, holders: number, jobId: string): Promise<void> {
      await db.raw(
        `insert into corporate_action_processed (action_id, revision, holders, job_id)
         values (:actionId, :revision, :holders, :jobId)
         on conflict (action_id) do update
            set revision = excluded.revision, holders = excluded.holders,
                processed_at = now(), job_id = excluded.job_id
          where corporate_action_processed.revision <> excluded.revision
             or corporate_action_processed.holders <> excluded.holders`,
        { actionId, revision, holders, jobId },
      );
    },

    async staleApplies(actionIds: readonly string[] | null): Promise<StaleApply[]> {
      const res = await db.raw<{
        rows: (Omit<StaleApply, 'target'> & { portfolioId: string | null; accountId: number | null })[];
      }>(
        `select l.id::int as "ledgerId", a.action_id as "actionId", a.security_id as "securityId",
                l.action_type as "actionType", l.action_revision as revision, a.status, l.ex_date as "exDate",
                l.portfolio_id as "portfolioId", l.account_id as "accountId"
           from corporate_action_ledger l join corporate_actions a on a.id = l.action_id
          where (a.status = 'CANCELLED' or a.revision <> l.action_revision)
            and (:ids::text[] is null or a.action_id = any(:ids::text[]))
            and ${live('l')}
          order by l.ex_date desc, l.id desc`,
        { ids: actionIds === null ? null : [...actionIds] },
      );
      return res.rows.map(({ portfolioId, accountId, ...r }) => ({
        ...r,
        target: targetOf({ portfolioId, accountId }),
      }));
    },

    /**
     * Every portfolio and client account holding the security at the end of the day before the
     * action's ex-date (signed trades dated before it plus the ledger deltas of earlier ex-dates),
     * set-based; whether this revision is applied to it already. The per-target transaction
     * recomputes the quantity under its lock: this is only the list of candidates.
     */
    async targetsOf(action: DueAction): Promise<TargetHeld[]> {
      const res = await db.raw<{
        rows: { portfolioId: string | null; accountId: number | null; applied: boolean }[];
      }>(
        `with held as (
           select portfolio_id, account_id,
                  sum(case when txn_type in ('BUY', 'COVER') then quantity else -quantity end) as q
             from transactions where security_id = :sec and txn_date < :ex
            group by portfolio_id, account_id
           union all
           select l.portfolio_id, l.account_id, sum(l.quantity_delta)
             from corporate_action_ledger l join corporate_actions a on a.id = l.action_id
            where a.security_id = :sec and l.ex_date < :ex
            group by l.portfolio_id, l.account_id
         ), net as (
           select portfolio_id, account_id from held group by portfolio_id, account_id having sum(q) <> 0
         )
         , done as (
           select coalesce(l.portfolio_id, '') as p, coalesce(l.account_id, 0) as a
             from corporate_action_ledger l
            where l.action_id = :id and l.action_revision = :rev and ${live('l')}
         )
         select n.portfolio_id as "portfolioId", n.account_id as "accountId", d.p is not null as applied
           from net n
           left join done d on d.p = coalesce(n.portfolio_id, '') and d.a = coalesce(n.account_id, 0)
          order by n.portfolio_id nulls last, n.account_id`,
        { sec: action.securityId, ex: action.exDate, id: action.id, rev: action.revision },
      );
      return res.rows.map((r) => ({ target: targetOf(r), applied: r.applied }));
    },

    /**
     * The price for cash in lieu: the ex-date's daily close (as traded), or else the first close
     * after it up to `asOf`; null when neither exists.
     */
    async exDatePrice(
      securityId: number,
      exDate: string,
      asOf: string,
    ): Promise<{ price: string; date: string } | null> {
      const res = await db.raw<{ rows: { price: string; date: string }[] }>(
        `select close as price, session_date as date from bars_1d
          where security_id = ? and session_date >= ? and session_date <= ?
          order by session_date limit 1`,
        [securityId, exDate, asOf],
      );
      return res.rows[0] ?? null;
    },

    /** One transaction for one (target, security), under its advisory lock. */
    inTarget<T>(target: Target, securityId: number, fn: (tx: TargetTx) => Promise<T>): Promise<T> {
      const key =
        target.portfolioId !== null
          ? `P:${target.portfolioId}:${securityId}`
          : `A:${target.accountId}:${securityId}`;
      return rawTransaction(db, async (conn) => {
        // The ledger row and its effect commit together, so an asynchronous commit keeps exactly
        // once: a database crash can lose only whole recent transactions (row and effect), which a
        // rerun redoes. It spares one WAL flush per target, the cost of a per-target transaction.
        await conn.query(
          `select set_config('synchronous_commit', 'off', true), pg_advisory_xact_lock($1, hashtext($2))`,
          [LOCK_CLASS, key],
        );
        return fn(targetTx(conn, target, securityId));
      });
    },

    /**
     * Portfolios keep no cash account: their rows whose payment date has come are marked paid in
     * one statement. Returns the count per action type of the rows carrying cash.
     */
    async markPortfolioRowsPaid(asOf: string): Promise<Record<string, number>> {
      const res = await db.raw<{ rows: { action_type: string; n: number }[] }>(
        `with up as (
           update corporate_action_ledger set paid_at = now()
            where portfolio_id is not null and paid_at is null and coalesce(payment_date, ex_date) <= ?
            returning action_type, cash_amount
         )
         select action_type, count(*)::int as n from up where cash_amount <> 0 group by action_type`,
        [asOf],
      );
      return Object.fromEntries(res.rows.map((r) => [r.action_type, r.n]));
    },

    /** Client-account rows whose payment date has come and that are not paid yet. */
    async unpaidAccountRows(asOf: string): Promise<UnpaidAccountRow[]> {
      const res = await db.raw<{ rows: UnpaidAccountRow[] }>(
        `select l.id::int as "ledgerId", a.security_id as "securityId", l.account_id as "accountId",
                a.action_id as "actionId", l.action_type as "actionType", l.currency,
                c.currency as "accountCurrency", coalesce(l.payment_date, l.ex_date) as "paymentDate",
                l.cash_amount as "cashAmount"
           from corporate_action_ledger l
           join corporate_actions a on a.id = l.action_id
           join accounts c on c.id = l.account_id
          where l.account_id is not null and l.paid_at is null and coalesce(l.payment_date, l.ex_date) <= ?
          order by coalesce(l.payment_date, l.ex_date), l.id`,
        [asOf],
      );
      return res.rows;
    },

    /**
     * The FX rate to convert `from` into `to` on `date`: the direct pair, else the reciprocal of
     * the inverse pair (numeric text, 20 places); '1' for equal currencies; null when missing.
     */
    async fxRateOn(from: string, to: string, date: string): Promise<string | null> {
      if (from === to) return '1';
      const res = await db.raw<{ rows: { rate: string }[] }>(
        `select rate from (
           select rate, 0 as pref from fx_rates where from_currency = :from and to_currency = :to and rate_date = :date
           union all
           select round(1 / rate, 20), 1 from fx_rates where from_currency = :to and to_currency = :from and rate_date = :date
         ) r order by pref limit 1`,
        { from, to, date },
      );
      return res.rows[0]?.rate ?? null;
    },

    /** The ledger rows of an action (both entries, every revision), for tests and the API. */
    async rowsOfAction(actionId: string): Promise<LedgerRow[]> {
      const res = await db.raw<{ rows: LedgerRow[] }>(
        `select ${LEDGER_COLUMNS} from corporate_action_ledger l join corporate_actions a on a.id = l.action_id
          where a.action_id = ? order by l.id`,
        [actionId],
      );
      return res.rows;
    },

    correctAction: (actionId: string, change: ActionCorrection) => correctAction(db, actionId, change),
    cancelAction: (actionId: string) => cancelAction(db, actionId),
  };
}

export type LedgerRepository = ReturnType<typeof createLedgerRepository>;
