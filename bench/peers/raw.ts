/**
 * The floor of the side-by-side fan-out benchmark (bench/fanout.ts): raw
 * forwarding of the Redis bytes, no GraphQL at all. One process is both an
 * ingress and a server, like a runwatch instance:
 * - `POST /publish/<runId>`: PUBLISHes the request body, unchanged, on
 *   `runwatch:job:<runId>`;
 * - WebSocket: a client's first message is the run id it wants; the process
 *   holds one Redis SUBSCRIBE per channel and sends every message, as
 *   received, to every socket of that channel.
 * Usage: tsx bench/peers/raw.ts <redisUrl>; prints `listening <port>`.
 */
import { createServer } from 'node:http';
import { Redis } from 'ioredis';
import { WebSocketServer, type WebSocket } from 'ws';

const [redisUrl] = process.argv.slice(2) as [string];
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

const wss = new WebSocketServer({ server: http });
wss.on('connection', (socket) => {
  socket.once('message', (data) => {
    const channel = `runwatch:job:${String(data)}`;
    let set = sockets.get(channel);
    if (!set) {
      sockets.set(channel, (set = new Set()));
      void subscriber.subscribe(channel);
    }
    set.add(socket);
    socket.send('{"ready":true}');
    socket.on('close', () => set.delete(socket));
  });
});
subscriber.on('messageBuffer', (channel: Buffer, message: Buffer) => {
  const set = sockets.get(String(channel));
  if (set) for (const socket of set) socket.send(message, { binary: false });
});

http.listen(0, '127.0.0.1', () => process.stdout.write(`listening ${(http.address() as { port: number }).port}\n`));
