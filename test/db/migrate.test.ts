import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Database } from '../../src/platform/db/database.js';
import { migrate, MIGRATIONS_DIR, readMigrations } from '../../src/platform/db/migrate.js';
import { createTestDatabase, quietLog, type TestDatabase } from '../helpers/database.js';

let testDb: TestDatabase;
let dir: string;
before(async () => {
  testDb = await createTestDatabase();
  dir = mkdtempSync(join(tmpdir(), 'tangent-migrations-'));
  cpSync(MIGRATIONS_DIR, dir, { recursive: true });
});
after(async () => {
  await testDb.destroy();
  rmSync(dir, { recursive: true, force: true });
});

describe('migrations', () => {
  test('are applied once, and a second run (or a second process) finds nothing to do', async () => {
    const all = (await readMigrations(dir)).map((m) => m.name);
    if (testDb.config.kind === 'postgres') {
      // Two processes starting at once: two independent connections migrating the same database.
      const a = await testDb.open();
      const b = await testDb.open();
      try {
        // The test database came from a template only for PGlite; on PostgreSQL it starts empty.
        const [ra, rb] = await Promise.all([migrate(a, quietLog, dir), migrate(b, quietLog, dir)]);
        assert.deepEqual([...ra, ...rb].sort(), all, 'each migration was applied by exactly one of them');
        assert.deepEqual(await migrate(a, quietLog, dir), []);
      } finally {
        await a.close();
        await b.close();
      }
    } else {
      const db = await testDb.open();
      try {
        assert.deepEqual(await migrate(db, quietLog, dir), [], 'the template is already migrated');
        // A second process cannot open the same embedded database at all.
        await assert.rejects(testDb.open(), /in use by process/);
      } finally {
        await db.close();
      }
    }
  });

  test('a new migration is applied in order; a failing one leaves nothing behind; an edited one is refused', async () => {
    const db: Database = await testDb.open();
    try {
      await migrate(db, quietLog, dir);
      mkdirSync(join(dir, '9000_extra'));
      writeFileSync(join(dir, '9000_extra', 'migration.sql'), 'CREATE TABLE extra_a (id int);\nCREATE INDEX extra_a_id ON extra_a (id);');
      assert.deepEqual(await migrate(db, quietLog, dir), ['9000_extra']);

      mkdirSync(join(dir, '9001_broken'));
      writeFileSync(join(dir, '9001_broken', 'migration.sql'), 'CREATE TABLE extra_b (id int);\nSELECT no_such_function();');
      await assert.rejects(migrate(db, quietLog, dir), /9001_broken failed/);
      const tables = await db.sql.query<{ n: number }>("SELECT count(*)::int AS n FROM information_schema.tables WHERE table_name = 'extra_b'");
      assert.equal(tables[0]!.n, 0, 'the failed migration was rolled back whole');
      rmSync(join(dir, '9001_broken'), { recursive: true });

      writeFileSync(join(dir, '9000_extra', 'migration.sql'), 'CREATE TABLE extra_a (id bigint);');
      await assert.rejects(migrate(db, quietLog, dir), /was changed after it was applied/);
    } finally {
      await db.close();
    }
  });
});
