/**
 * Job commands: what people send to a job's worker (CANCEL, PAUSE, RESUME, or
 * a CUSTOM command with a name) and the life of each one. Pure.
 *
 * Training commands are a case of them, not a second mechanism: a training
 * command's kind maps onto a job command (STOP ≡ CANCEL, SAMPLE and
 * SAVE_CHECKPOINT are CUSTOM commands of that name; see
 * {@link fromTrainingKind} / {@link trainingKindOf}), and both are stored in
 * the same per-job command log.
 *
 * PENDING → ACKNOWLEDGED | REJECTED when the worker answers; a PENDING
 * command whose `expiresAt` has passed reads as EXPIRED (computed when read,
 * so no timer and no sweep is needed) and can no longer be delivered or
 * answered. The idea of a command with a time to live that a worker must
 * acknowledge follows Temporal's signals and heartbeat timeouts.
 */
import { badInput, conflict, DomainError } from './errors.js';

export const JOB_COMMAND_KINDS = ['CANCEL', 'PAUSE', 'RESUME', 'CUSTOM'] as const;
/** What a command asks a job's worker to do; CUSTOM carries a `name` the worker understands. */
export type JobCommandKind = (typeof JOB_COMMAND_KINDS)[number];

export const TRAINING_COMMAND_KINDS = ['PAUSE', 'RESUME', 'STOP', 'SAMPLE', 'SAVE_CHECKPOINT'] as const;
/** What a command asks the trainer to do (the training names of job commands). */
export type TrainingCommandKind = (typeof TRAINING_COMMAND_KINDS)[number];

/** The job command a training command is: STOP is CANCEL; SAMPLE and SAVE_CHECKPOINT are CUSTOM commands of that name. */
export function fromTrainingKind(kind: TrainingCommandKind): { command: JobCommandKind; name: string | null } {
  if (kind === 'STOP') return { command: 'CANCEL', name: null };
  if (kind === 'PAUSE' || kind === 'RESUME') return { command: kind, name: null };
  return { command: 'CUSTOM', name: kind };
}

/** The training name of a job command, or null when it has none (a CUSTOM command whose name is not a training kind). */
export function trainingKindOf(c: Pick<CommandRecord, 'command' | 'name'>): TrainingCommandKind | null {
  if (c.command === 'CANCEL') return 'STOP';
  if (c.command === 'PAUSE' || c.command === 'RESUME') return c.command;
  return c.name === 'SAMPLE' || c.name === 'SAVE_CHECKPOINT' ? c.name : null;
}

/** Longest CUSTOM command name, characters. */
export const MAX_COMMAND_NAME = 100;

export const COMMAND_STATES = ['PENDING', 'ACKNOWLEDGED', 'REJECTED', 'EXPIRED'] as const;
/** Where a command is in its life. */
export type CommandState = (typeof COMMAND_STATES)[number];

/** A stored command. Times are epoch ms. */
export interface CommandRecord {
  id: string;
  runId: string;
  /** Position in the run's command stream (1, 2, ...): delivery order. */
  seq: number;
  command: JobCommandKind;
  /** The CUSTOM command's name (1..100 characters); null for the other kinds. */
  name: string | null;
  args: unknown;
  /** Stored state; EXPIRED is never stored (see {@link commandState}). */
  state: 'PENDING' | 'ACKNOWLEDGED' | 'REJECTED';
  senderId: string;
  createdAt: number;
  expiresAt: number;
  /** The trainer's answer, when it gave one. */
  message: string | null;
  respondedAt: number | null;
}

/** The commands of one job, oldest first (the newest {@link MAX_KEPT_COMMANDS}). */
export interface RunCommandsState {
  commands: CommandRecord[];
}

/** Commands kept per run (older ones are forgotten: `trainingCommand(id)` then returns null). */
export const MAX_KEPT_COMMANDS = 200;
/** Default and bounds of a command's time to live, seconds. */
export const COMMAND_TTL = { defaultSeconds: 60, minSeconds: 1, maxSeconds: 3600 } as const;
const MAX_ARGS_JSON = 16_384;

