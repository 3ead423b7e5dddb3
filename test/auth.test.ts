/**
 * The built-in OAuth2 provider and the guards, over real HTTP, PostgreSQL and Redis: the token
 * endpoint (success and each RFC 6749 error), bearer verification (no token, tampered, expired,
 * wrong audience/issuer/key, missing scope), and the operator login to Bull Board with PKCE and
 * state, followed hop by hop with a cookie jar, including CSRF refusals.
 */
import { randomBytes } from 'node:crypto';
import express from 'express';
import {
  createLocalJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  generateKeyPair,
  jwtVerify,
  SignJWT,
  UnsecuredJWT,
} from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mountAdmin } from '../api/admin.ts';
import { createClient, createOperator, disableClient, type CreatedClient } from '../api/auth/accounts.ts';
import { createAuth, type Auth } from '../api/auth/index.ts';
import { createKeyStore } from '../api/auth/keys.ts';
import { pkceS256, randomToken } from '../api/auth/secrets.ts';
import { createTokenIssuer, createTokenVerifier } from '../api/auth/tokens.ts';
import type { Config } from '../core/config.ts';
import type { Deps } from '../core/deps.ts';
import { allQueueNames, createQueues, type QueueSet } from '../jobs/queues.ts';
import { queuesByStage } from '../jobs/stages.ts';
import { CookieJar, hiddenInputs, hop, HTML, location, startServer, type TestServer } from './auth-http.ts';
import { closeDeps, dropPrefix, frozenClock, testConfig, testDeps } from './support.ts';

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

let server: TestServer;
let base: string;
let config: Config;
let deps: Deps;
let queues: QueueSet;
let auth: Auth;
let reader: CreatedClient;
let writer: CreatedClient;
let both: CreatedClient;
let admin: CreatedClient;
const operator = {
  username: `op-${randomBytes(4).toString('hex')}`,
  password: 'correct horse battery staple',
};
const outsider = { username: `nobody-${randomBytes(4).toString('hex')}`, password: 'not an operator at all' };

function buildApp(a: Auth, q: QueueSet): express.Express {
  const app = express();
  app.use(['/oauth', '/admin', '/.well-known'], a.session);
  app.use(a.router);
  mountAdmin(app, { auth: a, queues: q.all() });
  app.get('/probe/results', a.requireScope('results:read'), (_req, res) => {
    res.json({ subject: res.locals.principal?.subject, scopes: [...(res.locals.principal?.scopes ?? [])] });
  });
  app.post('/probe/jobs', a.requireScope('jobs:write'), (_req, res) => {
    res.json({ ok: true });
  });
  return app;
}

beforeAll(async () => {
  server = await startServer();
  base = server.url;
  config = testConfig({ PUBLIC_URL: base, AUTH_TOKEN_TTL_SECONDS: '300' });
  deps = testDeps({ config });
  queues = createQueues(config);
  auth = await createAuth(deps);
  server.setHandler(buildApp(auth, queues));
  reader = await createClient(deps, { name: 'reader', scopes: ['results:read'] });
  writer = await createClient(deps, { name: 'writer', scopes: ['jobs:write'] });
  both = await createClient(deps, { name: 'both', scopes: ['results:read', 'jobs:write'] });
  admin = await createClient(deps, { name: 'admin', scopes: ['admin'] });
  await createOperator(deps, { ...operator, roles: ['operator'] });
  await createOperator(deps, { ...outsider, roles: [] });
});

afterAll(async () => {
  await server?.close();
  await auth?.close();
  if (deps) await dropPrefix(deps);
  await queues?.close();
  if (deps) await closeDeps(deps);
});

function basic(id: string, secret: string): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
}

async function tokenRequest(
  body: Record<string, string>,
  headers: Record<string, string> = {},
): Promise<Response> {
  return fetch(`${base}/oauth/token`, {
    method: 'POST',
    headers: { ...FORM, ...headers },
    body: new URLSearchParams(body),
  });
}

async function tokenFor(client: CreatedClient, scope?: string): Promise<string> {
  const res = await tokenRequest(
    { grant_type: 'client_credentials', ...(scope ? { scope } : {}) },
    { authorization: basic(client.clientId, client.clientSecret) },
  );
  expect(res.status).toBe(200);
  return ((await res.json()) as { access_token: string }).access_token;
}

