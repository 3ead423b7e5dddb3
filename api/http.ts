/**
 * The declarative API layer: a route is declared once (method, path, zod schemas, access,
 * handler) and that one declaration is mounted on Express, validated at the edge and turned into
 * OpenAPI (api/openapi.ts). Handlers return data or throw the typed errors below; one wrapper
 * turns both into responses and one builder shapes every error body.
 */
import express, {
  type ErrorRequestHandler,
  type Request,
  type RequestHandler,
  type Response,
  type Router,
} from 'express';
import { issuesOf, strictObject } from '../core/input.ts';
import type { Logger } from '../core/logger.ts';
import { isRedisUnavailable } from '../core/redis.ts';
import { z } from '../core/zod.ts';
import type { Scope } from './auth/index.ts';

export interface FieldError {
  /** Where the bad value was: `params.symbol`, `query.limit`, `body.symbols.3`. */
  path: string;
  message: string;
}

export interface ErrorBody {
  error: { status: number; code: string; message: string; fields?: FieldError[] } & Record<string, unknown>;
}

/**
 * The one error-body builder: every non-2xx JSON response of the API has this shape. `extra`:
 * machine-readable figures a refusal names (e.g. an order's `deposit_required`), after the rest.
 */
export function errorBody(
  status: number,
  code: string,
  message: string,
  fields?: FieldError[],
  extra?: Record<string, unknown>,
): ErrorBody {
  return { error: { status, code, message, ...(fields && fields.length > 0 ? { fields } : {}), ...extra } };
}

export const ErrorBodySchema = z
  .object({
    error: z.object({
      status: z.number().int(),
      code: z.string().openapi({ example: 'invalid_request' }),
      message: z.string(),
      fields: z
        .array(z.object({ path: z.string().openapi({ example: 'query.limit' }), message: z.string() }))
        .optional(),
    }),
  })
  .openapi('Error');

export class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  readonly fields: FieldError[] | undefined;
  /** Seconds for a Retry-After header (503s). */
  retryAfterSeconds: number | undefined;
  /** Extra members of the error object (errorBody's `extra`). */
  extra: Record<string, unknown> | undefined;
  constructor(status: number, code: string, message: string, fields?: FieldError[]) {
    super(message);
    this.name = new.target.name;
    this.status = status;
    this.code = code;
    this.fields = fields;
  }
}

/** A backing service (Redis) is unreachable: 503 with Retry-After, the request may be repeated. */
export class ServiceUnavailableError extends HttpError {
  constructor(message: string, retryAfterSeconds = 5) {
    super(503, 'service_unavailable', message);
    this.retryAfterSeconds = retryAfterSeconds;
  }
}

export class BadRequestError extends HttpError {
  constructor(message: string, fields?: FieldError[]) {
    super(400, 'invalid_request', message, fields);
  }
  /** A 400 for one field, e.g. `BadRequestError.field('query.start_date', 'must not be after end_date')`. */
  static field(path: string, message: string): BadRequestError {
    return new BadRequestError(`${path}: ${message}`, [{ path, message }]);
  }
}

export class NotFoundError extends HttpError {
  constructor(message: string) {
    super(404, 'not_found', message);
  }
}

export class ConflictError extends HttpError {
  constructor(message: string) {
    super(409, 'conflict', message);
  }
}

export type RequestPart = 'params' | 'query' | 'body';

/** Zod issues as field errors, prefixed with the request part they came from. */
export function fieldsFromZod(error: z.ZodError, part: RequestPart): FieldError[] {
  return issuesOf(error).map((i) => ({ path: i.path ? `${part}.${i.path}` : part, message: i.message }));
}

export function validationError(error: z.ZodError, part: RequestPart): BadRequestError {
  const fields = fieldsFromZod(error, part);
  return new BadRequestError(fields.map((f) => `${f.path}: ${f.message}`).join('; '), fields);
}

/** A handler result with a status other than the route's default (e.g. /ready's 503). */
export class Reply<T> {
  readonly status: number;
  readonly body: T;
  constructor(status: number, body: T) {
    this.status = status;
    this.body = body;
  }
}

/**
 * A 200 body already serialized as JSON (by PostgreSQL: repositories' `…Json` reads), written as
 * it is: no JSON.stringify and no ETag (see ARCHITECTURE.md, Decisions: serving history). A Buffer
 * is UTF-8 JSON already encoded (the series cache keeps its bodies so).
 */
