import { unwrapResolverError } from '@apollo/server/errors';
import type { GraphQLFormattedError } from 'graphql';
import { GraphQLError } from 'graphql';
import { isConnectionError, isStatementTimeout } from '../db/prisma-errors.js';
import { ErrorCode, TangentError } from '../errors.js';
import type { Logger } from '../logger.js';

/** Codes graphql-js and Apollo assign to requests that are wrong before any resolver runs. */
const PASS_THROUGH = new Set([
  'GRAPHQL_PARSE_FAILED',
  'GRAPHQL_VALIDATION_FAILED',
  'BAD_USER_INPUT',
  'BAD_REQUEST',
  'OPERATION_RESOLUTION_FAILURE',
  'PERSISTED_QUERY_NOT_FOUND',
  'PERSISTED_QUERY_NOT_SUPPORTED',
  'PERSISTED_QUERY_HASH_MISMATCH',
]);

/**
 * What a client sees of an error: our own errors as they are; the request's own mistakes as
 * graphql-js words them; a lost database or a timeout under their own codes; anything else as
 * INTERNAL_SERVER_ERROR with only the request id, the details going to the log.
 */
export function formatError(log: Logger) {
  return (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
    const original = unwrapResolverError(error);
    const requestId = (formatted.extensions?.requestId as string | undefined) ?? undefined;
    if (original instanceof TangentError) {
      return { message: original.message, path: formatted.path, locations: formatted.locations, extensions: publicExtensions(original.extensions) };
    }
    // A scalar refusing a literal surfaces as a validation error wrapping ours: keep our code.
    const ours = findTangentError(original);
    if (ours) return { message: formatted.message, locations: formatted.locations, extensions: publicExtensions(ours.extensions) };
    const code = formatted.extensions?.code;
    // A RangeError under a request error (a parser out of stack answered GRAPHQL_PARSE_FAILED with
    // "Maximum call stack size exceeded"): a request code stands, the words never reach the client.
    const exhausted = wrappedRangeError(original);
    if (exhausted) {
      if (!logged.has(exhausted)) log.warn({ err: exhausted, code, path: formatted.path, requestId }, 'a RangeError refused a request');
      if (typeof code === 'string' && PASS_THROUGH.has(code)) return { message: WRAPPED_MESSAGE[code] ?? 'The request is nested too deeply or is too large to process', extensions: { code } };
      return { message: 'Internal server error', path: formatted.path, extensions: { code: ErrorCode.INTERNAL_SERVER_ERROR } };
    }
    if (typeof code === 'string' && PASS_THROUGH.has(code) && !(original instanceof Error && !(original instanceof GraphQLError))) {
      const { stacktrace: _omit, ...extensions } = formatted.extensions ?? {};
      return { ...formatted, extensions };
    }
    const apollo = apolloRequestRefusal(error);
    if (apollo) return apollo;
    if (isConnectionError(original)) {
      return { message: 'The database cannot be reached right now; nothing was written', path: formatted.path, extensions: { code: ErrorCode.DATABASE_UNAVAILABLE } };
    }
    if (isStatementTimeout(original)) {
      return { message: 'The query ran past its time limit; nothing was written', path: formatted.path, extensions: { code: ErrorCode.TIMEOUT } };
    }
    if (!logged.has(original as object)) log.error({ err: original, path: formatted.path, requestId }, 'unexpected error');
    return { message: 'Internal server error', path: formatted.path, extensions: { code: ErrorCode.INTERNAL_SERVER_ERROR } };
  };
}

/** `extensions.http` tells Apollo the response status; it is not for the client. */
function publicExtensions(extensions: Record<string, unknown>): Record<string, unknown> {
  const { http: _http, ...rest } = extensions;
  return rest;
}

/** Errors already logged with their request's logger (and id), so formatError does not log them again. */
const logged = new WeakSet<object>();

/**
 * Logs an error that will reach the client as INTERNAL_SERVER_ERROR through the request's own
 * logger, which carries the request id; formatError then only hides it.
 */
export function logIfUnexpected(log: Logger, error: unknown, path?: readonly (string | number)[]): void {
  const original = unwrapResolverError(error);
  if (!original || typeof original !== 'object' || logged.has(original)) return;
  if (original instanceof TangentError || findTangentError(original) || isConnectionError(original) || isStatementTimeout(original)) return;
  const code = error instanceof GraphQLError ? error.extensions?.code : undefined;
  if (typeof code === 'string' && PASS_THROUGH.has(code) && !(original instanceof Error && !(original instanceof GraphQLError))) return;
  logged.add(original);
  log.error({ err: original, path }, 'unexpected error');
}

/**
 * Apollo refuses a few malformed persisted-query requests with a 400 and no code ("provided sha
 * does not match query", "Unsupported persisted query version"), which would read as internal
 * errors. Their words are Apollo's own fixed text about the request: given a code, they pass.
 * (HTTP requests with a mismatched hash are refused before Apollo, src/platform/http/input-guard.ts.)
 */
function apolloRequestRefusal(error: unknown): GraphQLFormattedError | null {
  if (!(error instanceof GraphQLError) || error.originalError || error.extensions.code !== undefined) return null;
  const http = error.extensions.http as { status?: unknown } | undefined;
  if (http?.status !== 400) return null;
  const code = error.message === 'provided sha does not match query' ? ErrorCode.PERSISTED_QUERY_HASH_MISMATCH : ErrorCode.BAD_REQUEST;
  return { message: error.message, extensions: { code } };
}

/** What a client reads instead of a RangeError's message under a request-error code. */
const WRAPPED_MESSAGE: Record<string, string> = {
  GRAPHQL_PARSE_FAILED: 'The document could not be parsed: it is nested too deeply or is too large',
  GRAPHQL_VALIDATION_FAILED: 'The document could not be validated: it is nested too deeply or is too large',
};

/** A RangeError (stack or memory exhausted by an input's size) in an error's chain, or null. */
function wrappedRangeError(error: unknown): RangeError | null {
  for (let e: unknown = error, depth = 0; e && depth < 5; e = (e as { originalError?: unknown }).originalError, depth++) {
    if (e instanceof RangeError) return e;
  }
  return null;
}

function findTangentError(error: unknown): TangentError | null {
  for (let e: unknown = error, depth = 0; e && depth < 5; e = (e as { originalError?: unknown }).originalError, depth++) {
    if (e instanceof TangentError) return e;
  }
  return null;
}
