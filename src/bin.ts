/**
 * `runwatch-server`: the server package's command (bin/runwatch-server.js runs this file).
 *
 *   runwatch-server serve [--port <port>] [--host <address>]
 *       starts one server, exactly as `npm start` does (src/main.ts): in memory unless REDIS_URL is set;
 *       configured by PORT, HOST, REDIS_URL, RUNWATCH_JWT_SECRET, … (DESIGN.md "Running").
 *   runwatch-server migrate-redis --from <redis-url> [--to <redis-url> | --to-cluster <host:port,…>] [--partitions <n>]
 *       copies a deployment's Redis data to the current key layout (in place, to another Redis, or to a
 *       Redis Cluster), with every instance stopped (src/backends/redis-migrate.ts).
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
import { ConfigError, loadConfig, redisClusterSeeds, tokenPolicy } from './config.js';

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

  migrate-redis    copy a deployment's Redis data to the current key layout (stop every instance first;
           docs/operations.md "Moving to a Redis Cluster")
           --from <url>            the source: one Redis (redis://…)
           --to <url>              the target: another Redis (default: the source itself, upgraded in place)
           --to-cluster <seeds>    the target: a Redis Cluster (host:port,host:port,…)
           --partitions <n>        change partitions of the target (default: 16 on a cluster, else the source's)

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

/** `migrate-redis`: see USAGE and src/backends/redis-migrate.ts. Prints what it copied and left behind. */
async function migrateRedisCommand(args: string[]): Promise<void> {
  const { values: o } = parseArgs({
    args,
    strict: true,
    options: { from: { type: 'string' }, to: { type: 'string' }, 'to-cluster': { type: 'string' }, partitions: { type: 'string' } },
  });
  if (!o.from || !/^rediss?:\/\//.test(o.from)) throw new UsageError('--from <redis://…> is required');
  if (o.to && o['to-cluster']) throw new UsageError('give --to or --to-cluster, not both');
  if (o.to && !/^rediss?:\/\//.test(o.to)) throw new UsageError('--to must be a redis:// or rediss:// URL');
  if (o.partitions !== undefined && (!/^\d+$/.test(o.partitions) || Number(o.partitions) < 1 || Number(o.partitions) > 1024))
    throw new UsageError('--partitions must be a whole number from 1 to 1024');
  let seeds: { host: string; port: number }[] | null = null;
  if (o['to-cluster']) {
    try {
      seeds = redisClusterSeeds({ REDIS_CLUSTER_NODES: o['to-cluster'] });
    } catch (error) {
      if (error instanceof ConfigError) throw new UsageError(`--to-cluster: ${error.message}`);
      throw error;
    }
  }
  const [{ Cluster, Redis }, { migrateRedis }, { DEFAULT_CLUSTER_CHANGE_PARTITIONS, DEFAULT_CHANGE_PARTITIONS }, { PARTITIONS_KEY }] = await Promise.all([
    import('ioredis'),
    import('./backends/redis-migrate.js'),
    import('./backends/redis.js'),
    import('./backends/redis-keys.js'),
  ]);
  const source = new Redis(o.from, { maxRetriesPerRequest: 1 });
  const target = seeds ? new Cluster(seeds) : o.to ? new Redis(o.to, { maxRetriesPerRequest: 1 }) : source;
  try {
    const stored = Number(await source.get(PARTITIONS_KEY)) || DEFAULT_CHANGE_PARTITIONS;
    const partitions = o.partitions ? Number(o.partitions) : seeds ? DEFAULT_CLUSTER_CHANGE_PARTITIONS : stored;
    const report = await migrateRedis(source, target, { partitions, deleteSource: target === source });
    process.stdout.write(`${JSON.stringify({ partitions, ...report }, null, 2)}\n`);
  } finally {
    source.disconnect();
    if (target !== source) target.disconnect();
  }
}

const [command, ...rest] = process.argv.slice(2);
try {
  if (command === 'serve') await serve(rest);
  else if (command === 'token') await token(rest);
  else if (command === 'migrate-redis') await migrateRedisCommand(rest);
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
