/**
 * Margin of one account (SPEC §8): FINRA Rule 4210 maintenance requirements with house rules on
 * top, Regulation T initial margin for new purchases and short sales. Pure decimal arithmetic:
 * every figure is computed from the positions, prices, FX rates and balances passed in.
 *
 * - equity = long MV + credit balance − debit balance (loan) − short MV, all in the account
 *   currency (MV = |quantity| × price × FX rate security currency → account currency);
 * - requirement per position:
 *   long: max(effective rate, 25%) × MV; non-marginable: 100% × MV;
 *   short, price ≥ $5: max(max(effective rate, 30%) × MV, $5 × shares);
 *   short, price < $5: max(100% × MV, $2.50 × shares);
 *   the effective rate is the highest of the security's house rate, the concentration rate (when
 *   the issuer's gross MV exceeds the threshold share of equity and the minimum value, if any) and the low-price rate (when the
 *   price is below the low-price threshold); per-share minimums are in the security's currency
 *   and converted like the MV;
 * - shortfall = max(0, requirement − equity); a call when shortfall > 0 (equal is not a call).
 *
 * A position without a price or an FX rate is never valued at zero: the account result names
 * every such position and carries no figures.
 */
import { dec, max, sum, ZERO, type Dec } from './money.ts';

export const FINRA = {
  longRate: dec('0.25'),
  shortRate: dec('0.30'),
  shortPerShare: dec('5'),
  lowPricedShortRate: dec('1'),
  lowPricedShortPerShare: dec('2.5'),
  lowPricedShortBelow: dec('5'),
  nonMarginableRate: dec('1'),
  regTInitialRate: dec('0.5'),
} as const;

export interface HouseRules {
  /** An issuer whose gross MV is more than this share of equity is concentrated (e.g. 0.25). */
  concentrationThreshold: Dec | null;
  /** Rate applied to a concentrated issuer's positions (e.g. 0.40). */
  concentrationRate: Dec | null;
  /**
   * An issuer is concentrated only when its gross MV is also more than this (account currency);
   * null or absent = no minimum.
   */
  concentrationMinValue?: Dec | null;
  /** A price below this (security currency) is low-priced (e.g. 10). */
  lowPriceBelow: Dec | null;
  /** Rate applied to low-priced positions (e.g. 0.50). */
  lowPriceRate: Dec | null;
}

export const NO_HOUSE_RULES: HouseRules = {
  concentrationThreshold: null,
  concentrationRate: null,
  lowPriceBelow: null,
  lowPriceRate: null,
};

export interface MarginPosition {
  securityId: string;
  /** Issuer for concentration; positions of one issuer are added up. */
  issuerId: string | null;
  /** Negative = short. */
  quantity: Dec | string;
  /** Latest price in the security's currency; null = not known. */
  price: Dec | string | null;
  /** Security currency → account currency; null = not known (1 when they are the same). */
  fxRate: Dec | string | null;
  marginable: boolean;
  /** The security's own house rate, if any. */
  houseRate?: Dec | string | null;
}

export interface PositionMargin {
  securityId: string;
  side: 'long' | 'short';
  marketValue: Dec;
  rate: Dec;
  requirement: Dec;
  /** Which rule set the requirement: 'finra', 'house', 'concentration', 'low_price', 'per_share', 'non_marginable'. */
  rule: string;
}

export interface AccountMargin {
  longMarketValue: Dec;
  shortMarketValue: Dec;
  creditBalance: Dec;
  debitBalance: Dec;
  equity: Dec;
  requirement: Dec;
  shortfall: Dec;
  call: boolean;
  positions: PositionMargin[];
}

export type MarginResult =
  ({ ok: true } & AccountMargin) | { ok: false; missing: { securityId: string; reason: 'price' | 'fx' }[] };

function highest(candidates: [Dec | null, string][]): [Dec, string] {
  let best: [Dec, string] = [ZERO, 'finra'];
  for (const [rate, rule] of candidates) if (rate !== null && rate.greaterThan(best[0])) best = [rate, rule];
  return best;
}

