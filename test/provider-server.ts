/**
 * A local stand-in for Yahoo Finance and Alpha Vantage, so the real yahoo-finance2 and
 * alphavantage client code runs end to end over HTTP in tests (never the live services).
 *
 *   const server = await startProviderServer();
 *   const deps = testDeps({ fetch: server.fetch });            // or createProviders(cfg, { fetch })
 *   server.script('yahoo-chart', respond.rateLimited(7), respond.serverError(502));
 *   ...                                                         // next two chart requests fail so
 *   server.requestsFor('yahoo-chart')                           // what the clients asked for
 *   await server.close();
 *
 * `server.fetch` is fetch-compatible: any https://*.yahoo.com/… or https://www.alphavantage.co/…
 * URL is rewritten to http://127.0.0.1:<port>/<original host><path>?<query> and fetched with the
 * global fetch (signals, headers, redirect mode pass through); any other host is refused with a
 * TypeError, so a test can never reach the network by accident.
 *
 * Default answers (when nothing is scripted for a request):
 * - Yahoo chart (`/v8/finance/chart/<symbol>`): the recorded response in
 *   test/fixtures/yahoo/ for that symbol and interval whose recorded period overlaps the
 *   requested period1..period2 most; none → Yahoo's 404 "No data found, symbol may be delisted"
 *   for a symbol without recordings, or its 400 "Data doesn't exist for startDate = …".
 * - Yahoo quote (`/v7/finance/quote?symbols=…&crumb=…`): quote-AAPL.json for AAPL, Yahoo's empty
 *   result for other symbols, 401 "Invalid Crumb" when the crumb is not the one handed out.
 * - The cookie/crumb handshake: https://finance.yahoo.com/quote/<s> sets an A3 cookie on
 *   .yahoo.com; https://query1.finance.yahoo.com/v1/test/getcrumb returns PROVIDER_SERVER_CRUMB.
 * - Alpha Vantage (`/query?function=…`): test/fixtures/alphavantage/<FUNCTION>_<SYMBOL>.json,
 *   intraday <FUNCTION>_<SYMBOL>_<interval>_<month>.json, FX <FUNCTION>_<FROM>_<TO>.json
 *   (hand-written in AV's real shapes: AAPL daily and daily adjusted 2020-08-24..2020-11-06 with
 *   the 4:1 split on 2020-08-31 and the 0.205 dividend on 2020-11-06, 5min intraday 2024-02 and
 *   2024-03 around the March DST change, 1min 2024-11 around the November one, a global quote,
 *   EUR/USD FX). No file → AV's `{"Error Message": "Invalid API call…"}` (HTTP 200) or, for
 *   GLOBAL_QUOTE, its `{"Global Quote": {}}`; no apikey → AV's apikey error message.
 *
 * Scripting: `script(target, ...responses)` queues responses that the next requests matching
 * `target` consume in order (first in, first out, per script call order); `always(target, r)`
 * answers every matching request with `r` until the returned function is called or `reset()`.
 * Scripted answers take precedence over `always`, which takes precedence over the defaults.
 * Targets: 'yahoo' (chart and quote requests, not the handshake), 'yahoo-chart', 'yahoo-quote',
 * 'yahoo-crumb' (the getcrumb request), 'yahoo-cookie' (the finance.yahoo.com page),
 * 'alphavantage' (every AV request), or a predicate on the RecordedRequest.
 *
 * Every request is recorded (`requests`, `requestsFor(target)`) with its original URL, so tests
 * can assert what the clients asked for and how many times.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const YAHOO_FIXTURES_DIR = join(here, 'fixtures', 'yahoo');
export const AV_FIXTURES_DIR = join(here, 'fixtures', 'alphavantage');
/** The crumb the fake getcrumb endpoint hands out (and the quote endpoint then requires). */
export const PROVIDER_SERVER_CRUMB = 'tEsTcRuMb42';

