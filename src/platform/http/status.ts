import type { ApolloServerPlugin } from '@apollo/server';
import type { GraphQLFormattedError } from 'graphql';
import { ErrorCode } from '../errors.js';

/**
 * The one table from error code to HTTP status. Every HTTP answer that fails with a code takes its
 * status from here: exports (src/modules/curation/export-route.ts), refusals before GraphQL runs (authentication,
 * rate limits, the body parser: src/platform/http/errors.ts), GraphQL operations that produced no data
 * (statusPlugin below) and /healthz. Typed over every code, so a new code does not compile until
 * it has a row.
 *
 * GraphQL over HTTP keeps its own convention on top of the table: a response that carries data
 * (even `null` fields with errors beside them) is 200, because the operation ran and its errors
 * are per field; only a request refused before it ran, or an operation that produced no data
 * because the server could not do its part (UNAVAILABLE_CODES), answers with the table's status.
 */
export const HTTP_STATUS: Readonly<Record<ErrorCode, number>> = {
  BAD_USER_INPUT: 400,
  NOT_FOUND: 404,
  CONFLICT: 409,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  RATE_LIMITED: 429,
  // 409 rather than 202: a 2xx answer would let a downloader (curl -f, a CSV reader) take the error
  // body for the file. The body carries extensions.jobId when a job is computing the terms, and
  // Retry-After says when to look again.
  TERMS_PENDING: 409,
  TERMS_MISSING: 409,
  // The request is well formed but the stored model cannot be run: retrying does not help.
  MODEL_UNUSABLE: 422,
  DATABASE_UNAVAILABLE: 503,
  OUTCOME_UNKNOWN: 503,
  TIMEOUT: 504,
  INTERNAL_SERVER_ERROR: 500,
  GRAPHQL_PARSE_FAILED: 400,
  GRAPHQL_VALIDATION_FAILED: 400,
  BAD_REQUEST: 400,
  PAYLOAD_TOO_LARGE: 413,
  OPERATION_RESOLUTION_FAILURE: 400,
  // Automatic persisted queries answer "send the whole query" with 200, as Apollo's clients expect.
  PERSISTED_QUERY_NOT_FOUND: 200,
  PERSISTED_QUERY_NOT_SUPPORTED: 400,
  PERSISTED_QUERY_HASH_MISMATCH: 400,
  AUTH_THROTTLED: 429,
  COMPUTE_FORBIDDEN: 403,
  COMPUTE_BUDGET_EXCEEDED: 429,
};

/** The status for a code; an unknown code (a library's own) is a server error. */
export function statusOf(code: unknown): number {
  return typeof code === 'string' && Object.hasOwn(HTTP_STATUS, code) ? HTTP_STATUS[code as ErrorCode] : 500;
}

/** Seconds a client should wait before retrying after the database was unavailable or a commit's outcome unknown. */
export const UNAVAILABLE_RETRY_AFTER_S = 5;
/** Seconds before asking again for terms a job is computing. */
export const TERMS_PENDING_RETRY_AFTER_S = 5;

/**
 * Codes with which an operation that produced no data answers its 5xx status instead of GraphQL's
 * 200: the server, not the request, is at fault, and proxies and clients retry on 503/504.
 */
const UNAVAILABLE_CODES: ReadonlySet<string> = new Set([ErrorCode.DATABASE_UNAVAILABLE, ErrorCode.OUTCOME_UNKNOWN, ErrorCode.TIMEOUT]);

/** The Retry-After value (seconds) that goes with an error, when a retry can succeed later. */
export function retryAfterOf(code: unknown, extensions: Readonly<Record<string, unknown>> = {}): number | undefined {
  const waits = code === ErrorCode.RATE_LIMITED || code === ErrorCode.AUTH_THROTTLED || code === ErrorCode.COMPUTE_BUDGET_EXCEEDED;
  if (waits && typeof extensions.retryAfterSeconds === 'number') return extensions.retryAfterSeconds;
  if (code === ErrorCode.DATABASE_UNAVAILABLE || code === ErrorCode.OUTCOME_UNKNOWN) return UNAVAILABLE_RETRY_AFTER_S;
  if (code === ErrorCode.TERMS_PENDING) return TERMS_PENDING_RETRY_AFTER_S;
  return undefined;
}

/**
 * The status of a GraphQL response without data: the table's, when every error is of the server's
 * making (UNAVAILABLE_CODES), the highest of theirs; otherwise null (GraphQL's own status stands).
 */
export function noDataStatus(errors: readonly GraphQLFormattedError[]): { status: number; retryAfter?: number } | null {
  const codes = errors.map((e) => e.extensions?.code);
  if (codes.length === 0 || !codes.every((c) => typeof c === 'string' && UNAVAILABLE_CODES.has(c))) return null;
  const status = Math.max(...codes.map(statusOf));
  const retries = codes.map((c) => retryAfterOf(c)).filter((s): s is number => s !== undefined);
  return { status, ...(retries.length ? { retryAfter: Math.max(...retries) } : {}) };
}

/**
 * Apollo plugin: an operation that produced no data because the database was unavailable, the
 * outcome of its commit is unknown, or it timed out answers 503/504 (with Retry-After) rather
 * than 200. Apollo's status for the errors it knows (a parse failure's 400, an error carrying
 * `extensions.http`) is left as it is.
 */
export function statusPlugin<C extends object>(): ApolloServerPlugin<C> {
  return {
    async requestDidStart() {
      return {
        async willSendResponse({ response }) {
          if (response.body.kind !== 'single') return;
          const { data, errors } = response.body.singleResult;
          if (data !== null && data !== undefined) return;
          if (response.http.status !== undefined && response.http.status !== 200) return;
          const outcome = noDataStatus(errors ?? []);
          if (!outcome) return;
          response.http.status = outcome.status;
          if (outcome.retryAfter !== undefined) response.http.headers.set('retry-after', String(outcome.retryAfter));
        },
      };
    },
  };
}
