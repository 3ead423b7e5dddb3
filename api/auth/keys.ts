/**
 * The built-in provider's token signing keys: one active ES256 key pair in oauth_signing_keys,
 * generated on first use. Every process generates a candidate and tries to insert it; the
 * partial unique index lets exactly one win and everyone then reads the winner, so processes
 * started together still agree on one key. Retired keys stay published until the tokens they
 * signed have expired. The private key is stored sealed (AES-256-GCM under
 * AUTH_KEY_ENCRYPTION_KEY, core/sealed.ts, the kid as associated data): the database alone
 * holds no usable private key. `resealSigningKeys` re-seals every key under the current key
 * encryption key after a rotation of that key.
 */
import {
  calculateJwkThumbprint,
  errors,
  exportJWK,
  generateKeyPair,
  importJWK,
  type CryptoKey,
  type JSONWebKeySet,
  type JWK,
  type JWTVerifyGetKey,
} from 'jose';
import type { Deps } from '../../core/deps.ts';
import { createSealer } from '../../core/sealed.ts';

export const SIGNING_ALG = 'ES256';

/** How long a process trusts its cached view of the keys before reading the table again. */
const CACHE_MS = 5 * 60_000;
/** Lower bound between reloads forced by an unknown `kid` (tokens with random kids must not hammer the db). */
const MISS_RELOAD_MS = 10_000;
/** Publish a retired key for a token lifetime plus this margin for clock skew. */
const RETIRED_GRACE_SECONDS = 300;

export interface SigningKey {
  kid: string;
  privateKey: CryptoKey;
}

export interface KeyStore {
  /** The active signing key, generating one if there is none. */
  signingKey(): Promise<SigningKey>;
  /** Public keys for `GET /oauth/jwks`. */
  jwks(): Promise<JSONWebKeySet>;
  /** jose key resolver over the same keys, for verifying tokens in-process. */
  getKey: JWTVerifyGetKey;
  /** Retires the active key (the next signature generates a new one); returns how many were retired. */
  rotate(): Promise<number>;
}

type KeyDeps = Pick<Deps, 'repos' | 'clock' | 'config'>;

export function createKeyStore(deps: KeyDeps): KeyStore {
  const repo = deps.repos.auth;
  const sealer = createSealer(deps.config.auth.keyEncryption);
  let signing: { key: SigningKey; at: number } | undefined;
  let published: { keys: Map<string, { jwk: JWK; key: CryptoKey }>; at: number } | undefined;
  let inflight: Promise<SigningKey> | undefined;

  async function loadSigning(): Promise<SigningKey> {
    let row = await repo.activeSigningKey();
    if (!row) {
      const pair = await generateKeyPair(SIGNING_ALG, { extractable: true });
      const publicJwk = await exportJWK(pair.publicKey);
      const privateJwk = await exportJWK(pair.privateKey);
      const kid = await calculateJwkThumbprint(publicJwk);
      const privateKeySealed = sealer.seal(JSON.stringify(privateJwk), kid);
      await repo.insertSigningKeyIfNoneActive({ kid, alg: SIGNING_ALG, publicJwk, privateKeySealed });
      row = await repo.activeSigningKey();
      if (!row) throw new Error('no active signing key after inserting one (was it retired concurrently?)');
    }
    let privateJwk: JWK;
    try {
      privateJwk = JSON.parse(sealer.open(row.privateKeySealed, row.kid)) as JWK;
    } catch (err) {
      throw new Error(`cannot unseal signing key ${row.kid}: ${(err as Error).message}`, { cause: err });
    }
    const privateKey = (await importJWK(privateJwk, SIGNING_ALG)) as CryptoKey;
    return { kid: row.kid, privateKey };
  }

  async function signingKey(): Promise<SigningKey> {
    if (signing && Date.now() - signing.at < CACHE_MS) return signing.key;
    inflight ??= loadSigning().finally(() => {
      inflight = undefined;
    });
    const key = await inflight;
    signing = { key, at: Date.now() };
    return key;
  }

  async function loadPublished(): Promise<NonNullable<typeof published>> {
    // Make sure there is something to publish before the first token is even asked for.
    await signingKey();
    const retiredAfter = new Date(
      deps.clock.now().getTime() - (deps.config.auth.tokenTtlSeconds + RETIRED_GRACE_SECONDS) * 1000,
    );
    const rows = await repo.verificationKeys(retiredAfter);
    const keys = new Map<string, { jwk: JWK; key: CryptoKey }>();
    for (const row of rows) {
      const jwk: JWK = { ...(row.publicJwk as JWK), kid: row.kid, alg: row.alg, use: 'sig' };
      keys.set(row.kid, { jwk, key: (await importJWK(jwk, row.alg)) as CryptoKey });
    }
    published = { keys, at: Date.now() };
    return published;
  }

  async function publishedKeys(): Promise<NonNullable<typeof published>> {
    if (published && Date.now() - published.at < CACHE_MS) return published;
    return loadPublished();
  }

  return {
    signingKey,
    async jwks() {
      const { keys } = await publishedKeys();
      return { keys: [...keys.values()].map((k) => k.jwk) };
    },
    async getKey(header) {
      if (header.alg !== SIGNING_ALG)
        throw new errors.JOSEAlgNotAllowed('"alg" (Algorithm) Header Parameter value not allowed');
      let current = await publishedKeys();
      let found = header.kid ? current.keys.get(header.kid) : undefined;
      if (!found && header.kid && Date.now() - current.at >= MISS_RELOAD_MS) {
        // Another process may have rotated the key since we last looked.
        current = await loadPublished();
        found = current.keys.get(header.kid);
      }
      if (!found) throw new errors.JWKSNoMatchingKey();
      return found.key;
    },
    async rotate() {
      const retired = await repo.retireActiveSigningKey(deps.clock.now());
      signing = undefined;
      published = undefined;
      return retired;
    },
  };
}

/**
 * Re-seals every signing key (active and retired) under the current AUTH_KEY_ENCRYPTION_KEY,
 * reading those sealed under AUTH_KEY_ENCRYPTION_KEY_PREVIOUS. Idempotent; returns how many
 * rows were re-sealed and how many were already current.
 */
export async function resealSigningKeys(
  deps: Pick<Deps, 'repos' | 'config'>,
): Promise<{ resealed: number; current: number; keyId: string }> {
  const sealer = createSealer(deps.config.auth.keyEncryption);
  let resealed = 0;
  let current = 0;
  for (const row of await deps.repos.auth.allSigningKeys()) {
    if (!sealer.needsReseal(row.privateKeySealed)) {
      current++;
      continue;
    }
    const plain = sealer.open(row.privateKeySealed, row.kid);
    if (await deps.repos.auth.resealSigningKey(row.kid, row.privateKeySealed, sealer.seal(plain, row.kid))) {
      resealed++;
    }
  }
  return { resealed, current, keyId: sealer.keyId };
}
