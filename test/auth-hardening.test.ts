/**
 * Issue 8 §3 "Operators and tokens", hostile cases over real HTTP, PostgreSQL and Redis:
 * throttling of wrong secrets and passwords (per address and per client/user, 429 with
 * Retry-After, refused before the secret is checked, logged with client and address), no Redis
 * state for anonymous visitors, immediate revocation of disabled operators and clients, signing
 * keys sealed at rest, and a compose file that cannot boot with a placeholder secret.
 *
 * "Another address" is real: requests leave from 127.0.0.x source addresses (Linux routes all of
 * 127/8 to loopback), so the server sees different peers without trusting any header.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import express from 'express';
import { decodeProtectedHeader, importJWK, SignJWT, generateKeyPair, type JWK } from 'jose';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { mountAdmin } from '../api/admin.ts';
import {
  createClient,
  createOperator,
  disableClient,
  enableClient,
  type CreatedClient,
} from '../api/auth/accounts.ts';
import { createAuth, type Auth } from '../api/auth/index.ts';
import { createKeyStore, resealSigningKeys } from '../api/auth/keys.ts';
import { createTokenIssuer, createTokenVerifier } from '../api/auth/tokens.ts';
import { authKeyNamespace } from '../api/auth/redis.ts';
import { loadConfig } from '../core/config.ts';
import { createDb } from '../core/db/knex.ts';
import { migrateDownOne, migrateLatest } from '../core/db/migrate.ts';
import { createSealer } from '../core/sealed.ts';
import type { Deps } from '../core/deps.ts';
import { createQueues, type QueueSet } from '../jobs/queues.ts';
import { hiddenInputs, startServer, type TestServer } from './auth-http.ts';
import { closeDeps, dropPrefix, scratchDatabase, testConfig, testDeps } from './support.ts';

const FORM = 'application/x-www-form-urlencoded';

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
}

/** One HTTP request from a chosen loopback source address, with an optional cookie jar. */
function call(
  url: string,
  opts: {
    method?: string;
    headers?: Record<string, string>;
    body?: string;
    from?: string;
    jar?: Map<string, string>;
  } = {},
): Promise<Reply> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.jar?.size) headers.cookie = [...opts.jar].map(([k, v]) => `${k}=${v}`).join('; ');
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      { method: opts.method ?? 'GET', headers, localAddress: opts.from ?? '127.0.0.1', agent: false },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => {
          for (const line of res.headers['set-cookie'] ?? []) {
            const [pair = ''] = line.split(';', 1);
            const eq = pair.indexOf('=');
            if (eq <= 0 || !opts.jar) continue;
            if (/expires=Thu, 01 Jan 1970/i.test(line)) opts.jar.delete(pair.slice(0, eq));
            else opts.jar.set(pair.slice(0, eq), pair.slice(eq + 1));
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text });
        });
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

function basic(id: string, secret: string): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
}

interface Env {
  base: string;
  deps: Deps;
  auth: Auth;
  queues: QueueSet;
  server: TestServer;
  logs: Record<string, unknown>[];
  close(): Promise<void>;
}

/** The auth routes, Bull Board and two probe routes on a server of their own, logs captured. */
async function makeEnv(overrides: Record<string, string> = {}): Promise<Env> {
  const server = await startServer();
  const config = testConfig({ PUBLIC_URL: server.url, LOG_LEVEL: 'info', ...overrides });
  const logs: Record<string, unknown>[] = [];
  const logger = pino(
    { level: 'info' },
    { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) },
  );
  const deps: Deps = { ...testDeps({ config }), logger };
  const queues = createQueues(config);
  const auth = await createAuth(deps);
  const app = express();
  app.use(['/oauth', '/admin', '/.well-known'], auth.session);
  app.use(auth.router);
  mountAdmin(app, { auth, queues: queues.all() });
  app.get('/probe/results', auth.requireScope('results:read'), (_req, res) => {
    res.json({ subject: res.locals.principal?.subject });
  });
  server.setHandler(app);
  return {
    base: server.url,
    deps,
    auth,
    queues,
    server,
    logs,
    async close() {
      await server.close();
      await auth.close();
      await dropPrefix(deps);
      await queues.close();
      await closeDeps(deps);
    },
  };
}

