/**
 * The one place that reads the environment. Every variable is documented in README.md
 * (Configuration); defaults work on a fresh machine with PostgreSQL and Redis on localhost.
 */
import { z } from 'zod';
import { NYSE_TIME_ZONE } from './calendar/nyse.ts';
import { decimalInt, decimalNumber } from './input.ts';

const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

const envSchema = z.object({
  NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Write the JSON log to this file instead of stdout (the demo does so on a terminal). */
  LOG_FILE: z.string().min(1).optional(),

  /** PostgreSQL connection string; the database is created by `npm run migrate` if missing. */
  DATABASE_URL: z.string().url().default('postgres://postgres@127.0.0.1:5432/market_data'),
  /** Upper bound of each process's pg pool. */
  DATABASE_POOL_MAX: decimalInt({ min: 2, max: 200, default: 10 }),

  REDIS_URL: z.string().url().default('redis://127.0.0.1:6379'),
  /** BullMQ key prefix. Braces make it a Redis Cluster hash tag so one queue's keys share a slot. */
  QUEUE_PREFIX: z
    .string()
    .regex(/^\{[A-Za-z0-9_.-]+\}$/, 'must be a hash tag such as {mdw}')
    .default('{mdw}'),
  /** Jobs one worker process runs at once per queue. */
  WORKER_CONCURRENCY: decimalInt({ min: 1, max: 64, default: 2 }),
  /**
   * How long a worker's lock on an active job lasts without renewal (renewed every half of it), and
   * how often workers look for jobs whose lock expired (their worker died): a job orphaned by a lost
   * worker goes back to waiting within about the sum. Tests shorten both.
   */
  JOB_LOCK_MS: decimalInt({ min: 500, max: 600_000, default: 30_000 }),
  JOB_STALLED_CHECK_MS: decimalInt({ min: 200, max: 600_000, default: 15_000 }),
  /**
   * Which queues a worker process serves: groups (jobs/groups.ts: quotes, ingest, rollups,
   * analytics, maintenance, or all), job names or queue names, comma-separated. Checked against the
   * job table when the worker starts (core does not know the jobs); an unknown entry refuses to start.
   */
  WORKER_GROUPS: z
    .string()
    .default('all')
    .transform((s) =>
      s
        .split(',')
        .map((g) => g.trim())
        .filter(Boolean),
    )
    .pipe(z.array(z.string()).min(1, 'name at least one group (or all)')),
  /** Set to false to run workers without registering the cron Job Schedulers (e.g. extra hosts). */
  SCHEDULERS_ENABLED: bool.default(true),

  API_HOST: z.string().default('127.0.0.1'),
  API_PORT: decimalInt({ min: 0, max: 65535, default: 8080 }),
  /** Memory for the API's cache of serialized price series (api/series-cache.ts), MB; 0 disables it. */
  API_SERIES_CACHE_MB: decimalNumber({ min: 0, max: 65_536, default: 64 }),
  /** Where users reach the API; used for OAuth2 redirect URLs and as the default token issuer. */
  PUBLIC_URL: z.string().url().optional(),

  /**
   * Where the API process reaches itself for the built-in provider's back channel (code exchange
   * and userinfo during operator login). Default: PUBLIC_URL; set it when that is not reachable
   * from inside (a TLS proxy, a remapped container port), e.g. http://127.0.0.1:8080.
   */
  AUTH_INTERNAL_URL: z.string().url().optional(),
  /** Issuer (`iss`) the API accepts on bearer tokens. Default: PUBLIC_URL (the built-in provider). */
  AUTH_ISSUER: z.string().url().optional(),
  /** Audience (`aud`) the API accepts and the built-in provider issues. */
  AUTH_AUDIENCE: z.string().min(1).default('market-data-api'),
  /** JWKS the API verifies bearer tokens with. Default: the built-in provider's keys. */
  AUTH_JWKS_URL: z.string().url().optional(),
  /** Lifetime of access tokens issued by the built-in provider. */
  AUTH_TOKEN_TTL_SECONDS: decimalInt({ min: 30, max: 86_400, default: 900 }),
  /** Signature algorithms accepted on bearer tokens from an external issuer (asymmetric only). */
  AUTH_JWT_ALGORITHMS: z
    .string()
    .default('RS256,ES256')
    .transform((v) => v.split(',').map((a) => a.trim()))
    .pipe(
      z
        .array(
          z.enum(['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA']),
        )
        .min(1),
    ),

  /** Operator login for Bull Board: `builtin` (this project's provider) or `external` (OAUTH_* below). */
  OPERATOR_AUTH_PROVIDER: z.enum(['builtin', 'external']).default('builtin'),
  OAUTH_AUTHORIZATION_URL: z.string().url().optional(),
  OAUTH_TOKEN_URL: z.string().url().optional(),
  OAUTH_USERINFO_URL: z.string().url().optional(),
  OAUTH_CLIENT_ID: z.string().optional(),
  OAUTH_CLIENT_SECRET: z.string().optional(),
  OAUTH_SCOPE: z.string().default('openid profile email'),

  /** Signs the operator session cookie. Must be set (32+ chars) in production. */
  SESSION_SECRET: z.string().min(16).optional(),
  /** Lifetime of an operator's Bull Board session. */
  SESSION_TTL_SECONDS: decimalInt({ min: 300, max: 604_800, default: 28_800 }),

  /**
   * Encrypts the built-in provider's private signing keys at rest (AES-256-GCM): 32 random bytes,
   * base64. Required in production; `_PREVIOUS` is still accepted for reading during a rotation.
   */
  AUTH_KEY_ENCRYPTION_KEY: z.string().optional(),
  AUTH_KEY_ENCRYPTION_KEY_PREVIOUS: z.string().optional(),
  /** Failed authentications (wrong client secret or password) allowed per window, per address... */
  AUTH_MAX_FAILURES_PER_ADDRESS: decimalInt({ min: 1, max: 100_000, default: 10 }),
  /** ...and per client id or username, from all addresses together. */
  AUTH_MAX_FAILURES_PER_ACCOUNT: decimalInt({ min: 1, max: 100_000, default: 30 }),
  AUTH_FAILURE_WINDOW_SECONDS: decimalInt({ min: 1, max: 86_400, default: 900 }),
  /**
   * Proxies in front of the API whose X-Forwarded-For is trusted (Express "trust proxy" hop
   * count). 0: the peer address is the client's, which is what throttling keys on.
   */
  TRUST_PROXY_HOPS: decimalInt({ min: 0, max: 10, default: 0 }),

  /**
   * No longer a setting: the exchange calendar (core/calendar/nyse.ts) fixes the zone. Read only to
   * refuse a value other than the calendar's, which would otherwise be silently ignored.
   */
  MARKET_TIMEZONE: z.string().optional(),
  /** Currency that FX rates and attribution convert to. */
  BASE_CURRENCY: z
    .string()
    .regex(/^[A-Z]{3}$/)
    .default('USD'),
  /** Default price provider; `synthetic` needs no key and no network. */
  PRICE_PROVIDER: z.enum(['synthetic', 'yahoo', 'alphavantage']).default('synthetic'),
  ALPHAVANTAGE_API_KEY: z.string().optional(),
  /**
   * Real providers tried in order after a security's own provider fails (comma-separated; never
   * `synthetic`: real data never silently falls back to generated data).
   */
  PRICE_PROVIDER_FALLBACK: z
    .string()
    .default('yahoo,alphavantage')
    .transform((s) =>
      s
        .split(',')
        .map((p) => p.trim())
        .filter(Boolean),
    )
    .pipe(z.array(z.enum(['yahoo', 'alphavantage']))),
  /** Requests per minute each provider's queue may make (BullMQ limiter, across all workers). */
  YAHOO_REQUESTS_PER_MINUTE: decimalInt({ min: 1, max: 10_000, default: 60 }),
  ALPHAVANTAGE_REQUESTS_PER_MINUTE: decimalInt({ min: 1, max: 10_000, default: 5 }),
  SYNTHETIC_REQUESTS_PER_MINUTE: decimalInt({ min: 1, max: 1_000_000, default: 6000 }),
  /** Per-request timeout for provider HTTP calls. */
  PROVIDER_TIMEOUT_MS: decimalInt({ min: 100, max: 120_000, default: 15_000 }),
  /** `GET /stocks/{symbol}` fetches a new quote when the stored one is older than this. */
  QUOTE_STALE_SECONDS: decimalInt({ min: 1, max: 86_400, default: 60 }),
  /** Benchmark ticker for beta; beta is null when it has no daily bars. */
  RISK_BENCHMARK: z
    .string()
    .regex(/^[A-Z0-9._=^-]{1,20}$/)
    .default('SPY'),
  /** Trading days of returns behind volatility, VaR and expected shortfall. */
  RISK_WINDOW_DAYS: decimalInt({ min: 20, max: 2520, default: 250 }),
  /** Retention per partitioned table, in days (partitions wholly older are dropped). */
  RETENTION_TICKS_DAYS: decimalInt({ min: 5, max: 36_500, default: 730 }),
  RETENTION_BARS_5M_DAYS: decimalInt({ min: 5, max: 36_500, default: 730 }),
  /** Monthly partitions kept created ahead of now. */
  PARTITIONS_AHEAD_MONTHS: decimalInt({ min: 1, max: 24, default: 3 }),
  /**
   * Clients per margin.batch job of the nightly margin flow (bench, 100,000 clients × 10 positions:
   * 1,000 → 28 s, 5,000 → 15 s, 20,000 → 18 s on two cores).
   */
  MARGIN_BATCH_SIZE: decimalInt({ min: 1, max: 100_000, default: 5000 }),
  /** A margin call is due this many NYSE trading days after the run that issues it. */
  MARGIN_CALL_DUE_DAYS: decimalInt({ min: 0, max: 30, default: 2 }),
  /** The nightly run values a position at its newest close at most this many calendar days old. */
  MARGIN_PRICE_MAX_AGE_DAYS: decimalInt({ min: 1, max: 366, default: 7 }),
  /** Report runs finished longer ago are deleted (the newest successful version of each report stays). */
  REPORTS_RETENTION_DAYS: decimalInt({ min: 1, max: 36_500, default: 400 }),
  /** A RUNNING report whose heartbeat is older than this is a lost render: failed, chunks deleted. */
  REPORTS_STALE_SECONDS: decimalInt({ min: 10, max: 86_400, default: 300 }),
});

