import { createHash } from 'node:crypto';
import PgBoss from 'pg-boss';
import type { Config } from '../../platform/config.js';
import type { Database } from '../../platform/db/database.js';
import { retryOnConflict, withAdvisoryLock } from '../../platform/db/migrate.js';
import type { Sql } from '../../platform/db/sql.js';
import type { Logger } from '../../platform/logger.js';
import { activeQueueJobIds, pgBossDb, pglitePgBossDb } from './storage.js';

/**
 * The durable queue under compute jobs: pg-boss on the same PostgreSQL (its own `pgboss` schema),
 * or on the embedded PGlite through a small adapter. Tangent's own `compute_job` row is the job a
 * client sees; each of its chunks is one pg-boss job, so pg-boss gives retries with a limit,
 * distribution over any number of worker processes (SKIP LOCKED), and expiry of chunks whose
 * worker died. A chunk that exhausts its retries lands in the dead-letter queue, whose handler
 * marks the job FAILED.
 */
export const CHUNK_QUEUE = 'tangent-compute-chunk';
export const FAILED_CHUNK_QUEUE = 'tangent-compute-chunk-failed';

/** What a chunk's queue job carries: the compute_job, the chunk index, and the job's attempt. */
export interface ChunkMessage {
  jobId: number;
  chunk: number;
  /** compute_job.attempts when the chunk was sent; a retried job sends its chunks again with the next. */
  attempt: number;
}

export type ChunkJob = PgBoss.JobWithMetadata<ChunkMessage>;

/**
 * The advisory lock under which every Tangent process installs pg-boss's schema and creates its
 * queues. pg-boss's `createQueue` inserts the queue's row, then creates and attaches its partition
 * of `pgboss.job`; two processes doing that at once deadlock (40P01), which at start-up killed one
 * of two servers started together on a fresh database.
 */
const QUEUE_SETUP_LOCK_KEY = 7_143_221_902;

/** A queue to create: its name and pg-boss's options for it. */
export type QueueSpec = readonly [name: string, options?: PgBoss.Queue];

/**
 * The queue id of a chunk: a UUID derived from (job, its creation time, attempt, chunk), so that
 * cancelling a job needs no list of ids and sending a chunk twice inserts it once.
 */
