/**
 * An express-session store on the project's Redis: one JSON value per session under
 * `<namespace>:sess:<sid>`, expiring with the session cookie so abandoned sessions clean
 * themselves up. No hash tag in the key: sessions spread over a Redis Cluster's slots instead
 * of piling into the queues' slot.
 */
import session from 'express-session';
import type { Redis } from 'ioredis';

type Callback = (err?: unknown) => void;

/** Key prefix of operator sessions for a queue prefix: `{mdw}` gives `mdw:sess:`. */
export function sessionKeyPrefix(queuePrefix: string): string {
  return `${queuePrefix.replace(/[{}]/g, '')}:sess:`;
}

export class RedisSessionStore extends session.Store {
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #ttlSeconds: number;

  constructor(opts: { redis: Redis; prefix: string; ttlSeconds: number }) {
    super();
    this.#redis = opts.redis;
    this.#prefix = opts.prefix;
    this.#ttlSeconds = opts.ttlSeconds;
  }

  #key(sid: string): string {
    return `${this.#prefix}${sid}`;
  }

  /** Seconds until the cookie expires, so the stored session never outlives it. */
  #ttl(sess: session.SessionData): number {
    const expires = sess.cookie?.expires;
    if (!expires) return this.#ttlSeconds;
    return Math.ceil((new Date(expires).getTime() - Date.now()) / 1000);
  }

  override get(sid: string, cb: (err: unknown, sess?: session.SessionData | null) => void): void {
    this.#redis.get(this.#key(sid)).then(
      (raw) => {
        if (raw === null) return cb(null, null);
        try {
          cb(null, JSON.parse(raw) as session.SessionData);
        } catch (err) {
          cb(err);
        }
      },
      (err: unknown) => cb(err),
    );
  }

  override set(sid: string, sess: session.SessionData, cb: Callback = () => {}): void {
    const ttl = this.#ttl(sess);
    if (ttl <= 0) return this.destroy(sid, cb);
    this.#redis.set(this.#key(sid), JSON.stringify(sess), 'EX', ttl).then(
      () => cb(),
      (err: unknown) => cb(err),
    );
  }

  override touch(sid: string, sess: session.SessionData, cb: () => void = () => {}): void {
    const ttl = this.#ttl(sess);
    const op = ttl <= 0 ? this.#redis.del(this.#key(sid)) : this.#redis.expire(this.#key(sid), ttl);
    // A failed touch only shortens a session; express-session's touch callback takes no error.
    op.then(
      () => cb(),
      () => cb(),
    );
  }

  override destroy(sid: string, cb: Callback = () => {}): void {
    this.#redis.del(this.#key(sid)).then(
      () => cb(),
      (err: unknown) => cb(err),
    );
  }
}
