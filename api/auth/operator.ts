/**
 * Operator login for Bull Board: the OAuth2 authorization-code flow with PKCE and state, run by
 * passport-oauth2 (which keeps the state and code_verifier in the session), against the built-in
 * provider or an external one. The login's state, PKCE verifier and return path travel in a
 * sealed cookie (cookies.ts), not in the session, so an anonymous visitor stores nothing in
 * Redis. The callback reads the operator's identity from the provider's userinfo endpoint and
 * starts a fresh session (no session fixation): the only session Redis ever holds is a logged-in
 * operator's. `requireOperator` guards pages and, for state-changing requests, also demands an
 * Origin (or Referer) of our own public URL, which is what keeps Bull Board's API safe from CSRF.
 * With the built-in provider it also reads the operator's account on every request: a disabled
 * operator (`npm run admin -- disable-operator`) is logged out at the next request.
 *
 * Logout is a POST carrying a token bound to the session (an HMAC of its id): helmet's
 * `Referrer-Policy: no-referrer` makes Chromium send `Origin: null` on a form post, so the
 * Origin check alone refused every real browser.
 *
 * Who gets in: with the built-in provider, enabled users with role `operator` or `admin`; with an
 * external provider, every subject it authenticates (restrict who may log in at that provider).
 */
import express, { type Request, type RequestHandler, type Router } from 'express';
import { decodeJwt } from 'jose';
import passport from 'passport';
import OAuth2Strategy from 'passport-oauth2';
import { z } from 'zod';
import type { Deps } from '../../core/deps.ts';
import { createCookieSecrets, readCookie, type CookieSecrets } from './cookies.ts';
import { escapeHtml, messagePage, sendPage } from './html.ts';
import { PROVIDER_PATHS } from './provider.ts';
import { randomToken, safeEqual } from './secrets.ts';
import type { Operator } from './types.ts';

export const BULL_BOARD_CLIENT_ID = 'bull-board';
export const SESSION_COOKIE = 'mdw.sid';
export const OPERATOR_PATHS = {
  login: '/admin/login',
  callback: '/admin/auth/callback',
  logout: '/admin/logout',
  home: '/admin/queues',
} as const;

const STRATEGY = 'operator';
const OPERATOR_ROLES = ['operator', 'admin'];
/** The login in progress (state, PKCE verifier, return path), sealed; read once by the callback. */
const STATE_COOKIE = 'mdw.oauth';
const STATE_MAX_AGE_MS = 10 * 60_000;
const LOGOUT_PURPOSE = 'logout';

const loginStateSchema = z.object({ h: z.string(), v: z.string(), r: z.string().optional(), e: z.number() });

/**
 * passport-oauth2's state store interface (PKCE form: store with 5 arguments, verify with 3),
 * keeping the login in progress in a sealed cookie instead of the session.
 */
class CookieStateStore {
  readonly #cookies: CookieSecrets;
  constructor(cookies: CookieSecrets) {
    this.#cookies = cookies;
  }

