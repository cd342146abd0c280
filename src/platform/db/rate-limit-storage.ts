import type { Database } from './database.js';

/**
 * What rate-limiter-flexible's RateLimiterPostgres runs its statements on: it speaks node-postgres'
 * query({ text, values }); Database.sql runs the same text through the server's own pool, so a
 * limiter needs no connections of its own. (The statements are the library's, on the `rate_limit`
 * table.)
 */
export function rateLimitStore(db: Database): { query(q: { text: string; values?: unknown[] }): Promise<{ rows: unknown[]; rowCount: number }> } {
  return {
    async query(q) {
      const rows = await db.sql.query(q.text, q.values ?? []);
      return { rows, rowCount: rows.length };
    },
  };
}
