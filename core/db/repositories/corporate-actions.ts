/**
 * Corporate actions from providers (`corporate_actions`): splits, reverse splits and dividends,
 * keyed by the action id core/ingest/load.ts derives (`provider:ticker:type:exDate`), so a
 * re-fetch is a conflict, not a new row. Written only inside an ingest batch (ingest.ts).
 */
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

/** Stores the actions not known yet, in the caller's transaction. */
export async function upsertActionsOn(
  conn: Conn,
  rows: readonly ActionUpsert[],
): Promise<{ inserted: number; existing: number }> {
  if (rows.length === 0) return { inserted: 0, existing: 0 };
  // Any unique key conflicting (the same action_id, or the same security/type/ex-date from another
  // source) means the action is already known: the first source to report it wins.
  const res = await conn.query(
    `insert into corporate_actions (action_id, security_id, action_type, ex_date, payment_date, ratio, amount, currency, source)
     select * from unnest($1::text[], $2::int[], $3::text[], $4::date[], $5::date[], $6::numeric[], $7::numeric[],
                          $8::text[], $9::text[])
      order by 1
     on conflict do nothing`,
    [
      col(rows, 'actionId'),
      col(rows, 'securityId'),
      col(rows, 'actionType'),
      col(rows, 'exDate'),
      col(rows, 'paymentDate'),
      col(rows, 'ratio'),
      col(rows, 'amount'),
      col(rows, 'currency'),
      col(rows, 'source'),
    ],
  );
  const inserted = res.rowCount ?? 0;
  return { inserted, existing: rows.length - inserted };
}
