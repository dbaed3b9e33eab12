/**
 * Training runs: the trainingEvents stream and its union, publishTrainingEvents,
 * and training commands (send, receive, acknowledge, read back).
 */
import { badInput } from '../domain/errors.js';
import {
  LOG_LEVELS,
  SAMPLE_TYPES,
  TRAINING_EVENT_TYPES,
  TRAINING_STATUSES,
  type TrainingEvent,
  type TrainingEventInput,
} from '../domain/training.js';
import { COMMAND_STATES, COMMAND_TTL, fromTrainingKind, trainingKindOf, TRAINING_COMMAND_KINDS } from '../domain/commands.js';
import { COMMAND_STATE_VALUES } from './commands.js';
import type { CommandView } from '../services/commands.js';
import { builder } from './builder.js';
import { MetricInput, NamedMetricRef } from './metrics.js';

type Of<K extends TrainingEvent['type']> = Extract<TrainingEvent, { type: K }>;

export const TrainingEventTypeEnum = builder.enumType('TrainingEventType', {
  description: 'The members of the TrainingEvent union, for `trainingEvents(types:)`.',
  values: {
    TRAINING_PROGRESS: { description: 'TrainingProgress (conflated: at most RUNWATCH_PROGRESS_HZ per second per run).' },
    TRAINING_STATUS_CHANGE: { description: 'TrainingStatusChange (never dropped).' },
    SAMPLE_GENERATED: { description: 'SampleGenerated (never dropped).' },
    TRAINING_LOG: { description: 'TrainingLog (rate-limited per run; drops are counted in `droppedBefore`).' },
    SYSTEM_STATS: { description: 'SystemStats (conflated like TrainingProgress).' },
    VALIDATION_RESULT: { description: 'ValidationResult (never dropped).' },
  } satisfies Record<(typeof TRAINING_EVENT_TYPES)[number], unknown>,
});

export const TrainingStatusEnum = builder.enumType('TrainingStatus', {
  description:
    "What the trainer says it is doing. It moves the run's job: RUNNING starts or resumes it, PAUSED pauses it, STOPPED cancels it, ERROR fails it, COMPLETED completes it (the last three are final and end trainingEvents); IDLE, STARTING and STOPPING leave it alone.",
  values: {
    IDLE: { description: 'Not started.' },
    STARTING: { description: 'Loading data and model.' },
    RUNNING: { description: 'Training.' },
    PAUSED: { description: 'Paused (e.g. after a PAUSE command).' },
    STOPPING: { description: 'Saving and shutting down after STOP.' },
    STOPPED: { description: 'Stopped before the end (final; the job becomes CANCELLED).' },
    ERROR: { description: 'Crashed (final; the job becomes FAILED).' },
    COMPLETED: { description: 'Reached the end (final; the job becomes COMPLETED).' },
  } satisfies Record<(typeof TRAINING_STATUSES)[number], unknown>,
});

export const LogLevelEnum = builder.enumType('LogLevel', {
  description: 'Severity of a TrainingLog, lowest first.',
  values: Object.fromEntries(LOG_LEVELS.map((l) => [l, {}])) as Record<(typeof LOG_LEVELS)[number], object>,
});

export const SampleTypeEnum = builder.enumType('SampleType', {
  description: 'What a generated sample is.',
  values: Object.fromEntries(SAMPLE_TYPES.map((l) => [l, {}])) as Record<(typeof SAMPLE_TYPES)[number], object>,
});

const TrainingEventBase = builder.interfaceRef<TrainingEvent>('TrainingEventBase').implement({
  description: 'Fields every training event has.',
  resolveType: (e) => TYPE_NAMES[e.type],
  fields: (t) => ({
    cursor: t.exposeString('cursor', { description: 'Opaque stream position; resume with `trainingEvents(after: cursor)`. Grows with every stored event.' }),
    runId: t.exposeID('runId', { description: 'The run (its BatchJob id).' }),
    timestamp: t.expose('timestamp', { type: 'DateTime', description: 'When it happened: as given by the trainer, else when runwatch received it.' }),
    snapshot: t.exposeBoolean('snapshot', {
      description: 'True for the fresh-start events that describe the current state (the first events without `after`, or when history no longer covers `after`); false for events as they happen.',
    }),
  }),
});

