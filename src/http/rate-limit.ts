import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible';
import { RateLimitedError } from '../errors.js';

/**
 * Per-caller request budgets (rate-limiter-flexible, in memory): requests per minute per API key,
 * or per client address for callers without a key; and failed authentications per address, so
 * that guessing keys is slow. The memory store counts per process: with several replicas each
 * allows the full budget, and a shared store (the library's RateLimiterPostgres, on the same
 * database) is the step to take when that matters.
 */
export class RateLimits {
  private readonly requests: RateLimiterMemory | null;
  private readonly failures: RateLimiterMemory | null;

  constructor(options: { requestsPerMin: number; authFailuresPerMin: number }) {
    this.requests = options.requestsPerMin > 0 ? new RateLimiterMemory({ points: options.requestsPerMin, duration: 60 }) : null;
    this.failures = options.authFailuresPerMin > 0 ? new RateLimiterMemory({ points: options.authFailuresPerMin, duration: 60 }) : null;
  }

  /** Counts one request against `caller` (`key:<id>` or `ip:<address>`); throws RATE_LIMITED when over. */
  async consume(caller: string): Promise<void> {
    if (!this.requests) return;
    try {
      await this.requests.consume(caller);
    } catch (error) {
      throw refusal(error);
    }
  }

  /** Throws RATE_LIMITED when this address has failed authentication too often lately. */
  async assertMayAuthenticate(address: string): Promise<void> {
    if (!this.failures) return;
    const state = await this.failures.get(address);
    if (state && state.remainingPoints <= 0) throw new RateLimitedError(seconds(state.msBeforeNext));
  }

  async recordFailure(address: string): Promise<void> {
    if (!this.failures) return;
    await this.failures.penalty(address, 1);
  }
}

function refusal(error: unknown): RateLimitedError {
  if (error instanceof RateLimiterRes) return new RateLimitedError(seconds(error.msBeforeNext));
  throw error;
}

function seconds(ms: number): number {
  return Math.max(1, Math.ceil(ms / 1000));
}
