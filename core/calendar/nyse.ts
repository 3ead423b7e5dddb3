/**
 * The NYSE trading calendar, computed by rule (no data files, no date library): full-day
 * holidays with NYSE's observance rules, special closures, 13:00 early closes, and the
 * 09:30–16:00 America/New_York regular session converted to UTC across DST changes.
 *
 * Dates are 'YYYY-MM-DD' strings throughout; day arithmetic is done on UTC midnights so the
 * host's time zone never matters.
 */

export interface Session {
  /** Exchange-local session date 'YYYY-MM-DD'. */
  date: string;
  openAt: Date;
  closeAt: Date;
  earlyClose: boolean;
}

/**
 * The exchange time zone: the one source for the whole product (sessions, the Job Schedulers'
 * `tz`, SQL that takes a session date of an instant, the API's `timezone` field, provider
 * fallbacks). It is a property of the calendar the product follows, not a setting: no other module
 * names the zone (test/timezone.test.ts).
 */
export const NYSE_TIME_ZONE = 'America/New_York';
const DAY_MS = 86_400_000;

/** Unscheduled closures (weather, national days of mourning, 9/11) that no rule produces. */
const SPECIAL_CLOSURES: ReadonlySet<string> = new Set([
  '2001-09-11',
  '2001-09-12',
  '2001-09-13',
  '2001-09-14',
  '2004-06-11',
  '2007-01-02',
  '2012-10-29',
  '2012-10-30',
  '2018-12-05',
  '2025-01-09',
]);

const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})$/;

function parse(date: string): number {
  const m = DATE_RE.exec(date);
  if (!m) throw new Error(`not a date YYYY-MM-DD: "${date}"`);
  const ms = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  if (formatUtc(ms) !== date) throw new Error(`not a calendar date: "${date}"`);
  return ms;
}

function formatUtc(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

function ymd(year: number, month: number, day: number): string {
  return formatUtc(Date.UTC(year, month - 1, day));
}

/** Whether a string is a real calendar date in the form YYYY-MM-DD. */
export function isValidDate(date: string): boolean {
  try {
    parse(date);
    return true;
  } catch {
    return false;
  }
}

export function addDays(date: string, days: number): string {
  return formatUtc(parse(date) + days * DAY_MS);
}

/** 0 = Sunday … 6 = Saturday. */
export function dayOfWeek(date: string): number {
  return new Date(parse(date)).getUTCDay();
}

function nthWeekday(year: number, month: number, weekday: number, n: number): string {
  const first = new Date(Date.UTC(year, month - 1, 1)).getUTCDay();
  return ymd(year, month, 1 + ((weekday - first + 7) % 7) + (n - 1) * 7);
}

function lastWeekday(year: number, month: number, weekday: number): string {
  const lastDay = new Date(Date.UTC(year, month, 0));
  const back = (lastDay.getUTCDay() - weekday + 7) % 7;
  return ymd(year, month, lastDay.getUTCDate() - back);
}

/** Western (Gregorian) Easter Sunday by the anonymous computus (Meeus/Jones/Butcher). */
export function easterSunday(year: number): string {
  const a = year % 19;
  const b = Math.floor(year / 100);
  const c = year % 100;
  const d = Math.floor(b / 4);
  const e = b % 4;
  const f = Math.floor((b + 8) / 25);
  const g = Math.floor((b - f + 1) / 3);
  const h = (19 * a + b - d - g + 15) % 30;
  const i = Math.floor(c / 4);
  const k = c % 4;
  const l = (32 + 2 * e + 2 * i - h - k) % 7;
  const m = Math.floor((a + 11 * h + 22 * l) / 451);
  const month = Math.floor((h + l - 7 * m + 114) / 31);
  const day = ((h + l - 7 * m + 114) % 31) + 1;
  return ymd(year, month, day);
}

/** Saturday holidays are observed the Friday before, Sunday ones the Monday after. */
function observed(date: string): string {
  const dow = dayOfWeek(date);
  if (dow === 6) return addDays(date, -1);
  if (dow === 0) return addDays(date, 1);
  return date;
}

const holidayCache = new Map<number, ReadonlySet<string>>();

/** The rule-based full-day holidays observed in a calendar year (special closures excluded). */
export function holidaysOf(year: number): ReadonlySet<string> {
  const cached = holidayCache.get(year);
  if (cached) return cached;
  const days: string[] = [];
  // NYSE does not close on Friday Dec 31 for a Saturday New Year's Day (rule 7.2): only Sunday moves.
  const newYear = ymd(year, 1, 1);
  if (dayOfWeek(newYear) === 0) days.push(addDays(newYear, 1));
  else if (dayOfWeek(newYear) !== 6) days.push(newYear);
  if (year >= 1998) days.push(nthWeekday(year, 1, 1, 3));
  days.push(nthWeekday(year, 2, 1, 3));
  days.push(addDays(easterSunday(year), -2));
  days.push(lastWeekday(year, 5, 1));
  if (year >= 2022) days.push(observed(ymd(year, 6, 19)));
  days.push(observed(ymd(year, 7, 4)));
  days.push(nthWeekday(year, 9, 1, 1));
  days.push(nthWeekday(year, 11, 4, 4));
  days.push(observed(ymd(year, 12, 25)));
  const set = new Set(days);
  holidayCache.set(year, set);
  return set;
}

export function isHoliday(date: string): boolean {
  return SPECIAL_CLOSURES.has(date) || holidaysOf(Number(date.slice(0, 4))).has(date);
}

export function isTradingDay(date: string): boolean {
  const dow = dayOfWeek(date);
  return dow !== 0 && dow !== 6 && !isHoliday(date);
}

/** 13:00 closes: July 3 before Independence Day, the day after Thanksgiving, Christmas Eve. */
export function isEarlyClose(date: string): boolean {
  if (!isTradingDay(date)) return false;
  const year = Number(date.slice(0, 4));
  if (date === ymd(year, 7, 3)) return true;
  if (date === addDays(nthWeekday(year, 11, 4, 4), 1)) return true;
  return date === ymd(year, 12, 24);
}

const offsetFormatter = new Intl.DateTimeFormat('en-US', {
  timeZone: NYSE_TIME_ZONE,
  timeZoneName: 'longOffset',
  year: 'numeric',
});
const offsetCache = new Map<string, number>();

/**
 * Minutes New York is ahead of UTC (negative) during a date's trading hours. DST switches
 * happen at 02:00 local, so the offset at 12:00 UTC (07:00/08:00 local) holds all day long.
 */
function newYorkOffsetMinutes(date: string): number {
  const cached = offsetCache.get(date);
  if (cached !== undefined) return cached;
  const part = offsetFormatter
    .formatToParts(new Date(parse(date) + 12 * 3_600_000))
    .find((p) => p.type === 'timeZoneName')?.value;
  const m = part === undefined ? null : /^GMT([+-])(\d{2}):(\d{2})$/.exec(part);
  const minutes = m ? (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3])) : 0;
  offsetCache.set(date, minutes);
  return minutes;
}