async function redisKeys(deps: Deps): Promise<string[]> {
  const out: string[] = [];
  for (const pattern of [
    `${authKeyNamespace(deps.config.queue.prefix)}:*`,
    `${deps.config.queue.prefix}:*`,
  ]) {
    let cursor = '0';
    do {
      const [next, keys] = await deps.redis.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
      cursor = next;
      out.push(...keys);
    } while (cursor !== '0');
  }
  return out;
}

function tokenRequest(env: Env, client: { id: string; secret: string }, from: string): Promise<Reply> {
  return call(`${env.base}/oauth/token`, {
    method: 'POST',
    from,
    headers: { 'content-type': FORM, authorization: basic(client.id, client.secret) },
    body: 'grant_type=client_credentials',
  });
}

/** The built-in provider's sign-in form for the Bull Board client, fetched from `from`. */
async function signInForm(env: Env, from: string, jar: Map<string, string>): Promise<Record<string, string>> {
  const login = await call(`${env.base}/admin/login`, { from, jar, headers: { accept: 'text/html' } });
  expect(login.status).toBe(302);
  const form = await call(new URL(login.headers.location ?? '', env.base).toString(), { from, jar });
  expect(form.status).toBe(200);
  return hiddenInputs(form.text);
}

function postSignIn(
  env: Env,
  from: string,
  jar: Map<string, string>,
  fields: Record<string, string>,
): Promise<Reply> {
  return call(`${env.base}/oauth/authorize`, {
    method: 'POST',
    from,
    jar,
    headers: { 'content-type': FORM },
    body: new URLSearchParams(fields).toString(),
  });
}

/** Completes an operator login from the loopback address; returns the cookie jar. */
async function loginOperator(
  env: Env,
  who: { username: string; password: string },
): Promise<Map<string, string>> {
  const jar = new Map<string, string>();
  const hidden = await signInForm(env, '127.0.0.1', jar);
  const submitted = await postSignIn(env, '127.0.0.1', jar, { ...hidden, ...who });
  expect(submitted.status).toBe(303);
  const done = await call(submitted.headers.location ?? '', { jar, headers: { accept: 'text/html' } });
  expect(done.status).toBe(302);
  return jar;
}

