/**
 * Issue 8 §3: the built-in provider's private signing keys are sealed at rest (AES-256-GCM under
 * AUTH_KEY_ENCRYPTION_KEY, see core/sealed.ts). Existing clear keys are sealed here with the
 * configured key, in the same transaction as the column change, and the clear column is dropped:
 * after this migration a read of the database yields no private key.
 *
 * `users.disabled` and `oauth_clients.disabled` already exist; they are now read on every
 * request (session and bearer), so disabling takes effect at once. `disabled_at` records when.
 *
 * `down` unseals back into the clear column (it needs the same key). The key comes from the
 * migrating process's own configuration (AUTH_KEY_ENCRYPTION_KEY, required in production): run
 * the migration with the environment the API runs with. Stop API processes of the previous
 * release first: they read the dropped clear column.
 */
import type { Knex } from 'knex';
import { loadConfig } from '../core/config.ts';
import { createSealer } from '../core/sealed.ts';

export async function up(knex: Knex): Promise<void> {
  const sealer = createSealer(loadConfig().auth.keyEncryption);
  await knex.raw(`alter table oauth_signing_keys add column private_key_sealed text`);
  const rows = (
    await knex.raw<{ rows: { kid: string; private_jwk: Record<string, unknown> }[] }>(
      `select kid, private_jwk from oauth_signing_keys`,
    )
  ).rows;
  for (const row of rows) {
    await knex.raw(`update oauth_signing_keys set private_key_sealed = ? where kid = ?`, [
      sealer.seal(JSON.stringify(row.private_jwk), row.kid),
      row.kid,
    ]);
  }
  await knex.raw(`
    alter table oauth_signing_keys drop column private_jwk;
    alter table oauth_signing_keys alter column private_key_sealed set not null;
    alter table oauth_signing_keys add constraint oauth_signing_keys_sealed check (private_key_sealed like 'v1.%');
    alter table users add column disabled_at timestamptz;
    alter table oauth_clients add column disabled_at timestamptz;
  `);
}

export async function down(knex: Knex): Promise<void> {
  const sealer = createSealer(loadConfig().auth.keyEncryption);
  await knex.raw(`alter table oauth_signing_keys add column private_jwk jsonb`);
  const rows = (
    await knex.raw<{ rows: { kid: string; private_key_sealed: string }[] }>(
      `select kid, private_key_sealed from oauth_signing_keys`,
    )
  ).rows;
  for (const row of rows) {
    await knex.raw(`update oauth_signing_keys set private_jwk = ?::jsonb where kid = ?`, [
      sealer.open(row.private_key_sealed, row.kid),
      row.kid,
    ]);
  }
  await knex.raw(`
    alter table oauth_signing_keys drop column private_key_sealed;
    alter table oauth_signing_keys alter column private_jwk set not null;
    alter table users drop column disabled_at;
    alter table oauth_clients drop column disabled_at;
  `);
}
