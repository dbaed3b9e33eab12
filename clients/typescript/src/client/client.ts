/**
 * `RunwatchClient`: the typed SDK entry point. Queries and mutations go over
 * HTTP; streams over one shared graphql-ws connection (opened when the first
 * stream starts, closed when the last ends).
 */
import type { DocumentTypeDecoration } from '@graphql-typed-document-node/core';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import {
  AcknowledgeJobCommandDocument,
  ActivityNowDocument,
  CancelJobDocument,
  CreateJobDocument,
  CreateJobViewTokenDocument,
  GetJobDocument,
  GetJobOutputsDocument,
  JobCommandsDocument,
  JobUpdatesDocument,
  ListJobsDocument,
  MetricSeriesDocument,
  RecentJobCommandsDocument,
  SendJobCommandDocument,
  WatchActivityDocument,
  type ActivityNowQuery,
  type ActivityScope,
  type CreateBatchJobInput,
  type CreateJobViewTokenMutation,
  type GetJobOutputsQuery,
  type JobCommandFieldsFragment,
  type JobCommandKind,
  type JobCommandsSubscription,
  type JobFieldsFragment,
  type JobFilter,
  type JobKind,
  type JobStatus,
  type JobUpdatesSubscription,
  type ListJobsQuery,
  type MetricSeriesQuery,
  type WatchActivitySubscription,
} from './generated/graphql.js';
import { RunwatchError } from './errors.js';
import { graphqlEndpoint, httpRequest, resolveToken, type TokenSource } from './http.js';
import { resumableStream, watchJobStream, type ProgressEvent, type StreamOptions, type WatchOptions } from './watch.js';
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

/** A job with its metric summaries (`metrics`: last, count, mean, min, max per name) and `steps`. */
export type JobOutputs = NonNullable<GetJobOutputsQuery['batchJob']>;

/** A command to a job's worker (CANCEL, PAUSE, RESUME, CUSTOM) and its state (PENDING, ACKNOWLEDGED, REJECTED, EXPIRED). */
export type JobCommand = JobCommandFieldsFragment;

/** One update of the live job list ({@link RunwatchClient.jobUpdates}): SNAPSHOT, CREATED, STATUS or PROGRESS, with the job after it. */
export type JobUpdate = JobUpdatesSubscription['jobUpdates'];

/** One point of a metric's history ({@link RunwatchClient.metricSeries}): `step` (x), `value`, `timestamp`. */
export type MetricPoint = MetricSeriesQuery['metricSeries'][number];

/** Options of {@link RunwatchClient.sendJobCommand}. */
export interface SendJobCommandOptions {
  /** The CUSTOM command's name (required for CUSTOM, 1..100 characters). */
  name?: string | undefined;
  /** Free-form arguments for the worker, at most 16 KiB of JSON. */
  args?: unknown;
  /** Seconds until a PENDING command expires (1..3600, default 60). */
  ttlSeconds?: number | undefined;
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
   * A job with what it produced: its metric summaries and steps (besides everything {@link getJob} gives).
   * @throws RunwatchError NOT_FOUND (`no job with id "<id>"`), FORBIDDEN, UNAUTHENTICATED, NETWORK.
   */
  async getJobOutputs(id: string): Promise<JobOutputs> {
    const job = (await this.request(GetJobOutputsDocument, { id })).batchJob;
    if (!job) throw new RunwatchError('NOT_FOUND', `no job with id ${JSON.stringify(id)}`);
    return job;
  }

  /**
   * A page of the tenant's jobs, newest first.
   * @param opts.first page size 0..100 (default 20); `after`: `pageInfo.endCursor` of the previous page; `tags`: only
   *   jobs carrying every one of these tags; `parentId`: only that job's children (a job group).
   * @throws RunwatchError BAD_USER_INPUT, FORBIDDEN
   */
  async listJobs(
    opts: {
      first?: number | undefined;
      after?: string | undefined;
      status?: JobStatus[] | undefined;
      kind?: JobKind[] | undefined;
      tags?: string[] | undefined;
      parentId?: string | undefined;
    } = {},
  ): Promise<JobPage> {
    return (await this.request(ListJobsDocument, opts)).batchJobs;
  }

  /**
   * Creates a QUEUED job. `parentId` makes it a child of that job (a group, at most 3 levels), `tags` (at most 20,
   * 1..64 characters) let lists filter it, `heartbeatSeconds` is how long it may stay silent while RUNNING before it
   * counts as stalled (0: never; default the server's RUNWATCH_STALL_SECONDS, 300).
   * @throws RunwatchError BAD_USER_INPUT, NOT_FOUND (no such parent), CONFLICT (idempotency key reused with other
   *   input; parent finished), FORBIDDEN
   */
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
   * then every event in order, ending after the final one. `items: true` adds ITEM_RESULTS events (`event.items`),
   * `logs: true` LOG events (`event.logs`). Reconnects with backoff on server restarts
   * (1012), slow-consumer drops (4008), network loss and, with a token provider, expiry (4403), resuming
   * from the last cursor seen, so the loop sees every event exactly once.
   * @throws RunwatchError NOT_FOUND, FORBIDDEN, BAD_USER_INPUT, UNAUTHENTICATED (4401 is never retried), UNAVAILABLE.
   */
  watchJob(id: string, opts: WatchOptions = {}): AsyncGenerator<ProgressEvent, void, undefined> {
    return watchJobStream(this.socket(), id, { ...opts, canRefreshToken: typeof this.token === 'function' });
  }

