/**
 * corporate-actions.apply (issue 9): applies every corporate action whose ex-date has come to the
 * portfolios' books and to client accounts, exactly once per action revision, and reverses the
 * effect of corrected or cancelled revisions. Three phases, each step its own transaction on one
 * (target, security) under an advisory lock (repos.ledger.inTarget), the ledger row written in the
 * same transaction as the effect, so a rerun, a second worker or a resumed run skips what is done:
 *
 * 1. Reversals: every APPLY of a revision that is no longer current (corrected: the revision moved
 *    on; cancelled by the provider) gets a REVERSE row that negates it exactly; a client position
 *    is restored, and cash already paid is taken back (an unpaid APPLY and its REVERSE are both
 *    settled with nothing moved).
 * 2. Applies, in ex-date order then action id: for each target holding the security at the end of
 *    the day before the ex-date (trades dated before it + earlier ledger deltas), the effect
 *    computed by core/domain/corporate-actions.ts; client positions are updated in the same
 *    transaction. A split leaving a fraction needs the ex-date close (else the first close after
 *    it up to asOf); without one that action is reported as a problem and left for a later run.
 * 3. Payments: ledger rows whose payment date (ex-date when none) is ≤ asOf. Client accounts: the
 *    cash, converted at the payment date's FX rate (direct or inverse pair), moves through
 *    account_cash_move and the row's paid_at is set in the same transaction (`paid_at is null` is
 *    the guard); a missing rate leaves the row unpaid and reported. Portfolios keep no cash
 *    account: their rows are marked paid in one statement.
 */
import { UnrecoverableError } from 'bullmq';
import { isValidDate, sessionDateOf } from '../../core/calendar/nyse.ts';
import type { DueAction, LedgerRow, Target, TargetTx } from '../../core/db/repositories/ledger.ts';
import type { Deps } from '../../core/deps.ts';
import {
  actionEffect,
  convertCash,
  positionAfter,
  replayPosition,
  splitNeedsPrice,
  type ActionType,
  type PositionEvent,
} from '../../core/domain/corporate-actions.ts';
import { dec, decOrNull, round, type Dec } from '../../core/domain/money.ts';
import type { JobPayload } from '../catalogue.ts';
import type { JobContext } from '../types.ts';

const TYPES: readonly ActionType[] = ['STOCK_SPLIT', 'REVERSE_SPLIT', 'DIVIDEND', 'COUPON', 'MATURITY'];
const MAX_PROBLEMS = 200;

export interface ApplyProblem {
  actionId: string;
  /** `portfolio PORT-001` or `account 12`, when the problem is one target's. */
  target?: string;
  reason: string;
}

export interface CorporateActionsApplyResult {
  asOf: string;
  /** Actions due (ex-date ≤ asOf, active) that were considered. */
  actions: number;
  applied: Record<ActionType, number>;
  reversed: Record<ActionType, number>;
  /** Ledger rows whose cash was paid (client accounts: cash moved; portfolios: marked paid). */
  paid: Record<ActionType, number>;
  /** Targets already done (applied, reversed or paid by an earlier or concurrent run). */
  skipped: Record<ActionType, number>;
  /**
   * Later APPLY rows reversed because an earlier action's effect on the same position changed (a
   * correction, a cancellation, or an earlier action applied late); they are applied again on the
   * new basis (the next restatement), in the same run when due.
   */
  restated: Record<ActionType, number>;
  /** Problems (missing price, missing FX rate, missing terms); at most 200 listed. */
  problems: ApplyProblem[];
  problemCount: number;
}

const counts = (): Record<ActionType, number> =>
  Object.fromEntries(TYPES.map((t) => [t, 0])) as Record<ActionType, number>;

const describe = (t: Target): string =>
  t.portfolioId !== null ? `portfolio ${t.portfolioId}` : `account ${t.accountId}`;

const text = (v: Dec, places: number): string => round(v, places).toFixed(places);

