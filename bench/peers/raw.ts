/**
 * The floor of the side-by-side fan-out benchmark (bench/fanout.ts): raw
 * forwarding of the Redis bytes, no GraphQL at all. One process is both an
 * ingress and a server, like a runwatch instance:
 * - `POST /publish/<runId>`: PUBLISHes the request body, unchanged, on
 *   `runwatch:job:<runId>`;
 * - WebSocket: each message a client sends is a run id it wants (one per
 *   message, so a socket may multiplex several, answered `{"ready":true}`
 *   each); the process holds one Redis SUBSCRIBE per channel and sends every
 *   message, as received, to every socket of that channel.
 * Usage: tsx bench/peers/raw.ts <redisUrl> [--deflate]; prints `listening <port>`.
 * `--deflate`: negotiate permessage-deflate (`ws`'s option; off by default).
 */
import { createServer } from 'node:http';
import { Redis } from 'ioredis';
import { WebSocketServer, type WebSocket } from 'ws';

const [redisUrl, ...rest] = process.argv.slice(2) as [string, ...string[]];
const publisher = new Redis(redisUrl);
const subscriber = new Redis(redisUrl);
const sockets = new Map<string, Set<WebSocket>>();

const http = createServer((req, res) => {
  const match = /^\/publish\/([\w-]+)$/.exec(req.url ?? '');
  if (req.method !== 'POST' || !match) {
    res.writeHead(404).end();
    return;
  }
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    publisher.publish(`runwatch:job:${match[1]}`, Buffer.concat(chunks)).then(
      () => res.writeHead(204).end(),
      () => res.writeHead(503).end(),
    );
  });
});

const wss = new WebSocketServer({ server: http, perMessageDeflate: rest.includes('--deflate') });
wss.on('connection', (socket) => {
  const joined: Set<WebSocket>[] = [];
  socket.on('message', (data) => {
    const channel = `runwatch:job:${String(data)}`;
    let set = sockets.get(channel);
    if (!set) {
      sockets.set(channel, (set = new Set()));
      void subscriber.subscribe(channel);
    }
    set.add(socket);
    joined.push(set);
    socket.send('{"ready":true}');
  });
  socket.on('close', () => {
    for (const set of joined) set.delete(socket);
  });
});
subscriber.on('messageBuffer', (channel: Buffer, message: Buffer) => {
  const set = sockets.get(String(channel));
  if (set) for (const socket of set) socket.send(message, { binary: false });
});

http.listen(0, '127.0.0.1', () => process.stdout.write(`listening ${(http.address() as { port: number }).port}\n`));