export type ScriptedResponse =
  /** A JSON body (HTTP 200 unless `status`), with extra headers. */
  | { kind: 'json'; body: unknown; status?: number; headers?: Record<string, string> }
  /** A text body exactly as given (e.g. truncated JSON), content-type application/json unless set. */
  | { kind: 'text'; body: string; status?: number; headers?: Record<string, string> }
  /** Accept the request and never answer (until the client gives up or the server closes). */
  | { kind: 'hang' }
  /** Send 200 headers and half a JSON body, then nothing more: the body read has to time out. */
  | { kind: 'stall' }
  /** Destroy the connection without answering: the client sees a network error. */
  | { kind: 'reset' }
  /** The recorded Yahoo response of `<name>.json` in YAHOO_FIXTURES_DIR, whatever was asked. */
  | { kind: 'yahoo-fixture'; name: string }
  /** The default answer, as if nothing were scripted (to script "fail, then succeed" explicitly). */
  | { kind: 'default' };

export type Target =
  | 'yahoo'
  | 'yahoo-chart'
  | 'yahoo-quote'
  | 'yahoo-crumb'
  | 'yahoo-cookie'
  | 'alphavantage'
  | ((req: RecordedRequest) => boolean);

export interface RecordedRequest {
  provider: 'yahoo' | 'alphavantage';
  kind: 'chart' | 'quote' | 'crumb' | 'cookie' | 'av' | 'other';
  /** The URL the client asked for (https://query2.finance.yahoo.com/…), not the local one. */
  url: URL;
  method: string;
  headers: IncomingHttpHeaders;
  /** Chart symbol, quote `symbols`, AV `symbol` or `FROM/TO` for FX; null otherwise. */
  symbol: string | null;
  /** AV `function` parameter, or null. */
  avFunction: string | null;
  /** What was served: 'fixture:<file>', 'scripted:<kind>[:status]', 'default:<what>'. */
  answeredWith: string;
}

export interface ProviderServer {
  /** http://127.0.0.1:<port> */
  readonly origin: string;
  /** Pass as `fetch` to testDeps / createProviders / the provider factories. */
  readonly fetch: typeof fetch;
  /** Queue responses for the next requests matching `target`. */
  script(target: Target, ...responses: ScriptedResponse[]): void;
  /** Answer every request matching `target` with `response` until the returned function is called. */
  always(target: Target, response: ScriptedResponse): () => void;
  /** Every request so far, in arrival order. */
  readonly requests: readonly RecordedRequest[];
  requestsFor(target: Target): RecordedRequest[];
  /** Scripted responses not consumed yet (a test can assert its faults were all hit). */
  pendingScripts(): number;
  /** Forget scripts, `always` answers and recorded requests. */
  reset(): void;
  close(): Promise<void>;
}

