import type { Command } from 'commander';
import { openDatabase } from '../db/database.js';
import { migrate } from '../db/migrate.js';
import { createLogger } from '../logger.js';
import { configOrExit } from './shared.js';

export function registerMigrate(program: Command): void {
  program
    .command('migrate')
    .description('apply the committed migrations to the database and exit (the server also does this at start-up)')
    .action(async () => {
      const config = configOrExit();
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
