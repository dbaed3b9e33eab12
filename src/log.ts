/**
 * The process logger (pino, JSON lines on stdout). Tokens and secrets are
 * redacted wherever they might appear in a logged object.
 */
import { pino, type Logger } from 'pino';
import { traceLogMixin } from './observe/trace-context.js';

/**
 * The process logger at `level` (pino's level names), writing JSON lines to stdout synchronously.
 * Synchronous: a line is written when it is logged, so nothing is left to flush at exit. pino's default
 * asynchronous stdout flushes its buffer synchronously when the process exits, and on a closed pipe
 * (`npm start | head`) sonic-boom retries that flush forever, so the process never exits. On a closed pipe
 * a synchronous write fails once with EPIPE and pino stops logging (lines are lost; the server keeps serving).
 */
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
  }, pino.destination({ dest: 1, sync: true }));
}
