import type { Command } from 'commander';
import { openDatabase } from '../db/database.js';
import { migrate } from '../db/migrate.js';
import { createLogger } from '../logger.js';
import { PubSub } from '../pubsub.js';
import { ComputeRuntime } from '../services/compute-runtime.js';
import { configOrExit, onShutdownSignal } from './shared.js';

/**
 * `tangent worker`: works compute-job chunks from the database's queue and serves nothing. Run any
 * number of them against one PostgreSQL (e.g. on GPU machines with TANGENT_BACKEND=tensorflow and
 * @tensorflow/tfjs-node-gpu installed); each takes chunks as it is free. On the embedded database
 * only one process may hold the data folder, so there the server's own worker does the work.
 */
export function registerWorker(program: Command): void {
  program
    .command('worker')
    .description('work compute jobs from the queue in the database (no HTTP); run as many as you like against one PostgreSQL')
    .action(async () => {
      const config = configOrExit();
      const log = createLogger(config);
      const db = await openDatabase(config.database, log, { statementTimeoutMs: config.statementTimeoutMs });
      let pubsub: PubSub | undefined;
      let runtime: ComputeRuntime | undefined;
      try {
        await migrate(db, log);
        pubsub = await PubSub.start(db, log);
        runtime = await ComputeRuntime.start({ db, config, log, pubsub }, { worker: true });
        // Start the compute threads now: a backend that cannot start fails here, not at the first chunk.
        const backend = await runtime.compute.backend();
        log.info({ ...backend, database: db.kind, concurrency: config.compute.concurrency }, 'Tangent worker is taking compute jobs');
      } catch (error) {
        await runtime?.stop(1000).catch(() => undefined);
        await pubsub?.close().catch(() => undefined);
        await db.close().catch(() => undefined);
        throw error;
      }
      const [r, p] = [runtime, pubsub];
      onShutdownSignal(async () => {
        await r.stop(config.shutdownGraceMs);
        await p.close();
        await db.close();
        log.info('Tangent worker stopped');
      });
    });
}