describe('throttling wrong secrets', () => {
  let env: Env;
  let client: CreatedClient;
  let other: CreatedClient;
  const op = { username: `thr-${randomBytes(4).toString('hex')}`, password: 'throttle test password' };

  beforeAll(async () => {
    env = await makeEnv();
    client = await createClient(env.deps, { name: 'flooded', scopes: ['results:read'] });
    other = await createClient(env.deps, { name: 'bystander', scopes: ['results:read'] });
    await createOperator(env.deps, { ...op, roles: ['operator'] });
  });
  afterAll(async () => env?.close());

  it('answers a flood of 100 wrong client secrets with 429 + Retry-After before checking them, and logs it', async () => {
    const wrongSecret = `${client.clientSecret}-wrong`;
    const statuses: number[] = [];
    let last: Reply | undefined;
    for (let i = 0; i < 100; i++) {
      last = await tokenRequest(env, { id: client.clientId, secret: wrongSecret }, '127.0.0.2');
      statuses.push(last.status);
    }
    // Only the first few wrong secrets are checked (401); the rest are refused unchecked.
    const checked = statuses.filter((s) => s === 401).length;
    expect(checked).toBeGreaterThan(0);
    expect(checked).toBeLessThanOrEqual(10);
    expect(statuses.filter((s) => s === 429).length).toBe(100 - checked);
    expect(last?.status).toBe(429);
    const retryAfter = Number(last?.headers['retry-after']);
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(900);
    expect(JSON.parse(last?.text ?? '{}')).toMatchObject({ error: 'too_many_requests' });

    // Even the right secret from the flooding address is refused unchecked...
    expect(
      (await tokenRequest(env, { id: client.clientId, secret: client.clientSecret }, '127.0.0.2')).status,
    ).toBe(429);
    // ...while the client itself, from its own address, still gets its token.
    expect(
      (await tokenRequest(env, { id: client.clientId, secret: client.clientSecret }, '127.0.0.3')).status,
    ).toBe(200);

    const refusals = env.logs.filter((l) => l.msg === 'authentication throttled');
    expect(refusals.length).toBeGreaterThanOrEqual(100 - checked);
    expect(refusals[0]).toMatchObject({ clientId: client.clientId, address: '127.0.0.2', endpoint: 'token' });
    expect(JSON.stringify(env.logs)).not.toContain(client.clientSecret);
  });

  it('throttles one client guessed at from many addresses, without locking those addresses out', async () => {
    const statuses: number[] = [];
    for (let a = 10; a < 14; a++) {
      for (let i = 0; i < 9; i++) {
        statuses.push(
          (await tokenRequest(env, { id: other.clientId, secret: 'not-the-secret' }, `127.0.1.${a}`)).status,
        );
      }
    }
    expect(statuses.at(-1)).toBe(429);
    expect(statuses.filter((s) => s === 401).length).toBeLessThan(36);
    // Another client from one of those addresses is not affected.
    expect(
      (await tokenRequest(env, { id: client.clientId, secret: client.clientSecret }, '127.0.1.10')).status,
    ).toBe(200);
  });

  it('is not fooled by a forged X-Forwarded-For: the peer address is what counts (TRUST_PROXY_HOPS=0)', async () => {
    const victim = await createClient(env.deps, { name: 'xff', scopes: ['results:read'] });
    const statuses: number[] = [];
    for (let i = 0; i < 15; i++) {
      const res = await call(`${env.base}/oauth/token`, {
        method: 'POST',
        from: '127.0.0.6',
        headers: {
          'content-type': FORM,
          authorization: basic(victim.clientId, 'wrong'),
          'x-forwarded-for': `198.51.100.${i}`,
        },
        body: 'grant_type=client_credentials',
      });
      statuses.push(res.status);
    }
    expect(statuses.slice(-5)).toEqual([429, 429, 429, 429, 429]);
  });

  it('answers a flood of 100 wrong passwords on the sign-in form with 429, and the operator still signs in elsewhere', async () => {
    const jar = new Map<string, string>();
    const hidden = await signInForm(env, '127.0.0.4', jar);
    const statuses: number[] = [];
    let last: Reply | undefined;
    for (let i = 0; i < 100; i++) {
      last = await postSignIn(env, '127.0.0.4', jar, {
        ...hidden,
        username: op.username,
        password: `wrong ${i}`,
      });
      statuses.push(last.status);
    }
    expect(statuses.filter((s) => s === 401).length).toBeLessThanOrEqual(10);
    expect(last?.status).toBe(429);
    expect(Number(last?.headers['retry-after'])).toBeGreaterThan(0);
    expect(last?.text).toContain('Too many');
    expect(
      env.logs.filter((l) => l.msg === 'authentication throttled' && l.endpoint === 'sign-in')[0],
    ).toMatchObject({ username: op.username, address: '127.0.0.4' });

    const jar2 = new Map<string, string>();
    const hidden2 = await signInForm(env, '127.0.0.5', jar2);
    expect((await postSignIn(env, '127.0.0.5', jar2, { ...hidden2, ...op })).status).toBe(303);
  });
});