function get(path: string, token?: string): Promise<Response> {
  return fetch(`${base}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
}

describe('token endpoint (client credentials)', () => {
  it('issues a signed, short-lived JWT to a client authenticating with client_secret_basic', async () => {
    const res = await tokenRequest(
      { grant_type: 'client_credentials' },
      { authorization: basic(reader.clientId, reader.clientSecret) },
    );
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ token_type: 'Bearer', expires_in: 300, scope: 'results:read' });
    const jwt = body.access_token as string;
    const header = decodeProtectedHeader(jwt);
    expect(header).toMatchObject({ alg: 'ES256', typ: 'at+jwt' });
    const claims = decodeJwt(jwt);
    expect(claims).toMatchObject({
      iss: base,
      aud: 'market-data-api',
      sub: reader.clientId,
      client_id: reader.clientId,
      scope: 'results:read',
    });
    expect(claims.exp! - claims.iat!).toBe(300);
    expect(claims.jti).toMatch(/^[0-9a-f-]{36}$/);

    // Verifiable by anyone with the published JWKS, independently of our verifier.
    const jwks = (await (await fetch(`${base}/oauth/jwks`)).json()) as { keys: { kid: string }[] };
    expect(jwks.keys.map((k) => k.kid)).toContain(header.kid);
    expect(JSON.stringify(jwks)).not.toMatch(/"d":/);
    const verified = await jwtVerify(
      jwt,
      createLocalJWKSet(jwks as Parameters<typeof createLocalJWKSet>[0]),
      {
        issuer: base,
        audience: 'market-data-api',
        algorithms: ['ES256'],
      },
    );
    expect(verified.payload.sub).toBe(reader.clientId);
  });

  it('accepts client_secret_post, narrows scope on request and records the client as used', async () => {
    const res = await tokenRequest({
      grant_type: 'client_credentials',
      client_id: both.clientId,
      client_secret: both.clientSecret,
      scope: 'results:read',
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { scope: string }).scope).toBe('results:read');
    const full = decodeJwt(await tokenFor(both));
    expect(full.scope).toBe('results:read jobs:write');
    expect((await deps.repos.auth.findClient(both.clientId))?.lastUsedAt).toBeInstanceOf(Date);
  });

  it('refuses a wrong secret, an unknown client and a disabled client with 401 invalid_client', async () => {
    const wrong = await tokenRequest(
      { grant_type: 'client_credentials' },
      { authorization: basic(reader.clientId, `${reader.clientSecret}x`) },
    );
    const unknown = await tokenRequest({
      grant_type: 'client_credentials',
      client_id: 'no-such-client',
      client_secret: 'whatever',
    });
    const victim = await createClient(deps, { name: 'to disable', scopes: ['results:read'] });
    await disableClient(deps, victim.clientId);
    const disabled = await tokenRequest(
      { grant_type: 'client_credentials' },
      { authorization: basic(victim.clientId, victim.clientSecret) },
    );
    for (const res of [wrong, unknown, disabled]) {
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Basic realm=/);
      expect(res.headers.get('cache-control')).toBe('no-store');
      expect(await res.json()).toMatchObject({ error: 'invalid_client' });
    }
  });

  it('refuses a scope the client does not have, and an unknown scope, with 400 invalid_scope', async () => {
    for (const scope of ['jobs:write', 'results:read admin', 'everything']) {
      const res = await tokenRequest(
        { grant_type: 'client_credentials', scope },
        { authorization: basic(reader.clientId, reader.clientSecret) },
      );
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({ error: 'invalid_scope' });
    }
  });

  it('refuses unsupported and missing grant types, and two authentication methods at once', async () => {
    const auth = { authorization: basic(reader.clientId, reader.clientSecret) };
    const password = await tokenRequest({ grant_type: 'password', username: 'a', password: 'b' }, auth);
    expect(password.status).toBe(400);
    expect(await password.json()).toMatchObject({ error: 'unsupported_grant_type' });
    const missing = await tokenRequest({}, auth);
    expect(missing.status).toBe(400);
    expect(await missing.json()).toMatchObject({ error: 'invalid_request' });
    const twice = await tokenRequest(
      { grant_type: 'client_credentials', client_secret: reader.clientSecret },
      auth,
    );
    expect(twice.status).toBe(400);
    expect(await twice.json()).toMatchObject({ error: 'invalid_request' });
  });

  it('does not let the public Bull Board client use client credentials', async () => {
    const res = await tokenRequest({ grant_type: 'client_credentials', client_id: 'bull-board' });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'unauthorized_client' });
  });

  it('publishes authorization server metadata', async () => {
    const res = await fetch(`${base}/.well-known/oauth-authorization-server`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      issuer: base,
      token_endpoint: `${base}/oauth/token`,
      authorization_endpoint: `${base}/oauth/authorize`,
      jwks_uri: `${base}/oauth/jwks`,
      code_challenge_methods_supported: ['S256'],
    });
  });
});

describe('bearer tokens on protected routes', () => {
  it('refuses a request without a token with 401 and a bare Bearer challenge', async () => {
    const res = await get('/probe/results');
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Bearer realm="market-data-api"');
  });

  it('accepts a token with the right scope and puts the principal on res.locals', async () => {
    const res = await get('/probe/results', await tokenFor(reader));
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ subject: reader.clientId, scopes: ['results:read'] });
  });

  it('refuses a tampered signature and a tampered payload with 401 invalid_token', async () => {
    const jwt = await tokenFor(reader);
    const [h, p, s = ''] = jwt.split('.');
    // Flip one character in the middle of the signature (the last one may only carry padding bits).
    const i = Math.floor(s.length / 2);
    const badSig = `${h}.${p}.${s.slice(0, i)}${s[i] === 'A' ? 'B' : 'A'}${s.slice(i + 1)}`;
    const claims = decodeJwt(jwt);
    const forged = Buffer.from(JSON.stringify({ ...claims, scope: 'admin' })).toString('base64url');
    for (const token of [badSig, `${h}.${forged}.${s}`]) {
      const res = await get('/probe/results', token);
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(
        /^Bearer realm="market-data-api", error="invalid_token"/,
      );
    }
  });

  it('refuses an expired token signed with the real key with 401 invalid_token', async () => {
    const pastIssuer = createTokenIssuer({
      keys: createKeyStore(deps),
      clock: frozenClock(new Date(Date.now() - 3_600_000).toISOString()),
      issuer: base,
      audience: config.auth.audience,
      ttlSeconds: 300,
    });
    const { accessToken } = await pastIssuer.issue({
      subject: reader.clientId,
      clientId: reader.clientId,
      scope: 'results:read',
    });
    expect(decodeProtectedHeader(accessToken).kid).toBe(decodeProtectedHeader(await tokenFor(reader)).kid);
    const res = await get('/probe/results', accessToken);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toContain('error_description="token expired"');
  });

  it('refuses a token for another audience or from another issuer with 401 invalid_token', async () => {
    const claims = { subject: reader.clientId, clientId: reader.clientId, scope: 'results:read' };
    const keys = createKeyStore(deps);
    const now = deps.clock;
    const otherAudience = await createTokenIssuer({
      keys,
      clock: now,
      issuer: base,
      audience: 'another-api',
      ttlSeconds: 300,
    }).issue(claims);
    const otherIssuer = await createTokenIssuer({
      keys,
      clock: now,
      issuer: 'https://idp.example',
      audience: config.auth.audience,
      ttlSeconds: 300,
    }).issue(claims);
    const audRes = await get('/probe/results', otherAudience.accessToken);
    expect(audRes.status).toBe(401);
    expect(audRes.headers.get('www-authenticate')).toContain('error_description="token aud claim invalid"');
    const issRes = await get('/probe/results', otherIssuer.accessToken);
    expect(issRes.status).toBe(401);
    expect(issRes.headers.get('www-authenticate')).toContain('error_description="token iss claim invalid"');
  });

  it('refuses a token signed by a key it does not know, and an unsigned one, with 401', async () => {
    const stranger = await generateKeyPair('ES256');
    const foreign = await new SignJWT({ scope: 'admin', client_id: 'x' })
      .setProtectedHeader({ alg: 'ES256', kid: 'someone-elses-key' })
      .setIssuer(base)
      .setAudience('market-data-api')
      .setSubject('x')
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(stranger.privateKey);
    const unsigned = new UnsecuredJWT({ scope: 'admin' })
      .setIssuer(base)
      .setAudience('market-data-api')
      .setSubject('x')
      .setExpirationTime('5m')
      .encode();
    for (const token of [foreign, unsigned]) {
      const res = await get('/probe/results', token);
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toContain('error="invalid_token"');
    }
  });

  it('refuses a valid token lacking the scope with 403 insufficient_scope', async () => {
    const res = await fetch(`${base}/probe/jobs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await tokenFor(reader)}` },
    });
    expect(res.status).toBe(403);
    expect(res.headers.get('www-authenticate')).toBe(
      'Bearer realm="market-data-api", error="insufficient_scope", error_description="requires scope jobs:write", scope="jobs:write"',
    );
    const other = await get('/probe/results', await tokenFor(writer));
    expect(other.status).toBe(403);
  });

  it('lets admin stand in for every scope', async () => {
    const token = await tokenFor(admin);
    expect((await get('/probe/results', token)).status).toBe(200);
    const res = await fetch(`${base}/probe/jobs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
    });
    expect(res.status).toBe(200);
  });

  it('keeps verifying tokens of a retired key after rotation, and signs new ones with a new key', async () => {
    const claims = { subject: reader.clientId, clientId: reader.clientId, scope: 'results:read' };
    const issue = (): ReturnType<ReturnType<typeof createTokenIssuer>['issue']> =>
      createTokenIssuer({
        keys: createKeyStore(deps),
        clock: deps.clock,
        issuer: base,
        audience: config.auth.audience,
        ttlSeconds: 300,
      }).issue(claims);
    const before = await issue();
    await createKeyStore(deps).rotate();
    const after = await issue();
    const kidBefore = decodeProtectedHeader(before.accessToken).kid;
    const kidAfter = decodeProtectedHeader(after.accessToken).kid;
    expect(kidAfter).not.toBe(kidBefore);
    const fresh = createKeyStore(deps);
    expect((await fresh.jwks()).keys.map((k) => k.kid)).toEqual(
      expect.arrayContaining([kidBefore, kidAfter]),
    );
    const verify = createTokenVerifier({
      getKey: fresh.getKey,
      issuer: base,
      audience: config.auth.audience,
      algorithms: ['ES256'],
      clock: deps.clock,
    });
    expect((await verify(before.accessToken)).subject).toBe(reader.clientId);
    expect((await verify(after.accessToken)).subject).toBe(reader.clientId);
  });
});

