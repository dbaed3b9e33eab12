/**
 * The GraphQL context every resolver receives, for HTTP, SSE and graphql-ws alike.
 */
import type { Logger } from 'pino';
import type { Viewer } from '../auth/tokens.js';
import type { ActivityService } from '../services/activity.js';
import type { CommandService } from '../services/commands.js';
import type { JobService, StreamTransport } from '../services/jobs.js';
import type { ShareService } from '../services/share.js';
import type { TrainingService } from '../services/training.js';

/** Services resolvers may call. Resolvers stay thin: they translate arguments and call these. */
export interface Services {
  jobs: JobService;
  /** Job-view (share link) tokens; holds the server's signing secret. */
  share: ShareService;
  training: TrainingService;
  commands: CommandService;
  activity: ActivityService;
}

export interface Context {
  /** The authenticated caller (the context cannot be built without one). */
  viewer: Viewer;
  services: Services;
  log: Logger;
  /** Connection-level actions for streams (dropping a slow consumer). */
  transport: StreamTransport;
}