/** The UTC instant of a New York wall-clock time on a date. */
export function newYorkTime(date: string, hour: number, minute: number): Date {
  return new Date(parse(date) + (hour * 60 + minute - newYorkOffsetMinutes(date)) * 60_000);
}

export function sessionFor(date: string): Session | undefined {
  if (!isTradingDay(date)) return undefined;
  const earlyClose = isEarlyClose(date);
  return {
    date,
    openAt: newYorkTime(date, 9, 30),
    closeAt: newYorkTime(date, earlyClose ? 13 : 16, 0),
    earlyClose,
  };
}

/** Every session with from <= date <= to, in order. */
export function sessionsBetween(from: string, to: string): Session[] {
  const out: Session[] = [];
  const end = parse(to);
  for (let ms = parse(from); ms <= end; ms += DAY_MS) {
    const s = sessionFor(formatUtc(ms));
    if (s) out.push(s);
  }
  return out;
}

export function previousTradingDay(date: string): string {
  let d = addDays(date, -1);
  while (!isTradingDay(d)) d = addDays(d, -1);
  return d;
}

export function nextTradingDay(date: string): string {
  let d = addDays(date, 1);
  while (!isTradingDay(d)) d = addDays(d, 1);
  return d;
}

const localDateFormatter = new Intl.DateTimeFormat('en-CA', {
  timeZone: NYSE_TIME_ZONE,
  year: 'numeric',
  month: '2-digit',
  day: '2-digit',
});

/** The New York local date of an instant. */
export function sessionDateOf(instant: Date): string {
  const parts = localDateFormatter.formatToParts(instant);
  const get = (t: string): string => parts.find((p) => p.type === t)?.value ?? '';
  return `${get('year')}-${get('month')}-${get('day')}`;
}

/** The latest session that has closed at or before an instant. */
export function lastCompletedSession(now: Date): Session {
  let d = sessionDateOf(now);
  for (;;) {
    const s = sessionFor(d);
    if (s && s.closeAt.getTime() <= now.getTime()) return s;
    d = addDays(d, -1);
  }
}