/** Ready-made responses for the faults and bodies the issue's tests need. */
export const respond = {
  json(body: unknown, status = 200, headers?: Record<string, string>): ScriptedResponse {
    return { kind: 'json', body, status, ...(headers ? { headers } : {}) };
  },
  text(body: string, status = 200, headers?: Record<string, string>): ScriptedResponse {
    return { kind: 'text', body, status, ...(headers ? { headers } : {}) };
  },
  /** HTTP 429 as Yahoo sends it (text body); with a Retry-After header when given (seconds or HTTP date). */
  rateLimited(retryAfter?: number | string): ScriptedResponse {
    return {
      kind: 'text',
      body: 'Too Many Requests\r\n',
      status: 429,
      headers: {
        'content-type': 'text/plain',
        ...(retryAfter === undefined ? {} : { 'retry-after': String(retryAfter) }),
      },
    };
  },
  /** An HTML 5xx page, as a CDN in front of either service returns. */
  serverError(status = 500): ScriptedResponse {
    return {
      kind: 'text',
      body: `<html><body><h1>${status} Server Error</h1></body></html>`,
      status,
      headers: { 'content-type': 'text/html' },
    };
  },
  hang(): ScriptedResponse {
    return { kind: 'hang' };
  },
  stall(): ScriptedResponse {
    return { kind: 'stall' };
  },
  reset(): ScriptedResponse {
    return { kind: 'reset' };
  },
  /** HTTP 200, content-type JSON, body cut off mid-object. */
  malformedJson(): ScriptedResponse {
    return { kind: 'text', body: '{"chart":{"result":[{"meta":{"currency":"USD","symbol":"AAP' };
  },
  /** Alpha Vantage's per-minute throttle: HTTP 200 with a `Note`. */
  avNote(): ScriptedResponse {
    return {
      kind: 'json',
      body: {
        Note: 'Thank you for using Alpha Vantage! Our standard API call frequency is 5 calls per minute and 500 calls per day. Please visit https://www.alphavantage.co/premium/ if you would like to target a higher API call frequency.',
      },
    };
  },
  /** Alpha Vantage's daily limit: HTTP 200 with an `Information`. */
  avInformation(): ScriptedResponse {
    return {
      kind: 'json',
      body: {
        Information:
          'Thank you for using Alpha Vantage! Our standard API rate limit is 25 requests per day. Please subscribe to any of the premium plans at https://www.alphavantage.co/premium/ to instantly remove all daily rate limits.',
      },
    };
  },
  /** Alpha Vantage's answer to a premium-only function on a free key. */
  avPremium(): ScriptedResponse {
    return {
      kind: 'json',
      body: {
        Information:
          'Thank you for using Alpha Vantage! This is a premium endpoint. You may subscribe to any of the premium plans at https://www.alphavantage.co/premium/ to instantly unlock all premium endpoints',
      },
    };
  },
  /** Alpha Vantage's invalid-call error (unknown symbol, bad parameter): HTTP 200. */
  avErrorMessage(fn = 'TIME_SERIES_DAILY'): ScriptedResponse {
    return { kind: 'json', body: avInvalidCall(fn) };
  },
  /** A real chart body with `meta.currency` a number: yahoo-finance2 fails its schema validation. */
  yahooInvalidChart(): ScriptedResponse {
    const body = yahooFixtureBody('chart-AAPL-2020-08-31-to-2020-11-07') as {
      chart: { result: { meta: Record<string, unknown> }[] };
    };
    body.chart.result[0]!.meta.currency = 840;
    return { kind: 'json', body };
  },
  /** Yahoo's answer for an unknown or delisted symbol. */
  yahooNotFound(): ScriptedResponse {
    return {
      kind: 'json',
      status: 404,
      body: {
        chart: {
          result: null,
          error: { code: 'Not Found', description: 'No data found, symbol may be delisted' },
        },
      },
    };
  },
  yahooFixture(name: string): ScriptedResponse {
    return { kind: 'yahoo-fixture', name };
  },
  passThrough(): ScriptedResponse {
    return { kind: 'default' };
  },
};

interface YahooRecording {
  name: string;
  symbol: string;
  interval: string;
  period1: number;
  period2: number;
  status: number;
  body: unknown;
}

/** The recorded `response.bodyJson` of a Yahoo fixture (a fresh copy each call). */
export function yahooFixtureBody(name: string): unknown {
  const file = JSON.parse(readFileSync(join(YAHOO_FIXTURES_DIR, `${name}.json`), 'utf8')) as {
    response: { bodyJson: unknown };
  };
  return file.response.bodyJson;
}

/** A fixture of test/fixtures/alphavantage by file name without `.json` (a fresh copy each call). */
export function avFixtureBody(name: string): unknown {
  return JSON.parse(readFileSync(join(AV_FIXTURES_DIR, `${name}.json`), 'utf8'));
}

function loadYahooRecordings(): YahooRecording[] {
  return readdirSync(YAHOO_FIXTURES_DIR)
    .filter((f) => f.endsWith('.json'))
    .map((f) => {
      const rec = JSON.parse(readFileSync(join(YAHOO_FIXTURES_DIR, f), 'utf8')) as {
        request: { url: string };
        response: { status: number; bodyJson: unknown };
      };
      const url = new URL(rec.request.url);
      const m = /\/v8\/finance\/chart\/([^/]+)$/.exec(url.pathname);
      if (!m) return null;
      return {
        name: f.replace(/\.json$/, ''),
        symbol: decodeURIComponent(m[1]!),
        interval: url.searchParams.get('interval') ?? '1d',
        period1: Number(url.searchParams.get('period1')),
        period2: Number(url.searchParams.get('period2')),
        status: rec.response.status,
        body: rec.response.bodyJson,
      };
    })
    .filter((r): r is YahooRecording => r !== null);
}

