/**
 * Connections the server is closing, terminated if they have not finished
 * closing within a grace period: one sweep timer for all of them, not a timer
 * per connection.
 *
 * Why: closing politely (a WebSocket close frame such as 4008, the last SSE
 * event) needs the client to read what is already buffered. A client that has
 * stopped reading never does, and its socket, with everything buffered for it,
 * would live until it reads again (ws's own close timeout is 30 s per socket).
 * After {@link DEFAULT_CLOSE_GRACE_MS} the socket is destroyed instead.
 *
 * The sweep runs every quarter of the grace period while anything is pending
 * (unref'd; stopped when nothing is), so a socket is destroyed between 1 and
 * 1.25 grace periods after its close began. The heartbeat-interval idea is the
 * one the `ws` README gives for dead connections.
 */
/** Milliseconds a closing connection has to complete its close before it is destroyed (3 s). */
export const DEFAULT_CLOSE_GRACE_MS = 3000;

/**
 * What the sweep needs of what it may destroy: a WebSocket's `net.Socket`, or
 * an SSE response (`http.ServerResponse`). Done closing when destroyed, or
 * when everything written to it, its end included, was flushed (`writableFinished`).
 */
export interface ClosingSocket {
  readonly destroyed: boolean;
  readonly writableFinished?: boolean;
  destroy(): void;
}

const isDone = (socket: ClosingSocket) => socket.destroyed || socket.writableFinished === true;

/** Sockets being closed, each with its deadline, swept by one timer. */
export class CloseGrace {
  private readonly deadlines = new Map<ClosingSocket, number>();
  private timer: NodeJS.Timeout | undefined;

  /** @param graceMs milliseconds a socket may take to close once {@link add}ed (default 3000). */
  constructor(readonly graceMs = DEFAULT_CLOSE_GRACE_MS) {}

  /** Sockets waiting to finish their close (diagnostics and tests). */
  get size(): number {
    return this.deadlines.size;
  }

  /**
   * Gives `socket` the grace period to finish closing (call it right after
   * starting the close); destroyed after that if it is not yet. Idempotent:
   * the first deadline stands.
   */
  add(socket: ClosingSocket): void {
    if (isDone(socket) || this.deadlines.has(socket)) return;
    this.deadlines.set(socket, Date.now() + this.graceMs);
    if (!this.timer) {
      this.timer = setInterval(() => this.sweep(), Math.max(10, Math.floor(this.graceMs / 4)));
      this.timer.unref();
    }
  }

  /** Destroys the sockets past their deadline, forgets the closed ones, stops when none is left. */
  sweep(now = Date.now()): void {
    for (const [socket, deadline] of this.deadlines) {
      if (isDone(socket)) this.deadlines.delete(socket);
      else if (deadline <= now) {
        this.deadlines.delete(socket);
        socket.destroy();
      }
    }
    if (this.deadlines.size === 0) this.stop();
  }

  /** Stops the sweep and forgets every socket (shutdown; they are being terminated anyway). */
  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.deadlines.clear();
  }
}
