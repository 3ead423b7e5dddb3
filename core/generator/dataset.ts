/**
 * data.generate end to end: resolves the plan, writes reference data, FX, corporate actions,
 * daily bars, portfolios and clients set-based, then streams the ticks through COPY in chunks of
 * one security × one calendar month, each committed with its checkpoint.
 */
import type { Deps } from '../deps.ts';
import type { ProgressReporter } from '../progress.ts';
import { isValidDate, lastCompletedSession } from '../calendar/nyse.ts';
import type { DailyBarInsert, FxInsert, RatingInsert, SecurityInsert } from '../db/repositories/generator.ts';
import { buildClients, buildPortfolios, Market } from './book.ts';
import {
  corporateActions,
  dailyPath,
  fxRates,
  PRICE_SCALE,
  priceText,
  type ActionRow,
  type DailyPath,
} from './paths.ts';
import { focusQuarter } from './periods.ts';
import { createRng, Stream, streamKey } from './prng.ts';
import { TICK_SECONDS, tickBuffers, ticksInSession } from './ticks.ts';
import {
  buildUniverse,
  CURRENCIES,
  resolvePlan,
  SCALES,
  type Issuer,
  type Plan,
  type SecuritySpec,
} from './universe.ts';

export const JOB_NAME = 'data.generate';

/** A payload that cannot work as given; `field` names the culprit. */
export class GeneratePayloadError extends Error {
  readonly field: string;
  constructor(field: string, message: string) {
    super(`${field}: ${message}`);
    this.name = 'GeneratePayloadError';
    this.field = field;
  }
}

/** Knobs for tests and benchmarks, deliberately not part of the public payload. */
export interface GeneratorInternals {
  /** Fail in the middle of the chunk after this many chunks were loaded (crash simulation). */
  failAfterChunks?: number;
  /** Tick chunks loaded at once (each on its own connection). Default 2. */
  concurrency?: number;
}

export interface GenerateResult {
  seed: number;
  scale: 'small' | 'seed';
  from: string;
  to: string;
  /** Instant (ISO) of the first tick in the dataset; null without ticks. */
  tickFrom: string | null;
  /** Instant (ISO) of the last tick in the dataset; null without ticks. */
  tickTo: string | null;
  sessions: number;
  issuers: number;
  securities: number;
  portfolios: number;
  clients: number;
  positions: number;
  transactions: number;
  fxRates: number;
  corporateActions: number;
  creditRatings: number;
  dailyBars: number;
  /** Ticks in the dataset (loaded now or by an earlier, interrupted run). */
  ticks: number;
  /** Ticks this run loaded. */
  ticksLoaded: number;
  tickChunks: number;
  tickChunksSkipped: number;
}

/**
 * What to generate (the data.generate payload after validation, which jobs/catalogue.ts checks;
 * declared here so the generator does not depend on the job layer).
 */
export interface GenerateSpec {
  seed: number;
  scale: 'small' | 'seed';
  securities?: number | undefined;
  years?: number | undefined;
  tickSessions?: number | undefined;
  endDate?: string | undefined;
}

/** Checks the payload against the calendar and the clock and resolves it into a plan. */
export function planFor(payload: GenerateSpec, now: Date): Plan {
  const latest = lastCompletedSession(now).date;
  if (payload.endDate !== undefined) {
    if (!isValidDate(payload.endDate))
      throw new GeneratePayloadError('endDate', `"${payload.endDate}" is not a calendar date`);
    if (payload.endDate > latest) {
      throw new GeneratePayloadError(
        'endDate',
        `${payload.endDate} is after the last completed session (${latest})`,
      );
    }
  }
  const plan = resolvePlan({
    seed: payload.seed,
    scale: payload.scale,
    securities: payload.securities,
    years: payload.years,
    tickSessions: payload.tickSessions,
    endDate: payload.endDate ?? latest,
  });
  if (plan.sessions.length < 2) {
    throw new GeneratePayloadError(
      'years',
      `the range ${plan.from}..${plan.to} holds fewer than two sessions`,
    );
  }
  if (plan.from < '1990-01-01')
    throw new GeneratePayloadError('years', `the history would start before 1990 (${plan.from})`);
  if (payload.tickSessions !== undefined && payload.tickSessions > plan.sessions.length) {
    throw new GeneratePayloadError(
      'tickSessions',
      `${payload.tickSessions} exceeds the ${plan.sessions.length} sessions in ${plan.from}..${plan.to}`,
    );
  }
  return plan;
}