function avInvalidCall(fn: string): unknown {
  return {
    'Error Message': `Invalid API call. Please retry or visit the documentation (https://www.alphavantage.co/documentation/) for ${fn}.`,
  };
}

function isProviderHost(host: string): boolean {
  return host === 'yahoo.com' || host.endsWith('.yahoo.com') || host === 'www.alphavantage.co';
}

function matches(target: Target, req: RecordedRequest): boolean {
  if (typeof target === 'function') return target(req);
  switch (target) {
    case 'yahoo':
      return req.provider === 'yahoo' && (req.kind === 'chart' || req.kind === 'quote');
    case 'yahoo-chart':
      return req.kind === 'chart';
    case 'yahoo-quote':
      return req.kind === 'quote';
    case 'yahoo-crumb':
      return req.kind === 'crumb';
    case 'yahoo-cookie':
      return req.kind === 'cookie';
    case 'alphavantage':
      return req.provider === 'alphavantage';
  }
}

function classify(url: URL): Pick<RecordedRequest, 'provider' | 'kind' | 'symbol' | 'avFunction'> {
  if (url.hostname === 'www.alphavantage.co') {
    const p = url.searchParams;
    const from = p.get('from_symbol');
    const symbol = p.get('symbol') ?? (from ? `${from}/${p.get('to_symbol') ?? ''}` : null);
    return { provider: 'alphavantage', kind: 'av', symbol, avFunction: p.get('function') };
  }
  const chart = /^\/v8\/finance\/chart\/([^/]+)$/.exec(url.pathname);
  if (chart)
    return { provider: 'yahoo', kind: 'chart', symbol: decodeURIComponent(chart[1]!), avFunction: null };
  if (url.pathname === '/v7/finance/quote') {
    return { provider: 'yahoo', kind: 'quote', symbol: url.searchParams.get('symbols'), avFunction: null };
  }
  if (url.pathname === '/v1/test/getcrumb')
    return { provider: 'yahoo', kind: 'crumb', symbol: null, avFunction: null };
  if (url.hostname === 'finance.yahoo.com' && url.pathname.startsWith('/quote/')) {
    return { provider: 'yahoo', kind: 'cookie', symbol: null, avFunction: null };
  }
  return { provider: 'yahoo', kind: 'other', symbol: null, avFunction: null };
}

