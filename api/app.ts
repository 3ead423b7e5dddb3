/**
 * The Express application factory. Order matters and reads top to bottom: request id and log,
 * metrics, security headers, public probes and docs, the auth module's own routes
 * and Bull Board, then the declared API routes behind their scopes, then 404 and the error body.
 *
 * `createApp` starts QueueEvents listeners for the job metrics; stop them with `closeApp(app)`
 * after the HTTP server has closed. Bodies are parsed per route, after its access guard, as
 * JSON up to JSON_BODY_LIMIT (api/http.ts); the auth routes and Bull Board parse their own.
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import express, { type RequestHandler } from 'express';
import helmet from 'helmet';
import swaggerUi from 'swagger-ui-express';
import type { Deps } from '../core/deps.ts';
import type { Logger } from '../core/logger.ts';
import { createRedis } from '../core/redis.ts';
import type { QueueSet } from '../jobs/queues.ts';
import { mountAdmin } from './admin.ts';
import type { Auth } from './auth/index.ts';
import { errorHandler, mountRoutes, notFoundHandler, type Access, type RouteDef } from './http.ts';
import { createMetrics, type Metrics } from './metrics.ts';
import { buildOpenApiDocument } from './openapi.ts';
import { analyticsRoutes } from './routes/analytics.ts';
import { clientRoutes } from './routes/clients.ts';
import { healthRoutes } from './routes/health.ts';
import { jobsRoutes } from './routes/jobs.ts';
import { marginRoutes } from './routes/margin.ts';
import { marginRunsRoutes } from './routes/margin-runs.ts';
import { platformRoutes } from './routes/platform.ts';
import { pricesRoutes } from './routes/prices.ts';
import { reportsRoutes } from './routes/reports.ts';
import { stocksRoutes } from './routes/stocks.ts';
import { watchlistRoutes } from './routes/watchlist.ts';
import { createSeriesCache, type SeriesCache } from './series-cache.ts';

/** Probes and scrapes arrive every few seconds: log them at debug so they do not drown the rest. */
const QUIET_PATHS = new Set(['/health', '/ready', '/metrics']);

const closers = new WeakMap<express.Express, () => Promise<void>>();
const seriesCaches = new WeakMap<express.Express, SeriesCache>();

/** The app's series cache (api/series-cache.ts), undefined when API_SERIES_CACHE_MB is 0. */
export function seriesCacheOf(app: express.Express): SeriesCache | undefined {
  return seriesCaches.get(app);
}

/** Every declared route, in mount order. Exported for tools that need the table (docs, tests). */
export function apiRoutes(
  deps: Deps,
  queues: QueueSet,
  opts: { seriesCache?: SeriesCache } = {},
): RouteDef[] {
  return [
    ...healthRoutes(deps),
    ...pricesRoutes(deps, opts),
    ...analyticsRoutes(deps),
    ...stocksRoutes(deps, queues),
    ...watchlistRoutes(deps),
    ...marginRoutes(deps),
    ...platformRoutes(deps),
    ...clientRoutes(deps, { houseRules: (asOf) => deps.repos.margin.houseRules(asOf) }),
    ...marginRunsRoutes(deps),
    ...reportsRoutes(deps),
    ...jobsRoutes(queues),
  ];
}

/**
 * One line per request, after it finished: method, path without the query string (which may
 * carry OAuth codes), route, status and duration. Headers are never logged (tokens, cookies).
 */
function requestLog(logger: Logger): RequestHandler {
  return (req, res, next) => {
    const id = randomUUID();
    const start = performance.now();
    res.setHeader('X-Request-Id', id);
    res.on('finish', () => {
      const path = req.originalUrl.split('?', 1)[0] ?? '';
      const line = {
        req_id: id,
        method: req.method,
        path,
        status: res.statusCode,
        ms: Math.round((performance.now() - start) * 10) / 10,
        client: res.locals.principal?.clientId ?? res.locals.principal?.subject,
      };
      if (QUIET_PATHS.has(path)) logger.debug(line, 'request');
      else logger.info(line, 'request');
    });
    next();
  };
}

/**
 * helmet everywhere with its strict defaults, which Swagger UI and Bull Board both run under
 * (external scripts only; inline styles and https stylesheets/fonts are allowed by default).
 * The one relaxation: the docs UI may fetch a token from PUBLIC_URL, which can be another
 * origin than the one the browser used. upgrade-insecure-requests is dropped on a plain-http
 * deployment, where it would send the browser to an https port nobody listens on.
 */
