/**
 * Webhook test helpers: a receiver on 127.0.0.1 (node:http, port 0) that
 * records every POST and answers as told, signature verification with the
 * `standardwebhooks` package, and the documents and settings the webhook tests share.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import type { Config } from '../../src/config.js';
import { Collector } from './clients.js';

export interface Received {
  headers: IncomingHttpHeaders;
  body: string;
  json: any;
}

/** A webhook receiver: records every POST; answers with the next queued status (or hangs on 0), else 200. */
export async function startReceiver() {
  const received = new Collector<Received>();
  const answers: number[] = [];
  const hung: (() => void)[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      received.push({ headers: req.headers, body, json: JSON.parse(body) });
      const status = answers.shift() ?? 200;
      if (status === 0) hung.push(() => res.destroy());
      else res.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`;
  return {
    url,
    received,
    answers,
    close: () =>
      new Promise<void>((resolve) => {
        for (const h of hung) h();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
export type Receiver = Awaited<ReturnType<typeof startReceiver>>;

/** Creates a webhook: returns `secret` and `webhook { id url events }`. */
export const CREATE_HOOK = `mutation($url: String!, $events: [WebhookEvent!]!) { createWebhook(url: $url, events: $events) { secret webhook { id url events } } }`;
/** Creates a job with `heartbeatSeconds: $hb`. */
export const CREATE_JOB = `mutation($name: String!, $hb: Int) { createBatchJob(input: { name: $name, heartbeatSeconds: $hb }) { id } }`;
/** Completes a job with the message "all done". */
export const COMPLETE = `mutation($id: ID!) { completeBatchJob(id: $id, message: "all done") { status } }`;

/** Verifies a received delivery as a receiver would (throws when the signature or timestamp is bad). */
export const verify = (secret: string, r: Received) =>
  new Webhook(secret).verify(r.body, {
    'webhook-id': String(r.headers['webhook-id']),
    'webhook-timestamp': String(r.headers['webhook-timestamp']),
    'webhook-signature': String(r.headers['webhook-signature']),
  });

/**
 * Server settings for fast webhook tests: loopback receivers allowed, retries after ~50 ms, stall sweeps every
 * 100 ms. The POST timeout stays long (15 s): the tests count attempts exactly, and on a busy machine a first POST
 * took over 2 s and was recorded as a failed attempt. A test of the timeout itself sets its own.
 */
export const FAST: Partial<Config> = { webhookAllowPrivate: true, webhookRetryBaseSeconds: 0.05, webhookTimeoutSeconds: 15, stallSweepMs: 100 };

