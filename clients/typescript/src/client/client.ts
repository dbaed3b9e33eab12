/**
 * `RunwatchClient`: the typed SDK entry point. Queries and mutations go over
 * HTTP; streams over one shared graphql-ws connection (opened when the first
 * stream starts, closed when the last ends).
 */
import type { DocumentTypeDecoration } from '@graphql-typed-document-node/core';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import {
  ActivityNowDocument,
  CancelJobDocument,
  CreateJobDocument,
  CreateJobViewTokenDocument,
  GetJobDocument,
  ListJobsDocument,
  WatchActivityDocument,
  type ActivityNowQuery,
  type ActivityScope,
  type CreateBatchJobInput,
  type CreateJobViewTokenMutation,
  type JobFieldsFragment,
  type JobKind,
  type JobStatus,
  type ListJobsQuery,
  type WatchActivitySubscription,
} from './generated/graphql.js';
import { RunwatchError } from './errors.js';
import { graphqlEndpoint, httpRequest, resolveToken, type TokenSource } from './http.js';
import { watchJobStream, type ProgressEvent, type WatchOptions } from './watch.js';
import { waitForJob, type WaitOptions } from './wait.js';

/** A job as the SDK returns it: ids, counts, `percent` (0..100), `rate` (items per second), `etaSeconds`, times as ISO strings. */
export type Job = JobFieldsFragment;

/** Options of {@link RunwatchClient}. */
export interface RunwatchClientOptions {
  /** Server URL: `http://127.0.0.1:4000` or its `/graphql` endpoint. Default: the RUNWATCH_URL environment variable. */
  url?: string | undefined;
  /**
   * Bearer token, or a function returning a fresh one (then an expired token, close 4403, is retried with a new one).
   * Default: the RUNWATCH_TOKEN environment variable.
   */
  token?: TokenSource | undefined;
  /** fetch implementation for HTTP calls (default: global fetch); handy for proxies and for counting requests. */
  fetch?: typeof fetch | undefined;
  /** Per-request HTTP timeout in milliseconds (default 15000). */
  requestTimeoutMs?: number | undefined;
}

/** A page of {@link RunwatchClient.listJobs}. */
export type JobPage = ListJobsQuery['batchJobs'];

/** Account activity now: active jobs with resources, totals and the budget. */
export type ActivitySnapshot = ActivityNowQuery['activity'];

/** One event of {@link RunwatchClient.watchActivity}: ActivityUpdate, BillingUpdate, ActivityHint or ContextMismatch (see `__typename`). */
export type ActivityEvent = WatchActivitySubscription['activity'];

/** A read-only share token for one job, from {@link RunwatchClient.createJobViewToken}. */
export type JobViewToken = CreateJobViewTokenMutation['createJobViewToken'];

/** Longest wait for a WebSocket's opening handshake and for graphql-ws's connection_ack, in milliseconds. */
const HANDSHAKE_TIMEOUT_MS = 10_000;

/**
 * `ws` with a handshake timeout: a host that drops packets fails the attempt after {@link HANDSHAKE_TIMEOUT_MS}
 * instead of the operating system's TCP timeout (minutes), so watchJob's retry and connect timeout stay in charge.
 */
class BoundedWebSocket extends WebSocket {
  constructor(address: string | URL, protocols?: string | string[]) {
    super(address, protocols, { handshakeTimeout: HANDSHAKE_TIMEOUT_MS });
  }
}

