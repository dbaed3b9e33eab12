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
import type { Viewer } from '../auth/tokens.js';
import { commandsTopic, type Backend } from '../backends/types.js';
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
import { isTerminal } from '../domain/job.js';
import type { LiveStream } from '../delivery/live-stream.js';
import { openTopicStream, StreamRegistry } from '../delivery/topic-stream.js';
import type { LogHead } from '../backends/topic-log.js';
import type { Clock } from './clock.js';
import type { JobService, StreamTransport } from './jobs.js';

/** The topic of a run's commands (removed with the run when retention ends; see backends/types.ts). */
export { commandsTopic } from '../backends/types.js';

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

export class CommandService {
  private readonly streams = new StreamRegistry<CommandDelivery>();

  constructor(
    private readonly backend: Backend,
    private readonly jobs: JobService,
    private readonly clock: Clock,
  ) {}

  private view(record: CommandRecord): CommandView {
    return { ...record, state: commandState(record, this.clock()) };
  }

  /**
   * Sends a command to a run's trainer; it is PENDING until answered or `ttlSeconds` (default 60) pass.
   * @throws DomainError NOT_FOUND (no such run in the viewer's tenant), CONFLICT (run finished), BAD_USER_INPUT (ttl, args).
   */
  async send(viewer: Viewer, runId: string, command: TrainingCommandKind, args: unknown, ttlSeconds: number | null): Promise<CommandView> {
    const job = await this.jobs.get(viewer, runId);
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
    if (!parsed || !(await this.jobs.get(viewer, parsed.runId))) return null;
    const head = await this.backend.logs.head<RunCommandsState>(commandsTopic(parsed.runId));
    const record = head?.state?.commands.find((c) => c.id === id);
    return record ? this.view(record) : null;
  }

  /** The run's kept commands, newest first. @throws DomainError NOT_FOUND (no such run in the viewer's tenant). */
  async list(viewer: Viewer, runId: string): Promise<CommandView[]> {
    if (!(await this.jobs.get(viewer, runId))) throw notFound(runId);
    const head = await this.backend.logs.head<RunCommandsState>(commandsTopic(runId));
    return (head?.state?.commands ?? []).map((c) => this.view(c)).reverse();
  }

  /**
   * The trainer's answer: accepted → ACKNOWLEDGED, else REJECTED.
   * @throws DomainError NOT_FOUND (no such command in the viewer's tenant), CONFLICT (already answered or expired), BAD_USER_INPUT.
   */
  async acknowledge(viewer: Viewer, id: string, accepted: boolean, message: string | null): Promise<CommandView> {
    const parsed = parseCommandId(id);
    if (!parsed || !(await this.jobs.get(viewer, parsed.runId))) throw missingCommand(id);
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
    return openTopicStream<CommandDelivery, LogHead<RunCommandsState> | null>({
      // Expired commands are not delivered, live or from the head.
      source: { bus: this.backend.bus, topic: commandsTopic(runId), accept: (c) => isDeliverable(c, this.clock()) },
      // Method syntax: tsx names arrows in object literals with defineProperty, a dictionary per closure per stream.
      policy: {
        ...COMMAND_EVENTS,
        conflateAbove: 1000,
        maxQueued: 1000,
        onOverflow() {
          transport.dropSlowConsumer?.();
        },
      },
      registry: this.streams,
      readHead: async () => {
        if (!(await this.jobs.get(viewer, runId))) throw notFound(runId);
        return this.backend.logs.head<RunCommandsState>(commandsTopic(runId));
      },
      // No cursor: a trainer always starts from the commands still pending, in send order.
      freshStart: (head) => {
        const now = this.clock();
        return (head?.state?.commands ?? []).filter((c) => isDeliverable(c, now)).map((c) => ({ ...c, offset: c.seq }));
      },
    });
  }

  /** Shutdown: ends open command streams with SERVICE_UNAVAILABLE (trainers resubscribe elsewhere; pending commands come again). */
  close(): void {
    this.streams.closeAll('server restarting: resubscribe');
  }
}
