/**
 * End to end in a real browser: Debian's Chromium, driven by playwright-core, opens Bull Board on
 * the real app (createApp with the real auth), is sent through the built-in provider's OAuth2
 * login (PKCE and state), signs in as an operator and sees every queue and a Job Scheduler.
 * Then a page on another origin of the same site (so the Lax session cookie does travel) tries a
 * state-changing Bull Board call: the server refuses it on its Origin. Last, the operator logs
 * out through Bull Board's "Log out" link and button (helmet's no-referrer policy makes Chromium
 * send `Origin: null` on that form), and the session is gone: from Redis and from the board.
 * Chromium comes from scripts/install-browser.sh; without it this test fails, it never skips.
 */
import { existsSync } from 'node:fs';
import type express from 'express';
import { chromium, type Browser, type BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { closeApp, createApp } from '../api/app.ts';
import { createOperator } from '../api/auth/accounts.ts';
import { createAuth, type Auth } from '../api/auth/index.ts';
import { sessionKeyPrefix } from '../api/auth/redis.ts';
import type { Deps } from '../core/deps.ts';
import { allQueueNames, createQueues, type QueueSet } from '../jobs/queues.ts';
import { startServer, type TestServer } from './auth-http.ts';
import { closeDeps, dropPrefix, testConfig, testDeps } from './support.ts';

const CHROMIUM = '/usr/bin/chromium';
const SCHEDULER_ID = 'e2e-rollup-every-5m';

let server: TestServer;
let base: string;
let deps: Deps;
let queues: QueueSet;
let auth: Auth;
let app: express.Express;
let browser: Browser | undefined;
let context: BrowserContext | undefined;
let evil: TestServer | undefined;
/** Bull Board API calls as the server saw them. */
const seen: {
  method: string;
  path: string;
  status: number;
  origin: string | undefined;
  withSession: boolean;
}[] = [];
const operator = { username: `e2e-${Date.now().toString(36)}`, password: 'a long enough e2e password' };

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} not found: run scripts/install-browser.sh to install Debian's chromium`);
  }
  server = await startServer();
  base = server.url;
  const config = testConfig({ PUBLIC_URL: base });
  deps = testDeps({ config });
  queues = createQueues(config);
  auth = await createAuth(deps);
  app = await createApp(deps, { queues, auth });
  server.setHandler((req, res) => {
    // Express rewrites req.url while routing into Bull Board's sub-app: keep the original.
    const path = req.url ?? '';
    // 'close', not 'finish': a browser that drops the connection once it has the headers (the
    // cross-site fetch below, blocked by Cross-Origin-Resource-Policy) can leave 'finish' unfired.
    res.on('close', () => {
      if (!path.startsWith('/admin/queues/api/')) return;
      seen.push({
        method: req.method ?? '',
        path,
        status: res.statusCode,
        origin: req.headers.origin,
        withSession: (req.headers.cookie ?? '').includes('mdw.sid='),
      });
    });
    app(req, res);
  });
  await createOperator(deps, { ...operator, roles: ['operator'] });
  await queues.get('bars.rollup-5m').upsertJobScheduler(
    SCHEDULER_ID,
    { every: 300_000 },
    {
      name: 'bars.rollup-5m',
      data: {},
    },
  );
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
});

afterAll(async () => {
  await context?.close();
  await browser?.close();
  await evil?.close();
  await server?.close();
  if (app) await closeApp(app);
  await auth?.close();
  if (deps) await dropPrefix(deps);
  await queues?.close();
  if (deps) await closeDeps(deps);
});

