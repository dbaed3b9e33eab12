/**
 * A real Redis Cluster for tests and benchmarks, on free loopback ports: 3
 * masters (optionally one replica each), each a `redis-server
 * --cluster-enabled yes` in a temp dir, joined with `redis-cli --cluster
 * create … --cluster-yes`. Nothing is persisted (`--appendonly no --save ''`)
 * unless `persistence` asks for an append-only file fsynced on every write (a
 * node restarted after SIGKILL keeps its data, as in production);
 * {@link TestCluster.stop} kills every node by PID and removes the temp dir.
 *
 * Timing: `cluster-node-timeout` is 2000 ms (a master is marked failed ~2 s
 * after it stops answering, and its replica is promoted shortly after); short
 * enough for a failover test, long enough that a node starved of CPU on a busy
 * 2-core machine is not failed over by mistake. Every wait polls Redis with a
 * deadline (there is no event to wait on), and says what it waited for.
 *
 * `cluster-require-full-coverage no`: with one shard down the others keep
 * serving (the setting docs/operations.md will recommend for runwatch, whose
 * jobs are independent of each other).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { assertRedisInstalled, freePort, removeDir } from './redis.js';
import { waitUntil } from './wait.js';

export const REDIS_CLI_MISSING =
  'redis-cli is not installed: the Redis Cluster tests need it to create the cluster. Install it with `apt-get install -y redis-server` (it ships redis-cli).';

/** Throws with the install command when redis-server or redis-cli is not on PATH. */
export function assertRedisClusterToolsInstalled(): void {
  assertRedisInstalled();
  const probe = spawnSync('redis-cli', ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) throw new Error(REDIS_CLI_MISSING);
}

/** Milliseconds of `cluster-node-timeout` (see the header). */
export const CLUSTER_NODE_TIMEOUT_MS = 2000;

/** One redis-server of a {@link TestCluster}. */
export interface ClusterNodeProcess {
  /** Client port (the cluster bus listens on {@link busPort}). */
  readonly port: number;
  readonly busPort: number;
  /** PID of the running process; -1 while stopped. */
  readonly pid: number;
  /** Whether the process is running. */
  readonly running: boolean;
}

/** A node as `CLUSTER NODES` on a live node describes it. */
export interface ClusterNodeView {
  id: string;
  port: number;
  role: 'master' | 'replica';
  /** The master's id, for a replica. */
  masterId: string | null;
  /** Whether the cluster considers the node failed (`fail` or `fail?`). */
  failed: boolean;
  /** Slot ranges [from, to] it serves (masters). */
  slots: Array<[number, number]>;
}

/** A running Redis Cluster owned by the test (or benchmark) that started it. */
export interface TestCluster {
  /** Every node, masters and replicas, in creation order. */
  readonly nodes: readonly ClusterNodeProcess[];
  /** Seed list for clients: `{ host, port }` of every node. */
  readonly seeds: Array<{ host: string; port: number }>;
  /** The same as a `REDIS_CLUSTER_NODES` value: `127.0.0.1:P1,127.0.0.1:P2,…`. */
  readonly seedList: string;
  /** A plain (non-cluster) client of the node on `port`; closed by {@link stop}. */
  client(port: number): Redis;
  /** The cluster's view from a live node (`CLUSTER NODES`). */
  view(): Promise<ClusterNodeView[]>;
  /** The slot of a key or channel (`CLUSTER KEYSLOT`). */
  slotOf(keyOrChannel: string): Promise<number>;
  /** The client port of the master serving `slot` now. */
  masterOf(slot: number): Promise<number>;
  /**
   * SIGKILLs the master on `port` and waits until one of its replicas has been
   * promoted and serves its slots, and every live node reports `cluster_state:ok`.
   * @returns the client port of the new master.
   * @throws when the master has no replica, or no promotion happened within `timeoutMs` (default 20 s).
   */
  killMasterAndAwaitFailover(port: number, timeoutMs?: number): Promise<number>;
  /** SIGKILLs the node on `port` (no waiting for the cluster to notice). */
  killNode(port: number): Promise<void>;
  /**
   * Starts the node on `port` again (same port and node id: it keeps its
   * nodes.conf, so it rejoins as what the cluster says it is now) and waits
   * until every node reports `cluster_state:ok` and agrees on its role.
   */
  restartNode(port: number, timeoutMs?: number): Promise<void>;
  /** Waits until every running node reports `cluster_state:ok`. */
  awaitHealthy(timeoutMs?: number): Promise<void>;
  /** Kills every node and removes the temp dir. */
  stop(): Promise<void>;
}