const TYPE_NAMES = {
  TRAINING_PROGRESS: 'TrainingProgress',
  TRAINING_STATUS_CHANGE: 'TrainingStatusChange',
  SAMPLE_GENERATED: 'SampleGenerated',
  TRAINING_LOG: 'TrainingLog',
  SYSTEM_STATS: 'SystemStats',
  VALIDATION_RESULT: 'ValidationResult',
} as const satisfies Record<TrainingEvent['type'], string>;

const TrainingProgressRef = builder.objectRef<Of<'TRAINING_PROGRESS'>>('TrainingProgress').implement({
  description: "Where the optimiser is. Moves the run's job: completed = globalStep, total = maxStep.",
  interfaces: [TrainingEventBase],
  isTypeOf: (e) => (e as TrainingEvent).type === 'TRAINING_PROGRESS',
  fields: (t) => ({
    step: t.exposeInt('step', { nullable: true, description: 'Step within the current phase, as the trainer counts it.' }),
    epoch: t.exposeInt('epoch', { nullable: true, description: 'Current epoch.' }),
    epochStep: t.exposeInt('epochStep', { nullable: true, description: 'Step within the current epoch.' }),
    globalStep: t.exposeInt('globalStep', { description: 'Steps done over the whole run; never goes down.' }),
    maxStep: t.exposeInt('maxStep', { nullable: true, description: 'Steps in the whole run, if known.' }),
    maxEpoch: t.exposeInt('maxEpoch', { nullable: true, description: 'Epochs in the run, if known.' }),
    loss: t.exposeFloat('loss', { nullable: true, description: 'Training loss at this step.' }),
    learningRate: t.exposeFloat('learningRate', { nullable: true, description: 'Learning rate at this step.' }),
    etaSeconds: t.exposeFloat('etaSeconds', { nullable: true, description: "The trainer's estimate of seconds left." }),
  }),
});

const TrainingStatusChangeRef = builder.objectRef<Of<'TRAINING_STATUS_CHANGE'>>('TrainingStatusChange').implement({
  description: 'The trainer changed status. STOPPED, ERROR and COMPLETED are final: the stream ends after them.',
  interfaces: [TrainingEventBase],
  isTypeOf: (e) => (e as TrainingEvent).type === 'TRAINING_STATUS_CHANGE',
  fields: (t) => ({
    status: t.expose('status', { type: TrainingStatusEnum }),
    message: t.exposeString('message', { nullable: true }),
    error: t.exposeString('error', { nullable: true, description: 'What went wrong (ERROR).' }),
  }),
});

const SampleGeneratedRef = builder.objectRef<Of<'SAMPLE_GENERATED'>>('SampleGenerated').implement({
  description: 'The trainer produced a sample (an image, a text...). Never dropped.',
  interfaces: [TrainingEventBase],
  isTypeOf: (e) => (e as TrainingEvent).type === 'SAMPLE_GENERATED',
  fields: (t) => ({
    sampleId: t.exposeString('sampleId'),
    path: t.exposeString('path', { nullable: true, description: "Where the trainer wrote it, on the trainer's machine." }),
    url: t.exposeString('url', { nullable: true, description: 'Where to fetch it (http or https).' }),
    sampleType: t.expose('sampleType', { type: SampleTypeEnum }),
    step: t.exposeInt('step', { nullable: true }),
    epoch: t.exposeInt('epoch', { nullable: true }),
    prompt: t.exposeString('prompt', { nullable: true, description: 'The prompt it was generated from.' }),
    thumbnail: t.exposeString('thumbnail', { nullable: true, description: 'A small preview: an http(s) URL or a data:image/ URI.' }),
  }),
});

const TrainingLogRef = builder.objectRef<Of<'TRAINING_LOG'>>('TrainingLog').implement({
  description: 'A log line of the trainer. Rate-limited per run (a burst of 200, then 50 a second); dropped lines are counted.',
  interfaces: [TrainingEventBase],
  isTypeOf: (e) => (e as TrainingEvent).type === 'TRAINING_LOG',
  fields: (t) => ({
    level: t.expose('level', { type: LogLevelEnum }),
    message: t.exposeString('message', {
      nullable: true,
      description: 'The line; always set. (Nullable in the schema only so that `message` can be selected on TrainingLog and TrainingStatusChange in one query without aliases.)',
    }),
    source: t.exposeString('source', { nullable: true, description: 'Logger or module name; `runwatch` for lines runwatch adds.' }),
    droppedBefore: t.exposeInt('droppedBefore', { description: "Lines of this run dropped by the rate limit just before this one (0: none)." }),
  }),
});

