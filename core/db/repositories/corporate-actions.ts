/**
 * Corporate actions from providers (`corporate_actions`): splits, reverse splits and dividends,
 * keyed by the action id core/ingest/load.ts derives (`provider:ticker:type:exDate`), so a
 * re-fetch is a conflict, not a new row. Written inside an ingest batch (ingest.ts), and by the
 * operator functions below (tests and tooling: a correction or a cancellation).
 *
 * Corrections (issue 9): the same action_id reported again with different terms (ex-date, payment
 * date, ratio, amount, currency) is a provider's correction: the terms are updated, `revision`
 * goes up by one and `updated_at` is stamped, so corporate-actions.apply reverses the effect of the
 * revision it applied and applies the new one. Identical terms change nothing. A different
 * action_id for a security/type/ex-date already known is still ignored (the first source to
 * report an action wins), and so is a correction that would move onto another action's
 * security/type/ex-date.
 */
import type { Knex } from '../knex.ts';
import { col, type Conn } from './sql.ts';

export interface ActionUpsert {
  actionId: string;
  securityId: number;
  actionType: 'STOCK_SPLIT' | 'REVERSE_SPLIT' | 'DIVIDEND';
  exDate: string;
  paymentDate: string | null;
  ratio: string | null;
  amount: string | null;
  currency: string | null;
  source: string;
}

const INPUT = `unnest($1::text[], $2::int[], $3::text[], $4::date[], $5::date[], $6::numeric[], $7::numeric[],
                      $8::text[], $9::text[])
               as u(action_id, security_id, action_type, ex_date, payment_date, ratio, amount, currency, source)`;

/** The terms whose change is a correction. */
const TERMS_DIFFER = `(c.ex_date, c.payment_date, c.ratio, c.amount, c.currency)
                       is distinct from (u.ex_date, u.payment_date, u.ratio, u.amount, u.currency::char(3))`;

/** Stores the actions not known yet and corrects known ones, in the caller's transaction. */
export async function upsertActionsOn(
  conn: Conn,
  rows: readonly ActionUpsert[],
): Promise<{ inserted: number; existing: number; corrected: number }> {
  if (rows.length === 0) return { inserted: 0, existing: 0, corrected: 0 };
  const params = [
    col(rows, 'actionId'),
    col(rows, 'securityId'),
    col(rows, 'actionType'),
    col(rows, 'exDate'),
    col(rows, 'paymentDate'),
    col(rows, 'ratio'),
    col(rows, 'amount'),
    col(rows, 'currency'),
    col(rows, 'source'),
  ];
  // Corrections first (one row per action_id: the last one given wins within a batch).
  const corrected = await conn.query(
    `with u as (
       select distinct on (action_id) * from ${INPUT} order by action_id
     )
     update corporate_actions c
        set ex_date = u.ex_date, payment_date = u.payment_date, ratio = u.ratio, amount = u.amount,
            currency = u.currency, revision = c.revision + 1, updated_at = now()
       from u
      where c.action_id = u.action_id
        and ${TERMS_DIFFER}
        and not exists (select 1 from corporate_actions o
                         where o.security_id = c.security_id and o.action_type = c.action_type
                           and o.ex_date = u.ex_date and o.id <> c.id)`,
    params,
  );
  // New actions: any unique key conflicting (the same action_id, or the same security/type/ex-date
  // from another source) means the action is already known: the first source to report it wins.
  const res = await conn.query(
    `insert into corporate_actions (action_id, security_id, action_type, ex_date, payment_date, ratio, amount, currency, source)
     select * from ${INPUT}
      order by 1
     on conflict do nothing`,
    params,
  );
  const inserted = res.rowCount ?? 0;
  const fixed = corrected.rowCount ?? 0;
  return { inserted, existing: rows.length - inserted - fixed, corrected: fixed };
}

export interface ActionCorrection {
  exDate?: string;
  paymentDate?: string | null;
  ratio?: string | null;
  amount?: string | null;
}

/**
 * Corrects an action's terms (revision + 1). Returns the new revision, or null when the action is
 * unknown or the terms given are the ones it already has.
 */
export async function correctAction(
  db: Knex,
  actionId: string,
  change: ActionCorrection,
): Promise<number | null> {
  const res = await db.raw<{ rows: { revision: number }[] }>(
    `update corporate_actions c
        set ex_date = coalesce(:exDate::date, c.ex_date),
            payment_date = case when :hasPayment then :paymentDate::date else c.payment_date end,
            ratio = case when :hasRatio then :ratio::numeric else c.ratio end,
            amount = case when :hasAmount then :amount::numeric else c.amount end,
            revision = c.revision + 1, updated_at = now()
      where c.action_id = :actionId
        and (coalesce(:exDate::date, c.ex_date),
             case when :hasPayment then :paymentDate::date else c.payment_date end,
             case when :hasRatio then :ratio::numeric else c.ratio end,
             case when :hasAmount then :amount::numeric else c.amount end)
            is distinct from (c.ex_date, c.payment_date, c.ratio, c.amount)
      returning c.revision`,
    {
      actionId,
      exDate: change.exDate ?? null,
      hasPayment: change.paymentDate !== undefined,
      paymentDate: change.paymentDate ?? null,
      hasRatio: change.ratio !== undefined,
      ratio: change.ratio ?? null,
      hasAmount: change.amount !== undefined,
      amount: change.amount ?? null,
    },
  );
  return res.rows[0]?.revision ?? null;
}

/** Marks an action CANCELLED by its provider. Returns false when unknown or already cancelled. */
export async function cancelAction(db: Knex, actionId: string): Promise<boolean> {
  const res = await db.raw<{ rowCount: number }>(
    `update corporate_actions set status = 'CANCELLED', updated_at = now()
      where action_id = ? and status <> 'CANCELLED'`,
    [actionId],
  );
  return (res.rowCount ?? 0) > 0;
}
