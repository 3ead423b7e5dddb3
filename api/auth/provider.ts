/**
 * The built-in OAuth2 authorization server, so the project works on a fresh machine with no
 * external identity provider:
 *
 * - `POST /oauth/token`: client_credentials (client_secret_basic or client_secret_post) and
 *   authorization_code (PKCE S256 required, codes single-use, redirect_uri must match).
 * - `GET|POST /oauth/authorize`: the operator login form. Its CSRF token is bound to a cookie
 *   (cookies.ts), not to a server-side session: showing the form stores nothing in Redis.
 * - `GET /oauth/jwks`, `GET /oauth/userinfo`, `GET /.well-known/oauth-authorization-server`.
 *
 * Errors follow RFC 6749 section 5.2 (token endpoint) and 4.1.2.1 (authorize redirects). An
 * authorize request with an unknown client or an unregistered redirect_uri is never redirected
 * (that would make us an open redirector); it gets an error page.
 *
 * Wrong client secrets and wrong passwords are throttled per address and per account
 * (throttle.ts) before they are checked.
 */
import express, { type Request, type RequestHandler, type Response, type Router } from 'express';
import type { Deps } from '../../core/deps.ts';
import type { ClientRecord } from '../../core/db/repositories/auth.ts';
import { bearerToken } from './bearer.ts';
import type { CookieSecrets } from './cookies.ts';
import { readCookie } from './cookies.ts';
import { loginPage, messagePage } from './html.ts';
import type { KeyStore } from './keys.ts';
import {
  PKCE_S256_CHALLENGE,
  randomToken,
  sha256Hex,
  verifyAgainstDummy,
  verifyPkceS256,
  verifySecret,
} from './secrets.ts';
import { createFailureThrottle } from './throttle.ts';
import { InvalidTokenError, type IssuedToken, type TokenIssuer, type TokenVerifier } from './tokens.ts';
import { isScope, SCOPES, type Scope } from './types.ts';

/** Authorization codes are exchanged by the client right after the redirect; a minute is plenty. */
const CODE_TTL_SECONDS = 60;
/** The sign-in form's cookie: a random value the form's CSRF token is an HMAC of. */
const LOGIN_COOKIE = 'mdw.login';
const LOGIN_COOKIE_MAX_AGE_MS = 60 * 60_000;
const CSRF_PURPOSE = 'sign-in-form';

export const PROVIDER_PATHS = {
  token: '/oauth/token',
  authorize: '/oauth/authorize',
  jwks: '/oauth/jwks',
  userinfo: '/oauth/userinfo',
  metadata: '/.well-known/oauth-authorization-server',
} as const;

class OAuthError extends Error {
  readonly code: string;
  readonly status: 400 | 401;
  constructor(code: string, description: string, status: 400 | 401 = 400) {
    super(description);
    this.code = code;
    this.status = status;
  }
}

/** Form fields as single strings; a repeated parameter is an error (RFC 6749 section 3.1). */
function fields(body: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!body || typeof body !== 'object') return out;
  for (const [k, v] of Object.entries(body as Record<string, unknown>)) {
    if (typeof v === 'string') out[k] = v;
    else throw new OAuthError('invalid_request', `parameter "${k}" must be given once`);
  }
  return out;
}

function decodeFormComponent(value: string): string {
  return decodeURIComponent(value.replace(/\+/g, ' '));
}

/** Narrows the requested scope to what the client may have; omitted means everything it may have. */
function resolveScope(requested: string | undefined, allowed: readonly Scope[]): string {
  if (requested === undefined || requested.trim() === '') return allowed.join(' ');
  const parts = [...new Set(requested.split(' ').filter(Boolean))];
  for (const p of parts) {
    if (!isScope(p)) throw new OAuthError('invalid_scope', `unknown scope "${p}"`);
    if (!allowed.includes(p) && !allowed.includes('admin')) {
      throw new OAuthError('invalid_scope', `scope "${p}" is not granted to this client`);
    }
  }
  return parts.join(' ');
}

