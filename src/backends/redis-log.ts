/**
 * {@link TopicLogStore} on Redis.
 *
 * Keys, for a topic `t` (e.g. `training:<runId>`):
 * - `runwatch:log:<t>`         hash {v: version, epoch, offset, state: JSON}
 * - `runwatch:log:<t>:events`  stream of its events, entry id `<offset>-0`,
 *                              about the newest RUNWATCH_HISTORY kept (XADD MAXLEN ~)
 * A job's logs (`training:<id>`, `commands:<id>`) expire with the job record,
 * RUNWATCH_RETENTION_DAYS after it finishes (see redis.ts).
 * Events are PUBLISHed on `runwatch:<t>`; notices on `runwatch:<other topic>`.
 *
 * Appends are compare-and-set on `v`: read the head, compute in TypeScript,
 * then one Lua script writes the head, XADDs and PUBLISHes only if `v` is
 * unchanged (else the change is recomputed). A log that Redis lost is
 * recreated with a new epoch, so cursors into the lost history are detected.
 */
import type { Redis } from 'ioredis';
import { newEpoch } from '../domain/ids.js';
import { notFound } from '../domain/errors.js';
import { channelFor, jobKey, KEY_PREFIX } from './redis.js';
import { assertConsecutive, type LogCommit, type LogCommitted, type LogHead, type LogHistoryRead, type TopicLogStore } from './topic-log.js';
import { ownerJobOf, type BusEvent } from './types.js';

const headKey = (topic: string) => `${KEY_PREFIX}log:${topic}`;
const eventsKey = (topic: string) => `${KEY_PREFIX}log:${topic}:events`;
const MAX_CAS_ATTEMPTS = 200;

// KEYS: 1 head, 2 events, 3 the owning job's record ('' for account-level logs).
// ARGV: 1 expected version ('' = must not exist), 2 epoch, 3 offset, 4 state, 5 maxlen,
// 6 ttl seconds (0 = none of its own), 7 channel, 8 event count n, then n × (offset, json), then (channel, json) notices.
// Returns 1 committed, 0 version changed (retry), -1 the owning job is gone.
// A job-owned log takes its job's expiry (set when the job finishes: retention), and the
// events stream always expires with the head.
const APPEND_LUA = `
local ownerTtl = -1
if KEYS[3] ~= '' then
  ownerTtl = redis.call('PTTL', KEYS[3])
  if ownerTtl == -2 then return -1 end
end
local v = redis.call('HGET', KEYS[1], 'v')
if ARGV[1] == '' then
  if v then return 0 end
  v = '0'
elseif v ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'v', tostring(tonumber(v) + 1), 'epoch', ARGV[2], 'offset', ARGV[3], 'state', ARGV[4])
local n = tonumber(ARGV[8])
local i = 9
for _ = 1, n do
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], ARGV[i] .. '-0', 'e', ARGV[i + 1])
  redis.call('PUBLISH', ARGV[7], ARGV[i + 1])
  i = i + 2
end
while i <= #ARGV do
  redis.call('PUBLISH', ARGV[i], ARGV[i + 1])
  i = i + 2
end
if ARGV[6] ~= '0' then
  redis.call('EXPIRE', KEYS[1], ARGV[6])
elseif ownerTtl > 0 then
  redis.call('PEXPIRE', KEYS[1], ownerTtl)
end
local headTtl = redis.call('PTTL', KEYS[1])
if headTtl > 0 then redis.call('PEXPIRE', KEYS[2], headTtl) end
return 1
`;

type ScriptedRedis = Redis & { runwatchLogAppend(head: string, events: string, owner: string, ...args: (string | number)[]): Promise<number> };

export class RedisTopicLogStore implements TopicLogStore {
  private readonly redis: ScriptedRedis;

  constructor(
    redis: Redis,
    private readonly historySize: number,
  ) {
    redis.defineCommand('runwatchLogAppend', { numberOfKeys: 3, lua: APPEND_LUA });
    this.redis = redis as ScriptedRedis;
  }

  private async read<S>(topic: string): Promise<{ version: string; head: LogHead<S> } | null> {
    const [v, epoch, offset, state] = await this.redis.hmget(headKey(topic), 'v', 'epoch', 'offset', 'state');
    if (v == null || epoch == null || offset == null || state == null) return null;
    return { version: v, head: { epoch, offset: Number(offset), state: JSON.parse(state) as S } };
  }

  async head<S>(topic: string): Promise<LogHead<S> | null> {
    return (await this.read<S>(topic))?.head ?? null;
  }

  async append<S, E extends BusEvent>(topic: string, change: (head: LogHead<S>) => LogCommit<S, E> | null): Promise<LogCommitted<S, E> | null> {
    const owner = ownerJobOf(topic);
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const current = await this.read<S>(topic);
      const head: LogHead<S> = current?.head ?? { epoch: newEpoch(), offset: 0, state: null };
      const commit = change({ ...head });
      if (!commit) return null;
      assertConsecutive(topic, head.offset, commit.events);
      const args: (string | number)[] = [
        current?.version ?? '',
        head.epoch,
        head.offset + commit.events.length,
        JSON.stringify(commit.state),
        this.historySize,
        commit.ttlSeconds ?? 0,
        channelFor(topic),
        commit.events.length,
      ];
      for (const event of commit.events) args.push(event.offset, JSON.stringify(event));
      for (const { topic: other, message } of commit.notify ?? []) args.push(channelFor(other), JSON.stringify(message));
      const committed = await this.redis.runwatchLogAppend(headKey(topic), eventsKey(topic), owner === null ? '' : jobKey(owner), ...args);
      if (committed === -1) throw notFound(owner!);
      if (committed === 1) return { ...commit, epoch: head.epoch };
    }
    throw new Error(`topic ${topic}: too much contention (${MAX_CAS_ATTEMPTS} compare-and-set attempts)`);
  }

  async history<E extends BusEvent>(topic: string, afterOffset: number): Promise<LogHistoryRead<E>> {
    const current = await this.read(topic);
    if (!current) return { events: [], covered: false };
    if (afterOffset >= current.head.offset) return { events: [], covered: true };
    const entries = await this.redis.xrange(eventsKey(topic), `${afterOffset + 1}-0`, '+');
    const events = entries.map(([, fields]) => JSON.parse(fields[1]!) as E);
    return { events, covered: events.length > 0 && events[0]!.offset === afterOffset + 1 };
  }
}
