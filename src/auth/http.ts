import type { NextFunction, Request, Response } from 'express';
import { TangentError } from '../errors.js';
import { knownError, sendError } from '../http/errors.js';
import type { RateLimits } from '../http/rate-limit.js';
import { requestState } from '../http/request-id.js';
import type { Authenticator } from './authenticate.js';

/**
 * Express middleware for /graphql: authenticates the caller (before the body is read, so a caller
 * without a key cannot make the server parse 64 MB), then counts the request against the caller's
 * rate limit. Refusals answer at once: 401 UNAUTHENTICATED, 429 RATE_LIMITED (with Retry-After),
 * 503 DATABASE_UNAVAILABLE when the key cannot be checked.
 */
export function authenticateRequests(authenticator: Authenticator, limits: RateLimits) {
  return async (req: Request, res: Response, next: NextFunction) => {
    const address = req.socket.remoteAddress ?? 'unknown';
    const state = requestState(res);
    try {
      await limits.assertMayAuthenticate(address);
      try {
        state.caller = await authenticator.authenticate(req.headers.authorization);
      } catch (error) {
        if (error instanceof TangentError && error.extensions.code === 'UNAUTHENTICATED') await limits.recordFailure(address);
        throw error;
      }
      await limits.consume(state.caller.key ? `key:${state.caller.key.id}` : `ip:${address}`);
    } catch (error) {
      const known = knownError(error);
      if (!known) return next(error);
      const retry = known.extensions.retryAfterSeconds;
      return sendError(res, known, typeof retry === 'number' ? { 'retry-after': String(retry) } : {});
    }
    next();
  };
}
