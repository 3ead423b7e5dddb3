/**
 * Users (operators), OAuth2 clients, token signing keys and authorization codes: all the SQL of
 * the built-in identity provider. Hashing and token logic live in api/auth; this module only
 * stores and fetches what it is given (hashes, never secrets).
 */
import { preparedQuery, type Knex } from '../knex.ts';

export type OAuthScope = 'results:read' | 'jobs:write' | 'trading' | 'admin';
export type UserRole = 'operator' | 'admin';
export type GrantType = 'client_credentials' | 'authorization_code';

export interface UserRecord {
  /** bigint, returned as a string like every int8. */
  id: string;
  username: string;
  passwordHash: string;
  displayName: string | null;
  roles: UserRole[];
  disabled: boolean;
  createdAt: Date;
}

export interface NewUser {
  username: string;
  passwordHash: string;
  displayName?: string | null;
  roles: UserRole[];
}

export interface ClientRecord {
  id: string;
  clientId: string;
  /** Null for a public client, which authenticates with PKCE instead of a secret. */
  secretHash: string | null;
  name: string;
  scopes: OAuthScope[];
  redirectUris: string[];
  grantTypes: GrantType[];
  disabled: boolean;
  createdAt: Date;
  lastUsedAt: Date | null;
}

export interface NewClient {
  clientId: string;
  secretHash: string | null;
  name: string;
  scopes: OAuthScope[];
  redirectUris?: string[];
  grantTypes: GrantType[];
}

export interface SigningKeyRecord {
  kid: string;
  alg: 'ES256';
  publicJwk: Record<string, unknown>;
  /** The private JWK, sealed (core/sealed.ts) with the row's kid as associated data. */
  privateKeySealed: string;
  createdAt: Date;
  retiredAt: Date | null;
}

export interface AuthorizationCodeRecord {
  codeHash: string;
  clientId: string;
  userId: string;
  redirectUri: string;
  codeChallenge: string;
  codeChallengeMethod: 'S256';
  scope: string;
  expiresAt: Date;
  usedAt: Date | null;
}

interface UserRow {
  id: string;
  username: string;
  password_hash: string;
  display_name: string | null;
  roles: UserRole[];
  disabled: boolean;
  created_at: Date;
}

interface ClientRow {
  id: string;
  client_id: string;
  secret_hash: string | null;
  name: string;
  scopes: OAuthScope[];
  redirect_uris: string[];
  grant_types: GrantType[];
  disabled: boolean;
  created_at: Date;
  last_used_at: Date | null;
}

interface SigningKeyRow {
  kid: string;
  alg: 'ES256';
  public_jwk: Record<string, unknown>;
  private_key_sealed: string;
  created_at: Date;
  retired_at: Date | null;
}

interface CodeRow {
  code_hash: string;
  client_id: string;
  user_id: string;
  redirect_uri: string;
  code_challenge: string;
  code_challenge_method: 'S256';
  scope: string;
  expires_at: Date;
  used_at: Date | null;
}

const toUser = (r: UserRow): UserRecord => ({
  id: r.id,
  username: r.username,
  passwordHash: r.password_hash,
  displayName: r.display_name,
  roles: r.roles,
  disabled: r.disabled,
  createdAt: r.created_at,
});

const toClient = (r: ClientRow): ClientRecord => ({
  id: r.id,
  clientId: r.client_id,
  secretHash: r.secret_hash,
  name: r.name,
  scopes: r.scopes,
  redirectUris: r.redirect_uris,
  grantTypes: r.grant_types,
  disabled: r.disabled,
  createdAt: r.created_at,
  lastUsedAt: r.last_used_at,
});

const toKey = (r: SigningKeyRow): SigningKeyRecord => ({
  kid: r.kid,
  alg: r.alg,
  publicJwk: r.public_jwk,
  privateKeySealed: r.private_key_sealed,
  createdAt: r.created_at,
  retiredAt: r.retired_at,
});

const toCode = (r: CodeRow): AuthorizationCodeRecord => ({
  codeHash: r.code_hash,
  clientId: r.client_id,
  userId: r.user_id,
  redirectUri: r.redirect_uri,
  codeChallenge: r.code_challenge,
  codeChallengeMethod: r.code_challenge_method,
  scope: r.scope,
  expiresAt: r.expires_at,
  usedAt: r.used_at,
});

