/**
 * The process logger: JSON lines by default, pino-pretty lines when asked (a terminal), secrets
 * redacted in both, every line written by the time the call returns (synchronous).
 */
import { mkdtempSync, openSync, closeSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { banner } from '../../src/banner.js';
import { createLogger } from '../../src/log.js';

/** Logs three lines through a logger writing to a temp file, and returns what the file holds right after. */
function logged(pretty: boolean): string {
  const path = join(mkdtempSync(join(tmpdir(), 'runwatch-log-')), 'out.log');
  const fd = openSync(path, 'w');
  try {
    const log = createLogger('info', { pretty, colour: false, fd });
    log.info({ event: 'connection_refused', authorization: 'Bearer secret-token' }, 'websocket refused');
    log.child({ component: 'ws' }).warn('slow consumer');
    log.debug('not at info');
    return readFileSync(path, 'utf8'); // no flush, no wait: the lines are there already
  } finally {
    closeSync(fd);
  }
}

describe('createLogger', () => {
  it('writes one JSON object per line by default, synchronously, with secrets redacted', () => {
    const lines = logged(false).trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => [l.level, l.msg])).toEqual([[30, 'websocket refused'], [40, 'slow consumer']]);
    expect(lines[0].authorization).toBe('[redacted]');
    expect(lines[1].component).toBe('ws');
  });

  it('writes human-readable lines when pretty, synchronously, with secrets redacted', () => {
    const lines = logged(true).trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO: websocket refused \{"event":"connection_refused","authorization":"\[redacted\]"\}$/);
    expect(lines[1]).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] WARN: ws: slow consumer$/);
    expect(lines.join('\n')).not.toContain('secret-token');
  });
});

describe('the npm start banner', () => {
  it('in dev mode ends with an export line carrying the origin and the dev token', () => {
    const text = banner('http://127.0.0.1:4000/graphql', 'memory', 'ey.dev.token');
    expect(text).toContain('runwatch is running at http://127.0.0.1:4000/graphql (backend: memory)\n');
    expect(text).toContain('Dashboard: http://127.0.0.1:4000/\n');
    expect(text.trimEnd().split('\n').at(-1)).toBe('export RUNWATCH_URL=http://127.0.0.1:4000 RUNWATCH_TOKEN=ey.dev.token');
  });

  it('with a real secret exports only the URL and says where tokens come from', () => {
    const text = banner('http://10.0.0.5:4001/graphql', 'redis', undefined);
    expect(text.trimEnd().split('\n').slice(-2)).toEqual(['For clients (with a token from `npx runwatch token --sub <you>`):', 'export RUNWATCH_URL=http://10.0.0.5:4001']);
    expect(text).not.toContain('RUNWATCH_TOKEN');
  });
});