const SystemStatsRef = builder.objectRef<Of<'SYSTEM_STATS'>>('SystemStats').implement({
  description: "Load of the trainer's machine. Conflated like TrainingProgress (its own clock).",
  interfaces: [TrainingEventBase],
  isTypeOf: (e) => (e as TrainingEvent).type === 'SYSTEM_STATS',
  fields: (t) => ({
    gpuMemoryUsedGb: t.exposeFloat('gpuMemoryUsedGb', { nullable: true, description: 'GPU memory in use, GB.' }),
    gpuMemoryTotalGb: t.exposeFloat('gpuMemoryTotalGb', { nullable: true, description: 'GPU memory, GB.' }),
    gpuUtilizationPercent: t.exposeFloat('gpuUtilizationPercent', { nullable: true, description: 'GPU utilisation, percent (0..100).' }),
    cpuPercent: t.exposeFloat('cpuPercent', { nullable: true, description: 'CPU use of the whole machine, percent (0..100).' }),
    ramUsedGb: t.exposeFloat('ramUsedGb', { nullable: true, description: 'RAM in use, GB.' }),
    ramTotalGb: t.exposeFloat('ramTotalGb', { nullable: true, description: 'RAM, GB.' }),
  }),
});

const ValidationResultRef = builder.objectRef<Of<'VALIDATION_RESULT'>>('ValidationResult').implement({
  description: 'A validation pass finished. Never dropped.',
  interfaces: [TrainingEventBase],
  isTypeOf: (e) => (e as TrainingEvent).type === 'VALIDATION_RESULT',
  fields: (t) => ({
    step: t.exposeInt('step', { nullable: true }),
    epoch: t.exposeInt('epoch', { nullable: true }),
    validationLoss: t.exposeFloat('validationLoss'),
    metrics: t.field({ type: [NamedMetricRef], description: 'Further metrics, by name.', resolve: (e) => e.metrics }),
  }),
});

export const TrainingEventUnion = builder.unionType('TrainingEvent', {
  description: 'One event of a training run. Every member has `cursor`, `runId`, `timestamp` and `snapshot` (interface TrainingEventBase).',
  types: [TrainingProgressRef, TrainingStatusChangeRef, SampleGeneratedRef, TrainingLogRef, SystemStatsRef, ValidationResultRef],
  resolveType: (e) => TYPE_NAMES[e.type],
});

// ---- inputs --------------------------------------------------------------

const timestampArg = { description: 'When it happened; default: when runwatch receives it.' };

const TrainingProgressInput = builder.inputType('TrainingProgressInput', {
  description: 'A TrainingProgress. Counts are whole and non-negative; globalStep ≤ maxStep and may not go down.',
  fields: (t) => ({
    globalStep: t.int({ required: true, description: 'Steps done over the whole run (the job\'s `completed`).' }),
    maxStep: t.int({ description: "Steps in the whole run (the job's `total`)." }),
    step: t.int(),
    epoch: t.int(),
    epochStep: t.int(),
    maxEpoch: t.int(),
    loss: t.float({ description: 'Finite.' }),
    learningRate: t.float({ description: 'Finite, ≥ 0.' }),
    etaSeconds: t.float({ description: 'Seconds left, ≥ 0.' }),
    timestamp: t.field({ type: 'DateTime', ...timestampArg }),
  }),
});
const TrainingStatusChangeInput = builder.inputType('TrainingStatusChangeInput', {
  description: "A TrainingStatusChange; moves the run's job (see TrainingStatus).",
  fields: (t) => ({
    status: t.field({ type: TrainingStatusEnum, required: true }),
    message: t.string({ description: 'At most 2000 characters.' }),
    error: t.string({ description: 'For ERROR: what went wrong (becomes the job\'s errorMessage). At most 2000 characters.' }),
    timestamp: t.field({ type: 'DateTime', ...timestampArg }),
  }),
});
const SampleGeneratedInput = builder.inputType('SampleGeneratedInput', {
  description: 'A SampleGenerated; give `path` or `url` (or both).',
  fields: (t) => ({
    sampleId: t.string({ required: true, description: '1..200 characters.' }),
    sampleType: t.field({ type: SampleTypeEnum, defaultValue: 'IMAGE', description: 'Default IMAGE.' }),
    path: t.string(),
    url: t.string({ description: 'http or https.' }),
    step: t.int(),
    epoch: t.int(),
    prompt: t.string({ description: 'At most 2000 characters.' }),
    thumbnail: t.string({ description: 'An http(s) URL or a data:image/ URI, at most 100 000 characters.' }),
    timestamp: t.field({ type: 'DateTime', ...timestampArg }),
  }),
});
const TrainingLogInput = builder.inputType('TrainingLogInput', {
  description: 'A TrainingLog line.',
  fields: (t) => ({
    level: t.field({ type: LogLevelEnum, defaultValue: 'INFO', description: 'Default INFO.' }),
    message: t.string({ required: true, description: '1..8000 characters.' }),
    source: t.string({ description: 'Logger or module name.' }),
    timestamp: t.field({ type: 'DateTime', ...timestampArg }),
  }),
});
const SystemStatsInput = builder.inputType('SystemStatsInput', {
  description: 'A SystemStats. Sizes in GB (≥ 0, used ≤ total), utilisation in percent (0..100).',
  fields: (t) => ({
    gpuMemoryUsedGb: t.float(),
    gpuMemoryTotalGb: t.float(),
    gpuUtilizationPercent: t.float(),
    cpuPercent: t.float(),
    ramUsedGb: t.float(),
    ramTotalGb: t.float(),
    timestamp: t.field({ type: 'DateTime', ...timestampArg }),
  }),
});
const ValidationResultInput = builder.inputType('ValidationResultInput', {
  description: 'A ValidationResult.',
  fields: (t) => ({
    validationLoss: t.float({ required: true, description: 'Finite.' }),
    step: t.int(),
    epoch: t.int(),
    metrics: t.field({ type: [MetricInput], description: 'At most 50.' }),
    timestamp: t.field({ type: 'DateTime', ...timestampArg }),
  }),
});