export async function corporateActionsApply(
  deps: Deps,
  payload: JobPayload<'corporate-actions.apply'>,
  ctx: JobContext,
): Promise<CorporateActionsApplyResult> {
  if (payload.asOf !== undefined && !isValidDate(payload.asOf)) {
    throw new UnrecoverableError(`asOf: not a calendar date: ${payload.asOf}`);
  }
  const asOf = payload.asOf ?? sessionDateOf(deps.clock.now());
  const ids = payload.actionIds ?? null;
  const ledger = deps.repos.ledger;
  const { actions, unknown } = await ledger.dueActions(asOf, ids);
  if (unknown.length > 0) {
    throw new UnrecoverableError(`actionIds: unknown action(s) ${unknown.slice(0, 20).join(', ')}`);
  }
  const result: CorporateActionsApplyResult = {
    asOf,
    actions: actions.length,
    applied: counts(),
    reversed: counts(),
    paid: counts(),
    skipped: counts(),
    restated: counts(),
    problems: [],
    problemCount: 0,
  };
  const problem = async (p: ApplyProblem): Promise<void> => {
    result.problemCount += 1;
    if (result.problems.length >= MAX_PROBLEMS) return; // counted, not listed nor logged again
    result.problems.push(p);
    await ctx.log(`problem: ${p.actionId}${p.target ? ` ${p.target}` : ''}: ${p.reason}`);
  };
  const jobId = ctx.id;
  const countRestated = async (rows: LedgerRow[], target: Target): Promise<void> => {
    for (const r of rows) {
      result.restated[r.actionType] += 1;
      await ctx.log(
        `restated action #${r.actionId} (ex ${r.exDate}) on ${describe(target)}: an earlier action's effect changed`,
      );
    }
  };

  // 1. Reversals of corrected or cancelled revisions.
  const stale = await ledger.staleApplies(ids);
  await ctx.log(
    `asOf ${asOf}: ${stale.length} applied revision(s) to reverse, ${actions.length} action(s) due`,
  );
  for (const s of stale) {
    const done = await ledger.inTarget(s.target, s.securityId, async (tx) => {
      // Later actions on this position were entitled on the quantity this one left: restate them.
      const later = await restateLater(tx, s.exDate, s.target, jobId);
      return { reversed: await reverseApply(tx, s.ledgerId, s.target, jobId), later };
    });
    await countRestated(done.later, s.target);
    if (done.reversed) {
      result.reversed[s.actionType] += 1;
      await ctx.log(
        `reversed ${s.actionId} revision ${s.revision} (${s.status === 'CANCELLED' ? 'cancelled' : 'corrected'}) on ${describe(s.target)}`,
      );
    } else result.skipped[s.actionType] += 1;
  }
  await ctx.progress(5, { phase: 'reverse', reversed: stale.length });

  // 2. Applies, in ex-date order.
  for (const [i, action] of actions.entries()) {
    const targets = await ledger.targetsOf(action);
    const split = action.actionType === 'STOCK_SPLIT' || action.actionType === 'REVERSE_SPLIT';
    const priced = split ? await ledger.exDatePrice(action.securityId, action.exDate, asOf) : null;
    let applied = 0;
    let skipped = 0;
    let invalid = 0;
    const missingPrice: string[] = [];
    for (const [k, { target, applied: already }] of targets.entries()) {
      if (k > 0 && k % 500 === 0) {
        await ctx.progress(5 + Math.floor(((i + k / targets.length) / actions.length) * 85), {
          phase: 'apply',
          action: action.actionId,
          targets: `${k}/${targets.length}`,
        });
      }
      if (already) {
        skipped += 1;
        continue;
      }
      const outcome = await ledger.inTarget(target, action.securityId, (tx) =>
        applyOne(tx, action, target, priced?.price ?? null, jobId),
      );
      await countRestated(outcome.restated, target);
      if (outcome.kind === 'applied') applied += 1;
      else if (outcome.kind === 'skipped') skipped += 1;
      else if (outcome.kind === 'no-price') missingPrice.push(describe(target));
      else if (outcome.kind === 'invalid') {
        invalid += 1;
        await problem({ actionId: action.actionId, target: describe(target), reason: outcome.reason });
      }
    }
    if (missingPrice.length === 0 && invalid === 0) {
      await ledger.markProcessed(action.id, action.revision, targets.length, jobId);
    }
    if (missingPrice.length > 0) {
      await problem({
        actionId: action.actionId,
        reason: `no daily close for ${action.ticker} on or after the ex-date ${action.exDate} up to ${asOf}: cash in lieu cannot be priced, not applied to ${missingPrice.length} target(s) (${missingPrice.slice(0, 5).join(', ')}${missingPrice.length > 5 ? ', …' : ''})`,
      });
    }
    result.applied[action.actionType] += applied;
    result.skipped[action.actionType] += skipped;
    await ctx.log(
      `${action.actionId} ${action.actionType} ${action.ticker} ex ${action.exDate} revision ${action.revision}: applied to ${applied} target(s), ${skipped} already applied` +
        (priced && priced.date !== action.exDate ? ` (cash in lieu priced at the ${priced.date} close)` : ''),
    );
    await ctx.progress(5 + Math.floor(((i + 1) / Math.max(actions.length, 1)) * 85), {
      phase: 'apply',
      action: action.actionId,
      done: i + 1,
      of: actions.length,
    });
  }

  // 3. Payments.
  const portfolioPaid = await ledger.markPortfolioRowsPaid(asOf);
  for (const [type, n] of Object.entries(portfolioPaid)) result.paid[type as ActionType] += n;
  const unpaid = await ledger.unpaidAccountRows(asOf);
  const paidByAction = new Map<string, { accounts: number; total: Map<string, Dec> }>();
  for (const row of unpaid) {
    const date = row.paymentDate;
    const rate = await ledger.fxRateOn(row.currency, row.accountCurrency, date);
    if (rate === null && !dec(row.cashAmount).isZero()) {
      await problem({
        actionId: row.actionId,
        target: `account ${row.accountId}`,
        reason: `no FX rate ${row.currency}/${row.accountCurrency} (or its inverse) on the payment date ${date}: left unpaid`,
      });
      continue;
    }
    const outcome = await ledger.inTarget(
      { portfolioId: null, accountId: row.accountId },
      row.securityId,
      (tx) => payOne(tx, row.ledgerId, row.accountId, row.accountCurrency, rate),
    );
    if (outcome === null) result.skipped[row.actionType] += 1;
    else if (outcome !== 'zero') {
      result.paid[row.actionType] += 1;
      const p = paidByAction.get(row.actionId) ?? { accounts: 0, total: new Map<string, Dec>() };
      p.accounts += 1;
      p.total.set(row.accountCurrency, (p.total.get(row.accountCurrency) ?? dec(0)).plus(dec(outcome)));
      paidByAction.set(row.actionId, p);
    }
  }
  for (const [actionId, p] of paidByAction) {
    const totals = [...p.total].map(([ccy, v]) => `${v.toFixed(2)} ${ccy}`).join(', ');
    await ctx.log(`paid ${actionId} to ${p.accounts} account(s): ${totals}`);
  }
  if (Object.keys(portfolioPaid).length > 0) {
    await ctx.log(`portfolio ledger rows marked paid: ${JSON.stringify(portfolioPaid)}`);
  }
  await ctx.progress(100, {
    phase: 'done',
    applied: sumOf(result.applied),
    reversed: sumOf(result.reversed),
    paid: sumOf(result.paid),
    problems: result.problemCount,
  });
  return result;
}

