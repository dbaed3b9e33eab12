/**
 * The process logger (pino, JSON lines on stdout). Tokens and secrets are
 * redacted wherever they might appear in a logged object.
 */
import { pino, type Logger } from 'pino';
import { traceLogMixin } from './observe/trace-context.js';

export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { service: 'runwatch' },
    // Inside a traced operation every line carries trace_id and span_id.
    mixin: traceLogMixin,
    redact: {
      paths: [
        'authorization', '*.authorization', 'headers.authorization', '*.headers.authorization', 'token', '*.token', 'secret', '*.secret',
        'connectionParams', '*.connectionParams', 'metricsToken', '*.metricsToken',
      ],
      censor: '[redacted]',
    },
  });
}
