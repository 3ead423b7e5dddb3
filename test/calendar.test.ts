import { describe, expect, it } from 'vitest';
import {
  easterSunday,
  isTradingDay,
  lastCompletedSession,
  nextTradingDay,
  previousTradingDay,
  sessionDateOf,
  sessionFor,
  sessionsBetween,
} from '../core/calendar/nyse.ts';

describe('NYSE calendar', () => {
  it('closes on every 2024 full-day holiday', () => {
    const holidays = [
      '2024-01-01', // New Year's Day
      '2024-01-15', // Martin Luther King Jr. Day
      '2024-02-19', // Washington's Birthday
      '2024-03-29', // Good Friday
      '2024-05-27', // Memorial Day
      '2024-06-19', // Juneteenth
      '2024-07-04', // Independence Day
      '2024-09-02', // Labor Day
      '2024-11-28', // Thanksgiving
      '2024-12-25', // Christmas
    ];
    for (const d of holidays) expect({ d, open: isTradingDay(d) }).toEqual({ d, open: false });
    expect(sessionsBetween('2024-01-01', '2024-12-31')).toHaveLength(252);
    expect(sessionsBetween('2025-01-01', '2025-12-31')).toHaveLength(250);
  });

  it('applies the observance rules', () => {
    // New Year 2022 fell on a Saturday: NYSE stayed open on Friday 2021-12-31.
    expect(isTradingDay('2021-12-31')).toBe(true);
    // Christmas 2022 on a Sunday: observed Monday 26th.
    expect(isTradingDay('2022-12-26')).toBe(false);
    // Independence Day 2026 on a Saturday: observed Friday July 3, no early close that day.
    expect(isTradingDay('2026-07-03')).toBe(false);
    // Juneteenth only from 2022; 2027-06-19 is a Saturday, observed Friday the 18th.
    expect(isTradingDay('2021-06-18')).toBe(true);
    expect(isTradingDay('2027-06-18')).toBe(false);
    expect(easterSunday(2024)).toBe('2024-03-31');
    expect(easterSunday(2025)).toBe('2025-04-20');
    expect(isTradingDay('2025-04-18')).toBe(false);
  });

  it('knows the special closures', () => {
    expect(isTradingDay('2025-01-09')).toBe(false); // President Carter's national day of mourning
    expect(isTradingDay('2018-12-05')).toBe(false);
    expect(isTradingDay('2012-10-29')).toBe(false);
    expect(isTradingDay('2012-10-30')).toBe(false);
    expect(isTradingDay('2025-01-10')).toBe(true);
  });

  it('closes early at 13:00 New York time before July 4, after Thanksgiving and on Christmas Eve', () => {
    for (const d of ['2024-07-03', '2024-11-29', '2024-12-24', '2025-07-03', '2025-11-28', '2025-12-24']) {
      const s = sessionFor(d);
      expect(s?.earlyClose, d).toBe(true);
    }
    expect(sessionFor('2024-07-03')?.closeAt.toISOString()).toBe('2024-07-03T17:00:00.000Z');
    expect(sessionFor('2024-12-24')?.closeAt.toISOString()).toBe('2024-12-24T18:00:00.000Z');
    expect(sessionFor('2024-07-05')?.earlyClose).toBe(false);
    expect(sessionFor('2024-12-23')?.closeAt.toISOString()).toBe('2024-12-23T21:00:00.000Z');
  });

  it('converts 09:30–16:00 New York to UTC across DST switches', () => {
    // DST began Sunday 2024-03-10 and ended Sunday 2024-11-03.
    expect(sessionFor('2024-03-08')?.openAt.toISOString()).toBe('2024-03-08T14:30:00.000Z');
    expect(sessionFor('2024-03-11')?.openAt.toISOString()).toBe('2024-03-11T13:30:00.000Z');
    expect(sessionFor('2024-03-11')?.closeAt.toISOString()).toBe('2024-03-11T20:00:00.000Z');
    expect(sessionFor('2024-11-01')?.openAt.toISOString()).toBe('2024-11-01T13:30:00.000Z');
    expect(sessionFor('2024-11-04')?.openAt.toISOString()).toBe('2024-11-04T14:30:00.000Z');
    expect(sessionFor('2024-11-04')?.closeAt.toISOString()).toBe('2024-11-04T21:00:00.000Z');
  });

  it('has no session on weekends and steps between trading days', () => {
    expect(sessionFor('2024-06-15')).toBeUndefined();
    expect(previousTradingDay('2024-07-05')).toBe('2024-07-03');
    expect(nextTradingDay('2024-12-24')).toBe('2024-12-26');
    expect(previousTradingDay('2025-01-10')).toBe('2025-01-08');
    expect(nextTradingDay('2024-03-28')).toBe('2024-04-01');
    expect(sessionsBetween('2024-12-20', '2024-12-27').map((s) => s.date)).toEqual([
      '2024-12-20',
      '2024-12-23',
      '2024-12-24',
      '2024-12-26',
      '2024-12-27',
    ]);
  });

  it('gives the New York date of an instant and the last completed session', () => {
    expect(sessionDateOf(new Date('2024-03-10T03:30:00Z'))).toBe('2024-03-09');
    expect(sessionDateOf(new Date('2024-07-01T23:59:00Z'))).toBe('2024-07-01');
    expect(sessionDateOf(new Date('2024-07-02T04:01:00Z'))).toBe('2024-07-02');
    expect(lastCompletedSession(new Date('2024-12-24T17:59:59Z')).date).toBe('2024-12-23');
    expect(lastCompletedSession(new Date('2024-12-24T18:00:00Z')).date).toBe('2024-12-24');
    expect(lastCompletedSession(new Date('2024-12-25T15:00:00Z')).date).toBe('2024-12-24');
  });

  it('rejects impossible dates', () => {
    expect(() => sessionFor('2024-02-30')).toThrow(/calendar date/);
    expect(() => sessionsBetween('2024-1-1', '2024-01-05')).toThrow(/YYYY-MM-DD/);
  });
});
