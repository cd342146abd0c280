import { createHash, randomUUID } from 'node:crypto';
import PgBoss from 'pg-boss';
import type { Config } from '../../platform/config.js';
import type { Database } from '../../platform/db/database.js';
import { retryOnConflict, withAdvisoryLock } from '../../platform/db/migrate.js';
import type { Sql } from '../../platform/db/sql.js';
import type { Logger } from '../../platform/logger.js';
import { activeQueueJobIds, pgBossDb, pglitePgBossDb } from './storage.js';

/**
 * The one job system of a process: pg-boss on the same PostgreSQL (its own `pgboss` schema),
 * or on the embedded PGlite through a small adapter. Each kind of job (compute chunks here, trainings
 * in src/modules/training/train-worker.ts) is a `JobKind`: its queue, dead-letter queue, retries and
 * expiry, and how its jobs under way are handed back when the process stops. Creating the queues,
 * registering workers, giving back jobs a dead process left active, cancelling and stopping are
 * written once, here.
 *
 * Compute jobs: pg-boss on the same PostgreSQL (its own `pgboss` schema),
 * or on the embedded PGlite through a small adapter. Tangent's own `compute_job` row is the job a
 * client sees; each of its chunks is one pg-boss job, so pg-boss gives retries with a limit,
 * distribution over any number of worker processes (SKIP LOCKED), and expiry of chunks whose
 * worker died. A chunk that exhausts its retries lands in the dead-letter queue, whose handler
 * marks the job FAILED.
 */
export const CHUNK_QUEUE = 'tangent-compute-chunk';
export const FAILED_CHUNK_QUEUE = 'tangent-compute-chunk-failed';

/** What pg-boss gives a handler: the job with its metadata (retry count and limit, output). */
export type QueueJob<Message extends object> = PgBoss.JobWithMetadata<Message>;

/** A kind of job: everything the job system needs to create, send, work and hand back its jobs. */
export interface JobKind<Message extends object> {
  /** The queue its jobs are sent to. */
  readonly queue: string;
  /** Where a job lands once its retries are used up (or its every try expired). */
  readonly deadLetter: string;
  /** Retries, their delay and backoff, and the time after which a taken job counts as dead: read from the config of the sender. */
  retry(config: Config): { limit: number; delaySeconds: number; backoff?: boolean; expireSeconds: number };
  /**
   * What happens to a job under way when this process stops taking jobs. `retry`: pg-boss fails it
   * back to the queue (it counts as a try). `resend`: the handler throws `WorkerStopping`, and the
   * job completes with a new job of the same message sent in its place (stopping is not its failure).
   */
  readonly onStop: 'retry' | 'resend';
  /** What a job left active by a process that died is failed with (at start on the embedded database), and how the log counts them. */
  readonly orphaned: { message: string; logKey: string; log: string };
  /** What the log says of a job of the kind handed back with `resend` (its message's fields are logged with it). */
  readonly handedBackLog?: (data: Message) => string;
}

/** What working a kind takes: how many at once, the handler, and the dead-letter handler. */
export interface KindWorker<Message extends object> {
  concurrency: number;
  /** Works one job; `stopping` aborts (with a `WorkerStopping`) when this process stops taking jobs. */
  handle(job: QueueJob<Message>, stopping: AbortSignal): Promise<void>;
  /** A job out of retries. */
  dead(job: QueueJob<Message>): Promise<void>;
}

/** This process stops working jobs: what `stopping` aborts with. */
export class WorkerStopping extends Error {
  constructor() {
    super('the worker is stopping');
    this.name = 'WorkerStopping';
  }
}

/** What a chunk's queue job carries: the compute_job, the chunk index, and the job's attempt. */
export interface ChunkMessage {
  jobId: number;
  chunk: number;
  /** compute_job.attempts when the chunk was sent; a retried job sends its chunks again with the next. */
  attempt: number;
}

export type ChunkJob = QueueJob<ChunkMessage>;

/** A chunk of a compute job (src/modules/jobs/queue-worker.ts works them). */
export const CHUNK_KIND: JobKind<ChunkMessage> = {
  queue: CHUNK_QUEUE,
  deadLetter: FAILED_CHUNK_QUEUE,
  retry: (config) => ({
    limit: config.compute.chunkRetryLimit,
    delaySeconds: config.compute.chunkRetryDelaySeconds,
    expireSeconds: config.compute.chunkExpireSeconds,
  }),
  onStop: 'retry',
  orphaned: { message: 'the process working on this chunk stopped', logKey: 'chunks', log: 'chunks left active by a stopped process are queued again' },
};

