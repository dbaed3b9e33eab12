/**
 * `GET /metrics`: the Prometheus text exposition of this instance's registry.
 * With a configured token (RUNWATCH_METRICS_TOKEN) it needs
 * `Authorization: Bearer <token>` and answers 401 otherwise; without one it is open.
 */
import { timingSafeEqual } from 'node:crypto';
import type { Plugin } from 'graphql-yoga';
import { parseBearer } from '../auth/tokens.js';
import type { Metrics } from './metrics.js';

/** Path of the endpoint. */
export const METRICS_PATH = '/metrics';

const sameSecret = (given: string, expected: string) => {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
};

/** The Yoga plugin serving {@link METRICS_PATH}. */
export function useMetricsEndpoint(metrics: Metrics, token: string | undefined): Plugin {
  return {
    onRequest({ request, url, fetchAPI, endResponse }) {
      if (url.pathname !== METRICS_PATH) return;
      if (request.method !== 'GET' && request.method !== 'HEAD') {
        endResponse(new fetchAPI.Response('method not allowed\n', { status: 405, headers: { allow: 'GET, HEAD' } }));
        return;
      }
      if (token) {
        const given = parseBearer(request.headers.get('authorization'));
        if (!given || !sameSecret(given, token)) {
          endResponse(new fetchAPI.Response('unauthorized\n', { status: 401, headers: { 'www-authenticate': 'Bearer realm="metrics"' } }));
          return;
        }
      }
      return metrics.scrape().then(({ contentType, body }) => {
        endResponse(new fetchAPI.Response(request.method === 'HEAD' ? null : body, { status: 200, headers: { 'content-type': contentType, 'cache-control': 'no-store' } }));
      });
    },
  };
}
