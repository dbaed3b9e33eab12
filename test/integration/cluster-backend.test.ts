/**
 * runwatch on a real Redis Cluster (3 masters, 1 replica each; one cluster for
 * the whole file): two instances started with REDIS_CLUSTER_NODES serve the
 * same jobs as on one Redis — cross-instance streams, exact concurrent
 * counters, resume with a cursor, idempotency, tenant isolation, training
 * commands, retention — with jobs spread over every master, one SSUBSCRIBE per
 * channel per instance on the master owning it, and a master failover that
 * loses no stored event. The failover tests run last: they change the topology (and each picks a job on a master
 * that still has a replica, so that they pass in any order, e.g. --sequence.shuffle).
 */
import { spawnSync } from 'node:child_process';
import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_CLUSTER_CHANGE_PARTITIONS, RedisKeyspace, type RedisEventBus } from '../../src/backends/redis.js';
import { changesKey } from '../../src/backends/redis-keys.js';
import { applyProgress, createJob } from '../../src/domain/job.js';
import type { RunningServer } from '../../src/server.js';
import { errorCode, gql, gqlHttp, subscribeWs, withTimeout, wsClient, type Collector } from '../helpers/clients.js';
import { spawnServer } from '../helpers/processes.js';
import { startRedis } from '../helpers/redis.js';
import { startRedisCluster, type TestCluster } from '../helpers/redis-cluster.js';
import { freshInstitute, startTestServer, token, viewerOf } from '../helpers/servers.js';
import { waitUntil } from '../helpers/wait.js';
import { CREATE_HOOK, FAST, startReceiver, verify } from '../helpers/webhooks.js';

const CREATE = `mutation($input: CreateBatchJobInput!) { createBatchJob(input: $input) { id name } }`;
const REPORT = `mutation($input: ReportProgressInput!) { reportProgress(input: $input) { completed } }`;
const COMPLETE = `mutation($id: ID!) { completeBatchJob(id: $id) { status } }`;
const GET = `query($id: ID!) { batchJob(id: $id) { id status completed } }`;
const LIST = `{ batchJobs(first: 100) { edges { node { id } } } }`;
const WATCH = `subscription($runId: ID!, $after: String) { runProgress(runId: $runId, after: $after) { cursor type job { status completed stage } } }`;
const offsetOf = (e: { cursor: string }) => Number(e.cursor.split('.')[1]);

/** Key names of the cluster deployment (the default partition count on a cluster). */
const keys = new RedisKeyspace(DEFAULT_CLUSTER_CHANGE_PARTITIONS);

