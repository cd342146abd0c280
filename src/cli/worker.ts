import type { Command } from 'commander';
import type { Database } from '../platform/db/database.js';
import type { PubSub } from '../platform/pubsub.js';
import type { ComputeRuntime } from '../modules/jobs/runtime.js';
import { configOrExit, envOverrides, onShutdownSignal, withEnvironment } from './shared.js';

/**
 * `tangent worker`: works compute-job chunks from the database's queue and serves nothing. Run any
 * number of them against one PostgreSQL (e.g. on GPU machines with TANGENT_BACKEND=tensorflow and
 * @tensorflow/tfjs-node-gpu installed); each takes chunks as it is free. On the embedded database
 * only one process may hold the data folder, so there the server's own worker does the work.
 */
export function registerWorker(program: Command): void {
  const command = program
    .command('worker')
    .description('work compute jobs from the queue in the database (no HTTP); run as many as you like against one PostgreSQL');
  withEnvironment(command, ['general', 'database', 'compute', 'jobs']).action(async (opts: Record<string, unknown>) => {
    const config = await configOrExit(envOverrides(opts));
    const [{ openDatabase }, { migrate }, { createLogger }, { PubSub }, { ComputeRuntime }] = await Promise.all([
      import('../platform/db/database.js'),
      import('../platform/db/migrate.js'),
      import('../platform/logger.js'),
      import('../platform/pubsub.js'),
      import('../modules/jobs/runtime.js'),
    ]);
    const log = createLogger(config);
    let db: Database | undefined;
    let pubsub: PubSub | undefined;
    let runtime: ComputeRuntime | undefined;
    try {
      db = await openDatabase(config.database, log, { statementTimeoutMs: config.statementTimeoutMs });
      await migrate(db, log);
      pubsub = await PubSub.start(db, log);
      runtime = await ComputeRuntime.start({ db, config, log, pubsub }, { worker: true });
      // Start the compute threads now: a backend that cannot start fails here, not at the first chunk.
      const backend = await runtime.compute.backend();
      log.info({ ...backend, database: db.kind, concurrency: config.compute.concurrency }, 'Tangent worker is taking compute jobs');
    } catch (error) {
      await runtime?.stop(1000).catch(() => undefined);
      await pubsub?.close().catch(() => undefined);
      await db?.close().catch(() => undefined);
      // One JSON line, like every other line a worker writes, and exit 1.
      log.fatal({ err: error }, 'Tangent worker could not start');
      process.exitCode = 1;
      // Whatever the failed start left open must not keep the process up (the timer holds nothing open itself).
      setTimeout(() => process.exit(1), 2000).unref();
      return;
    }
    const [r, p, d] = [runtime, pubsub, db];
    onShutdownSignal(async () => {
      await r.stop(config.shutdownGraceMs);
      await p.close();
      await d.close();
      log.info('Tangent worker stopped');
    }, log);
  });
}
