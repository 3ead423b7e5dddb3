/**
 * The built-in provider's token signing keys: one active ES256 key pair in oauth_signing_keys,
 * generated on first use. Every process generates a candidate and tries to insert it; the
 * partial unique index lets exactly one win and everyone then reads the winner, so processes
 * started together still agree on one key. Retired keys stay published until the tokens they
 * signed have expired.
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
      await repo.insertSigningKeyIfNoneActive({ kid, alg: SIGNING_ALG, publicJwk, privateJwk });
      row = await repo.activeSigningKey();
      if (!row) throw new Error('no active signing key after inserting one (was it retired concurrently?)');
    }
    const privateKey = (await importJWK(row.privateJwk as JWK, SIGNING_ALG)) as CryptoKey;
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
