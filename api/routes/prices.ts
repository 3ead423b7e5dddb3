/**
 * Seed 1's price endpoints: the latest ticks, intraday 5-minute bars and daily history (as
 * traded, split-adjusted, or split- and dividend-adjusted) of one symbol. Also exports the symbol
 * parameter and lookup the other market routes (stocks, analytics, watch list) share.
 *
 * Prices leave as JSON numbers. That is safe here because it is display only: the columns are
 * numeric(20,8) (at most 12 integer and 8 fractional digits, inside the 15-17 significant
 * digits an IEEE double carries), and JSON.stringify prints the shortest decimal that round-trips,
 * so '187.12345678' is written back as 187.12345678. Nothing is computed from these numbers;
 * the database stays the source of truth. Volumes are bigint but far below 2^53.
 *
 * Intraday and historical bodies are serialized by PostgreSQL, one prepared statement per request
 * that also resolves the ticker (`…Json` in core/db/repositories/bars.ts prints the numbers exactly
 * as above), and written as they come (JsonText: no per-row objects, no JSON.stringify, no ETag).
 * The zod schemas below still document them; tests hold both paths to the same JSON. Those bodies
 * are kept in the series cache (api/series-cache.ts) under every input they depend on: route,
 * ticker, the resolved dates and limit, the adjustment and its as-of date (today).
 */
import { z } from 'zod';
import { NYSE_TIME_ZONE, sessionDateOf } from '../../core/calendar/nyse.ts';
import type { SecurityRecord } from '../../core/db/repositories/securities.ts';
import type { Deps } from '../../core/deps.ts';
import { calendarDate, decimalInt } from '../../core/input.ts';
import { BadRequestError, defineRoute, JsonText, NotFoundError, type RouteDef } from '../http.ts';
import type { SeriesCache } from '../series-cache.ts';

const TICKER = /^[A-Z0-9._=^-]{1,20}$/;
const MAX_YEARS = 20;

export const symbolParams = z.object({
  symbol: z
    .string()
    .trim()
    .toUpperCase()
    .regex(TICKER, 'must be a ticker such as AAPL (1-20 of A-Z 0-9 . _ = ^ -)')
    // Documented as typed (any case); validated after upper-casing.
    .openapi({
      example: 'AAPL',
      pattern: '^[A-Za-z0-9._=^-]{1,20}$',
      param: { description: 'Ticker, any case.' },
    }),
});

function addYears(date: string, years: number): string {
  const [y, m, d] = date.split('-').map(Number) as [number, number, number];
  // Feb 29 minus a year becomes Feb 28, not Mar 1.
  const day = Math.min(d, new Date(Date.UTC(y + years, m, 0)).getUTCDate());
  return new Date(Date.UTC(y + years, m - 1, day)).toISOString().slice(0, 10);
}

const price = z.number().openapi({ example: 187.4321 });

const Tick = z
  .object({
    timestamp: z.string().openapi({ example: '2024-03-01T14:30:20.000Z', description: 'Trade time, UTC.' }),
    seq: z.number().int().openapi({ description: 'Orders ticks that share a timestamp.' }),
    price,
    size: z.number().int(),
    bid: price.nullable(),
    ask: price.nullable(),
  })
  .openapi('Tick');

const RealtimePrices = z
  .object({
    symbol: z.string().openapi({ example: 'AAPL' }),
    count: z.number().int(),
    data: z.array(Tick).openapi({ description: 'Newest first.' }),
  })
  .openapi('RealtimePrices');

const IntradayBar = z
  .object({
    timestamp: z.string().openapi({ example: '2024-03-01T14:30:00.000Z', description: 'Bucket start, UTC.' }),
    open: price,
    high: price,
    low: price,
    close: price,
    volume: z.number().int(),
    vwap: price.nullable().openapi({ description: 'Null when the bar has no volume.' }),
    trade_count: z.number().int(),
  })
  .openapi('IntradayBar');

const IntradayPrices = z
  .object({
    symbol: z.string().openapi({ example: 'AAPL' }),
    interval: z.literal('5min'),
    timezone: z.string().openapi({ example: NYSE_TIME_ZONE }),
    count: z.number().int(),
    data: z.array(IntradayBar),
  })
  .openapi('IntradayPrices');

const DailyBar = z
  .object({
    date: z.string().openapi({ example: '2024-03-01', description: 'Exchange session date.' }),
    open: price,
    high: price,
    low: price,
    close: price,
    adj_close: price.nullable().openapi({
      description:
        'Close adjusted for every split and dividend up to the newest bar (CRSP and Yahoo convention: a dividend multiplies earlier closes by 1 − amount ÷ the close before its ex-date, a split divides them by its ratio); kept current as actions arrive.',
    }),
    volume: z.number().int(),
    vwap: price.nullable(),
    trade_count: z.number().int().nullable(),
  })
  .openapi('DailyBar');

const HistoricalPrices = z
  .object({
    symbol: z.string().openapi({ example: 'AAPL' }),
    start_date: z.string().openapi({ example: '2023-01-01' }),
    end_date: z.string().openapi({ example: '2023-12-31' }),
    adjusted: z.enum(['none', 'split', 'all']),
    count: z.number().int(),
    data: z.array(DailyBar),
  })
  .openapi('HistoricalPrices');

const num = (v: string): number => Number(v);
const numOrNull = (v: string | null): number | null => (v === null ? null : Number(v));

const unknownSymbol = (symbol: string): NotFoundError => new NotFoundError(`unknown symbol "${symbol}"`);

/** The security with this (validated, upper-cased) ticker, or a 404 naming it. */
export async function securityOr404(deps: Deps, symbol: string): Promise<SecurityRecord> {
  const found = await deps.repos.securities.findBySymbol(symbol);
  if (!found) throw unknownSymbol(symbol);
  return found;
}

