import type { Command } from 'commander';
import { configOrExit, envOverrides, onShutdownSignal, withEnvironment } from './shared.js';

/** `tangent serve` (the default command): GraphQL over HTTP and WebSocket; its logs are JSON lines. */
export function registerServe(program: Command): void {
  const command = program
    .command('serve', { isDefault: true })
    .description('serve GraphQL on http://HOST:PORT/graphql (embedded database unless DATABASE_URL is set)');
  withEnvironment(command, ['general', 'database', 'http', 'limits', 'compute', 'jobs']).action(async (opts: Record<string, unknown>) => {
    const config = await configOrExit(envOverrides(opts));
    let server: Awaited<ReturnType<typeof import('../server.js').createServer>>;
    try {
      const { createServer } = await import('../server.js');
      server = await createServer(config);
    } catch (error) {
      // One JSON line, like every other line a server writes, and exit 1.
      const { createLogger } = await import('../platform/logger.js');
      createLogger(config).fatal({ err: error }, 'Tangent could not start');
      process.exitCode = 1;
      // Whatever the failed start left open (a pool, a timer) must not keep the process up; the
      // timer holds nothing open itself, and gives the log line time to be written.
      setTimeout(() => process.exit(1), 2000).unref();
      return;
    }
    if (config.database.kind === 'pglite') {
      server.log.info({ dataDir: config.database.dataDir }, 'using the embedded database; set DATABASE_URL to use a PostgreSQL server');
    }
    onShutdownSignal(() => server.close(), server.log);
  });
}
