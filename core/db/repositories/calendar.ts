/** The exchange calendar as rows in market_sessions, so rollups can join sessions set-based. */
import { sessionsBetween as computeSessions, type Session } from '../../calendar/nyse.ts';
import type { Knex } from '../knex.ts';

export const NYSE_EXCHANGE = 'XNYS';

/**
 * SQL: the number of 5-minute buckets in the market_sessions row aliased `s` (78 for a full
 * session, 42 for a 13:00 early close; opens and closes are on 5-minute boundaries). A day is
 * complete when its 5-minute bars fill every one of them; the rollups, provider daily bars and
 * "missing" planning all use this one rule.
 */
export const sessionBuckets = (s: string): string =>
  `(extract(epoch from (${s}.close_at - ${s}.open_at))::int / 300)`;

/**
 * Inserts every NYSE session from..to (inclusive dates) that market_sessions lacks, through `db`
 * (a transaction when the caller's statements must see them); returns how many were added.
 * The one writer of calendar rows: the calendar repository and the rollups both call it.
 */
export async function insertMissingSessions(
  db: Knex | Knex.Transaction,
  from: string,
  to: string,
): Promise<number> {
  const sessions = computeSessions(from, to);
  if (sessions.length === 0) return 0;
  const res = await db.raw<{ rowCount: number }>(
    `insert into market_sessions (exchange, session_date, open_at, close_at, early_close)
     select ?, d, o, c, e
       from unnest(?::date[], ?::timestamptz[], ?::timestamptz[], ?::boolean[]) as s(d, o, c, e)
      where not exists (select 1 from market_sessions m where m.exchange = ? and m.session_date = s.d)
     on conflict (exchange, session_date) do nothing`,
    [
      NYSE_EXCHANGE,
      sessions.map((s) => s.date),
      sessions.map((s) => s.openAt.toISOString()),
      sessions.map((s) => s.closeAt.toISOString()),
      sessions.map((s) => s.earlyClose),
      NYSE_EXCHANGE,
    ],
  );
  return res.rowCount;
}

interface SessionRow {
  session_date: string;
  open_at: Date;
  close_at: Date;
  early_close: boolean;
}

export function createCalendarRepository(db: Knex) {
  return {
    /** Inserts every NYSE session from..to (inclusive) that is missing; returns how many were added. */
    async ensureSessions(from: string, to: string): Promise<number> {
      return insertMissingSessions(db, from, to);
    },

    /** Stored NYSE sessions from..to (inclusive), in date order. */
    async sessionsBetween(from: string, to: string): Promise<Session[]> {
      const rows = await db<SessionRow>('market_sessions')
        .select('session_date', 'open_at', 'close_at', 'early_close')
        .where('exchange', NYSE_EXCHANGE)
        .whereBetween('session_date', [from, to])
        .orderBy('session_date');
      return rows.map((r) => ({
        date: r.session_date,
        openAt: r.open_at,
        closeAt: r.close_at,
        earlyClose: r.early_close,
      }));
    },
  };
}

export type CalendarRepository = ReturnType<typeof createCalendarRepository>;
