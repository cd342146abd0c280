import { RateLimiterMemory, RateLimiterPostgres, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Caller } from '../auth/roles.js';
import type { Database } from '../db/database.js';
import { AuthThrottledError, RateLimitedError } from '../errors.js';

/** The table of the PostgreSQL store, made by a migration (prisma/schema.prisma, model RateLimit). */
const TABLE = 'rate_limit';

/**
 * A counter of `points` per caller per `duration` seconds, kept where every server on the database
 * sees it: in PostgreSQL (rate-limiter-flexible's RateLimiterPostgres on the `rate_limit` table), so
 * N replicas enforce one limit; in memory on the embedded database, which only one process can open.
 * `name` keeps limiters apart in the one table (the library prefixes each key with it).
 */
export function sharedLimiter(db: Database, name: string, points: number, duration: number): RateLimiterAbstract {
  if (db.kind === 'pglite') return new RateLimiterMemory({ keyPrefix: name, points, duration });
  return new RateLimiterPostgres({
    keyPrefix: name,
    points,
    duration,
    tableName: TABLE,
    tableCreated: true,
    storeType: 'pool',
    // The library speaks node-postgres' query({ text, values }); Database.sql runs the same text through
    // the server's own pool, so a limiter needs no connections of its own.
    storeClient: {
      async query(q: { text: string; values?: unknown[] }) {
        const rows = await db.sql.query(q.text, q.values ?? []);
        return { rows, rowCount: rows.length };
      },
    },
  });
}

/** Whole seconds until `ms` have passed, at least 1 (a Retry-After of 0 invites a tight loop). */
export function secondsUntil(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}

/**
 * Request budgets, kept apart so that one never spends another's:
 *
 * - **usage**: requests per minute per API key (per client address for callers without a key, on a
 *   server that runs open), counted only once the key is known to be valid;
 * - **authentication failures**: per client address. Past the limit the address's failures answer
 *   429 AUTH_THROTTLED instead of 401, but a valid key is still checked and served: behind a NAT or a
 *   proxy one guessing client must not lock out everyone who shares its address. (Keys are 256
 *   random bits, so the throttle is not what stops guessing; it tells a broken client to back off.)
 *
 * The client's address comes from src/auth/client-address.ts (TANGENT_TRUST_PROXY).
 */
export class RateLimits {
  private readonly requests: RateLimiterAbstract | null;
  private readonly failures: RateLimiterAbstract | null;

  constructor(
    db: Database,
    private readonly options: { requestsPerMin: number; authFailuresPerMin: number },
  ) {
    this.requests = options.requestsPerMin > 0 ? sharedLimiter(db, 'requests', options.requestsPerMin, 60) : null;
    this.failures = options.authFailuresPerMin > 0 ? sharedLimiter(db, 'auth-failures', options.authFailuresPerMin, 60) : null;
  }

  /** Counts one request of a valid caller (by key, or by address without one); RATE_LIMITED when over. */
  async consume(caller: Caller, address: string): Promise<void> {
    if (!this.requests) return;
    const who = caller.key ? `key:${caller.key.id}` : `ip:${address}`;
    try {
      await this.requests.consume(who);
    } catch (error) {
      if (!(error instanceof RateLimiterRes)) throw error;
      const wait = secondsUntil(error.msBeforeNext);
      const subject = caller.key ? 'this key' : 'this address';
      throw new RateLimitedError(wait, `${subject} exceeded ${this.options.requestsPerMin} requests per minute; retry in ${wait} s`);
    }
  }

  /** Records a failed authentication from `address`; AUTH_THROTTLED once it has failed too often this minute. */
  async failedAuthentication(address: string): Promise<void> {
    if (!this.failures) return;
    try {
      await this.failures.consume(address);
    } catch (error) {
      if (!(error instanceof RateLimiterRes)) throw error;
      throw new AuthThrottledError(secondsUntil(error.msBeforeNext));
    }
  }
}