export type Env = z.infer<typeof envSchema>;

export interface Config {
  env: Env['NODE_ENV'];
  logLevel: Env['LOG_LEVEL'];
  /** JSON log destination; undefined = stdout. */
  logFile: string | undefined;
  db: { url: string; poolMax: number };
  redis: { url: string };
  queue: {
    prefix: string;
    concurrency: number;
    /** WORKER_GROUPS entries as given; resolved to queues by jobs/groups.ts. */
    groups: string[];
    schedulersEnabled: boolean;
    /** Lock on an active job (BullMQ lockDuration) and the stalled-job check interval, in ms. */
    lockMs: number;
    stalledCheckMs: number;
  };
  api: { host: string; port: number; publicUrl: string; seriesCacheBytes: number };
  auth: {
    issuer: string;
    /** Base URL of the built-in provider for server-to-server calls (default: publicUrl). */
    internalUrl: string;
    audience: string;
    jwksUrl: string | undefined;
    tokenTtlSeconds: number;
    /** Accepted `alg` values for tokens verified through `jwksUrl` (the built-in provider signs ES256). */
    algorithms: string[];
    operatorProvider: 'builtin' | 'external';
    external: {
      authorizationUrl: string | undefined;
      tokenUrl: string | undefined;
      userinfoUrl: string | undefined;
      clientId: string | undefined;
      clientSecret: string | undefined;
      scope: string;
    };
    sessionSecret: string;
    sessionTtlSeconds: number;
    /** AES-256-GCM keys sealing private signing keys: the current one, and one still readable. */
    keyEncryption: { current: Buffer; previous: Buffer | undefined };
    throttle: { perAddress: number; perAccount: number; windowSeconds: number };
    trustProxyHops: number;
  };
  market: { baseCurrency: string; provider: Env['PRICE_PROVIDER'] };
  providers: {
    alphaVantageApiKey: string | undefined;
    fallback: ('yahoo' | 'alphavantage')[];
    requestsPerMinute: { synthetic: number; yahoo: number; alphavantage: number };
    timeoutMs: number;
    quoteStaleSeconds: number;
  };
  risk: { benchmark: string; windowDays: number };
  retention: { ticksDays: number; bars5mDays: number; partitionsAheadMonths: number };
  margin: { batchSize: number; callDueDays: number; maxPriceAgeDays: number };
  reports: { retentionDays: number; staleSeconds: number };
}

