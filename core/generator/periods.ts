/**
 * Quarter ends of a generated range and the one quarter the demo attributes: the last complete
 * quarter of the range ("the focus quarter"). The universe places its forced corporate actions
 * in it, the book its forced trades, and the demo's flow asks variance.quarterly for it, so all
 * three agree on one definition.
 */
import type { Plan } from './universe.ts';

export interface QuarterEnd {
  /** The calendar quarter end (2024-09-30). */
  date: string;
  /** `2024Q3`. */
  label: string;
  /** Index in plan.sessions of the last session on or before `date`. */
  session: number;
}

const ENDS = ['03-31', '06-30', '09-30', '12-31'] as const;

/** Every calendar quarter end inside the range that has a session on or before it in the range. */
export function quarterEnds(plan: Pick<Plan, 'from' | 'to' | 'sessions'>): QuarterEnd[] {
  const out: QuarterEnd[] = [];
  let s = -1;
  for (let y = Number(plan.from.slice(0, 4)); y <= Number(plan.to.slice(0, 4)); y++) {
    ENDS.forEach((md, q) => {
      const date = `${y}-${md}`;
      if (date > plan.to) return;
      while (s + 1 < plan.sessions.length && (plan.sessions[s + 1]?.date ?? '') <= date) s++;
      if (s >= 0 && out.at(-1)?.session !== s) out.push({ date, label: `${y}Q${q + 1}`, session: s });
    });
  }
  return out;
}

export interface FocusQuarter {
  label: string;
  /** The quarter's first and last calendar days. */
  from: string;
  to: string;
  /** Session index of the previous quarter end (the start valuation) and of this quarter end. */
  startSession: number;
  endSession: number;
}

/**
 * The last quarter of the range that is complete and whose start is valued inside the range: its
 * end is on or before the range's end and the quarter end before it is a session of the range.
 * Undefined for a range too short to hold one.
 */
export function focusQuarter(plan: Pick<Plan, 'from' | 'to' | 'sessions'>): FocusQuarter | undefined {
  const ends = quarterEnds(plan);
  const end = ends.at(-1);
  const start = ends.at(-2);
  if (!end || !start || end.session - start.session < 10) return undefined;
  const month = Number(end.date.slice(5, 7)) - 2;
  return {
    label: end.label,
    from: `${end.date.slice(0, 4)}-${String(month).padStart(2, '0')}-01`,
    to: end.date,
    startSession: start.session,
    endSession: end.session,
  };
}

/** What the demo's books steps cover: apply actions up to the range's end, books over it, one quarter. */
export interface BooksPeriod {
  asOf: string;
  from: string;
  to: string;
  /** The focus quarter's label, or null when the range holds no complete quarter. */
  quarter: string | null;
}

export function booksPeriod(plan: Pick<Plan, 'from' | 'to' | 'sessions'>): BooksPeriod {
  return { asOf: plan.to, from: plan.from, to: plan.to, quarter: focusQuarter(plan)?.label ?? null };
}
