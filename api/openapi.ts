/**
 * The OpenAPI 3 document, generated from the same route declarations that are mounted and
 * validated (api/http.ts), so the docs cannot drift from what the API accepts.
 */
import { OpenAPIRegistry, OpenApiGeneratorV31, type RouteConfig } from '@asteasolutions/zod-to-openapi';
import type { z } from 'zod';
import pkg from '../package.json' with { type: 'json' };
import { ErrorBodySchema, type RouteDef } from './http.ts';

export type OpenApiDocument = ReturnType<OpenApiGeneratorV31['generateDocument']>;

const errorDescriptions: Record<number, string> = {
  400: 'Invalid input; `error.fields` names each bad field.',
  401: 'Missing, invalid or expired bearer token.',
  403: 'The token lacks the required scope.',
  404: 'Not found.',
  409: 'Conflict.',
  413: 'Body larger than the limit.',
  415: 'Body is not application/json.',
  422: 'Understood but cannot be answered from the stored data; `error.fields` names what is missing.',
  502: 'The upstream price provider failed.',
  503: 'Unavailable for now (a rate-limiting price provider, or Redis unreachable); see Retry-After.',
};

const json = (schema: z.ZodType) => ({ 'application/json': { schema } });

const pascal = (word: string): string =>
  word
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((w) => w[0]!.toUpperCase() + w.slice(1))
    .join('');

/**
 * A route's operationId: its own, or one derived from method and path, so every operation has a
 * stable, unique id for client generators: `GET /api/v2/realtime/prices/{symbol}` →
 * `getV2RealtimePricesBySymbol` (the `/api` prefix dropped, parameters as `By<Name>`).
 */
export function operationIdOf(route: RouteDef): string {
  if (route.operationId) return route.operationId;
  const words = route.path
    .replace(/^\/api(?=\/|$)/, '')
    .split('/')
    .filter(Boolean)
    .map((seg) => (seg.startsWith('{') ? `By${pascal(seg.slice(1, -1))}` : pascal(seg)));
  return route.method + words.join('');
}

function toRouteConfig(route: RouteDef): RouteConfig {
  const isPublic = route.access === 'public';
  const hasInput = Boolean(route.params ?? route.query ?? route.body);
  const errorStatuses = [
    ...(hasInput ? [400] : []),
    ...(isPublic ? [] : [401, 403]),
    ...(route.body ? [413, 415] : []),
    ...(route.errors ?? []),
  ].filter((s, i, all) => all.indexOf(s) === i);
  const responses: RouteConfig['responses'] = {
    [String(route.status ?? 200)]: {
      description: 'OK',
      content: route.mediaType ? { [route.mediaType]: { schema: route.response } } : json(route.response),
    },
  };
  for (const status of errorStatuses) {
    responses[String(status)] = {
      description: errorDescriptions[status] ?? 'Error',
      content: json(ErrorBodySchema),
    };
  }
  for (const [status, other] of Object.entries(route.otherResponses ?? {})) {
    responses[status] = { description: other.description, content: json(other.schema) };
  }
  const bodySchema = route.docsBody ?? route.body;
  return {
    method: route.method,
    path: route.path,
    operationId: operationIdOf(route),
    summary: route.summary,
    ...(route.description ? { description: route.description } : {}),
    tags: route.tags,
    // Bearer for any token; oauth2 names the scope and lets the UI fetch a client-credentials token.
    security: isPublic ? [] : [{ bearerAuth: [] }, { oauth2: [route.access] }],
    request: {
      ...(route.params ? { params: route.params as z.ZodObject } : {}),
      ...(route.query ? { query: route.query as z.ZodObject } : {}),
      ...(route.docsHeaders ? { headers: route.docsHeaders } : {}),
      // An absent body is read as {}: it is required only when {} is not a valid body.
      ...(bodySchema
        ? { body: { required: !bodySchema.safeParse({}).success, content: json(bodySchema) } }
        : {}),
    },
    responses,
  };
}

export function buildOpenApiDocument(
  routes: readonly RouteDef[],
  opts: { publicUrl: string },
): OpenApiDocument {
  const registry = new OpenAPIRegistry();
  registry.registerComponent('securitySchemes', 'bearerAuth', {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'JWT',
    description: 'An access token from the OAuth2 token endpoint.',
  });
  registry.registerComponent('securitySchemes', 'oauth2', {
    type: 'oauth2',
    flows: {
      clientCredentials: {
        tokenUrl: `${opts.publicUrl}/oauth/token`,
        scopes: {
          'results:read': 'Read prices, analytics, jobs and reports.',
          'jobs:write': 'Trigger jobs.',
          trading: 'Create clients, move their cash and place paper-trading orders.',
          admin: 'Everything, including operator functions.',
        },
      },
    },
  });
  // A deprecated alias kept for old clients is mounted but not documented (README says so).
  for (const route of routes) if (!route.undocumented) registry.registerPath(toRouteConfig(route));
  return new OpenApiGeneratorV31(registry.definitions).generateDocument({
    openapi: '3.1.0',
    info: {
      title: 'Market data API',
      version: pkg.version,
      description:
        'Prices, analytics and jobs of the market-data workers. Every route except /health, /ready, /metrics and /docs needs a bearer token with the scope shown.',
    },
    servers: [{ url: opts.publicUrl }],
  });
}
