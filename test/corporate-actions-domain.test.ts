/**
 * core/domain/corporate-actions.ts: the arithmetic of splits with cash in lieu, dividends, coupons,
 * maturities, the average-cost replay and the client position after a ledger row, by hand-worked
 * cases, plus a seeded property test (a split applied then reversed restores the position; whole
 * shares kept + fraction = Q·r; total cost of kept shares unchanged up to the fraction's share).
 */
import { describe, expect, it } from 'vitest';
import {
  actionEffect,
  convertCash,
  couponEffect,
  dividendEffect,
  maturityEffect,
  positionAfter,
  replayPosition,
  splitEffect,
  splitShares,
  type PositionEvent,
} from '../core/domain/corporate-actions.ts';
import { dec } from '../core/domain/money.ts';

const s = (v: { toFixed(n: number): string }, n = 2): string => v.toFixed(n);

describe('splits', () => {
  it('2:1 split: quantity doubles, total cost unchanged, no cash', () => {
    const e = splitEffect({ quantity: dec(100), cost: dec('5000.00') }, dec(2), null);
    expect(s(e.quantityDelta, 0)).toBe('100');
    expect(s(e.costDelta)).toBe('0.00');
    expect(s(e.cashAmount)).toBe('0.00');
  });

  it('1:10 reverse split of 155 shares: 15 kept, 0.5 paid in lieu at the ex-date price', () => {
    // 155 sh, total cost 1,550.00 (10.00/sh) → 15.5 new sh at 100.00/sh; 15 kept, 0.5 × 98.00 = 49.00.
    const e = splitEffect({ quantity: dec(155), cost: dec('1550.00') }, dec('0.1'), dec('98'));
    expect(s(e.quantityDelta, 8)).toBe('-140.00000000');
    expect(s(e.cashInLieu)).toBe('49.00');
    expect(s(e.cashAmount)).toBe('49.00');
    // The fraction's share of cost: 1550 × 0.5 / 15.5 = 50.00; kept shares keep 1,500.00.
    expect(s(e.costDelta)).toBe('-50.00');
  });

  it('a short under a reverse split rounds toward zero and pays the fraction', () => {
    const e = splitEffect({ quantity: dec(-155), cost: dec('-1550.00') }, dec('0.1'), dec('98'));
    expect(s(e.quantityDelta, 0)).toBe('140'); // −155 → −15
    expect(s(e.cashInLieu)).toBe('-49.00'); // the short pays for the half share it owes
    expect(s(e.costDelta)).toBe('50.00');
  });

  it('an odd 3:2 split on 5 shares leaves 7 and half a share', () => {
    const { kept, fraction } = splitShares(dec(5), dec('1.5'));
    expect(kept.toString()).toBe('7');
    expect(fraction.toString()).toBe('0.5');
  });

  it('a fraction without a price is refused, not guessed', () => {
    expect(() => splitEffect({ quantity: dec(155), cost: dec(0) }, dec('0.1'), null)).toThrow(/price/);
    expect(() => splitEffect({ quantity: dec(1), cost: dec(0) }, dec(0), dec(1))).toThrow(/ratio/);
  });
});

describe('cash distributions', () => {
  it('a dividend on a long and on a short (owed)', () => {
    expect(s(dividendEffect(dec(300), dec('0.24')).cashAmount)).toBe('72.00');
    expect(s(dividendEffect(dec(-300), dec('0.24')).cashAmount)).toBe('-72.00');
    // Half a cent rounds away from zero, as SQL round(numeric, 2).
    expect(s(dividendEffect(dec(1), dec('0.005')).cashAmount)).toBe('0.01');
    expect(s(dividendEffect(dec(-1), dec('0.005')).cashAmount)).toBe('-0.01');
  });

  it('a coupon pays units × face × rate ÷ frequency', () => {
    // 50 bonds of 1,000 face, 5% semi-annual: 50 × 1000 × 0.025 = 1,250.00
    expect(s(couponEffect(dec(50), dec(1000), dec('0.025')).cashAmount)).toBe('1250.00');
  });

  it('a maturity pays par and closes the position with all its cost', () => {
    const e = maturityEffect({ quantity: dec(50), cost: dec('49000.00') }, dec(1000), dec(1));
    expect(s(e.cashAmount)).toBe('50000.00');
    expect(s(e.quantityDelta, 0)).toBe('-50');
    expect(s(e.costDelta)).toBe('-49000.00');
  });

  it('actionEffect names what is missing', () => {
    const pos = { quantity: dec(10), cost: dec(100) };
    expect(() =>
      actionEffect({ actionType: 'COUPON', ratio: null, amount: dec(1), faceValue: null }, pos, null),
    ).toThrow(/face value/);
    expect(() =>
      actionEffect({ actionType: 'DIVIDEND', ratio: null, amount: null, faceValue: null }, pos, null),
    ).toThrow(/amount/);
  });

  it('converts cash at a rate to the cent', () => {
    expect(s(convertCash(dec('72.00'), dec('1.0837')))).toBe('78.03');
    expect(s(convertCash(dec('-72.00'), dec('1.0837')))).toBe('-78.03');
  });
});

