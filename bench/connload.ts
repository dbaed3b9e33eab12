/**
 * A load-generator process of the connections benchmark (bench/connections.ts):
 * holds a slice of the benchmark's WebSocket connections to the serving
 * instance and counts, per subscription, the events that arrive.
 *
 * Cheap on purpose: plain `ws` sockets speaking just enough of each peer's
 * protocol — graphql-transport-ws (`connection_init`, `subscribe`, `pong`) for
 * runwatch; for the raw peer one message per subscription, the run id — and a
 * counter per subscription in a typed array. The `ws` client offers
 * permessage-deflate (its default); the server decides whether it is used.
 *
 * Driven over the IPC channel by the parent, one command at a time
 * ({@link Command}); every command is answered with one {@link Reply}. Every
 * wait is bounded by the command's `timeoutMs`.
 */
import WebSocket from 'ws';
import { Waiter } from './lib/waiter.js';

/** What the parent sends first: the slice of connections this process holds. */
export interface WorkerConfig {
  peer: 'raw' | 'runwatch';
  /** ws://127.0.0.1:<port>/graphql (runwatch) or ws://127.0.0.1:<port>/ (raw). */
  wsUrl: string;
  token: string;
  jobIds: string[];
  /** Global index of this slice's first connection, and how many it holds. */
  firstConnection: number;
  connections: number;
  subsPerConnection: number;
  /** Handshakes at a time. */
  connectBatch: number;
}

/** Commands from the parent. */
export type Command =
  | { cmd: 'connect'; config: WorkerConfig; timeoutMs: number }
  | { cmd: 'subscribe'; timeoutMs: number }
  | { cmd: 'reset' }
  | { cmd: 'await'; expectedPerJob: number[]; timeoutMs: number; quietMs: number }
  | { cmd: 'close' };

/** Answers to the parent. */
export interface Reply {
  ok: boolean;
  /** Connections open (after connect: acknowledged, for runwatch). */
  open: number;
  /** Subscriptions that got their first message (runwatch: the SNAPSHOT; raw: `ready`). */
  live: number;
  /** After `await`: subscriptions / connections that did not receive exactly their job's events. */
  subsShort: number;
  subsOver: number;
  connectionsNotAll: number;
  received: number;
  /** Subscriptions the server completed or errored, and connections it closed (never expected in the benchmark). */
  ended: number;
  closed: number;
  errors: string[];
}

const SUBSCRIPTION = 'subscription($runId: ID!) { runProgress(runId: $runId) { type cursor message job { status completed total percent rate etaSeconds stage } } }';

let config: WorkerConfig;
let jobIndex = new Map<string, number>();
const sockets: WebSocket[] = [];
/** Events counted per subscription (connection-local index × subsPerConnection + k). */
let counts = new Uint32Array(0);
/** Subscriptions that got their first message. */
let liveFlags = new Uint8Array(0);
let live = 0;
let open = 0;
let received = 0;
let ended = 0;
let closed = 0;
const errors: string[] = [];
const waiter = new Waiter();
let closing = false;

const jobOf = (connection: number, k: number) => (((config.firstConnection + connection) * config.subsPerConnection + k) % config.jobIds.length);

function note(error: string): void {
  if (errors.length < 20) errors.push(error);
}

function markLive(sub: number): void {
  if (liveFlags[sub]) return;
  liveFlags[sub] = 1;
  live++;
  waiter.wake();
}

function onMessage(connection: number, socket: WebSocket, data: string): void {
  const base = connection * config.subsPerConnection;
  if (config.peer === 'raw') {
    if (data === '{"ready":true}') {
      // Readies come in the order the run ids were sent.
      let k = 0;
      while (k < config.subsPerConnection && liveFlags[base + k]) k++;
      if (k < config.subsPerConnection) markLive(base + k);
      return;
    }
    const runId = (JSON.parse(data) as { runId: string }).runId;
    // The socket's jobs are consecutive (mod jobs), so the offset of runId among them is its k.
    const first = jobOf(connection, 0);
    const k = (jobIndex.get(runId)! - first + config.jobIds.length) % config.jobIds.length;
    counts[base + k]!++;
    received++;
    waiter.wake();
    return;
  }
  const msg = JSON.parse(data) as { id?: string; type: string; payload?: any };
  switch (msg.type) {
    case 'connection_ack':
      open++;
      onAck[connection]?.();
      onAck[connection] = undefined;
      waiter.wake();
      return;
    case 'ping':
      socket.send('{"type":"pong"}');
      return;
    case 'next': {
      const k = Number(msg.id);
      const event = msg.payload?.data?.runProgress;
      if (!event) {
        // An execution result with errors instead of a stream (graphql-ws then completes the operation).
        ended++;
        note(`connection ${config.firstConnection + connection} (job ${config.jobIds[jobOf(connection, k)]}): ${data.slice(0, 300)}`);
        waiter.wake();
        return;
      }
      markLive(base + k);
      if (event.type === 'STAGE') {
        counts[base + k]!++;
        received++;
        waiter.wake();
      }
      return;
    }
    default:
      if (msg.type === 'error') ended++;
      if (msg.type === 'complete' && liveFlags[base + Number(msg.id ?? 0)]) ended++; // after an errors-only `next`, already counted
      note(`connection ${config.firstConnection + connection} (job ${config.jobIds[jobOf(connection, Number(msg.id ?? 0))]}): ${data.slice(0, 200)}`);
  }
}

