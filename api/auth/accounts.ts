/**
 * Creating operators and OAuth2 clients, for the `npm run admin` CLI and for the demo. The
 * plaintext password or client secret is returned exactly once, here; only its hash is stored.
 */
import { randomBytes } from 'node:crypto';
import type { Deps } from '../../core/deps.ts';
import type { ClientRecord, UserRole } from '../../core/db/repositories/auth.ts';
import { hashSecret, randomToken } from './secrets.ts';
import { isScope, type Scope } from './types.ts';

const USERNAME = /^[A-Za-z0-9_.@-]{1,64}$/;
const MIN_PASSWORD_LENGTH = 12;

export interface CreatedOperator {
  id: string;
  username: string;
  roles: UserRole[];
  /** The password: the one given, or a generated one (then `generated` is true). Show it once. */
  password: string;
  generated: boolean;
}

/**
 * Creates an operator. Throws when the username is taken, unless `upsert` is set, in which case
 * the existing user gets this password and these roles and is re-enabled (idempotent demos).
 */
export async function createOperator(
  deps: Pick<Deps, 'repos'>,
  opts: { username: string; password?: string; displayName?: string; roles?: UserRole[]; upsert?: boolean },
): Promise<CreatedOperator> {
  if (!USERNAME.test(opts.username)) {
    throw new Error('username: 1-64 characters of letters, digits and _ . @ -');
  }
  if (opts.password !== undefined && opts.password.length < MIN_PASSWORD_LENGTH) {
    throw new Error(`password: at least ${MIN_PASSWORD_LENGTH} characters`);
  }
  const generated = opts.password === undefined;
  const password = opts.password ?? randomToken(18);
  const roles = opts.roles ?? ['operator'];
  const row = {
    username: opts.username,
    passwordHash: await hashSecret(password),
    displayName: opts.displayName ?? null,
    roles,
  };
  const user = opts.upsert ? await deps.repos.auth.upsertUser(row) : await deps.repos.auth.insertUser(row);
  if (!user) throw new Error(`username "${opts.username}" is already taken`);
  return { id: user.id, username: user.username, roles: user.roles, password, generated };
}

export interface CreatedClient {
  clientId: string;
  /** Shown once; only its hash is stored. */
  clientSecret: string;
  name: string;
  scopes: Scope[];
}

export function parseScopes(value: string): Scope[] {
  const parts = [...new Set(value.split(/[,\s]+/).filter(Boolean))];
  const bad = parts.filter((p) => !isScope(p));
  if (bad.length > 0 || parts.length === 0) {
    throw new Error(`scopes: one or more of results:read, jobs:write, trading, admin (got "${value}")`);
  }
  return parts as Scope[];
}

/**
 * Creates a confidential client for the client-credentials grant. With a fixed `clientId` and
 * `upsert`, an existing client gets a new secret and these scopes (the old secret stops working).
 */
export async function createClient(
  deps: Pick<Deps, 'repos'>,
  opts: { name: string; scopes: Scope[]; clientId?: string; upsert?: boolean },
): Promise<CreatedClient> {
  if (!opts.name.trim()) throw new Error('name: required');
  if (opts.scopes.length === 0 || !opts.scopes.every(isScope))
    throw new Error('scopes: at least one valid scope');
  const clientId = opts.clientId ?? `mdw-${randomBytes(8).toString('hex')}`;
  if (!/^[A-Za-z0-9_.-]{1,128}$/.test(clientId)) throw new Error('client id: letters, digits and _ . - only');
  const clientSecret = randomToken(32);
  const row = {
    clientId,
    secretHash: await hashSecret(clientSecret),
    name: opts.name.trim(),
    scopes: opts.scopes,
    grantTypes: ['client_credentials' as const],
  };
  const client = opts.upsert
    ? await deps.repos.auth.upsertClient(row)
    : await deps.repos.auth.insertClient(row);
  if (!client) throw new Error(`client id "${clientId}" is already taken`);
  return { clientId: client.clientId, clientSecret, name: client.name, scopes: client.scopes };
}

export type ClientSummary = Omit<ClientRecord, 'secretHash'> & { public: boolean };

export async function listClients(deps: Pick<Deps, 'repos'>): Promise<ClientSummary[]> {
  const clients = await deps.repos.auth.listClients();
  return clients.map(({ secretHash, ...rest }) => ({ ...rest, public: secretHash === null }));
}

/**
 * Returns false when there is no such client. Its tokens are refused from the next request on
 * (bearer verification reads the client's status), and it can get no new ones.
 */
export async function disableClient(deps: Pick<Deps, 'repos'>, clientId: string): Promise<boolean> {
  return deps.repos.auth.setClientDisabled(clientId, true);
}

/** Returns false when there is no such client. */
export async function enableClient(deps: Pick<Deps, 'repos'>, clientId: string): Promise<boolean> {
  return deps.repos.auth.setClientDisabled(clientId, false);
}

/**
 * Returns false when there is no such operator. A disabled operator's Bull Board session ends at
 * its next request (the operator guard reads the user's status), and sign-in is refused.
 */
export async function disableOperator(deps: Pick<Deps, 'repos'>, username: string): Promise<boolean> {
  return deps.repos.auth.setUserDisabled(username, true);
}

/** Returns false when there is no such operator. */
export async function enableOperator(deps: Pick<Deps, 'repos'>, username: string): Promise<boolean> {
  return deps.repos.auth.setUserDisabled(username, false);
}

/**
 * For the demo: an operator `operator` and a client `demo-client` (results:read, jobs:write, trading),
 * created or reset on every run with fresh random credentials, which are returned to print.
 */
export async function ensureDemoCredentials(
  deps: Pick<Deps, 'repos'>,
): Promise<{ operator: CreatedOperator; client: CreatedClient }> {
  const operator = await createOperator(deps, {
    username: 'operator',
    displayName: 'Demo operator',
    roles: ['operator'],
    upsert: true,
  });
  const client = await createClient(deps, {
    clientId: 'demo-client',
    name: 'Demo client',
    scopes: ['results:read', 'jobs:write', 'trading'],
    upsert: true,
  });
  return { operator, client };
}
