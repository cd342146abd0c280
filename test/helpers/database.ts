import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { pino } from 'pino';
import type { Config } from '../../src/platform/config.js';
import { IN_MEMORY, openDatabase, type Database } from '../../src/platform/db/database.js';
import { migrate, readMigrations } from '../../src/platform/db/migrate.js';

export const quietLog = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

/**
 * A database of the test's own: with DATABASE_URL (CI, a real PostgreSQL), a fresh database
 * created on that server and dropped afterwards; otherwise PGlite in a temporary folder, started
 * from a migrated template so each test does not pay for initdb.
 */
export interface TestDatabase {
  config: Config['database'];
  open(): Promise<Database>;
  /** Drops the database or removes the folder. */
  destroy(): Promise<void>;
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const url = process.env.DATABASE_URL;
  if (url) {
    const name = `tangent_test_${process.pid}_${randomBytes(4).toString('hex')}`;
    await adminQuery(url, `CREATE DATABASE ${name}`);
    const dbUrl = new URL(url);
    dbUrl.pathname = `/${name}`;
    const config = { kind: 'postgres', url: dbUrl.toString(), poolSize: 5 } as const;
    return {
      config,
      open: () => openDatabase(config, quietLog),
      destroy: () => adminQuery(url, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`),
    };
  }
  const template = await pgliteTemplate();
  const dataDir = mkdtempSync(join(tmpdir(), 'tangent-test-'));
  const config = { kind: 'pglite', dataDir } as const;
  return {
    config,
    open: () => openDatabase(config, quietLog, { pgliteTemplate: template }),
    destroy: async () => rmSync(dataDir, { recursive: true, force: true }),
  };
}

async function adminQuery(url: string, sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/**
 * A dump of a migrated, empty PGlite database, made once per set of migrations and kept in the
 * temp folder (test files run in separate processes; the first one to need it makes it).
 */
export async function pgliteTemplate(): Promise<Blob> {
  const migrations = await readMigrations();
  const hash = createHash('sha256').update(migrations.map((m) => m.checksum).join()).digest('hex').slice(0, 16);
  const path = join(tmpdir(), `tangent-pglite-template-${hash}.tar.gz`);
  if (!existsSync(path)) {
    const db = await openDatabase({ kind: 'pglite', dataDir: IN_MEMORY }, quietLog);
    await migrate(db, quietLog);
    const dump = await db.pglite!.dumpDataDir('gzip');
    await db.close();
    const partial = `${path}.${process.pid}.partial`;
    writeFileSync(partial, Buffer.from(await dump.arrayBuffer()));
    renameSync(partial, path);
  }
  return new Blob([readFileSync(path)]);
}
