/**
 * The comparison of the side-by-side fan-out benchmark (bench/fanout.ts): the
 * plain recipe most GraphQL subscription servers start from — graphql-ws +
 * graphql-js + graphql-redis-subscriptions, a resolver returning
 * `pubsub.asyncIterator`. Per event and per subscriber: an iterator step, a
 * graphql-js execution and a JSON serialization. One process is both ingress
 * and server, like a runwatch instance:
 * - `POST /graphql`: `mutation { report(runId, stage) }` builds a ProgressEvent
 *   and publishes it through RedisPubSub;
 * - graphql-ws on `/graphql`: `subscription { runProgress(runId) { … } }`.
 * Usage: tsx bench/peers/recipe.ts <redisUrl>; prints `listening <port>`.
 */
import { createServer } from 'node:http';
import { makeExecutableSchema } from '@graphql-tools/schema';
import { graphql } from 'graphql';
import { RedisPubSub } from 'graphql-redis-subscriptions';
import { useServer } from 'graphql-ws/use/ws';
import { Redis } from 'ioredis';
import { WebSocketServer } from 'ws';

const [redisUrl] = process.argv.slice(2) as [string];
const pubsub = new RedisPubSub({ publisher: new Redis(redisUrl), subscriber: new Redis(redisUrl) });
const counts = new Map<string, number>();

const schema = makeExecutableSchema({
  typeDefs: /* GraphQL */ `
    type BatchJob { id: ID! status: String! completed: Int! total: Int percent: Float rate: Float etaSeconds: Float stage: String }
    type ProgressEvent { cursor: String! type: String! timestamp: Float! message: String job: BatchJob! }
    type Query { ok: Boolean }
    type Mutation { report(runId: ID!, stage: String!): Boolean! }
    type Subscription { runProgress(runId: ID!): ProgressEvent! }
  `,
  resolvers: {
    Mutation: {
      report: async (_: unknown, { runId, stage }: { runId: string; stage: string }) => {
        const completed = (counts.get(runId) ?? 0) + 1;
        counts.set(runId, completed);
        const job = { id: runId, status: 'RUNNING', completed, total: 1_000_000, percent: completed / 10_000, rate: 123.4, etaSeconds: 987.6, stage };
        await pubsub.publish(`runwatch:job:${runId}`, { cursor: `recipe.${completed}`, type: 'STAGE', timestamp: Date.now(), message: stage, job });
        return true;
      },
    },
    Subscription: {
      runProgress: {
        subscribe: (_: unknown, args: { runId: string }) => pubsub.asyncIterator(`runwatch:job:${args.runId}`),
        resolve: (payload: unknown) => payload,
      },
    },
  },
});

const http = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', async () => {
    const { query, variables } = JSON.parse(Buffer.concat(chunks).toString()) as { query: string; variables?: Record<string, unknown> };
    const result = await graphql({ schema, source: query, variableValues: variables });
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(result));
  });
});
useServer({ schema }, new WebSocketServer({ server: http, path: '/graphql' }));
http.listen(0, '127.0.0.1', () => process.stdout.write(`listening ${(http.address() as { port: number }).port}\n`));
