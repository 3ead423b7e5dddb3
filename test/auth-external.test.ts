/**
 * Auth against an external OAuth2/OIDC provider, by configuration alone: a real
 * oauth2-mock-server on 127.0.0.1 issues RS256 tokens and logs operators in. Bearer tokens are
 * checked through its JWKS (AUTH_ISSUER / AUTH_JWKS_URL / AUTH_AUDIENCE), and Bull Board's login
 * runs the authorization-code flow with PKCE and state against it (OPERATOR_AUTH_PROVIDER=external).
 */
import express from 'express';
import { Events, OAuth2Server } from 'oauth2-mock-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mountAdmin } from '../api/admin.ts';
import { createAuth, type Auth } from '../api/auth/index.ts';
import { pkceS256 } from '../api/auth/secrets.ts';
import type { Deps } from '../core/deps.ts';
import { allQueueNames, createQueues, type QueueSet } from '../jobs/queues.ts';
import { CookieJar, hop, HTML, location, startServer, type TestServer } from './auth-http.ts';
import { closeDeps, dropPrefix, testConfig, testDeps } from './support.ts';

const AUDIENCE = 'market-data-api';

let idp: OAuth2Server;
let stranger: OAuth2Server;
let idpUrl: string;
let server: TestServer;
let base: string;
let deps: Deps;
let queues: QueueSet;
let auth: Auth;

beforeAll(async () => {
  idp = new OAuth2Server();
  await idp.issuer.keys.generate('RS256');
  await idp.start(0, '127.0.0.1');
  idpUrl = idp.issuer.url ?? '';
  stranger = new OAuth2Server();
  await stranger.issuer.keys.generate('RS256');
  await stranger.start(0, '127.0.0.1');
  // The provider names the client in `sub`, as real ones do for client-credentials tokens.
  for (const s of [idp, stranger]) {
    s.service.on(Events.BeforeTokenSigning, (token, req) => {
      if (req.body.grant_type === 'client_credentials')
        token.payload.sub = String(req.body.client_id ?? 'machine');
    });
  }

  server = await startServer();
  base = server.url;
  const config = testConfig({
    PUBLIC_URL: base,
    AUTH_ISSUER: idpUrl,
    AUTH_JWKS_URL: `${idpUrl}/jwks`,
    AUTH_AUDIENCE: AUDIENCE,
    OPERATOR_AUTH_PROVIDER: 'external',
    OAUTH_AUTHORIZATION_URL: `${idpUrl}/authorize`,
    OAUTH_TOKEN_URL: `${idpUrl}/token`,
    OAUTH_USERINFO_URL: `${idpUrl}/userinfo`,
    OAUTH_CLIENT_ID: 'mdw-bull-board',
    OAUTH_CLIENT_SECRET: 'registered-at-the-provider',
    OAUTH_SCOPE: 'openid profile',
  });
  deps = testDeps({ config });
  queues = createQueues(config);
  auth = await createAuth(deps);
  const app = express();
  app.use(['/oauth', '/admin', '/.well-known'], auth.session);
  app.use(auth.router);
  mountAdmin(app, { auth, queues: queues.all() });
  app.get('/probe/results', auth.requireScope('results:read'), (_req, res) => {
    res.json({ subject: res.locals.principal?.subject, issuer: res.locals.principal?.issuer });
  });
  server.setHandler(app);
});

afterAll(async () => {
  await server?.close();
  await auth?.close();
  if (deps) await dropPrefix(deps);
  await queues?.close();
  if (deps) await closeDeps(deps);
  await idp?.stop();
  await stranger?.stop();
});

