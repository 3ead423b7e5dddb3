/**
 * Types shared by the auth modules, and the typed places where they put what they verified:
 * `res.locals.principal` (a bearer token's caller) and `res.locals.operator` / the session's
 * `operator` (a person logged in to Bull Board).
 */
import type { OAuthScope } from '../../core/db/repositories/auth.ts';

export type Scope = OAuthScope;

export const SCOPES: readonly Scope[] = ['results:read', 'jobs:write', 'trading', 'admin'];

export function isScope(value: string): value is Scope {
  return (SCOPES as readonly string[]).includes(value);
}

/** The caller of a bearer-authenticated request. */
export interface Principal {
  /** `sub` of the token: a client_id for machine clients, `user:<id>` for built-in operators. */
  subject: string;
  clientId: string | undefined;
  /** Scopes of this project the token carries (`admin` is kept as is; `hasScope` expands it). */
  scopes: ReadonlySet<Scope>;
  issuer: string;
  tokenId: string | undefined;
  expiresAt: Date;
}

/** A person logged in to Bull Board, stored in the session. */
export interface Operator {
  subject: string;
  username: string;
  name: string | null;
  roles: string[];
  provider: 'builtin' | 'external';
  loggedInAt: string;
}

declare module 'express-serve-static-core' {
  interface Locals {
    principal?: Principal;
    operator?: Operator;
  }
}

declare module 'express-session' {
  interface SessionData {
    operator: Operator;
  }
}
