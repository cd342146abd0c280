import { RateLimiterMemory, RateLimiterPostgres, RateLimiterRes, type RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Caller } from '../auth/roles.js';
import type { Database } from '../db/database.js';
import { rateLimitStore } from '../db/rate-limit-storage.js';
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
    // Through the server's own pool (src/platform/db/rate-limit-storage.ts): no connections of its own.
    storeClient: rateLimitStore(db),
  });
}

/** What a process holds of one key's budget: points it may spend without asking the database. */
interface Lease {
  /** Points reserved in the shared count and not spent yet. */
  left: number;
  /** When the shared window the points belong to ends (epoch ms); the lease dies with it. */
  until: number;
  /** The shared count was spent when the lease was taken: refuse, without a round trip, until `until`. */
  spent: boolean;
  /** The shared count's remaining points at the last refill, to take no more than is there. */
  remaining: number;
  /** The refill in flight: concurrent requests of the key wait for this one round trip. */
  refill: Promise<void> | null;
}

/** Leases above this many keys are swept of dead ones (one per key or address seen in a window). */
const SWEEP_AT = 10_000;

/**
 * A shared limiter spent in leases: a process reserves `size` points of a key's budget in one
 * round trip (the shared count goes up by `size`) and spends them from memory, so a busy key costs
 * one write per `size` requests instead of one per request. Nothing is ever counted twice or not at
 * all, so replicas together never serve more than the limit; what a lease costs is that points one
 * replica reserved and did not spend are not available to the others until the window ends (up to
 * `size - 1` per replica). `size` is a small fraction of the limit, and 1, exact, for limits of a
 * few hundred or less. The refill that finds the count over the limit keeps the part of its
 * reservation that was still free, so the last points of a window are served, not lost.
 */
export class LeasedLimiter {
  private readonly leases = new Map<string, Lease>();

  constructor(
    private readonly store: RateLimiterAbstract,
    private readonly points: number,
    private readonly size: number,
  ) {}

  /** Spends one point of `key`; rejects with the store's RateLimiterRes when the key is over its limit. */
  async consume(key: string): Promise<void> {
    for (;;) {
      let lease = this.leases.get(key);
      if (!lease) {
        lease = { left: 0, until: 0, spent: false, remaining: this.size, refill: null };
        this.leases.set(key, lease);
      }
      if (lease.refill) {
        await lease.refill;
        continue;
      }
      const now = Date.now();
      if (now < lease.until) {
        if (lease.left > 0) {
          lease.left--;
          return;
        }
        if (lease.spent) throw new RateLimiterRes(0, lease.until - now, this.points + 1, false);
      }
      const refill = this.refill(key, lease, now);
      lease.refill = refill.finally(() => {
        lease.refill = null;
      });
      await lease.refill;
    }
  }

  private async refill(key: string, lease: Lease, now: number): Promise<void> {
    if (this.leases.size > SWEEP_AT) for (const [k, l] of this.leases) if (l.until <= now && !l.refill && l !== lease) this.leases.delete(k);
    // A new window has its whole budget; within one, take no more than the count had left.
    const take = now >= lease.until ? this.size : Math.max(1, Math.min(this.size, lease.remaining));
    try {
      const res = await this.store.consume(key, take);
      Object.assign(lease, { left: take, until: Date.now() + res.msBeforeNext, spent: false, remaining: res.remainingPoints });
    } catch (error) {
      if (!(error instanceof RateLimiterRes)) throw error;
      // Counted anyway: whatever of `take` was still under the limit is this process's to serve.
      const free = Math.max(0, Math.min(take, this.points - (error.consumedPoints - take)));
      Object.assign(lease, { left: free, until: Date.now() + error.msBeforeNext, spent: true, remaining: 0 });
    }
  }
}

/**
 * Points a lease reserves: 1/200 of the limit, at least 1 (so every request is counted in the
 * database below 400 a minute) and at most 100. The cap bounds what a lease holds back from the
 * other replicas, and what a window carries over when servers with other limits share the count
 * (a limit lowered at a restart): at 100, a busy key still costs one write per 100 requests.
 */
export const MAX_LEASE = 100;

export function leaseSize(points: number): number {
  return Math.min(MAX_LEASE, Math.max(1, Math.floor(points / 200)));
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
 * The client's address comes from src/platform/auth/client-address.ts (TANGENT_TRUST_PROXY).
 */
export class RateLimits {
  private readonly requests: { consume(key: string): Promise<unknown> } | null;
  private readonly failures: { consume(key: string): Promise<unknown> } | null;

  constructor(
    db: Database,
    private readonly options: { requestsPerMin: number; authFailuresPerMin: number },
  ) {
    // On PostgreSQL usage is spent in leases (LeasedLimiter): not a database write per request.
    // Failures are counted one by one (leases of 1: a throttle must see each at once), and an
    // address past its limit is then refused from memory until its window ends, not written again.
    const shared = (name: string, points: number, size: number) => {
      if (points <= 0) return null;
      const store = sharedLimiter(db, name, points, 60);
      return db.kind === 'pglite' ? store : new LeasedLimiter(store, points, size);
    };
    this.requests = shared('requests', options.requestsPerMin, leaseSize(options.requestsPerMin));
    this.failures = shared('auth-failures', options.authFailuresPerMin, 1);
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
