/**
 * `npm start`: reads the environment, starts one server, prints its URL (and
 * in dev mode a token), and shuts down gracefully on SIGINT/SIGTERM.
 * Exit codes: 0 after a clean shutdown, 1 when it cannot start, 2 for bad configuration.
 */
import { ConfigError, loadConfig } from './config.js';
import { stopProcessTracing } from './observe/tracing.js';
import { startServer } from './server.js';

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
  const server = await startServer(config);
  process.stdout.write(`\nrunwatch is running at ${server.url} (backend: ${server.backend.kind})\n`);
  process.stdout.write(`GraphiQL:  ${server.url} (open it in a browser)\n`);
  process.stdout.write(`Dashboard: ${server.url.replace(/\/graphql$/, '/')}\n`);
  if (server.devToken) {
    process.stdout.write(`\nDev mode (RUNWATCH_JWT_SECRET unset): a random secret; this token has every scope:\n`);
    process.stdout.write(`RUNWATCH_TOKEN=${server.devToken}\n\n`);
  }
  let signals = 0;
  const stop = (signal: NodeJS.Signals) => {
    if (++signals > 1) process.exit(1);
    server.log.info({ signal }, 'signal received');
    server
      .close()
      .then(() => stopProcessTracing())
      .then(
        () => process.exit(0),
        (error) => {
          server.log.error({ err: error }, 'shutdown failed');
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