const DEV_SESSION_SECRET = 'dev-only-session-secret-change-me';
/**
 * Outside production only: a fixed, published key (base64 of "dev-only key-encryption-key!!!!!"),
 * so a development database's keys are sealed the same way as production's but protect nothing.
 */
const DEV_KEY_ENCRYPTION_KEY = Buffer.from('dev-only key-encryption-key!!!!!').toString('base64');

/** Placeholders that must never pass as production secrets (docs and compose files show them). */
function looksLikePlaceholder(value: string): boolean {
  return value === DEV_SESSION_SECRET || /change-?me|placeholder|example/i.test(value);
}

/** A 32-byte key from base64, or a message saying what is wrong (never the value). */
function parseKey(value: string): Buffer | string {
  const buf = Buffer.from(value, 'base64');
  if (buf.length !== 32 || buf.toString('base64').replace(/=+$/, '') !== value.replace(/=+$/, '')) {
    return 'must be 32 random bytes, base64 (e.g. openssl rand -base64 32)';
  }
  return buf;
}

/** Parses an environment (default: process.env) into a Config, or throws naming every bad variable. */
export function loadConfig(source: Record<string, string | undefined> = process.env): Config {
  const cleaned = Object.fromEntries(Object.entries(source).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = envSchema.safeParse(cleaned);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new Error(`Invalid configuration:\n${lines.join('\n')}`);
  }
  const e = parsed.data;
  const publicUrl = (e.PUBLIC_URL ?? `http://localhost:${e.API_PORT}`).replace(/\/$/, '');
  const problems: string[] = [];
  if (e.NODE_ENV === 'production') {
    if (!e.SESSION_SECRET || e.SESSION_SECRET.length < 32 || looksLikePlaceholder(e.SESSION_SECRET)) {
      problems.push(
        'SESSION_SECRET: required in production, at least 32 random characters, not a placeholder',
      );
    }
    if (!e.AUTH_KEY_ENCRYPTION_KEY) {
      problems.push('AUTH_KEY_ENCRYPTION_KEY: required in production (openssl rand -base64 32)');
    }
  }
  if (e.MARKET_TIMEZONE !== undefined && e.MARKET_TIMEZONE !== NYSE_TIME_ZONE) {
    problems.push(
      `MARKET_TIMEZONE: not a setting: the exchange calendar (NYSE) fixes the time zone at ${NYSE_TIME_ZONE}; unset it`,
    );
  }
  const keys: Record<string, Buffer | undefined> = {};
  for (const name of ['AUTH_KEY_ENCRYPTION_KEY', 'AUTH_KEY_ENCRYPTION_KEY_PREVIOUS'] as const) {
    const value = e[name];
    if (value === undefined) continue;
    const parsed = parseKey(value);
    if (typeof parsed === 'string') problems.push(`${name}: ${parsed}`);
    else keys[name] = parsed;
  }
  if (
    e.NODE_ENV === 'production' &&
    keys.AUTH_KEY_ENCRYPTION_KEY?.equals(Buffer.from(DEV_KEY_ENCRYPTION_KEY, 'base64'))
  ) {
    problems.push('AUTH_KEY_ENCRYPTION_KEY: the development key cannot be used in production');
  }
  if (problems.length > 0) {
    throw new Error(`Invalid configuration:\n${problems.map((p) => `  ${p}`).join('\n')}`);
  }
  if (e.OPERATOR_AUTH_PROVIDER === 'external') {
    const missing = (
      ['OAUTH_AUTHORIZATION_URL', 'OAUTH_TOKEN_URL', 'OAUTH_CLIENT_ID', 'OAUTH_CLIENT_SECRET'] as const
    ).filter((k) => !e[k]);
    if (missing.length > 0) {
      throw new Error(
        `Invalid configuration:\n${missing.map((k) => `  ${k}: required when OPERATOR_AUTH_PROVIDER=external`).join('\n')}`,
      );
    }
  }
  return {
    env: e.NODE_ENV,
    logLevel: e.LOG_LEVEL,
    logFile: e.LOG_FILE,
    db: { url: e.DATABASE_URL, poolMax: e.DATABASE_POOL_MAX },
    redis: { url: e.REDIS_URL },
    queue: {
      prefix: e.QUEUE_PREFIX,
      concurrency: e.WORKER_CONCURRENCY,
      groups: e.WORKER_GROUPS,
      schedulersEnabled: e.SCHEDULERS_ENABLED,
      lockMs: e.JOB_LOCK_MS,
      stalledCheckMs: e.JOB_STALLED_CHECK_MS,
    },
    api: {
      host: e.API_HOST,
      port: e.API_PORT,
      publicUrl,
      seriesCacheBytes: Math.floor(e.API_SERIES_CACHE_MB * 1024 * 1024),
    },
    auth: {
      issuer: (e.AUTH_ISSUER ?? publicUrl).replace(/\/$/, ''),
      internalUrl: (e.AUTH_INTERNAL_URL ?? publicUrl).replace(/\/$/, ''),
      audience: e.AUTH_AUDIENCE,
      jwksUrl: e.AUTH_JWKS_URL,
      tokenTtlSeconds: e.AUTH_TOKEN_TTL_SECONDS,
      algorithms: e.AUTH_JWT_ALGORITHMS,
      operatorProvider: e.OPERATOR_AUTH_PROVIDER,
      external: {
        authorizationUrl: e.OAUTH_AUTHORIZATION_URL,
        tokenUrl: e.OAUTH_TOKEN_URL,
        userinfoUrl: e.OAUTH_USERINFO_URL,
        clientId: e.OAUTH_CLIENT_ID,
        clientSecret: e.OAUTH_CLIENT_SECRET,
        scope: e.OAUTH_SCOPE,
      },
      sessionSecret: e.SESSION_SECRET ?? DEV_SESSION_SECRET,
      sessionTtlSeconds: e.SESSION_TTL_SECONDS,
      keyEncryption: {
        current: keys.AUTH_KEY_ENCRYPTION_KEY ?? Buffer.from(DEV_KEY_ENCRYPTION_KEY, 'base64'),
        previous: keys.AUTH_KEY_ENCRYPTION_KEY_PREVIOUS,
      },
      throttle: {
        perAddress: e.AUTH_MAX_FAILURES_PER_ADDRESS,
        perAccount: e.AUTH_MAX_FAILURES_PER_ACCOUNT,
        windowSeconds: e.AUTH_FAILURE_WINDOW_SECONDS,
      },
      trustProxyHops: e.TRUST_PROXY_HOPS,
    },
    market: { baseCurrency: e.BASE_CURRENCY, provider: e.PRICE_PROVIDER },
    providers: {
      alphaVantageApiKey: e.ALPHAVANTAGE_API_KEY,
      fallback: e.PRICE_PROVIDER_FALLBACK,
      requestsPerMinute: {
        synthetic: e.SYNTHETIC_REQUESTS_PER_MINUTE,
        yahoo: e.YAHOO_REQUESTS_PER_MINUTE,
        alphavantage: e.ALPHAVANTAGE_REQUESTS_PER_MINUTE,
      },
      timeoutMs: e.PROVIDER_TIMEOUT_MS,
      quoteStaleSeconds: e.QUOTE_STALE_SECONDS,
    },
    risk: { benchmark: e.RISK_BENCHMARK, windowDays: e.RISK_WINDOW_DAYS },
    retention: {
      ticksDays: e.RETENTION_TICKS_DAYS,
      bars5mDays: e.RETENTION_BARS_5M_DAYS,
      partitionsAheadMonths: e.PARTITIONS_AHEAD_MONTHS,
    },
    margin: {
      batchSize: e.MARGIN_BATCH_SIZE,
      callDueDays: e.MARGIN_CALL_DUE_DAYS,
      maxPriceAgeDays: e.MARGIN_PRICE_MAX_AGE_DAYS,
    },
    reports: { retentionDays: e.REPORTS_RETENTION_DAYS, staleSeconds: e.REPORTS_STALE_SECONDS },
  };
}
