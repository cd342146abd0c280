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

/**
 * A request's context. Its loaders and its logger are made when first used, not up front: a
 * request that reads nothing (`{ __typename }`, a refusal) or logs nothing makes neither, and a
 * request's loaders are a dozen DataLoaders. `log` may be given as a function that makes it.
 */
export function createContext(services: Services, requestId: string, caller: Caller = OPEN_CALLER, log?: Logger | (() => Logger)): Context {
  let loaders: Loaders | undefined;
  let logger: Logger | undefined = typeof log === 'function' ? undefined : log;
  return {
    config: services.config,
    db: services.db,
    pubsub: services.pubsub,
    get loaders() {
      return (loaders ??= createLoaders(services.db));
    },
    set loaders(value: Loaders) {
      loaders = value;
    },
    get log() {
      return (logger ??= typeof log === 'function' ? log() : services.log.child({ requestId }));
    },
    set log(value: Logger) {
      logger = value;
    },
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