export function accountMargin(opts: {
  positions: readonly MarginPosition[];
  creditBalance: Dec | string;
  debitBalance: Dec | string;
  house?: HouseRules;
}): MarginResult {
  const house = opts.house ?? NO_HOUSE_RULES;
  const missing: { securityId: string; reason: 'price' | 'fx' }[] = [];
  for (const p of opts.positions) {
    if (dec(p.quantity).isZero()) continue;
    if (p.price === null) missing.push({ securityId: p.securityId, reason: 'price' });
    if (p.fxRate === null) missing.push({ securityId: p.securityId, reason: 'fx' });
  }
  if (missing.length > 0) return { ok: false, missing };

  const valued = opts.positions
    .map((p) => {
      const quantity = dec(p.quantity);
      const price = dec(p.price!);
      const fx = dec(p.fxRate!);
      return { p, quantity, price, fx, shares: quantity.abs(), mv: quantity.abs().times(price).times(fx) };
    })
    .filter((v) => !v.quantity.isZero());
  const longMarketValue = sum(valued.filter((v) => v.quantity.greaterThan(0)).map((v) => v.mv));
  const shortMarketValue = sum(valued.filter((v) => v.quantity.lessThan(0)).map((v) => v.mv));
  const creditBalance = dec(opts.creditBalance);
  const debitBalance = dec(opts.debitBalance);
  const equity = longMarketValue.plus(creditBalance).minus(debitBalance).minus(shortMarketValue);

  const issuerGross = new Map<string, Dec>();
  for (const v of valued) {
    const key = v.p.issuerId ?? `security:${v.p.securityId}`;
    issuerGross.set(key, (issuerGross.get(key) ?? ZERO).plus(v.mv));
  }
  const concentrated = (v: (typeof valued)[number]): boolean => {
    if (house.concentrationThreshold === null || house.concentrationRate === null) return false;
    const gross = issuerGross.get(v.p.issuerId ?? `security:${v.p.securityId}`) ?? ZERO;
    const floor = house.concentrationMinValue ?? null;
    if (floor !== null && !gross.greaterThan(floor)) return false;
    // With no positive equity every position is as concentrated as it can be.
    return !equity.greaterThan(0) || gross.greaterThan(house.concentrationThreshold.times(equity));
  };

  const positions = valued.map((v): PositionMargin => {
    const side = v.quantity.greaterThan(0) ? 'long' : 'short';
    const [houseRate, houseRule] = highest([
      [v.p.houseRate === undefined || v.p.houseRate === null ? null : dec(v.p.houseRate), 'house'],
      [concentrated(v) ? house.concentrationRate : null, 'concentration'],
      [
        house.lowPriceBelow !== null && v.price.lessThan(house.lowPriceBelow) ? house.lowPriceRate : null,
        'low_price',
      ],
    ]);
    if (!v.p.marginable) {
      return {
        securityId: v.p.securityId,
        side,
        marketValue: v.mv,
        rate: FINRA.nonMarginableRate,
        requirement: v.mv,
        rule: 'non_marginable',
      };
    }
    if (side === 'long') {
      const rate = max(FINRA.longRate, houseRate);
      const rule = houseRate.greaterThan(FINRA.longRate) ? houseRule : 'finra';
      return {
        securityId: v.p.securityId,
        side,
        marketValue: v.mv,
        rate,
        requirement: rate.times(v.mv),
        rule,
      };
    }
    const lowPriced = v.price.lessThan(FINRA.lowPricedShortBelow);
    const finraRate = lowPriced ? FINRA.lowPricedShortRate : FINRA.shortRate;
    const perShare = (lowPriced ? FINRA.lowPricedShortPerShare : FINRA.shortPerShare)
      .times(v.shares)
      .times(v.fx);
    const rate = max(finraRate, houseRate);
    const byRate = rate.times(v.mv);
    const requirement = max(byRate, perShare);
    const rule = perShare.greaterThan(byRate)
      ? 'per_share'
      : houseRate.greaterThan(finraRate)
        ? houseRule
        : 'finra';
    return { securityId: v.p.securityId, side, marketValue: v.mv, rate, requirement, rule };
  });

  const requirement = sum(positions.map((p) => p.requirement));
  const gap = requirement.minus(equity);
  const shortfall = gap.greaterThan(0) ? gap : ZERO;
  return {
    ok: true,
    longMarketValue,
    shortMarketValue,
    creditBalance,
    debitBalance,
    equity,
    requirement,
    shortfall,
    call: shortfall.greaterThan(0),
    positions,
  };
}

/** Regulation T: the equity a new purchase or short sale of this value needs up front (50%). */
export function regTInitialRequirement(orderValue: Dec | string): Dec {
  return dec(orderValue).abs().times(FINRA.regTInitialRate);
}