const SP = ['AAA', 'AA+', 'AA', 'AA-', 'A+', 'A', 'A-', 'BBB+', 'BBB', 'BBB-', 'BB+', 'BB', 'BB-', 'B+', 'B'];
const MOODYS = [
  'Aaa',
  'Aa1',
  'Aa2',
  'Aa3',
  'A1',
  'A2',
  'A3',
  'Baa1',
  'Baa2',
  'Baa3',
  'Ba1',
  'Ba2',
  'Ba3',
  'B1',
  'B2',
];

function creditRatings(plan: Plan, issuers: readonly Issuer[]): RatingInsert[] {
  const rows: RatingInsert[] = [];
  for (const issuer of issuers) {
    const rng = createRng(streamKey(plan.seed, Stream.ratings, issuer.index));
    let notch = rng.int(0, SP.length - 4);
    for (const [agency, scale] of [
      ['S&P', SP],
      ['MOODYS', MOODYS],
    ] as const) {
      rows.push({
        issuerId: issuer.issuerId,
        agency,
        rating: scale[notch] ?? 'BBB',
        ratingDate: plan.from,
        action: 'NEW',
      });
    }
    if (rng.chance(0.3)) {
      const up = notch > 0 && rng.chance(0.5);
      notch += up ? -1 : 1;
      const date = plan.sessions[rng.int(1, plan.sessions.length - 1)]?.date ?? plan.to;
      rows.push({
        issuerId: issuer.issuerId,
        agency: 'S&P',
        rating: SP[notch] ?? 'BBB',
        ratingDate: date,
        action: up ? 'UPGRADE' : 'DOWNGRADE',
      });
    }
  }
  return rows;
}

function securityInsert(spec: SecuritySpec, all: readonly SecuritySpec[]): SecurityInsert {
  return {
    securityId: spec.securityId,
    ticker: spec.ticker,
    isin: spec.isin,
    cusip: spec.cusip,
    sedol: spec.sedol,
    name: spec.name,
    type: spec.type,
    assetClass: spec.assetClass,
    currency: spec.currency,
    exchange: spec.exchange,
    issuerId: spec.issuer?.issuerId ?? null,
    issueDate: spec.issueDate,
    maturityDate: spec.maturityDate,
    couponRate: spec.couponRate === null ? null : spec.couponRate.toFixed(6),
    couponFrequency: spec.couponFrequency,
    faceValue: spec.faceValue === null ? null : spec.faceValue.toFixed(2),
    underlying: spec.underlying === null ? null : (all[spec.underlying]?.securityId ?? null),
    strike: spec.strike === null ? null : spec.strike.toFixed(2),
    optionType: spec.optionType,
    multiplier: spec.multiplier.toFixed(4),
    marginable: spec.marginable,
    houseMarginRate: spec.houseMarginRate === null ? null : spec.houseMarginRate.toFixed(4),
    status: spec.status,
  };
}

function dailyBars(plan: Plan, spec: SecuritySpec, path: DailyPath, dbId: number): DailyBarInsert[] {
  const rows: DailyBarInsert[] = [];
  const last = Math.min(spec.lastSession, plan.tickStart - 1);
  const avgSize = spec.type === 'EQUITY' ? 700 : 50;
  for (let s = 0; s <= last; s++) {
    const o = path.open[s] ?? PRICE_SCALE;
    const h = path.high[s] ?? o;
    const l = path.low[s] ?? o;
    const c = path.close[s] ?? o;
    const volume = path.volume[s] ?? 1;
    const vwap = Math.min(h, Math.max(l, Math.round((h + l + c) / 3)));
    rows.push({
      securityId: dbId,
      sessionDate: plan.sessions[s]?.date ?? plan.from,
      open: priceText(o),
      high: priceText(h),
      low: priceText(l),
      close: priceText(c),
      volume,
      vwap: priceText(vwap),
      tradeCount: Math.max(1, Math.round(volume / avgSize)),
    });
  }
  return rows;
}

interface TickChunk {
  spec: SecuritySpec;
  month: string;
  sessions: number[];
  ticks: number;
  key: string;
}

