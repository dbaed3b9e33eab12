/**
 * GraphiQL at `/graphql` in a browser, served entirely from npm packages
 * (`@graphql-yoga/render-graphiql` inlines GraphiQL's scripts, styles and
 * editor workers into the page), so it works on a machine without internet:
 * no request leaves the server's origin. Its default tab holds a runwatch
 * example — create a job, then watch it — and, in dev mode, the dev token header.
 */
import type { GraphiQLOptions } from 'graphql-yoga';

/**
 * The default tab's document: two operations, run one at a time with GraphiQL's
 * run button. Its lines stay within 50 characters and 24 lines, so at 1440×900
 * none of it is hidden under the editor's toolbar or behind the Variables pane. They select what reads well: counts, status, stage and ETA rather
 * than the full-precision `percent` and `rate` floats (clients format those:
 * `55%`, `17.3 items/s`).
 */
export const EXAMPLE_DOCUMENT = `# runwatch: watch long-running work live.
# 1. Run CreateJob; put its id in Variables
#    below (runId).
# 2. Run WatchJob: a SNAPSHOT, then every event
#    until the job ends. Report progress with
#    reportProgress in a new tab (+), or watch
#    the jobs of \`npm run demo\`.

mutation CreateJob {
  createBatchJob(input: {
    name: "my first job", kind: BATCH, total: 100
  }) {
    id
    status
  }
}

subscription WatchJob($runId: ID!) {
  runProgress(runId: $runId) {
    type
    cursor
    job { status completed total stage etaSeconds }
  }
}
`;

/**
 * Yoga's `graphiql` options: the example tab, the dev token header when given, SSE for subscriptions,
 * and the Variables pane open (that is where the job id goes; GraphiQL would open Headers otherwise,
 * since the tab has headers).
 */
export function graphiqlOptions(devToken?: string): GraphiQLOptions {
  const headers = devToken ? JSON.stringify({ Authorization: `Bearer ${devToken}` }, null, 2) : undefined;
  const variables = JSON.stringify({ runId: 'paste the id here' }, null, 2);
  // `variables` is passed on to GraphiQL as its initial variables (render-graphiql spreads the options into
  // GraphiQL's props) though Yoga's `GraphiQLOptions` type does not list it.
  const options: GraphiQLOptions & { variables: string } = {
    title: 'runwatch',
    subscriptionsProtocol: 'SSE',
    defaultQuery: EXAMPLE_DOCUMENT,
    defaultTabs: [{ query: EXAMPLE_DOCUMENT, variables, ...(headers ? { headers } : {}) }],
    // GraphiQL's editor shows the top-level initial variables and headers; the tab's alone leave the pane empty.
    variables,
    ...(headers ? { headers } : {}),
    defaultEditorToolsVisibility: 'variables',
    // Ask for everything the server can say (graphql-js's full introspection query).
    schemaDescription: true,
    inputValueDeprecation: true,
    directiveIsRepeatable: true,
  };
  return options;
}

const pages = new Map<string, string>();
let renderer: Promise<(options: GraphiQLOptions) => string> | null = null;

/**
 * Renders the offline GraphiQL page (about 9 MB of inlined HTML and scripts),
 * once per distinct set of options. The renderer is imported on the first
 * page view, so servers start without parsing it.
 */
export async function renderOfflineGraphiQL(options: GraphiQLOptions): Promise<string> {
  const key = JSON.stringify(options);
  let page = pages.get(key);
  if (page === undefined) {
    renderer ??= import('@graphql-yoga/render-graphiql').then((m) => m.renderGraphiQL);
    page = (await renderer)(options);
    if (pages.size > 8) pages.clear();
    pages.set(key, page);
  }
  return page;
}
