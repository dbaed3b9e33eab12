/**
 * Setup file of the integration project (vitest `setupFiles`, run before every test file): after the
 * file's own hooks, closes what the helpers started for it and the test left open — graphql-ws
 * clients, in-process servers, server processes. Registered here rather than at the helpers' module
 * level because the integration project runs with `isolate: false`: a worker evaluates a helper
 * module once and reuses it for its next files, so a module-level `afterAll` would only ever be
 * registered for the first of them.
 *
 * Hooks run in reverse order of registration (`sequence.hooks: 'stack'`): processes are killed
 * first, then servers closed, then clients disposed — as when each helper registered its own.
 */
import { afterAll } from 'vitest';
import { disposeWsClients } from './clients.js';
import { killServerProcesses } from './processes.js';
import { closeTestServers } from './servers.js';

afterAll(disposeWsClients);
afterAll(closeTestServers);
afterAll(killServerProcesses);
