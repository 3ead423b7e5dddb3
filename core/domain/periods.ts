/**
 * Accounting periods (issue 9): a quarter (`2025Q1`), a month (`2025-03`) or an inclusive from/to
 * range, resolved to the two snapshot dates the variance attribution compares.
 *
 * - `start`/`end` are the period's calendar dates (inclusive).
 * - `d0` is the last NYSE trading day on or before the day before `start`: the previous period's
 *   end snapshot, so consecutive periods chain (a quarter's d1 is the next quarter's d0).
 * - `d1` is the last NYSE trading day on or before `end`.
 * - `label` is canonical: a from/to range that is exactly a calendar quarter or month gets the
 *   quarter's or month's label, so the same dates are always stored under one label.
 *
 * Pure (the NYSE calendar is computed, not read): the job, the API and the reports share it.
 */
import { addDays, isTradingDay, previousTradingDay } from '../calendar/nyse.ts';

export interface PeriodInput {
  quarter?: string | undefined;
  month?: string | undefined;
  from?: string | undefined;
  to?: string | undefined;
}

export interface Period {
  label: string;
  start: string;
  end: string;
  d0: string;
  d1: string;
}

const QUARTER = /^([0-9]{4})Q([1-4])$/;
const MONTH = /^([0-9]{4})-(0[1-9]|1[0-2])$/;
const DATE = /^[0-9]{4}-[0-9]{2}-[0-9]{2}$/;

const pad = (n: number): string => String(n).padStart(2, '0');

/** The last day of a month (1-based month). */
function monthEnd(year: number, month: number): string {
  const last = new Date(Date.UTC(year, month, 0)).getUTCDate();
  return `${year}-${pad(month)}-${pad(last)}`;
}

/** The last NYSE trading day on or before `date`. */
export function tradingDayOnOrBefore(date: string): string {
  return isTradingDay(date) ? date : previousTradingDay(date);
}

/** The calendar dates of a quarter label like 2025Q1. */
export function quarterDates(label: string): { start: string; end: string } {
  const m = QUARTER.exec(label);
  if (!m) throw new RangeError(`quarter must look like 2025Q1, got ${label}`);
  const year = Number(m[1]);
  const q = Number(m[2]);
  const firstMonth = (q - 1) * 3 + 1;
  return { start: `${year}-${pad(firstMonth)}-01`, end: monthEnd(year, firstMonth + 2) };
}

/** The calendar dates of a month label like 2025-03. */
export function monthDates(label: string): { start: string; end: string } {
  const m = MONTH.exec(label);
  if (!m) throw new RangeError(`month must look like 2025-03, got ${label}`);
  const year = Number(m[1]);
  const month = Number(m[2]);
  return { start: `${year}-${pad(month)}-01`, end: monthEnd(year, month) };
}

/** The quarter label of a date. */
export function quarterOf(date: string): string {
  return `${date.slice(0, 4)}Q${Math.floor((Number(date.slice(5, 7)) - 1) / 3) + 1}`;
}

/** The label of the quarter before `label`. */
export function previousQuarter(label: string): string {
  const m = QUARTER.exec(label);
  if (!m) throw new RangeError(`quarter must look like 2025Q1, got ${label}`);
  const year = Number(m[1]);
  const q = Number(m[2]);
  return q === 1 ? `${year - 1}Q4` : `${year}Q${q - 1}`;
}

/** The canonical label of an inclusive date range (a quarter's or month's label when it is one). */
function labelOf(start: string, end: string): string {
  const q = quarterOf(start);
  const qd = quarterDates(q);
  if (qd.start === start && qd.end === end) return q;
  const md = monthDates(start.slice(0, 7));
  if (md.start === start && md.end === end) return start.slice(0, 7);
  return `${start}/${end}`;
}

/**
 * Resolves one of quarter, month or from/to to its dates and snapshot days. Throws a RangeError
 * naming the field on a malformed or empty input (the job turns it into a permanent failure).
 */
export function resolvePeriod(input: PeriodInput): Period {
  let start: string;
  let end: string;
  if (input.quarter !== undefined) ({ start, end } = quarterDates(input.quarter));
  else if (input.month !== undefined) ({ start, end } = monthDates(input.month));
  else if (input.from !== undefined && input.to !== undefined) {
    if (!DATE.test(input.from))
      throw new RangeError(`from must be a date like 2025-01-01, got ${input.from}`);
    if (!DATE.test(input.to)) throw new RangeError(`to must be a date like 2025-03-31, got ${input.to}`);
    if (input.from >= input.to)
      throw new RangeError(`from (${input.from}) must be before to (${input.to}): a period spans two dates`);
    start = input.from;
    end = input.to;
  } else throw new RangeError('give a quarter, a month, or from and to');
  return {
    label: labelOf(start, end),
    start,
    end,
    d0: tradingDayOnOrBefore(addDays(start, -1)),
    d1: tradingDayOnOrBefore(end),
  };
}

/** The latest quarter that ended strictly before `asOfDate` (New York date). */
export function latestCompleteQuarter(asOfDate: string): string {
  return previousQuarter(quarterOf(asOfDate));
}

/**
 * When `date` is the first NYSE trading day after a quarter end, that quarter's label; otherwise
 * null (the scheduled variance run only works on that day).
 */
export function quarterClosedOn(date: string): string | null {
  if (!isTradingDay(date)) return null;
  const q = latestCompleteQuarter(date);
  const { end } = quarterDates(q);
  // The first trading day after `end` is `date` when no trading day lies strictly between them.
  return previousTradingDay(date) <= end ? q : null;
}
