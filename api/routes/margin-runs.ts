/**
 * What the nightly margin run wrote (issue 11): `GET /api/margin/calls` and
 * `GET /api/margin/snapshots`, behind `results:read`.
 *
 * Calls show their effective status: an OPEN call whose due date is before today (exchange date)
 * is OVERDUE even before the next run marks it so; `stored_status` is the row's own. Both lists are
 * newest first and keyset-paged: `limit`, and `before` = the `next_before` of the previous page.
 * Money leaves as JSON numbers rounded to the cent (stored so); a flagged snapshot has null figures.
 */
import { z } from 'zod';
import { sessionDateOf } from '../../core/calendar/nyse.ts';
import type { Deps } from '../../core/deps.ts';
import { CALL_STATUSES } from '../../core/db/repositories/margin.ts';
import { calendarDate, decimalInt } from '../../core/input.ts';
import { BadRequestError, defineRoute, type RouteDef } from '../http.ts';
import { isoZ } from './stocks.ts';

const MAX_ID = 2_147_483_647;
const MAX_PAGE = 1000;

const money = z.number().nullable().openapi({ description: 'Rounded to the cent; null when flagged.' });
const num = (v: string | null): number | null => (v === null ? null : Number(v));

const page = {
  limit: decimalInt({ min: 1, max: MAX_PAGE, default: 100 }),
  before: decimalInt({ min: 1, max: Number.MAX_SAFE_INTEGER }).openapi({
    description: 'Keyset cursor: the `next_before` of the previous page.',
  }),
};

const MarginCall = z
  .object({
    id: z.number().int(),
    client_id: z.number().int(),
    status: z.enum(CALL_STATUSES).openapi({
      description: 'Effective status: an OPEN call past its due date (exchange date) is OVERDUE.',
    }),
    stored_status: z.enum(CALL_STATUSES),
    issued_on: z.string().openapi({ example: '2024-03-28', description: 'Run date that issued it.' }),
    due_date: z.string().openapi({ description: 'Issue date + MARGIN_CALL_DUE_DAYS NYSE trading days.' }),
    amount: z.number().openapi({
      description: 'Current shortfall rounded up to the cent (the last one while short, once met).',
    }),
    initial_amount: z.number(),
    currency: z.string().nullable(),
    met_on: z.string().nullable().openapi({ description: 'Run date that found the shortfall gone.' }),
    last_run_date: z.string(),
    snapshot_id: z.number().int().openapi({ description: 'The snapshot that issued it.' }),
    last_snapshot_id: z.number().int().nullable(),
    note: z.string().nullable(),
    updated_at: z.string(),
  })
  .openapi('MarginCall');

const MarginCalls = z
  .object({
    calls: z.array(MarginCall),
    next_before: z
      .number()
      .int()
      .nullable()
      .openapi({ description: 'Cursor of the next page; null at the end.' }),
  })
  .openapi('MarginCalls');

const MarginSnapshot = z
  .object({
    id: z.number().int(),
    client_id: z.number().int(),
    run_date: z.string(),
    as_of: z.string().openapi({ description: "The run date's session close." }),
    account_id: z.number().int().nullable(),
    currency: z.string().nullable(),
    positions: z.number().int(),
    stale_positions: z.number().int().openapi({
      description: 'Positions valued at a close older than the run date (within MARGIN_PRICE_MAX_AGE_DAYS).',
    }),
    flag: z.string().nullable().openapi({
      description:
        'Why the client is not valued: missing_price, missing_fx, missing_price_and_fx, multiple_margin_accounts.',
    }),
    missing: z.array(z.object({ symbol: z.string(), reason: z.enum(['price', 'fx']) })).nullable(),
    portfolio_value: money.openapi({ description: 'Long market value at the close, account currency.' }),
    short_market_value: money,
    credit_balance: money,
    loan_amount: money.openapi({ description: 'Debit balance.' }),
    net_equity: money,
    margin_requirement: money,
    margin_shortfall: money,
    margin_call_triggered: z.boolean().nullable(),
    call_amount: money.openapi({ description: 'Shortfall rounded up to the cent, when in call.' }),
    computed_at: z.string(),
  })
  .openapi('MarginSnapshot');

const MarginSnapshots = z
  .object({ snapshots: z.array(MarginSnapshot), next_before: z.number().int().nullable() })
  .openapi('MarginSnapshots');