it('logs an operator into Bull Board through the OAuth2 flow and shows the queues', async () => {
  context = await browser!.newContext();
  const page = await context.newPage();
  const cspViolations: string[] = [];
  page.on('console', (msg) => {
    if (/Content Security Policy/i.test(msg.text())) cspViolations.push(msg.text());
  });

  await page.goto(`${base}/admin/queues`);
  await page.waitForURL((url) => url.pathname === '/oauth/authorize');
  const authorizeUrl = new URL(page.url());
  expect(authorizeUrl.searchParams.get('code_challenge_method')).toBe('S256');
  expect(authorizeUrl.searchParams.get('state')).toBeTruthy();

  await page.fill('#username', operator.username);
  await page.fill('#password', operator.password);
  await Promise.all([
    page.waitForURL((url) => url.pathname.startsWith('/admin/queues')),
    page.click('button[type=submit]'),
  ]);

  for (const name of allQueueNames) {
    await page.getByText(name, { exact: true }).first().waitFor({ state: 'visible' });
  }

  const cookie = (await context.cookies(base)).find((c) => c.name === 'mdw.sid');
  expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Lax' });

  await page.goto(`${base}/admin/queues/job-schedulers`);
  await page.getByText(SCHEDULER_ID).first().waitFor({ state: 'visible' });

  expect(cspViolations).toEqual([]);

  // The board's own state-changing calls carry our Origin and go through.
  const status = await page.evaluate(
    async () => (await fetch('api/queues/bars:bars.rollup-1d/pause', { method: 'PUT' })).status,
  );
  expect(status).toBe(200);
  expect(await queues.get('bars.rollup-1d').isPaused()).toBe(true);
  await queues.get('bars.rollup-1d').resume();
});

it('refuses a state-changing Bull Board call from another origin even though the session cookie is sent', async () => {
  const target = `${base}/admin/queues/api/queues/bars:bars.rollup-1d/add`;
  evil = await startServer();
  evil.setHandler((_req, res) => {
    res.setHeader('content-type', 'text/html');
    res.end(
      `<!doctype html><title>start</title><script>` +
        `fetch(${JSON.stringify(target)}, { method: 'POST', mode: 'no-cors', credentials: 'include', ` +
        `headers: { 'content-type': 'text/plain' }, body: JSON.stringify({ name: 'csrf', data: {} }) })` +
        `.finally(() => { document.title = 'sent'; });</script>`,
    );
  });
  const page = await context!.newPage();
  await page.goto(evil.url);
  await page.waitForFunction('document.title === "sent"');

  // The server records a request when its connection is done with it, which can come after the
  // browser already has the response: wait for the record rather than read it once.
  await expect
    .poll(
      () =>
        seen.find(
          (r) => r.method === 'POST' && r.path === '/admin/queues/api/queues/bars:bars.rollup-1d/add',
        ),
      { timeout: 15_000 },
    )
    .toEqual({
      method: 'POST',
      path: '/admin/queues/api/queues/bars:bars.rollup-1d/add',
      status: 403,
      origin: evil.url,
      withSession: true,
    });
  expect(await queues.get('bars.rollup-1d').count()).toBe(0);
});

it('logs out from the browser: the session key leaves Redis and the board asks for a login again', async () => {
  const page = await context!.newPage();
  await page.goto(`${base}/admin/queues`);
  await page.getByText('bars.rollup-5m', { exact: true }).first().waitFor({ state: 'visible' });
  const cookie = (await context!.cookies(base)).find((c) => c.name === 'mdw.sid');
  // express-session's cookie is "s:<sid>.<signature>", URI-encoded.
  const sid = /^s:([^.]+)\./.exec(decodeURIComponent(cookie?.value ?? ''))?.[1];
  expect(sid).toBeTruthy();
  const key = `${sessionKeyPrefix(deps.config.queue.prefix)}${sid}`;
  expect(await deps.redis.exists(key)).toBe(1);

  // Bull Board's own "Log out" entry (in the header's last menu), then the button on our page.
  await page.locator('ul[class^="actions-"] > li').last().locator('button').first().click();
  await page.getByText('Log out', { exact: true }).first().click();
  await page.waitForURL((url) => url.pathname === '/admin/logout');
  const [response] = await Promise.all([
    page.waitForResponse((r) => r.url() === `${base}/admin/logout` && r.request().method() === 'POST'),
    page.getByRole('button', { name: 'Log out' }).click(),
  ]);
  expect(response.status()).toBe(200);
  await page.getByText('You are logged out.').waitFor({ state: 'visible' });

  expect(await deps.redis.exists(key)).toBe(0);
  expect((await context!.cookies(base)).find((c) => c.name === 'mdw.sid')).toBeUndefined();
  await page.goto(`${base}/admin/queues`);
  await page.waitForURL((url) => url.pathname === '/oauth/authorize');
  expect(await page.locator('#username').isVisible()).toBe(true);
});