export class JsonText {
  readonly text: string | Buffer;
  constructor(text: string | Buffer) {
    this.text = text;
  }
}

/**
 * A response the handler writes itself (a file streamed from a store, with its own status and
 * headers: downloads, ranges, 304). `send` must end the response or throw before writing.
 */
export class StreamReply {
  readonly send: (res: Response) => Promise<void>;
  constructor(send: (res: Response) => Promise<void>) {
    this.send = send;
  }
}

export type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';
/** Who may call a route: anyone, or a bearer token holding the scope (admin implies all). */
export type Access = Scope | 'public';

export interface RouteInput<P, Q, B> {
  params: P;
  query: Q;
  body: B;
  req: Request;
}

type NoInput = z.ZodObject<Record<string, never>>;

export interface RouteDef<
  P extends z.ZodType = z.ZodType,
  Q extends z.ZodType = z.ZodType,
  B extends z.ZodType = z.ZodType,
  R extends z.ZodType = z.ZodType,
> {
  method: Method;
  /** OpenAPI-style path: `/api/jobs/{id}` (mounted on Express as `/api/jobs/:id`). */
  path: string;
  /** OpenAPI operationId; by default derived from method and path (api/openapi.ts operationIdOf). */
  operationId?: string;
  summary: string;
  description?: string;
  tags: string[];
  /**
   * Mounted but left out of the OpenAPI document: only for a deprecated alias that old clients
   * still call while the documented route replaces it (two documented paths may not differ only
   * in a parameter's name).
   */
  undocumented?: boolean;
  access: Access;
  params?: P;
  query?: Q;
  body?: B;
  /** Success status (default 200). */
  status?: number;
  response: R;
  /** Error statuses the route can answer with besides 400 (and 401/403 on protected routes). */
  errors?: number[];
  /** Other documented responses with a body of their own (returned as a `Reply`). */
  otherResponses?: Record<number, { description: string; schema: z.ZodType }>;
  /** Documentation-only request body, when validation depends on a path parameter (jobs). */
  docsBody?: z.ZodType;
  /** Documentation-only request headers (the handler reads and checks them, e.g. Idempotency-Key). */
  docsHeaders?: z.ZodObject;
  handler(
    input: RouteInput<z.output<P>, z.output<Q>, z.output<B>>,
  ): Promise<z.input<R> | Reply<z.input<R>> | JsonText | StreamReply>;
  /** Media type of the success body in the docs when it is not JSON (a StreamReply's file). */
  mediaType?: string;
}

/** Declares a route; the generics keep the handler's input and output tied to its schemas. */
export function defineRoute<
  R extends z.ZodType,
  P extends z.ZodType = NoInput,
  Q extends z.ZodType = NoInput,
  B extends z.ZodType = NoInput,
>(def: RouteDef<P, Q, B, R>): RouteDef {
  return def;
}

/** The one async wrapper: a rejected handler goes to the error middleware, never unhandled. */
export function asyncHandler(
  fn: (req: Request, res: Parameters<RequestHandler>[1]) => Promise<void>,
): RequestHandler {
  return (req, res, next) => {
    fn(req, res).catch(next);
  };
}

function parsePart<S extends z.ZodType>(
  schema: S | undefined,
  value: unknown,
  part: RequestPart,
): z.output<S> {
  if (!schema) return {} as z.output<S>;
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw validationError(parsed.error, part);
  return parsed.data;
}

const noQuery = strictObject({});

/** Job payloads may list up to 5000 tickers; nothing the API accepts is larger. */
export const JSON_BODY_LIMIT = '256kb';

// Parsed per route, after the access guard: a caller without a token never gets a body read.
const jsonBody = express.json({ limit: JSON_BODY_LIMIT });

export function expressPath(openApiPath: string): string {
  return openApiPath.replace(/\{([A-Za-z0-9_]+)\}/g, ':$1');
}

/**
 * Mounts declared routes on a router: access guard first (so a tokenless request is refused
 * before its input is even looked at), then the JSON body parser, validation of params, query
 * and body, then the handler.
 */
