import type { Config } from '../../platform/config.js';
import type { Database } from '../../platform/db/database.js';
import { JobQueue } from './queue.js';
import { QueueWorker } from './queue-worker.js';
import { JobSweep } from './retention.js';
import type { Logger } from '../../platform/logger.js';
import type { PubSub } from '../../platform/pubsub.js';
import { ComputeService } from '../terms/compute-service.js';
import { TrainWorker } from '../training/train-worker.js';

export interface RuntimeDeps {
  db: Database;
  config: Config;
  log: Logger;
  pubsub: PubSub;
}

/**
 * Everything on-demand terms need in one process, for one database: the compute service (threads,
 * model cache), the job queue (the one job system: compute chunks and trainings), and (in a worker,
 * or a server with TANGENT_WORKER=on) the workers of each kind and the sweep of finished jobs. The
 * server and the `worker`/`compute` commands start one, hand it to the code that needs it, and stop
 * it on the way out.
 */
export class ComputeRuntime {
  private constructor(
    readonly deps: RuntimeDeps,
    readonly compute: ComputeService,
    readonly queue: JobQueue,
    private readonly worker: QueueWorker | null,
    private readonly sweep: JobSweep | null,
  ) {}

  static async start(deps: RuntimeDeps, options: { worker: boolean }): Promise<ComputeRuntime> {
    const compute = new ComputeService(deps.db, deps.config, deps.log);
    const queue = await JobQueue.start(deps.db, deps.config, deps.log);
    const worker = options.worker ? new QueueWorker({ ...deps, queue, compute }) : null;
    try {
      await worker?.start();
      // Runs that Tangent trains itself (`trainRun`), worked wherever compute jobs are.
      if (options.worker) await TrainWorker.start(deps, queue);
    } catch (error) {
      worker?.stop();
      await queue.stop(1000).catch(() => undefined);
      throw error;
    }
    if (!worker && deps.db.kind === 'pglite') {
      deps.log.warn('TANGENT_WORKER=off on the embedded database: compute jobs wait until a process with a worker opens it');
    }
    const sweep = options.worker ? JobSweep.start(deps.db, deps.config, deps.log) : null;
    return new ComputeRuntime(deps, compute, queue, worker, sweep);
  }

  get working(): boolean {
    return this.worker !== null;
  }

  /**
   * Stops taking jobs, gives those under way up to `timeoutMs` (then back to the queue, each as its
   * kind says), and stops the compute threads.
   */
  async stop(timeoutMs: number): Promise<void> {
    await this.sweep?.stop();
    this.worker?.stop();
    await this.queue.stop(timeoutMs);
    await this.compute.close();
  }
}
