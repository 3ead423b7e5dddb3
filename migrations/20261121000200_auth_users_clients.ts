/**
 * OAuth2 state of the built-in identity provider: operators (people who log in to Bull Board),
 * OAuth2 clients (machines using client credentials, and the public `bull-board` client that
 * logs operators in with PKCE), the signing keys of access tokens, and authorization codes.
 *
 * Secrets never appear in clear: passwords and client secrets are scrypt hashes, codes are
 * stored as their SHA-256 so a read of this table cannot redeem one. At most one signing key is
 * active at a time (the partial unique index), which is what makes first-use key generation
 * race-safe across processes: every racer inserts, one wins, all read the winner.
 */
import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    create table users (
      id bigint generated always as identity primary key,
      username text not null unique check (username ~ '^[A-Za-z0-9_.@-]{1,64}$'),
      password_hash text not null,
      display_name text,
      roles text[] not null default '{}'
        check (roles <@ array['operator', 'admin']::text[]),
      disabled boolean not null default false,
      created_at timestamptz not null default now()
    );

    create table oauth_clients (
      id bigint generated always as identity primary key,
      client_id text not null unique check (client_id ~ '^[A-Za-z0-9_.-]{1,128}$'),
      -- Null for a public client (no secret); such a client may only use the code grant with PKCE.
      secret_hash text,
      name text not null,
      scopes text[] not null default '{}'
        check (scopes <@ array['results:read', 'jobs:write', 'admin']::text[]),
      redirect_uris text[] not null default '{}',
      grant_types text[] not null default '{client_credentials}'
        check (grant_types <@ array['client_credentials', 'authorization_code']::text[]),
      disabled boolean not null default false,
      created_at timestamptz not null default now(),
      last_used_at timestamptz,
      check (secret_hash is not null or not ('client_credentials' = any (grant_types))),
      check (not ('authorization_code' = any (grant_types)) or cardinality(redirect_uris) > 0)
    );

    create table oauth_signing_keys (
      kid text primary key,
      alg text not null check (alg in ('ES256')),
      public_jwk jsonb not null,
      private_jwk jsonb not null,
      created_at timestamptz not null default now(),
      retired_at timestamptz
    );
    create unique index oauth_signing_keys_one_active on oauth_signing_keys ((true)) where retired_at is null;

    create table oauth_authorization_codes (
      code_hash text primary key,
      client_id text not null references oauth_clients (client_id) on delete cascade,
      user_id bigint not null references users (id) on delete cascade,
      redirect_uri text not null,
      code_challenge text not null,
      code_challenge_method text not null check (code_challenge_method = 'S256'),
      scope text not null default '',
      expires_at timestamptz not null,
      used_at timestamptz
    );
    create index oauth_authorization_codes_expires_at on oauth_authorization_codes (expires_at);
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`
    drop table if exists oauth_authorization_codes, oauth_signing_keys, oauth_clients, users cascade;
  `);
}
