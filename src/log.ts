/**
 * The process logger (pino, JSON lines on stdout). Tokens and secrets are
 * redacted wherever they might appear in a logged object.
 */
import { pino, type Logger } from 'pino';

export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { service: 'runwatch' },
    redact: {
      paths: ['authorization', '*.authorization', 'headers.authorization', '*.headers.authorization', 'token', '*.token', 'secret', '*.secret'],
      censor: '[redacted]',
    },
  });
}
