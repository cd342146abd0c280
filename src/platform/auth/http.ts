import type { IncomingMessage, ServerResponse } from 'node:http';
import { ErrorCode, TangentError } from '../errors.js';
import { knownError, sendError } from '../http/errors.js';
import type { RateLimits } from '../http/rate-limit.js';
import { requestState } from '../http/request-id.js';
import type { Authenticator } from './authenticate.js';
import type { ClientAddress } from './client-address.js';
import type { Caller } from './roles.js';

/**
 * Who is calling, and may they: the key is verified first, then, and only for a valid caller, the
 * request is counted against that caller's own budget. A failure is counted against the client's
 * address instead (AUTH_THROTTLED past TANGENT_AUTH_FAILURES_PER_MIN), so someone else's failures
 * from the same address never refuse a valid key. HTTP and WebSocket both come through here.
 * `count: false` checks without spending (a WebSocket's connect; each subscribe is counted).
 */
export async function admit(
  authenticator: Authenticator,
  limits: RateLimits,
  authorization: string | undefined | null,
  address: string,
  options: { count?: boolean } = {},
): Promise<Caller> {
  let caller: Caller;
  try {
    caller = await authenticator.authenticate(authorization);
  } catch (error) {
    if (error instanceof TangentError && error.extensions.code === ErrorCode.UNAUTHENTICATED) await limits.failedAuthentication(address);
    throw error;
  }
  if (options.count !== false) await limits.consume(caller, address);
  return caller;
}

/**
 * Middleware for /graphql and /export: admits the caller (before the body is read, so a
 * caller without a key cannot make the server parse 64 MB). Refusals answer at once: 401
 * UNAUTHENTICATED, 429 AUTH_THROTTLED or RATE_LIMITED (with Retry-After), 503 DATABASE_UNAVAILABLE
 * when the key cannot be checked. Written over node's request and response: it serves the express
 * routes and the POST /graphql path that bypasses express alike.
 */
export function authenticateRequests(authenticator: Authenticator, limits: RateLimits, clientAddress: ClientAddress) {
  return async (req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void) => {
    const state = requestState(res);
    try {
      state.caller = await admit(authenticator, limits, req.headers.authorization, clientAddress(req));
    } catch (error) {
      const known = knownError(error);
      if (!known) return next(error);
      const retry = known.extensions.retryAfterSeconds;
      return sendError(res, known, typeof retry === 'number' ? { 'retry-after': String(retry) } : {});
    }
    next();
  };
}
