/**
 * Webhook building blocks: the address rule (private, loopback, mapped IPv6),
 * URL form checks, the retry schedule's bounds, and the in-process work queue
 * (add-once by id — a projector applying the same change twice queues one
 * delivery — retries with backoff, giving up after the last attempt).
 */
import { describe, expect, it } from 'vitest';
import { MemoryWorkQueues } from '../../src/backends/memory-queue.js';
import { retryDelayMs, retryWindowMs } from '../../src/domain/retry.js';
import { addressClass, checkAddresses, messageIdOf, parseWebhookUrl } from '../../src/domain/webhooks.js';
import { deferred } from '../helpers/clients.js';

describe('webhook addresses and URLs', () => {
  it('classifies loopback, private and public addresses, IPv4-mapped IPv6 included', () => {
    for (const ip of ['127.0.0.1', '127.8.9.10', '::1', '::ffff:127.0.0.1']) expect(addressClass(ip)).toBe('loopback');
    for (const ip of ['10.0.0.1', '172.16.5.4', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', 'fd00::1', 'fe80::1', '::ffff:10.1.2.3', '::'])
      expect(addressClass(ip)).toBe('private');
    for (const ip of ['93.184.216.34', '8.8.8.8', '2606:4700::1111', '172.32.0.1']) expect(addressClass(ip)).toBe('public');
  });

  it('refuses a host when any of its addresses is not public, unless allowed', () => {
    const strict = { private: false, loopback: false };
    expect(() => checkAddresses('h', ['93.184.216.34', '10.0.0.1'], strict)).toThrow(/private address \(10\.0\.0\.1\)/);
    expect(() => checkAddresses('h', ['127.0.0.1'], strict)).toThrow(/loopback/);
    expect(() => checkAddresses('h', ['127.0.0.1'], { private: false, loopback: true })).not.toThrow();
    expect(() => checkAddresses('h', ['10.0.0.1'], { private: false, loopback: true })).toThrow(/private/);
    expect(() => checkAddresses('h', ['10.0.0.1'], { private: true, loopback: true })).not.toThrow();
    expect(() => checkAddresses('h', [], { private: true, loopback: true })).toThrow(/does not resolve/);
  });

  it('accepts http(s) URLs only, without credentials', () => {
    expect(parseWebhookUrl('https://[::1]:8443/x').host).toBe('::1');
    for (const bad of ['ftp://example.com/', 'file:///etc/passwd', 'https://user:pw@example.com/', 'nonsense', `https://e.com/${'x'.repeat(2000)}`])
      expect(() => parseWebhookUrl(bad)).toThrow();
  });

  it('derives one webhook-id per event and webhook, safe as a BullMQ job id', () => {
    expect(messageIdOf('j_1.4.COMPLETED', 'wh_a')).toBe(messageIdOf('j_1.4.COMPLETED', 'wh_a'));
    expect(messageIdOf('j_1.4.COMPLETED', 'wh_a')).not.toBe(messageIdOf('j_1.4.COMPLETED', 'wh_b'));
    expect(messageIdOf('budget.i:x.default.3', 'wh_a')).not.toContain(':');
  });
});

describe('retry schedule', () => {
  it('doubles from the base, caps each delay, keeps the upper half random, and bounds the total', () => {
    const policy = { attempts: 10, baseDelayMs: 10_000, maxDelayMs: 3_600_000 };
    expect(retryDelayMs(policy, 1, () => 0)).toBe(5_000);
    expect(retryDelayMs(policy, 1, () => 0.999999)).toBe(10_000);
    expect(retryDelayMs(policy, 4, () => 0.5)).toBe(60_000);
    expect(retryDelayMs(policy, 20, () => 1 - 1e-12)).toBe(3_600_000);
    expect(retryWindowMs(policy)).toBe(5_110_000); // about 85 minutes
  });
});

describe('MemoryWorkQueues', () => {
  it('adds an id once, retries a failing handler with backoff, and gives up after the last attempt', async () => {
    const gaveUp: string[] = [];
    const queues = new MemoryWorkQueues(Date.now, (context) => gaveUp.push(context));
    const calls: { data: string; attempt: number; last: boolean }[] = [];
    const finished = deferred<void>();
    const queue = queues.open<string>(
      'q',
      async (data, info) => {
        calls.push({ data, ...info });
        if (data === 'flaky' && info.attempt === 1) throw new Error('500');
        if (data === 'down') {
          if (info.last) finished.resolve();
          throw new Error('refused');
        }
      },
      { retry: { attempts: 3, baseDelayMs: 5, maxDelayMs: 20 }, concurrency: 2, lockMs: 1000 },
    );
    await queue.add('a', 'flaky');
    await queue.add('a', 'flaky'); // the same change applied twice: one delivery
    await queue.add('b', 'down');
    await finished.promise;
    await new Promise((r) => setImmediate(r));
    expect(calls.filter((c) => c.data === 'flaky').map((c) => c.attempt)).toEqual([1, 2]);
    expect(calls.filter((c) => c.data === 'down').map((c) => [c.attempt, c.last])).toEqual([
      [1, false],
      [2, false],
      [3, true],
    ]);
    await queue.add('a', 'flaky'); // done recently: still once
    expect(calls.filter((c) => c.data === 'flaky')).toHaveLength(2);
    expect(gaveUp).toHaveLength(1);
    await queues.close();
  });
});
