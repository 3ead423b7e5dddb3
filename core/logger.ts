import { pino, type Logger } from 'pino';
import type { Config } from './config.ts';

export type { Logger };

/** One JSON logger per process; secrets are redacted wherever they appear in a logged object. */
export function createLogger(config: Pick<Config, 'logLevel'>, name: string): Logger {
  return pino({
    name,
    level: config.logLevel,
    redact: {
      paths: [
        '*.password',
        '*.client_secret',
        '*.clientSecret',
        '*.secret',
        '*.authorization',
        'req.headers.authorization',
        'req.headers.cookie',
        '*.access_token',
      ],
      censor: '[redacted]',
    },
  });
}