/** Runs the whole operator login from /admin/queues; returns the response of the callback. */
async function operatorLogin(jar: CookieJar, who: { username: string; password: string }): Promise<Response> {
  const start = await hop(jar, `${base}/admin/queues`, { headers: HTML });
  expect(start.status).toBe(302);
  const loginUrl = location(start, base);
  expect(loginUrl).toBe(`${base}/admin/login?returnTo=%2Fadmin%2Fqueues`);
  const toProvider = await hop(jar, loginUrl, { headers: HTML });
  expect(toProvider.status).toBe(302);
  const authorize = new URL(location(toProvider, base));
  expect(authorize.origin + authorize.pathname).toBe(`${base}/oauth/authorize`);
  expect(authorize.searchParams.get('client_id')).toBe('bull-board');
  expect(authorize.searchParams.get('response_type')).toBe('code');
  expect(authorize.searchParams.get('redirect_uri')).toBe(`${base}/admin/auth/callback`);
  expect(authorize.searchParams.get('code_challenge_method')).toBe('S256');
  expect(authorize.searchParams.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
  expect(authorize.searchParams.get('state')?.length).toBeGreaterThanOrEqual(16);
  const form = await hop(jar, authorize.toString(), { headers: HTML });
  expect(form.status).toBe(200);
  expect(form.headers.get('x-frame-options')).toBe('DENY');
  const hidden = hiddenInputs(await form.text());
  expect(hidden.state).toBe(authorize.searchParams.get('state'));
  expect(hidden.csrf).toBeTruthy();
  const submitted = await hop(jar, `${base}/oauth/authorize`, {
    method: 'POST',
    headers: { ...HTML, ...FORM },
    body: new URLSearchParams({ ...hidden, username: who.username, password: who.password }),
  });
  expect(submitted.status).toBe(303);
  const callback = new URL(location(submitted, base));
  expect(callback.origin + callback.pathname).toBe(`${base}/admin/auth/callback`);
  expect(callback.searchParams.get('state')).toBe(authorize.searchParams.get('state'));
  return hop(jar, callback.toString(), { headers: HTML });
}

describe('Bull Board behind operator login', () => {
  it('redirects a browser without a session to the login, and answers XHR with 401', async () => {
    const page = await fetch(`${base}/admin/queues`, { headers: HTML, redirect: 'manual' });
    expect(page.status).toBe(302);
    expect(page.headers.get('location')).toBe('/admin/login?returnTo=%2Fadmin%2Fqueues');
    const xhr = await fetch(`${base}/admin/queues/api/queues`, { headers: { accept: 'application/json' } });
    expect(xhr.status).toBe(401);
  });

  it('logs an operator in with PKCE and state, then serves every queue and its Job Schedulers', async () => {
    await queues.get('bars.rollup-5m').upsertJobScheduler(
      'auth-test-scheduler',
      { every: 300_000 },
      {
        name: 'bars.rollup-5m',
        data: {},
      },
    );
    const jar = new CookieJar();
    const callback = await operatorLogin(jar, operator);
    expect(callback.status).toBe(302);
    expect(callback.headers.get('location')).toBe('/admin/queues');
    expect(jar.cookies.has('mdw.sid')).toBe(true);

    const page = await hop(jar, `${base}/admin/queues`, { headers: HTML });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);

    const res = await hop(jar, `${base}/admin/queues/api/queues`, {
      headers: { accept: 'application/json' },
    });
    expect(res.status).toBe(200);
    const { queues: listed } = (await res.json()) as {
      queues: { name: string; description?: string; delimiter?: string }[];
    };
    // Grouped by stage (`<stage>:<queue>`, ':' the board's delimiter), in pipeline order, each
    // with its catalogue description.
    expect(listed.map((q) => q.name)).toEqual(queuesByStage().map((i) => `${i.stage}:${i.queueName}`));
    expect(listed.map((q) => q.name.split(':')[1]).sort()).toEqual([...allQueueNames].sort());
    for (const q of listed) {
      expect(q.delimiter).toBe(':');
      expect(q.description?.length).toBeGreaterThan(10);
    }

    const sched = await hop(jar, `${base}/admin/queues/api/job-schedulers`, {
      headers: { accept: 'application/json' },
    });
    expect(sched.status).toBe(200);
    const { schedulers } = (await sched.json()) as { schedulers: { id: string; queueName: string }[] };
    expect(schedulers).toContainEqual(
      expect.objectContaining({ id: 'auth-test-scheduler', queueName: 'bars:bars.rollup-5m' }),
    );
  });

  it('refuses a state-changing Bull Board call without our Origin (CSRF), and allows it with it', async () => {
    const jar = new CookieJar();
    await operatorLogin(jar, operator);
    const url = `${base}/admin/queues/api/queues/bars:bars.rollup-1d/pause`;
    const queue = queues.get('bars.rollup-1d');
    const noOrigin = await hop(jar, url, { method: 'PUT' });
    expect(noOrigin.status).toBe(403);
    const evil = await hop(jar, url, { method: 'PUT', headers: { origin: 'https://evil.example' } });
    expect(evil.status).toBe(403);
    const evilReferer = await hop(jar, url, {
      method: 'PUT',
      headers: { referer: 'https://evil.example/x' },
    });
    expect(evilReferer.status).toBe(403);
    expect(await queue.isPaused()).toBe(false);
    const ours = await hop(jar, url, { method: 'PUT', headers: { origin: base } });
    expect(ours.status).toBe(200);
    expect(await queue.isPaused()).toBe(true);
    await queue.resume();
  });

  it('refuses a user who is not an operator', async () => {
    const res = await operatorLogin(new CookieJar(), outsider);
    expect(res.status).toBe(403);
    expect(await res.text()).toContain('not an operator');
  });

  it('refuses a callback whose state does not match the session', async () => {
    const jar = new CookieJar();
    await hop(jar, `${base}/admin/login`, { headers: HTML });
    const res = await hop(jar, `${base}/admin/auth/callback?code=abc&state=forged`, { headers: HTML });
    expect(res.status).toBe(403);
    const xhr = await hop(jar, `${base}/admin/queues/api/queues`, {
      headers: { accept: 'application/json' },
    });
    expect(xhr.status).toBe(401);
  });

  it('logs out with a same-origin POST only', async () => {
    const jar = new CookieJar();
    await operatorLogin(jar, operator);
    const crossSite = await hop(jar, `${base}/admin/logout`, {
      method: 'POST',
      headers: { origin: 'https://evil.example' },
    });
    expect(crossSite.status).toBe(403);
    expect((await hop(jar, `${base}/admin/queues/api/queues`)).status).toBe(200);
    const out = await hop(jar, `${base}/admin/logout`, { method: 'POST', headers: { origin: base } });
    expect(out.status).toBe(200);
    expect((await hop(jar, `${base}/admin/queues/api/queues`)).status).toBe(401);
  });
});

