import { Prisma } from './generated/client.js';
import { OutcomeUnknownError } from '../errors.js';

/** SQLSTATE codes found on the error or its causes (the embedded adapter reports them there). */
function sqlStates(error: unknown): string[] {
  const states: string[] = [];
  for (let e: unknown = error, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') states.push(code);
  }
  return states;
}

/**
 * A unique constraint refused the write: Prisma's P2002 on PostgreSQL, or SQLSTATE 23505 from raw
 * SQL and from the embedded (PGlite) adapter, whose errors Prisma passes through unmapped.
 */
export function isUniqueViolation(error: unknown): boolean {
  if (error instanceof Prisma.PrismaClientKnownRequestError && error.code === 'P2002') return true;
  return sqlStates(error).includes('23505');
}

/** Prisma's "record to update/delete does not exist" (P2025). */
export function isRecordMissing(error: unknown): boolean {
  return error instanceof Prisma.PrismaClientKnownRequestError && error.code === 'P2025';
}

/** A foreign key refused the write (P2003): something it points at does not exist or still has dependents. */
export function isForeignKeyViolation(error: unknown): boolean {
  return error instanceof Prisma.PrismaClientKnownRequestError && error.code === 'P2003';
}

const CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', '57P01', '57P02', '57P03', '08000', '08001', '08003', '08006']);

/** True when the database could not be reached or dropped the connection mid-statement. */
export function isConnectionError(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof Prisma.PrismaClientInitializationError) return true;
    if (e instanceof Prisma.PrismaClientKnownRequestError && ['P1001', 'P1002', 'P1017', 'P2024'].includes(e.code)) return true;
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && CONNECTION_CODES.has(code)) return true;
    const message = (e as { message?: unknown }).message;
    if (typeof message === 'string' && /Connection terminated|connect ECONNREFUSED|timeout exceeded when trying to connect|Client has encountered a connection error/i.test(message)) return true;
  }
  return false;
}

/** PostgreSQL's "canceling statement due to statement timeout" (57014). */
export function isStatementTimeout(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if ((e as { code?: unknown }).code === '57014') return true;
    const message = (e as { message?: unknown }).message;
    if (typeof message === 'string' && message.includes('statement timeout')) return true;
  }
  return false;
}

/**
 * The connection could not be made at all (refused, no route, pool or connect timeout, the server
 * starting up or shutting down): no statement of the request reached the database.
 */
export function isConnectFailure(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof Prisma.PrismaClientInitializationError) return true;
    if (e instanceof Prisma.PrismaClientKnownRequestError && ['P1001', 'P2024'].includes(e.code)) return true;
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && ['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', '57P03', '08001'].includes(code)) return true;
    const message = (e as { message?: unknown }).message;
    if (typeof message === 'string' && /connect ECONNREFUSED|timeout exceeded when trying to connect|Client has encountered a connection error and is not queryable/i.test(message)) return true;
  }
  return false;
}

/**
 * Runs one write that commits by itself (a single Prisma statement outside a transaction). If the
 * connection is lost once the statement may have left, it may have committed: OUTCOME_UNKNOWN, not
 * "nothing was written". A connection that never opened still means nothing was written.
 */
export async function autocommitWrite<T>(write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (error) {
    if (isConnectionError(error) && !isConnectFailure(error)) throw new OutcomeUnknownError();
    throw error;
  }
}

/**
 * Runs what a mutation does once its write has committed (read the new row back, publish). If the
 * database fails it now, the write did land: the answer must not be DATABASE_UNAVAILABLE's "nothing
 * was written", so it is OUTCOME_UNKNOWN, and the retry the client makes finds the stored row.
 */
export async function afterCommit<T>(read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (error) {
    if (isConnectionError(error)) throw new OutcomeUnknownError();
    throw error;
  }
}