/**
 * The advisory lock under which every Tangent process installs pg-boss's schema and creates its
 * queues. pg-boss's `createQueue` inserts the queue's row, then creates and attaches its partition
 * of `pgboss.job`; two processes doing that at once deadlock (40P01), which at start-up killed one
 * of two servers started together on a fresh database.
 */
const QUEUE_SETUP_LOCK_KEY = 7_143_221_902;

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
  /** Per kind's queue: its queues created (once per process; a failed try is forgotten). */
  private readonly defined = new Map<string, Promise<void>>();
  /** Per kind's queue: this process's pg-boss worker ids, to wake them. */
  private readonly workerIds = new Map<string, string[]>();
  /** Aborted (with a WorkerStopping) when this process stops taking jobs. */
  private readonly stopping = new AbortController();

  private constructor(
    private readonly boss: PgBoss,
    private readonly db: Database,
    private readonly config: Config,
    private readonly log: Logger,
  ) {}

  /** Starts pg-boss (installing or upgrading its schema) and makes sure the compute queues exist. */
  static async start(db: Database, config: Config, log: Logger): Promise<JobQueue> {
    const c = config.compute;
    const common = {
      schedule: false,
      supervise: true,
      maintenanceIntervalSeconds: c.maintenanceSeconds,
      pollingIntervalSeconds: c.pollSeconds,
      ...bossRetention(c.jobRetentionDays),
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
      await queue.defineKind(CHUNK_KIND);
    } catch (error) {
      await boss.stop({ graceful: false, wait: true, close: true }).catch(() => undefined);
      throw error;
    }
    return queue;
  }

  /**
   * Creates a kind's queues (its dead-letter queue, then its queue) once per process, under the
   * set-up lock shared by every process on the database (createQueue leaves an existing queue as it
   * is, but two processes creating queues at once deadlock), tried again on a deadlock or
   * serialization failure. It is DDL: never inside a caller's transaction. A failed try is
   * forgotten, so the next call tries again.
   */
  defineKind<Message extends object>(kind: JobKind<Message>): Promise<void> {
    let ready = this.defined.get(kind.queue);
    if (!ready) {
      ready = retryOnConflict('queue creation', this.log, () =>
        withAdvisoryLock(this.db, QUEUE_SETUP_LOCK_KEY, async () => {
          await this.boss.createQueue(kind.deadLetter);
          await this.boss.createQueue(kind.queue, { name: kind.queue, deadLetter: kind.deadLetter });
        }),
      );
      const mine = ready;
      mine.catch(() => {
        if (this.defined.get(kind.queue) === mine) this.defined.delete(kind.queue);
      });
      this.defined.set(kind.queue, mine);
    }
    return ready;
  }

  /**
   * Sends jobs of a kind inside the caller's transaction, so they exist exactly when the rows that
   * describe them commit (defineKind first). A job without an id gets a random one; one whose id is
   * already queued is inserted once. Retry limit, delay and expiry come from the config of the sender.
   */
  async send<Message extends object>(kind: JobKind<Message>, tx: Sql, messages: readonly { id?: string; data: Message }[]): Promise<void> {
    if (messages.length === 0) return;
    const jobs = messages.map(({ id, data }) => this.insertOf(kind, data, id));
    // One statement per 1000 jobs keeps each parameter small.
    for (let i = 0; i < jobs.length; i += 1000) await this.boss.insert(jobs.slice(i, i + 1000), { db: pgBossDb(tx) });
  }

  private insertOf<Message extends object>(kind: JobKind<Message>, data: Message, id?: string): PgBoss.JobInsert<Message> {
    const r = kind.retry(this.config);
    return {
      id: id ?? randomUUID(),
      name: kind.queue,
      data,
      retryLimit: r.limit,
      retryDelay: r.delaySeconds,
      ...(r.backoff ? { retryBackoff: true } : {}),
      expireInSeconds: r.expireSeconds,
      deadLetter: kind.deadLetter,
    };
  }

  /** Cancels jobs of a kind that have not finished (finished ones are left as they are). */
  async cancel<Message extends object>(kind: JobKind<Message>, ids: readonly string[]): Promise<void> {
    for (let i = 0; i < ids.length; i += 1000) await this.boss.cancel(kind.queue, ids.slice(i, i + 1000));
  }

  /**
   * Wakes this process's workers of a kind now instead of at their next poll: after sending jobs
   * from here, and after each job (pg-boss's loop otherwise waits out its polling interval even when
   * more jobs are waiting).
   */
  notify<Message extends object>(kind: JobKind<Message>): void {
    for (const id of this.workerIds.get(kind.queue) ?? []) this.boss.notifyWorker(id);
  }

  /**
   * Works a kind in this process: creates its queues, gives back the jobs a dead process left
   * active, then works its jobs with `worker.handle`, `worker.concurrency` at a time, and its dead
   * jobs with `worker.dead`.
   */
  async work<Message extends object>(kind: JobKind<Message>, worker: KindWorker<Message>): Promise<void> {
    await this.defineKind(kind);
    await this.recoverOrphans(kind);
    const options = { includeMetadata: true as const, batchSize: 1, pollingIntervalSeconds: this.config.compute.pollSeconds };
    const ids = this.workerIds.get(kind.queue) ?? [];
    this.workerIds.set(kind.queue, ids);
    for (let i = 0; i < worker.concurrency; i++) {
      ids.push(
        await this.boss.work<Message>(kind.queue, options, async ([job]) => {
          if (!job) return;
          try {
            await worker.handle(job, this.stopping.signal);
          } catch (error) {
            if (!(kind.onStop === 'resend' && error instanceof WorkerStopping)) throw error;
            // A new job for the same message, and this one completes: stopping a worker (a server
            // restart, a `tangent compute` that took a job while it worked) is not the job's failure.
            await this.db.transaction((tx) => this.send(kind, tx, [{ data: job.data }]));
            this.log.info({ ...(job.data as Record<string, unknown>) }, kind.handedBackLog?.(job.data) ?? 'job handed back to the queue: this worker is stopping');
          } finally {
            this.notify(kind);
          }
        }),
      );
    }
    await this.boss.work<Message>(kind.deadLetter, options, async ([job]) => job && worker.dead(job));
  }

  /**
   * On the embedded database only one process can hold the data folder, so at start every job of
   * the kind still marked active was left by a process that died: give each back to be retried now
   * (it counts as a failed attempt). On PostgreSQL other workers may be alive; there expiry decides.
   */
  private async recoverOrphans<Message extends object>(kind: JobKind<Message>): Promise<number> {
    if (this.db.kind !== 'pglite') return 0;
    const ids = await activeQueueJobIds(this.db, kind.queue);
    if (ids.length === 0) return 0;
    // pg-boss's typings list `data` only for one id; the call takes a list of ids with it just the same.
    const fail = this.boss.fail.bind(this.boss) as (name: string, ids: string[], data: object) => Promise<void>;
    await fail(kind.queue, ids, { message: kind.orphaned.message });
    this.log.info({ [kind.orphaned.logKey]: ids.length }, kind.orphaned.log);
    return ids.length;
  }

  /**
   * Stops taking jobs: the handlers under way are told (`stopping`), and given up to `timeoutMs`;
   * any still running then are failed back to the queue (they are retried, here or elsewhere).
   */
  async stop(timeoutMs: number): Promise<void> {
    this.stopping.abort(new WorkerStopping());
    await this.boss.stop({ graceful: true, wait: true, timeout: Math.max(1000, timeoutMs), close: true });
  }
}

/**
 * pg-boss's own records of finished jobs, kept as long as Tangent keeps its finished compute jobs
 * (TANGENT_JOB_RETENTION_DAYS): an hour in its job table, then in its archive until the retention
 * ends. pg-boss always deletes archived jobs (at least a day after), so "0: keep them" keeps them
 * a hundred years.
 */
function bossRetention(days: number): Pick<PgBoss.ConstructorOptions, 'archiveCompletedAfterSeconds' | 'archiveFailedAfterSeconds' | 'deleteAfterDays'> {
  return { archiveCompletedAfterSeconds: 3600, archiveFailedAfterSeconds: 3600, deleteAfterDays: days > 0 ? days : 36_500 };
}

function invariantUrl(config: Config): void {
  if (config.database.kind !== 'postgres') throw new Error('a PostgreSQL queue needs DATABASE_URL');
}
