import type { Command } from 'commander';
import { createServer } from '../server.js';
import { configOrExit, onShutdownSignal } from './shared.js';

export function registerServe(program: Command): void {
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
}
