import type { Database } from './database.js';

/**
 * NOTIFY on a channel: every process that LISTENs on it (Database.listen), this one included,
 * receives `payload`.
 */
export async function notify(db: Database, channel: string, payload: string): Promise<void> {
  // named: events.notify
  await db.sql.query('SELECT pg_notify($1, $2)', [channel, payload]);
}
