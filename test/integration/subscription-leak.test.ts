/**
 * Subscriptions release their Redis subscription (counted with PUBSUB NUMSUB)
 * however they end: unsubscribe, socket killed, SSE dropped — and one Redis
 * subscription serves every local subscriber of a channel.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testKeys } from '../helpers/redis.js';

const channelFor = (topic: string) => testKeys.channel(topic);
import type { RunningServer } from '../../src/server.js';
import { gql, subscribeSse, subscribeWs, wsClient } from '../helpers/clients.js';
import { freshInstitute, sharedRedisUrl, startTestServer, token } from '../helpers/servers.js';
import { waitUntil } from '../helpers/wait.js';
import WebSocket from 'ws';

const WATCH = `subscription($runId: ID!) { runProgress(runId: $runId) { type } }`;

describe('Redis subscriptions are released', () => {
  let server: RunningServer;
  let tok: string;
  let redis: Redis;
  let jobId: string;

  beforeAll(async () => {
    server = await startTestServer({ backend: 'redis' });
    tok = await token({ inst: freshInstitute() });
    redis = new Redis(sharedRedisUrl());
    jobId = (await gql(server.url, tok, `mutation { createBatchJob(input: { name: "quiet", total: 10 }) { id } }`)).createBatchJob.id;
  });
  afterAll(() => redis.disconnect());

  const numsub = async () => {
    const [, count] = (await redis.pubsub('NUMSUB', channelFor(`job:${jobId}`))) as [string, number];
    return Number(count);
  };
  const released = () => waitUntil(numsub, (n) => n === 0, 'PUBSUB NUMSUB to reach 0');

  it('holds one Redis subscription per channel however many local subscribers, and none after 100 subscribe/unsubscribe cycles', async () => {
    const client = wsClient(server.url, tok);
    const many = Array.from({ length: 5 }, () => subscribeWs(client, WATCH, { runId: jobId }, 'runProgress'));
    await Promise.all(many.map((s) => s.waitForCount(1)));
    expect(await numsub()).toBe(1);
    for (const s of many) s.dispose();
    await released();
    for (let i = 0; i < 100; i++) {
      const s = subscribeWs(client, WATCH, { runId: jobId }, 'runProgress');
      await s.waitForCount(1);
      s.dispose();
    }
    await released();
    expect(server.backend.bus.topicCount()).toBe(0);
  });

  it('releases a filtered trainingEvents stream (types) on a quiet run, also when it ends while being set up', async () => {
    const runId = (await gql(server.url, tok, `mutation { createBatchJob(input: { name: "quiet run", kind: TRAINING }) { id } }`)).createBatchJob.id;
    const channel = channelFor(`training:${runId}`);
    const trainingNumsub = async () => Number(((await redis.pubsub('NUMSUB', channel)) as [string, number])[1]);
    const client = wsClient(server.url, tok);
    // Twenty times: disposing right after the channel is subscribed often completes the subscription while the server
    // is still setting it up, before the first next() (a Repeater-based filter leaked there).
    for (let i = 0; i < 20; i++) {
      // Only log lines pass the filter, and the run has none: the server's next() waits on a quiet topic.
      const s = subscribeWs(client, `subscription($runId: ID!) { trainingEvents(runId: $runId, types: [TRAINING_LOG]) { __typename } }`, { runId }, 'trainingEvents');
      await waitUntil(trainingNumsub, (n) => n === 1, 'the training channel to be subscribed');
      s.dispose();
      await waitUntil(trainingNumsub, (n) => n === 0, 'the training channel to be released');
    }
  });

  it('releases it when the client socket is killed without a goodbye', async () => {
    for (let i = 0; i < 10; i++) {
      const socket = new WebSocket(server.url.replace(/^http/, 'ws'), 'graphql-transport-ws');
      const got = new Promise<void>((resolve, reject) => {
        socket.on('open', () => socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${tok}` } })));
        socket.on('message', (raw) => {
          const msg = JSON.parse(String(raw));
          if (msg.type === 'connection_ack')
            socket.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: WATCH, variables: { runId: jobId } } }));
          if (msg.type === 'next') resolve();
        });
        socket.on('error', reject);
      });
      await got;
      expect(await numsub()).toBe(1);
      socket.terminate();
      await released();
    }
  });

  it('releases it when an SSE stream is dropped', async () => {
    const sse = subscribeSse(server.url, tok, WATCH, { runId: jobId }, 'runProgress');
    await sse.waitForCount(1);
    expect(await numsub()).toBe(1);
    sse.abort();
    await released();
  });
});
