import { Command } from 'commander';
import { ConfigError, loadConfig, type Config } from './config.js';
import { openDatabase } from './db/database.js';
import { migrate } from './db/migrate.js';
import { createLogger } from './logger.js';
import { createServer } from './server.js';
import { VERSION } from './version.js';

/** Parses the environment or exits 1 listing every problem (config fails fast). */
function configOrExit(): Config {
  try {
    return loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
}

/** Runs `stop` once on SIGINT/SIGTERM; a second signal exits at once. */
function onShutdownSignal(stop: () => Promise<void>): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals) => {
    if (stopping) process.exit(1);
    stopping = true;
    stop().then(
      () => process.exit(0),
      (error) => {
        process.stderr.write(`shutdown after ${signal} failed: ${String(error)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
}

const program = new Command('tangent')
  .description('GraphQL analysis server for the learning dynamics of fine-tuning')
  .version(VERSION);

program
  .command('serve', { isDefault: true })
  .description('serve GraphQL on http://HOST:PORT/graphql (embedded database unless DATABASE_URL is set)')
  .action(async () => {
    const config = configOrExit();
    const server = await createServer(config);
    if (config.database.kind === 'pglite') {
      server.log.info({ dataDir: config.database.dataDir }, 'using the embedded database; set DATABASE_URL to use a PostgreSQL server');
    }
    onShutdownSignal(() => server.close());
  });

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

await program.parseAsync(process.argv);
