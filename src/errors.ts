import { GraphQLError } from 'graphql';

/**
 * Every error code the API returns, in one place. Clients branch on `extensions.code`; the codes
 * are part of the public contract and never change meaning.
 */
export const ErrorCode = {
  /** An argument is malformed or inconsistent; `extensions.field` names it when one is to blame. */
  BAD_USER_INPUT: 'BAD_USER_INPUT',
  /** An id that does not exist (or no longer exists). */
  NOT_FOUND: 'NOT_FOUND',
  /** The write would break a uniqueness rule, e.g. a dataset name already taken. */
  CONFLICT: 'CONFLICT',
  /** No credentials, or credentials that are not valid. */
  UNAUTHENTICATED: 'UNAUTHENTICATED',
  /** Valid credentials whose role does not allow the operation. */
  FORBIDDEN: 'FORBIDDEN',
  /** Too many requests for this key; retry after `extensions.retryAfterSeconds`. */
  RATE_LIMITED: 'RATE_LIMITED',
  /** Terms the query needs are still being computed; `extensions.jobId` says by which job. */
  TERMS_PENDING: 'TERMS_PENDING',
  /** The database cannot be reached right now; nothing was written. Retry later. */
  DATABASE_UNAVAILABLE: 'DATABASE_UNAVAILABLE',
  /** A statement or computation ran past its time limit; nothing was written. */
  TIMEOUT: 'TIMEOUT',
  /** Anything unexpected. The details are in the server log under the request id, never here. */
  INTERNAL_SERVER_ERROR: 'INTERNAL_SERVER_ERROR',
} as const;

export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Base class: a GraphQL error whose code is one of ErrorCode. */
export class TangentError extends GraphQLError {
  constructor(code: ErrorCode, message: string, extensions: Record<string, unknown> = {}) {
    super(message, { extensions: { ...extensions, code } });
  }
}

export class BadUserInputError extends TangentError {
  constructor(message: string, field?: string, extensions: Record<string, unknown> = {}) {
    super(ErrorCode.BAD_USER_INPUT, message, field ? { ...extensions, field } : extensions);
  }
}

export class NotFoundError extends TangentError {
  constructor(entity: string, id: string | number) {
    super(ErrorCode.NOT_FOUND, `${entity} ${id} does not exist`, { entity, id: String(id) });
  }
}

export class ConflictError extends TangentError {
  constructor(message: string, extensions: Record<string, unknown> = {}) {
    super(ErrorCode.CONFLICT, message, extensions);
  }
}

export class UnauthenticatedError extends TangentError {
  constructor(message = 'A valid API key is required: send `Authorization: Bearer <key>`') {
    super(ErrorCode.UNAUTHENTICATED, message);
  }
}

export class ForbiddenError extends TangentError {
  constructor(required: string, actual: string) {
    super(ErrorCode.FORBIDDEN, `This operation needs the ${required} role; the key has ${actual}`, {
      requiredRole: required,
    });
  }
}

export class RateLimitedError extends TangentError {
  constructor(retryAfterSeconds: number) {
    super(ErrorCode.RATE_LIMITED, 'Too many requests for this key', { retryAfterSeconds });
  }
}

export class TermsPendingError extends TangentError {
  constructor(jobId: string, message = 'The terms this query needs are still being computed') {
    super(ErrorCode.TERMS_PENDING, message, { jobId });
  }
}

export class DatabaseUnavailableError extends TangentError {
  constructor() {
    super(ErrorCode.DATABASE_UNAVAILABLE, 'The database cannot be reached right now; nothing was written');
  }
}

export class TimeoutError extends TangentError {
  constructor(what: string) {
    super(ErrorCode.TIMEOUT, `${what} ran past its time limit; nothing was written`);
  }
}

/** For states the code believes cannot happen; failing loudly beats continuing wrong. */
export function invariant(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(`Invariant violated: ${message}`);
}
