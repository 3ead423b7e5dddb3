import { pino, type Logger } from 'pino';
import type { Config } from './config.ts';

export type { Logger };

/**
 * One JSON logger per process; secrets are redacted wherever they appear in a logged object.
 * JSON goes to stdout, or to `config.logFile` (appended; its folder is created) so that a person's
 * terminal shows readable lines while the machine-readable log is still kept.
 */
export function createLogger(
  config: Pick<Config, 'logLevel'> & Partial<Pick<Config, 'logFile'>>,
  name: string,
): Logger {
  const destination =
    config.logFile === undefined
      ? undefined
      : pino.destination({ dest: config.logFile, mkdir: true, sync: true });
  const options = {
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
  };
  return destination ? pino(options, destination) : pino(options);
}