export function mountRoutes(
  router: Router,
  routes: readonly RouteDef[],
  guard: (access: Access) => RequestHandler[],
): void {
  for (const route of routes) {
    const handle = asyncHandler(async (req, res) => {
      const params = parsePart(route.params, req.params, 'params');
      // A route that declares no query takes none: an unknown parameter is named, not ignored.
      const query = parsePart(route.query ?? noQuery, req.query, 'query');
      // A body that is not JSON would be silently read as {} (all defaults): refuse it instead.
      // No body at all (req.is() null, or Content-Length: 0) is fine: it reads as {}.
      if (route.body && req.is('application/json') === false && req.get('content-length') !== '0') {
        throw new HttpError(415, 'unsupported_media_type', 'body: must be application/json', [
          { path: 'body', message: 'must be application/json' },
        ]);
      }
      // Express 5 leaves req.body undefined when nothing was sent: treat that as an empty object.
      const body = parsePart(route.body, req.body ?? {}, 'body');
      const out = await route.handler({ params, query, body, req });
      if (out instanceof StreamReply) await out.send(res);
      else if (out instanceof JsonText) {
        const body = typeof out.text === 'string' ? Buffer.from(out.text, 'utf8') : out.text;
        res.status(route.status ?? 200);
        res.setHeader('Content-Type', 'application/json; charset=utf-8');
        res.setHeader('Content-Length', body.length);
        res.end(body);
      } else if (out instanceof Reply) res.status(out.status).json(out.body);
      else res.status(route.status ?? 200).json(out);
    });
    const path = expressPath(route.path);
    const handlers = [...guard(route.access), ...(route.body ? [jsonBody] : []), handle];
    switch (route.method) {
      case 'get':
        router.get(path, ...handlers);
        break;
      case 'post':
        router.post(path, ...handlers);
        break;
      case 'put':
        router.put(path, ...handlers);
        break;
      case 'patch':
        router.patch(path, ...handlers);
        break;
      case 'delete':
        router.delete(path, ...handlers);
        break;
    }
  }
}

/** Errors thrown by body-parser and friends (the http-errors convention). */
interface HttpErrorLike {
  status: number;
  expose?: boolean;
  type?: string;
  message: string;
}

function isHttpErrorLike(err: unknown): err is HttpErrorLike {
  return (
    typeof err === 'object' &&
    err !== null &&
    typeof (err as { status?: unknown }).status === 'number' &&
    typeof (err as { message?: unknown }).message === 'string'
  );
}

const parserCodes: Record<string, string> = {
  'entity.parse.failed': 'invalid_json',
  'entity.too.large': 'payload_too_large',
  'encoding.unsupported': 'unsupported_encoding',
  'charset.unsupported': 'unsupported_charset',
};

export function toHttpError(err: unknown): HttpError {
  if (err instanceof HttpError) return err;
  if (isHttpErrorLike(err) && err.status >= 400 && err.status < 500) {
    const code = (err.type && parserCodes[err.type]) ?? 'invalid_request';
    const message = err.expose === false ? 'invalid request' : err.message;
    const fields = err.type?.startsWith('entity.') ? [{ path: 'body', message }] : undefined;
    return new HttpError(err.status, code, message, fields);
  }
  if (isRedisUnavailable(err))
    return new ServiceUnavailableError('the job queue (Redis) is unreachable; retry shortly');
  return new HttpError(500, 'internal_error', 'internal server error');
}

/** Last middleware: typed errors keep their status; anything else is logged and becomes a bare 500. */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err: unknown, req, res, next) => {
    if (res.headersSent) {
      next(err);
      return;
    }
    const e = toHttpError(err);
    if (e.status === 503)
      logger.warn({ err: (err as Error).message, path: req.path }, 'request refused: service unavailable');
    else if (e.status >= 500) logger.error({ err, method: req.method, path: req.path }, 'request failed');
    if (e.retryAfterSeconds !== undefined) res.setHeader('Retry-After', String(e.retryAfterSeconds));
    res.status(e.status).json(errorBody(e.status, e.code, e.message, e.fields, e.extra));
  };
}

export const notFoundHandler: RequestHandler = (req, res) => {
  const path = req.originalUrl.split('?', 1)[0] ?? '';
  res.status(404).json(errorBody(404, 'not_found', `no route for ${req.method} ${path}`));
};