describe('built-in authorization endpoint and code grant', () => {
  const redirectUri = (): string => `${base}/admin/auth/callback`;

  async function loginForm(jar: CookieJar, params: Record<string, string>): Promise<Response> {
    return hop(jar, `${base}/oauth/authorize?${new URLSearchParams(params)}`, { headers: HTML });
  }

  async function authorizeCode(verifier: string, state = randomToken(12)): Promise<string> {
    const jar = new CookieJar();
    const form = await loginForm(jar, {
      client_id: 'bull-board',
      redirect_uri: redirectUri(),
      response_type: 'code',
      code_challenge: pkceS256(verifier),
      code_challenge_method: 'S256',
      state,
    });
    expect(form.status).toBe(200);
    const hidden = hiddenInputs(await form.text());
    const res = await hop(jar, `${base}/oauth/authorize`, {
      method: 'POST',
      headers: FORM,
      body: new URLSearchParams({ ...hidden, ...operator }),
    });
    expect(res.status).toBe(303);
    const back = new URL(location(res, base));
    expect(back.searchParams.get('state')).toBe(state);
    return back.searchParams.get('code') ?? '';
  }

  function exchange(code: string, verifier: string, redirect = redirectUri()): Promise<Response> {
    return tokenRequest({
      grant_type: 'authorization_code',
      client_id: 'bull-board',
      code,
      redirect_uri: redirect,
      code_verifier: verifier,
    });
  }

  it('exchanges a code once, with the PKCE verifier, for an operator token without API scopes', async () => {
    const verifier = randomToken(48);
    const code = await authorizeCode(verifier);
    const res = await exchange(code, verifier);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { access_token: string; scope: string };
    expect(body.scope).toBe('');
    expect(decodeJwt(body.access_token).sub).toMatch(/^user:\d+$/);
    // An operator's login token opens userinfo but no API route.
    const info = await get('/oauth/userinfo', body.access_token);
    expect(await info.json()).toMatchObject({ preferred_username: operator.username, roles: ['operator'] });
    expect((await get('/probe/results', body.access_token)).status).toBe(403);

    const again = await exchange(code, verifier);
    expect(again.status).toBe(400);
    expect(await again.json()).toMatchObject({ error: 'invalid_grant' });
  });

  it('refuses a wrong code_verifier or redirect_uri with invalid_grant, burning the code', async () => {
    const verifier = randomToken(48);
    const code = await authorizeCode(verifier);
    const wrong = await exchange(code, randomToken(48));
    expect(wrong.status).toBe(400);
    expect(await wrong.json()).toMatchObject({ error: 'invalid_grant' });
    expect((await exchange(code, verifier)).status).toBe(400);

    const code2 = await authorizeCode(verifier);
    const elsewhere = await exchange(code2, verifier, `${base}/elsewhere`);
    expect(elsewhere.status).toBe(400);
    expect(await elsewhere.json()).toMatchObject({ error: 'invalid_grant' });
  });

  it('never redirects to an unregistered redirect_uri, and sends PKCE-less requests back with an error', async () => {
    const jar = new CookieJar();
    const foreign = await loginForm(jar, {
      client_id: 'bull-board',
      redirect_uri: 'https://evil.example/cb',
      response_type: 'code',
      code_challenge: pkceS256(randomToken(48)),
      code_challenge_method: 'S256',
    });
    expect(foreign.status).toBe(400);
    expect(foreign.headers.get('location')).toBeNull();

    const noPkce = await loginForm(jar, {
      client_id: 'bull-board',
      redirect_uri: redirectUri(),
      response_type: 'code',
      state: 's1',
    });
    expect(noPkce.status).toBe(302);
    const back = new URL(location(noPkce, base));
    expect(back.searchParams.get('error')).toBe('invalid_request');
    expect(back.searchParams.get('state')).toBe('s1');

    const plain = await loginForm(jar, {
      client_id: 'bull-board',
      redirect_uri: redirectUri(),
      response_type: 'code',
      code_challenge: 'x'.repeat(43),
      code_challenge_method: 'plain',
    });
    expect(new URL(location(plain, base)).searchParams.get('error')).toBe('invalid_request');
  });

  it('refuses a wrong password (401, form again) and a missing or foreign CSRF token (403)', async () => {
    const jar = new CookieJar();
    const params = {
      client_id: 'bull-board',
      redirect_uri: redirectUri(),
      response_type: 'code',
      code_challenge: pkceS256(randomToken(48)),
      code_challenge_method: 'S256',
    };
    const hidden = hiddenInputs(await (await loginForm(jar, params)).text());
    const post = (body: Record<string, string>, j = jar): Promise<Response> =>
      hop(j, `${base}/oauth/authorize`, { method: 'POST', headers: FORM, body: new URLSearchParams(body) });

    const wrong = await post({ ...hidden, username: operator.username, password: 'wrong password!' });
    expect(wrong.status).toBe(401);
    expect(await wrong.text()).toContain('Invalid username or password.');

    const { csrf: _csrf, ...withoutCsrf } = hidden;
    expect((await post({ ...withoutCsrf, ...operator })).status).toBe(403);
    // A form token from another browser's session is worth nothing in this one.
    const otherJar = new CookieJar();
    const otherHidden = hiddenInputs(await (await loginForm(otherJar, params)).text());
    expect((await post({ ...hidden, csrf: otherHidden.csrf ?? '', ...operator })).status).toBe(403);
    expect((await post({ ...hidden, ...operator }, new CookieJar())).status).toBe(403);
  });
});

