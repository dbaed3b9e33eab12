/**
 * Where the CLI connects: `--url`/`--token` flags, else RUNWATCH_URL /
 * RUNWATCH_TOKEN, else http://127.0.0.1:4000 and no token (an error).
 */
import { RunwatchClient } from '../client/index.js';

/** The connection flags every networked command takes. */
export interface ConnectionFlags {
  url?: string;
  token?: string;
}

/** Default server URL when neither `--url` nor RUNWATCH_URL is set. */
export const DEFAULT_URL = 'http://127.0.0.1:4000';

/** A CLI failure with the exit code to use (2: usage/configuration, 1: anything else). */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** The server URL from flags or environment. */
export const serverUrl = (flags: ConnectionFlags) => flags.url ?? process.env.RUNWATCH_URL ?? DEFAULT_URL;

/**
 * Builds an SDK client from flags and environment.
 * @throws CliError (exit 2) when no token is given.
 */
export function connect(flags: ConnectionFlags): RunwatchClient {
  const token = flags.token ?? process.env.RUNWATCH_TOKEN;
  if (!token) throw new CliError('no token: pass --token or set RUNWATCH_TOKEN (`runwatch-server token` mints one; `npm start` prints a dev token)', 2);
  return new RunwatchClient({ url: serverUrl(flags), token });
}