const clientIdQuery = decimalInt({ min: 1, max: MAX_ID });

export function marginRunsRoutes(deps: Deps): RouteDef[] {
  const { repos, clock } = deps;
  return [
    defineRoute({
      method: 'get',
      path: '/api/margin/calls',
      summary: 'Margin calls',
      description:
        'Margin calls issued by the nightly run, newest first. A call is issued when a run finds a shortfall (> 0), updated by later runs (amount = current shortfall, rounded up to the cent), MET when a run finds none, OVERDUE past its due date (T + MARGIN_CALL_DUE_DAYS NYSE trading days) while still short, CANCELLED when a re-run of its issuing night finds no shortfall. Filter by `status` (effective status) and `clientId`.',
      tags: ['margin'],
      access: 'results:read',
      query: z
        .object({
          status: z.enum(CALL_STATUSES).optional(),
          clientId: clientIdQuery.optional(),
          ...page,
          before: page.before.optional(),
        })
        .strict(),
      response: MarginCalls,
      async handler({ query }) {
        const rows = await repos.margin.calls({
          today: sessionDateOf(clock.now()),
          limit: query.limit,
          ...(query.status ? { status: query.status } : {}),
          ...(query.clientId !== undefined ? { clientId: query.clientId } : {}),
          ...(query.before !== undefined ? { before: query.before } : {}),
        });
        return {
          calls: rows.map((c) => ({
            id: Number(c.id),
            client_id: c.clientId,
            status: c.status,
            stored_status: c.storedStatus,
            issued_on: c.issuedOn,
            due_date: c.dueDate,
            amount: Number(c.amount),
            initial_amount: Number(c.initialAmount),
            currency: c.currency,
            met_on: c.metOn,
            last_run_date: c.lastRunDate,
            snapshot_id: Number(c.snapshotId),
            last_snapshot_id: c.lastSnapshotId === null ? null : Number(c.lastSnapshotId),
            note: c.note,
            updated_at: isoZ(c.updatedAt),
          })),
          next_before: rows.length === query.limit ? Number(rows[rows.length - 1]!.id) : null,
        };
      },
    }),

    defineRoute({
      method: 'get',
      path: '/api/margin/snapshots',
      summary: 'Nightly margin snapshots',
      description:
        "One snapshot per client and run date (a re-run replaces it), newest first: market values at the run date's close in the account currency, balances, equity, FINRA 4210 + house requirement, shortfall and call. A client with a position lacking a close or an FX rate is flagged with no figures. Filter by `clientId` and the run dates `from`..`to` (inclusive).",
      tags: ['margin'],
      access: 'results:read',
      query: z
        .object({
          clientId: clientIdQuery.optional(),
          from: calendarDate.optional(),
          to: calendarDate.optional(),
          ...page,
          before: page.before.optional(),
        })
        .strict(),
      response: MarginSnapshots,
      async handler({ query }) {
        if (query.from && query.to && query.from > query.to)
          throw BadRequestError.field('query.from', `must be on or before to (${query.to})`);
        const rows = await repos.margin.snapshots({
          limit: query.limit,
          ...(query.clientId !== undefined ? { clientId: query.clientId } : {}),
          ...(query.from ? { from: query.from } : {}),
          ...(query.to ? { to: query.to } : {}),
          ...(query.before !== undefined ? { before: query.before } : {}),
        });
        return {
          snapshots: rows.map((s) => ({
            id: Number(s.id),
            client_id: s.clientId,
            run_date: s.runDate,
            as_of: isoZ(s.asOf),
            account_id: s.accountId,
            currency: s.currency,
            positions: s.positions,
            stale_positions: s.stalePositions,
            flag: s.flag,
            missing: s.missing,
            portfolio_value: num(s.longMarketValue),
            short_market_value: num(s.shortMarketValue),
            credit_balance: num(s.creditBalance),
            loan_amount: num(s.debitBalance),
            net_equity: num(s.netEquity),
            margin_requirement: num(s.marginRequirement),
            margin_shortfall: num(s.marginShortfall),
            margin_call_triggered: s.marginCallTriggered,
            call_amount: num(s.callAmount),
            computed_at: isoZ(s.computedAt),
          })),
          next_before: rows.length === query.limit ? Number(rows[rows.length - 1]!.id) : null,
        };
      },
    }),
  ];
}
