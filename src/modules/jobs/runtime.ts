import type { Config } from '../../platform/config.js';
import type { Database } from '../../platform/db/database.js';
import { invariant } from '../../platform/errors.js';
import { JobQueue } from './queue.js';
import { QueueWorker } from './queue-worker.js';
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

const runtimes = new WeakMap<Database, ComputeRuntime>();

/**
 * Everything on-demand terms need in one process, for one database: the compute service (threads,
 * model cache), the job queue, and (in a worker, or a server with TANGENT_WORKER=on) the queue
 * worker. The server and the `worker`/`compute` commands start one and stop it on the way out;
 * code that only has a database at hand (the curation seam, ensureTerms) finds it by the database.
 */
export class ComputeRuntime {
  private constructor(
    readonly deps: RuntimeDeps,
    readonly compute: ComputeService,
    readonly queue: JobQueue,
    private readonly worker: QueueWorker | null,
    /** Runs that Tangent trains itself (`trainRun`), worked wherever compute jobs are. */
    private readonly trainer: TrainWorker | null = null,
  ) {}

  static async start(deps: RuntimeDeps, options: { worker: boolean }): Promise<ComputeRuntime> {
    const compute = new ComputeService(deps.db, deps.config, deps.log);
    const queue = await JobQueue.start(deps.db, deps.config, deps.log);
    const worker = options.worker ? new QueueWorker({ ...deps, queue, compute }) : null;
    let trainer: TrainWorker | null = null;
    try {
      await worker?.start();
      trainer = options.worker ? await TrainWorker.start(deps, queue) : null;
    } catch (error) {
      await queue.stop(1000).catch(() => undefined);
      throw error;
    }
    if (!worker && deps.db.kind === 'pglite') {
      deps.log.warn('TANGENT_WORKER=off on the embedded database: compute jobs wait until a process with a worker opens it');
    }
    const runtime = new ComputeRuntime(deps, compute, queue, worker, trainer);
    runtimes.set(deps.db, runtime);
    return runtime;
  }

  get working(): boolean {
    return this.worker !== null;
  }

  /**
   * Stops taking chunks, gives those under way up to `timeoutMs` (then back to the queue), and
   * stops the compute threads.
   */
  async stop(timeoutMs: number): Promise<void> {
    if (runtimes.get(this.deps.db) === this) runtimes.delete(this.deps.db);
    this.trainer?.stop();
    if (this.worker) await this.worker.stop(timeoutMs);
    else await this.queue.stop(timeoutMs);
    await this.compute.close();
  }
}

/** The compute runtime serving this database in this process, if one was started. */
export function findComputeRuntime(db: Database): ComputeRuntime | undefined {
  return runtimes.get(db);
}

export function computeRuntime(db: Database): ComputeRuntime {
  const runtime = runtimes.get(db);
  invariant(runtime, 'no compute runtime was started for this database (createServer and the worker/compute commands start one)');
  return runtime;
}