/** Options of {@link startRedisCluster}. */
export interface RedisClusterOptions {
  /** Masters (default 3, the minimum Redis Cluster accepts). */
  masters?: number;
  /** Replicas per master (default 0; 1 for a failover test). */
  replicasPerMaster?: number;
  /** Most milliseconds for the whole start (default 30 s). */
  timeoutMs?: number;
  /** Append-only file with `appendfsync always` on every node (default off: nothing persisted). */
  persistence?: boolean;
}

/** Two free ports (client port, cluster bus port) that are not in `taken`, which they join. */
async function portPair(taken: Set<number>): Promise<[number, number]> {
  const pick = async () => {
    for (;;) {
      const port = await freePort();
      if (!taken.has(port)) {
        taken.add(port);
        return port;
      }
    }
  };
  return [await pick(), await pick()];
}

function parseNodes(text: string): ClusterNodeView[] {
  return text
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [id, addr, flags, master, , , , , ...slots] = line.split(' ');
      const flagSet = new Set(flags!.split(','));
      return {
        id: id!,
        port: Number(/:(\d+)/.exec(addr!)![1]),
        role: flagSet.has('master') ? 'master' : 'replica',
        masterId: master === '-' ? null : master!,
        failed: flagSet.has('fail') || flagSet.has('fail?'),
        slots: slots
          .filter((s) => !s.startsWith('['))
          .map((s) => {
            const [from, to] = s.split('-').map(Number);
            return [from!, to ?? from!] as [number, number];
          }),
      };
    });
}

/**
 * Starts a Redis Cluster (see the header) and resolves once every node reports
 * `cluster_state:ok` and every replica's link to its master is up.
 * @throws when redis-server or redis-cli is missing (with the install command), or the cluster is not ready in time.
 */
