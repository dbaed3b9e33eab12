/**
 * `npm start`: reads the environment, starts one server, prints its URL (and
 * in dev mode a token), and shuts down gracefully on SIGINT/SIGTERM.
 * Exit codes: 0 after a clean shutdown, 1 when it cannot start or after an
 * uncaught exception (see src/observe/process-net.ts), 2 for bad configuration.
 */
import { ConfigError, loadConfig } from './config.js';
import { banner } from './banner.js';
import { createLogger } from './log.js';
import { installProcessNet } from './observe/process-net.js';
import type { RunningServer } from './server.js';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`runwatch: ${error.message}\n`);
      process.exit(2);
    }
    throw error;
  }
  // The server's modules (Yoga, Pothos, OpenTelemetry, ioredis: about 2 s of loading) load only once
  // the configuration is valid, so a bad variable is reported at once.
  const [{ startServer }, { stopProcessTracing }] = await Promise.all([import('./server.js'), import('./observe/tracing.js')]);
  // Human-readable lines on a terminal; JSON lines for pipes, files and log collectors.
  const log = createLogger(config.logLevel, { pretty: Boolean(process.stdout.isTTY) });
  let server: RunningServer | null = null;
  installProcessNet({
    log,
    metrics: () => server?.metrics ?? null,
    onFatal: () => {
      const closing = server ? server.close(2000) : Promise.resolve();
      closing.finally(() => process.exit(1)).catch(() => process.exit(1));
    },
  });
  // A reader that goes away (`npm start | head`) makes writes to stdout fail with EPIPE. Unhandled, that error
  // would be an uncaught exception, whose fatal log line pino flushes synchronously and, on a broken pipe, retries
  // forever (sonic-boom's flushSync), blocking the event loop: the server would stop answering and ignore SIGTERM.
  // The banner is lost instead and the server keeps serving (pino drops its own lines after an EPIPE).
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EPIPE') throw error;
  });
  server = await startServer(config, { logger: log });
  process.stdout.write(banner(server.url, server.backend.kind, server.devToken));
  let signals = 0;
  const running = server;
  const stop = (signal: NodeJS.Signals) => {
    if (++signals > 1) process.exit(1);
    running.log.info({ signal }, 'signal received');
    running
      .close()
      .then(() => stopProcessTracing())
      .then(
        () => process.exit(0),
        (error) => {
          running.log.error({ err: error }, 'shutdown failed');
          process.exit(1);
        },
      );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((error) => {
  process.stderr.write(`runwatch: cannot start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
