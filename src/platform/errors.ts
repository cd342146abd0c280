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
  /**
   * A valid key (or, on a server that runs open, an address without one) made too many requests this
   * minute; retry after `extensions.retryAfterSeconds`. Failed authentications are AUTH_THROTTLED.
   */
  RATE_LIMITED: 'RATE_LIMITED',
  /**
   * Terms the query needs are missing. `extensions.jobId` names the job computing them; without a
   * jobId nothing is (the caller may not start computation, `extensions.reason` says so) and
   * `extensions.missing` lists {term, count}.
   */
  TERMS_PENDING: 'TERMS_PENDING',
  /**
   * Samples in the query's scope lack a term it filters, ranks or summarises by (a missing value is
   * never read as zero); `extensions.missing` lists {term, count} and `extensions.checkpointId` says where.
   */
  TERMS_MISSING: 'TERMS_MISSING',
  /**
   * Terms cannot be computed at a checkpoint because its stored model or weights cannot be run
   * (unknown architecture, weights that do not fit the topology…); `extensions.checkpointId` says
   * where and the message why. Nothing was computed.
   */
  MODEL_UNUSABLE: 'MODEL_UNUSABLE',
  /** The database cannot be reached right now; nothing was written. Retry later. */
  DATABASE_UNAVAILABLE: 'DATABASE_UNAVAILABLE',
  /** A statement or computation ran past its time limit; nothing was written. */
  TIMEOUT: 'TIMEOUT',
  /** Anything unexpected. The details are in the server log under the request id, never here. */
  INTERNAL_SERVER_ERROR: 'INTERNAL_SERVER_ERROR',
  // The request itself is malformed, refused before any resolver runs (graphql-js and Apollo name these).
  /** The document does not parse, or has more tokens than the server accepts. */
  GRAPHQL_PARSE_FAILED: 'GRAPHQL_PARSE_FAILED',
  /** The document does not fit the schema (unknown fields, wrong argument types), or a query limit. */
  GRAPHQL_VALIDATION_FAILED: 'GRAPHQL_VALIDATION_FAILED',
  /** The HTTP request is not a GraphQL request: not JSON, no query, a batch, a wrong method. */
  BAD_REQUEST: 'BAD_REQUEST',
  /** The request body is larger than TANGENT_MAX_BODY_BYTES. */
  PAYLOAD_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  /** `operationName` names no operation of the document, or several operations and none chosen. */
  OPERATION_RESOLUTION_FAILURE: 'OPERATION_RESOLUTION_FAILURE',
  /** Automatic persisted queries: the hash is unknown (the client resends the whole query). */
  PERSISTED_QUERY_NOT_FOUND: 'PERSISTED_QUERY_NOT_FOUND',
  PERSISTED_QUERY_NOT_SUPPORTED: 'PERSISTED_QUERY_NOT_SUPPORTED',
  /** Automatic persisted queries: `sha256Hash` is not the SHA-256 of the query sent with it (HTTP 400). */
  PERSISTED_QUERY_HASH_MISMATCH: 'PERSISTED_QUERY_HASH_MISMATCH',
  /**
   * The database connection was lost while a write was committing (or a single-statement write was
   * in flight): it may or may not have been written. Every create and bulk mutation is idempotent
   * (see its description), so sending the same mutation again is safe and leaves one copy.
   */
  OUTCOME_UNKNOWN: 'OUTCOME_UNKNOWN',
  /**
   * Too many failed authentications from this client address this minute; retry after
   * `extensions.retryAfterSeconds`. A valid key from the same address is still served.
   */
  AUTH_THROTTLED: 'AUTH_THROTTLED',
  /** The caller's role may not start computation (default: WRITER and ADMIN may; TANGENT_READER_COMPUTE). */
  COMPUTE_FORBIDDEN: 'COMPUTE_FORBIDDEN',
  /**
   * The key's compute budget is spent: `extensions.limit` is `samplesPerHour` or `concurrentJobs`, with
   * the limit, what is used, and `retryAfterSeconds` where waiting helps. `viewer.computeBudget` shows it.
   */
  COMPUTE_BUDGET_EXCEEDED: 'COMPUTE_BUDGET_EXCEEDED',
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
  constructor(required: string, actual: string, field?: string) {
    super(ErrorCode.FORBIDDEN, `${field ? `\`${field}\`` : 'This operation'} needs the ${required} role; the key has ${actual}`, {
      requiredRole: required,
      ...(field ? { field } : {}),
    });
  }
}

export class RateLimitedError extends TangentError {
  constructor(retryAfterSeconds: number, message = 'Too many requests for this key') {
    super(ErrorCode.RATE_LIMITED, message, { retryAfterSeconds });
  }
}

export class AuthThrottledError extends TangentError {
  constructor(retryAfterSeconds: number) {
    super(ErrorCode.AUTH_THROTTLED, `too many failed authentications from this address; retry in ${retryAfterSeconds} s`, { retryAfterSeconds });
  }
}

export class ComputeForbiddenError extends TangentError {
  constructor(role: string, what: string) {
    super(ErrorCode.COMPUTE_FORBIDDEN, `${what} computes on the server, which a ${role} key may not start; a WRITER key may (or the operator sets TANGENT_READER_COMPUTE=on)`, {
      role,
    });
  }
}

export class ComputeBudgetExceededError extends TangentError {
  constructor(message: string, extensions: { limit: 'samplesPerHour' | 'concurrentJobs'; retryAfterSeconds?: number } & Record<string, unknown>) {
    super(ErrorCode.COMPUTE_BUDGET_EXCEEDED, message, extensions);
  }
}

export class TermsPendingError extends TangentError {
  /** `jobId` null: no job is computing them (the caller may not start one); `extensions` says what is missing. */
  constructor(jobId: string | null, message = 'The terms this query needs are still being computed', extensions: Record<string, unknown> = {}) {
    super(ErrorCode.TERMS_PENDING, message, jobId === null ? extensions : { ...extensions, jobId });
  }
}

export class TermsMissingError extends TangentError {
  constructor(checkpointId: number, missing: readonly { name: string; missing: number }[], extensions: Record<string, unknown> = {}) {
    const what = missing.map((m) => `${m.missing} sample${m.missing === 1 ? ' lacks' : 's lack'} ${m.name}`).join(', ');
    super(ErrorCode.TERMS_MISSING, `${what} at checkpoint ${checkpointId}; run computeTerms (or record them) first`, {
      ...extensions,
      checkpointId: String(checkpointId),
      missing: missing.map((m) => ({ term: m.name, count: m.missing })),
    });
  }
}

export class ModelUnusableError extends TangentError {
  /** At a checkpoint; or, with `checkpointId` null, a model by itself (`modelId`: e.g. Model.parameterSubsets). */
  constructor(checkpointId: number | null, reason: string, modelId?: number) {
    if (checkpointId === null) super(ErrorCode.MODEL_UNUSABLE, `Model ${modelId} cannot be run: ${reason}`, { modelId: String(modelId) });
    else super(ErrorCode.MODEL_UNUSABLE, `The model of checkpoint ${checkpointId} cannot be run: ${reason}`, { checkpointId: String(checkpointId) });
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

/**
 * The connection died after COMMIT was sent (or during a write that commits by itself), so the
 * server cannot know whether the write landed. Never "nothing was written": that would invite a
 * client to treat a committed write as lost.
 */
export class OutcomeUnknownError extends TangentError {
  constructor() {
    super(
      ErrorCode.OUTCOME_UNKNOWN,
      'The database connection was lost while the write was committing: it may have been written. The mutation is idempotent, so retrying it is safe',
    );
  }
}

// The HTTP status of each code is in src/platform/http/status.ts (HTTP_STATUS), the one table every endpoint uses.

/**
 * Rejects with TimeoutError when `work` has not settled after `ms` milliseconds (the work itself is
 * not cancelled: callers pass an AbortSignal down where the work can stop early).
 */
export async function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(what)), ms);
    timer.unref();
  });
  try {
    return await Promise.race([work, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** For states the code believes cannot happen; failing loudly beats continuing wrong. */
export function invariant(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(`Invariant violated: ${message}`);
}
