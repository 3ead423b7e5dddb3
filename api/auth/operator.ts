/**
 * Operator login for Bull Board: the OAuth2 authorization-code flow with PKCE and state, run by
 * passport-oauth2 (which keeps the state and code_verifier in the session), against the built-in
 * provider or an external one. The callback reads the operator's identity from the provider's
 * userinfo endpoint and, after a session regeneration (no session fixation), keeps it in the
 * session. `requireOperator` guards pages and, for state-changing requests, also demands an
 * Origin (or Referer) of our own public URL, which is what keeps Bull Board's API safe from CSRF.
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
import { messagePage, sendPage } from './html.ts';
import { PROVIDER_PATHS } from './provider.ts';
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
        state: true,
        pkce: true,
        sessionKey: 'oauth2:operator',
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

  router.get(OPERATOR_PATHS.login, session, (req, res, next) => {
    const returnTo = safeReturnTo(req.query.returnTo);
    if (returnTo) req.session.returnTo = returnTo;
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
      const returnTo = safeReturnTo(req.session.returnTo) ?? OPERATOR_PATHS.home;
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

  // Logging out changes state, so it is a POST (with our Origin); the GET shows the button.
  router.get(OPERATOR_PATHS.logout, (_req, res) => {
    sendPage(
      res,
      200,
      'Log out',
      `<h1>Log out of Bull Board?</h1><form method="post" action="logout"><button type="submit">Log out</button></form>`,
    );
  });

  router.post(OPERATOR_PATHS.logout, session, form, (req, res, next) => {
    if (!fromOwnOrigin(req, ownOrigin)) {
      messagePage(res, 403, 'Refused', 'Cross-site request refused.');
      return;
    }
    req.session.destroy((err: unknown) => {
      if (err) return next(err);
      res.clearCookie(SESSION_COOKIE, { path: '/' });
      messagePage(res, 200, 'Logged out', 'You are logged out.', {
        href: OPERATOR_PATHS.login,
        text: 'Log in',
      });
    });
  });

  const requireOperator: RequestHandler = (req, res, next) => {
    const operator = req.session?.operator;
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
