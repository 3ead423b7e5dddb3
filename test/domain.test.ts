/**
 * The business rules' one home (core/domain): decimal money, variance attribution and margin,
 * each with the named scenarios of SPEC §8 worked by hand, and the invariants checked on
 * generated cases (effects sum exactly to the change; cents sum exactly to the books' change).
 */
import { describe, expect, it } from 'vitest';
import { attribute, inCents, type Effects } from '../core/domain/attribution.ts';
import { accountMargin, regTInitialRequirement, type HouseRules } from '../core/domain/margin.ts';
import { dec, roundPreservingSum, sum, toNumeric, type Dec } from '../core/domain/money.ts';

const s = (d: Dec): string => d.toFixed(2);

function effects(r: ReturnType<typeof attribute>): Effects {
  if (!r.ok) throw new Error(`missing ${r.missing.join(', ')}`);
  return r.effects;
}

describe('money', () => {
  it('is decimal: 0.1 + 0.2 = 0.3, and binary floats are refused at the door', () => {
    expect(dec('0.1').plus('0.2').toString()).toBe('0.3');
    expect(() => dec(0.1)).toThrow(/not a safe integer/);
    expect(() => dec('1,5')).toThrow(/not a decimal/);
    expect(() => dec('NaN')).toThrow(/not a decimal/);
  });

  it('rounds half away from zero, as PostgreSQL round(numeric, 2)', () => {
    expect(toNumeric(dec('2.345'))).toBe('2.35');
    expect(toNumeric(dec('-2.345'))).toBe('-2.35');
    expect(toNumeric(dec('2.344999'))).toBe('2.34');
  });

  it('rounds parts so that they add up to the rounded total, or to a given total', () => {
    const parts = ['0.333', '0.333', '0.334'].map(dec);
    const r = roundPreservingSum(parts);
    expect(r.map(s)).toEqual(['0.33', '0.33', '0.34']);
    const thirds = ['0.3333', '0.3333', '0.3334'].map(dec);
    expect(s(sum(roundPreservingSum(thirds, 2, dec('1.01'))))).toBe('1.01');
    expect(s(sum(roundPreservingSum(thirds, 2, dec('0.99'))))).toBe('0.99');
  });
});

