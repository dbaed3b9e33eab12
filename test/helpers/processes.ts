/**
 * runwatch servers as real child processes (`node --import tsx src/main.ts`),
 * for tests that kill them. Each is SIGKILLed after its test file if still running.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { withTimeout } from './clients.js';
import { TEST_SECRET } from './servers.js';

const children: ChildProcess[] = [];
/** SIGKILLs every server process still running; run after each test file by test/helpers/per-file-cleanup.ts. */
export function killServerProcesses(): void {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

/** A server process. */
export interface ServerProcess {
  url: string;
  pid: number;
  /** Resolves with the exit code (or the signal name) when the process ends. */
  exited: Promise<number | string>;
  kill(signal: NodeJS.Signals): void;
  /** Everything it printed. */
  output(): string;
}

/** Starts `src/main.ts` on a free port with the test secret; resolves when it prints its URL. */
export async function spawnServer(env: Record<string, string>): Promise<ServerProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', RUNWATCH_JWT_SECRET: TEST_SECRET, LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let output = '';
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  const url = await withTimeout(
    new Promise<string>((resolve, reject) => {
      const onData = (chunk: Buffer) => {
        output += chunk.toString();
        const match = /runwatch is running at (\S+)/.exec(output);
        if (match) resolve(match[1]!);
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
      void exited.then((code) => reject(new Error(`server exited (${code}) before listening:\n${output}`)));
    }),
    // tsx compiles the server's modules at each start: on a starved CPU (the suite's workers, other jobs) that takes
    // far longer than on a quiet one.
    45_000,
    'the server process to listen',
  );
  return { url, pid: child.pid!, exited, kill: (signal) => child.kill(signal), output: () => output };
}
