/**
 * Issuing and verifying access tokens. The built-in provider issues short-lived ES256 JWTs
 * (RFC 9068 shape: iss, aud, sub, client_id, scope, iat, exp, jti); the API verifies bearer
 * tokens with jose against either those keys or an external issuer's JWKS, always checking
 * issuer, audience, expiry and the algorithm allow-list.
 */
import { randomUUID } from 'node:crypto';
import { errors, jwtVerify, SignJWT, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import type { Clock } from '../../core/deps.ts';
import { SIGNING_ALG, type KeyStore } from './keys.ts';
import { isScope, type Principal, type Scope } from './types.ts';

/** Seconds of clock skew tolerated between the issuer and this process. */
const CLOCK_TOLERANCE_SECONDS = 30;

export interface IssuedToken {
  accessToken: string;
  expiresIn: number;
  scope: string;
}

export interface TokenIssuer {
  issue(claims: { subject: string; clientId: string; scope: string }): Promise<IssuedToken>;
}

export function createTokenIssuer(opts: {
  keys: KeyStore;
  clock: Clock;
  issuer: string;
  audience: string;
  ttlSeconds: number;
}): TokenIssuer {
  return {
    async issue({ subject, clientId, scope }) {
      const { kid, privateKey } = await opts.keys.signingKey();
      const now = Math.floor(opts.clock.now().getTime() / 1000);
      const accessToken = await new SignJWT({ client_id: clientId, scope })
        .setProtectedHeader({ alg: SIGNING_ALG, kid, typ: 'at+jwt' })
        .setIssuer(opts.issuer)
        .setAudience(opts.audience)
        .setSubject(subject)
        .setIssuedAt(now)
        .setExpirationTime(now + opts.ttlSeconds)
        .setJti(randomUUID())
        .sign(privateKey);
      return { accessToken, expiresIn: opts.ttlSeconds, scope };
    },
  };
}

/** Why a token was refused, in words safe to send back (RFC 6750 error_description). */
export class InvalidTokenError extends Error {
  override name = 'InvalidTokenError';
}

export type TokenVerifier = (token: string) => Promise<Principal>;

export function createTokenVerifier(opts: {
  getKey: JWTVerifyGetKey;
  issuer: string;
  audience: string;
  algorithms: string[];
  clock: Clock;
}): TokenVerifier {
  return async (token) => {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, opts.getKey, {
        issuer: opts.issuer,
        audience: opts.audience,
        algorithms: opts.algorithms,
        clockTolerance: CLOCK_TOLERANCE_SECONDS,
        currentDate: opts.clock.now(),
        requiredClaims: ['exp'],
      }));
    } catch (err) {
      // The issuer's JWKS being unreachable or broken is our outage, not the caller's bad token.
      if (
        !(err instanceof errors.JOSEError) ||
        err instanceof errors.JWKSTimeout ||
        err instanceof errors.JWKSInvalid
      ) {
        throw err;
      }
      throw new InvalidTokenError(describe(err), { cause: err });
    }
    const subject = payload.sub ?? stringClaim(payload, 'client_id') ?? stringClaim(payload, 'azp');
    if (!subject) throw new InvalidTokenError('token has no subject');
    return {
      subject,
      clientId: stringClaim(payload, 'client_id') ?? stringClaim(payload, 'azp'),
      scopes: new Set(readScopes(payload)),
      issuer: payload.iss ?? opts.issuer,
      tokenId: payload.jti,
      expiresAt: new Date((payload.exp ?? 0) * 1000),
    };
  };
}

function stringClaim(payload: JWTPayload, name: string): string | undefined {
  const v = payload[name];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** `scope` (RFC 9068, space-delimited) or `scp` (an array, as some providers send), keeping ours only. */
function readScopes(payload: JWTPayload): Scope[] {
  const raw = payload.scope ?? payload.scp;
  const values = typeof raw === 'string' ? raw.split(' ') : Array.isArray(raw) ? raw : [];
  return values.filter((v): v is Scope => typeof v === 'string' && isScope(v));
}

function describe(err: unknown): string {
  if (err instanceof errors.JWTExpired) return 'token expired';
  if (err instanceof errors.JWTClaimValidationFailed) return `token ${err.claim} claim invalid`;
  if (err instanceof errors.JWSSignatureVerificationFailed) return 'token signature invalid';
  if (err instanceof errors.JOSEAlgNotAllowed) return 'token algorithm not allowed';
  if (err instanceof errors.JWKSNoMatchingKey) return 'token signed with an unknown key';
  if (err instanceof errors.JWSInvalid || err instanceof errors.JWTInvalid) return 'token malformed';
  return 'token invalid';
}

/** True when the principal holds every scope asked for; `admin` holds them all. */
export function hasScopes(principal: Pick<Principal, 'scopes'>, required: readonly Scope[]): boolean {
  if (principal.scopes.has('admin')) return true;
  return required.every((s) => principal.scopes.has(s));
}
