import { describe, expect, it } from 'vitest';
import { sessionFor } from '../core/calendar/nyse.ts';
import {
  cusipCheckDigit,
  isinCheckDigit,
  leiWithCheck,
  sedolCheckDigit,
  sedolFor,
} from '../core/generator/identifiers.ts';
import { dailyPath, PRICE_SCALE, priceText } from '../core/generator/paths.ts';
import { tickBuffers, ticksInSession } from '../core/generator/ticks.ts';
import { buildUniverse, resolvePlan, typeCounts } from '../core/generator/universe.ts';
import { beta, simpleReturns } from '../core/domain/risk.ts';

function mod97(id: string): number {
  const digits = [...id].map((c) => String(parseInt(c, 36))).join('');
  return Number(BigInt(digits) % 97n);
}

describe('identifiers', () => {
  it('computes real check digits', () => {
    expect(cusipCheckDigit('03783310')).toBe('0'); // Apple 037833100
    expect(isinCheckDigit('US037833100')).toBe('5'); // US0378331005
    expect(isinCheckDigit('GB000263494')).toBe('6'); // GB0002634946
    expect(sedolCheckDigit('026349')).toBe('4'); // BAE Systems 0263494
    expect(mod97(leiWithCheck('5493001KJTIIGC8Y1R'))).toBe(1);
    expect(sedolFor(12345)).toMatch(/^B[0-9BCDFGHJ-NP-TV-Z]{5}[0-9]$/);
  });
});

describe('universe', () => {
  const plan = resolvePlan({
    seed: 7,
    scale: 'small',
    securities: 40,
    years: 1,
    tickSessions: 5,
    endDate: '2024-12-27',
  });

  it('is the same for the same seed and different for another', () => {
    const a = buildUniverse(plan);
    const b = buildUniverse(plan);
    const c = buildUniverse({ ...plan, seed: 8 });
    expect(JSON.stringify(a)).toBe(JSON.stringify(b));
    expect(JSON.stringify(a)).not.toBe(JSON.stringify(c));
  });

  it('has a benchmark, SPY: an index ETF priced like the market factor, so equities have betas', () => {
    const two = resolvePlan({ seed: 7, scale: 'small', securities: 40, years: 2, endDate: '2024-12-27' });
    const { securities } = buildUniverse(two);
    const spy = securities.find((s) => s.ticker === 'SPY');
    expect(spy).toMatchObject({ type: 'EQUITY', currency: 'USD', splits: [], status: 'ACTIVE' });
    // Split-adjusted closes (the path's raw close × the split factor in force).
    const returnsOf = (spec: (typeof securities)[number]) => {
      const p = dailyPath(two, spec);
      return simpleReturns(Array.from(p.close, (c, i) => c * p.factor[i]!));
    };
    const market = returnsOf(spy!);
    const equities = securities.filter((s) => s.type === 'EQUITY' && s !== spy);
    const betas = equities.map((s) => beta(returnsOf(s), market)!);
    // Each equity's beta against SPY is its market loading, up to sampling error (~0.15 here).
    equities.forEach((s, i) => expect(Math.abs(betas[i]! - s.beta), s.ticker).toBeLessThan(0.5));
    expect(betas.reduce((a, b) => a + b, 0) / betas.length).toBeGreaterThan(0.7);
  });

  it('mixes types like the seed and keeps identifiers unique and valid', () => {
    expect(typeCounts(1000)).toEqual({ EQUITY: 550, BOND: 290, OPTION: 50, FUTURE: 40, CLO: 35, ABS: 35 });
    const { securities, issuers } = buildUniverse(plan);
    expect(new Set(issuers.map((i) => i.country)).size).toBe(15);
    for (const key of ['ticker', 'isin', 'sedol'] as const) {
      expect(new Set(securities.map((s) => s[key])).size).toBe(securities.length);
    }
    for (const s of securities) {
      expect(s.ticker).toMatch(/^[A-Z0-9._=^-]{1,20}$/);
      expect(isinCheckDigit(s.isin.slice(0, 11))).toBe(s.isin.slice(11));
      if (s.type === 'OPTION') expect(securities[s.underlying ?? -1]?.type).toBe('EQUITY');
    }
  });
});

describe('ticks', () => {
  const plan = resolvePlan({
    seed: 3,
    scale: 'small',
    securities: 8,
    years: 0.5,
    tickSessions: 4,
    endDate: '2024-12-27',
  });
  const { securities } = buildUniverse(plan);
  const spec = securities[0];
  if (!spec) throw new Error('no security');
  const path = dailyPath(plan, spec);
  const sessions = [plan.tickStart, plan.tickStart + 1, plan.tickStart + 2, plan.tickStart + 3];
  const rows = Buffer.concat([...tickBuffers(plan, spec, path, 77, sessions)])
    .toString('latin1')
    .trimEnd()
    .split('\n')
    .map((l) => l.split('\t'));

  it('prints one row every 20 seconds inside each session, early closes included', () => {
    expect(plan.sessions.slice(plan.tickStart).map((s) => s.date)).toEqual([
      '2024-12-23',
      '2024-12-24',
      '2024-12-26',
      '2024-12-27',
    ]);
    expect(ticksInSession(sessionFor('2024-12-23')!)).toBe(1170);
    expect(ticksInSession(sessionFor('2024-12-24')!)).toBe(630);
    expect(rows).toHaveLength(1170 * 3 + 630);
    const christmasEve = rows.filter((r) => r[1]?.startsWith('2024-12-24'));
    expect(christmasEve[0]?.[1]).toBe('2024-12-24 14:30:00+00');
    expect(christmasEve.at(-1)?.[1]).toBe('2024-12-24 17:59:40+00');
    for (const r of rows) {
      expect(r).toHaveLength(7);
      expect(r[0]).toBe('77');
      const bid = Number(r[5]);
      const price = Number(r[3]);
      const ask = Number(r[6]);
      expect(price).toBeGreaterThan(0);
      expect(bid).toBeLessThanOrEqual(price);
      expect(ask).toBeGreaterThanOrEqual(price);
      expect(Number(r[4])).toBeGreaterThan(0);
    }
  });

  it("opens at the day's open and ends exactly on the daily close", () => {
    for (const s of sessions) {
      const date = plan.sessions[s]?.date ?? '';
      const day = rows.filter((r) => r[1]?.startsWith(date));
      expect(day[0]?.[3]).toBe(priceText(path.open[s] ?? 0));
      expect(day.at(-1)?.[3]).toBe(priceText(path.close[s] ?? 0));
    }
    expect(priceText(12 * PRICE_SCALE + 5)).toBe('12.0005');
  });

  it('is reproducible per session whatever else is generated', () => {
    const alone = Buffer.concat([...tickBuffers(plan, spec, path, 77, [plan.tickStart + 2])]).toString(
      'latin1',
    );
    const fromAll = rows
      .filter((r) => r[1]?.startsWith('2024-12-26'))
      .map((r) => r.join('\t'))
      .join('\n');
    expect(alone.trimEnd()).toBe(fromAll);
  });
});
