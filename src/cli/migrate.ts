import type { Command } from 'commander';
import { configOrExit, envOverrides, withEnvironment } from './shared.js';

/** `tangent migrate`: the committed migrations, applied and done (servers also apply them at start-up). */
export function registerMigrate(program: Command): void {
  const command = program
    .command('migrate')
    .description('apply the committed migrations to the database and exit (the server also does this at start-up)');
  withEnvironment(command, ['general', 'database']).action(async (opts: Record<string, unknown>) => {
    const config = await configOrExit(envOverrides(opts));
    const [{ openDatabase }, { migrate }, { createLogger }] = await Promise.all([import('../platform/db/database.js'), import('../platform/db/migrate.js'), import('../platform/logger.js')]);
    const log = createLogger(config);
    const db = await openDatabase(config.database, log);
    try {
      const applied = await migrate(db, log);
      log.info({ applied }, applied.length ? 'migrations applied' : 'database is up to date');
    } finally {
      await db.close();
    }
  });
}