export function createAuthRepository(db: Knex) {
  return {
    /** Inserts a user, or returns null when the username is taken. */
    async insertUser(u: NewUser): Promise<UserRecord | null> {
      const rows = await db<UserRow>('users')
        .insert({
          username: u.username,
          password_hash: u.passwordHash,
          display_name: u.displayName ?? null,
          roles: u.roles,
        })
        .onConflict('username')
        .ignore()
        .returning('*');
      return rows[0] ? toUser(rows[0] as UserRow) : null;
    },

    /** Creates the user or, when it exists, resets its password and roles and re-enables it. */
    async upsertUser(u: NewUser): Promise<UserRecord> {
      const rows = await db<UserRow>('users')
        .insert({
          username: u.username,
          password_hash: u.passwordHash,
          display_name: u.displayName ?? null,
          roles: u.roles,
        })
        .onConflict('username')
        .merge({
          password_hash: u.passwordHash,
          display_name: u.displayName ?? null,
          roles: u.roles,
          disabled: false,
        })
        .returning('*');
      return toUser(rows[0] as UserRow);
    },

    async findUserByUsername(username: string): Promise<UserRecord | null> {
      const row = await db<UserRow>('users').where({ username }).first();
      return row ? toUser(row as UserRow) : null;
    },

    /** Returns false when no such user exists. */
    async setUserDisabled(username: string, disabled: boolean): Promise<boolean> {
      const n = await db('users')
        .where({ username })
        .update({ disabled, disabled_at: disabled ? db.fn.now() : null });
      return n > 0;
    },

    async findUserById(id: string): Promise<UserRecord | null> {
      if (!/^\d{1,18}$/.test(id)) return null;
      const row = await db<UserRow>('users').where({ id }).first();
      return row ? toUser(row as UserRow) : null;
    },

    /** Inserts a client, or returns null when the client_id is taken. */
    async insertClient(c: NewClient): Promise<ClientRecord | null> {
      const rows = await db<ClientRow>('oauth_clients')
        .insert({
          client_id: c.clientId,
          secret_hash: c.secretHash,
          name: c.name,
          scopes: c.scopes,
          redirect_uris: c.redirectUris ?? [],
          grant_types: c.grantTypes,
        })
        .onConflict('client_id')
        .ignore()
        .returning('*');
      return rows[0] ? toClient(rows[0] as ClientRow) : null;
    },

    /** Creates the client or replaces its secret, scopes and grants and re-enables it. */
    async upsertClient(c: NewClient): Promise<ClientRecord> {
      const values = {
        secret_hash: c.secretHash,
        name: c.name,
        scopes: c.scopes,
        redirect_uris: c.redirectUris ?? [],
        grant_types: c.grantTypes,
      };
      const rows = await db<ClientRow>('oauth_clients')
        .insert({ client_id: c.clientId, ...values })
        .onConflict('client_id')
        .merge({ ...values, disabled: false })
        .returning('*');
      return toClient(rows[0] as ClientRow);
    },

    /**
     * Provisions a public (secret-less) client idempotently, adding `redirectUri` to the ones it
     * already has. Redirect URIs accumulate rather than being replaced so that processes serving
     * different public URLs from one database (and tests running in parallel) do not undo each
     * other; a stale URI cannot redeem anything because every code is bound to a PKCE verifier.
     */
    async ensurePublicClient(c: {
      clientId: string;
      name: string;
      redirectUri: string;
      scopes: OAuthScope[];
    }): Promise<ClientRecord> {
      const res = await db.raw<{ rows: ClientRow[] }>(
        `insert into oauth_clients (client_id, secret_hash, name, scopes, redirect_uris, grant_types)
         values (?, null, ?, ?::text[], array[?]::text[], '{authorization_code}')
         on conflict (client_id) do update
           set secret_hash = null,
               name = excluded.name,
               scopes = excluded.scopes,
               grant_types = excluded.grant_types,
               redirect_uris = case
                 when ? = any (oauth_clients.redirect_uris) then oauth_clients.redirect_uris
                 else oauth_clients.redirect_uris || excluded.redirect_uris
               end
         returning *`,
        [c.clientId, c.name, c.scopes, c.redirectUri, c.redirectUri],
      );
      return toClient(res.rows[0] as ClientRow);
    },

    async findClient(clientId: string): Promise<ClientRecord | null> {
      const row = await db<ClientRow>('oauth_clients').where({ client_id: clientId }).first();
      return row ? toClient(row as ClientRow) : null;
    },

    async listClients(): Promise<ClientRecord[]> {
      const rows = await db<ClientRow>('oauth_clients').select('*').orderBy('id');
      return (rows as ClientRow[]).map(toClient);
    },

    /** Returns false when no such client exists. */
    async setClientDisabled(clientId: string, disabled: boolean): Promise<boolean> {
      const n = await db('oauth_clients')
        .where({ client_id: clientId })
        .update({ disabled, disabled_at: disabled ? db.fn.now() : null });
      return n > 0;
    },

    /**
     * Whether a bearer token's client (when it names one) and user (when its subject is a user)
     * both exist and are enabled: one prepared statement of primary-key reads, made per bearer
     * request (the revocation check, never cached).
     */
    async principalStatus(
      clientId: string | undefined,
      userId: string | undefined,
    ): Promise<{ clientActive: boolean; userActive: boolean }> {
      if (userId !== undefined && !/^\d{1,18}$/.test(userId)) {
        return {
          clientActive: clientId === undefined || (await this.isClientActive(clientId)),
          userActive: false,
        };
      }
      const [row] = await preparedQuery<{ client_active: boolean; user_active: boolean }>(
        db,
        'auth_principal_status',
        `select $1::text is null
                  or exists (select 1 from oauth_clients where client_id = $1::text and not disabled) as client_active,
                $2::bigint is null
                  or exists (select 1 from users where id = $2::bigint and not disabled) as user_active`,
        [clientId ?? null, userId ?? null],
      );
      return { clientActive: row!.client_active, userActive: row!.user_active };
    },

    /** True when the client exists and is enabled: one primary-key read. */
    async isClientActive(clientId: string): Promise<boolean> {
      const row = await db('oauth_clients').where({ client_id: clientId }).first('disabled');
      return row !== undefined && !(row as { disabled: boolean }).disabled;
    },

    async touchClient(clientId: string, at: Date): Promise<void> {
      await db('oauth_clients').where({ client_id: clientId }).update({ last_used_at: at });
    },

    async activeSigningKey(): Promise<SigningKeyRecord | null> {
      const row = await db<SigningKeyRow>('oauth_signing_keys')
        .whereNull('retired_at')
        .orderBy('created_at', 'desc')
        .first();
      return row ? toKey(row as SigningKeyRow) : null;
    },

    /**
     * Inserts a key unless one is already active. Returns false when another process won the
     * race (the partial unique index allows one active key), in which case read the active one.
     */
    async insertSigningKeyIfNoneActive(k: {
      kid: string;
      alg: 'ES256';
      publicJwk: Record<string, unknown>;
      privateKeySealed: string;
    }): Promise<boolean> {
      const rows = await db('oauth_signing_keys')
        .insert({
          kid: k.kid,
          alg: k.alg,
          public_jwk: JSON.stringify(k.publicJwk),
          private_key_sealed: k.privateKeySealed,
        })
        .onConflict()
        .ignore()
        .returning('kid');
      return rows.length > 0;
    },

    /** The active key and keys retired after `retiredAfter` (tokens they signed may still be live). */
    async verificationKeys(retiredAfter: Date): Promise<SigningKeyRecord[]> {
      const rows = await db<SigningKeyRow>('oauth_signing_keys')
        .whereNull('retired_at')
        .orWhere('retired_at', '>', retiredAfter)
        .orderBy('created_at', 'desc');
      return (rows as SigningKeyRow[]).map(toKey);
    },

    /** Every key, active and retired, for re-sealing under a new key encryption key. */
    async allSigningKeys(): Promise<SigningKeyRecord[]> {
      const rows = await db<SigningKeyRow>('oauth_signing_keys').select('*').orderBy('created_at');
      return (rows as SigningKeyRow[]).map(toKey);
    },

    /** Replaces a key's sealed private part (same key, sealed anew); false when `expected` changed meanwhile. */
    async resealSigningKey(kid: string, expected: string, sealed: string): Promise<boolean> {
      const n = await db('oauth_signing_keys')
        .where({ kid, private_key_sealed: expected })
        .update({ private_key_sealed: sealed });
      return n > 0;
    },

    /** Retires the active key (a new one is generated on next use). Returns how many were retired. */
    async retireActiveSigningKey(at: Date): Promise<number> {
      return db('oauth_signing_keys').whereNull('retired_at').update({ retired_at: at });
    },

    async insertAuthorizationCode(c: Omit<AuthorizationCodeRecord, 'usedAt'>): Promise<void> {
      await db('oauth_authorization_codes').insert({
        code_hash: c.codeHash,
        client_id: c.clientId,
        user_id: c.userId,
        redirect_uri: c.redirectUri,
        code_challenge: c.codeChallenge,
        code_challenge_method: c.codeChallengeMethod,
        scope: c.scope,
        expires_at: c.expiresAt,
      });
    },

    /**
     * Marks a code used and returns it, in one statement so that two concurrent redemptions
     * cannot both succeed. Returns null for an unknown or already used code; the caller checks
     * expiry, client, redirect URI and PKCE on what comes back.
     */
    async consumeAuthorizationCode(codeHash: string, at: Date): Promise<AuthorizationCodeRecord | null> {
      const rows = await db<CodeRow>('oauth_authorization_codes')
        .where({ code_hash: codeHash })
        .whereNull('used_at')
        .update({ used_at: at })
        .returning('*');
      return rows[0] ? toCode(rows[0] as CodeRow) : null;
    },

    async deleteExpiredAuthorizationCodes(before: Date): Promise<number> {
      return db('oauth_authorization_codes').where('expires_at', '<', before).delete();
    },
  };
}

export type AuthRepository = ReturnType<typeof createAuthRepository>;