export async function startProviderServer(): Promise<ProviderServer> {
  const recordings = loadYahooRecordings();
  const queued: { target: Target; response: ScriptedResponse }[] = [];
  const standing = new Set<{ target: Target; response: ScriptedResponse }>();
  const requests: RecordedRequest[] = [];
  const sockets = new Set<Socket>();

  const send = (
    res: ServerResponse,
    status: number,
    body: string,
    headers: Record<string, string> = {},
  ): void => {
    res.writeHead(status, { 'content-type': 'application/json;charset=utf-8', ...headers });
    res.end(body);
  };

  const yahooChart = (rec: RecordedRequest, res: ServerResponse): string => {
    const p1 = Number(rec.url.searchParams.get('period1'));
    const p2 = Number(rec.url.searchParams.get('period2'));
    const interval = rec.url.searchParams.get('interval') ?? '1d';
    const mine = recordings.filter((r) => r.symbol === rec.symbol);
    if (mine.length === 0) {
      send(
        res,
        404,
        JSON.stringify({
          chart: {
            result: null,
            error: { code: 'Not Found', description: 'No data found, symbol may be delisted' },
          },
        }),
      );
      return 'default:not-found';
    }
    let best: YahooRecording | null = null;
    let bestOverlap = 0;
    for (const r of mine) {
      if (r.interval !== interval) continue;
      const overlap = Math.min(p2, r.period2) - Math.max(p1, r.period1);
      if (overlap > bestOverlap) {
        best = r;
        bestOverlap = overlap;
      }
    }
    if (!best) {
      send(
        res,
        400,
        JSON.stringify({
          chart: {
            result: null,
            error: {
              code: 'Bad Request',
              description: `Data doesn't exist for startDate = ${p1}, endDate = ${p2}`,
            },
          },
        }),
      );
      return 'default:no-data';
    }
    send(res, best.status, JSON.stringify(best.body));
    return `fixture:${best.name}`;
  };

  const yahooQuote = (rec: RecordedRequest, res: ServerResponse): string => {
    if (rec.url.searchParams.get('crumb') !== PROVIDER_SERVER_CRUMB) {
      send(
        res,
        401,
        JSON.stringify({
          finance: { result: null, error: { code: 'Unauthorized', description: 'Invalid Crumb' } },
        }),
      );
      return 'default:invalid-crumb';
    }
    const symbols = (rec.symbol ?? '').split(',');
    if (symbols.length === 1 && symbols[0] === 'AAPL') {
      send(res, 200, JSON.stringify(yahooFixtureBody('quote-AAPL')));
      return 'fixture:quote-AAPL';
    }
    send(res, 200, JSON.stringify({ quoteResponse: { result: [], error: null } }));
    return 'default:empty-quote';
  };

  const alphaVantage = (rec: RecordedRequest, res: ServerResponse): string => {
    const p = rec.url.searchParams;
    if (!p.get('apikey')) {
      send(
        res,
        200,
        JSON.stringify({
          'Error Message':
            'the parameter apikey is invalid or missing. Please claim your free API key on (https://www.alphavantage.co/support/#api-key). It should take less than 20 seconds.',
        }),
      );
      return 'default:no-apikey';
    }
    const fn = p.get('function') ?? '';
    const parts = [fn];
    if (p.get('from_symbol')) parts.push(p.get('from_symbol')!, p.get('to_symbol') ?? '');
    else parts.push(p.get('symbol') ?? '');
    if (fn === 'TIME_SERIES_INTRADAY') parts.push(p.get('interval') ?? '', p.get('month') ?? '');
    const name = parts.filter(Boolean).join('_');
    try {
      const body = readFileSync(join(AV_FIXTURES_DIR, `${name}.json`), 'utf8');
      send(res, 200, body);
      return `fixture:alphavantage/${name}`;
    } catch {
      send(res, 200, JSON.stringify(fn === 'GLOBAL_QUOTE' ? { 'Global Quote': {} } : avInvalidCall(fn)));
      return 'default:av-invalid-call';
    }
  };

  const answerDefault = (rec: RecordedRequest, res: ServerResponse): string => {
    switch (rec.kind) {
      case 'chart':
        return yahooChart(rec, res);
      case 'quote':
        return yahooQuote(rec, res);
      case 'cookie':
        res.writeHead(200, {
          'content-type': 'text/html;charset=utf-8',
          'set-cookie':
            'A3=d=AQABBtest&S=AQAAAtest; Max-Age=31557600; Domain=.yahoo.com; Path=/; Secure; HttpOnly; SameSite=None',
        });
        res.end('<!doctype html><html><head><title>AAPL</title></head><body></body></html>');
        return 'default:cookie';
      case 'crumb':
        res.writeHead(200, { 'content-type': 'text/plain;charset=utf-8' });
        res.end(PROVIDER_SERVER_CRUMB);
        return 'default:crumb';
      case 'av':
        return alphaVantage(rec, res);
      case 'other':
        send(res, 404, JSON.stringify({ error: 'provider-server: no route' }));
        return 'default:no-route';
    }
  };

  const answer = (
    r: ScriptedResponse,
    rec: RecordedRequest,
    req: IncomingMessage,
    res: ServerResponse,
  ): string => {
    switch (r.kind) {
      case 'json':
        send(res, r.status ?? 200, JSON.stringify(r.body), r.headers);
        return `scripted:json:${r.status ?? 200}`;
      case 'text':
        send(res, r.status ?? 200, r.body, r.headers);
        return `scripted:text:${r.status ?? 200}`;
      case 'hang':
        return 'scripted:hang';
      case 'stall':
        res.writeHead(200, { 'content-type': 'application/json;charset=utf-8' });
        res.write('{"chart":{"result":[{"meta":{');
        return 'scripted:stall';
      case 'reset':
        req.socket.destroy();
        return 'scripted:reset';
      case 'yahoo-fixture':
        send(res, 200, JSON.stringify(yahooFixtureBody(r.name)));
        return `fixture:${r.name}`;
      case 'default':
        return answerDefault(rec, res);
    }
  };

  const server = createServer((req, res) => {
    // The first path segment is the original host (see `fetch` below).
    const local = new URL(req.url ?? '/', 'http://local');
    const [, host = '', ...rest] = local.pathname.split('/');
    const url = new URL(`https://${host}/${rest.join('/')}${local.search}`);
    const rec: RecordedRequest = {
      ...classify(url),
      url,
      method: req.method ?? 'GET',
      headers: req.headers,
      answeredWith: '',
    };
    requests.push(rec);
    req.resume();
    const i = queued.findIndex((q) => matches(q.target, rec));
    let scripted: ScriptedResponse | undefined;
    if (i >= 0) scripted = queued.splice(i, 1)[0]!.response;
    else scripted = [...standing].find((s) => matches(s.target, rec))?.response;
    rec.answeredWith = scripted ? answer(scripted, rec, req, res) : answerDefault(rec, res);
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const providerFetch: typeof fetch = (input, init) => {
    const original = new URL(input instanceof Request ? input.url : String(input));
    if (!isProviderHost(original.hostname)) {
      return Promise.reject(
        new TypeError(`provider-server: refusing to fetch ${original.origin} from a test`),
      );
    }
    const local = `${origin}/${original.hostname}${original.pathname}${original.search}`;
    return input instanceof Request
      ? globalThis.fetch(new Request(local, input), init)
      : globalThis.fetch(local, init);
  };

  return {
    origin,
    fetch: providerFetch,
    script(target, ...responses) {
      for (const response of responses) queued.push({ target, response });
    },
    always(target, response) {
      const entry = { target, response };
      standing.add(entry);
      return () => void standing.delete(entry);
    },
    get requests() {
      return requests;
    },
    requestsFor(target) {
      return requests.filter((r) => matches(target, r));
    },
    pendingScripts() {
      return queued.length;
    },
    reset() {
      queued.length = 0;
      standing.clear();
      requests.length = 0;
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
    },
  };
}

/** One bar of a hand-made chart body. */
export interface ChartRow {
  ts: Date;
  open: number | null;
  high: number | null;
  low: number | null;
  close: number | null;
  volume: number | null;
}

/**
 * A Yahoo v8 chart body in the real shape (meta copied from the recorded AAPL response), for
 * intraday tests: Yahoo's recordings have no intraday response.
 */
export function yahooChartBody(opts: {
  symbol: string;
  interval: '1m' | '5m' | '1d';
  rows: ChartRow[];
  currency?: string;
  exchangeTimezoneName?: string;
}): unknown {
  const base = yahooFixtureBody('chart-AAPL-2020-08-31-to-2020-11-07') as {
    chart: { result: { meta: Record<string, unknown> }[] };
  };
  const meta = {
    ...base.chart.result[0]!.meta,
    symbol: opts.symbol,
    currency: opts.currency ?? 'USD',
    exchangeTimezoneName: opts.exchangeTimezoneName ?? 'America/New_York',
    dataGranularity: opts.interval,
  };
  const col = (k: keyof Omit<ChartRow, 'ts'>): (number | null)[] => opts.rows.map((r) => r[k]);
  return {
    chart: {
      result: [
        {
          meta,
          timestamp: opts.rows.map((r) => Math.floor(r.ts.getTime() / 1000)),
          indicators: {
            quote: [
              {
                open: col('open'),
                high: col('high'),
                low: col('low'),
                close: col('close'),
                volume: col('volume'),
              },
            ],
          },
        },
      ],
      error: null,
    },
  };
}
