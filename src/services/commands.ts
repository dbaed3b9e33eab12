/**
 * Job commands on behalf of a viewer: send (people with jobs:control),
 * receive (the worker, on `jobCommands`, or a trainer on `trainingCommands`),
 * answer, and read back. Training commands are the same commands seen through
 * their training names (domain/commands.ts `trainingKindOf`): one mechanism,
 * two families of GraphQL names.
 *
 * A job's commands live in the topic log `commands:<jobId>`: its state holds
 * the newest commands with their states, its events are the deliveries (one
 * per command, offset = the command's seq). A worker that subscribes gets
 * every still-PENDING, unexpired command in order, then new ones live —
 * delivery is at least once until answered or expired (a worker that
 * reconnects without answering gets the command again). Expiry is computed
 * when a command is read (no timer per command, no sweep).
 */
import { canSeeJob, type Viewer } from '../auth/tokens.js';
import type { Backend } from '../backends/types.js';
import {
  addCommand,
  answerCommand,
  commandState,
  isDeliverable,
  parseCommandId,
  type CommandRecord,
  type CommandState,
  type RunCommandsState,
  type JobCommandKind,
  trainingKindOf,
} from '../domain/commands.js';
import { conflict, DomainError, notFound } from '../domain/errors.js';
import { finishJob, isTerminal, setPaused, type JobRecord } from '../domain/job.js';
import { COMMANDS_PREFIX, commandsTopic } from '../domain/topics.js';
import type { Infra } from '../delivery/job-writer.js';
import type { LiveStream, StreamTransport } from '../delivery/live-stream.js';
import type { StreamKind } from '../delivery/stream-kinds.js';
import { StreamRegistry } from '../delivery/topic-stream.js';
import type { LogHead } from '../backends/topic-log.js';

/** A command as published to trainers: the record with its seq as the stream offset. */
export type CommandDelivery = CommandRecord & { offset: number };

/** A command as clients see it: the record with its state at read time. */
export type CommandView = Omit<CommandRecord, 'state'> & { state: CommandState };

const missingCommand = (id: string) => new DomainError('NOT_FOUND', `no command with id ${JSON.stringify(id)}`);

/**
 * Which names a caller uses: `job` (sendJobCommand, jobCommands: every command) or `training`
 * (sendTrainingCommand, trainingCommands: only commands that have a training name, see `trainingKindOf`).
 */
export type CommandFamily = 'job' | 'training';

const inFamily = (c: Pick<CommandRecord, 'command' | 'name'>, family: CommandFamily) => family === 'job' || trainingKindOf(c) !== null;

/** How a command stream treats its events: one object for every stream (no per-stream closures), nothing conflates or ends it. */
const COMMAND_EVENTS = {
  offsetOf(c: CommandDelivery): number {
    return c.offset;
  },
  isConflatable(): boolean {
    return false;
  },
  isFinal(): boolean {
    return false;
  },
};

/** A run's commands log head as a command stream starts from it (null: no command yet). */
type CommandsHead = LogHead<RunCommandsState> | null;

export class CommandService {
  private readonly streams = new StreamRegistry<CommandDelivery>();
  private readonly backend: Backend;
  private readonly clock: () => number;
  /**
   * The `commands:` stream kind. No cursors: a stream (and the reconnect catch-up) starts from the commands
   * still pending, in send order; after a reconnect, subscribers drop the ones they already got (by offset =
   * seq) and receive those sent while the connection was down.
   */
  private readonly kind: StreamKind<CommandDelivery, CommandsHead>;

  constructor(private readonly infra: Infra) {
    this.backend = infra.backend;
    this.clock = infra.clock;
    this.kind = infra.kinds.register<CommandDelivery, CommandsHead>({
      prefix: COMMANDS_PREFIX,
      events: COMMAND_EVENTS,
      readHead: (topic) => this.backend.logs.head<RunCommandsState>(topic),
      freshStart: (_topic, head) => {
        const now = this.clock();
        return (head?.state?.commands ?? []).filter((c) => isDeliverable(c, now)).map((c) => ({ ...c, offset: c.seq }));
      },
    });
  }

  /** The run's job record when the viewer may see it, else null. */
  private async visibleJob(viewer: Viewer, runId: string): Promise<JobRecord | null> {
    const job = await this.backend.store.get(runId);
    return job && canSeeJob(viewer, job) ? job : null;
  }

  private view(record: CommandRecord): CommandView {
    return { ...record, state: commandState(record, this.clock()) };
  }

  /**
   * Sends a command to a job's worker; it is PENDING until answered or `ttlSeconds` (default 60) pass.
   * @param what the kind, and the name of a CUSTOM command (training kinds: map them with `fromTrainingKind`).
   * @throws DomainError NOT_FOUND (no such job in the viewer's tenant), CONFLICT (job finished),
   *   BAD_USER_INPUT (CUSTOM without a name, ttl, args); nothing is stored on error.
   */
  async send(
    viewer: Viewer,
    runId: string,
    what: { command: JobCommandKind; name?: string | null },
    args: unknown,
    ttlSeconds: number | null,
  ): Promise<CommandView> {
    const job = await this.visibleJob(viewer, runId);
    if (!job) throw notFound(runId);
    if (isTerminal(job.status)) throw conflict(`run ${runId} is already ${job.status}`);
    const committed = await this.backend.logs.append<RunCommandsState, CommandDelivery, CommandRecord>(commandsTopic(runId), (head) => {
      const seq = head.offset + 1;
      const added = addCommand(head.state, { runId, seq, ...what, args, senderId: viewer.userId, ttlSeconds }, this.clock());
      return { state: added.state, events: [{ ...added.record, offset: seq }], value: added.record };
    });
    return this.view(committed!.value!);
  }