const sumOf = (r: Record<ActionType, number>): number => TYPES.reduce((s, t) => s + r[t], 0);

type ApplyOutcome = { restated: LedgerRow[] } & (
  | { kind: 'applied'; row: LedgerRow }
  | { kind: 'skipped' }
  | { kind: 'flat' }
  | { kind: 'no-price' }
  | { kind: 'invalid'; reason: string }
);

/** One action on one target, inside its locked transaction. */
async function applyOne(
  tx: TargetTx,
  action: DueAction,
  target: Target,
  price: string | null,
  jobId: string,
): Promise<ApplyOutcome> {
  const restated: LedgerRow[] = [];
  const live = await tx.liveApply(action.id);
  if (live && live.actionRevision === action.revision) return { kind: 'skipped', restated };
  if (live) {
    // A revision the reversal phase has not seen (corrected since the run began): reverse it here.
    restated.push(...(await restateLater(tx, live.exDate, target, jobId)));
    await reverseApply(tx, live.id, target, jobId);
  }
  // The entitlement basis, read under the lock: trades before the ex-date and earlier ledger rows.
  const events: PositionEvent[] = [
    ...(await tx.tradesBefore(action.exDate)).map((t): PositionEvent => ({
      kind: 'trade',
      date: t.txnDate,
      seq: t.id,
      type: t.txnType,
      quantity: dec(t.quantity),
      price: dec(t.price),
    })),
    ...(await tx.ledgerBefore(action.exDate)).map((l): PositionEvent => ({
      kind: 'ledger',
      date: l.exDate,
      seq: l.id,
      quantityDelta: dec(l.quantityDelta),
      costDelta: dec(l.costDelta),
    })),
  ];
  const replayed = replayPosition(events);
  if (replayed.quantity.isZero()) return { kind: 'flat', restated };
  const ratio = decOrNull(action.ratio);
  const split = action.actionType === 'STOCK_SPLIT' || action.actionType === 'REVERSE_SPLIT';
  if (split && ratio !== null && splitNeedsPrice(replayed.quantity, ratio) && price === null) {
    return { kind: 'no-price', restated };
  }
  const terms = {
    actionType: action.actionType,
    ratio,
    amount: decOrNull(action.amount),
    faceValue: decOrNull(action.faceValue),
  };
  try {
    actionEffect(terms, replayed, decOrNull(price));
  } catch (err) {
    if (err instanceof RangeError) return { kind: 'invalid', reason: err.message, restated };
    throw err;
  }
  // Actions with later ex-dates already applied here were entitled without this one: reverse them
  // first (the run applies them again when it reaches them, on the new basis).
  restated.push(...(await restateLater(tx, action.exDate, target, jobId)));
  // A client position's cost is its per-share cost basis (the positions row is the account's
  // book); a portfolio's is the average cost replayed from its trades.
  const current = target.accountId !== null ? await tx.accountPosition() : null;
  const held = {
    quantity: replayed.quantity,
    cost: current ? round(replayed.quantity.times(dec(current.costBasis)), 2) : replayed.cost,
  };
  const effect = actionEffect(terms, held, decOrNull(price));
  const row = await tx.insertApply({
    action,
    target,
    quantityHeld: text(held.quantity, 8),
    quantityDelta: text(effect.quantityDelta, 8),
    costDelta: text(effect.costDelta, 2),
    cashAmount: text(effect.cashAmount, 2),
    cashInLieu: text(effect.cashInLieu, 2),
    jobId,
  });
  // Under the target's lock with no live APPLY the insert cannot conflict; if it ever does, the
  // transaction is rolled back rather than committing the restatement alone.
  if (!row) throw new Error(`${action.actionId}: ledger row for ${describe(target)} already written`);
  if (target.accountId !== null && !(effect.quantityDelta.isZero() && effect.costDelta.isZero())) {
    await writePosition(tx, current, effect.quantityDelta, effect.costDelta);
  }
  return { kind: 'applied', row, restated };
}