function securityHeaders(publicUrl: string): { strict: RequestHandler; docs: RequestHandler } {
  const https = publicUrl.startsWith('https:');
  const base = { upgradeInsecureRequests: https ? [] : null };
  return {
    strict: helmet({ contentSecurityPolicy: { directives: base } }),
    docs: helmet({
      contentSecurityPolicy: { directives: { ...base, connectSrc: ["'self'", new URL(publicUrl).origin] } },
    }),
  };
}

export async function createApp(
  deps: Deps,
  opts: { queues: QueueSet; auth: Auth; seriesCache?: { retryMs?: number; heartbeatMs?: number } },
): Promise<express.Express> {
  const app = express();
  app.disable('x-powered-by');
  // req.ip is the peer unless TRUST_PROXY_HOPS proxies are declared: auth throttling keys on it.
  app.set('trust proxy', deps.config.auth.trustProxyHops);
  const metrics = createMetrics({
    queues: opts.queues.all(),
    connect: () => createRedis(deps.config, { forWorker: true, logger: deps.logger, name: 'metrics' }),
    logger: deps.logger,
  });
  const seriesCache =
    deps.config.api.seriesCacheBytes > 0
      ? createSeriesCache({
          databaseUrl: deps.config.db.url,
          maxBytes: deps.config.api.seriesCacheBytes,
          logger: deps.logger,
          ...opts.seriesCache,
        })
      : undefined;
  if (seriesCache) seriesCaches.set(app, seriesCache);
  closers.set(app, async () => {
    await Promise.allSettled([metrics.close(), seriesCache?.close()]);
  });
  try {
    mountAll(app, deps, opts, metrics, seriesCache);
  } catch (err) {
    await closeApp(app);
    throw err;
  }
  return app;
}

function mountAll(
  app: express.Express,
  deps: Deps,
  opts: { queues: QueueSet; auth: Auth },
  metrics: Metrics,
  seriesCache: SeriesCache | undefined,
): void {
  const { config, logger } = deps;
  const { auth, queues } = opts;
  const headers = securityHeaders(config.api.publicUrl);
  app.use(requestLog(logger));
  app.use(metrics.middleware);
  app.use((req, res, next) => (req.path.startsWith('/docs') ? headers.docs : headers.strict)(req, res, next));

  const routes = apiRoutes(deps, queues, seriesCache ? { seriesCache } : {});
  const guard = (access: Access): RequestHandler[] =>
    access === 'public' ? [] : [auth.requireScope(access)];

  const publicRoutes = express.Router();
  mountRoutes(
    publicRoutes,
    routes.filter((r) => r.access === 'public'),
    guard,
  );
  app.use(publicRoutes);
  app.get('/metrics', metrics.handler);

  const openapi = buildOpenApiDocument(routes, { publicUrl: config.api.publicUrl });
  app.get('/docs/openapi.json', (_req, res) => {
    res.json(openapi);
  });
  // The UI's assets are relative ('./swagger-ui.css'), so the page must be served at /docs/.
  app.get('/docs', (req, res, next) => {
    if (req.originalUrl.split('?', 1)[0] === '/docs') res.redirect(301, '/docs/');
    else next();
  });
  app.use(
    '/docs',
    swaggerUi.serve,
    swaggerUi.setup(undefined, {
      customSiteTitle: 'Market data API',
      swaggerOptions: { url: '/docs/openapi.json', validatorUrl: null, persistAuthorization: false },
    }),
  );

  app.use(['/oauth', '/admin', '/.well-known'], auth.session);
  app.use(auth.router);
  mountAdmin(app, { auth, queues: queues.all() });

  const protectedRoutes = express.Router();
  mountRoutes(
    protectedRoutes,
    routes.filter((r) => r.access !== 'public'),
    guard,
  );
  app.use(protectedRoutes);

  // An unknown path under /api is 404 only to a caller with a valid token: tokenless callers
  // learn nothing about the API's shape. requireScope() with no scope asks for any valid token.
  app.use('/api', auth.requireScope(), notFoundHandler);
  app.use(notFoundHandler);
  app.use(errorHandler(logger));
}

/** Stops what createApp started besides the app itself (QueueEvents and their connections). */
export async function closeApp(app: express.Express): Promise<void> {
  const close = closers.get(app);
  closers.delete(app);
  await close?.();
}
