/**
 * The GraphQL context every resolver receives, for HTTP, SSE and graphql-ws alike.
 */
import type { Logger } from 'pino';
import type { ViewerContext } from '../request-context.js';
import type { ActivityService } from '../services/activity.js';
import type { CommandService } from '../services/commands.js';
import type { StreamTransport } from '../delivery/live-stream.js';
import type { JobService } from '../services/jobs.js';
import type { ResultsService } from '../services/results.js';
import type { ShareService } from '../services/share.js';
import type { TrainingService } from '../services/training.js';
import type { WebhookService } from '../services/webhooks.js';

/** Services resolvers may call. Resolvers stay thin: they translate arguments and call these. */
export interface Services {
  jobs: JobService;
  /** Item results, steps, logs, gauges and metric history of jobs. */
  results: ResultsService;
  /** Job-view (share link) tokens; holds the server's signing secret. */
  share: ShareService;
  training: TrainingService;
  commands: CommandService;
  activity: ActivityService;
  webhooks: WebhookService;
}

/** The context resolvers get: the {@link ViewerContext} plugins read, plus the services. */
export interface Context extends ViewerContext {
  services: Services;
  log: Logger;
  /** Connection-level actions for streams (dropping a slow consumer). */
  transport: StreamTransport;
}
