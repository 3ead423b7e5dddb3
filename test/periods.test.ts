/**
 * Accounting periods (core/domain/periods.ts): quarter, month and from/to resolve to their dates,
 * a canonical label and the snapshot days d0/d1 on the NYSE calendar; consecutive periods chain;
 * the schedule's "first trading day after a quarter end" and the latest complete quarter.
 */
import { describe, expect, it } from 'vitest';
import {
  latestCompleteQuarter,
  quarterClosedOn,
  resolvePeriod,
  tradingDayOnOrBefore,
} from '../core/domain/periods.ts';

describe('periods', () => {
  it('resolves a quarter, a month and a from/to range to dates, label and snapshot days', () => {
    expect(resolvePeriod({ quarter: '2025Q1' })).toEqual({
      label: '2025Q1',
      start: '2025-01-01',
      end: '2025-03-31',
      d0: '2024-12-31',
      d1: '2025-03-31',
    });
    // 2024-03-29 is Good Friday: Q1 2024 ends on the 28th; 2024-06-30 is a Sunday.
    expect(resolvePeriod({ quarter: '2024Q2' })).toMatchObject({ d0: '2024-03-28', d1: '2024-06-28' });
    expect(resolvePeriod({ month: '2024-02' })).toEqual({
      label: '2024-02',
      start: '2024-02-01',
      end: '2024-02-29',
      d0: '2024-01-31',
      d1: '2024-02-29',
    });
    expect(resolvePeriod({ from: '2025-01-01', to: '2025-03-31' }).label).toBe('2025Q1');
    expect(resolvePeriod({ from: '2025-03-01', to: '2025-03-31' }).label).toBe('2025-03');
    expect(resolvePeriod({ from: '2025-01-06', to: '2025-02-14' })).toEqual({
      label: '2025-01-06/2025-02-14',
      start: '2025-01-06',
      end: '2025-02-14',
      d0: '2025-01-03',
      d1: '2025-02-14',
    });
  });

  it('consecutive quarters chain: each d1 is the next d0', () => {
    const qs = ['2023Q4', '2024Q1', '2024Q2', '2024Q3', '2024Q4', '2025Q1'];
    for (let i = 1; i < qs.length; i++)
      expect(resolvePeriod({ quarter: qs[i] }).d0).toBe(resolvePeriod({ quarter: qs[i - 1] }).d1);
  });

  it('rejects malformed or empty periods, naming the field', () => {
    expect(() => resolvePeriod({ quarter: '2025Q5' })).toThrow(/quarter must look like 2025Q1/);
    expect(() => resolvePeriod({ month: '2025-13' })).toThrow(/month must look like 2025-03/);
    expect(() => resolvePeriod({ from: '2025-03-01', to: '2025-03-01' })).toThrow(
      /from .* must be before to/,
    );
    expect(() => resolvePeriod({})).toThrow(/give a quarter, a month, or from and to/);
  });

  it('the first trading day after a quarter end, and the latest complete quarter', () => {
    expect(quarterClosedOn('2025-04-01')).toBe('2025Q1');
    expect(quarterClosedOn('2025-04-02')).toBeNull();
    expect(quarterClosedOn('2026-01-01')).toBeNull(); // a holiday
    expect(quarterClosedOn('2026-01-02')).toBe('2025Q4');
    expect(quarterClosedOn('2024-07-01')).toBe('2024Q2');
    expect(latestCompleteQuarter('2025-04-01')).toBe('2025Q1');
    expect(latestCompleteQuarter('2025-03-31')).toBe('2024Q4');
    expect(tradingDayOnOrBefore('2024-03-31')).toBe('2024-03-28');
  });
});