describe('variance attribution (SPEC §8)', () => {
  it("SPEC's worked case: 100 sh at €50, EURUSD 1.10, a 2:1 split, then 250 sh at €27, EURUSD 1.05", () => {
    const e = effects(
      attribute({ q0: '100', p0: '50', x0: '1.10', q1: '250', p1: '27', x1: '1.05', splitFactor: '2' }),
    );
    expect([s(e.corporateAction), s(e.quantity), s(e.price), s(e.fx), s(e.total)]).toEqual([
      '0.00',
      '1375.00',
      '550.00',
      '-337.50',
      '1587.50',
    ]);
    expect(e.total.equals(e.mv1.minus(e.mv0))).toBe(true);
  });

  it('a new position (Q0 = 0) is all quantity effect at the start price, plus price and FX moves', () => {
    const e = effects(attribute({ q0: '0', p0: '10', x0: '1', q1: '100', p1: '12', x1: '1' }));
    expect([s(e.corporateAction), s(e.quantity), s(e.price), s(e.fx)]).toEqual([
      '0.00',
      '1000.00',
      '200.00',
      '0.00',
    ]);
    expect(s(e.total)).toBe('1200.00');
  });

  it('a full exit (Q1 = 0) needs no end price or rate, and is all quantity effect', () => {
    const e = effects(attribute({ q0: '100', p0: '10', x0: '1.2', q1: '0', p1: null, x1: null }));
    expect([s(e.quantity), s(e.price), s(e.fx), s(e.total)]).toEqual([
      '-1200.00',
      '0.00',
      '0.00',
      '-1200.00',
    ]);
  });

  it('a 1:10 reverse split restates the start; the split itself moves nothing', () => {
    const e = effects(
      attribute({ q0: '1000', p0: '0.50', x0: '1', q1: '100', p1: '5.50', x1: '1', splitFactor: '0.1' }),
    );
    expect([s(e.corporateAction), s(e.quantity), s(e.price), s(e.total)]).toEqual([
      '0.00',
      '0.00',
      '50.00',
      '50.00',
    ]);
  });

  it('a 3:1 split (a start price that does not divide): effects still sum exactly to the change', () => {
    const e = effects(
      attribute({ q0: '7', p0: '100', x0: '1.3', q1: '21', p1: '34', x1: '1.25', splitFactor: '3' }),
    );
    expect(e.total.equals(e.mv1.minus(e.mv0))).toBe(true);
    expect(e.corporateAction.isZero()).toBe(true);
    const c = inCents(e);
    expect(s(sum([c.corporateAction, c.quantity, c.price, c.fx]))).toBe(s(c.mv1.minus(c.mv0)));
  });

  it('a dividend received goes into the corporate-action effect, and the sum is the change plus it', () => {
    const e = effects(
      attribute({ q0: '100', p0: '50', x0: '1', q1: '100', p1: '49', x1: '1', distributions: '82' }),
    );
    expect([s(e.corporateAction), s(e.price), s(e.total)]).toEqual(['82.00', '-100.00', '-18.00']);
    expect(e.total.equals(e.mv1.minus(e.mv0).plus('82'))).toBe(true);
  });

  it('an FX-only move is all FX effect; a base-currency security has FX effect 0', () => {
    const fxOnly = effects(attribute({ q0: '100', p0: '50', x0: '1.10', q1: '100', p1: '50', x1: '1.05' }));
    expect([s(fxOnly.quantity), s(fxOnly.price), s(fxOnly.fx)]).toEqual(['0.00', '0.00', '-250.00']);
    const base = effects(attribute({ q0: '100', p0: '50', x0: '1', q1: '100', p1: '55', x1: '1' }));
    expect(s(base.fx)).toBe('0.00');
  });

  it('a missing price or rate is a flag naming it, never a zero', () => {
    expect(attribute({ q0: '100', p0: null, x0: '1', q1: '100', p1: '5', x1: null })).toEqual({
      ok: false,
      missing: ['price_start', 'fx_end'],
    });
  });

  it('on generated holdings: effects sum exactly to MV1 − MV0 + distributions; cents sum to the books', () => {
    let seed = 12345;
    const rnd = (): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const dp = (x: number, places: number): string => x.toFixed(places);
    for (let i = 0; i < 2000; i += 1) {
      const factors = ['1', '1', '2', '3', '0.1', '1.5', '4'];
      const h = {
        q0: rnd() < 0.1 ? '0' : dp(Math.floor(rnd() * 10_000), 0),
        p0: dp(rnd() * 500 + 0.01, 8),
        x0: dp(rnd() * 2 + 0.01, 8),
        q1: rnd() < 0.1 ? '0' : dp(Math.floor(rnd() * 10_000), 0),
        p1: dp(rnd() * 500 + 0.01, 8),
        x1: dp(rnd() * 2 + 0.01, 8),
        splitFactor: factors[Math.floor(rnd() * factors.length)]!,
        distributions: rnd() < 0.3 ? dp(rnd() * 1000, 2) : '0',
      };
      const e = effects(attribute(h));
      expect(e.total.equals(e.mv1.minus(e.mv0).plus(h.distributions))).toBe(true);
      const c = inCents(e, h.distributions);
      const four = sum([c.corporateAction, c.quantity, c.price, c.fx]);
      expect(s(four)).toBe(s(c.mv1.minus(c.mv0).plus(h.distributions)));
      for (const [exact, cents] of [
        [e.corporateAction, c.corporateAction],
        [e.quantity, c.quantity],
        [e.price, c.price],
        [e.fx, c.fx],
      ] as const) {
        expect(exact.minus(cents).abs().lessThanOrEqualTo('0.02')).toBe(true);
        if (exact.isZero()) expect(cents.isZero()).toBe(true);
      }
    }
  });
});