export async function startRedisCluster(opts: RedisClusterOptions = {}): Promise<TestCluster> {
  assertRedisClusterToolsInstalled();
  const masters = opts.masters ?? 3;
  const replicas = opts.replicasPerMaster ?? 0;
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const root = mkdtempSync(join(tmpdir(), 'runwatch-cluster-'));
  const procs = new Map<number, { child: ChildProcess | null; busPort: number; dir: string }>();
  const clients = new Map<number, Redis>();

  const launch = async (port: number) => {
    const entry = procs.get(port)!;
    const child = spawn(
      'redis-server',
      [
        '--port', String(port),
        '--bind', '127.0.0.1',
        '--cluster-enabled', 'yes',
        '--cluster-port', String(entry.busPort),
        '--cluster-config-file', 'nodes.conf',
        '--cluster-node-timeout', String(CLUSTER_NODE_TIMEOUT_MS),
        '--cluster-require-full-coverage', 'no',
        // A replica may always take over, however long it was cut off (tests kill masters at will).
        '--cluster-replica-validity-factor', '0',
        ...(opts.persistence ? ['--appendonly', 'yes', '--appendfsync', 'always'] : ['--appendonly', 'no']),
        '--save', '',
        '--dir', entry.dir,
      ],
      { stdio: 'ignore' },
    );
    entry.child = child;
    await waitUntil(
      async () => {
        if (child.exitCode !== null) throw new Error(`redis-server on port ${port} exited with code ${child.exitCode}`);
        return ping(port);
      },
      Boolean,
      `redis-server on port ${port} to answer PING`,
      10_000,
    );
  };

  const client = (port: number) => {
    let c = clients.get(port);
    if (!c) {
      c = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 0, enableOfflineQueue: false, lazyConnect: false, retryStrategy: () => 200 });
      c.on('error', () => {}); // a killed node: the wait that uses it reports the failure
      clients.set(port, c);
    }
    return c;
  };
  const running = () => [...procs].filter(([, p]) => p.child && p.child.exitCode === null && p.child.signalCode === null).map(([port]) => port);
  const info = async (port: number): Promise<string> => {
    try {
      return String(await client(port).cluster('INFO'));
    } catch {
      return '';
    }
  };
  const view = async (): Promise<ClusterNodeView[]> => {
    for (const port of running()) {
      try {
        return parseNodes(String(await client(port).cluster('NODES')));
      } catch {
        // try the next live node
      }
    }
    throw new Error('no live cluster node answers CLUSTER NODES');
  };
  const awaitHealthy = async (waitMs = 20_000) => {
    await waitUntil(
      async () => Promise.all(running().map(async (port) => /cluster_state:ok/.test(await info(port)))),
      (oks) => oks.every(Boolean),
      'cluster_state:ok on every running node',
      waitMs,
    );
  };
  const awaitReplicasLinked = async (waitMs: number) => {
    await waitUntil(
      async () => {
        const nodes = await view();
        const reps = nodes.filter((n) => n.role === 'replica' && running().includes(n.port));
        return Promise.all(reps.map(async (r) => /master_link_status:up/.test(String(await client(r.port).info('replication').catch(() => '')))));
      },
      (ups) => ups.every(Boolean),
      'every replica linked to its master',
      waitMs,
    );
  };

  // Should the process end without stop() (a crash, Ctrl-C of a benchmark), its nodes end with it.
  const killAll = () => {
    for (const p of procs.values()) if (p.child && p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
  };
  process.once('exit', killAll);
  const stop = async () => {
    process.off('exit', killAll);
    for (const c of clients.values()) c.disconnect();
    clients.clear();
    await Promise.all(
      [...procs.values()].map(async (p) => {
        const child = p.child;
        if (!child || child.exitCode !== null || child.signalCode !== null) return;
        const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
        child.kill('SIGKILL');
        await exited;
      }),
    );
    removeDir(root);
  };

  try {
    const total = masters * (1 + replicas);
    const taken = new Set<number>();
    // A port found free may be taken by another process before redis-server binds it: that node is
    // started again on fresh ports (the cluster does not exist yet, so nothing refers to them).
    const startNode = async () => {
      for (let attempt = 0; ; attempt++) {
        const [port, busPort] = await portPair(taken);
        const dir = join(root, String(port));
        mkdirSync(dir);
        procs.set(port, { child: null, busPort, dir });
        try {
          await launch(port);
          return;
        } catch (error) {
          procs.get(port)!.child?.kill('SIGKILL');
          procs.delete(port);
          if (attempt >= 3) throw error;
        }
      }
    };
    await Promise.all(Array.from({ length: total }, startNode));
    const create = spawnSync(
      'redis-cli',
      ['--cluster', 'create', ...[...procs.keys()].map((p) => `127.0.0.1:${p}`), '--cluster-replicas', String(replicas), '--cluster-yes'],
      { encoding: 'utf8', timeout: timeoutMs },
    );
    if (create.error || create.status !== 0) {
      throw new Error(`redis-cli --cluster create failed (${create.error?.message ?? `exit ${create.status}`}):\n${create.stdout}\n${create.stderr}`);
    }
    await awaitHealthy(timeoutMs);
    // Every node agrees on the roles (gossip spreads which nodes are replicas a moment after the create).
    await waitUntil(
      async () =>
        Promise.all(
          running().map(async (port) => {
            try {
              const nodes = parseNodes(String(await client(port).cluster('NODES')));
              return nodes.filter((n) => n.role === 'master').length === masters && nodes.filter((n) => n.role === 'replica').length === masters * replicas;
            } catch {
              return false;
            }
          }),
        ),
      (oks) => oks.every(Boolean),
      `every node to see ${masters} masters and ${masters * replicas} replicas`,
      timeoutMs,
    );
    if (replicas > 0) await awaitReplicasLinked(timeoutMs);
  } catch (error) {
    await stop();
    throw error;
  }

  const masterOf = async (slot: number) => {
    const owner = (await view()).find((n) => n.role === 'master' && !n.failed && n.slots.some(([a, b]) => slot >= a && slot <= b));
    if (!owner) throw new Error(`no live master serves slot ${slot}`);
    return owner.port;
  };
  const killNode = async (port: number) => {
    const child = procs.get(port)?.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGKILL');
    await exited;
  };

  return {
    nodes: [...procs].map(([port, p]) => ({
      port,
      busPort: p.busPort,
      get pid() {
        const child = p.child;
        return child && child.exitCode === null && child.signalCode === null ? child.pid! : -1;
      },
      get running() {
        return this.pid !== -1;
      },
    })),
    seeds: [...procs.keys()].map((port) => ({ host: '127.0.0.1', port })),
    seedList: [...procs.keys()].map((port) => `127.0.0.1:${port}`).join(','),
    client,
    view,
    slotOf: async (keyOrChannel) => {
      for (const port of running()) {
        try {
          return Number(await client(port).cluster('KEYSLOT', keyOrChannel));
        } catch {
          // try the next live node
        }
      }
      throw new Error('no live cluster node answers CLUSTER KEYSLOT');
    },
    masterOf,
    killMasterAndAwaitFailover: async (port, waitMs = 20_000) => {
      const before = await view();
      const victim = before.find((n) => n.port === port && n.role === 'master');
      if (!victim) throw new Error(`node ${port} is not a master`);
      const replicaPorts = before.filter((n) => n.masterId === victim.id).map((n) => n.port);
      if (replicaPorts.length === 0) throw new Error(`master ${port} has no replica to promote`);
      const slot = victim.slots[0]![0];
      // Replication is asynchronous: let the replicas acknowledge every write so far, so the promoted one has them
      // (writes acknowledged just before a master dies can be lost otherwise: docs/operations.md).
      await client(port).call('WAIT', String(replicaPorts.length), '5000');
      await killNode(port);
      const promoted = await waitUntil(
        async () => {
          try {
            const owner = await masterOf(slot);
            return replicaPorts.includes(owner) ? owner : null;
          } catch {
            return null;
          }
        },
        (owner) => owner !== null,
        `a replica of ${port} (${replicaPorts.join(', ')}) to serve slot ${slot}`,
        waitMs,
      );
      await awaitHealthy(waitMs);
      return promoted!;
    },
    killNode,
    restartNode: async (port, waitMs = 20_000) => {
      await killNode(port);
      clients.get(port)?.disconnect();
      clients.delete(port);
      await launch(port);
      await awaitHealthy(waitMs);
      // Every live node sees it as not failed.
      await waitUntil(
        async () =>
          Promise.all(
            running().map(async (p) => {
              try {
                const me = parseNodes(String(await client(p).cluster('NODES'))).find((n) => n.port === port);
                return me !== undefined && !me.failed;
              } catch {
                return false;
              }
            }),
          ),
        (oks) => oks.every(Boolean),
        `every node to see ${port} up again`,
        waitMs,
      );
    },
    awaitHealthy,
    stop,
  };
}

/** Whether a redis-server answers PING on `port` right now. */
async function ping(port: number): Promise<boolean> {
  const c = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  c.on('error', () => {});
  try {
    await c.connect();
    await c.ping();
    return true;
  } catch {
    return false;
  } finally {
    c.disconnect();
  }
}