/** One chunk per security and calendar month of its tick sessions. */
function tickChunks(plan: Plan, specs: readonly SecuritySpec[]): TickChunk[] {
  const chunks: TickChunk[] = [];
  for (const spec of specs) {
    let current = null as TickChunk | null;
    for (let s = plan.tickStart; s <= spec.lastSession; s++) {
      const session = plan.sessions[s];
      if (!session) continue;
      const month = session.date.slice(0, 7);
      if (current?.month !== month) {
        current = {
          spec,
          month,
          sessions: [],
          ticks: 0,
          key: `${plan.seed}:${plan.signature}:ticks:${spec.securityId}:${month}`,
        };
        chunks.push(current);
      }
      current.sessions.push(s);
      current.ticks += ticksInSession(session);
    }
  }
  return chunks;
}

/** First and last tick instants over all chunks (what a rollup of the new ticks must cover). */
function tickSpan(
  plan: Plan,
  chunks: readonly TickChunk[],
): { tickFrom: string | null; tickTo: string | null } {
  let first = Number.POSITIVE_INFINITY;
  let last = Number.NEGATIVE_INFINITY;
  for (const c of chunks) {
    const a = plan.sessions[c.sessions[0] ?? -1];
    const b = plan.sessions[c.sessions.at(-1) ?? -1];
    if (a) first = Math.min(first, a.openAt.getTime());
    if (b) last = Math.max(last, b.openAt.getTime() + (ticksInSession(b) - 1) * TICK_SECONDS * 1000);
  }
  return Number.isFinite(first)
    ? { tickFrom: new Date(first).toISOString(), tickTo: new Date(last).toISOString() }
    : { tickFrom: null, tickTo: null };
}

function* failingMidway(source: Iterable<Buffer>, message: string): Generator<Buffer> {
  for (const buf of source) {
    yield buf;
    throw new Error(message);
  }
  throw new Error(message);
}

/** The checkpoint naming the dataset a database holds (one per database: natural keys are shared). */
const MANIFEST_KEY = 'dataset';

export interface Manifest {
  seed: number;
  signature: string;
  to: string;
}

const SIGNATURE = /^(small|seed)-n(\d+)-(\d{4}-\d{2}-\d{2})-(\d{4}-\d{2}-\d{2})-t(\d+)$/;

/**
 * The payload field in which `plan` differs from the dataset a database holds, or undefined when
 * it is the same dataset. The shape is read back from the stored signature
 * (`<scale>-n<securities>-<from>-<to>-t<tickSessions>`, see resolvePlan): a different first date
 * with the same last one means another `years`.
 */
export function datasetMismatchField(held: Manifest, plan: Plan): string | undefined {
  if (held.seed !== plan.seed) return 'seed';
  if (held.signature === plan.signature) return undefined;
  const [a, b] = [SIGNATURE.exec(held.signature), SIGNATURE.exec(plan.signature)];
  if (!a || !b) return 'scale';
  if (a[1] !== b[1]) return 'scale';
  if (a[2] !== b[2]) return 'securities';
  if (a[4] !== b[4]) return 'endDate';
  if (a[3] !== b[3]) return 'years';
  return 'tickSessions';
}

/**
 * The plan data.generate will follow for this payload in this database: without an explicit end
 * date a rerun continues the dataset already there (its manifest's last date) instead of clashing
 * with it on another day. The demo reads it before the flow starts, to give the books steps their
 * period (periods.ts booksPeriod). Throws GeneratePayloadError like planFor.
 */
export async function datasetPlan(
  deps: Pick<Deps, 'repos' | 'clock'>,
  payload: GenerateSpec,
): Promise<{ plan: Plan; existing: Manifest | undefined }> {
  const existing = await deps.repos.checkpoints.get<Manifest>(JOB_NAME, MANIFEST_KEY);
  const plan = planFor(
    payload.endDate === undefined && existing !== undefined ? { ...payload, endDate: existing.to } : payload,
    deps.clock.now(),
  );
  return { plan, existing };
}

