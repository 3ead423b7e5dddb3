/**
 * `npm run admin -- <command>`: manage operators, OAuth2 clients and the token signing key.
 *
 *   create-operator --username U [--password P] [--display-name N] [--role operator|admin]
 *   create-client   --name N --scopes results:read,jobs:write [--client-id ID]
 *   list-clients
 *   disable-client  --client-id ID      enable-client   --client-id ID
 *   disable-operator --username U       enable-operator --username U
 *   rotate-signing-key
 *   reseal-signing-keys
 *
 * Generated passwords and client secrets are printed once and stored only as hashes.
 */
import { parseArgs } from 'node:util';
import { buildDeps, closeDeps, type Deps } from '../../core/deps.ts';
import {
  createOperator,
  createClient,
  disableClient,
  disableOperator,
  enableClient,
  enableOperator,
  listClients,
  parseScopes,
} from './accounts.ts';
import { createKeyStore, resealSigningKeys } from './keys.ts';

export { createOperator, createClient, ensureDemoCredentials } from './accounts.ts';

const USAGE = `usage: npm run admin -- <command> [options]

  create-operator --username U [--password P] [--display-name N] [--role operator|admin]
      Creates an operator who may log in to Bull Board. Without --password one is generated and printed.
  create-client --name N --scopes results:read,jobs:write,trading,admin [--client-id ID]
      Creates a machine client (client-credentials grant). Prints client_id and client_secret once.
  list-clients
  disable-client --client-id ID     (its tokens are refused from the next request on)
  enable-client --client-id ID
  disable-operator --username U     (logged out of Bull Board at the next request; cannot sign in)
  enable-operator --username U
  rotate-signing-key
      Retires the token signing key; a new one is made on next use. Issued tokens stay valid until they expire.
  reseal-signing-keys
      Re-encrypts every signing key under AUTH_KEY_ENCRYPTION_KEY, reading those sealed under
      AUTH_KEY_ENCRYPTION_KEY_PREVIOUS (step 2 of a key-encryption-key rotation, see README).`;

class UsageError extends Error {}

function required(values: Record<string, string | undefined>, name: string): string {
  const v = values[name];
  if (!v) throw new UsageError(`--${name} is required`);
  return v;
}

async function run(deps: Deps, command: string | undefined, args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: {
      username: { type: 'string' },
      password: { type: 'string' },
      'display-name': { type: 'string' },
      role: { type: 'string' },
      name: { type: 'string' },
      scopes: { type: 'string' },
      'client-id': { type: 'string' },
    },
    strict: true,
  });
  switch (command) {
    case 'create-operator': {
      const role = values.role ?? 'operator';
      if (role !== 'operator' && role !== 'admin') throw new UsageError('--role must be operator or admin');
      const op = await createOperator(deps, {
        username: required(values, 'username'),
        ...(values.password !== undefined ? { password: values.password } : {}),
        ...(values['display-name'] !== undefined ? { displayName: values['display-name'] } : {}),
        roles: [role],
      });
      console.log(`operator created: ${op.username} (id ${op.id}, roles ${op.roles.join(',')})`);
      if (op.generated) console.log(`password: ${op.password}\n(shown once; only its hash is stored)`);
      return;
    }
    case 'create-client': {
      const client = await createClient(deps, {
        name: required(values, 'name'),
        scopes: parseScopes(required(values, 'scopes')),
        ...(values['client-id'] !== undefined ? { clientId: values['client-id'] } : {}),
      });
      console.log(`client created: ${client.name} (scopes ${client.scopes.join(' ')})`);
      console.log(`client_id:     ${client.clientId}`);
      console.log(`client_secret: ${client.clientSecret}`);
      console.log('(the secret is shown once; only its hash is stored)');
      return;
    }
    case 'list-clients': {
      const clients = await listClients(deps);
      console.table(
        clients.map((c) => ({
          client_id: c.clientId,
          name: c.name,
          scopes: c.scopes.join(' '),
          grants: c.grantTypes.join(' '),
          public: c.public,
          disabled: c.disabled,
          last_used: c.lastUsedAt?.toISOString() ?? '',
        })),
      );
      return;
    }
    case 'disable-client': {
      const clientId = required(values, 'client-id');
      if (!(await disableClient(deps, clientId))) throw new Error(`no client "${clientId}"`);
      console.log(`client ${clientId} disabled: its tokens are refused from now on`);
      return;
    }
    case 'enable-client': {
      const clientId = required(values, 'client-id');
      if (!(await enableClient(deps, clientId))) throw new Error(`no client "${clientId}"`);
      console.log(`client ${clientId} enabled`);
      return;
    }
    case 'disable-operator': {
      const username = required(values, 'username');
      if (!(await disableOperator(deps, username))) throw new Error(`no operator "${username}"`);
      console.log(`operator ${username} disabled: logged out at the next request, sign-in refused`);
      return;
    }
    case 'enable-operator': {
      const username = required(values, 'username');
      if (!(await enableOperator(deps, username))) throw new Error(`no operator "${username}"`);
      console.log(`operator ${username} enabled`);
      return;
    }
    case 'reseal-signing-keys': {
      const { resealed, current, keyId } = await resealSigningKeys(deps);
      console.log(
        `signing keys re-sealed under key ${keyId}: ${resealed} re-sealed, ${current} already current`,
      );
      return;
    }
    case 'rotate-signing-key': {
      const retired = await createKeyStore(deps).rotate();
      console.log(
        retired > 0
          ? 'signing key retired; the next token is signed with a new key'
          : 'no active signing key; one is made on first use',
      );
      return;
    }
    default:
      throw new UsageError(command ? `unknown command "${command}"` : 'a command is required');
  }
}

async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  if (command === undefined || command === '--help' || command === 'help') {
    console.log(USAGE);
    return command === undefined ? 2 : 0;
  }
  const deps = buildDeps({ name: 'admin-cli' });
  try {
    await run(deps, command, args);
    return 0;
  } catch (err) {
    const usage = err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
    console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
    if (usage) console.error(`\n${USAGE}`);
    return usage ? 2 : 1;
  } finally {
    await closeDeps(deps);
  }
}

if (import.meta.main) {
  process.exitCode = await main(process.argv.slice(2));
}
