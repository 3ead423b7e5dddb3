/**
 * Short-lived browser state that anonymous visitors need before they are anyone (the sign-in
 * form's CSRF binding, the OAuth2 state and PKCE verifier of a login in progress) travels in
 * cookies, not in the Redis session store: an anonymous request writes nothing server-side, so a
 * flood of them cannot fill the Redis that also holds the queues. Only a logged-in operator gets
 * a session. Values are bound to SESSION_SECRET: an HMAC for the form token, AES-256-GCM
 * (key derived with HKDF) for the login state, so they can be neither forged nor read.
 */
import { createHmac, hkdfSync } from 'node:crypto';
import type { CookieOptions, Request } from 'express';
import { createSealer, type Sealer } from '../../core/sealed.ts';
import { safeEqual } from './secrets.ts';

/** A cookie's value from the request, or undefined (no parser middleware needed for a few cookies). */
export function readCookie(req: Request, name: string): string | undefined {
  for (const part of (req.get('cookie') ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) {
      try {
        return decodeURIComponent(part.slice(eq + 1).trim());
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

export interface CookieSecrets {
  /** HMAC of `value` under the purpose, base64url: a token only the server can make. */
  mac(purpose: string, value: string): string;
  verifyMac(purpose: string, value: string, mac: string): boolean;
  /** Seals small JSON state for a cookie (confidential and tamper-proof). */
  sealer: Sealer;
  cookieOptions(path: string, maxAgeMs: number): CookieOptions;
}

export function createCookieSecrets(sessionSecret: string, secure: boolean): CookieSecrets {
  const derive = (info: string): Buffer =>
    Buffer.from(hkdfSync('sha256', sessionSecret, 'mdw-auth-cookies', info, 32));
  const macKey = derive('form-token');
  const sealer = createSealer({ current: derive('login-state'), previous: undefined });
  const mac = (purpose: string, value: string): string =>
    createHmac('sha256', macKey).update(`${purpose}\0${value}`).digest('base64url');
  return {
    mac,
    verifyMac: (purpose, value, given) => safeEqual(mac(purpose, value), given),
    sealer,
    cookieOptions: (path, maxAgeMs) => ({ httpOnly: true, sameSite: 'lax', secure, path, maxAge: maxAgeMs }),
  };
}