export async function generateDataset(
  deps: Deps,
  payload: GenerateSpec,
  ctx: ProgressReporter,
  internal: GeneratorInternals = {},
): Promise<GenerateResult> {
  const repo = deps.repos.generator;
  const { plan, existing } = await datasetPlan(deps, payload);
  const mismatch = existing === undefined ? undefined : datasetMismatchField(existing, plan);
  if (existing !== undefined && mismatch !== undefined) {
    throw new GeneratePayloadError(
      mismatch,
      `this database already holds the synthetic dataset seed=${existing.seed} (${existing.signature}); ` +
        `rerun with that seed and shape, or generate into an empty database`,
    );
  }
  if (existing === undefined) {
    await deps.repos.checkpoints.set(JOB_NAME, MANIFEST_KEY, {
      seed: plan.seed,
      signature: plan.signature,
      to: plan.to,
    });
  }
  const started = Date.now();
  const log = async (line: string): Promise<void> => {
    deps.logger.info({ job: JOB_NAME, seed: plan.seed, signature: plan.signature }, line);
    await ctx.log(line);
  };
  const tickFrom = plan.sessions[plan.tickStart]?.date ?? null;
  const tickTo = plan.tickStart < plan.sessions.length ? (plan.sessions.at(-1)?.date ?? null) : null;
  await log(
    `data.generate seed=${plan.seed} scale=${plan.scale} securities=${plan.securities} range=${plan.from}..${plan.to} ` +
      `sessions=${plan.sessions.length} ticks=${tickFrom ?? 'none'}..${tickTo ?? 'none'}`,
  );

  const addedSessions = await deps.repos.calendar.ensureSessions(plan.from, plan.to);
  await log(`calendar: ${plan.sessions.length} NYSE sessions (${addedSessions} new)`);

  const universe = buildUniverse(plan);
  const specs = universe.securities;
  const ratings = creditRatings(plan, universe.issuers);
  await repo.insertIssuers(universe.issuers);
  await repo.insertCreditRatings(ratings);
  await repo.insertSecurities(specs.map((s) => securityInsert(s, specs)));
  const ids = await repo.securityIds(specs.map((s) => s.securityId));
  const dbId = (spec: SecuritySpec): number => {
    const id = ids.get(spec.securityId);
    if (id === undefined) throw new Error(`security ${spec.securityId} is missing after insert`);
    return id;
  };
  await log(
    `reference: ${universe.issuers.length} issuers, ${specs.length} securities, ${ratings.length} credit ratings`,
  );
  await ctx.progress(2);

  const currencies = CURRENCIES.filter((c) => c !== 'USD' && specs.some((s) => s.currency === c));
  const fx = fxRates(plan, currencies);
  const fxRows: FxInsert[] = [];
  for (const [ccy, series] of fx) {
    for (const [date, rate] of series) fxRows.push({ from: ccy, to: 'USD', date, rate: rate.toFixed(10) });
  }
  await repo.insertFxRates(fxRows);
  await log(`fx: ${fxRows.length} daily rates for ${currencies.length} currencies to USD`);

  const market = new Market(plan, specs, fx);
  let actionCount = 0;
  let barCount = 0;
  let actionBatch: ActionRow[] = [];
  let barBatch: DailyBarInsert[] = [];
  for (const spec of specs) {
    const path = market.path(spec.index);
    actionBatch.push(...corporateActions(plan, spec, path));
    barBatch.push(...dailyBars(plan, spec, path, dbId(spec)));
    if (barBatch.length >= 20_000) {
      barCount += barBatch.length;
      await repo.insertDailyBars(barBatch);
      barBatch = [];
    }
    if (actionBatch.length >= 5_000) {
      actionCount += actionBatch.length;
      await repo.insertCorporateActions(actionBatch);
      actionBatch = [];
    }
  }
  barCount += barBatch.length;
  actionCount += actionBatch.length;
  await repo.insertDailyBars(barBatch);
  await repo.insertCorporateActions(actionBatch);
  await log(`daily: ${barCount} daily bars (sessions without ticks), ${actionCount} corporate actions`);
  await ctx.progress(6);

  const book = buildPortfolios(plan, specs, market);
  await repo.insertPortfolios(book.portfolios);
  const clientCount =
    payload.securities === undefined
      ? SCALES[plan.scale].clients
      : Math.max(5, Math.round(plan.securities / 3));
  const clientBook = buildClients(plan, specs, market, clientCount);
  await repo.insertClients(clientBook.clients);
  const transactions = [...book.transactions, ...clientBook.transactions];
  await repo.insertTransactions(transactions);
  const positions = clientBook.clients.reduce((n, c) => n + c.positions.length, 0);
  await log(
    `portfolios: ${book.portfolios.length} portfolios (holdings are derived by holdings.snapshot); clients: ` +
      `${clientBook.clients.length} margin accounts, ${positions} positions; ${transactions.length} transactions`,
  );
  if (book.roles.length > 0) {
    await log(
      `focus quarter ${focusQuarter(plan)?.label ?? '?'}: ` +
        book.roles.map((r) => `${r.kind} ${r.securityId} in ${r.portfolioId}`).join(', '),
    );
  }
  await ctx.progress(10);

  const chunks = tickChunks(plan, specs);
  const totalTicks = chunks.reduce((n, c) => n + c.ticks, 0);
  const done = await deps.repos.checkpoints.keysWithPrefix(JOB_NAME, `${plan.seed}:${plan.signature}:ticks:`);
  const todo = chunks.filter((c) => !done.has(c.key));
  let ticksLoaded = 0;
  let skipped = chunks.length - todo.length;
  if (todo.length > 0) {
    const first = plan.sessions[plan.tickStart];
    const last = plan.sessions.at(-1);
    if (first && last) await repo.ensureMonthPartitions('ticks', first.openAt, last.closeAt);
    await log(`ticks: ${chunks.length} chunks (${skipped} already loaded), ${totalTicks} ticks in all`);
    const paths = new Map<number, DailyPath>();
    const pathOf = (spec: SecuritySpec): DailyPath => {
      let p = paths.get(spec.index);
      if (!p) {
        if (paths.size >= 8) paths.delete(paths.keys().next().value ?? -1);
        p = dailyPath(plan, spec);
        paths.set(spec.index, p);
      }
      return p;
    };
    let next = 0;
    let begun = 0;
    // One failed lane stops the others: the job fails fast and the rerun resumes from checkpoints.
    let aborted = false;
    let finished = skipped;
    let lastPercent = -1;
    const worker = async (): Promise<void> => {
      while (!aborted && next < todo.length) {
        // The worker is shutting down: stop between chunks (the ones in flight commit first) and
        // let the job go back to waiting; whoever takes it resumes after the last checkpoint.
        if (ctx.shutdown?.aborted) {
          aborted = true;
          throw new Error(
            `stopped after ${finished} of ${chunks.length} tick chunks: ${String(ctx.shutdown.reason)}`,
          );
        }
        const chunk = todo[next++];
        if (!chunk) break;
        begun++;
        let source: Iterable<Buffer> = tickBuffers(
          plan,
          chunk.spec,
          pathOf(chunk.spec),
          dbId(chunk.spec),
          chunk.sessions,
        );
        if (internal.failAfterChunks !== undefined && begun > internal.failAfterChunks) {
          source = failingMidway(source, `injected failure after ${internal.failAfterChunks} tick chunks`);
        }
        const res = await repo
          .copyTicks({
            source,
            checkpoint: { jobName: JOB_NAME, key: chunk.key, state: { sessions: chunk.sessions.length } },
          })
          .catch((err: unknown) => {
            aborted = true;
            throw err;
          });
        if (res.skipped) skipped++;
        else ticksLoaded += res.rows;
        finished++;
        const percent = Math.floor(10 + (90 * finished) / chunks.length);
        if (percent !== lastPercent) {
          lastPercent = percent;
          await ctx.progress(percent, { tickChunks: chunks.length, done: finished, ticksLoaded });
        }
      }
    };
    const lanes = Math.max(1, internal.concurrency ?? 2);
    const results = await Promise.allSettled(Array.from({ length: lanes }, () => worker()));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }
  const seconds = (Date.now() - started) / 1000;
  await log(
    `ticks: loaded ${ticksLoaded} of ${totalTicks} (${skipped} chunks skipped); done in ${seconds.toFixed(1)} s`,
  );
  await ctx.progress(100);

  return {
    seed: plan.seed,
    scale: plan.scale,
    from: plan.from,
    to: plan.to,
    ...tickSpan(plan, chunks),
    sessions: plan.sessions.length,
    issuers: universe.issuers.length,
    securities: specs.length,
    portfolios: book.portfolios.length,
    clients: clientBook.clients.length,
    positions,
    transactions: transactions.length,
    fxRates: fxRows.length,
    corporateActions: actionCount,
    creditRatings: ratings.length,
    dailyBars: barCount,
    ticks: totalTicks,
    ticksLoaded,
    tickChunks: chunks.length,
    tickChunksSkipped: skipped,
  };
}