describe('replay and client positions', () => {
  it('average cost: adds, partial sells, crossing zero, ledger rows before the same day’s trades', () => {
    const ev: PositionEvent[] = [
      { kind: 'trade', date: '2025-01-02', seq: 1, type: 'BUY', quantity: dec(100), price: dec(10) },
      { kind: 'trade', date: '2025-01-03', seq: 2, type: 'BUY', quantity: dec(100), price: dec(20) },
      { kind: 'trade', date: '2025-01-06', seq: 3, type: 'SELL', quantity: dec(50), price: dec(30) },
      // A 2:1 split on 2025-01-07, then a trade that day on the new basis.
      { kind: 'trade', date: '2025-01-07', seq: 4, type: 'SELL', quantity: dec(100), price: dec(8) },
      { kind: 'ledger', date: '2025-01-07', seq: 9, quantityDelta: dec(150), costDelta: dec(0) },
    ];
    const p = replayPosition(ev);
    // 200 @ 3000 → sell 50: 150 @ 2250 → split: 300 @ 2250 → sell 100: 200 @ 1500.
    expect(p.quantity.toString()).toBe('200');
    expect(s(p.cost)).toBe('1500.00');
    const crossed = replayPosition([
      { kind: 'trade', date: '2025-01-02', seq: 1, type: 'BUY', quantity: dec(10), price: dec(10) },
      { kind: 'trade', date: '2025-01-03', seq: 2, type: 'SELL', quantity: dec(30), price: dec(12) },
    ]);
    expect(crossed.quantity.toString()).toBe('-20');
    expect(s(crossed.cost)).toBe('-240.00');
    const short = replayPosition([
      { kind: 'trade', date: '2025-01-02', seq: 1, type: 'SHORT', quantity: dec(10), price: dec(10) },
      { kind: 'trade', date: '2025-01-03', seq: 2, type: 'COVER', quantity: dec(4), price: dec(12) },
    ]);
    expect(short.quantity.toString()).toBe('-6');
    expect(s(short.cost)).toBe('-60.00');
  });

  it('a split on a client position divides the per-share cost by r; a close deletes it', () => {
    const after = positionAfter({ quantity: dec(155), costBasis: dec(10) }, dec(-140), dec('-50.00'));
    expect(after?.quantity.toString()).toBe('15');
    expect(after?.costBasis.toFixed(8)).toBe('100.00000000');
    expect(positionAfter({ quantity: dec(50), costBasis: dec(980) }, dec(-50), dec('-49000'))).toBeNull();
    // Reversing a maturity re-opens it at its cost.
    const back = positionAfter(null, dec(50), dec('49000'));
    expect(back?.quantity.toString()).toBe('50');
    expect(back?.costBasis.toFixed(2)).toBe('980.00');
    const short = positionAfter({ quantity: dec(-100), costBasis: dec(40) }, dec(-100), dec(0));
    expect(short?.quantity.toString()).toBe('-200');
    expect(short?.costBasis.toFixed(2)).toBe('20.00');
  });
});

describe('property: splits on random positions', () => {
  it('kept + fraction = Q·r, |kept| ≤ |Q·r|, cost kept = cost × kept/(Q·r), and reversal restores', () => {
    let seed = 12345;
    const rnd = (n: number): number => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed % n;
    };
    const ratios = ['2', '3', '1.5', '0.5', '0.1', '0.25', '0.3333333333', '4'];
    for (let i = 0; i < 2000; i++) {
      const q = dec(rnd(20000) - 10000 || 7);
      const r = dec(ratios[rnd(ratios.length)]!);
      const cb = dec(rnd(50000) + 1).dividedBy(100);
      const cost = q.times(cb).toDecimalPlaces(2);
      const price = dec(rnd(90000) + 1).dividedBy(100);
      const e = splitEffect({ quantity: q, cost }, r, price);
      const { kept, fraction } = splitShares(q, r);
      expect(kept.plus(fraction).equals(q.times(r))).toBe(true);
      expect(kept.abs().lessThanOrEqualTo(q.times(r).abs())).toBe(true);
      expect(q.plus(e.quantityDelta).equals(kept)).toBe(true);
      // Cash in lieu has the position's sign.
      if (!e.cashInLieu.isZero()) expect(e.cashInLieu.isNegative()).toBe(q.isNegative());
      const expectedKeptCost = cost.times(kept).dividedBy(q.times(r));
      expect(cost.plus(e.costDelta).minus(expectedKeptCost).abs().lessThanOrEqualTo('0.005')).toBe(true);
      // A client position applied then reversed comes back (cost basis to 1e-6 per share).
      const pos = { quantity: q, costBasis: cb };
      const applied = positionAfter(pos, e.quantityDelta, e.costDelta);
      const back = positionAfter(applied, e.quantityDelta.negated(), e.costDelta.negated());
      expect(back?.quantity.equals(q)).toBe(true);
      expect(back!.costBasis.minus(cb).abs().lessThan('0.000001')).toBe(true);
    }
  });
});
