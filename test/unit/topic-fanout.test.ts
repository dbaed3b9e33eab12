/**
 * TopicFanout's hold and resume around a lost connection: after a reconnect,
 * a live event may arrive before the older events read from history; the
 * fan-out must hand listeners every event once, in offset order.
 */
import { describe, expect, it } from 'vitest';
import { TopicFanout } from '../../src/backends/topic-fanout.js';
import type { BusEvent } from '../../src/backends/types.js';

type Event = BusEvent & { type: string };
const ev = (offset: number, type = 'PROGRESS'): Event => ({ offset, type });
/** The reset rule the job service supplies (the fan-out itself knows no event types). */
const isSnapshot = (e: BusEvent) => (e as Event).type === 'SNAPSHOT';

/** A fan-out over a fake subscription whose `publish` plays the live channel. */
async function fanoutWithListener() {
  let publish: (event: BusEvent) => void = () => {};
  const fanout = new TopicFanout<string>(
    async (topic, deliver) => {
      publish = deliver;
      return topic;
    },
    () => {},
    (_topic, error) => {
      throw error;
    },
  );
  const seen: Event[] = [];
  await fanout.subscribe<Event>('job:1', (event) => seen.push(event));
  return { fanout, seen, publish: (event: BusEvent) => publish(event) };
}

describe('TopicFanout hold and resume', () => {
  it('delivers events missed during an outage before the live ones that overtook them, each once', async () => {
    const { fanout, seen, publish } = await fanoutWithListener();
    publish(ev(1));
    fanout.holdAll(); // the connection dropped; 2 and 3 were published meanwhile
    publish(ev(4)); // live again after the reconnect, before catch-up finished
    publish(ev(5));
    expect(seen.map((e) => e.offset)).toEqual([1]);
    fanout.resume('job:1', [ev(2), ev(3), ev(4)]); // history after offset 1
    expect(seen.map((e) => e.offset)).toEqual([1, 2, 3, 4, 5]);
    publish(ev(6));
    expect(seen.map((e) => e.offset)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(fanout.openTopics()[0]!.last!.offset).toBe(6);
  });

  it('puts a fresh-start SNAPSHOT first; live events it covers are not repeated, later ones follow', async () => {
    const { fanout, seen, publish } = await fanoutWithListener();
    publish(ev(1));
    fanout.holdAll();
    publish(ev(9));
    publish(ev(10));
    fanout.resume('job:1', [ev(9, 'SNAPSHOT')], isSnapshot); // history could not cover the gap: the state as of offset 9
    expect(seen.map((e) => `${e.offset}:${e.type}`)).toEqual(['1:PROGRESS', '9:SNAPSHOT', '10:PROGRESS']);
    // A fresh start is not where the next catch-up starts: the newest ordinary event is.
    expect(fanout.openTopics()[0]!.last!.offset).toBe(10);
  });

  it('keeps every event of a multi-event fresh start (they share one offset), and only those', async () => {
    const { fanout, seen, publish } = await fanoutWithListener();
    publish(ev(1));
    fanout.holdAll();
    publish(ev(7));
    // e.g. a training run's fresh start: newest progress, newest stats and the status, all at the head's offset.
    fanout.resume('job:1', [ev(7, 'SNAPSHOT'), ev(7, 'SNAPSHOT'), ev(7, 'SNAPSHOT')], isSnapshot);
    expect(seen.map((e) => `${e.offset}:${e.type}`)).toEqual(['1:PROGRESS', '7:SNAPSHOT', '7:SNAPSHOT', '7:SNAPSHOT']);
  });

  it('treats no event as a reset without a rule: equal offsets are delivered once', async () => {
    const { fanout, seen, publish } = await fanoutWithListener();
    fanout.holdAll();
    publish(ev(2));
    fanout.resume('job:1', [ev(2, 'SNAPSHOT')]);
    expect(seen.map((e) => `${e.offset}:${e.type}`)).toEqual(['2:SNAPSHOT']);
  });

  it('delivers what it held when catch-up is given up, and delivers directly when not held', async () => {
    const { fanout, seen, publish } = await fanoutWithListener();
    fanout.holdAll();
    publish(ev(3));
    fanout.resume('job:1', []);
    fanout.resume('job:1', [ev(4)]);
    expect(seen.map((e) => e.offset)).toEqual([3, 4]);
  });
});
