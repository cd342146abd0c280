import type { RateLimiterAbstract } from 'rate-limiter-flexible';
import type { Config } from '../../platform/config.js';
import type { Database } from '../../platform/db/database.js';
import { sharedLimiter } from '../../platform/http/rate-limit.js';

/**
 * The compute budgets' counters of one database, for the life of the process that holds this object
 * (the compute runtime's ComputeService): samples computed per key and hour, in the store shared with
 * the rate limits (src/platform/http/rate-limit.ts; in memory on the embedded database, so the one
 * limiter of the process must be the one every request charges).
 */
export class ComputeBudgets {
  private samples: RateLimiterAbstract | undefined;

  constructor(private readonly db: Database) {}

  /** The samples-per-hour limiter (made on first use); null when the operator sets no such budget. */
  samplesLimiter(config: Config): RateLimiterAbstract | null {
    const points = config.compute.samplesPerHourPerKey;
    if (points <= 0) return null;
    return (this.samples ??= sharedLimiter(this.db, 'compute-samples', points, 3600));
  }
}
