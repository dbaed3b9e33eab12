/**
 * Baseline for bench/fanout.ts: raw byte forwarding. One Redis SUBSCRIBE;
 * every message is sent as received to every WebSocket client that said
 * anything (its "subscribe"). No parsing, no GraphQL.
 * Usage: tsx bench/raw-forwarder.ts <redisUrl> <channel>; prints its port.
 */
import { Redis } from 'ioredis';
import { WebSocketServer, type WebSocket } from 'ws';

const [redisUrl, channel] = process.argv.slice(2) as [string, string];
const clients = new Set<WebSocket>();
const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
wss.on('connection', (socket) => {
  socket.once('message', () => clients.add(socket));
  socket.on('close', () => clients.delete(socket));
});
const sub = new Redis(redisUrl);
await sub.subscribe(channel);
sub.on('message', (_channel, message) => {
  for (const socket of clients) socket.send(message);
});
wss.on('listening', () => process.stdout.write(`listening ${(wss.address() as { port: number }).port}\n`));