describe('anonymous visitors', () => {
  let env: Env;
  const op = { username: `anon-${randomBytes(4).toString('hex')}`, password: 'anonymous test password' };
  beforeAll(async () => {
    env = await makeEnv();
    await createOperator(env.deps, { ...op, roles: ['operator'] });
  });
  afterAll(async () => env?.close());

  it('store nothing in Redis: 100 visits to /admin/login and the sign-in form leave zero keys', async () => {
    // BullMQ's own queue keys may exist already; nothing may be added to them or to ours.
    const before = (await redisKeys(env.deps)).sort();
    expect(before.filter((k) => k.startsWith(`${authKeyNamespace(env.deps.config.queue.prefix)}:`))).toEqual(
      [],
    );
    for (let i = 0; i < 100; i++) {
      const login = await call(`${env.base}/admin/login?returnTo=%2Fadmin%2Fqueues`, {
        headers: { accept: 'text/html' },
      });
      expect(login.status).toBe(302);
      const form = await call(new URL(login.headers.location ?? '', env.base).toString());
      expect(form.status).toBe(200);
      expect((await call(`${env.base}/admin/queues`, { headers: { accept: 'text/html' } })).status).toBe(302);
    }
    expect((await redisKeys(env.deps)).sort()).toEqual(before);
  });

  it('still log in (state, PKCE and the form token travel in cookies), creating exactly one session', async () => {
    const jar = await loginOperator(env, op);
    expect((await call(`${env.base}/admin/queues/api/queues`, { jar })).status).toBe(200);
    const sessions = (await redisKeys(env.deps)).filter((k) => k.includes(':sess:'));
    expect(sessions).toHaveLength(1);
    // connect-redis (over the ioredis facade) stores it as JSON expiring with the cookie.
    const ttl = await env.deps.redis.ttl(sessions[0] ?? '');
    expect(ttl).toBeGreaterThan(env.deps.config.auth.sessionTtlSeconds - 60);
    expect(ttl).toBeLessThanOrEqual(env.deps.config.auth.sessionTtlSeconds);
    expect(JSON.parse((await env.deps.redis.get(sessions[0] ?? '')) ?? '{}')).toMatchObject({
      operator: { username: op.username, provider: 'builtin' },
    });
  });
});