describe('public URL not reachable from the server itself (AUTH_INTERNAL_URL)', () => {
  it('runs the back channel of the operator login through the internal URL', async () => {
    // Browsers know the app as http://operator.test (a name nothing resolves); the process
    // reaches itself only through AUTH_INTERNAL_URL. The test plays the browser's DNS.
    const publicUrl = 'http://operator.test';
    const inner = await startServer();
    const innerConfig = testConfig({ PUBLIC_URL: publicUrl, AUTH_INTERNAL_URL: inner.url });
    const innerDeps = testDeps({ config: innerConfig });
    const innerQueues = createQueues(innerConfig);
    try {
      const innerAuth = await createAuth(innerDeps);
      inner.setHandler(buildApp(innerAuth, innerQueues));
      const viaDns = (url: string): string => url.replace(publicUrl, inner.url);
      const jar = new CookieJar();
      const toProvider = await hop(jar, `${inner.url}/admin/login`, { headers: HTML });
      const authorize = location(toProvider, publicUrl);
      expect(authorize.startsWith(`${publicUrl}/oauth/authorize?`)).toBe(true);
      const hidden = hiddenInputs(await (await hop(jar, viaDns(authorize), { headers: HTML })).text());
      const submitted = await hop(jar, `${inner.url}/oauth/authorize`, {
        method: 'POST',
        headers: FORM,
        body: new URLSearchParams({ ...hidden, ...operator }),
      });
      const callback = location(submitted, publicUrl);
      expect(callback.startsWith(`${publicUrl}/admin/auth/callback?`)).toBe(true);
      const done = await hop(jar, viaDns(callback), { headers: HTML });
      expect(done.status).toBe(302);
      expect((await hop(jar, `${inner.url}/admin/queues/api/queues`)).status).toBe(200);
    } finally {
      await inner.close();
      await innerQueues.close();
      await closeDeps(innerDeps);
    }
  });
});