/** The state of a command at `nowMs`. */
export const commandState = (c: CommandRecord, nowMs: number): CommandState => (c.state === 'PENDING' && nowMs >= c.expiresAt ? 'EXPIRED' : c.state);

/** Is the command still to be delivered at `nowMs`? */
export const isDeliverable = (c: CommandRecord, nowMs: number) => commandState(c, nowMs) === 'PENDING';

/** The id of a run's `seq`th command. Opaque to clients. */
export const commandId = (runId: string, seq: number) => `${runId}.c${seq}`;

/** The run and seq of a command id; null when it is not one. */
export function parseCommandId(id: string): { runId: string; seq: number } | null {
  const at = id.lastIndexOf('.c');
  if (at <= 0 || !/^\d{1,9}$/.test(id.slice(at + 2))) return null;
  return { runId: id.slice(0, at), seq: Number(id.slice(at + 2)) };
}

/**
 * Adds a new PENDING command as the job's command number `seq`.
 * @throws DomainError BAD_USER_INPUT for a CUSTOM command without a name (or a name on another kind, or one
 *   longer than 100 characters), a ttl out of bounds, or args over 16 KiB of JSON.
 */
export function addCommand(
  state: RunCommandsState | null,
  input: { runId: string; seq: number; command: JobCommandKind; name?: string | null; args: unknown; senderId: string; ttlSeconds?: number | null },
  nowMs: number,
): { state: RunCommandsState; record: CommandRecord } {
  const name = input.name ?? null;
  if (input.command === 'CUSTOM' && (name === null || name.trim() === '')) throw badInput('name', 'a CUSTOM command needs a name');
  if (input.command !== 'CUSTOM' && name !== null) throw badInput('name', `name is only for CUSTOM commands, not ${input.command}`);
  if (name !== null && name.length > MAX_COMMAND_NAME) throw badInput('name', `name is longer than ${MAX_COMMAND_NAME} characters`);
  const ttl = input.ttlSeconds ?? COMMAND_TTL.defaultSeconds;
  if (!Number.isInteger(ttl) || ttl < COMMAND_TTL.minSeconds || ttl > COMMAND_TTL.maxSeconds)
    throw badInput('ttlSeconds', `ttlSeconds must be a whole number from ${COMMAND_TTL.minSeconds} to ${COMMAND_TTL.maxSeconds}`);
  if (input.args !== undefined && input.args !== null && JSON.stringify(input.args).length > MAX_ARGS_JSON)
    throw badInput('args', `args is larger than ${MAX_ARGS_JSON} characters of JSON`);
  const record: CommandRecord = {
    id: commandId(input.runId, input.seq),
    runId: input.runId,
    seq: input.seq,
    command: input.command,
    name: name === null ? null : name.trim(),
    args: input.args ?? null,
    state: 'PENDING',
    senderId: input.senderId,
    createdAt: nowMs,
    expiresAt: nowMs + ttl * 1000,
    message: null,
    respondedAt: null,
  };
  const commands = [...(state?.commands ?? []), record].slice(-MAX_KEPT_COMMANDS);
  return { state: { commands }, record };
}

/**
 * Records the worker's answer.
 * @throws DomainError NOT_FOUND (no such command), CONFLICT (already answered, or expired), BAD_USER_INPUT (message over 2000 characters).
 */
export function answerCommand(
  state: RunCommandsState | null,
  id: string,
  accepted: boolean,
  message: string | null,
  nowMs: number,
): { state: RunCommandsState; record: CommandRecord } {
  const index = state?.commands.findIndex((c) => c.id === id) ?? -1;
  if (!state || index < 0) throw new DomainError('NOT_FOUND', `no command with id ${JSON.stringify(id)}`);
  if (message !== null && message.length > 2000) throw badInput('message', 'message is longer than 2000 characters');
  const current = state.commands[index]!;
  const now = commandState(current, nowMs);
  if (now !== 'PENDING') throw conflict(`command ${id} is already ${now}`);
  const record: CommandRecord = { ...current, state: accepted ? 'ACKNOWLEDGED' : 'REJECTED', message, respondedAt: nowMs };
  const commands = state.commands.slice();
  commands[index] = record;
  return { state: { commands }, record };
}
