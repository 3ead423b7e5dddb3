/**
 * The reference of variance.quarterly's attribution (issue 9): one variance row from its inputs
 * (BooksRepository.varianceInputs) through core/domain attribute() and inCents() (SPEC §8), in
 * decimal.js. Production computes the same rows in one SQL statement
 * (BooksRepository.writeVariance); test/variance-sql.test.ts proves the two agree to the digit.
 */
import { attribute, inCents } from '../core/domain/attribution.ts';
import { dec, ONE, round, type Dec } from '../core/domain/money.ts';
import type { VarianceInputRow, VarianceRowInsert } from '../core/db/repositories/books.ts';

/** The split factor f (product of the ratios) and the part of it up to and including `through`. */
function splitFactors(r: VarianceInputRow, through: string | null): { f: Dec; before: Dec } {
  let f = ONE;
  let before = ONE;
  (r.splitRatios ?? []).forEach((ratio, i) => {
    f = f.times(ratio);
    if (through !== null && (r.splitDates?.[i] ?? '') <= through) before = before.times(ratio);
  });
  return { f, before };
}

const text = (v: Dec | null): string | null => (v === null ? null : v.toFixed());

/**
 * One variance row from its inputs through attribute() and inCents() (SPEC §8). Prices enter the
 * attribution per unit of quantity (local price × face/100 for bonds), so MV₀ and MV₁ are exactly
 * the holdings' market values; the stored prices are the local prices of the holdings.
 */
export function varianceRow(r: VarianceInputRow): VarianceRowInsert {
  const unit = dec(r.unit);
  const { f, before } = splitFactors(r, r.firstTradeDate);
  const q0 = r.q0 ?? '0';
  const q1 = r.q1 ?? '0';
  let p0: Dec | null;
  let x0: string | null;
  if (r.inStart) {
    p0 = r.p0 === null ? null : dec(r.p0);
    x0 = r.x0;
  } else {
    // A new position: the period-start close, else the first trade's price restated on the
    // period-start basis (times the splits that went ex up to the trade).
    p0 =
      r.close0 !== null
        ? dec(r.close0)
        : r.firstTradePrice !== null
          ? dec(r.firstTradePrice).times(before)
          : null;
    x0 = r.fx0;
  }
  const p1 = r.p1 === null ? null : dec(r.p1);
  const distributions = round(dec(r.distributions ?? '0'));
  const a = attribute({
    q0,
    p0: p0 === null ? null : p0.times(unit),
    x0,
    q1,
    p1: p1 === null ? null : p1.times(unit),
    x1: r.x1,
    splitFactor: f,
    distributions,
  });
  const base = {
    securityId: r.securityId,
    qtyStart: q0,
    qtyEnd: q1,
    priceStart: text(p0),
    priceEnd: text(p1),
    fxStart: x0,
    fxEnd: r.x1,
    splitFactor: f.toDecimalPlaces(10).toFixed(),
  };
  const flags = [...(a.ok ? [] : a.missing), ...(r.distributionFxMissing ? ['fx_distribution'] : [])];
  if (!a.ok || flags.length) {
    return {
      ...base,
      mvStart: null,
      mvEnd: null,
      priceEffect: null,
      qtyEffect: null,
      fxEffect: null,
      corpActionEffect: null,
      totalPnl: null,
      distributions: r.distributionFxMissing ? '0' : distributions.toFixed(2),
      flag: flags.join(','),
    };
  }
  const c = inCents(a.effects, distributions);
  return {
    ...base,
    mvStart: c.mv0.toFixed(2),
    mvEnd: c.mv1.toFixed(2),
    priceEffect: c.price.toFixed(2),
    qtyEffect: c.quantity.toFixed(2),
    fxEffect: c.fx.toFixed(2),
    corpActionEffect: c.corporateAction.toFixed(2),
    totalPnl: c.total.toFixed(2),
    distributions: distributions.toFixed(2),
    flag: null,
  };
}
