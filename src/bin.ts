/**
 * `runwatch-server`: the server package's command (bin/runwatch-server.js runs this file).
 *
 *   runwatch-server serve [--port <port>] [--host <address>]
 *       starts one server, exactly as `npm start` does (src/main.ts): in memory unless REDIS_URL is set;
 *       configured by PORT, HOST, REDIS_URL, RUNWATCH_JWT_SECRET, … (DESIGN.md "Running").
 *   runwatch-server token --sub <user> [--inst <institute>] [--env <environment>] [--scope "<scopes>"]
 *                         [--job <id>] [--ttl <seconds>]
 *       prints a bearer token signed with RUNWATCH_JWT_SECRET, for operators handing tokens to workers and
 *       people (the user CLI `runwatch` only talks to a server; minting needs the server's secret).
 *
 * Arguments are parsed with Node's own `util.parseArgs`, so the server package needs no CLI library.
 * Exit codes: 0 success; 1 failure; 2 usage or configuration error (a bad flag, a missing or short secret,
 * a lifetime over RUNWATCH_MAX_TOKEN_TTL_DAYS).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { PERSONAL_INSTITUTE_PREFIX, SCOPES, signToken } from './auth/tokens.js';
import { ConfigError, loadConfig, tokenPolicy } from './config.js';

const USAGE = `usage: runwatch-server <command> [options]

commands:
  serve    start a server (same as npm start): in memory unless REDIS_URL is set
           --port <port>      port (env PORT, default 4000; 0: any free port)
           --host <address>   listen address (env HOST, default 127.0.0.1)
           configured by PORT, HOST, REDIS_URL, RUNWATCH_JWT_SECRET, LOG_LEVEL, ... (see README)
  token    print a token signed with RUNWATCH_JWT_SECRET (at least 32 characters)
           --sub <user>       user id (required)
           --inst <institute> institute (default: the user's own)
           --env <env>        environment (default: default)
           --scope <scopes>   space-separated, among: ${SCOPES.join(' ')}
                              (default: jobs:read jobs:write jobs:control activity:read)
           --job <id>         a job-view token: reads only this job (scope becomes jobs:read)
           --ttl <seconds>    lifetime (default 86400; at most RUNWATCH_MAX_TOKEN_TTL_DAYS, default 365 days)

  -h, --help       this help
  -V, --version    the version

The client (SDK and the user command \`runwatch\`: watch, run, jobs, activity, share, demo) is the npm package runwatch.
`;

/** A usage or configuration error: printed as `runwatch-server: <message>`, exit code 2. */
class UsageError extends Error {}

const version = () => (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

async function serve(args: string[]): Promise<void> {
  const { values } = parseArgs({ args, options: { port: { type: 'string' }, host: { type: 'string' } }, strict: true });
  if (values.port !== undefined) process.env.PORT = values.port;
  if (values.host !== undefined) process.env.HOST = values.host;
  // src/main.ts validates the configuration (exit 2), starts the server and handles signals.
  await import('./main.js');
}

async function token(args: string[]): Promise<void> {
  const { values: o } = parseArgs({
    args,
    strict: true,
    options: {
      sub: { type: 'string' },
      inst: { type: 'string' },
      env: { type: 'string' },
      scope: { type: 'string', default: 'jobs:read jobs:write jobs:control activity:read' },
      job: { type: 'string' },
      ttl: { type: 'string', default: String(24 * 3600) },
    },
  });
  if (!o.sub) throw new UsageError('--sub <user> is required');
  if (!/^\d+$/.test(o.ttl) || Number(o.ttl) < 1) throw new UsageError('--ttl must be a whole number of seconds');
  const ttl = Number(o.ttl);
  const secret = process.env.RUNWATCH_JWT_SECRET;
  if (!secret || secret.length < 32) throw new UsageError('RUNWATCH_JWT_SECRET must be set (at least 32 characters) to mint tokens');
  const unknown = o.scope.split(' ').filter((s) => s && !(SCOPES as readonly string[]).includes(s));
  if (unknown.length) throw new UsageError(`unknown scope(s): ${unknown.join(', ')}; known: ${SCOPES.join(' ')}`);
  const scope = o.job ? 'jobs:read' : o.scope;
  if (o.inst?.startsWith(PERSONAL_INSTITUTE_PREFIX) && o.inst !== `${PERSONAL_INSTITUTE_PREFIX}${o.sub}`)
    throw new UsageError(`--inst may not start with "${PERSONAL_INSTITUTE_PREFIX}": that namespace is reserved for personal institutes (leave --inst out for the user's own)`);
  let maxTtlSeconds: number;
  try {
    // Only the variable that matters here, so an unrelated bad server setting does not stop minting.
    maxTtlSeconds = tokenPolicy(loadConfig({ RUNWATCH_MAX_TOKEN_TTL_DAYS: process.env.RUNWATCH_MAX_TOKEN_TTL_DAYS })).maxTtlSeconds;
  } catch (error) {
    if (error instanceof ConfigError) throw new UsageError(error.message);
    throw error;
  }
  if (ttl > maxTtlSeconds) throw new UsageError(`--ttl ${ttl} is over the longest lifetime servers accept (${maxTtlSeconds} s; RUNWATCH_MAX_TOKEN_TTL_DAYS)`);
  process.stdout.write(`${await signToken(secret, { sub: o.sub, inst: o.inst, env: o.env, scope, job: o.job }, ttl)}\n`);
}

const [command, ...rest] = process.argv.slice(2);
try {
  if (command === 'serve') await serve(rest);
  else if (command === 'token') await token(rest);
  else if (command === '-V' || command === '--version') process.stdout.write(`${version()}\n`);
  else if (command === '-h' || command === '--help' || command === 'help') process.stdout.write(USAGE);
  else {
    process.stderr.write(command ? `runwatch-server: unknown command "${command}"\n\n${USAGE}` : USAGE);
    process.exitCode = 2;
  }
} catch (error) {
  // parseArgs throws TypeErrors with code ERR_PARSE_ARGS_* for unknown or malformed flags.
  const usage = error instanceof UsageError || String((error as NodeJS.ErrnoException).code).startsWith('ERR_PARSE_ARGS');
  process.stderr.write(`runwatch-server: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = usage ? 2 : 1;
}
