/**
 * permessage-deflate on WebSockets: off by default (no extension negotiated
 * even when the client offers it), on with `perMessageDeflate: true` in
 * ServerOptions — and a subscription works either way.
 */
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { withTimeout } from '../helpers/clients.js';
import { freshInstitute, startTestServer, token } from '../helpers/servers.js';

/** Opens a graphql-transport-ws socket (the `ws` client offers permessage-deflate), subscribes, and resolves with the negotiated extensions and the first event's type. */
async function subscribeOnce(url: string, tok: string, runId: string): Promise<{ extensions: string; first: string }> {
  const socket = new WebSocket(url.replace(/^http/, 'ws'), 'graphql-transport-ws');
  try {
    return await withTimeout(
      new Promise<{ extensions: string; first: string }>((resolve, reject) => {
        socket.on('error', reject);
        socket.on('close', (code) => reject(new Error(`closed ${code}`)));
        socket.on('open', () => socket.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${tok}` } })));
        socket.on('message', (data) => {
          const msg = JSON.parse(String(data)) as { type: string; payload?: any };
          if (msg.type === 'connection_ack') {
            socket.send(JSON.stringify({ id: '1', type: 'subscribe', payload: { query: 'subscription($r: ID!) { runProgress(runId: $r) { type } }', variables: { r: runId } } }));
          } else if (msg.type === 'next') {
            resolve({ extensions: socket.extensions, first: msg.payload.data.runProgress.type });
          }
        });
      }),
      10_000,
      'the first event',
    );
  } finally {
    socket.terminate();
  }
}

async function jobOn(url: string, tok: string): Promise<string> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${tok}` },
    body: JSON.stringify({ query: 'mutation { createBatchJob(input: { name: "deflate" }) { id } }' }),
  });
  return ((await res.json()) as { data: { createBatchJob: { id: string } } }).data.createBatchJob.id;
}

describe('WebSocket permessage-deflate', () => {
  it('is not negotiated by default, even when the client offers it', async () => {
    const server = await startTestServer();
    const tok = await token({ inst: freshInstitute() });
    const { extensions, first } = await subscribeOnce(server.url, tok, await jobOn(server.url, tok));
    expect(extensions).toBe('');
    expect(first).toBe('SNAPSHOT');
  });

  it('is negotiated with perMessageDeflate: true, and events arrive compressed and intact', async () => {
    const server = await startTestServer({ perMessageDeflate: true });
    const tok = await token({ inst: freshInstitute() });
    const { extensions, first } = await subscribeOnce(server.url, tok, await jobOn(server.url, tok));
    expect(extensions).toMatch(/^permessage-deflate/);
    expect(first).toBe('SNAPSHOT');
  });
});
