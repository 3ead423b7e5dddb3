/**
 * margin.nightly and margin.batch (issue 11): the nightly margin run as a BullMQ flow.
 *
 * 1. `margin.nightly` as the schedule (17:15 New York) or an operator enqueues it ({runDate?,
 *    clientIds?}) plans: the run date (default: the last completed NYSE session), the clients
 *    (default: every client with a margin account) split into batches of MARGIN_BATCH_SIZE, then
 *    adds ONE flow: a parent `margin.nightly` {runDate, finalize: true} whose children are the
 *    `margin.batch` jobs. A flow parent must be created with its children, hence the second job.
 *    Job ids derive from the planning job's id, so a retried plan re-adds the same jobs (BullMQ
 *    ignores an id it already has) instead of a second flow.
 * 2. `margin.batch` jobs run on any worker of any host serving the `margin` group; each is one
 *    transaction (core/db/repositories/margin.ts `runBatch`): one set-based statement writes the
 *    batch's snapshots (replacing the run date's), then the calls move (issued, updated, met,
 *    overdue, cancelled). Idempotent: a retry or a re-run of the night gives the same rows.
 * 3. The parent runs once every batch has completed (BullMQ), sums the batches' return values
 *    (ctx.upstreamResults) and logs the totals and the overdue calls. A batch that fails for good
 *    leaves it in waiting-children (BullMQ's default); retrying that batch completes the run.
 */
import { FlowProducer, UnrecoverableError } from 'bullmq';
import type { Deps } from '../../core/deps.ts';
import { isTradingDay, lastCompletedSession, nextTradingDay } from '../../core/calendar/nyse.ts';
import type { BatchOutcome, MarginCounts } from '../../core/db/repositories/margin.ts';
import { dec } from '../../core/domain/money.ts';
import { redisLogger, watchRedisErrors } from '../../core/redis.ts';
import { parsePayload, type JobPayload } from '../catalogue.ts';
import { jobOptions } from '../options.ts';
import type { JobContext } from '../types.ts';

export interface MarginBatchResult extends BatchOutcome {
  runDate: string;
  clients: number;
}

export interface MarginPlanResult {
  runDate: string;
  clients: number;
  batches: number;
  /** The flow parent's job id (undefined when there was nothing to run). */
  finalizeJobId?: string;
}

export interface MarginRunResult extends MarginCounts {
  runDate: string;
  batches: number;
  clients: number;
  /** Outstanding calls past their due date after the run (all clients). */
  overdue: number;
}

/** The due date of a call issued on `runDate`: `days` NYSE trading days later. */
export function callDueDate(runDate: string, days: number): string {
  let d = runDate;
  for (let i = 0; i < days; i++) d = nextTradingDay(d);
  return d;
}

/** A BullMQ custom job id may not contain ':' (scheduler job ids do). */
const idPart = (id: string): string => id.replace(/:/g, '_');

export async function marginNightly(
  deps: Deps,
  payload: JobPayload<'margin.nightly'>,
  ctx: JobContext,
): Promise<MarginPlanResult | MarginRunResult> {
  return payload.finalize ? finalize(deps, payload, ctx) : plan(deps, payload, ctx);
}

async function plan(
  deps: Deps,
  payload: JobPayload<'margin.nightly'>,
  ctx: JobContext,
): Promise<MarginPlanResult> {
  const { repos, config } = deps;
  const runDate = payload.runDate ?? lastCompletedSession(deps.clock.now()).date;
  if (payload.clientIds) {
    const unknown = await repos.margin.unknownClientIds(payload.clientIds);
    if (unknown.length > 0)
      throw new UnrecoverableError(
        `clientIds: unknown client(s) ${unknown.slice(0, 20).join(', ')}${unknown.length > 20 ? ` and ${unknown.length - 20} more` : ''}`,
      );
  }
  const ids = await repos.margin.marginClientIds(payload.clientIds);
  if (payload.clientIds && ids.length < new Set(payload.clientIds).size)
    await ctx.log(
      `${new Set(payload.clientIds).size - ids.length} requested client(s) have no margin account`,
    );
  const size = config.margin.batchSize;
  const batches: number[][] = [];
  for (let i = 0; i < ids.length; i += size) batches.push(ids.slice(i, i + size));
  await ctx.log(
    `margin run ${runDate}${isTradingDay(runDate) ? '' : ' (not a trading day: newest closes before it)'}: ${ids.length} client(s) in ${batches.length} batch(es) of up to ${size}`,
  );
  if (batches.length === 0) {
    await ctx.progress(100, { runDate, clients: 0 });
    return { runDate, clients: 0, batches: 0 };
  }
  const base = idPart(ctx.id);
  const finalizeJobId = `${base}-finalize`;
  const flow = new FlowProducer({ connection: deps.redis, prefix: config.queue.prefix });
  watchRedisErrors(flow, redisLogger(config, deps.logger), 'margin flow producer');
  try {
    await flow.add({
      name: 'margin.nightly',
      queueName: 'margin.nightly',
      data: parsePayload('margin.nightly', { runDate, finalize: true }),
      opts: { ...jobOptions['margin.nightly'].job, jobId: finalizeJobId },
      children: batches.map((clientIds, i) => ({
        name: 'margin.batch',
        queueName: 'margin.batch',
        data: parsePayload('margin.batch', { runDate, clientIds }),
        opts: { ...jobOptions['margin.batch'].job, jobId: `${base}-batch-${i}` },
      })),
    });
  } finally {
    await flow.close();
  }
  await ctx.progress(100, { runDate, clients: ids.length, batches: batches.length });
  await ctx.log(`flow added: ${batches.length} margin.batch job(s) under ${finalizeJobId}`);
  return { runDate, clients: ids.length, batches: batches.length, finalizeJobId };
}