async function providerToken(from: OAuth2Server, body: Record<string, string>): Promise<string> {
  const res = await fetch(`${from.issuer.url}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ grant_type: 'client_credentials', client_id: 'reporting-system', ...body }),
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { access_token: string }).access_token;
}

function probe(token: string): Promise<Response> {
  return fetch(`${base}/probe/results`, { headers: { authorization: `Bearer ${token}` } });
}

describe('bearer tokens from an external issuer', () => {
  it('accepts a token the provider issued for our audience with the scope, verified through its JWKS', async () => {
    const token = await providerToken(idp, { scope: 'results:read', aud: AUDIENCE });
    const res = await probe(token);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ subject: 'reporting-system', issuer: idpUrl });
  });

  it('refuses tokens of another issuer: a different server, or its own key claiming another iss', async () => {
    const foreign = await providerToken(stranger, { scope: 'results:read', aud: AUDIENCE });
    const impostor = await idp.issuer.buildToken({
      scopesOrTransform: (_h, p) =>
        Object.assign(p, { iss: 'https://impostor.example', aud: AUDIENCE, sub: 'x', scope: 'results:read' }),
    });
    for (const token of [foreign, impostor]) {
      const res = await probe(token);
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toContain('error="invalid_token"');
    }
  });

  it('refuses a token without our audience, an expired one (401) and one lacking the scope (403)', async () => {
    const noAudience = await providerToken(idp, { scope: 'results:read' });
    expect((await probe(noAudience)).status).toBe(401);
    const expired = await idp.issuer.buildToken({
      expiresIn: -3600,
      scopesOrTransform: (_h, p) => Object.assign(p, { aud: AUDIENCE, sub: 'x', scope: 'results:read' }),
    });
    const expiredRes = await probe(expired);
    expect(expiredRes.status).toBe(401);
    expect(expiredRes.headers.get('www-authenticate')).toContain('token expired');
    const noScope = await providerToken(idp, { scope: 'jobs:write openid', aud: AUDIENCE });
    const res = await probe(noScope);
    expect(res.status).toBe(403);
    expect(res.headers.get('www-authenticate')).toContain('error="insufficient_scope"');
  });

  it('does not mount the built-in provider when both logins and tokens are external', async () => {
    const res = await fetch(`${base}/oauth/token`, {
      method: 'POST',
      body: new URLSearchParams({ grant_type: 'client_credentials' }),
    });
    expect(res.status).toBe(404);
  });
});

describe('operator login through the external provider', () => {
  it('runs the code flow with PKCE and state against the provider and opens Bull Board', async () => {
    let tokenRequest: Record<string, unknown> | undefined;
    idp.service.once(Events.BeforeResponse, (_response, req) => {
      tokenRequest = req.body as Record<string, unknown>;
    });
    const jar = new CookieJar();
    const start = await hop(jar, `${base}/admin/queues`, { headers: HTML });
    expect(start.status).toBe(302);
    const toProvider = await hop(jar, location(start, base), { headers: HTML });
    expect(toProvider.status).toBe(302);
    const authorize = new URL(location(toProvider, base));
    expect(authorize.origin + authorize.pathname).toBe(`${idpUrl}/authorize`);
    expect(authorize.searchParams.get('client_id')).toBe('mdw-bull-board');
    expect(authorize.searchParams.get('scope')).toBe('openid profile');
    expect(authorize.searchParams.get('redirect_uri')).toBe(`${base}/admin/auth/callback`);
    expect(authorize.searchParams.get('code_challenge_method')).toBe('S256');
    const challenge = authorize.searchParams.get('code_challenge') ?? '';
    const state = authorize.searchParams.get('state') ?? '';
    expect(state.length).toBeGreaterThanOrEqual(16);

    // The provider authenticates the user and redirects back with a code and our state.
    const atProvider = await fetch(authorize, { redirect: 'manual' });
    expect(atProvider.status).toBe(302);
    const callback = new URL(location(atProvider, idpUrl));
    expect(callback.searchParams.get('state')).toBe(state);

    const done = await hop(jar, callback.toString(), { headers: HTML });
    expect(done.status).toBe(302);
    expect(done.headers.get('location')).toBe('/admin/queues');
    // passport sent the verifier matching the challenge (the provider checked it as well).
    expect(tokenRequest).toMatchObject({
      grant_type: 'authorization_code',
      redirect_uri: `${base}/admin/auth/callback`,
    });
    expect(pkceS256(String(tokenRequest?.code_verifier))).toBe(challenge);

    const res = await hop(jar, `${base}/admin/queues/api/queues`, {
      headers: { accept: 'application/json' },
    });
    expect(res.status).toBe(200);
    const { queues: listed } = (await res.json()) as { queues: { name: string }[] };
    expect(listed.map((q) => q.name.split(':').at(-1)).sort()).toEqual([...allQueueNames].sort());
  });

  it('shows an error and opens no session when the provider refuses the code', async () => {
    idp.service.once(Events.BeforeResponse, (response) => {
      response.statusCode = 400;
      response.body = { error: 'invalid_grant' };
    });
    const jar = new CookieJar();
    const toProvider = await hop(jar, `${base}/admin/login`, { headers: HTML });
    const atProvider = await fetch(location(toProvider, base), { redirect: 'manual' });
    const done = await hop(jar, location(atProvider, idpUrl), { headers: HTML });
    expect(done.status).toBe(502);
    const res = await hop(jar, `${base}/admin/queues/api/queues`, {
      headers: { accept: 'application/json' },
    });
    expect(res.status).toBe(401);
  });
});
