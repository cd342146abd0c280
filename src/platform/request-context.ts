import type { Caller } from './auth/roles.js';
import type { Config } from './config.js';
import type { Database } from './db/database.js';
import type { Logger } from './logger.js';
import type { PubSub } from './pubsub.js';

/**
 * The part of a request's context that the platform reads (authorization, the HTTP and WebSocket
 * plugins, logging): what the server gives every request. The modules' Context
 * (src/modules/context.ts) extends it with what resolvers need besides (loaders, the compute runtime).
 */
export interface RequestContext {
  config: Config;
  db: Database;
  pubsub: PubSub;
  log: Logger;
  requestId: string;
  /** Who is asking: their key and role (src/platform/auth). In-process work runs as OPEN_CALLER. */
  caller: Caller;
}
