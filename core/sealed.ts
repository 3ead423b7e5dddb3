/**
 * Secrets at rest, sealed with AES-256-GCM under a key from configuration
 * (AUTH_KEY_ENCRYPTION_KEY), so a read of the database alone yields nothing usable.
 *
 * Format: `v1.<key id>.<iv>.<ciphertext>.<tag>` (base64url parts). The key id is the first 8 bytes
 * of SHA-256 over the key, so a value names the key that sealed it and a rotation can read old
 * values with the previous key (AUTH_KEY_ENCRYPTION_KEY_PREVIOUS) while writing with the new one.
 * The caller's associated data (e.g. the row's primary key) is authenticated, so a sealed value
 * moved to another row does not open.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';

const VERSION = 'v1';
const IV_BYTES = 12;

export interface SealingKeys {
  current: Buffer;
  previous: Buffer | undefined;
}

export interface Sealer {
  /** Id of the current key (safe to log). */
  readonly keyId: string;
  seal(plaintext: string, associatedData: string): string;
  /** Throws when the value is malformed, sealed under an unknown key, or altered. */
  open(sealed: string, associatedData: string): string;
  /** True when `sealed` is under another key than the current one. */
  needsReseal(sealed: string): boolean;
}

export function keyId(key: Buffer): string {
  return createHash('sha256').update(key).digest().subarray(0, 8).toString('base64url');
}

export function createSealer(keys: SealingKeys): Sealer {
  if (keys.current.length !== 32) throw new Error('the key encryption key must be 32 bytes');
  const byId = new Map<string, Buffer>([[keyId(keys.current), keys.current]]);
  if (keys.previous) byId.set(keyId(keys.previous), keys.previous);
  const currentId = keyId(keys.current);

  return {
    keyId: currentId,
    seal(plaintext, associatedData) {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', keys.current, iv, { authTagLength: 16 });
      cipher.setAAD(Buffer.from(associatedData, 'utf8'));
      const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
      const tag = cipher.getAuthTag();
      return [
        VERSION,
        currentId,
        iv.toString('base64url'),
        ct.toString('base64url'),
        tag.toString('base64url'),
      ].join('.');
    },
    open(sealed, associatedData) {
      const parts = sealed.split('.');
      if (parts.length !== 5 || parts[0] !== VERSION) throw new Error('not a sealed value');
      const [, id = '', iv = '', ct = '', tag = ''] = parts;
      const key = byId.get(id);
      if (!key) {
        throw new Error(
          `sealed with key ${id}, which is neither AUTH_KEY_ENCRYPTION_KEY (${currentId}) nor AUTH_KEY_ENCRYPTION_KEY_PREVIOUS`,
        );
      }
      const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'), {
        authTagLength: 16,
      });
      decipher.setAAD(Buffer.from(associatedData, 'utf8'));
      decipher.setAuthTag(Buffer.from(tag, 'base64url'));
      try {
        return Buffer.concat([decipher.update(Buffer.from(ct, 'base64url')), decipher.final()]).toString(
          'utf8',
        );
      } catch {
        throw new Error(
          `sealed value under key ${id} failed authentication (altered, or moved from another row)`,
        );
      }
    },
    needsReseal(sealed) {
      return sealed.split('.')[1] !== currentId;
    },
  };
}
