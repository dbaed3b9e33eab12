/**
 * The process net: an unhandled rejection is logged and counted and the
 * process goes on; an uncaught exception is logged, counted and shuts down.
 */
import { EventEmitter } from 'node:events';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { Metrics } from '../../src/observe/metrics.js';
import { installProcessNet } from '../../src/observe/process-net.js';

function logged() {
  const lines: Record<string, any>[] = [];
  const stream = new Writable({
    write(chunk, _encoding, done) {
      lines.push(JSON.parse(String(chunk)));
      done();
    },
  });
  return { log: pino({ level: 'info' }, stream), lines };
}

const count = async (metrics: Metrics, kind: string) =>
  (await metrics.processErrors.get()).values.find((v) => v.labels.kind === kind)?.value ?? 0;

describe('the process net', () => {
  it('logs and counts an unhandled rejection, with its stack, and keeps running', async () => {
    const { log, lines } = logged();
    const metrics = new Metrics();
    const target = new EventEmitter();
    const fatal: unknown[] = [];
    const uninstall = installProcessNet({ log, metrics: () => metrics, onFatal: (e) => fatal.push(e), target });
    target.emit('unhandledRejection', new Error('nobody awaited me'), Promise.resolve());
    target.emit('unhandledRejection', 'a bare reason', Promise.resolve());
    expect(await count(metrics, 'unhandled_rejection')).toBe(2);
    expect(fatal).toEqual([]);
    expect(lines[0]).toMatchObject({ level: 50, event: 'unhandled_rejection', err: { message: 'nobody awaited me' } });
    expect(lines[0]!.err.stack).toContain('process-net.test.ts');
    uninstall();
    expect(target.listenerCount('unhandledRejection')).toBe(0);
  });

  it('logs and counts an uncaught exception at fatal level and shuts down once', async () => {
    const { log, lines } = logged();
    const metrics = new Metrics();
    const target = new EventEmitter();
    const fatal: unknown[] = [];
    installProcessNet({ log, metrics: () => metrics, onFatal: (e) => fatal.push(e), target });
    const error = new TypeError('cannot read properties of undefined');
    target.emit('uncaughtException', error, 'uncaughtException');
    expect(fatal).toEqual([error]);
    expect(await count(metrics, 'uncaught_exception')).toBe(1);
    expect(lines[0]).toMatchObject({ level: 60, event: 'uncaught_exception', origin: 'uncaughtException', err: { type: 'TypeError' } });
  });

  it('still logs before the server (and its metrics) exist', () => {
    const { log, lines } = logged();
    const target = new EventEmitter();
    installProcessNet({ log, metrics: () => null, onFatal: () => {}, target });
    target.emit('unhandledRejection', new Error('early'), Promise.resolve());
    expect(lines).toHaveLength(1);
  });
});
