/**
 * Comparison for bench/fanout.ts: the plain recipe — graphql-ws + graphql-js
 * + graphql-redis-subscriptions, a resolver returning `pubsub.asyncIterator`.
 * Per event and per subscriber: an iterator step, a graphql-js execution,
 * a JSON serialization.
 * Usage: tsx bench/naive-server.ts <redisUrl>; prints its port.
 */
import { makeExecutableSchema } from '@graphql-tools/schema';
import { RedisPubSub } from 'graphql-redis-subscriptions';
import { useServer } from 'graphql-ws/use/ws';
import { Redis } from 'ioredis';
import { WebSocketServer } from 'ws';

const [redisUrl] = process.argv.slice(2) as [string];
const pubsub = new RedisPubSub({ publisher: new Redis(redisUrl), subscriber: new Redis(redisUrl) });
const schema = makeExecutableSchema({
  typeDefs: /* GraphQL */ `
    type BatchJob { id: ID! status: String! completed: Int! total: Int percent: Float rate: Float etaSeconds: Float stage: String }
    type ProgressEvent { cursor: String! type: String! timestamp: Float! job: BatchJob! }
    type Query { ok: Boolean }
    type Subscription { runProgress(runId: ID!): ProgressEvent! }
  `,
  resolvers: {
    Subscription: {
      runProgress: {
        subscribe: (_: unknown, args: { runId: string }) => pubsub.asyncIterator(`runwatch:job:${args.runId}`),
        resolve: (payload: unknown) => payload,
      },
    },
  },
});
const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', path: '/graphql' });
useServer({ schema }, wss);
wss.on('listening', () => process.stdout.write(`listening ${(wss.address() as { port: number }).port}\n`));