export function chunkQueueId(job: { id: number; createdAt: Date }, attempt: number, chunk: number): string {
  const hex = createHash('sha256').update(`tangent-chunk/${job.id}/${job.createdAt.getTime()}/${attempt}/${chunk}`).digest('hex');
  // An RFC 9562 version 8 (custom) UUID: version and variant bits set, the rest from the hash.
  const variant = ((parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

export class JobQueue {
  private constructor(
    private readonly boss: PgBoss,
    private readonly db: Database,
    private readonly config: Config,
    private readonly log: Logger,
  ) {}

  /** The pg-boss instance, for the other durable queues of this process (training: src/modules/training/train-worker.ts). */
  get pgBoss(): PgBoss {
    return this.boss;
  }

  /** Starts pg-boss (installing or upgrading its schema) and makes sure both queues exist. */
  static async start(db: Database, config: Config, log: Logger): Promise<JobQueue> {
    const c = config.compute;
    const common = {
      schedule: false,
      supervise: true,
      maintenanceIntervalSeconds: c.maintenanceSeconds,
      pollingIntervalSeconds: c.pollSeconds,
      // Finished chunk jobs are only bookkeeping: keep them a day, not pg-boss's default two weeks.
      archiveCompletedAfterSeconds: 3600,
      deleteAfterDays: 1,
    } satisfies PgBoss.ConstructorOptions;
    let options: PgBoss.ConstructorOptions;
    if (db.kind === 'pglite') {
      const pglite = db.pglite;
      if (!pglite) throw new Error('the embedded database did not expose its PGlite instance');
      options = { ...common, db: pglitePgBossDb(pglite) };
    } else {
      invariantUrl(config);
      options = { ...common, connectionString: config.database.kind === 'postgres' ? config.database.url : '', max: 4, application_name: 'tangent-queue' };
    }
    // pg-boss's start installs or upgrades its schema: one process at a time, like our migrations. A
    // pg-boss whose start failed cannot be started again (nor stopped), so each try gets a new one.
    const boss = await retryOnConflict('job queue start', log, async () => {
      const boss = new PgBoss(options);
      boss.on('error', (error) => log.warn({ err: error }, 'job queue error'));
      try {
        await withAdvisoryLock(db, QUEUE_SETUP_LOCK_KEY, () => boss.start());
        return boss;
      } catch (error) {
        // Its own connection pool, if it opened one, would otherwise keep the process alive.
        await (boss.getDb() as { close?: () => Promise<void> }).close?.().catch(() => undefined);
        throw error;
      }
    });
    const queue = new JobQueue(boss, db, config, log);
    try {
      await queue.createQueues([[FAILED_CHUNK_QUEUE], [CHUNK_QUEUE, { name: CHUNK_QUEUE, deadLetter: FAILED_CHUNK_QUEUE }]]);
    } catch (error) {
      await boss.stop({ graceful: false, wait: true, close: true }).catch(() => undefined);
      throw error;
    }
    return queue;
  }

  /**
   * Creates queues that may not exist yet (createQueue leaves an existing one as it is), in order,
   * under the set-up lock shared by every process on the database, tried again on a deadlock or
   * serialization failure. It is DDL: never inside a caller's transaction.
   */
  async createQueues(queues: readonly QueueSpec[]): Promise<void> {
    await retryOnConflict('queue creation', this.log, () =>
      withAdvisoryLock(this.db, QUEUE_SETUP_LOCK_KEY, async () => {
        for (const [name, options] of queues) await this.boss.createQueue(name, options);
      }),
    );
  }

  /**
   * Sends chunks inside the caller's transaction, so they exist exactly when the job row that
   * describes them commits. Retry limit, delay and expiry come from the config of the sender.
   */
  async enqueue(tx: Sql, chunks: readonly (ChunkMessage & { id: string })[]): Promise<void> {
    if (chunks.length === 0) return;
    const c = this.config.compute;
    const jobs: PgBoss.JobInsert<ChunkMessage>[] = chunks.map(({ id, ...data }) => ({
      id,
      name: CHUNK_QUEUE,
      data,
      retryLimit: c.chunkRetryLimit,
      retryDelay: c.chunkRetryDelaySeconds,
      expireInSeconds: c.chunkExpireSeconds,
      deadLetter: FAILED_CHUNK_QUEUE,
    }));
    // One statement per 1000 chunks keeps each parameter small.
    for (let i = 0; i < jobs.length; i += 1000) {
      await this.boss.insert(jobs.slice(i, i + 1000), { db: pgBossDb(tx) });
    }
  }

  /** Cancels chunks that have not finished (finished ones are left as they are). */
  async cancel(ids: readonly string[]): Promise<void> {
    for (let i = 0; i < ids.length; i += 1000) await this.boss.cancel(CHUNK_QUEUE, ids.slice(i, i + 1000));
  }

  /**
   * Wakes this process's chunk workers now instead of at their next poll: after sending chunks from
   * here, and after each chunk (pg-boss's loop otherwise waits out its polling interval even when
   * more chunks are waiting).
   */
  notifyWorkers(): void {
    for (const id of this.chunkWorkerIds) this.boss.notifyWorker(id);
  }

  private readonly chunkWorkerIds: string[] = [];

  /** Works chunks with `handler`, `concurrency` at a time, and dead chunks with `onDead`. */
  async work(concurrency: number, handler: (job: ChunkJob) => Promise<void>, onDead: (job: PgBoss.JobWithMetadata<ChunkMessage>) => Promise<void>): Promise<void> {
    const options = { includeMetadata: true as const, batchSize: 1, pollingIntervalSeconds: this.config.compute.pollSeconds };
    for (let i = 0; i < concurrency; i++) {
      this.chunkWorkerIds.push(
        await this.boss.work<ChunkMessage>(CHUNK_QUEUE, options, async ([job]) => {
          if (!job) return;
          try {
            await handler(job);
          } finally {
            this.notifyWorkers();
          }
        }),
      );
    }
    await this.boss.work<ChunkMessage>(FAILED_CHUNK_QUEUE, options, async ([job]) => job && onDead(job));
  }

  /**
   * On the embedded database only one process can hold the data folder, so at start every chunk
   * still marked active was left by a process that died: give each back to be retried now (it
   * counts as a failed attempt). On PostgreSQL other workers may be alive; there expiry decides.
   */
  async recoverOrphans(): Promise<number> {
    if (this.db.kind !== 'pglite') return 0;
    const ids = await activeQueueJobIds(this.db, CHUNK_QUEUE);
    if (ids.length === 0) return 0;
    // pg-boss's typings list `data` only for one id; the call takes a list of ids with it just the same.
    const fail = this.boss.fail.bind(this.boss) as (name: string, ids: string[], data: object) => Promise<void>;
    await fail(CHUNK_QUEUE, ids, { message: 'the process working on this chunk stopped' });
    this.log.info({ chunks: ids.length }, 'chunks left active by a stopped process are queued again');
    return ids.length;
  }

  /**
   * Stops taking chunks and waits up to `timeoutMs` for those under way; any still running then
   * are failed back to the queue (they are retried, here or elsewhere).
   */
  async stop(timeoutMs: number): Promise<void> {
    await this.boss.stop({ graceful: true, wait: true, timeout: Math.max(1000, timeoutMs), close: true });
  }
}

function invariantUrl(config: Config): void {
  if (config.database.kind !== 'postgres') throw new Error('a PostgreSQL queue needs DATABASE_URL');
}
