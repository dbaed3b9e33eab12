/**
 * Clients as users have them: HTTP POST, graphql-ws over a real WebSocket,
 * and SSE over fetch. Every wait has a timeout whose message says what was
 * awaited and what arrived.
 */
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';

/** A GraphQL response. */
export interface GqlResult<T = any> {
  data?: T;
  errors?: { message: string; extensions?: Record<string, any>; path?: string[] }[];
}

/** POSTs an operation; returns the HTTP status and body. */
export async function gqlHttp<T = any>(
  url: string,
  tokenOrNull: string | null,
  query: string,
  variables?: Record<string, unknown>,
): Promise<{ status: number; body: GqlResult<T> }> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (tokenOrNull) headers.authorization = `Bearer ${tokenOrNull}`;
  const res = await fetch(url, { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
  return { status: res.status, body: (await res.json()) as GqlResult<T> };
}

/** POSTs an operation and returns `data`, failing on any error. */
export async function gql<T = any>(url: string, tok: string, query: string, variables?: Record<string, unknown>): Promise<T> {
  const { body } = await gqlHttp<T>(url, tok, query, variables);
  if (body.errors?.length) throw new Error(`GraphQL errors: ${JSON.stringify(body.errors)}`);
  return body.data as T;
}

/** The code of the first error. */
export const errorCode = (r: GqlResult) => r.errors?.[0]?.extensions?.code as string | undefined;

/** A deferred promise. */
export function deferred<T = void>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Rejects after `ms` with a message naming what was awaited (a function is asked at the timeout, for the latest state). */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string | (() => string)): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${typeof what === 'function' ? what() : what}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

const wsClients: Client[] = [];
/** Disposes every client made by {@link wsClient}; run after each test file by test/helpers/per-file-cleanup.ts. */
export async function disposeWsClients(): Promise<void> {
  await Promise.all(wsClients.splice(0).map((c) => c.dispose()));
}

/** A graphql-ws client with no retries (failures show at once). `http://` URLs become `ws://`. */
export function wsClient(url: string, tok: string | null, opts: { onClose?: (code: number, reason: string) => void } = {}): Client {
  const client = createClient({
    url: url.replace(/^http/, 'ws'),
    webSocketImpl: WebSocket,
    retryAttempts: 0,
    lazy: true,
    connectionParams: tok ? { authorization: `Bearer ${tok}` } : {},
    on: {
      closed: (event) => {
        const e = event as { code: number; reason: string };
        opts.onClose?.(e.code, String(e.reason));
      },
    },
  });
  wsClients.push(client);
  return client;
}

/**
 * The events of one subscription, collected as they arrive. `waitFor` resolves
 * once a predicate over everything received holds; `done` when the server completes it.
 */
export class Collector<T = any> {
  readonly items: T[] = [];
  errors: unknown[] = [];
  completed = false;
  private waiters: { check: () => boolean; resolve: () => void }[] = [];
  private readonly finished = deferred<void>();
  dispose: () => void = () => {};

  push(item: T) {
    this.items.push(item);
    this.poke();
  }
  fail(error: unknown) {
    this.errors.push(error);
    this.completed = true;
    this.finished.resolve();
    this.poke();
  }
  complete() {
    this.completed = true;
    this.finished.resolve();
    this.poke();
  }
  private poke() {
    this.waiters = this.waiters.filter((w) => {
      if (!w.check()) return true;
      w.resolve();
      return false;
    });
  }
  /** Resolves when `check(items)` holds. */
  waitFor(check: (items: T[]) => boolean, what: string, ms = 10_000): Promise<T[]> {
    if (check(this.items)) return Promise.resolve(this.items);
    const d = deferred<void>();
    this.waiters.push({ check: () => check(this.items), resolve: d.resolve });
    const state = () => `${what} (received ${this.items.length}: ${JSON.stringify(this.items.slice(-3)).slice(0, 600)}; errors ${JSON.stringify(this.errors).slice(0, 300)})`;
    return withTimeout(d.promise, ms, state).then(() => this.items);
  }
  /** Resolves when `n` items arrived. */
  waitForCount(n: number, ms = 10_000) {
    return this.waitFor((items) => items.length >= n, `${n} events`, ms);
  }
  /** Resolves when the server completed (or errored) the subscription. */
  done(ms = 10_000): Promise<T[]> {
    return withTimeout(this.finished.promise, ms, () => `completion (received ${this.items.length}; errors ${JSON.stringify(this.errors).slice(0, 300)})`).then(
      () => this.items,
    );
  }
}

/** Subscribes over graphql-ws, collecting `data[field]` of each result. */
export function subscribeWs<T = any>(client: Client, query: string, variables: Record<string, unknown>, field: string): Collector<T> {
  const c = new Collector<T>();
  c.dispose = client.subscribe<any>(
    { query, variables },
    {
      next: (r) => {
        if (r.errors?.length) c.fail(r.errors);
        else c.push(r.data[field]);
      },
      error: (e) => c.fail(e),
      complete: () => c.complete(),
    },
  );
  return c;
}

/** Subscribes over SSE (`Accept: text/event-stream`), collecting `data[field]`. `abort()` drops the stream. */
export function subscribeSse<T = any>(
  url: string,
  tok: string,
  query: string,
  variables: Record<string, unknown>,
  field: string,
): Collector<T> & { abort: () => void } {
  const c = new Collector<T>() as Collector<T> & { abort: () => void };
  const controller = new AbortController();
  c.abort = () => controller.abort();
  c.dispose = c.abort;
  (async () => {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'text/event-stream', authorization: `Bearer ${tok}` },
      body: JSON.stringify({ query, variables }),
      signal: controller.signal,
    });
    if (!res.ok || !res.body) throw new Error(`SSE request failed: HTTP ${res.status}`);
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true });
      let sep;
      while ((sep = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, sep);
        buffer = buffer.slice(sep + 2);
        const eventLine = block.split('\n').find((l) => l.startsWith('event:'));
        const data = block
          .split('\n')
          .filter((l) => l.startsWith('data:'))
          .map((l) => l.slice(5).trim())
          .join('\n');
        if (eventLine?.includes('complete')) {
          c.complete();
          return;
        }
        if (!data) continue;
        const r = JSON.parse(data);
        if (r.errors?.length) c.fail(r.errors);
        else c.push(r.data[field]);
      }
    }
    c.complete();
  })().catch((error) => {
    if (!controller.signal.aborted) c.fail(error);
  });
  return c;
}