  /** A command by id, with its current state; null when unknown in the viewer's tenant (or forgotten, or not of `family`). */
  async get(viewer: Viewer, id: string, family: CommandFamily = 'job'): Promise<CommandView | null> {
    const parsed = parseCommandId(id);
    if (!parsed || !(await this.visibleJob(viewer, parsed.runId))) return null;
    const head = await this.backend.logs.head<RunCommandsState>(commandsTopic(parsed.runId));
    const record = head?.state?.commands.find((c) => c.id === id);
    return record && inFamily(record, family) ? this.view(record) : null;
  }

  /** The job's kept commands of `family`, newest first. @throws DomainError NOT_FOUND (no such job in the viewer's tenant). */
  async list(viewer: Viewer, runId: string, family: CommandFamily = 'job'): Promise<CommandView[]> {
    if (!(await this.visibleJob(viewer, runId))) throw notFound(runId);
    const head = await this.backend.logs.head<RunCommandsState>(commandsTopic(runId));
    return (head?.state?.commands ?? [])
      .filter((c) => inFamily(c, family))
      .map((c) => this.view(c))
      .reverse();
  }

  /**
   * The worker's answer: accepted → ACKNOWLEDGED, else REJECTED.
   *
   * Through the `job` family an accepted command also takes effect on the job, so a worker needs no
   * `jobs:control` to report it: CANCEL finishes the job CANCELLED (the worker acknowledges once it has
   * stopped), PAUSE pauses a RUNNING job and RESUME resumes a PAUSED one; a job already in that state (or
   * finished) is left as it is. The `training` family keeps its meaning (the trainer reports its status
   * itself with publishTrainingEvents).
   * @throws DomainError NOT_FOUND (no such command of `family` in the viewer's tenant), CONFLICT (already answered or expired), BAD_USER_INPUT.
   */
  async acknowledge(viewer: Viewer, id: string, accepted: boolean, message: string | null, family: CommandFamily = 'job'): Promise<CommandView> {
    const parsed = parseCommandId(id);
    if (!parsed || !(await this.visibleJob(viewer, parsed.runId))) throw missingCommand(id);
    const committed = await this.backend.logs.append<RunCommandsState, CommandDelivery, CommandRecord>(commandsTopic(parsed.runId), (head) => {
      const known = head.state?.commands.find((c) => c.id === id);
      if (known && !inFamily(known, family)) throw missingCommand(id);
      const answered = answerCommand(head.state, id, accepted, message, this.clock());
      return { state: answered.state, events: [], value: answered.record };
    });
    const answered = committed!.value!;
    if (accepted && family === 'job') await this.takeEffect(viewer, answered, message);
    return this.view(answered);
  }

  /** What an accepted job command does to its job (see {@link acknowledge}); a job already there or finished is left alone. */
  private async takeEffect(viewer: Viewer, c: CommandRecord, message: string | null): Promise<void> {
    try {
      if (c.command !== 'CANCEL' && c.command !== 'PAUSE' && c.command !== 'RESUME') return;
      await this.infra.writer.change(c.runId, (job, nowMs) => {
        if (!canSeeJob(viewer, job)) throw notFound(c.runId);
        return c.command === 'CANCEL'
          ? finishJob(job, 'CANCELLED', message ?? `cancelled by command ${c.id}`, nowMs)
          : setPaused(job, c.command === 'PAUSE', message, nowMs);
      });
    } catch (error) {
      // CONFLICT: finished already, or a PAUSE of a job that has not started; the answer stands.
      if (!(error instanceof DomainError && error.code === 'CONFLICT')) throw error;
    }
  }

  /**
   * Opens a job's command stream for its worker: every PENDING, unexpired
   * command of `family` in send order, then new ones live. Open until the client leaves.
   * @throws DomainError NOT_FOUND (no such job in the viewer's tenant).
   */
  async openStream(viewer: Viewer, runId: string, transport: StreamTransport = {}, family: CommandFamily = 'job'): Promise<LiveStream<CommandDelivery>> {
    return this.infra.kinds.open(this.kind, {
      topic: commandsTopic(runId),
      // Expired commands are not delivered, live or from the head; nor those the family has no name for.
      accept: (c) => isDeliverable(c, this.clock()) && inFamily(c, family),
      // Method syntax: tsx names arrows in object literals with defineProperty, a dictionary per closure per stream.
      queue: {
        conflateAbove: 1000,
        maxQueued: 1000,
        onOverflow() {
          transport.dropSlowConsumer?.();
        },
      },
      registry: this.streams,
      readHead: async () => {
        if (!(await this.visibleJob(viewer, runId))) throw notFound(runId);
        return this.backend.logs.head<RunCommandsState>(commandsTopic(runId));
      },
      freshStart: (head) => {
        const now = this.clock();
        return (head?.state?.commands ?? []).filter((c) => isDeliverable(c, now) && inFamily(c, family)).map((c) => ({ ...c, offset: c.seq }));
      },
    });
  }

  /** Shutdown: ends open command streams with SERVICE_UNAVAILABLE (workers resubscribe elsewhere; pending commands come again). */
  close(): void {
    this.streams.closeAll('server restarting: resubscribe');
  }
}
