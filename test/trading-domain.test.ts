/**
 * Paper trading's pure rules (core/domain/trading.ts), worked by hand: average cost and realized
 * P/L over partial sells, a short and its cover, no flips, marketability, Regulation T with the
 * deposit to the cent, the withdrawable excess, and cashMove against the SQL function's rule.
 */
import { describe, expect, it } from 'vitest';
import { accountMargin, type AccountMargin } from '../core/domain/margin.ts';
import { dec, type Dec } from '../core/domain/money.ts';
import {
  applyFill,
  cashDelta,
  cashMove,
  FLAT,
  isMarketable,
  notional,
  regTCheck,
  replayFills,
  unrealizedPnl,
  withdrawable,
  type FillResult,
  type Holding,
} from '../core/domain/trading.ts';

const ok = (r: FillResult): { holding: Holding; realizedPnl: Dec | null } => {
  if (!r.ok) throw new Error(r.message);
  return r;
};
const s = (d: Dec | null): string | null => (d === null ? null : d.toFixed());

function margin(positions: { q: string; p: string }[], cash: string, loan: string): AccountMargin {
  const r = accountMargin({
    positions: positions.map((x, i) => ({
      securityId: `S${i}`,
      issuerId: null,
      quantity: x.q,
      price: x.p,
      fxRate: '1',
      marginable: true,
    })),
    creditBalance: cash,
    debitBalance: loan,
  });
  if (!r.ok) throw new Error('unpriced');
  return r;
}

describe('average cost and realized P/L', () => {
  it('buys average, partial sells realize against the average and keep it', () => {
    let h = ok(applyFill(FLAT, 'BUY', '100', '10')).holding;
    h = ok(applyFill(h, 'BUY', '50', '13')).holding;
    // (100·10 + 50·13) / 150 = 11.
    expect([s(h.quantity), s(h.costBasis)]).toEqual(['150', '11']);
    const sell1 = ok(applyFill(h, 'SELL', '40', '12.5'));
    expect(s(sell1.realizedPnl)).toBe('60'); // 40 × (12.5 − 11)
    expect([s(sell1.holding.quantity), s(sell1.holding.costBasis)]).toEqual(['110', '11']);
    const sell2 = ok(applyFill(sell1.holding, 'SELL', '110', '9'));
    expect(s(sell2.realizedPnl)).toBe('-220'); // 110 × (9 − 11)
    expect(sell2.holding.quantity.isZero()).toBe(true);
  });

  it('keeps the average cost to 8 decimals, half away from zero', () => {
    let h = ok(applyFill(FLAT, 'BUY', '3', '10')).holding;
    h = ok(applyFill(h, 'BUY', '3', '10.00000001')).holding;
    // 10.000000005 → 10.00000001
    expect(h.costBasis.toFixed()).toBe('10.00000001');
    h = ok(applyFill(ok(applyFill(FLAT, 'BUY', '3', '1')).holding, 'BUY', '6', '2')).holding;
    expect(h.costBasis.toFixed()).toBe('1.66666667');
  });

  it('a short averages its proceeds; a cover realizes proceeds − price', () => {
    let h = ok(applyFill(FLAT, 'SHORT', '100', '50')).holding;
    h = ok(applyFill(h, 'SHORT', '100', '40')).holding;
    expect([s(h.quantity), s(h.costBasis)]).toEqual(['-200', '45']);
    const c = ok(applyFill(h, 'COVER', '50', '30'));
    expect(s(c.realizedPnl)).toBe('750'); // 50 × (45 − 30)
    expect(s(c.holding.quantity)).toBe('-150');
    const loss = ok(applyFill(c.holding, 'COVER', '150', '47.5'));
    expect(s(loss.realizedPnl)).toBe('-375'); // 150 × (45 − 47.5)
    expect(loss.holding.quantity.isZero()).toBe(true);
  });

  it('realized P/L is rounded to the cent', () => {
    const h = ok(applyFill(FLAT, 'BUY', '3', '1.005')).holding;
    expect(s(ok(applyFill(h, 'SELL', '1', '1.0101')).realizedPnl)).toBe('0.01'); // 0.0051
  });

  it('never flips a position in one order', () => {
    const long = ok(applyFill(FLAT, 'BUY', '10', '5')).holding;
    const short = ok(applyFill(FLAT, 'SHORT', '10', '5')).holding;
    expect(applyFill(long, 'SELL', '11', '5')).toMatchObject({ ok: false, code: 'insufficient_long' });
    expect(applyFill(FLAT, 'SELL', '1', '5')).toMatchObject({ ok: false, code: 'no_long_position' });
    expect(applyFill(short, 'SELL', '1', '5')).toMatchObject({ ok: false, code: 'no_long_position' });
    expect(applyFill(short, 'COVER', '10.00000001', '5')).toMatchObject({
      ok: false,
      code: 'insufficient_short',
    });
    expect(applyFill(long, 'COVER', '1', '5')).toMatchObject({ ok: false, code: 'no_short_position' });
    expect(applyFill(short, 'BUY', '1', '5')).toMatchObject({ ok: false, code: 'short_position_open' });
    expect(applyFill(long, 'SHORT', '1', '5')).toMatchObject({ ok: false, code: 'long_position_open' });
    expect(() => applyFill(FLAT, 'BUY', '0', '5')).toThrow(RangeError);
  });

  it('replayFills gives the last position, or the first refusal', () => {
    const r = replayFills([
      { side: 'BUY', quantity: '10', price: '100' },
      { side: 'SELL', quantity: '10', price: '90' },
      { side: 'SHORT', quantity: '5', price: '80' },
    ]);
    expect(r.ok && [s(r.holding.quantity), s(r.holding.costBasis)]).toEqual(['-5', '80']);
    expect(replayFills([{ side: 'SELL', quantity: '1', price: '1' }])).toMatchObject({ ok: false });
  });

  it('unrealized P/L: quantity × (price − cost), a short gains when the price falls', () => {
    expect(unrealizedPnl('100', '150', '175.5').toFixed()).toBe('2550');
    expect(unrealizedPnl('-100', '45', '40').toFixed()).toBe('500');
  });
});

