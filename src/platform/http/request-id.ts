import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Caller } from '../auth/roles.js';
import type { Logger } from '../logger.js';
import { pathOf } from './errors.js';

/**
 * What the middleware chain learns about a request, kept in `res.locals` (express's place for it;
 * the POST /graphql path that bypasses express sets the same property on node's response).
 */
export interface RequestState {
  requestId: string;
  /** The server's logger with the request id bound: every line about this request goes through it. */
  log: Logger;
  /** Set by the authentication middleware. */
  caller?: Caller;
}

export function requestState(res: ServerResponse): RequestState {
  return (res as ServerResponse & { locals: RequestState }).locals;
}

/**
 * `res.locals` of a request: the child logger is made the first time something logs about the
 * request (most never do), by an accessor on the prototype, cheaper per request than defining one.
 */
class RequestLocals implements RequestState {
  caller?: Caller;
  private child: Logger | undefined = undefined;

  constructor(
    readonly requestId: string,
    private readonly base: Logger,
  ) {}

  get log(): Logger {
    return (this.child ??= this.base.child({ requestId: this.requestId }));
  }

  set log(value: Logger) {
    this.child = value;
  }
}

/** A client-supplied id is kept when it is short and plain (so logs can be joined across services). */
const CLIENT_ID = /^[\w.-]{1,100}$/;

/**
 * Gives each request an id (the client's `x-request-id`, or a fresh UUID), echoes it in the
 * response, binds it to a child logger, and logs the outcome: failures at info/warn, successes at
 * debug (a line per successful request would cost more than the request under load). Written here
 * rather than taken from pino-http because the id must exist before authentication and rate
 * limiting run, and those are ours.
 */
export function requestId(log: Logger) {
  return (req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void) => {
    const header = req.headers['x-request-id'];
    const id = typeof header === 'string' && CLIENT_ID.test(header) ? header : randomUUID();
    res.setHeader('x-request-id', id);
    const state = new RequestLocals(id, log);
    (res as ServerResponse & { locals: RequestState }).locals = state;
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      if (res.statusCode < 400 && !log.isLevelEnabled('debug')) return;
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      const line = { method: req.method, path: pathOf(req), status: res.statusCode, ms: Math.round(ms * 10) / 10, keyId: state.caller?.key?.id };
      if (res.statusCode >= 500) state.log.warn(line, 'request failed');
      else if (res.statusCode >= 400) state.log.info(line, 'request refused');
      else state.log.debug(line, 'request done');
    });
    next();
  };
}