/**
 * The body of a series route: from the cache, or read (`read` resolves the ticker; undefined is a
 * 404, never cached) and stored unless its security changed during the read.
 */
async function cachedSeries(
  cache: SeriesCache | undefined,
  key: string,
  read: () => Promise<{ securityId: number; body: string } | undefined>,
  symbol: string,
): Promise<JsonText> {
  const hit = cache?.get(key);
  if (hit) return new JsonText(hit);
  const ticket = cache?.begin();
  const out = await read();
  if (!out) throw unknownSymbol(symbol);
  const body = Buffer.from(out.body, 'utf8');
  if (cache && ticket) cache.store(ticket, key, out.securityId, body);
  return new JsonText(body);
}

export function pricesRoutes(deps: Deps, opts: { seriesCache?: SeriesCache } = {}): RouteDef[] {
  const { repos, clock } = deps;
  const { seriesCache } = opts;
  const security = (symbol: string) => securityOr404(deps, symbol);

  return [
    defineRoute({
      method: 'get',
      path: '/api/v2/realtime/prices/{symbol}',
      summary: 'Latest ticks',
      description: 'The newest `limit` stored ticks (trades) of a symbol, newest first.',
      tags: ['prices'],
      access: 'results:read',
      params: symbolParams,
      query: z
        .object({
          limit: decimalInt({ min: 1, max: 1000, default: 100 }),
        })
        .strict(),
      response: RealtimePrices,
      errors: [404],
      async handler({ params, query }) {
        const sec = await security(params.symbol);
        const ticks = await repos.bars.latestTicks(sec.id, query.limit);
        return {
          symbol: sec.ticker,
          count: ticks.length,
          data: ticks.map((t) => ({
            timestamp: t.ts.toISOString(),
            seq: t.seq,
            price: num(t.price),
            size: num(t.size),
            bid: numOrNull(t.bid),
            ask: numOrNull(t.ask),
          })),
        };
      },
    }),

    defineRoute({
      method: 'get',
      path: '/api/v2/intraday/prices/{symbol}',
      summary: 'Intraday 5-minute bars',
      description: 'The newest `limit` 5-minute OHLCV bars of a symbol, returned oldest first.',
      tags: ['prices'],
      access: 'results:read',
      params: symbolParams,
      query: z
        .object({
          interval: z.enum(['5min']).default('5min'),
          limit: decimalInt({ min: 1, max: 5000, default: 100 }),
        })
        .strict(),
      response: IntradayPrices,
      errors: [404],
      async handler({ params, query }) {
        // Serialized by PostgreSQL (JsonSeries): the same JSON as mapping latest5m's records.
        const key = `intraday|${params.symbol}|${query.interval}|${query.limit}`;
        return cachedSeries(
          seriesCache,
          key,
          async () => {
            const series = await repos.bars.latest5mJson(params.symbol, query.limit);
            return (
              series && {
                securityId: series.securityId,
                body:
                  `{"symbol":${JSON.stringify(series.ticker)},"interval":${JSON.stringify(query.interval)},` +
                  `"timezone":${JSON.stringify(NYSE_TIME_ZONE)},"count":${series.count},"data":${series.json}}`,
              }
            );
          },
          params.symbol,
        );
      },
    }),

    defineRoute({
      method: 'get',
      path: '/api/v2/historical/prices/{symbol}',
      summary: 'Daily price history',
      description: `Daily bars with session dates in [start_date, end_date]. Defaults: the year up to today (exchange time zone). At most ${MAX_YEARS} years per request. \`adjusted=split\` back-adjusts each bar before a split's ex-date by the cumulative split ratio (prices divided, volume multiplied); \`adjusted=all\` also multiplies prices before each dividend's ex-date by 1 − amount ÷ the close before it (so \`close\` is the adjusted close); both count actions with ex-dates up to today, computed in decimal, prices rounded to 8 places, volume to whole shares. \`adjusted=none\` (default) returns the bars as traded. \`adj_close\` is the stored split- and dividend-adjusted close in every mode.`,
      tags: ['prices'],
      access: 'results:read',
      params: symbolParams,
      query: z
        .object({
          start_date: calendarDate.optional().openapi({ example: '2023-01-01' }),
          end_date: calendarDate.optional().openapi({ example: '2023-12-31' }),
          adjusted: z.enum(['none', 'split', 'all']).default('none'),
        })
        .strict(),
      response: HistoricalPrices,
      errors: [404],
      async handler({ params, query }) {
        const today = sessionDateOf(clock.now());
        const end = query.end_date ?? today;
        const start = query.start_date ?? addYears(end, -1);
        if (start > end)
          throw BadRequestError.field('query.start_date', `must not be after end_date (${end})`);
        if (start < addYears(end, -MAX_YEARS)) {
          throw BadRequestError.field('query.start_date', `range must not exceed ${MAX_YEARS} years`);
        }
        // Serialized by PostgreSQL (JsonSeries): the same JSON as mapping daily's records.
        const key = `historical|${params.symbol}|${start}|${end}|${query.adjusted}|${today}`;
        return cachedSeries(
          seriesCache,
          key,
          async () => {
            const series = await repos.bars.dailyJson(params.symbol, start, end, {
              adjust: query.adjusted,
              asOf: today,
            });
            return (
              series && {
                securityId: series.securityId,
                body:
                  `{"symbol":${JSON.stringify(series.ticker)},"start_date":"${start}","end_date":"${end}",` +
                  `"adjusted":"${query.adjusted}","count":${series.count},"data":${series.json}}`,
              }
            );
          },
          params.symbol,
        );
      },
    }),
  ];
}
