/**
 * OAuth2 for the API and Bull Board, built once per API process:
 *
 * - `router`: the built-in provider (`/oauth/*`, metadata) and the operator login routes
 *   (`/admin/login`, `/admin/auth/callback`, `/admin/logout`).
 * - `requireScope(...)`: bearer-token guard for API routes (all listed scopes, `admin` implies all).
 * - `requireOperator`: session guard for Bull Board (login redirect for pages, 401 for XHR,
 *   403 for cross-origin state changes).
 * - `session`: express-session on Redis (connect-redis), for the /oauth and /admin paths only.
 *   Only a logged-in operator has a session; anonymous visitors store nothing (cookies.ts).
 *
 * Bearer tokens are verified against the built-in provider's keys, or against AUTH_JWKS_URL
 * (with AUTH_ISSUER and AUTH_AUDIENCE) when an external issuer is configured. The built-in
 * provider is mounted unless both the operator login and the bearer tokens are external.
 */
import express from 'express';
import session from 'express-session';
import { createRemoteJWKSet } from 'jose';
import type { Deps } from '../../core/deps.ts';
import { createRequireScope } from './bearer.ts';
import { createKeyStore, SIGNING_ALG } from './keys.ts';
import { BULL_BOARD_CLIENT_ID, createOperatorLogin, OPERATOR_PATHS, SESSION_COOKIE } from './operator.ts';
import { createProviderRouter } from './provider.ts';
import { RedisStore } from 'connect-redis';
import { createCookieSecrets } from './cookies.ts';
import { nodeRedisFacade, sessionKeyPrefix } from './redis.ts';
import { cacheVerifiedTokens } from './token-cache.ts';
import { createTokenIssuer, createTokenVerifier, InvalidTokenError, type TokenVerifier } from './tokens.ts';
import type { Scope } from './types.ts';

export type { Scope } from './types.ts';

export interface Auth {
  router: express.Router;
  requireScope(...scopes: Scope[]): express.RequestHandler;
  requireOperator: express.RequestHandler;
  session: express.RequestHandler;
  close(): Promise<void>;
}

export async function createAuth(deps: Deps): Promise<Auth> {
  const { config, clock } = deps;
  const { auth } = config;
  const publicUrl = config.api.publicUrl;

  const keys = createKeyStore(deps);
  // With an external bearer issuer the built-in provider still needs an identity of its own
  // (for operator login); otherwise it is the issuer the API trusts.
  const builtinIssuer = auth.jwksUrl ? publicUrl : auth.issuer;
  const tokens = createTokenIssuer({
    keys,
    clock,
    issuer: builtinIssuer,
    audience: auth.audience,
    ttlSeconds: auth.tokenTtlSeconds,
  });
  const verifyOwnToken = createTokenVerifier({
    getKey: keys.getKey,
    issuer: builtinIssuer,
    audience: auth.audience,
    algorithms: [SIGNING_ALG],
    clock,
  });
  // Revocation: a token of ours is refused as soon as its client (or user) is disabled. The
  // signature check is cached per token string (token-cache.ts: what a signature proves cannot
  // change); the status is read on every request (one prepared statement of primary-key reads),
  // never cached, so `disable-client` takes effect at the next request.
  const verifyOwnTokenCached = cacheVerifiedTokens(verifyOwnToken, { clock });
  const verifyOwnActiveToken: TokenVerifier = async (token) => {
    const principal = await verifyOwnTokenCached(token);
    const user = /^user:(\d+)$/.exec(principal.subject)?.[1];
    const status = await deps.repos.auth.principalStatus(principal.clientId, user);
    if (!status.clientActive) throw new InvalidTokenError('client is disabled');
    if (!status.userActive) throw new InvalidTokenError('user is disabled');
    return principal;
  };
  const verifyApiToken = auth.jwksUrl
    ? createTokenVerifier({
        getKey: createRemoteJWKSet(new URL(auth.jwksUrl)),
        issuer: auth.issuer,
        audience: auth.audience,
        algorithms: auth.algorithms,
        clock,
      })
    : verifyOwnActiveToken;

  const secure = new URL(publicUrl).protocol === 'https:';
  const sessionMiddleware = session({
    name: SESSION_COOKIE,
    secret: auth.sessionSecret,
    // connect-redis: one JSON value per session, expiring with the cookie (its ttl is the fallback).
    store: new RedisStore({
      client: nodeRedisFacade(deps.redis),
      prefix: sessionKeyPrefix(config.queue.prefix),
      ttl: auth.sessionTtlSeconds,
    }),
    resave: false,
    saveUninitialized: false,
    // An https public URL means TLS ends at a proxy; trust its X-Forwarded-Proto for the cookie.
    proxy: secure ? true : undefined,
    cookie: { httpOnly: true, sameSite: 'lax', secure, path: '/', maxAge: auth.sessionTtlSeconds * 1000 },
  });

  const router = express.Router();
  if (auth.operatorProvider === 'builtin' || !auth.jwksUrl) {
    // Fail at boot, not at the first login, when the auth tables are missing.
    await keys.signingKey();
    router.use(
      createProviderRouter({
        deps,
        issuer: builtinIssuer,
        keys,
        tokens,
        verifyOwnToken,
        cookies: createCookieSecrets(auth.sessionSecret, secure),
      }),
    );
  }
  if (auth.operatorProvider === 'builtin') {
    await deps.repos.auth.ensurePublicClient({
      clientId: BULL_BOARD_CLIENT_ID,
      name: 'Bull Board',
      redirectUri: `${publicUrl}${OPERATOR_PATHS.callback}`,
      scopes: [],
    });
  }
  const operator = createOperatorLogin(deps, sessionMiddleware);
  router.use(operator.router);

  return {
    router,
    requireScope: createRequireScope(verifyApiToken, auth.audience),
    requireOperator: operator.requireOperator,
    session: sessionMiddleware,
    // Nothing of its own to release: Redis and PostgreSQL belong to deps, remote JWKS fetches are per request.
    async close() {},
  };
}