interface AuthorizeParams {
  client: ClientRecord;
  redirectUri: string;
  state: string | undefined;
  codeChallenge: string;
  scope: string;
}

type AuthorizeCheck =
  | { kind: 'page'; status: number; message: string }
  | { kind: 'redirect'; url: string }
  | { kind: 'ok'; params: AuthorizeParams };

export interface ProviderOptions {
  deps: Deps;
  /** `iss` of the tokens this provider issues and the `issuer` of its metadata. */
  issuer: string;
  keys: KeyStore;
  tokens: TokenIssuer;
  /** Verifies tokens issued by this provider (for userinfo). */
  verifyOwnToken: TokenVerifier;
  cookies: CookieSecrets;
}

/** The client id a token request names (Basic header or client_id field), for throttling and logs. */
function requestedClientId(req: Request): string | undefined {
  const m = /^Basic\s+([A-Za-z0-9+/]+=*)$/i.exec(req.get('authorization') ?? '');
  if (m?.[1]) {
    const decoded = Buffer.from(m[1], 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon > 0) {
      try {
        return decodeFormComponent(decoded.slice(0, colon));
      } catch {
        return undefined;
      }
    }
    return undefined;
  }
  const id = (req.body as Record<string, unknown> | undefined)?.client_id;
  return typeof id === 'string' && id !== '' ? id : undefined;
}

