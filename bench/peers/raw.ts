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
 * Usage: tsx bench/peers/raw.ts <redisUrl> [--deflate] [--drop-above <bytes>]; prints `listening <port>`.
 * `--deflate`: negotiate permessage-deflate (`ws`'s option; off by default).
 * `--drop-above <bytes>`: a slow-consumer bound like runwatch's (bench/stalled.ts): a socket whose buffered
 * bytes (`bufferedAmount`) exceed it after a send is closed 4008 and, if the close has not completed 3 s later
 * (runwatch's close grace), terminated; the process prints `dropped` and, once such a socket is closed, `gone`.
 * Off by default (a socket's buffer then grows without bound).
 */
import { createServer } from 'node:http';
import { Redis } from 'ioredis';
import { WebSocketServer, type WebSocket } from 'ws';

const [redisUrl, ...rest] = process.argv.slice(2) as [string, ...string[]];
const publisher = new Redis(redisUrl);
const subscriber = new Redis(redisUrl);
const sockets = new Map<string, Set<WebSocket>>();
/** Each channel's SUBSCRIBE, settled once Redis has answered it. */
const subscribed = new Map<string, Promise<unknown>>();
const dropAt = rest.indexOf('--drop-above');
/** Most bytes a socket may hold unsent before it is dropped (bytes); Infinity: no bound. */
const dropAbove = dropAt >= 0 ? Number(rest[dropAt + 1]) : Infinity;
/** Milliseconds a dropped socket has to complete its close before it is terminated (runwatch's closeGraceMs). */
const CLOSE_GRACE_MS = 3000;

/** Closes a socket past the bound (4008), terminates it after the grace; prints `dropped`, then `gone` on close. */
function drop(socket: WebSocket): void {
  for (const set of sockets.values()) set.delete(socket);
  process.stdout.write('dropped\n');
  socket.once('close', () => process.stdout.write('gone\n'));
  socket.close(4008, 'slow consumer');
  setTimeout(() => socket.terminate(), CLOSE_GRACE_MS).unref();
}

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
      subscribed.set(channel, subscriber.subscribe(channel));
    }
    set.add(socket);
    joined.push(set);
    // Ready once Redis has confirmed the SUBSCRIBE: nothing published after the answer is missed.
    subscribed.get(channel)!.then(
      () => socket.send('{"ready":true}'),
      () => socket.close(1011, 'subscribe failed'),
    );
  });
  socket.on('close', () => {
    for (const set of joined) set.delete(socket);
  });
});
subscriber.on('messageBuffer', (channel: Buffer, message: Buffer) => {
  const set = sockets.get(String(channel));
  if (!set) return;
  for (const socket of set) {
    socket.send(message, { binary: false });
    if (socket.bufferedAmount > dropAbove) drop(socket);
  }
});

// Listen once the subscriber connection is ready: a SUBSCRIBE sent before ioredis's ready check (INFO) puts the
// connection in subscriber mode, the check then fails and the connection never becomes ready.
if (subscriber.status !== 'ready') await new Promise((resolve) => subscriber.once('ready', resolve));
http.listen(0, '127.0.0.1', () => process.stdout.write(`listening ${(http.address() as { port: number }).port}\n`));