describe('runwatch on a Redis Cluster (3 masters + 3 replicas), two instances', () => {
  let cluster: TestCluster;
  let a: RunningServer;
  let b: RunningServer;
  let tok: string;

  beforeAll(async () => {
    cluster = await startRedisCluster({ replicasPerMaster: 1, persistence: true });
    // Webhook settings for fast tests (loopback receivers), on both: every instance works the delivery queue.
    const config = { ...FAST, redisClusterNodes: cluster.seeds, changePartitions: undefined, retentionSeconds: 3 };
    [a, b] = await Promise.all([startTestServer({ config }), startTestServer({ config })]);
    tok = await token({ inst: freshInstitute() });
  }, 90_000);
  afterAll(async () => {
    await Promise.all([a?.close(1000), b?.close(1000)]);
    await cluster?.stop();
  });

  /**
   * Creates jobs with `create` until one lands on a master that has a live replica (a failover test may have run
   * first, under --sequence.shuffle, and left its old master gone), and returns it with that replica. A job's keys
   * and channel share one hash tag, so this is also its channel's master.
   */
  const onReplicatedMaster = async <J extends { id: string }>(create: () => Promise<J>) => {
    const view = await cluster.view();
    const replicaOf = new Map(view.filter((n) => n.role === 'replica' && !n.failed).map((n) => [view.find((m) => m.id === n.masterId)?.port, n]));
    for (;;) {
      const job = await create();
      const replica = replicaOf.get(await cluster.masterOf(await cluster.slotOf(keys.job(job.id))));
      if (replica) return { job, replica };
    }
  };

  /**
   * `wait`, and when it fails (a subscriber on B that never caught up after a failover), the error names what B's
   * bus waits for: held topics, the recovery in progress, down shards, channels moving (RedisEventBus.debugState).
   */
  const explainedByB = <T>(wait: Promise<T>): Promise<T> =>
    wait.catch((error: unknown) => {
      throw new Error(`${error instanceof Error ? error.message : String(error)}\nB's bus: ${JSON.stringify((b.backend.bus as RedisEventBus).debugState(), null, 1)}`);
    });

  /** Subscriptions to `channel` on the master serving it (sharded pub/sub: only the owner knows them). */
  const shardNumSub = async (channel: string): Promise<number> => {
    const owner = await cluster.masterOf(await cluster.slotOf(channel));
    return Number(((await cluster.client(owner).call('PUBSUB', 'SHARDNUMSUB', channel)) as [string, number])[1]);
  };

  it('says it runs on the cluster and stores the partition count there', async () => {
    expect(a.backend.kind).toBe('redis-cluster');
    const client = new Cluster(cluster.seeds);
    try {
      expect(await client.get('runwatch:partitions')).toBe(String(DEFAULT_CLUSTER_CHANGE_PARTITIONS));
    } finally {
      client.disconnect();
    }
  });

  it('delivers every event reported through A to a subscriber on B, in order, and completes it', async () => {
    const { createBatchJob: job } = await gql(a.url, tok, CREATE, { input: { name: 'cross', kind: 'PIPELINE', total: 50 } });
    const events = subscribeWs(wsClient(b.url, tok), WATCH, { runId: job.id }, 'runProgress');
    await events.waitForCount(1);
    const stages = ['download', 'parse', 'chunk', 'embed', 'index'];
    for (const stage of stages) await gql(a.url, tok, REPORT, { input: { jobId: job.id, completedDelta: 10, stage } });
    await gql(b.url, tok, COMPLETE, { id: job.id });
    const all = await events.done();
    expect(all.map((e) => e.type)).toEqual(['SNAPSHOT', 'STARTED', 'STAGE', 'STAGE', 'STAGE', 'STAGE', 'STAGE', 'COMPLETED']);
    expect(all.filter((e) => e.type === 'STAGE').map((e) => e.job.stage)).toEqual(stages);
    expect(all.at(-1).job).toMatchObject({ status: 'COMPLETED', completed: 50 });
  });

  it('ends at exactly 400 after 2 × 200 concurrent completedDelta: 1 reports through both instances, with gap-free offsets', async () => {
    const inst = freshInstitute();
    const viewer = await viewerOf(await token({ inst, sub: 'workers' }));
    const job = await a.services.jobs.create(viewer, { name: 'many writers', kind: 'BATCH', total: 400 });
    const events = subscribeWs(wsClient(b.url, await token({ inst })), WATCH, { runId: job.id }, 'runProgress');
    await events.waitForCount(1);
    const reports = Array.from({ length: 400 }, (_, i) =>
      (i % 2 ? a : b).services.jobs.report(viewer, job.id, { completedDelta: 1, stage: i === 199 ? 'second half' : undefined }),
    );
    const views = await Promise.all(reports);
    expect(Math.max(...views.map((v) => v.completed))).toBe(400);
    await b.services.jobs.finish(viewer, job.id, 'COMPLETED', null);
    const all = await events.done(20_000);
    expect(all.at(-1).job).toMatchObject({ status: 'COMPLETED', completed: 400 });
    const offsets = all.slice(1).map(offsetOf);
    expect(offsets).toEqual(offsets.map((_, i) => offsets[0]! + i));
    expect(all.filter((e) => e.type === 'STAGE').map((e) => e.job.stage)).toEqual(['second half']);
  }, 30_000);

  it('resumes a subscriber on the other instance from its cursor: exactly the events it missed, no SNAPSHOT', async () => {
    const { createBatchJob: job } = await gql(a.url, tok, CREATE, { input: { name: 'resume', total: 10 } });
    const reference = subscribeWs(wsClient(b.url, tok), WATCH, { runId: job.id }, 'runProgress');
    const first = subscribeWs(wsClient(a.url, tok), WATCH, { runId: job.id }, 'runProgress');
    await Promise.all([reference.waitForCount(1), first.waitForCount(1)]);
    for (let i = 1; i <= 3; i++) await gql(a.url, tok, REPORT, { input: { jobId: job.id, completed: i, stage: `s${i}` } });
    await first.waitFor((items) => items.some((e) => e.job.stage === 's3'), 'the third stage');
    first.dispose();
    const last = first.items.at(-1);
    for (let i = 4; i <= 6; i++) await gql(b.url, tok, REPORT, { input: { jobId: job.id, completed: i, stage: `s${i}` } });
    const second = subscribeWs(wsClient(b.url, tok), WATCH, { runId: job.id, after: last.cursor }, 'runProgress');
    await second.waitFor((items) => items.some((e) => e.job.stage === 's6'), 'the replayed stages');
    await gql(a.url, tok, COMPLETE, { id: job.id });
    const rest = await second.done();
    const all = await reference.done();
    expect(rest[0].type).not.toBe('SNAPSHOT');
    expect([...first.items.slice(1), ...rest].map(offsetOf)).toEqual(all.slice(1).map(offsetOf));
  });

  it('returns the same job for a reused idempotency key on either instance, and CONFLICT for other input', async () => {
    const idempotencyKey = `nightly-${Date.now()}`;
    const input = { name: 'idempotent', total: 5, idempotencyKey };
    const [x, y] = await Promise.all([gql(a.url, tok, CREATE, { input }), gql(b.url, tok, CREATE, { input })]);
    expect(y.createBatchJob.id).toBe(x.createBatchJob.id);
    expect((await gql(b.url, tok, CREATE, { input })).createBatchJob.id).toBe(x.createBatchJob.id);
    const other = await gqlHttp(a.url, tok, CREATE, { input: { ...input, total: 6 } });
    expect(errorCode(other.body)).toBe('CONFLICT');
    const listed = (await gql(b.url, tok, LIST)).batchJobs.edges.map((e: { node: { id: string } }) => e.node.id);
    expect(listed.filter((id: string) => id === x.createBatchJob.id)).toHaveLength(1);
  });

  it("keeps tenants apart: another institute's job looks exactly like a missing one, and lists hold only the tenant's jobs", async () => {
    const mine = await token({ inst: freshInstitute() });
    const theirs = await token({ inst: freshInstitute() });
    const { createBatchJob: job } = await gql(a.url, mine, CREATE, { input: { name: 'private' } });
    expect((await gql(b.url, theirs, GET, { id: job.id })).batchJob).toBeNull();
    const report = await gqlHttp(b.url, theirs, REPORT, { input: { jobId: job.id, completed: 1 } });
    const missing = await gqlHttp(b.url, theirs, REPORT, { input: { jobId: 'no-such-job', completed: 1 } });
    expect(errorCode(report.body)).toBe('NOT_FOUND');
    expect(report.body.errors![0]!.message).toBe(missing.body.errors![0]!.message.replace('no-such-job', job.id));
    expect((await gql(b.url, theirs, LIST)).batchJobs.edges).toEqual([]);
    expect((await gql(b.url, mine, LIST)).batchJobs.edges.map((e: { node: { id: string } }) => e.node.id)).toEqual([job.id]);
  });

  it('delivers a training command sent through A to the trainer subscribed on B', async () => {
    const { createBatchJob: run } = await gql(a.url, tok, CREATE, { input: { name: 'train', kind: 'TRAINING' } });
    const commands = subscribeWs(wsClient(b.url, tok), `subscription($runId: ID!) { trainingCommands(runId: $runId) { id command } }`, { runId: run.id }, 'trainingCommands');
    await waitUntil(() => shardNumSub(keys.channel(`commands:${run.id}`)), (n) => n === 1, 'the trainer subscription on B');
    const sent = await gql(a.url, tok, `mutation($runId: ID!) { sendTrainingCommand(runId: $runId, command: SAVE_CHECKPOINT) { id } }`, { runId: run.id });
    const [received] = await commands.waitForCount(1);
    expect(received).toEqual({ id: sent.sendTrainingCommand.id, command: 'SAVE_CHECKPOINT' });
    commands.dispose();
  });

  it('removes a finished job with everything of it once its retention ends (3 s here), from the index too', async () => {
    const inst = freshInstitute();
    const mine = await token({ inst });
    const idempotencyKey = `retained-${Date.now()}`;
    const { createBatchJob: job } = await gql(a.url, mine, CREATE, { input: { name: 'short-lived', total: 2, idempotencyKey } });
    await gql(a.url, mine, REPORT, { input: { jobId: job.id, completed: 1 } });
    await gql(b.url, mine, COMPLETE, { id: job.id });
    const client = new Cluster(cluster.seeds);
    try {
      expect(await client.exists(keys.job(job.id), keys.jobEvents(job.id))).toBe(2);
      await waitUntil(async () => (await gql(b.url, mine, GET, { id: job.id })).batchJob, (j) => j === null, 'the job to be removed', 15_000);
      const index = keys.tenantJobs({ institute: inst, environment: 'default' });
      // The sweep (every 1.5 s here) empties the index and removes the idempotency key, in the tenant's slot.
      await waitUntil(() => client.zcard(index), (n) => n === 0, 'the tenant index to be empty', 15_000);
      await waitUntil(() => client.exists(keys.idem({ institute: inst, environment: 'default' }, idempotencyKey)), (n) => n === 0, 'the idempotency key to go');
      expect(await client.exists(keys.job(job.id), keys.jobEvents(job.id))).toBe(0);
    } finally {
      client.disconnect();
    }
    const again = await gql(a.url, mine, CREATE, { input: { name: 'short-lived', total: 2, idempotencyKey } });
    expect(again.createBatchJob.id).not.toBe(job.id);
  }, 30_000);

  it('delivers a signed webhook for a job completed on the cluster (BullMQ queue under its own hash tag)', async () => {
    const receiver = await startReceiver();
    try {
      const admin = await token({ inst: freshInstitute() });
      const { secret } = (await gql(a.url, admin, CREATE_HOOK, { url: receiver.url, events: ['COMPLETED'] })).createWebhook;
      const { createBatchJob: job } = await gql(b.url, admin, CREATE, { input: { name: 'hooked' } });
      await gql(a.url, admin, COMPLETE, { id: job.id });
      const [delivery] = await receiver.received.waitForCount(1, 20_000);
      expect(delivery!.json).toMatchObject({ type: 'job.completed', data: { job: { id: job.id, status: 'COMPLETED' } } });
      expect(verify(secret, delivery!)).toMatchObject({ type: 'job.completed' });
    } finally {
      await receiver.close();
    }
  }, 30_000);

  it('projects job changes from the change log on the cluster: a group aggregates its children (in other slots) and jobUpdates lists every step', async () => {
    const inst = freshInstitute();
    const mine = await token({ inst });
    const viewer = await viewerOf(mine);
    const parent = (await gql(a.url, mine, CREATE, { input: { name: 'group' } })).createBatchJob.id as string;
    const updates = subscribeWs(wsClient(b.url, mine), `subscription { jobUpdates { type job { id status } } }`, {}, 'jobUpdates');
    expect((await updates.waitForCount(1))[0]).toMatchObject({ type: 'SNAPSHOT', job: { id: parent } });
    const children: string[] = [];
    for (let i = 0; i < 3; i++) children.push((await gql(a.url, mine, `mutation($input: CreateBatchJobInput!) { createBatchJob(input: $input) { id } }`, { input: { name: `part ${i}`, total: 50, parentId: parent } })).createBatchJob.id);
    // Children in other slots (partitions) than the parent: the groups projector commits to the parent's slot.
    const slots = new Set(await Promise.all([parent, ...children].map((id) => cluster.slotOf(keys.job(id)))));
    expect(slots.size).toBeGreaterThan(1);
    const stream = subscribeWs(wsClient(b.url, mine), `subscription($runId: ID!) { runProgress(runId: $runId) { type job { status completed childCounts { completed } } } }`, { runId: parent }, 'runProgress');
    await stream.waitForCount(1);
    await Promise.all(children.flatMap((id, c) => Array.from({ length: 50 }, (_, i) => [a, b][(i + c) % 2]!.services.jobs.report(viewer, id, { completedDelta: 1 }))));
    await Promise.all(children.map((id, i) => [a, b][i % 2]!.services.jobs.finish(viewer, id, 'COMPLETED', null)));
    const events = await stream.done(20_000);
    expect(events.at(-1)).toMatchObject({ type: 'COMPLETED', job: { status: 'COMPLETED', completed: 150, childCounts: { completed: 3 } } });
    // jobUpdates on B: each job's creation and its completion, the parent's derived one included.
    for (const id of [parent, ...children]) {
      await updates.waitFor((items) => items.some((u) => u.job?.id === id && u.job.status === 'COMPLETED'), `the COMPLETED update of ${id}`, 20_000);
    }
    updates.dispose();
  }, 60_000);

  it('spreads jobs over all three masters (CLUSTER KEYSLOT / COUNTKEYSINSLOT)', async () => {
    const viewer = await viewerOf(tok);
    const jobs = await Promise.all(Array.from({ length: 60 }, (_, i) => a.services.jobs.create(viewer, { name: `spread ${i}`, kind: 'BATCH' })));
    const perMaster = new Map<number, number>();
    for (const job of jobs) {
      const slot = await cluster.slotOf(keys.job(job.id));
      const master = await cluster.masterOf(slot);
      // The record, its history stream and its partition's change log all live in that slot on that master.
      expect(Number(await cluster.client(master).cluster('COUNTKEYSINSLOT', slot))).toBeGreaterThanOrEqual(2);
      expect(await cluster.slotOf(keys.changesOf(job.id))).toBe(slot);
      expect(await cluster.slotOf(keys.channel(`job:${job.id}`))).toBe(slot);
      perMaster.set(master, (perMaster.get(master) ?? 0) + 1);
    }
    expect(perMaster.size).toBe(3);
    // About a third each (16 partitions: 6, 5 and 5 of them per master); at least 5 of 60 fails with odds under 1 in 10^4.
    for (const n of perMaster.values()) expect(n).toBeGreaterThanOrEqual(5);
  });

  it('holds one SSUBSCRIBE per channel per instance (PUBSUB SHARDNUMSUB on the owning master), 0 after the subscribers leave', async () => {
    const { createBatchJob: job } = await gql(a.url, tok, CREATE, { input: { name: 'numsub' } });
    const channel = keys.channel(`job:${job.id}`);
    const subs: Collector[] = [];
    for (const [server, n] of [[a, 3], [b, 2]] as const) {
      const client = wsClient(server.url, tok);
      for (let i = 0; i < n; i++) subs.push(subscribeWs(client, WATCH, { runId: job.id }, 'runProgress'));
    }
    await Promise.all(subs.map((s) => s.waitForCount(1)));
    expect(await shardNumSub(channel)).toBe(2);
    for (const s of subs) s.dispose();
    await waitUntil(() => shardNumSub(channel), (n) => n === 0, 'SHARDNUMSUB to return to 0');
  });

  it('releases a subscription left while its master is down (no failover), once the master is back', async () => {
    const { job, replica } = await onReplicatedMaster(async () => (await gql(a.url, tok, CREATE, { input: { name: 'left while down' } })).createBatchJob as { id: string });
    const channel = keys.channel(`job:${job.id}`);
    const sub = subscribeWs(wsClient(b.url, tok), WATCH, { runId: job.id }, 'runProgress');
    await sub.waitForCount(1);
    expect(await shardNumSub(channel)).toBe(1);
    const master = await cluster.masterOf(await cluster.slotOf(channel));
    // A job on another master, to report to while this one is down.
    let other = (await gql(a.url, tok, CREATE, { input: { name: 'elsewhere' } })).createBatchJob.id as string;
    while ((await cluster.masterOf(await cluster.slotOf(keys.job(other)))) === master) other = (await gql(a.url, tok, CREATE, { input: { name: 'elsewhere' } })).createBatchJob.id;
    await cluster.client(replica.port).config('SET', 'cluster-replica-no-failover', 'yes');
    try {
      const shards = (b.backend.bus as RedisEventBus).shards;
      await cluster.killNode(master);
      await waitUntil(() => shards.get(`127.0.0.1:${master}`)?.status, (s) => s !== 'ready', 'B to notice the master is down');
      // While its master is down, the job's slot fails fast with SERVICE_UNAVAILABLE (a report through GraphQL, a
      // topic log of the job); jobs on the other masters keep working.
      const started = Date.now();
      const report = await gqlHttp(a.url, tok, REPORT, { input: { jobId: job.id, completed: 1 } });
      expect(errorCode(report.body)).toBe('SERVICE_UNAVAILABLE');
      await expect(a.backend.logs.append(`training:${job.id}`, () => ({ state: {}, events: [] }))).rejects.toMatchObject({ code: 'SERVICE_UNAVAILABLE' });
      expect(Date.now() - started).toBeLessThan(10_000);
      expect((await gql(b.url, tok, REPORT, { input: { jobId: other, completed: 1 } })).reportProgress.completed).toBe(1);
      sub.dispose();
      await cluster.restartNode(master);
    } finally {
      await cluster.client(replica.port).config('SET', 'cluster-replica-no-failover', 'no');
    }
    expect(await cluster.masterOf(await cluster.slotOf(channel))).toBe(master);
    await waitUntil(() => shardNumSub(channel), (n) => n === 0, 'SHARDNUMSUB to be 0 on the restarted master');
    // The instance works on that master again.
    await gql(b.url, tok, REPORT, { input: { jobId: job.id, completed: 1 } });
  }, 60_000);

  it('moves a deployment from one Redis (old unprefixed layout and 4 partitions) to the cluster with `runwatch-server migrate-redis`, losing no job', async () => {
    const single = await startRedis();
    const inst = freshInstitute();
    const mine = await token({ inst });
    try {
      // A job written by a runwatch before hash tags (keys as that layout named them).
      const direct = new Redis(single.url);
      const oldJob = createJob({ kind: 'BATCH', name: 'from the old layout', total: 10 }, { id: `j_old${Date.now()}`, epoch: 'e-old', tenant: { institute: inst, environment: 'default' }, ownerId: 'u' }, Date.now());
      const started = applyProgress(oldJob, { completed: 3, stage: 'old stage' }, Date.now(), 0)!;
      await direct.hset(`runwatch:job:${oldJob.id}`, 'v', '1073741900', 'data', JSON.stringify(started.job), 'idem', `runwatch:idem:${inst}:default:legacy`);
      for (const event of started.events) await direct.xadd(`runwatch:job:${oldJob.id}:events`, `${event.offset}-0`, 'e', JSON.stringify(event));
      await direct.zadd(`runwatch:jobs:${inst}:default`, oldJob.createdAt, oldJob.id);
      await direct.set(`runwatch:idem:${inst}:default:legacy`, `${oldJob.id}\nfp`);
      direct.disconnect();
      // Jobs written by this version on one Redis (4 partitions): one with an idempotency key, history, one finished.
      const server = await startTestServer({ redisUrl: single.url, config: { changePartitions: 4 } });
      const { createBatchJob: kept } = await gql(server.url, mine, CREATE, { input: { name: 'kept', total: 10, idempotencyKey: 'move-me' } });
      const before = subscribeWs(wsClient(server.url, mine), WATCH, { runId: kept.id }, 'runProgress');
      const [snapshot] = await before.waitForCount(1);
      before.dispose();
      for (let i = 1; i <= 4; i++) await gql(server.url, mine, REPORT, { input: { jobId: kept.id, completed: i, stage: `s${i}` } });
      const { createBatchJob: done } = await gql(server.url, mine, CREATE, { input: { name: 'done', total: 1 } });
      await gql(server.url, mine, COMPLETE, { id: done.id });
      // Every projector has applied every change (the migration refuses otherwise when the partition count changes).
      const check = new Redis(single.url);
      await waitUntil(
        async () => {
          let behind = 0;
          for (let p = 0; p < 4; p++) {
            for (const group of (await check.xinfo('GROUPS', changesKey(p, 4))) as unknown[][]) {
              const info = Object.fromEntries(Array.from({ length: group.length / 2 }, (_, i) => [String(group[2 * i]), group[2 * i + 1]]));
              behind += Number(info.pending) + Number(info.lag ?? 0);
            }
          }
          return behind;
        },
        (n) => n === 0,
        'the projectors on one Redis to catch up',
      );
      check.disconnect();
      await server.close(1000);

      const run = spawnSync(process.execPath, ['--import', 'tsx', 'src/bin.ts', 'migrate-redis', '--from', single.url, '--to-cluster', cluster.seedList], {
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect(run.status, run.stderr).toBe(0);
      expect(JSON.parse(run.stdout)).toMatchObject({ partitions: DEFAULT_CLUSTER_CHANGE_PARTITIONS });

      // On the cluster: every job, its state, history, idempotency and list entry; and work goes on.
      const listed = (await gql(a.url, mine, LIST)).batchJobs.edges.map((e: { node: { id: string } }) => e.node.id);
      expect(listed.sort()).toEqual([oldJob.id, kept.id, done.id].sort());
      expect((await gql(b.url, mine, GET, { id: oldJob.id })).batchJob).toMatchObject({ status: 'RUNNING', completed: 3 });
      expect((await gql(b.url, mine, GET, { id: done.id })).batchJob).toMatchObject({ status: 'COMPLETED' });
      expect((await gql(a.url, mine, CREATE, { input: { name: 'kept', total: 10, idempotencyKey: 'move-me' } })).createBatchJob.id).toBe(kept.id);
      const replay = subscribeWs(wsClient(b.url, mine), WATCH, { runId: kept.id, after: snapshot.cursor }, 'runProgress');
      await replay.waitFor((items) => items.some((e) => e.job.stage === 's4'), 'the history replayed from the cluster');
      await gql(a.url, mine, REPORT, { input: { jobId: kept.id, completed: 5, stage: 's5' } });
      await gql(a.url, mine, COMPLETE, { id: kept.id });
      const all = await replay.done();
      expect(all[0].type).not.toBe('SNAPSHOT'); // the cursor from one Redis is valid on the cluster: same epoch, history moved
      expect(all.filter((e) => e.type === 'STAGE').map((e) => e.job.stage)).toEqual(['s1', 's2', 's3', 's4', 's5']);
      await gql(a.url, mine, REPORT, { input: { jobId: oldJob.id, completed: 4 } });
    } finally {
      await single.stop();
    }
  }, 90_000);

  it("survives a failover of the master owning a running job's slot: reports fail fast, then succeed; subscribers get every stored event", async () => {
    const viewer = await viewerOf(tok);
    const { job } = await onReplicatedMaster(() => a.services.jobs.create(viewer, { name: 'failover', kind: 'BATCH', total: 1000 }));
    const slot = await cluster.slotOf(keys.job(job.id));
    const master = await cluster.masterOf(slot);
    const events = subscribeWs(wsClient(b.url, tok), WATCH, { runId: job.id }, 'runProgress');
    await events.waitForCount(1);
    // Reports with a new stage each (STAGE events are never conflated), some before, some during, some after the failover.
    let stage = 0;
    const reportOnce = async () => {
      for (;;) {
        // Absolute `completed`: a retry of a report that did commit (a reply lost to the failover) changes nothing.
        const started = Date.now();
        const result = await gqlHttp(a.url, tok, REPORT, { input: { jobId: job.id, completed: stage + 1, stage: `s${stage + 1}` } });
        if (!result.body.errors) {
          stage++;
          return;
        }
        expect(errorCode(result.body), JSON.stringify(result.body.errors)).toBe('SERVICE_UNAVAILABLE');
        // Fails fast: within the command timeout (3 s) and a few redirections, not after a queue drained.
        expect(Date.now() - started).toBeLessThan(8000);
        await new Promise((r) => setTimeout(r, 50)); // a worker's retry
      }
    };
    for (let i = 0; i < 5; i++) await reportOnce();
    const failover = cluster.killMasterAndAwaitFailover(master, 30_000);
    // Reports go on while the cluster fails over: each eventually succeeds.
    const during = (async () => {
      for (let i = 0; i < 10; i++) await reportOnce();
    })();
    const promoted = await failover;
    await withTimeout(during, 30_000, 'the reports during the failover to succeed');
    for (let i = 0; i < 5; i++) await reportOnce();
    await gql(b.url, tok, COMPLETE, { id: job.id });
    const all = await explainedByB(events.done(30_000));
    expect(await cluster.masterOf(slot)).toBe(promoted);
    // Every stored event, in order, once: gap-free offsets and every stage.
    const offsets = all.slice(1).map(offsetOf);
    expect(offsets).toEqual(offsets.map((_, i) => offsets[0]! + i));
    expect(all.filter((e) => e.type === 'STAGE').map((e) => e.job.stage)).toEqual(Array.from({ length: 20 }, (_, i) => `s${i + 1}`));
    expect(all.at(-1)).toMatchObject({ type: 'COMPLETED', job: { completed: 20 } });
    // Whatever failed did so as SERVICE_UNAVAILABLE (asserted in reportOnce); stored state agrees on both instances.
    for (const server of [a, b]) expect((await gql(server.url, tok, GET, { id: job.id })).batchJob).toMatchObject({ status: 'COMPLETED', completed: 20 });
  }, 90_000);

  it('keeps the epoch rules when a failover loses acknowledged writes: the job comes back older under a new epoch, subscribers get a SNAPSHOT', async () => {
    const viewer = await viewerOf(tok);
    const { job, replica: replicaNode } = await onReplicatedMaster(() => a.services.jobs.create(viewer, { name: 'lossy failover', kind: 'BATCH', total: 100 }));
    const master = await cluster.masterOf(await cluster.slotOf(keys.job(job.id)));
    const events = subscribeWs(wsClient(b.url, tok), WATCH, { runId: job.id }, 'runProgress');
    await events.waitForCount(1);
    for (let i = 1; i <= 3; i++) await a.services.jobs.report(viewer, job.id, { completed: i, stage: `kept ${i}` });
    await events.waitFor((items) => items.some((e) => e.job.stage === 'kept 3'), 'the replicated reports');
    await cluster.client(master).call('WAIT', '1', '5000'); // the replica has everything so far
    // Freeze the replica (SIGSTOP) and cut its link, so that the next two reports reach the master alone (Redis 7
    // replicas reconnect at once and would fetch them from the backlog); then kill the master before it is back.
    const replicaPid = cluster.nodes.find((n) => n.port === replicaNode.port)!.pid;
    process.kill(replicaPid, 'SIGSTOP');
    try {
      await cluster.client(master).call('CLIENT', 'KILL', 'TYPE', 'replica');
      for (let i = 4; i <= 5; i++) await a.services.jobs.report(viewer, job.id, { completed: i, stage: `lost ${i}` });
      await events.waitFor((items) => items.some((e) => e.job.stage === 'lost 5'), 'the reports the replica never got, delivered live');
      await cluster.killNode(master);
    } finally {
      process.kill(replicaPid, 'SIGCONT');
    }
    const lastSeen = events.items.at(-1);
    const slot = await cluster.slotOf(keys.job(job.id));
    await waitUntil(() => cluster.masterOf(slot).catch(() => master), (owner) => owner !== master, 'the replica to take the slot over', 30_000);
    await cluster.awaitHealthy(30_000);
    expect((await a.backend.store.get(job.id))!.completed).toBe(3); // the two reports are lost with the old master
    // B's subscriber catches up: the job went back in time, so it gets a fresh SNAPSHOT under a new epoch.
    const [snapshot] = (await explainedByB(events.waitFor((items) => items.slice(1).some((e) => e.type === 'SNAPSHOT'), 'a fresh SNAPSHOT', 30_000))).filter(
      (e, i) => i > 0 && e.type === 'SNAPSHOT',
    );
    expect(snapshot.cursor.split('.')[0]).not.toBe(lastSeen.cursor.split('.')[0]);
    expect(snapshot.job.completed).toBe(3);
    // A client resuming with a cursor of the lost timeline gets a SNAPSHOT, not a replay.
    const resumed = subscribeWs(wsClient(a.url, tok), WATCH, { runId: job.id, after: lastSeen.cursor }, 'runProgress');
    expect((await resumed.waitForCount(1))[0]).toMatchObject({ type: 'SNAPSHOT', job: { completed: 3 } });
    // Work goes on from the surviving state.
    await a.services.jobs.report(viewer, job.id, { completed: 4, stage: 'again 4' });
    await explainedByB(events.waitFor((items) => items.some((e) => e.job.stage === 'again 4'), 'the report after the failover'));
    resumed.dispose();
    events.dispose();
  }, 90_000);

  it('starts with `npm start` and REDIS_CLUSTER_NODES, printing the backend; refuses REDIS_URL with it, naming both', async () => {
    const proc = await spawnServer({ REDIS_URL: '', REDIS_CLUSTER_NODES: cluster.seedList });
    try {
      expect(proc.output()).toContain('(backend: redis-cluster)');
      const { createBatchJob: job } = await gql(proc.url, tok, CREATE, { input: { name: 'from npm start' } });
      expect((await gql(a.url, tok, GET, { id: job.id })).batchJob).toMatchObject({ id: job.id, status: 'QUEUED' });
    } finally {
      proc.kill('SIGTERM');
      await proc.exited;
    }
    const both = spawnSync(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      env: { ...process.env, REDIS_URL: 'redis://127.0.0.1:6379', REDIS_CLUSTER_NODES: cluster.seedList },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(both.status).toBe(2);
    expect(both.stderr).toMatch(/REDIS_CLUSTER_NODES.*REDIS_URL/);
  }, 90_000);
});
