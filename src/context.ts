import { OPEN_CALLER, type Caller } from './auth/roles.js';
import type { Config } from './config.js';
import type { Database } from './db/database.js';
import { createLoaders, type Loaders } from './db/loaders.js';
import type { Logger } from './logger.js';
import type { PubSub } from './pubsub.js';

/** What every resolver receives: shared services, plus loaders made fresh for each request. */
export interface Context {
  config: Config;
  db: Database;
  pubsub: PubSub;
  loaders: Loaders;
  log: Logger;
  requestId: string;
  /** Who is asking: their key and role (src/auth). In-process work runs as OPEN_CALLER. */
  caller: Caller;
}

/** The parts of the context that live as long as the server. */
export type Services = Pick<Context, 'config' | 'db' | 'pubsub' | 'log'>;

export function createContext(services: Services, requestId: string, caller: Caller = OPEN_CALLER, log?: Logger): Context {
  return {
    ...services,
    loaders: createLoaders(services.db),
    log: log ?? services.log.child({ requestId }),
    requestId,
    caller,
  };
}

/**
 * A subscription keeps one context for its whole life, but each event must read the database
 * afresh: give it new loaders before resolving the event.
 */
export function refreshLoaders(ctx: Context): void {
  ctx.loaders = createLoaders(ctx.db);
}