/** Reverses the live APPLY rows of actions with an ex-date after `exDate` on this position. */
async function restateLater(
  tx: TargetTx,
  exDate: string,
  target: Target,
  jobId: string,
): Promise<LedgerRow[]> {
  const later = await tx.laterLiveApplies(exDate);
  for (const row of later) await reverseApply(tx, row.id, target, jobId);
  return later;
}

async function writePosition(
  tx: TargetTx,
  current: { quantity: string; costBasis: string } | null,
  quantityDelta: Dec,
  costDelta: Dec,
): Promise<void> {
  const next = positionAfter(
    current ? { quantity: dec(current.quantity), costBasis: dec(current.costBasis) } : null,
    quantityDelta,
    costDelta,
  );
  await tx.writeAccountPosition(
    next ? { quantity: next.quantity.toFixed(8), costBasis: next.costBasis.toFixed(8) } : null,
  );
}

/** The exact negation of one APPLY, inside its locked transaction; false when already reversed. */
async function reverseApply(tx: TargetTx, ledgerId: number, target: Target, jobId: string): Promise<boolean> {
  const reverse = await tx.insertReverse(ledgerId, jobId);
  if (!reverse) return false;
  const apply = await tx.lockRow(ledgerId);
  if (!apply) throw new Error(`ledger row ${ledgerId} vanished`);
  const accountId = target.accountId;
  if (accountId === null) {
    // Portfolios: the REVERSE is paid when its APPLY was; otherwise both are marked when the
    // payment date comes (phase 3).
    if (apply.paidAt !== null) await tx.markPaid(reverse.id, null);
    return true;
  }
  const qd = dec(reverse.quantityDelta);
  const cd = dec(reverse.costDelta);
  if (!(qd.isZero() && cd.isZero())) await writePosition(tx, await tx.accountPosition(), qd, cd);
  if (apply.paidAt === null) {
    // Never paid: settle both rows with nothing moved, so the payment step cannot pay the APPLY.
    await tx.markPaid(apply.id, { amount: '0.00', currency: null, fxRate: null });
    await tx.markPaid(reverse.id, { amount: '0.00', currency: null, fxRate: null });
    return true;
  }
  const paid = dec(apply.paidAmount ?? '0');
  if (!paid.isZero()) await tx.moveCash(accountId, paid.negated().toFixed(2));
  await tx.markPaid(reverse.id, {
    amount: paid.isZero() ? '0.00' : paid.negated().toFixed(2),
    currency: apply.paidCurrency,
    fxRate: apply.fxRate,
  });
  return true;
}

/**
 * Pays one client-account ledger row, inside its locked transaction: the cash converted at `rate`
 * moves into the account and the row is marked paid. null: already paid; 'zero': nothing to move.
 */
async function payOne(
  tx: TargetTx,
  ledgerId: number,
  accountId: number,
  accountCurrency: string,
  rate: string | null,
): Promise<string | null | 'zero'> {
  const row = await tx.lockRow(ledgerId);
  if (!row || row.paidAt !== null) return null;
  const cash = dec(row.cashAmount);
  if (cash.isZero() || rate === null) {
    await tx.markPaid(ledgerId, { amount: '0.00', currency: null, fxRate: null });
    return 'zero';
  }
  const amount = convertCash(cash, dec(rate));
  if (!amount.isZero()) await tx.moveCash(accountId, amount.toFixed(2));
  await tx.markPaid(ledgerId, { amount: amount.toFixed(2), currency: accountCurrency, fxRate: rate });
  return amount.toFixed(2);
}
