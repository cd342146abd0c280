import { OPEN_CALLER, type Caller } from '../platform/auth/roles.js';
import type { Config } from '../platform/config.js';
import type { Database } from '../platform/db/database.js';
import { invariant } from '../platform/errors.js';
import type { RequestContext } from '../platform/request-context.js';
import type { ComputeRuntime } from './jobs/runtime.js';
import { createLoaders, type Loaders } from './loaders.js';
import type { Logger } from '../platform/logger.js';
import type { PubSub } from '../platform/pubsub.js';

/**
 * What every resolver receives: the platform's part (config, database, pubsub, log, request id,
 * caller), the compute runtime, and loaders made fresh for each request.
 */
export interface Context extends RequestContext {
  loaders: Loaders;
  /**
   * The compute runtime this process started (job queue, compute threads): the server's, or a
   * command's. Reading it where none was started is an internal error (an invariant).
   */
  readonly runtime: ComputeRuntime;
  /**
   * The same, or undefined where the process started none (a command that only reads). Optional:
   * a context built by hand (tests, benches) has none, and computes nothing.
   */
  readonly runtimeIfStarted?: ComputeRuntime | undefined;
}

/**
 * The parts of the context that live as long as the server. `runtime` is absent where the process
 * starts none (commands that only read, tests that build contexts by hand).
 */
export type Services = Pick<Context, 'config' | 'db' | 'pubsub' | 'log'> & { runtime?: ComputeRuntime | undefined };

/**
 * A request's context. Its loaders and its logger are made when first used, not up front: a
 * request that reads nothing (`{ __typename }`, a refusal) or logs nothing makes neither, and a
 * request's loaders are a dozen DataLoaders. `log` may be given as a function that makes it.
 */
export function createContext(services: Services, requestId: string, caller: Caller = OPEN_CALLER, log?: Logger | (() => Logger)): Context {
  return new LazyContext(services, requestId, caller, log);
}

/**
 * The lazy members are accessors on the prototype over plain own fields, because Apollo copies the
 * context for each operation (Object.assign onto an object of the same prototype): accessors of
 * the object itself would be read, and so made, by that copy.
 */
class LazyContext implements Context {
  readonly config: Config;
  readonly db: Database;
  readonly pubsub: PubSub;
  readonly runtimeIfStarted: ComputeRuntime | undefined;
  private madeLoaders: Loaders | undefined = undefined;
  private madeLog: Logger | undefined;
  private readonly makeLog: () => Logger;

  constructor(
    services: Services,
    readonly requestId: string,
    readonly caller: Caller,
    log: Logger | (() => Logger) | undefined,
  ) {
    this.config = services.config;
    this.db = services.db;
    this.pubsub = services.pubsub;
    this.runtimeIfStarted = services.runtime;
    this.madeLog = typeof log === 'function' ? undefined : log;
    this.makeLog = typeof log === 'function' ? log : () => services.log.child({ requestId });
  }

  get runtime(): ComputeRuntime {
    invariant(this.runtimeIfStarted, 'no compute runtime was started for this database (createServer and the worker/compute commands start one)');
    return this.runtimeIfStarted;
  }

  get loaders(): Loaders {
    return (this.madeLoaders ??= createLoaders(this.db));
  }

  set loaders(value: Loaders) {
    this.madeLoaders = value;
  }

  get log(): Logger {
    return (this.madeLog ??= this.makeLog());
  }

  set log(value: Logger) {
    this.madeLog = value;
  }
}

/**
 * A subscription keeps one context for its whole life, but each event must read the database
 * afresh: give it new loaders before resolving the event.
 */
export function refreshLoaders(ctx: Context): void {
  ctx.loaders = createLoaders(ctx.db);
}