describe('margin (FINRA 4210 with house rules, SPEC §8)', () => {
  const long = (
    quantity: string,
    price: string,
    extra: Partial<Parameters<typeof accountMargin>[0]['positions'][0]> = {},
  ) => ({
    securityId: `S-${quantity}-${price}`,
    issuerId: null,
    quantity,
    price,
    fxRate: '1',
    marginable: true,
    ...extra,
  });

  it("seed 0's example: long 20,000, loan 10,000 → equity 10,000, requirement 5,000, no call", () => {
    const m = accountMargin({ positions: [long('200', '100')], creditBalance: '0', debitBalance: '10000' });
    if (!m.ok) throw new Error('missing');
    expect([s(m.longMarketValue), s(m.equity), s(m.requirement), s(m.shortfall), m.call]).toEqual([
      '20000.00',
      '10000.00',
      '5000.00',
      '0.00',
      false,
    ]);
  });

  it('a long that falls through 25%: 200 sh falling to 60 with a 10,000 loan is a call of 1,000', () => {
    const m = accountMargin({ positions: [long('200', '60')], creditBalance: '0', debitBalance: '10000' });
    if (!m.ok) throw new Error('missing');
    expect([s(m.equity), s(m.requirement), s(m.shortfall), m.call]).toEqual([
      '2000.00',
      '3000.00',
      '1000.00',
      true,
    ]);
  });

  it('exactly at the requirement is not a call', () => {
    // MV 13,333.33... is awkward; 200 sh at 66.666... → use MV 40,000 with loan 30,000: equity 10,000 = 25%.
    const m = accountMargin({ positions: [long('400', '100')], creditBalance: '0', debitBalance: '30000' });
    if (!m.ok) throw new Error('missing');
    expect([s(m.equity), s(m.requirement), s(m.shortfall), m.call]).toEqual([
      '10000.00',
      '10000.00',
      '0.00',
      false,
    ]);
  });

  it('a short at $5 or more that rises: max(30% × MV, $5 a share)', () => {
    // Short 1,000 at 20 with 30,000 credit: equity 10,000, requirement 6,000. It rises to 30:
    // equity 0, requirement max(9,000, 5,000) = 9,000 → call 9,000.
    const before = accountMargin({
      positions: [long('-1000', '20')],
      creditBalance: '30000',
      debitBalance: '0',
    });
    const after = accountMargin({
      positions: [long('-1000', '30')],
      creditBalance: '30000',
      debitBalance: '0',
    });
    if (!before.ok || !after.ok) throw new Error('missing');
    expect([s(before.equity), s(before.requirement), before.call]).toEqual(['10000.00', '6000.00', false]);
    expect([s(after.equity), s(after.requirement), s(after.shortfall), after.call]).toEqual([
      '0.00',
      '9000.00',
      '9000.00',
      true,
    ]);
    // At $6 the $5-a-share floor binds: 30% × 6,000 = 1,800 < 5,000.
    const floor = accountMargin({
      positions: [long('-1000', '6')],
      creditBalance: '20000',
      debitBalance: '0',
    });
    if (!floor.ok) throw new Error('missing');
    expect([s(floor.requirement), floor.positions[0]!.rule]).toEqual(['5000.00', 'per_share']);
  });

  it('a short under $5: max(100% × MV, $2.50 a share)', () => {
    const m = accountMargin({ positions: [long('-1000', '2')], creditBalance: '4000', debitBalance: '0' });
    if (!m.ok) throw new Error('missing');
    // MV 2,000; 100% = 2,000 < 2,500 per share → 2,500; equity 4,000 − 2,000 = 2,000 → call 500.
    expect([s(m.requirement), s(m.equity), s(m.shortfall), m.call]).toEqual([
      '2500.00',
      '2000.00',
      '500.00',
      true,
    ]);
  });

  it('a concentration house rate makes a call FINRA alone would not', () => {
    const house: HouseRules = {
      concentrationThreshold: dec('0.5'),
      concentrationRate: dec('0.40'),
      lowPriceBelow: null,
      lowPriceRate: null,
    };
    const positions = [long('100', '100', { issuerId: 'ISS-1' })];
    const finra = accountMargin({ positions, creditBalance: '0', debitBalance: '6500' });
    const withHouse = accountMargin({ positions, creditBalance: '0', debitBalance: '6500', house });
    if (!finra.ok || !withHouse.ok) throw new Error('missing');
    // Equity 3,500; FINRA 25% × 10,000 = 2,500 (no call); the issuer is 286% of equity → 40% = 4,000.
    expect([s(finra.requirement), finra.call]).toEqual(['2500.00', false]);
    expect([
      s(withHouse.requirement),
      s(withHouse.shortfall),
      withHouse.call,
      withHouse.positions[0]!.rule,
    ]).toEqual(['4000.00', '500.00', true, 'concentration']);
  });

  it('a non-marginable position needs 100%', () => {
    const m = accountMargin({
      positions: [long('10', '100', { marginable: false })],
      creditBalance: '0',
      debitBalance: '0',
    });
    if (!m.ok) throw new Error('missing');
    expect([s(m.requirement), m.positions[0]!.rule, m.call]).toEqual(['1000.00', 'non_marginable', false]);
  });

  it('FX converts MV and per-share minimums to the account currency', () => {
    const m = accountMargin({
      positions: [long('-100', '10', { fxRate: '1.25' })],
      creditBalance: '2000',
      debitBalance: '0',
    });
    if (!m.ok) throw new Error('missing');
    // MV 1,250; 30% = 375 < 100 × $5 × 1.25 = 625.
    expect([s(m.shortMarketValue), s(m.requirement)]).toEqual(['1250.00', '625.00']);
  });

  it('a missing price or FX rate flags the account instead of valuing at zero', () => {
    const m = accountMargin({
      positions: [
        long('10', '100'),
        { ...long('5', '1'), price: null },
        { ...long('7', '1'), securityId: 'X', fxRate: null },
      ],
      creditBalance: '0',
      debitBalance: '0',
    });
    expect(m).toEqual({
      ok: false,
      missing: [
        { securityId: 'S-5-1', reason: 'price' },
        { securityId: 'X', reason: 'fx' },
      ],
    });
  });

  it('Regulation T: a new purchase needs 50% up front', () => {
    expect(s(regTInitialRequirement('12345.67'))).toBe('6172.84');
  });
});
