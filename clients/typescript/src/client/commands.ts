/**
 * The listener behind `ProgressReporter.onCommand`: it reads a job's command stream (`RunwatchClient.jobCommands`,
 * resumable, each command once) and answers each command with a handler's verdict, one at a time.
 */
import type { JobCommand } from './client.js';
import { RunwatchError } from './errors.js';

/**
 * Answers a command (see `ProgressReporter.onCommand`): returning (or resolving to) `false` rejects it, a string
 * rejects it with that message, `{ accepted, message }` answers explicitly; anything else acknowledges it.
 * Throwing rejects it with the error's message.
 */
export type CommandHandler = (command: JobCommand) => unknown;

/** A running `ProgressReporter.onCommand` listener. */
export interface CommandListener {
  /** Commands answered so far. */
  readonly handled: number;
  /** Stops listening, after the command being handled (if any) is answered. */
  stop(): Promise<void>;
}

/** The handler's verdict as an answer: accepted, and a message (at most 2000 characters). */
export async function verdictOf(handler: CommandHandler, command: JobCommand): Promise<{ accepted: boolean; message?: string }> {
  try {
    const verdict = await handler(command);
    if (verdict === false) return { accepted: false };
    if (typeof verdict === 'string') return { accepted: false, message: verdict.slice(0, 2000) };
    if (verdict && typeof verdict === 'object' && 'accepted' in verdict) {
      const v = verdict as { accepted: unknown; message?: unknown };
      return typeof v.message === 'string' ? { accepted: v.accepted !== false, message: v.message.slice(0, 2000) } : { accepted: v.accepted !== false };
    }
    return { accepted: true };
  } catch (error) {
    return { accepted: false, message: (error instanceof Error ? error.message : String(error)).slice(0, 2000) || 'rejected' };
  }
}

/**
 * Starts a listener: for each command of `commands(signal)`, `answer(command, verdict)` (true when the answer was
 * delivered) with the handler's verdict; a stream that fails for good goes to `onError`. `stop()` waits for the
 * command in hand to be answered, then ends the stream.
 */
export function listenForCommands(
  commands: (signal: AbortSignal) => AsyncIterable<JobCommand>,
  handler: CommandHandler,
  answer: (command: JobCommand, verdict: { accepted: boolean; message?: string }) => Promise<boolean>,
  onError: (error: RunwatchError) => void,
): CommandListener {
  const controller = new AbortController();
  let current: Promise<void> = Promise.resolve();
  let handled = 0;
  const loop = (async () => {
    try {
      for await (const command of commands(controller.signal)) {
        current = (async () => {
          const verdict = await verdictOf(handler, command);
          if (!controller.signal.aborted && (await answer(command, verdict))) handled++;
        })();
        await current;
      }
    } catch (error) {
      if (!controller.signal.aborted) onError(error instanceof RunwatchError ? error : new RunwatchError('INTERNAL_SERVER_ERROR', String(error)));
    }
  })();
  return {
    get handled() {
      return handled;
    },
    async stop() {
      await current;
      controller.abort();
      await loop;
    },
  };
}
