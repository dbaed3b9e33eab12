/**
 * A runwatch instance for the report-path benchmark (bench/report-path.ts):
 * the server of `npm start` (same environment, same plugins), plus
 *
 * - counters of what each GraphQL request costs Yoga: parses and validations
 *   asked for, and how many of them missed Yoga's parse / validation cache
 *   (a miss calls the real parser / validator), and executions;
 * - a CPU profile of its main thread over a window the bench chooses:
 *   SIGUSR2 starts the profiler (and zeroes the counters); SIGTERM stops it,
 *   writes the profile (V8 `.cpuprofile` JSON) to `$REPORT_PATH_PROFILE`,
 *   prints `counters {json}` on stdout, and exits.
 *
 * Prints `listening <port>` once it accepts requests.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import type { Plugin } from 'graphql-yoga';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/log.js';
import { startServer } from '../src/server.js';

/** What {@link countingPlugin} counts. */
export interface RequestCounters {
  parses: number;
  parseCacheMisses: number;
  validations: number;
  validationCacheMisses: number;
  executions: number;
}

const counters: RequestCounters = { parses: 0, parseCacheMisses: 0, validations: 0, validationCacheMisses: 0, executions: 0 };

/**
 * Counts parses and validations, and the misses of Yoga's cache: that cache
 * runs first and, on a hit, sets the result, so the parse / validate function
 * (which this plugin wraps last) is only called on a miss.
 */
const countingPlugin: Plugin = {
  onParse: ({ parseFn, setParseFn }) => {
    counters.parses++;
    setParseFn((source, options) => {
      counters.parseCacheMisses++;
      return parseFn(source, options);
    });
  },
  onValidate: ({ validateFn, setValidationFn }) => {
    counters.validations++;
    setValidationFn((...args) => {
      counters.validationCacheMisses++;
      return validateFn(...args);
    });
  },
  onExecute: () => {
    counters.executions++;
  },
};

const config = loadConfig();
const server = await startServer(config, { logger: createLogger(config.logLevel), plugins: [countingPlugin] });
const session = new Session();
session.connect();
let profiling = false;

process.on('SIGUSR2', () => {
  void (async () => {
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: Number(process.env.REPORT_PATH_SAMPLE_MICROS ?? 250) });
    await session.post('Profiler.start');
    for (const key of Object.keys(counters) as (keyof RequestCounters)[]) counters[key] = 0;
    profiling = true;
    process.stdout.write('profiling\n');
  })();
});

process.on('SIGTERM', () => {
  void (async () => {
    if (profiling) {
      const { profile } = await session.post('Profiler.stop');
      writeFileSync(process.env.REPORT_PATH_PROFILE ?? 'report-path.cpuprofile', JSON.stringify(profile));
    }
    process.stdout.write(`counters ${JSON.stringify(counters)}\n`);
    await server.close(1000);
    process.exit(0);
  })();
});

process.stdout.write(`listening ${server.port}\n`);
