/**
 * Bearer-token middleware for the API (RFC 6750). The API uses no cookies, so it is not
 * exposed to CSRF. No token: 401 with a bare challenge. A bad token (signature, expiry,
 * issuer, audience, algorithm): 401 `invalid_token`. A good token without the scope: 403
 * `insufficient_scope`. The verified caller goes on `res.locals.principal`.
 */
import type { RequestHandler, Response } from 'express';
import { hasScopes, InvalidTokenError, type TokenVerifier } from './tokens.ts';
import type { Scope } from './types.ts';

function challenge(realm: string, params: Record<string, string> = {}): string {
  const all = { realm, ...params };
  // Quoted-string values; the descriptions are our own words, with no quotes or backslashes.
  return `Bearer ${Object.entries(all)
    .map(([k, v]) => `${k}="${v.replace(/["\\]/g, '')}"`)
    .join(', ')}`;
}

function refuse(
  res: Response,
  status: 401 | 403,
  realm: string,
  error: string | undefined,
  description: string,
  extra: Record<string, string> = {},
): void {
  const params = error ? { error, error_description: description, ...extra } : {};
  res
    .status(status)
    .set('WWW-Authenticate', challenge(realm, params))
    .set('Cache-Control', 'no-store')
    .json({ error: error ?? 'unauthorized', error_description: description });
}

/** The token of an `Authorization: Bearer <token>` header, or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  const m = /^Bearer[ ]+([A-Za-z0-9\-._~+/]+=*)\s*$/i.exec(header ?? '');
  return m?.[1];
}

export function createRequireScope(verify: TokenVerifier, realm: string) {
  return function requireScope(...scopes: Scope[]): RequestHandler {
    return async (req, res, next) => {
      const token = bearerToken(req.get('authorization'));
      if (!token) {
        refuse(res, 401, realm, undefined, 'a bearer token is required');
        return;
      }
      let principal;
      try {
        principal = await verify(token);
      } catch (err) {
        if (err instanceof InvalidTokenError) {
          refuse(res, 401, realm, 'invalid_token', err.message);
          return;
        }
        throw err;
      }
      if (!hasScopes(principal, scopes)) {
        refuse(res, 403, realm, 'insufficient_scope', `requires scope ${scopes.join(' ')}`, {
          scope: scopes.join(' '),
        });
        return;
      }
      res.locals.principal = principal;
      next();
    };
  };
}