const TrainingEventInputRef = builder.inputType('TrainingEventInput', {
  description: 'One training event to publish: set exactly one field (@oneOf).',
  isOneOf: true,
  fields: (t) => ({
    progress: t.field({ type: TrainingProgressInput }),
    status: t.field({ type: TrainingStatusChangeInput }),
    sample: t.field({ type: SampleGeneratedInput }),
    log: t.field({ type: TrainingLogInput }),
    systemStats: t.field({ type: SystemStatsInput }),
    validation: t.field({ type: ValidationResultInput }),
  }),
});

const ms = (d: Date | null | undefined) => (d ? d.getTime() : null);
const n = <T>(v: T | null | undefined): T | null => v ?? null;

/** GraphQL input → domain input (no validation here: the domain does it). */
function toDomain(e: Record<string, any>, i: number): TrainingEventInput {
  if (e.progress) {
    const p = e.progress;
    return {
      type: 'TRAINING_PROGRESS',
      globalStep: p.globalStep,
      maxStep: n(p.maxStep),
      step: n(p.step),
      epoch: n(p.epoch),
      epochStep: n(p.epochStep),
      maxEpoch: n(p.maxEpoch),
      loss: n(p.loss),
      learningRate: n(p.learningRate),
      etaSeconds: n(p.etaSeconds),
      timestamp: ms(p.timestamp),
    };
  }
  if (e.status) return { type: 'TRAINING_STATUS_CHANGE', status: e.status.status, message: n(e.status.message), error: n(e.status.error), timestamp: ms(e.status.timestamp) };
  if (e.sample) {
    const s = e.sample;
    return {
      type: 'SAMPLE_GENERATED',
      sampleId: s.sampleId,
      sampleType: s.sampleType ?? 'IMAGE',
      path: n(s.path),
      url: n(s.url),
      step: n(s.step),
      epoch: n(s.epoch),
      prompt: n(s.prompt),
      thumbnail: n(s.thumbnail),
      timestamp: ms(s.timestamp),
    };
  }
  if (e.log) return { type: 'TRAINING_LOG', level: e.log.level ?? 'INFO', message: e.log.message, source: n(e.log.source), timestamp: ms(e.log.timestamp) };
  if (e.systemStats) {
    const s = e.systemStats;
    return {
      type: 'SYSTEM_STATS',
      gpuMemoryUsedGb: n(s.gpuMemoryUsedGb),
      gpuMemoryTotalGb: n(s.gpuMemoryTotalGb),
      gpuUtilizationPercent: n(s.gpuUtilizationPercent),
      cpuPercent: n(s.cpuPercent),
      ramUsedGb: n(s.ramUsedGb),
      ramTotalGb: n(s.ramTotalGb),
      timestamp: ms(s.timestamp),
    };
  }
  if (e.validation) {
    const v = e.validation;
    return { type: 'VALIDATION_RESULT', validationLoss: v.validationLoss, step: n(v.step), epoch: n(v.epoch), metrics: v.metrics ?? [], timestamp: ms(v.timestamp) };
  }
  throw badInput(`events[${i}]`, 'set exactly one field of TrainingEventInput');
}