describe('revocation', () => {
  let env: Env;
  const op = { username: `rev-${randomBytes(4).toString('hex')}`, password: 'revocation test password' };
  beforeAll(async () => {
    env = await makeEnv();
    await createOperator(env.deps, { ...op, roles: ['operator'] });
  });
  afterAll(async () => env?.close());

  it("ends a disabled operator's session at the next request (npm run admin -- disable-operator)", async () => {
    const jar = await loginOperator(env, op);
    expect((await call(`${env.base}/admin/queues/api/queues`, { jar })).status).toBe(200);
    const sessionsBefore = (await redisKeys(env.deps)).filter((k) => k.includes(':sess:'));
    expect(sessionsBefore).toHaveLength(1);

    const cli = await runCli(env.deps, ['disable-operator', '--username', op.username]);
    expect(cli.code).toBe(0);
    expect(cli.stdout).toContain('disabled');

    expect((await call(`${env.base}/admin/queues/api/queues`, { jar })).status).toBe(401);
    const page = await call(`${env.base}/admin/queues`, { jar, headers: { accept: 'text/html' } });
    expect(page.status).toBe(302);
    expect((await redisKeys(env.deps)).filter((k) => k.includes(':sess:'))).toEqual([]);

    // Signing in again is refused too, until enabled.
    const jar2 = new Map<string, string>();
    const hidden = await signInForm(env, '127.0.0.1', jar2);
    expect((await postSignIn(env, '127.0.0.1', jar2, { ...hidden, ...op })).status).toBe(401);
    expect((await runCli(env.deps, ['enable-operator', '--username', op.username])).code).toBe(0);
    const jar3 = await loginOperator(env, op);
    expect((await call(`${env.base}/admin/queues/api/queues`, { jar: jar3 })).status).toBe(200);
  });

  it('logs out with the form token even when the browser sends Origin: null, and never without it', async () => {
    const jar = await loginOperator(env, op);
    const logout = (fields: Record<string, string>, origin: string): Promise<Reply> =>
      call(`${env.base}/admin/logout`, {
        method: 'POST',
        jar,
        headers: { 'content-type': FORM, origin },
        body: new URLSearchParams(fields).toString(),
      });
    const sid = /^s:([^.]+)\./.exec(decodeURIComponent(jar.get('mdw.sid') ?? ''))?.[1] ?? '';
    const key = `${authKeyNamespace(env.deps.config.queue.prefix)}:sess:${sid}`;
    expect(await env.deps.redis.exists(key)).toBe(1);
    const page = await call(`${env.base}/admin/logout`, { jar });
    const { csrf = '' } = hiddenInputs(page.text);
    expect(csrf).not.toBe('');
    expect((await logout({}, 'null')).status).toBe(403);
    expect((await logout({ csrf: `${csrf}x` }, 'null')).status).toBe(403);
    expect((await logout({ csrf }, 'https://evil.example')).status).toBe(403);
    expect((await call(`${env.base}/admin/queues/api/queues`, { jar })).status).toBe(200);
    expect((await logout({ csrf }, 'null')).status).toBe(200);
    expect((await call(`${env.base}/admin/queues/api/queues`, { jar })).status).toBe(401);
    expect(await env.deps.redis.exists(key)).toBe(0);
  });

  it("refuses a disabled client's unexpired tokens at once, and accepts them again when re-enabled", async () => {
    const client = await createClient(env.deps, { name: 'to revoke', scopes: ['results:read'] });
    const res = await tokenRequest(env, { id: client.clientId, secret: client.clientSecret }, '127.0.0.1');
    expect(res.status).toBe(200);
    const token = (JSON.parse(res.text) as { access_token: string }).access_token;
    const probe = (): Promise<Reply> =>
      call(`${env.base}/probe/results`, { headers: { authorization: `Bearer ${token}` } });
    expect((await probe()).status).toBe(200);
    await disableClient(env.deps, client.clientId);
    const refused = await probe();
    expect(refused.status).toBe(401);
    expect(refused.headers['www-authenticate']).toContain('error="invalid_token"');
    await enableClient(env.deps, client.clientId);
    expect((await probe()).status).toBe(200);
  });
});

