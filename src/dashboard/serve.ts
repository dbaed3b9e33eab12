/**
 * The web dashboard: static files served by the runwatch server itself.
 *
 * Routes (GET/HEAD only; anything else falls through to Yoga):
 * - `/` and `/jobs/<id>`: the single page (public/index.html);
 * - `/dashboard/<file>`: its scripts and styles (public/);
 * - `/dashboard/vendor/graphql-ws.js`: graphql-ws's browser build from node_modules;
 * - `/dashboard/vendor/uplot.js`, `/dashboard/vendor/uplot.css`: uPlot's browser build and styles from
 *   node_modules (https://github.com/leeoniya/uPlot: small, fast time-series charts; the job page's charts);
 * - `/dashboard/config.json`: `{ devToken }` — the dev token in dev mode, null otherwise
 *   (GraphiQL's page carries the same token in dev mode).
 */
import { readFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Options of {@link createDashboard}. */
export interface DashboardOptions {
  /** Dev mode's token, handed to the page so it works without pasting one; undefined outside dev mode. */
  devToken?: string;
}

/** Handles a dashboard request; returns false when the request is not the dashboard's. */
export type DashboardHandler = (req: IncomingMessage, res: ServerResponse) => boolean;

const PUBLIC = fileURLToPath(new URL('./public/', import.meta.url));
const TYPES: Record<string, string> = { html: 'text/html; charset=utf-8', js: 'text/javascript; charset=utf-8', css: 'text/css; charset=utf-8' };
const ASSETS = ['index.html', 'app.js', 'style.css'] as const;

/** Loads the files once (they are small) and returns the request handler. */
export function createDashboard(opts: DashboardOptions = {}): DashboardHandler {
  const files = new Map<string, { body: Buffer; type: string }>();
  for (const name of ASSETS) files.set(`/dashboard/${name}`, { body: readFileSync(join(PUBLIC, name)), type: TYPES[name.split('.').pop()!]! });
  const graphqlWsDir = dirname(fileURLToPath(import.meta.resolve('graphql-ws')));
  files.set('/dashboard/vendor/graphql-ws.js', { body: readFileSync(join(graphqlWsDir, '..', 'umd', 'graphql-ws.min.js')), type: TYPES.js! });
  const uplotDir = dirname(fileURLToPath(import.meta.resolve('uplot')));
  files.set('/dashboard/vendor/uplot.js', { body: readFileSync(join(uplotDir, 'uPlot.iife.min.js')), type: TYPES.js! });
  files.set('/dashboard/vendor/uplot.css', { body: readFileSync(join(uplotDir, 'uPlot.min.css')), type: TYPES.css! });
  files.set('/dashboard/config.json', { body: Buffer.from(JSON.stringify({ devToken: opts.devToken ?? null })), type: 'application/json' });
  const page = files.get('/dashboard/index.html')!;

  return (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') return false;
    const path = (req.url ?? '/').split('?')[0]!;
    const file = path === '/' || /^\/jobs\/[^/]+$/.test(path) ? page : files.get(path);
    if (!file) return false;
    res.writeHead(200, {
      'content-type': file.type,
      'content-length': file.body.length,
      'cache-control': path === '/dashboard/config.json' ? 'no-store' : 'no-cache',
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
    });
    res.end(req.method === 'HEAD' ? undefined : file.body);
    return true;
  };
}
