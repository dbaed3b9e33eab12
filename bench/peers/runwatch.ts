/**
 * A runwatch instance for benchmarks that need ServerOptions the environment
 * does not carry: like `src/main.ts` (configuration from the environment,
 * see src/config.ts), plus `--deflate` for `perMessageDeflate: true`.
 * Usage: tsx bench/peers/runwatch.ts [--deflate]; prints `listening <port>`.
 * Stops on SIGTERM/SIGINT (graceful close) like `src/main.ts`.
 */
import { loadConfig } from '../../src/config.js';
import { startServer } from '../../src/server.js';

const server = await startServer(loadConfig(), { perMessageDeflate: process.argv.includes('--deflate') });
process.stdout.write(`listening ${server.port}\n`);
const stop = () => void server.close(1000).finally(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
