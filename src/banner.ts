/**
 * What `npm start` prints on stdout once it listens: where the server is, and a line for the
 * clients' shell, ready to paste.
 */

/**
 * The start banner of a server listening at `graphqlUrl` (`http://host:port/graphql`):
 *
 * ```text
 * runwatch is running at http://127.0.0.1:4000/graphql (backend: memory)
 * GraphiQL:  http://127.0.0.1:4000/graphql (open it in a browser)
 * Dashboard: http://127.0.0.1:4000/
 *
 * Dev mode (RUNWATCH_JWT_SECRET unset): a random secret, and a token with every scope. For clients:
 * export RUNWATCH_URL=http://127.0.0.1:4000 RUNWATCH_TOKEN=eyJ…
 * ```
 *
 * In dev mode the export line carries the dev token; with a real secret, only the URL (tokens come
 * from `runwatch token`). Clients (Node and Python) accept the origin with or without `/graphql`.
 */
export function banner(graphqlUrl: string, backendKind: string, devToken: string | null | undefined): string {
  const origin = graphqlUrl.replace(/\/graphql$/, '');
  const exportLine = devToken
    ? `Dev mode (RUNWATCH_JWT_SECRET unset): a random secret, and a token with every scope. For clients:\nexport RUNWATCH_URL=${origin} RUNWATCH_TOKEN=${devToken}`
    : `For clients (with a token from \`npx runwatch token --sub <you>\`):\nexport RUNWATCH_URL=${origin}`;
  return [
    '',
    `runwatch is running at ${graphqlUrl} (backend: ${backendKind})`,
    `GraphiQL:  ${graphqlUrl} (open it in a browser)`,
    `Dashboard: ${origin}/`,
    '',
    exportLine,
    '',
    '',
  ].join('\n');
}