export function createProviderRouter(opts: ProviderOptions): Router {
  const { deps, issuer } = opts;
  const repo = deps.repos.auth;
  const log = deps.logger.child({ component: 'oauth-provider' });
  const base = deps.config.api.publicUrl;
  const form = express.urlencoded({ extended: false, limit: '16kb', parameterLimit: 50 });
  const router = express.Router();
  const cookies = opts.cookies;

  const tokenThrottle = createFailureThrottle(deps, {
    endpoint: 'token',
    account: requestedClientId,
    accountField: 'clientId',
    refuse: (_req, res, retryAfter) => {
      res
        .status(429)
        .set('Cache-Control', 'no-store')
        .json({
          error: 'too_many_requests',
          error_description: `too many failed authentications; retry after ${retryAfter} seconds`,
        });
    },
  });
  const signInThrottle = createFailureThrottle(deps, {
    endpoint: 'sign-in',
    account: (req) => {
      const u = (req.body as Record<string, unknown> | undefined)?.username;
      return typeof u === 'string' && u.trim() !== '' ? u.trim().slice(0, 64) : undefined;
    },
    accountField: 'username',
    refuse: (_req, res, retryAfter) => {
      messagePage(
        res,
        429,
        'Too many attempts',
        `Too many failed sign-ins. Try again in ${Math.ceil(retryAfter / 60)} minute(s).`,
      );
    },
  });

  async function authenticateClient(req: Request, body: Record<string, string>): Promise<ClientRecord> {
    const header = req.get('authorization');
    let clientId: string | undefined;
    let secret: string | undefined;
    if (header) {
      const m = /^Basic\s+([A-Za-z0-9+/]+=*)$/i.exec(header);
      const decoded = m?.[1] ? Buffer.from(m[1], 'base64').toString('utf8') : '';
      const colon = decoded.indexOf(':');
      if (colon <= 0) throw new OAuthError('invalid_client', 'malformed Basic credentials', 401);
      try {
        clientId = decodeFormComponent(decoded.slice(0, colon));
        secret = decodeFormComponent(decoded.slice(colon + 1));
      } catch {
        throw new OAuthError('invalid_client', 'malformed Basic credentials', 401);
      }
      if (body.client_secret) throw new OAuthError('invalid_request', 'use one client authentication method');
      if (body.client_id && body.client_id !== clientId) {
        throw new OAuthError('invalid_request', 'client_id does not match the Authorization header');
      }
    } else {
      clientId = body.client_id;
      secret = body.client_secret || undefined;
    }
    if (!clientId) throw new OAuthError('invalid_client', 'client authentication required', 401);
    const client = await repo.findClient(clientId);
    if (!client || client.disabled) {
      if (secret) await verifyAgainstDummy(secret);
      throw new OAuthError('invalid_client', 'client authentication failed', 401);
    }
    if (client.secretHash === null) {
      // A public client proves nothing by itself; PKCE on the code it redeems does the work.
      if (secret) throw new OAuthError('invalid_client', 'client authentication failed', 401);
      return client;
    }
    if (!secret || !(await verifySecret(secret, client.secretHash))) {
      throw new OAuthError('invalid_client', 'client authentication failed', 401);
    }
    return client;
  }

  async function clientCredentialsGrant(
    client: ClientRecord,
    body: Record<string, string>,
  ): Promise<IssuedToken> {
    const scope = resolveScope(body.scope, client.scopes);
    return opts.tokens.issue({ subject: client.clientId, clientId: client.clientId, scope });
  }

  async function authorizationCodeGrant(
    client: ClientRecord,
    body: Record<string, string>,
  ): Promise<IssuedToken> {
    const { code, redirect_uri: redirectUri, code_verifier: verifier } = body;
    if (!code || !redirectUri || !verifier) {
      throw new OAuthError('invalid_request', 'code, redirect_uri and code_verifier are required');
    }
    const now = deps.clock.now();
    const record = await repo.consumeAuthorizationCode(sha256Hex(code), now);
    if (!record) throw new OAuthError('invalid_grant', 'authorization code is invalid or was already used');
    if (record.expiresAt.getTime() <= now.getTime())
      throw new OAuthError('invalid_grant', 'authorization code expired');
    if (record.clientId !== client.clientId) {
      throw new OAuthError('invalid_grant', 'authorization code was issued to another client');
    }
    if (record.redirectUri !== redirectUri)
      throw new OAuthError('invalid_grant', 'redirect_uri does not match');
    if (!verifyPkceS256(verifier, record.codeChallenge)) {
      throw new OAuthError('invalid_grant', 'code_verifier does not match the code_challenge');
    }
    const user = await repo.findUserById(record.userId);
    if (!user || user.disabled) throw new OAuthError('invalid_grant', 'the user is disabled');
    return opts.tokens.issue({ subject: `user:${user.id}`, clientId: client.clientId, scope: record.scope });
  }

  router.post(PROVIDER_PATHS.token, form, ...tokenThrottle, async (req, res) => {
    res.set('Cache-Control', 'no-store').set('Pragma', 'no-cache');
    try {
      const body = fields(req.body);
      const grantType = body.grant_type;
      if (!grantType) throw new OAuthError('invalid_request', 'grant_type is required');
      if (grantType !== 'client_credentials' && grantType !== 'authorization_code') {
        throw new OAuthError('unsupported_grant_type', `grant_type "${grantType}" is not supported`);
      }
      const client = await authenticateClient(req, body);
      if (!client.grantTypes.includes(grantType)) {
        throw new OAuthError('unauthorized_client', `this client may not use grant_type "${grantType}"`);
      }
      const issued =
        grantType === 'client_credentials'
          ? await clientCredentialsGrant(client, body)
          : await authorizationCodeGrant(client, body);
      await repo.touchClient(client.clientId, deps.clock.now());
      log.info({ clientId: client.clientId, grantType, scope: issued.scope }, 'access token issued');
      res.json({
        access_token: issued.accessToken,
        token_type: 'Bearer',
        expires_in: issued.expiresIn,
        scope: issued.scope,
      });
    } catch (err) {
      if (!(err instanceof OAuthError)) throw err;
      if (err.status === 401) res.set('WWW-Authenticate', `Basic realm="${issuer}"`);
      log.info(
        {
          error: err.code,
          description: err.message,
          clientId: requestedClientId(req)?.slice(0, 128),
          address: req.ip,
        },
        'token request refused',
      );
      res.status(err.status).json({ error: err.code, error_description: err.message });
    }
  });

  async function checkAuthorizeRequest(src: Record<string, string>): Promise<AuthorizeCheck> {
    const client = src.client_id ? await repo.findClient(src.client_id) : null;
    if (!client || client.disabled || !client.grantTypes.includes('authorization_code')) {
      return { kind: 'page', status: 400, message: 'Unknown or disabled client.' };
    }
    const redirectUri = src.redirect_uri;
    if (!redirectUri || !client.redirectUris.includes(redirectUri)) {
      return { kind: 'page', status: 400, message: 'The redirect_uri is not registered for this client.' };
    }
    const state = src.state || undefined;
    const back = (error: string, description: string): AuthorizeCheck => {
      const url = new URL(redirectUri);
      url.searchParams.set('error', error);
      url.searchParams.set('error_description', description);
      if (state) url.searchParams.set('state', state);
      return { kind: 'redirect', url: url.toString() };
    };
    if (src.response_type !== 'code')
      return back('unsupported_response_type', 'response_type must be "code"');
    if (src.code_challenge_method !== 'S256' || !PKCE_S256_CHALLENGE.test(src.code_challenge ?? '')) {
      return back('invalid_request', 'PKCE is required: code_challenge with code_challenge_method S256');
    }
    let scope: string;
    try {
      scope = resolveScope(src.scope, client.scopes);
    } catch (err) {
      if (err instanceof OAuthError) return back(err.code, err.message);
      throw err;
    }
    return {
      kind: 'ok',
      params: { client, redirectUri, state, codeChallenge: src.code_challenge ?? '', scope },
    };
  }

  function hiddenFields(p: AuthorizeParams, csrf: string): Record<string, string> {
    return {
      client_id: p.client.clientId,
      redirect_uri: p.redirectUri,
      response_type: 'code',
      code_challenge: p.codeChallenge,
      code_challenge_method: 'S256',
      scope: p.scope,
      ...(p.state ? { state: p.state } : {}),
      csrf,
    };
  }

  function settle(res: Response, check: Exclude<AuthorizeCheck, { kind: 'ok' }>): void {
    if (check.kind === 'redirect') res.redirect(302, check.url);
    else messagePage(res, check.status, 'Cannot sign in', check.message);
  }

  // The form posts back to "authorize" relative to itself, so it reaches the same origin (and
  // login cookie) it was served from, whatever host name the browser used.
  const FORM_ACTION = 'authorize';

  /** The form's CSRF token for this browser, setting the cookie it is bound to when missing. */
  function formToken(req: Request, res: Response): string {
    let nonce = readCookie(req, LOGIN_COOKIE);
    if (!nonce || !/^[A-Za-z0-9_-]{43}$/.test(nonce)) {
      nonce = randomToken();
      res.cookie(LOGIN_COOKIE, nonce, cookies.cookieOptions('/oauth', LOGIN_COOKIE_MAX_AGE_MS));
    }
    return cookies.mac(CSRF_PURPOSE, nonce);
  }

  router.get(PROVIDER_PATHS.authorize, async (req, res) => {
    let src: Record<string, string>;
    try {
      src = fields(req.query);
    } catch (err) {
      if (err instanceof OAuthError) return messagePage(res, 400, 'Cannot sign in', err.message);
      throw err;
    }
    const check = await checkAuthorizeRequest(src);
    if (check.kind !== 'ok') return settle(res, check);
    loginPage(res, {
      status: 200,
      action: FORM_ACTION,
      clientName: check.params.client.name,
      hidden: hiddenFields(check.params, formToken(req, res)),
    });
  });

  // CSRF first (a forged form is not an attempt worth counting), then the throttle, then the password.
  const checkForm: RequestHandler = (req, res, next) => {
    const nonce = readCookie(req, LOGIN_COOKIE);
    const given = (req.body as Record<string, unknown> | undefined)?.csrf;
    if (!nonce || typeof given !== 'string' || !cookies.verifyMac(CSRF_PURPOSE, nonce, given)) {
      messagePage(res, 403, 'Sign-in form expired', 'The sign-in form was stale or not ours. Start again.');
      return;
    }
    next();
  };

  router.post(PROVIDER_PATHS.authorize, form, checkForm, ...signInThrottle, async (req, res) => {
    let body: Record<string, string>;
    try {
      body = fields(req.body);
    } catch (err) {
      if (err instanceof OAuthError) return messagePage(res, 400, 'Cannot sign in', err.message);
      throw err;
    }
    const check = await checkAuthorizeRequest(body);
    if (check.kind !== 'ok') return settle(res, check);
    const p = check.params;
    const expected = body.csrf ?? '';
    const username = (body.username ?? '').trim().slice(0, 64);
    const password = body.password ?? '';
    const user = username ? await repo.findUserByUsername(username) : null;
    const ok =
      user && !user.disabled
        ? await verifySecret(password, user.passwordHash)
        : await verifyAgainstDummy(password);
    if (!user || !ok) {
      log.info({ username, clientId: p.client.clientId, address: req.ip }, 'operator sign-in failed');
      return loginPage(res, {
        status: 401,
        action: FORM_ACTION,
        clientName: p.client.name,
        hidden: hiddenFields(p, expected),
        username,
        error: 'Invalid username or password.',
      });
    }
    // A new form token for whoever uses this browser next.
    res.clearCookie(LOGIN_COOKIE, { path: '/oauth' });
    const code = randomToken(32);
    const now = deps.clock.now();
    await repo.deleteExpiredAuthorizationCodes(now);
    await repo.insertAuthorizationCode({
      codeHash: sha256Hex(code),
      clientId: p.client.clientId,
      userId: user.id,
      redirectUri: p.redirectUri,
      codeChallenge: p.codeChallenge,
      codeChallengeMethod: 'S256',
      scope: p.scope,
      expiresAt: new Date(now.getTime() + CODE_TTL_SECONDS * 1000),
    });
    log.info({ username, clientId: p.client.clientId }, 'operator signed in');
    const url = new URL(p.redirectUri);
    url.searchParams.set('code', code);
    if (p.state) url.searchParams.set('state', p.state);
    // 303: the browser follows with a GET, as the redirect_uri expects.
    res.redirect(303, url.toString());
  });

  router.get(PROVIDER_PATHS.jwks, async (_req, res) => {
    res.set('Cache-Control', 'public, max-age=300').json(await opts.keys.jwks());
  });

  router.get(PROVIDER_PATHS.userinfo, async (req, res) => {
    res.set('Cache-Control', 'no-store');
    const realm = `realm="${issuer}"`;
    const token = bearerToken(req.get('authorization'));
    if (!token) {
      res.status(401).set('WWW-Authenticate', `Bearer ${realm}`).json({ error: 'unauthorized' });
      return;
    }
    const refuse = (description: string): void => {
      res
        .status(401)
        .set('WWW-Authenticate', `Bearer ${realm}, error="invalid_token", error_description="${description}"`)
        .json({ error: 'invalid_token', error_description: description });
    };
    let subject: string;
    try {
      ({ subject } = await opts.verifyOwnToken(token));
    } catch (err) {
      if (err instanceof InvalidTokenError) return refuse(err.message);
      throw err;
    }
    const m = /^user:(\d+)$/.exec(subject);
    const user = m?.[1] ? await repo.findUserById(m[1]) : null;
    if (!user || user.disabled) return refuse('token does not belong to an active user');
    res.json({
      sub: subject,
      preferred_username: user.username,
      name: user.displayName ?? user.username,
      roles: user.roles,
    });
  });

  router.get(PROVIDER_PATHS.metadata, (_req, res) => {
    res.set('Cache-Control', 'public, max-age=300').json({
      issuer,
      authorization_endpoint: `${base}${PROVIDER_PATHS.authorize}`,
      token_endpoint: `${base}${PROVIDER_PATHS.token}`,
      jwks_uri: `${base}${PROVIDER_PATHS.jwks}`,
      userinfo_endpoint: `${base}${PROVIDER_PATHS.userinfo}`,
      scopes_supported: SCOPES,
      response_types_supported: ['code'],
      grant_types_supported: ['client_credentials', 'authorization_code'],
      token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post', 'none'],
      code_challenge_methods_supported: ['S256'],
    });
  });

  return router;
}