describe('prices and cash', () => {
  it('a limit is marketable for BUY/COVER at or below it, SELL/SHORT at or above it', () => {
    expect(isMarketable('BUY', '100', '100')).toBe(true);
    expect(isMarketable('BUY', '100.01', '100')).toBe(false);
    expect(isMarketable('COVER', '99', '100')).toBe(true);
    expect(isMarketable('SELL', '100', '100')).toBe(true);
    expect(isMarketable('SELL', '99.99', '100')).toBe(false);
    expect(isMarketable('SHORT', '101', '100')).toBe(true);
  });

  it('notional is quantity × price × FX to the cent; BUY/COVER pay, SELL/SHORT receive', () => {
    expect(notional('3', '33.333', '1').toFixed(2)).toBe('100.00'); // 99.999
    expect(notional('10', '110', dec(1).dividedBy('1.1')).toFixed(2)).toBe('1000.00');
    expect(cashDelta('BUY', dec('5')).toFixed()).toBe('-5');
    expect(cashDelta('COVER', dec('5')).toFixed()).toBe('-5');
    expect(cashDelta('SHORT', dec('5')).toFixed()).toBe('5');
  });

  it('cashMove: a credit pays the loan first, a debit spends cash first', () => {
    const m = (c: string, l: string, a: string) => {
      const r = cashMove({ cash: c, loan: l }, a);
      return [r.cash.toFixed(), r.loan.toFixed()];
    };
    expect(m('0', '100', '30')).toEqual(['0', '70']);
    expect(m('0', '100', '130')).toEqual(['30', '0']);
    expect(m('50', '0', '-80')).toEqual(['0', '30']);
    expect(m('50', '0', '-20')).toEqual(['30', '0']);
  });
});

describe('Regulation T', () => {
  it("seed 0's account: 10,000 cash buys exactly 20,000 (equity 10,000 = 50%)", () => {
    const before = margin([], '10000', '0');
    const after = margin([{ q: '200', p: '100' }], '0', '10000');
    expect(regTCheck({ before, after, orderValue: dec('20000') })).toMatchObject({ ok: true });
    const more = margin([{ q: '201', p: '100' }], '0', '10100');
    const r = regTCheck({ before, after: more, orderValue: dec('20100') });
    expect(r.ok).toBe(false);
    expect(r.depositRequired.toFixed(2)).toBe('50.00'); // 50% of 20,100 = 10,050 needed; equity 10,000
  });

  it('the deposit is rounded up to the cent', () => {
    const before = margin([], '0', '0');
    const after = margin([{ q: '1', p: '0.01' }], '0', '0.01');
    const r = regTCheck({ before, after, orderValue: dec('0.01') });
    expect(r.depositRequired.toFixed(2)).toBe('0.01'); // needs 0.005
  });

  it('existing positions keep their maintenance requirement; never less than maintenance after', () => {
    // Held: 100 @ 100 long (req 2,500); buying 100 more @ 100 needs 2,500 + 5,000 = 7,500 (equity 8,000).
    const before = margin([{ q: '100', p: '100' }], '0', '2000');
    const after = margin([{ q: '200', p: '100' }], '0', '12000');
    const r = regTCheck({ before, after, orderValue: dec('10000') });
    expect(r.required.toFixed()).toBe('7500');
    expect(r.depositRequired.toFixed(2)).toBe('0.00');
    expect(r.ok).toBe(true);
  });

  it('withdrawable is the excess over max(maintenance, 50% of gross MV), never negative', () => {
    expect(withdrawable(margin([], '1234.567', '0')).toFixed(2)).toBe('1234.56');
    // LMV 20,000, loan 5,000 → equity 15,000; max(5,000, 10,000) → 5,000.
    expect(withdrawable(margin([{ q: '200', p: '100' }], '0', '5000')).toFixed(2)).toBe('5000.00');
    expect(withdrawable(margin([{ q: '200', p: '100' }], '0', '15000')).toFixed(2)).toBe('0.00');
  });
});