  /**
   * The tenant's live job list as an async iterator: first a SNAPSHOT per matching job (the newest 100), then an
   * update per matching job created (CREATED), per status change (STATUS, with `previousStatus`) and per progress
   * (PROGRESS, conflated per job). Reconnects like {@link watchJob} and resumes from the last cursor seen, so the
   * loop misses nothing and sees nothing twice (or gets a fresh snapshot when the server's history no longer
   * covers the gap). Never ends by itself: break the loop or abort `opts.signal`. `filter`: `status`, `kind`,
   * `tags` (every one), `parentId`.
   * @throws RunwatchError BAD_USER_INPUT (not a cursor), FORBIDDEN (needs `jobs:read`), UNAUTHENTICATED, UNAVAILABLE.
   */
  jobUpdates(filter: JobFilter = {}, opts: StreamOptions = {}): AsyncGenerator<JobUpdate, void, undefined> {
    return resumableStream(
      this.socket(),
      {
        label: 'the job list',
        document: JobUpdatesDocument,
        variables: (after) => ({ filter, after }),
        pick: (data: JobUpdatesSubscription) => data.jobUpdates,
        // the SNAPSHOT updates of one stream share the list's cursor; every later update has its own
        key: (u) => (u.type === 'SNAPSHOT' ? `${u.cursor} ${u.job.id}` : u.cursor),
        cursor: (u) => u.cursor,
      },
      { ...opts, canRefreshToken: typeof this.token === 'function' },
    );
  }

  /**
   * Sends a command to a job's worker (any kind of job; needs `jobs:control`). It stays PENDING until the worker
   * answers (ACKNOWLEDGED, REJECTED) or `ttlSeconds` pass (EXPIRED). An acknowledged CANCEL cancels the job.
   * @throws RunwatchError NOT_FOUND, CONFLICT (job finished), BAD_USER_INPUT (CUSTOM without `name`, bad ttl, args
   *   over 16 KiB), FORBIDDEN
   */
  async sendJobCommand(jobId: string, command: JobCommandKind, opts: SendJobCommandOptions = {}): Promise<JobCommand> {
    return (await this.request(SendJobCommandDocument, { jobId, command, name: opts.name, args: opts.args, ttlSeconds: opts.ttlSeconds })).sendJobCommand;
  }

  /**
   * The worker answers a command: accepted → ACKNOWLEDGED, else REJECTED (with `message` saying why). An accepted
   * CANCEL cancels the job (answer once the work has stopped); PAUSE and RESUME pause or resume it. Needs `jobs:write`.
   * @throws RunwatchError NOT_FOUND, CONFLICT (already answered, or EXPIRED), BAD_USER_INPUT (message over 2000 characters)
   */
  async acknowledgeJobCommand(id: string, accepted: boolean, message?: string): Promise<JobCommand> {
    return (await this.request(AcknowledgeJobCommandDocument, { id, accepted, message })).acknowledgeJobCommand;
  }

  /** A job's newest commands (up to 200), newest first, with their states. @throws RunwatchError NOT_FOUND, FORBIDDEN */
  async recentJobCommands(jobId: string): Promise<JobCommand[]> {
    return (await this.request(RecentJobCommandsDocument, { jobId })).jobCommands;
  }

  /**
   * For the job's worker: its commands as an async iterator, every PENDING one first (in send order), then new
   * ones live, each once (a command not yet answered comes again after a reconnect; it is not yielded twice).
   * Answer each with {@link acknowledgeJobCommand}. Reconnects like {@link watchJob}. Never ends by itself: break
   * the loop or abort `opts.signal`. See `ProgressReporter.onCommand` for the callback form.
   * @throws RunwatchError NOT_FOUND, FORBIDDEN (needs `jobs:write`), UNAUTHENTICATED, UNAVAILABLE.
   */
  jobCommands(jobId: string, opts: Omit<StreamOptions, 'after'> = {}): AsyncGenerator<JobCommand, void, undefined> {
    return resumableStream(
      this.socket(),
      {
        label: `commands of job ${jobId}`,
        document: JobCommandsDocument,
        variables: () => ({ jobId }),
        pick: (data: JobCommandsSubscription) => data.jobCommands,
        key: (c) => c.id,
      },
      { ...opts, canRefreshToken: typeof this.token === 'function' },
    );
  }

  /**
   * The whole curve of one of a job's series (`loss`, `learningRate`, `validationLoss`, a gauge or item metric by
   * its name, `latencySeconds`), downsampled to at most `maxPoints` points (4..2000, default 500) that span its first
   * to its last value and keep its minimum and maximum. An unknown name gives [].
   * @throws RunwatchError NOT_FOUND, BAD_USER_INPUT (maxPoints), FORBIDDEN
   */
  async metricSeries(jobId: string, name: string, maxPoints?: number): Promise<MetricPoint[]> {
    return (await this.request(MetricSeriesDocument, { jobId, name, maxPoints })).metricSeries;
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
