/**
 * Throttling of failed authentications, shared by every API host through Redis: express-rate-limit
 * with rate-limit-redis, two limiters per endpoint, both counting failures only (a 401):
 *
 * - per address: AUTH_MAX_FAILURES_PER_ADDRESS in AUTH_FAILURE_WINDOW_SECONDS, whatever account
 *   the failures were for (one host spraying many clients or users);
 * - per account (client id or username): AUTH_MAX_FAILURES_PER_ACCOUNT, from all addresses
 *   together (many hosts guessing one account). It is higher than the per-address limit, so one
 *   flooding address never locks the legitimate owner out; a distributed guess can, for the
 *   window, which is the price of stopping it.
 *
 * The limiters run before the secret is checked, so a refused request costs a Redis round trip,
 * not a scrypt. A refusal is 429 with Retry-After (and RateLimit headers), logged with the
 * account and the address, never the secret. Address = Express's req.ip (TRUST_PROXY_HOPS).
 */
import { createHash } from 'node:crypto';
import type { Request, RequestHandler, Response } from 'express';
import { ipKeyGenerator, rateLimit } from 'express-rate-limit';
import { RedisStore, type RedisReply } from 'rate-limit-redis';
import type { Deps } from '../../core/deps.ts';
import { throttleKeyPrefix } from './redis.ts';

export interface ThrottleOptions {
  /** Names the endpoint in keys and logs: `token` or `sign-in`. */
  endpoint: string;
  /** The account a request tries to authenticate as (client id or username), if it names one. */
  account(req: Request): string | undefined;
  /** Log field the account goes under: `clientId` or `username`. */
  accountField: 'clientId' | 'username';
  /** Sends the 429 body (Retry-After is already set). */
  refuse(req: Request, res: Response, retryAfterSeconds: number): void;
}

/** The two limiters, address first: mount them after the body parser and before the handler. */
export function createFailureThrottle(
  deps: Pick<Deps, 'config' | 'redis' | 'logger'>,
  opts: ThrottleOptions,
): RequestHandler[] {
  const { throttle } = deps.config.auth;
  const log = deps.logger.child({ component: 'auth-throttle' });
  const windowMs = throttle.windowSeconds * 1000;

  const address = (req: Request): string => req.ip ?? req.socket.remoteAddress ?? 'unknown';

  const limiter = (
    kind: 'address' | 'account',
    limit: number,
    key: (req: Request) => string,
  ): RequestHandler =>
    rateLimit({
      windowMs,
      limit,
      standardHeaders: 'draft-7',
      legacyHeaders: false,
      // Only failures count: the increment made on arrival is undone when the answer is not a 401.
      skipSuccessfulRequests: true,
      requestWasSuccessful: (_req, res) => res.statusCode !== 401,
      skip: kind === 'account' ? (req) => opts.account(req) === undefined : undefined,
      keyGenerator: key,
      store: new RedisStore({
        prefix: throttleKeyPrefix(deps.config.queue.prefix, `${opts.endpoint}:${kind}`),
        sendCommand: (command: string, ...args: string[]) =>
          deps.redis.call(command, ...args) as Promise<RedisReply>,
      }),
      // A forged X-Forwarded-For is ignored (TRUST_PROXY_HOPS decides); do not log each one.
      validate: { xForwardedForHeader: false },
      handler: (req, res) => {
        const info = (req as Request & { rateLimit?: { resetTime?: Date } }).rateLimit;
        const retryAfter = Math.max(
          1,
          Math.ceil(((info?.resetTime?.getTime() ?? Date.now() + windowMs) - Date.now()) / 1000),
        );
        log.warn(
          {
            endpoint: opts.endpoint,
            limiter: kind,
            [opts.accountField]: opts.account(req)?.slice(0, 128),
            address: address(req),
            retryAfter,
          },
          'authentication throttled',
        );
        opts.refuse(req, res, retryAfter);
      },
    });

  return [
    limiter('address', throttle.perAddress, (req) => ipKeyGenerator(address(req))),
    // Hashed: the account name is attacker-chosen text of any length.
    limiter('account', throttle.perAccount, (req) =>
      createHash('sha256')
        .update(opts.account(req) ?? '')
        .digest('base64url'),
    ),
  ];
}