/** Per connection while its handshake is under way: resolves its connectOne (runwatch: at `connection_ack`). */
const onAck: ((() => void) | undefined)[] = [];

/** Opens connection `connection`; resolves when it is usable (raw: open; runwatch: acknowledged) or failed. */
function connectOne(connection: number): Promise<void> {
  const socket = new WebSocket(config.wsUrl, config.peer === 'raw' ? undefined : 'graphql-transport-ws');
  sockets[connection] = socket;
  return new Promise((resolve) => {
    socket.on('open', () => {
      if (config.peer === 'raw') {
        open++;
        waiter.wake();
        resolve();
      } else {
        onAck[connection] = resolve;
        socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${config.token}` } }));
      }
    });
    socket.on('message', (data) => onMessage(connection, socket, String(data)));
    socket.on('error', (error) => {
      note(`connection ${config.firstConnection + connection}: ${error.message}`);
      resolve();
    });
    socket.on('close', (code, reason) => {
      if (!closing) {
        closed++;
        note(`connection ${config.firstConnection + connection} closed: ${code} ${String(reason)}`);
      }
      resolve();
    });
  });
}


function reply(extra: Partial<Reply> = {}): void {
  process.send!({ ok: true, open, live, subsShort: 0, subsOver: 0, connectionsNotAll: 0, received, ended, closed, errors: errors.splice(0), ...extra } satisfies Reply);
}

async function handle(command: Command): Promise<void> {
  switch (command.cmd) {
    case 'connect': {
      config = command.config;
      jobIndex = new Map(config.jobIds.map((id, i) => [id, i]));
      const subs = config.connections * config.subsPerConnection;
      counts = new Uint32Array(subs);
      liveFlags = new Uint8Array(subs);
      // connectBatch handshakes at a time (default 200): the server's accept queue and the token check see bursts, not a flood.
      const deadline = Date.now() + command.timeoutMs;
      const batch = Math.max(1, config.connectBatch);
      for (let i = 0; i < config.connections && Date.now() < deadline; i += batch) {
        await Promise.all(Array.from({ length: Math.min(batch, config.connections - i) }, (_, j) => connectOne(i + j)));
      }
      const ok = await waiter.until(() => open >= config.connections, Math.max(0, deadline - Date.now()));
      return reply({ ok });
    }
    case 'subscribe': {
      const deadline = Date.now() + command.timeoutMs;
      let sent = 0;
      for (let c = 0; c < sockets.length; c++) {
        const socket = sockets[c]!;
        if (socket.readyState !== WebSocket.OPEN) continue;
        for (let k = 0; k < config.subsPerConnection; k++) {
          const runId = config.jobIds[jobOf(c, k)]!;
          if (config.peer === 'raw') socket.send(runId);
          else socket.send(JSON.stringify({ id: String(k), type: 'subscribe', payload: { query: SUBSCRIPTION, variables: { runId } } }));
          sent++;
        }
        // At most ~1,000 subscribes in flight, so the server sees a steady stream, not the whole slice at once.
        if (sent >= 1000) await waiter.until(() => live + ended >= sent - 1000, Math.max(0, deadline - Date.now()));
      }
      const ok = await waiter.until(() => live + ended >= counts.length, Math.max(0, deadline - Date.now()));
      return reply({ ok: ok && ended === 0 });
    }
    case 'reset':
      counts.fill(0);
      received = 0;
      return reply();
    case 'await': {
      const expectedOf = (sub: number) => command.expectedPerJob[jobOf(Math.floor(sub / config.subsPerConnection), sub % config.subsPerConnection)]!;
      let expected = 0;
      for (let s = 0; s < counts.length; s++) expected += expectedOf(s);
      // Wait while events keep coming: done when all arrived, or nothing arrived for quietMs, or at timeoutMs.
      const deadline = Date.now() + command.timeoutMs;
      for (let before = -1; received < expected && received !== before && Date.now() < deadline; ) {
        before = received;
        await waiter.until(() => received >= expected, Math.min(command.quietMs, Math.max(0, deadline - Date.now())));
      }
      let subsShort = 0;
      let subsOver = 0;
      let connectionsNotAll = 0;
      for (let c = 0; c < config.connections; c++) {
        let all = true;
        for (let k = 0; k < config.subsPerConnection; k++) {
          const s = c * config.subsPerConnection + k;
          const want = expectedOf(s);
          if (counts[s]! < want) subsShort++;
          if (counts[s]! > want) subsOver++;
          if (counts[s] !== want) all = false;
        }
        if (!all) connectionsNotAll++;
      }
      return reply({ ok: subsShort === 0 && subsOver === 0, subsShort, subsOver, connectionsNotAll });
    }
    case 'close':
      closing = true;
      for (const socket of sockets) socket?.terminate();
      reply();
      process.exit(0);
  }
}

let queue = Promise.resolve();
process.on('message', (command: Command) => {
  queue = queue.then(() => handle(command)).catch((error: unknown) => {
    note(String(error instanceof Error ? error.stack : error));
    process.send!({ ok: false, open, live, subsShort: 0, subsOver: 0, connectionsNotAll: 0, received, ended, closed, errors: errors.splice(0) } satisfies Reply);
  });
});
process.on('disconnect', () => process.exit(0)); // the parent is gone