/** An environment variable, where there is a `process` (Node); undefined in a browser. */
const env = (name: string): string | undefined => (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env?.[name] || undefined;

export class RunwatchClient {
  /** The `/graphql` HTTP endpoint. */
  readonly endpoint: string;
  /** The token (or token provider) in use: `options.token`, else RUNWATCH_TOKEN. */
  private readonly token: TokenSource;
  private ws: Client | null = null;

  /**
   * A client of one server. Nothing is sent until the first call.
   * @throws RunwatchError BAD_USER_INPUT when there is no URL (neither `url` nor RUNWATCH_URL) or it is not a URL,
   *   or when there is no token (neither `token` nor RUNWATCH_TOKEN).
   */
  constructor(readonly options: RunwatchClientOptions = {}) {
    const url = options.url ?? env('RUNWATCH_URL');
    if (!url) throw new RunwatchError('BAD_USER_INPUT', 'no server URL: pass { url } (e.g. http://127.0.0.1:4000) or set RUNWATCH_URL');
    try {
      this.endpoint = graphqlEndpoint(url);
    } catch {
      throw new RunwatchError('BAD_USER_INPUT', `not a server URL: ${JSON.stringify(url)}${options.url === undefined ? ' (from RUNWATCH_URL)' : ''}; expected e.g. http://127.0.0.1:4000`);
    }
    const token = options.token ?? env('RUNWATCH_TOKEN');
    if (!token) throw new RunwatchError('BAD_USER_INPUT', 'no token: pass { token } or set RUNWATCH_TOKEN');
    this.token = token;
  }

  /** @internal Runs one typed operation over HTTP. @throws RunwatchError */
  request<TResult, TVariables>(document: DocumentTypeDecoration<TResult, TVariables> & { toString(): string }, variables: TVariables): Promise<TResult> {
    return httpRequest({ endpoint: this.endpoint, token: this.token, fetch: this.options.fetch, timeoutMs: this.options.requestTimeoutMs }, document, variables);
  }

  /** The shared graphql-ws client; it never retries by itself (watchJob resubscribes with the newest cursor instead). */
  private socket(): Client {
    this.ws ??= createClient({
      url: this.endpoint.replace(/^http/, 'ws'),
      webSocketImpl: BoundedWebSocket,
      // A server that accepts the socket but never acknowledges: fail the attempt (and retry) instead of waiting forever.
      connectionAckWaitTimeout: HANDSHAKE_TIMEOUT_MS,
      lazy: true,
      lazyCloseTimeout: 0,
      retryAttempts: 0,
      connectionParams: async () => ({ authorization: `Bearer ${await resolveToken(this.token)}` }),
    });
    return this.ws;
  }

  /**
   * A job by id.
   * @throws RunwatchError NOT_FOUND (`no job with id "<id>"`, the server's wording) when there is none in the token's
   *   tenant (another tenant's job looks exactly the same), as `watchJob` and the Python client's `get_job` do;
   *   FORBIDDEN, UNAUTHENTICATED, NETWORK.
   */
  async getJob(id: string): Promise<Job> {
    const job = (await this.request(GetJobDocument, { id })).batchJob;
    if (!job) throw new RunwatchError('NOT_FOUND', `no job with id ${JSON.stringify(id)}`);
    return job;
  }

  /**
   * A page of the tenant's jobs, newest first.
   * @param opts.first page size 0..100 (default 20); `after`: `pageInfo.endCursor` of the previous page.
   * @throws RunwatchError BAD_USER_INPUT, FORBIDDEN
   */
  async listJobs(opts: { first?: number | undefined; after?: string | undefined; status?: JobStatus[] | undefined; kind?: JobKind[] | undefined } = {}): Promise<JobPage> {
    return (await this.request(ListJobsDocument, opts)).batchJobs;
  }

  /** Creates a QUEUED job. @throws RunwatchError BAD_USER_INPUT, CONFLICT (idempotency key reused with other input), FORBIDDEN */
  async createJob(input: CreateBatchJobInput): Promise<Job> {
    return (await this.request(CreateJobDocument, { input })).createBatchJob;
  }

  /** Cancels a job (needs `jobs:control`). @throws RunwatchError NOT_FOUND, CONFLICT, FORBIDDEN */
  async cancelJob(id: string, reason?: string): Promise<Job> {
    return (await this.request(CancelJobDocument, { id, reason })).cancelBatchJob;
  }

  /**
   * Mints a read-only token for one job (a share link), valid `ttlSeconds` (1..604800, default 3600).
   * @throws RunwatchError NOT_FOUND, BAD_USER_INPUT, FORBIDDEN
   */
  async createJobViewToken(jobId: string, ttlSeconds?: number): Promise<JobViewToken> {
    return (await this.request(CreateJobViewTokenDocument, { jobId, ttlSeconds })).createJobViewToken;
  }

  /**
   * A job's events as an async iterator: a SNAPSHOT (or, with `after`, the events after that cursor),
   * then every event in order, ending after the final one. Reconnects with backoff on server restarts
   * (1012), slow-consumer drops (4008), network loss and, with a token provider, expiry (4403), resuming
   * from the last cursor seen, so the loop sees every event exactly once.
   * @throws RunwatchError NOT_FOUND, FORBIDDEN, BAD_USER_INPUT, UNAUTHENTICATED (4401 is never retried), UNAVAILABLE.
   */
  watchJob(id: string, opts: WatchOptions = {}): AsyncGenerator<ProgressEvent, void, undefined> {
    return watchJobStream(this.socket(), id, { ...opts, canRefreshToken: typeof this.token === 'function' });
  }

  /**
   * Waits until a job finishes. Resolves with the COMPLETED job; calls `onProgress` with the job after every event.
   * @throws JobFailedError (FAILED), JobCancelledError (CANCELLED), WaitTimeoutError (not finished within `timeoutMs`),
   *   or a RunwatchError from {@link watchJob}.
   */
  waitForCompletion(id: string, opts: WaitOptions = {}): Promise<Job> {
    return waitForJob((signal) => this.watchJob(id, { ...opts, signal }), id, opts);
  }

  /**
   * Account activity now for a scope (USER, INSTITUTE or ENVIRONMENT, default ENVIRONMENT).
   * @throws RunwatchError FORBIDDEN (needs `activity:read`)
   */
  async getActivity(scope: ActivityScope = 'ENVIRONMENT'): Promise<ActivitySnapshot> {
    return (await this.request(ActivityNowDocument, { scope })).activity;
  }

  /**
   * Live account activity: an ActivityUpdate snapshot first, then ActivityUpdates when the set of active jobs
   * or their resources change, BillingUpdates and ActivityHints. Ends on ContextMismatch or when the loop
   * breaks. No resume: activity is state, so after a disconnect call it again for a fresh snapshot.
   * @throws RunwatchError FORBIDDEN (needs `activity:read`), UNAUTHENTICATED; Error when the connection drops.
   */
  async *watchActivity(scope: ActivityScope = 'ENVIRONMENT', environmentId?: string): AsyncGenerator<ActivityEvent, void, undefined> {
    const iterator = this.socket().iterate<WatchActivitySubscription>({ query: WatchActivityDocument.toString(), variables: { scope, environmentId } });
    try {
      for await (const result of iterator) {
        if (result.errors?.length) throw new RunwatchError(String(result.errors[0]!.extensions?.code ?? 'ERROR'), result.errors[0]!.message);
        if (result.data) yield result.data.activity;
      }
    } finally {
      await iterator.return?.();
    }
  }

  /** Closes the WebSocket connection (running watches end). HTTP calls keep working. */
  async close(): Promise<void> {
    const ws = this.ws;
    this.ws = null;
    await ws?.dispose();
  }
}
