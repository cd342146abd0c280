import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../logger.js';
import type { Database } from './database.js';
import type { Session } from './sql.js';

/** prisma/migrations, as `prisma migrate diff --script` writes it: one folder per migration. */
export const MIGRATIONS_DIR = fileURLToPath(new URL('../../../prisma/migrations', import.meta.url));

/** Any constant will do; it only has to be the same in every Tangent process (and differ from other set-up locks). */
const MIGRATION_LOCK_KEY = 7_143_221_901;

/**
 * Runs `fn` while this process holds the session advisory lock `key`, on a connection of its own
 * that it keeps until `fn` settles: set-up that every process does at start (DDL, which deadlocks
 * or fails on unique indexes when two processes run it at once) runs in one process at a time,
 * and the next finds it done. A process that dies holding the lock loses it with its connection.
 * On PGlite the lock is taken on its one connection, which nothing else shares.
 */
export async function withAdvisoryLock<T>(db: Database, key: number, fn: (session: Session) => Promise<T>): Promise<T> {
  return db.session(async (session) => {
    await session.query('SELECT pg_advisory_lock($1)', [key]);
    try {
      return await fn(session);
    } finally {
      await session.query('SELECT pg_advisory_unlock($1)', [key]);
    }
  });
}

/** serialization_failure and deadlock_detected: the statement lost to a concurrent one, and may simply run again. */
const RETRYABLE_CODES = new Set(['40001', '40P01']);

function isRetryable(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && RETRYABLE_CODES.has(code);
}

/**
 * Runs `fn` again, after a short randomised backoff, when it fails with a serialization failure
 * or a deadlock, up to `attempts` times in all; any other error, or the last one, is thrown. Start-up
 * set-up is serialised by an advisory lock already; this is the second line of defence against what
 * the lock does not cover (another process's queue maintenance, a process of an older version).
 */
export async function retryOnConflict<T>(what: string, log: Logger, fn: () => Promise<T>, attempts = 6): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (error) {
      if (attempt >= attempts || !isRetryable(error)) throw error;
      // 50 ms, 100 ms, 200 ms … with jitter, so two processes that collided do not collide again.
      const delayMs = Math.round(50 * 2 ** (attempt - 1) * (0.5 + Math.random()));
      log.warn({ err: error, attempt, delayMs }, `${what} lost to a concurrent start; trying again`);
      await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
  }
}

interface Migration {
  name: string;
  sql: string;
  checksum: string;
}

export async function readMigrations(dir = MIGRATIONS_DIR): Promise<Migration[]> {
  const entries = (await readdir(dir, { withFileTypes: true })).filter((e) => e.isDirectory());
  const names = entries.map((e) => e.name).sort();
  return Promise.all(
    names.map(async (name) => {
      const sql = await readFile(join(dir, name, 'migration.sql'), 'utf8');
      return { name, sql, checksum: createHash('sha256').update(sql).digest('hex') };
    }),
  );
}

/**
 * Applies the committed migrations that this database lacks, each in its own transaction, and
 * returns their names. Written by hand because Prisma's migrate engine is a binary that cannot be
 * downloaded here, and the server must migrate itself at start-up. Two processes starting at once
 * serialise on a session advisory lock: the second finds the work done. A migration edited after
 * it was applied is refused rather than silently skipped.
 */
export async function migrate(db: Database, log: Logger, dir = MIGRATIONS_DIR): Promise<string[]> {
  const migrations = await readMigrations(dir);
  return withAdvisoryLock(db, MIGRATION_LOCK_KEY, async (session) => {
    await session.exec(`CREATE TABLE IF NOT EXISTS tangent_migration (
      name TEXT PRIMARY KEY,
      checksum TEXT NOT NULL,
      applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
    )`);
    const applied = new Map(
      (await session.query<{ name: string; checksum: string }>('SELECT name, checksum FROM tangent_migration')).map(
        (row) => [row.name, row.checksum],
      ),
    );
    const done: string[] = [];
    for (const migration of migrations) {
      const checksum = applied.get(migration.name);
      if (checksum !== undefined) {
        if (checksum !== migration.checksum) {
          throw new Error(`Migration ${migration.name} was changed after it was applied; add a new migration instead`);
        }
        continue;
      }
      await session.exec('BEGIN');
      try {
        await session.exec(migration.sql);
        await session.query('INSERT INTO tangent_migration (name, checksum) VALUES ($1, $2)', [
          migration.name,
          migration.checksum,
        ]);
        await session.exec('COMMIT');
      } catch (error) {
        await session.exec('ROLLBACK');
        throw new Error(`Migration ${migration.name} failed: ${(error as Error).message}`, { cause: error });
      }
      log.info({ migration: migration.name }, 'migration applied');
      done.push(migration.name);
    }
    return done;
  });
}