function runCli(
  deps: Deps,
  args: string[],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['api/auth/cli.ts', ...args], {
      env: { ...process.env, DATABASE_URL: deps.config.db.url, LOG_LEVEL: 'silent', NODE_ENV: 'test' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('signing keys at rest', () => {
  let env: Env;
  let admin: CreatedClient;
  beforeAll(async () => {
    env = await makeEnv();
    admin = await createClient(env.deps, { name: 'real admin', scopes: ['admin'] });
  });
  afterAll(async () => env?.close());

  it('hold no private key a database reader can use: a token minted from the rows is refused', async () => {
    // Make sure a key exists and works.
    const ok = await tokenRequest(env, { id: admin.clientId, secret: admin.clientSecret }, '127.0.0.1');
    expect(ok.status).toBe(200);
    const kid = decodeProtectedHeader((JSON.parse(ok.text) as { access_token: string }).access_token).kid;

    const rows = (
      await env.deps.db.raw<{ rows: Record<string, unknown>[] }>('select * from oauth_signing_keys')
    ).rows;
    const row = rows.find((r) => r.kid === kid);
    expect(row).toBeDefined();
    // Whatever the columns are, no JWK with a private part ("d") is in them.
    const privateJwks = Object.values(row ?? {}).filter(
      (v) => v !== null && typeof v === 'object' && 'd' in (v as object),
    ) as JWK[];
    expect(JSON.stringify(rows)).not.toMatch(/"d":/);
    expect(String(row?.private_key_sealed)).toMatch(/^v1\./);

    // The auditor's attempt: sign an admin token with whatever the rows yield under the real kid.
    const signingKey = privateJwks[0]
      ? await importJWK(privateJwks[0], 'ES256')
      : (await generateKeyPair('ES256')).privateKey;
    const forged = await new SignJWT({ client_id: 'auditor', scope: 'admin' })
      .setProtectedHeader({ alg: 'ES256', kid: kid ?? '', typ: 'at+jwt' })
      .setIssuer(env.base)
      .setAudience(env.deps.config.auth.audience)
      .setSubject('auditor')
      .setIssuedAt()
      .setExpirationTime('5m')
      .sign(signingKey);
    const res = await call(`${env.base}/probe/results`, { headers: { authorization: `Bearer ${forged}` } });
    expect(res.status).toBe(401);
  });
});

describe('sealing keys and rotating the key encryption key', () => {
  it('opens only with the sealing key and the same associated data, and refuses an altered value', () => {
    const a = randomBytes(32);
    const b = randomBytes(32);
    const sealed = createSealer({ current: a, previous: undefined }).seal('{"d":"secret"}', 'kid-1');
    expect(sealed).not.toContain('secret');
    expect(createSealer({ current: b, previous: a }).open(sealed, 'kid-1')).toBe('{"d":"secret"}');
    expect(() => createSealer({ current: b, previous: undefined }).open(sealed, 'kid-1')).toThrow(/neither/);
    expect(() => createSealer({ current: a, previous: undefined }).open(sealed, 'kid-2')).toThrow(
      /authentication/,
    );
    const parts = sealed.split('.');
    const ct = Buffer.from(parts[3] ?? '', 'base64url');
    ct[0] = (ct[0] ?? 0) ^ 1;
    parts[3] = ct.toString('base64url');
    expect(() => createSealer({ current: a, previous: undefined }).open(parts.join('.'), 'kid-1')).toThrow();
    // A truncated tag is not accepted as a shorter tag.
    parts[3] = sealed.split('.')[3] ?? '';
    parts[4] = (sealed.split('.')[4] ?? '').slice(0, 6);
    expect(() => createSealer({ current: a, previous: undefined }).open(parts.join('.'), 'kid-1')).toThrow();
  });

  it('seals clear keys in the migration, then re-seals them under a new key (reseal-signing-keys)', async () => {
    const scratch = await scratchDatabase();
    const db = createDb({ db: { url: scratch.url, poolMax: 2 } });
    const opened: Deps[] = [];
    const depsWith = (keys: Record<string, string>): Deps => {
      const d = testDeps({ config: testConfig({ DATABASE_URL: scratch.url, ...keys }) });
      opened.push(d);
      return d;
    };
    try {
      // The schema before this issue, with a key stored in clear as it used to be.
      // (Later migrations are rolled back first; the loop stops at this issue's.)
      const rolled: string[] = [];
      while (!rolled.includes('20261204000400_auth_hardening.ts')) {
        const step = await migrateDownOne(db);
        expect(step).toHaveLength(1);
        rolled.push(...step);
      }
      const pair = await generateKeyPair('ES256', { extractable: true });
      const { exportJWK } = await import('jose');
      const publicJwk = await exportJWK(pair.publicKey);
      const privateJwk = await exportJWK(pair.privateKey);
      await db.raw(
        `insert into oauth_signing_keys (kid, alg, public_jwk, private_jwk) values ('old-kid', 'ES256', ?::jsonb, ?::jsonb)`,
        [JSON.stringify(publicJwk), JSON.stringify(privateJwk)],
      );
      await migrateLatest(db);
      const row = (await db.raw<{ rows: Record<string, unknown>[] }>(`select * from oauth_signing_keys`))
        .rows[0];
      expect(row).not.toHaveProperty('private_jwk');
      expect(JSON.stringify(row)).not.toContain(String(privateJwk.d));

      // The dev key (no AUTH_KEY_ENCRYPTION_KEY outside production) sealed it; the store signs with it.
      const devDeps = depsWith({});
      const issue = async (d: Deps): Promise<string> =>
        (
          await createTokenIssuer({
            keys: createKeyStore(d),
            clock: d.clock,
            issuer: 'https://issuer.test',
            audience: 'aud',
            ttlSeconds: 60,
          }).issue({ subject: 's', clientId: 's', scope: '' })
        ).accessToken;
      const token = await issue(devDeps);
      expect(decodeProtectedHeader(token).kid).toBe('old-kid');
      const verify = createTokenVerifier({
        getKey: createKeyStore(devDeps).getKey,
        issuer: 'https://issuer.test',
        audience: 'aud',
        algorithms: ['ES256'],
        clock: devDeps.clock,
      });
      expect((await verify(token)).subject).toBe('s');

      // Rotation: new key current, old one previous; reseal; then the old key alone opens nothing.
      const devKey = devDeps.config.auth.keyEncryption.current.toString('base64');
      const newKey = randomBytes(32).toString('base64');
      const during = depsWith({ AUTH_KEY_ENCRYPTION_KEY: newKey, AUTH_KEY_ENCRYPTION_KEY_PREVIOUS: devKey });
      expect(decodeProtectedHeader(await issue(during)).kid).toBe('old-kid');
      expect(await resealSigningKeys(during)).toMatchObject({ resealed: 1, current: 0 });
      expect(await resealSigningKeys(during)).toMatchObject({ resealed: 0, current: 1 });
      expect(decodeProtectedHeader(await issue(depsWith({ AUTH_KEY_ENCRYPTION_KEY: newKey }))).kid).toBe(
        'old-kid',
      );
      await expect(issue(depsWith({ AUTH_KEY_ENCRYPTION_KEY: devKey }))).rejects.toThrow(
        /cannot unseal signing key old-kid/,
      );
    } finally {
      await db.destroy();
      for (const d of opened) await closeDeps(d);
      await scratch.drop();
    }
  });
});

describe('configuration', () => {
  const key = randomBytes(32).toString('base64');
  const prod = {
    NODE_ENV: 'production',
    DATABASE_URL: inject('databaseUrl'),
    SESSION_SECRET: randomBytes(32).toString('base64'),
    AUTH_KEY_ENCRYPTION_KEY: key,
  };

  it('requires AUTH_KEY_ENCRYPTION_KEY (32 bytes) in production, and refuses placeholder session secrets', () => {
    expect(() => loadConfig(prod)).not.toThrow();
    expect(() => loadConfig({ ...prod, AUTH_KEY_ENCRYPTION_KEY: undefined })).toThrow(
      /AUTH_KEY_ENCRYPTION_KEY/,
    );
    expect(() => loadConfig({ ...prod, AUTH_KEY_ENCRYPTION_KEY: 'c2hvcnQ=' })).toThrow(
      /AUTH_KEY_ENCRYPTION_KEY/,
    );
    expect(() => loadConfig({ ...prod, SESSION_SECRET: 'change-me-change-me-change-me-change-me' })).toThrow(
      /SESSION_SECRET/,
    );
  });

  it('docker-compose.yml ships no session secret or key that would pass the production check', () => {
    const compose = readFileSync(new URL('../docker-compose.yml', import.meta.url), 'utf8');
    for (const name of ['SESSION_SECRET', 'AUTH_KEY_ENCRYPTION_KEY']) {
      const m = new RegExp(`${name}: *(.*)$`, 'm').exec(compose);
      expect(m, `${name} is passed to the containers`).not.toBeNull();
      const value = m?.[1] ?? '';
      // ${VAR:?message} (required) or ${VAR} with no default; a literal or a :- default would boot.
      const fallback = /\$\{[A-Z_]+:-([^}]*)\}/.exec(value)?.[1];
      const literal = value.includes('${') ? undefined : value.replace(/^['"]|['"]$/g, '');
      const shipped = fallback ?? literal;
      if (shipped !== undefined && shipped !== '') {
        expect(() => loadConfig({ ...prod, [name]: shipped })).toThrow();
      }
    }
  });
});
