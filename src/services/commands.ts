/**
 * Training commands on behalf of a viewer: send (people with jobs:control),
 * receive (the trainer, on `trainingCommands`), answer, and read back.
 *
 * A run's commands live in the topic log `commands:<runId>`: its state holds
 * the newest commands with their states, its events are the deliveries (one
 * per command, offset = the command's seq). A trainer that subscribes gets
 * every still-PENDING, unexpired command in order, then new ones live —
 * delivery is at least once until answered or expired (a trainer that
 * reconnects without answering gets the command again).
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
  type TrainingCommandKind,
} from '../domain/commands.js';
import { conflict, DomainError, notFound } from '../domain/errors.js';
import { isTerminal, type JobRecord } from '../domain/job.js';
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

const missingCommand = (id: string) => new DomainError('NOT_FOUND', `no training command with id ${JSON.stringify(id)}`);

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
   * Sends a command to a run's trainer; it is PENDING until answered or `ttlSeconds` (default 60) pass.
   * @throws DomainError NOT_FOUND (no such run in the viewer's tenant), CONFLICT (run finished), BAD_USER_INPUT (ttl, args).
   */
  async send(viewer: Viewer, runId: string, command: TrainingCommandKind, args: unknown, ttlSeconds: number | null): Promise<CommandView> {
    const job = await this.visibleJob(viewer, runId);
    if (!job) throw notFound(runId);
    if (isTerminal(job.status)) throw conflict(`run ${runId} is already ${job.status}`);
    let record: CommandRecord | null = null;
    await this.backend.logs.append<RunCommandsState, CommandDelivery>(commandsTopic(runId), (head) => {
      const seq = head.offset + 1;
      const added = addCommand(head.state, { runId, seq, command, args, senderId: viewer.userId, ttlSeconds }, this.clock());
      record = added.record;
      return { state: added.state, events: [{ ...added.record, offset: seq }] };
    });
    return this.view(record!);
  }

  /** A command by id, with its current state; null when unknown in the viewer's tenant (or forgotten). */
  async get(viewer: Viewer, id: string): Promise<CommandView | null> {
    const parsed = parseCommandId(id);
    if (!parsed || !(await this.visibleJob(viewer, parsed.runId))) return null;
    const head = await this.backend.logs.head<RunCommandsState>(commandsTopic(parsed.runId));
    const record = head?.state?.commands.find((c) => c.id === id);
    return record ? this.view(record) : null;
  }

  /** The run's kept commands, newest first. @throws DomainError NOT_FOUND (no such run in the viewer's tenant). */
  async list(viewer: Viewer, runId: string): Promise<CommandView[]> {
    if (!(await this.visibleJob(viewer, runId))) throw notFound(runId);
    const head = await this.backend.logs.head<RunCommandsState>(commandsTopic(runId));
    return (head?.state?.commands ?? []).map((c) => this.view(c)).reverse();
  }

  /**
   * The trainer's answer: accepted → ACKNOWLEDGED, else REJECTED.
   * @throws DomainError NOT_FOUND (no such command in the viewer's tenant), CONFLICT (already answered or expired), BAD_USER_INPUT.
   */
  async acknowledge(viewer: Viewer, id: string, accepted: boolean, message: string | null): Promise<CommandView> {
    const parsed = parseCommandId(id);
    if (!parsed || !(await this.visibleJob(viewer, parsed.runId))) throw missingCommand(id);
    let record: CommandRecord | null = null;
    await this.backend.logs.append<RunCommandsState, CommandDelivery>(commandsTopic(parsed.runId), (head) => {
      const answered = answerCommand(head.state, id, accepted, message, this.clock());
      record = answered.record;
      return { state: answered.state, events: [] };
    });
    return this.view(record!);
  }

  /**
   * Opens a run's command stream for its trainer: every PENDING, unexpired
   * command in send order, then new ones live. Open until the client leaves.
   * @throws DomainError NOT_FOUND (no such run in the viewer's tenant).
   */
  async openStream(viewer: Viewer, runId: string, transport: StreamTransport = {}): Promise<LiveStream<CommandDelivery>> {
    return this.infra.kinds.open(this.kind, {
      topic: commandsTopic(runId),
      // Expired commands are not delivered, live or from the head.
      accept: (c) => isDeliverable(c, this.clock()),
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
    });
  }

  /** Shutdown: ends open command streams with SERVICE_UNAVAILABLE (trainers resubscribe elsewhere; pending commands come again). */
  close(): void {
    this.streams.closeAll('server restarting: resubscribe');
  }
}
