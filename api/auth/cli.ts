/**
 * `npm run admin -- <command>`: manage operators, OAuth2 clients and the token signing key.
 *
 *   create-operator --username U [--password P] [--display-name N] [--role operator|admin]
 *   create-client   --name N --scopes results:read,jobs:write [--client-id ID]
 *   list-clients
 *   disable-client  --client-id ID
 *   rotate-signing-key
 *
 * Generated passwords and client secrets are printed once and stored only as hashes.
 */
import { parseArgs } from 'node:util';
import { buildDeps, closeDeps, type Deps } from '../../core/deps.ts';
import { createOperator, createClient, disableClient, listClients, parseScopes } from './accounts.ts';
import { createKeyStore } from './keys.ts';

export { createOperator, createClient, ensureDemoCredentials } from './accounts.ts';

const USAGE = `usage: npm run admin -- <command> [options]

  create-operator --username U [--password P] [--display-name N] [--role operator|admin]
      Creates an operator who may log in to Bull Board. Without --password one is generated and printed.
  create-client --name N --scopes results:read,jobs:write,admin [--client-id ID]
      Creates a machine client (client-credentials grant). Prints client_id and client_secret once.
  list-clients
  disable-client --client-id ID
  rotate-signing-key
      Retires the token signing key; a new one is made on next use. Issued tokens stay valid until they expire.`;

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
      console.log(`client ${clientId} disabled (tokens already issued expire on their own)`);
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
