/**
 * CloseGrace: sockets that do not finish closing within the grace period are
 * destroyed by one sweep; closed ones are forgotten; the sweep stops when idle.
 */
import { describe, expect, it } from 'vitest';
import { CloseGrace, type ClosingSocket } from '../../src/transport/close-grace.js';

class FakeSocket implements ClosingSocket {
  destroyed = false;
  writableFinished = false;
  destroy(): void {
    this.destroyed = true;
  }
}

describe('CloseGrace', () => {
  it('destroys only the sockets still open past their deadline, and forgets finished ones', () => {
    const grace = new CloseGrace(3000);
    const stuck = new FakeSocket();
    const polite = new FakeSocket();
    const sse = new FakeSocket();
    const t0 = Date.now();
    grace.add(stuck);
    grace.add(polite);
    grace.add(sse);
    expect(grace.size).toBe(3);
    polite.destroyed = true; // its close handshake completed
    sse.writableFinished = true; // its response flushed its end
    grace.sweep(t0 + 1000);
    expect(grace.size).toBe(1);
    expect(stuck.destroyed).toBe(false);
    grace.sweep(t0 + 3100);
    expect(stuck.destroyed).toBe(true);
    expect(grace.size).toBe(0);
    grace.stop();
  });

  it('ignores a socket already closed and keeps the first deadline of one added twice', () => {
    const grace = new CloseGrace(1000);
    const gone = new FakeSocket();
    gone.destroyed = true;
    grace.add(gone);
    expect(grace.size).toBe(0);
    const s = new FakeSocket();
    const t0 = Date.now();
    grace.add(s);
    grace.add(s);
    grace.sweep(t0 + 1100);
    expect(s.destroyed).toBe(true);
    grace.stop();
  });
});
