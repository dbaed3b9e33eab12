/**
 * The process logger (pino): JSON lines on stdout, or human-readable lines on a terminal. Tokens and
 * secrets are redacted wherever they might appear in a logged object.
 */
import { pino, type DestinationStream, type Logger } from 'pino';
import { prettyFactory } from 'pino-pretty';
import { traceLogMixin } from './observe/trace-context.js';

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /**
   * Human-readable lines (pino-pretty: `[12:03:04.123] INFO: ws: websocket open {…}`) instead of JSON;
   * `npm start` sets it when stdout is a terminal. Default false: one JSON object per line, for log
   * collectors and pipes.
   */
  pretty?: boolean;
  /** Colours in pretty lines (default: pretty and NO_COLOR unset). */
  colour?: boolean;
  /** File descriptor to write to (default 1, stdout). */
  fd?: number;
}

/**
 * The process logger at `level` (pino's level names), writing to stdout synchronously.
 * Synchronous: a line is written when it is logged, so nothing is left to flush at exit. pino's default
 * asynchronous stdout flushes its buffer synchronously when the process exits, and on a closed pipe
 * (`npm start | head`) sonic-boom retries that flush forever, so the process never exits. On a closed pipe
 * a synchronous write fails once with EPIPE and pino stops logging (lines are lost; the server keeps serving).
 * Pretty lines stay synchronous too: each JSON line is formatted by pino-pretty's `prettyFactory` (a plain
 * function) and written at once, rather than through pino-pretty's stream, which would queue it.
 */
export function createLogger(level: string, opts: LoggerOptions = {}): Logger {
  const out = pino.destination({ dest: opts.fd ?? 1, sync: true });
  let destination: DestinationStream = out;
  if (opts.pretty) {
    const prettify = prettyFactory({
      colorize: opts.colour ?? !process.env.NO_COLOR,
      translateTime: 'SYS:HH:MM:ss.l',
      ignore: 'pid,hostname,service,component',
      messageFormat: '{if component}{component}: {end}{msg}',
      singleLine: true,
    });
    destination = { write: (line: string) => out.write(prettify(line)) };
  }
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
  }, destination);
}