async function finalize(
  deps: Deps,
  payload: JobPayload<'margin.nightly'>,
  ctx: JobContext,
): Promise<MarginRunResult> {
  const runDate = payload.runDate;
  if (!runDate) throw new UnrecoverableError('runDate: required with finalize');
  const results = (await ctx.upstreamResults()) as MarginBatchResult[];
  if (results.length === 0)
    throw new UnrecoverableError(
      'finalize: runs only as the parent of a margin.batch flow (enqueue margin.nightly without finalize)',
    );
  const wrong = results.filter((r) => r?.runDate !== runDate);
  if (wrong.length > 0)
    throw new UnrecoverableError(`finalize: ${wrong.length} batch result(s) are not of run date ${runDate}`);
  const total: MarginRunResult = {
    runDate,
    batches: results.length,
    clients: 0,
    snapshots: 0,
    flagged: 0,
    calls: 0,
    shortfall: '0.00',
    issued: 0,
    updated: 0,
    met: 0,
    cancelled: 0,
    reopened: 0,
    overdue: 0,
  };
  let shortfall = dec(0);
  for (const r of results) {
    for (const k of [
      'clients',
      'snapshots',
      'flagged',
      'calls',
      'issued',
      'updated',
      'met',
      'cancelled',
      'reopened',
    ] as const)
      total[k] += r[k];
    shortfall = shortfall.plus(dec(r.shortfall));
  }
  total.shortfall = shortfall.toFixed(2);
  const overdue = results.flatMap((r) => r.overdue);
  total.overdue = await deps.repos.margin.overdueCount();
  await ctx.log(
    `margin run ${runDate}: ${total.snapshots} snapshot(s) over ${total.batches} batch(es), ${total.flagged} flagged, ${total.calls} in call (shortfall ${total.shortfall}); calls issued ${total.issued}, updated ${total.updated}, met ${total.met}, cancelled ${total.cancelled}, reopened ${total.reopened}; ${total.overdue} overdue`,
  );
  if (overdue.length > 0)
    await ctx.log(
      `OVERDUE margin calls: ${overdue
        .slice(0, 50)
        .map((o) => `call ${o.callId} client ${o.clientId} amount ${o.amount} due ${o.dueDate}`)
        .join('; ')}`,
    );
  const flagged = results.flatMap((r) => r.flaggedClients);
  if (flagged.length > 0)
    await ctx.log(
      `flagged (not valued, no call): ${flagged
        .slice(0, 50)
        .map((f) => `client ${f.clientId} ${f.flag}`)
        .join('; ')}`,
    );
  deps.logger.info({ job: 'margin.nightly', ...total }, 'margin run finished');
  if (total.overdue > 0) deps.logger.warn({ runDate, overdue: total.overdue }, 'margin calls overdue');
  await ctx.progress(100, { runDate, snapshots: total.snapshots, calls: total.calls });
  return total;
}

export async function marginBatch(
  deps: Deps,
  payload: JobPayload<'margin.batch'>,
  ctx: JobContext,
): Promise<MarginBatchResult> {
  const { runDate, clientIds } = payload;
  const dueDate = callDueDate(runDate, deps.config.margin.callDueDays);
  await ctx.progress(0, { runDate, clients: clientIds.length });
  const out = await deps.repos.margin.runBatch({
    runDate,
    clientIds,
    dueDate,
    maxPriceAgeDays: deps.config.margin.maxPriceAgeDays,
    jobId: ctx.id,
  });
  await ctx.log(
    `margin batch ${runDate}: ${clientIds.length} client(s), ${out.snapshots} snapshot(s), ${out.flagged} flagged, ${out.calls} in call; calls issued ${out.issued} (due ${dueDate}), updated ${out.updated}, met ${out.met}, cancelled ${out.cancelled}, reopened ${out.reopened}; ${out.overdue.length} overdue`,
  );
  for (const o of out.overdue.slice(0, 20))
    await ctx.log(`OVERDUE: call ${o.callId} client ${o.clientId} amount ${o.amount} due ${o.dueDate}`);
  await ctx.progress(100, { runDate, snapshots: out.snapshots });
  return { runDate, clients: clientIds.length, ...out };
}