  store(
    req: Request,
    verifier: string,
    _state: unknown,
    _meta: unknown,
    cb: (err: Error | null, handle?: string) => void,
  ): void {
    const handle = randomToken(24);
    const returnTo = safeReturnTo(req.query.returnTo);
    const value = this.#cookies.sealer.seal(
      JSON.stringify({ h: handle, v: verifier, r: returnTo, e: Date.now() + STATE_MAX_AGE_MS }),
      STATE_COOKIE,
    );
    req.res?.cookie(
      STATE_COOKIE,
      value,
      this.#cookies.cookieOptions(OPERATOR_PATHS.callback, STATE_MAX_AGE_MS),
    );
    cb(null, handle);
  }

  verify(
    req: Request,
    providedState: unknown,
    cb: (err: Error | null, verifier: string | false, info?: { message: string }) => void,
  ): void {
    const raw = readCookie(req, STATE_COOKIE);
    req.res?.clearCookie(STATE_COOKIE, { path: OPERATOR_PATHS.callback });
    const refuse = (message: string): void => cb(null, false, { message });
    if (!raw) return refuse('Unable to verify authorization request state.');
    let state: z.infer<typeof loginStateSchema>;
    try {
      state = loginStateSchema.parse(JSON.parse(this.#cookies.sealer.open(raw, STATE_COOKIE)));
    } catch {
      return refuse('Unable to verify authorization request state.');
    }
    if (state.e < Date.now()) return refuse('The login took too long. Start again.');
    if (typeof providedState !== 'string' || !safeEqual(state.h, providedState)) {
      return refuse('Invalid authorization request state.');
    }
    if (req.res && state.r) req.res.locals.returnTo = state.r;
    cb(null, state.v);
  }
}

const userinfoSchema = z.object({
  sub: z.string().min(1),
  preferred_username: z.string().optional(),
  email: z.string().optional(),
  name: z.string().optional(),
  roles: z.array(z.string()).optional(),
});
type Userinfo = z.infer<typeof userinfoSchema>;

/** A path under /admin/ only, so `returnTo` can never send the browser to another site. */
function safeReturnTo(value: unknown): string | undefined {
  return typeof value === 'string' && /^\/admin\/[A-Za-z0-9\-._~!$&'()*+,;=:@%/?]*$/.test(value)
    ? value
    : undefined;
}

function wantsHtml(req: Request): boolean {
  return (req.method === 'GET' || req.method === 'HEAD') && (req.get('accept') ?? '').includes('text/html');
}

function isSafeMethod(method: string): boolean {
  return method === 'GET' || method === 'HEAD' || method === 'OPTIONS';
}

/** The request's Origin, or failing that its Referer's origin, equals ours. */
function fromOwnOrigin(req: Request, ownOrigin: string): boolean {
  const origin = req.get('origin');
  if (origin) return origin === ownOrigin;
  const referer = req.get('referer');
  if (!referer) return false;
  try {
    return new URL(referer).origin === ownOrigin;
  } catch {
    return false;
  }
}

export interface OperatorLogin {
  router: Router;
  requireOperator: RequestHandler;
}

export function createOperatorLogin(deps: Deps, session: RequestHandler): OperatorLogin {
  const { config } = deps;
  const log = deps.logger.child({ component: 'operator-login' });
  const publicUrl = config.api.publicUrl;
  const ownOrigin = new URL(publicUrl).origin;
  const builtin = config.auth.operatorProvider === 'builtin';
  const ext = config.auth.external;
  const cookies = createCookieSecrets(config.auth.sessionSecret, new URL(publicUrl).protocol === 'https:');

  const endpoints = builtin
    ? {
        authorizationURL: `${publicUrl}${PROVIDER_PATHS.authorize}`,
        // Back-channel calls to ourselves may need another address than the browser's.
        tokenURL: `${config.auth.internalUrl}${PROVIDER_PATHS.token}`,
        userinfoURL: `${config.auth.internalUrl}${PROVIDER_PATHS.userinfo}` as string | undefined,
        clientID: BULL_BOARD_CLIENT_ID,
        // A public client: passport-oauth2 posts client_secret="" which the provider treats as absent.
        clientSecret: '',
        scope: undefined as string | undefined,
      }
    : {
        authorizationURL: ext.authorizationUrl ?? '',
        tokenURL: ext.tokenUrl ?? '',
        userinfoURL: ext.userinfoUrl,
        clientID: ext.clientId ?? '',
        clientSecret: ext.clientSecret ?? '',
        scope: ext.scope,
      };

  async function fetchUserinfo(accessToken: string, results: Record<string, unknown>): Promise<Userinfo> {
    if (endpoints.userinfoURL) {
      const res = await fetch(endpoints.userinfoURL, {
        headers: { authorization: `Bearer ${accessToken}`, accept: 'application/json' },
        signal: AbortSignal.timeout(10_000),
      });
      if (!res.ok) throw new Error(`userinfo endpoint answered ${res.status}`);
      return userinfoSchema.parse(await res.json());
    }
    // Without a userinfo endpoint, an OIDC provider's id_token (received directly from its token
    // endpoint over the back channel, so trusted as such) names the subject.
    if (typeof results.id_token === 'string') return userinfoSchema.parse(decodeJwt(results.id_token));
    throw new Error('the provider gave neither a userinfo endpoint (OAUTH_USERINFO_URL) nor an id_token');
  }

  const authenticator = new passport.Passport();
  authenticator.use(
    STRATEGY,
    new OAuth2Strategy(
      {
        authorizationURL: endpoints.authorizationURL,
        tokenURL: endpoints.tokenURL,
        clientID: endpoints.clientID,
        clientSecret: endpoints.clientSecret,
        callbackURL: `${publicUrl}${OPERATOR_PATHS.callback}`,
        scope: endpoints.scope,
        pkce: true,
        store: new CookieStateStore(cookies) as unknown as OAuth2Strategy.StrategyOptions['store'],
        skipUserProfile: true,
      },
      (
        accessToken: string,
        _refreshToken: string,
        results: Record<string, unknown>,
        _profile: unknown,
        done: OAuth2Strategy.VerifyCallback,
      ) => {
        fetchUserinfo(accessToken, results).then(
          (info) => {
            const roles = info.roles ?? [];
            if (builtin && !roles.some((r) => OPERATOR_ROLES.includes(r))) {
              done(null, false, { message: 'This account is not an operator.' });
              return;
            }
            const operator: Operator = {
              subject: info.sub,
              username: info.preferred_username ?? info.email ?? info.sub,
              name: info.name ?? null,
              roles,
              provider: builtin ? 'builtin' : 'external',
              loggedInAt: deps.clock.now().toISOString(),
            };
            done(null, operator);
          },
          (err: unknown) => done(err),
        );
      },
    ),
  );

  const router = express.Router();
  const form = express.urlencoded({ extended: false, limit: '1kb' });

  // No session here: the login in progress lives in the state cookie (CookieStateStore).
  router.get(OPERATOR_PATHS.login, (req, res, next) => {
    authenticator.authenticate(STRATEGY, { session: false })(req, res, next);
  });

  router.get(OPERATOR_PATHS.callback, session, (req, res, next) => {
    const retry = { href: OPERATOR_PATHS.login, text: 'Log in again' };
    const finish = (err: unknown, user: Operator | false, info?: { message?: string }): void => {
      if (err) {
        log.warn({ err: err instanceof Error ? err.message : String(err) }, 'operator login failed');
        return messagePage(
          res,
          502,
          'Login failed',
          'The identity provider could not complete the login.',
          retry,
        );
      }
      if (!user) {
        log.info({ reason: info?.message }, 'operator login refused');
        return messagePage(res, 403, 'Not allowed', info?.message ?? 'Login was refused.', retry);
      }
      const returnTo = safeReturnTo(res.locals.returnTo) ?? OPERATOR_PATHS.home;
      req.session.regenerate((regenErr: unknown) => {
        if (regenErr) return next(regenErr);
        req.session.operator = user;
        req.session.save((saveErr: unknown) => {
          if (saveErr) return next(saveErr);
          log.info({ operator: user.username, provider: user.provider }, 'operator logged in');
          res.redirect(302, returnTo);
        });
      });
    };
    authenticator.authenticate(STRATEGY, { session: false }, finish)(req, res, next);
  });

  // Logging out changes state, so it is a POST; the GET shows the button, with a token bound to
  // the session, which is what the POST is checked against (a browser may send `Origin: null`).
  router.get(OPERATOR_PATHS.logout, session, (req, res) => {
    const token = cookies.mac(LOGOUT_PURPOSE, req.sessionID);
    sendPage(
      res,
      200,
      'Log out',
      `<h1>Log out of Bull Board?</h1><form method="post" action="logout">` +
        `<input type="hidden" name="csrf" value="${escapeHtml(token)}">` +
        `<button type="submit">Log out</button></form>`,
    );
  });

  router.post(OPERATOR_PATHS.logout, session, form, (req, res, next) => {
    const done = (): void => {
      res.clearCookie(SESSION_COOKIE, { path: '/' });
      messagePage(res, 200, 'Logged out', 'You are logged out.', {
        href: OPERATOR_PATHS.login,
        text: 'Log in',
      });
    };
    if (!req.session.operator) return done();
    const origin = req.get('origin');
    const given = (req.body as Record<string, unknown> | undefined)?.csrf;
    const tokenOk = typeof given === 'string' && cookies.verifyMac(LOGOUT_PURPOSE, req.sessionID, given);
    // A foreign Origin is refused even with a token; `null` (no-referrer) needs the token.
    const foreign = origin !== undefined && origin !== 'null' && origin !== ownOrigin;
    if (foreign || !(tokenOk || fromOwnOrigin(req, ownOrigin))) {
      messagePage(res, 403, 'Refused', 'Cross-site request refused.');
      return;
    }
    const who = req.session.operator.username;
    req.session.destroy((err: unknown) => {
      if (err) return next(err);
      log.info({ operator: who }, 'operator logged out');
      done();
    });
  });

  /** For the built-in provider: the account behind the session is still an enabled operator. */
  async function stillOperator(operator: Operator): Promise<boolean> {
    if (operator.provider !== 'builtin') return true;
    const m = /^user:(\d+)$/.exec(operator.subject);
    const user = m?.[1] ? await deps.repos.auth.findUserById(m[1]) : null;
    return !!user && !user.disabled && user.roles.some((r) => OPERATOR_ROLES.includes(r));
  }

  const requireOperator: RequestHandler = async (req, res, next) => {
    let operator = req.session?.operator;
    if (operator && !(await stillOperator(operator))) {
      log.warn({ operator: operator.username, address: req.ip }, 'session of a disabled operator ended');
      await new Promise<void>((resolve, reject) =>
        req.session.destroy((err: unknown) => (err ? reject(err as Error) : resolve())),
      );
      res.clearCookie(SESSION_COOKIE, { path: '/' });
      operator = undefined;
    }
    if (!operator) {
      if (wantsHtml(req)) {
        res.redirect(302, `${OPERATOR_PATHS.login}?returnTo=${encodeURIComponent(req.originalUrl)}`);
      } else {
        res
          .status(401)
          .set('Cache-Control', 'no-store')
          .json({ error: 'unauthorized', error_description: `log in at ${OPERATOR_PATHS.login}` });
      }
      return;
    }
    if (!isSafeMethod(req.method) && !fromOwnOrigin(req, ownOrigin)) {
      log.warn(
        { operator: operator.username, method: req.method, path: req.originalUrl },
        'cross-site request refused',
      );
      res
        .status(403)
        .json({ error: 'forbidden', error_description: 'cross-site request refused (Origin mismatch)' });
      return;
    }
    res.locals.operator = operator;
    next();
  };

  return { router, requireOperator };
}
