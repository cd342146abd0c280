import type { IncomingMessage, ServerResponse } from 'node:http';
import { GraphQLError } from 'graphql';
import { isConnectionError, isStatementTimeout } from '../db/prisma-errors.js';
import { DatabaseUnavailableError, ErrorCode, TangentError, TimeoutError } from '../errors.js';
import type { Logger } from '../logger.js';
import { retryAfterOf, statusOf } from './status.js';

/**
 * A JSON answer through node's own response API, byte for byte what express's `res.status().json()`
 * sends (the same Content-Type, a Content-Length, no ETag: the app turns them off), so that it
 * serves both the express routes and the POST /graphql path that bypasses express (src/server.ts).
 */
export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.statusCode = status;
  if (!res.hasHeader('content-type')) res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(text));
  res.end(text);
}

/**
 * Errors raised outside GraphQL execution (authentication, rate limits, the body parser, exports)
 * answered in GraphQL's response shape, so that a client reads every failure the same way, with
 * the status of src/platform/http/status.ts and a Retry-After where waiting helps.
 */
export function sendError(res: ServerResponse, error: TangentError, headers: Record<string, string> = {}): void {
  const code = error.extensions.code;
  const retryAfter = retryAfterOf(code, error.extensions);
  if (retryAfter !== undefined) res.setHeader('retry-after', String(retryAfter));
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
  const { http: _http, ...extensions } = error.extensions;
  sendJson(res, statusOf(code), { errors: [{ message: error.message, extensions }] });
}

/** Our error for a failure we can name (lost database, timeout), or null for a truly unexpected one. */
export function knownError(error: unknown): TangentError | null {
  if (error instanceof TangentError) return error;
  if (isConnectionError(error)) return new DatabaseUnavailableError();
  if (isStatementTimeout(error)) return new TimeoutError('The query');
  return null;
}

/** The same error with the HTTP status Apollo should answer with when it fails the whole request. */
export function withHttpStatus<E extends GraphQLError>(error: E): E {
  (error.extensions as Record<string, unknown>).http = { status: statusOf(error.extensions.code) };
  return error;
}

/**
 * The last error handler of the HTTP app: body-parser refusals (oversize, malformed JSON) and
 * failures of our own middleware become clean GraphQL-shaped errors; nothing else leaks. Written
 * over node's request and response, so the POST /graphql path that bypasses express answers the same.
 */
export function errorHandler(maxBodyBytes: number, log: Logger) {
  return (error: unknown, req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void) => {
    if (res.headersSent) return next(error);
    const parser = error as { status?: number; type?: string };
    if (parser && typeof parser.status === 'number' && typeof parser.type === 'string') {
      const tooLarge = parser.type === 'entity.too.large';
      return sendError(
        res,
        tooLarge
          ? new TangentError(ErrorCode.PAYLOAD_TOO_LARGE, `The request body is larger than ${maxBodyBytes} bytes`)
          : new TangentError(ErrorCode.BAD_REQUEST, 'The request body is not valid JSON'),
      );
    }
    const known = knownError(error);
    if (known) return sendError(res, known);
    const locals = (res as { locals?: { log?: Logger } }).locals;
    (locals?.log ?? log).error({ err: error, path: pathOf(req) }, 'unexpected error outside GraphQL');
    sendError(res, new TangentError(ErrorCode.INTERNAL_SERVER_ERROR, 'Internal server error'));
  };
}

/** The path of a request, without its query string (what express calls `req.path` at the top of the app). */
export function pathOf(req: IncomingMessage): string {
  const url = (req as { originalUrl?: string }).originalUrl ?? req.url ?? '/';
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}