// ---- commands ------------------------------------------------------------

export const TrainingCommandKindEnum = builder.enumType('TrainingCommandKind', {
  description:
    'What a command asks the trainer to do: the training names of job commands (STOP is the job command CANCEL; SAMPLE and SAVE_CHECKPOINT are CUSTOM job commands of that name, so a worker on `jobCommands` sees them too).',
  values: {
    PAUSE: { description: 'Pause training (the trainer then reports TrainingStatus PAUSED).' },
    RESUME: { description: 'Resume a paused run.' },
    STOP: { description: 'Stop the run (the trainer then reports STOPPING, then STOPPED).' },
    SAMPLE: { description: 'Generate samples now (`args` may carry prompts).' },
    SAVE_CHECKPOINT: { description: 'Save a checkpoint now.' },
  } satisfies Record<(typeof TRAINING_COMMAND_KINDS)[number], unknown>,
});

export const TrainingCommandStateEnum = builder.enumType('TrainingCommandState', {
  description: 'Where a command is: PENDING until the trainer answers (ACKNOWLEDGED or REJECTED) or its time to live passes (EXPIRED).',
  values: COMMAND_STATE_VALUES satisfies Record<(typeof COMMAND_STATES)[number], unknown>,
});

export const TrainingCommandRef = builder.objectRef<CommandView>('TrainingCommand').implement({
  description: 'A command to a run\'s trainer, and its state.',
  fields: (t) => ({
    id: t.exposeID('id', { description: 'Opaque; pass to acknowledgeTrainingCommand and trainingCommand.' }),
    runId: t.exposeID('runId'),
    // Only commands with a training name reach this type (CommandFamily 'training').
    command: t.field({ type: TrainingCommandKindEnum, resolve: (c) => trainingKindOf(c)! }),
    args: t.expose('args', { type: 'JSON', nullable: true, description: 'Free-form arguments from the sender.' }),
    state: t.expose('state', { type: TrainingCommandStateEnum, description: 'The state when this was read.' }),
    senderId: t.exposeString('senderId', { description: 'User id of the sender.' }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    expiresAt: t.expose('expiresAt', { type: 'DateTime', description: 'When a PENDING command becomes EXPIRED.' }),
    message: t.exposeString('message', { nullable: true, description: "The trainer's answer." }),
    respondedAt: t.expose('respondedAt', { type: 'DateTime', nullable: true, description: 'When the trainer answered.' }),
  }),
});

// ---- fields ----------------------------------------------------------------

builder.queryFields((t) => ({
  trainingCommand: t.field({
    type: TrainingCommandRef,
    nullable: true,
    authScopes: { 'jobs:read': true },
    description: "A training command by id, with its current state; null when unknown in the caller's tenant. Needs `jobs:read`.",
    args: { id: t.arg.id({ required: true }) },
    resolve: (_root, args, ctx) => ctx.services.commands.get(ctx.viewer, String(args.id), 'training'),
  }),
  recentTrainingCommands: t.field({
    type: [TrainingCommandRef],
    authScopes: { 'jobs:read': true },
    description: "A run's newest commands (up to 200), newest first, with their current states. Needs `jobs:read`. Raises NOT_FOUND (no such run in your tenant).",
    args: { runId: t.arg.id({ required: true }) },
    resolve: (_root, args, ctx) => ctx.services.commands.list(ctx.viewer, String(args.runId), 'training'),
  }),
}));

builder.mutationFields((t) => ({
  publishTrainingEvents: t.field({
    type: 'Int',
    authScopes: { 'jobs:write': true },
    description: [
      'Publishes a batch of training events to a run (a job of your tenant), in order; all-or-nothing on validation.',
      "TrainingProgress moves the run's job (completed = globalStep, total = maxStep) and TrainingStatusChange its status.",
      'Returns the number of events accepted: the batch size minus log lines dropped by the per-run rate limit.',
      'At most 1000 events per call. Needs `jobs:write`.',
      'Raises BAD_USER_INPUT (invalid event; `extensions.field` names it, e.g. `events[3].progress.loss`; globalStep going down), NOT_FOUND (no such run in your tenant), CONFLICT (run finished).',
    ].join(' '),
    args: {
      runId: t.arg.id({ required: true, description: 'The run (a BatchJob id, usually of kind TRAINING).' }),
      events: t.arg({ type: [TrainingEventInputRef], required: true }),
    },
    resolve: (_root, args, ctx) =>
      ctx.services.training.publish(ctx.viewer, String(args.runId), (args.events as Record<string, any>[]).map(toDomain)),
  }),
  sendTrainingCommand: t.field({
    type: TrainingCommandRef,
    authScopes: { 'jobs:control': true },
    description: `Sends a command to a run's trainer; it is PENDING and delivered on trainingCommands (now, or when a trainer subscribes) until answered or \`ttlSeconds\` pass (default ${COMMAND_TTL.defaultSeconds}, ${COMMAND_TTL.minSeconds}..${COMMAND_TTL.maxSeconds}). Needs \`jobs:control\`. Raises NOT_FOUND, CONFLICT (run finished), BAD_USER_INPUT (ttlSeconds, args over 16 KiB).`,
    args: {
      runId: t.arg.id({ required: true }),
      command: t.arg({ type: TrainingCommandKindEnum, required: true }),
      args: t.arg({ type: 'JSON', description: 'Free-form arguments for the trainer.' }),
      ttlSeconds: t.arg.int({ description: `Seconds until a PENDING command expires; default ${COMMAND_TTL.defaultSeconds}.` }),
    },
    resolve: (_root, args, ctx) =>
      ctx.services.commands.send(ctx.viewer, String(args.runId), fromTrainingKind(args.command), args.args ?? null, args.ttlSeconds ?? null),
  }),
  acknowledgeTrainingCommand: t.field({
    type: TrainingCommandRef,
    authScopes: { 'jobs:write': true },
    description:
      'The trainer answers a command: accepted → ACKNOWLEDGED, else REJECTED (with `message` saying why). Needs `jobs:write`. Raises NOT_FOUND (no such command in your tenant), CONFLICT (already answered, or EXPIRED), BAD_USER_INPUT (message over 2000 characters).',
    args: { id: t.arg.id({ required: true }), accepted: t.arg.boolean({ required: true }), message: t.arg.string() },
    resolve: (_root, args, ctx) => ctx.services.commands.acknowledge(ctx.viewer, String(args.id), args.accepted, args.message ?? null, 'training'),
  }),
}));

builder.subscriptionFields((t) => ({
  trainingEvents: t.field({
    type: TrainingEventUnion,
    authScopes: { 'jobs:read': true },
    description: [
      "A training run's live events. Without `after`: a fresh start first — the newest TrainingProgress and SystemStats (if any), then a TrainingStatusChange of the current status, all with `snapshot: true` —",
      'then every event in cursor order. With `after`, the events after that cursor are replayed from history (no gap, no duplicate) before live ones;',
      'when history no longer holds them (trimmed, or another epoch) the fresh start comes instead.',
      'Ends after a final TrainingStatusChange (STOPPED, ERROR, COMPLETED) — even when `types` hides it. `types` and `minLogLevel` filter what you receive.',
      'Needs `jobs:read`. Raises NOT_FOUND (no such run in your tenant), BAD_USER_INPUT (not a cursor).',
    ].join(' '),
    args: {
      runId: t.arg.id({ required: true }),
      types: t.arg({ type: [TrainingEventTypeEnum], description: 'Only these members of the union; default all.' }),
      after: t.arg.string({ description: 'A cursor from a previous training event of this run.' }),
      minLogLevel: t.arg({ type: LogLevelEnum, description: 'Only TrainingLog lines at or above this level; default all.' }),
    },
    subscribe: (_root, args, ctx) =>
      ctx.services.training.openStream(
        ctx.viewer,
        String(args.runId),
        { types: args.types ?? null, minLogLevel: args.minLogLevel ?? null },
        args.after ?? null,
        ctx.transport,
      ),
    resolve: (event) => event,
  }),
  trainingCommands: t.field({
    type: TrainingCommandRef,
    authScopes: { 'jobs:write': true },
    description:
      "For the run's trainer: every PENDING, unexpired command in send order (those sent while no trainer listened first), then new ones live. A command comes again on a new subscription until answered with acknowledgeTrainingCommand. Open until you leave. Needs `jobs:write`. Raises NOT_FOUND (no such run in your tenant).",
    args: { runId: t.arg.id({ required: true }) },
    subscribe: (_root, args, ctx) => ctx.services.commands.openStream(ctx.viewer, String(args.runId), ctx.transport, 'training'),
    resolve: (c) => c,
  }),
}));
