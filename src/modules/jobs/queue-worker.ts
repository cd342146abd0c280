import type { Config } from '../../platform/config.js';
import type { Database } from '../../platform/db/database.js';
import { columnField } from '../terms/metrics.js';
import { writeComputedTermsIn, writeCrossMetricsIn } from '../terms/write-terms.js';
import { ModelUnusableError, TangentError } from '../../platform/errors.js';
import type { Logger } from '../../platform/logger.js';
import type { PubSub } from '../../platform/pubsub.js';
import { checkpointShape, type ComputeService } from '../terms/compute-service.js';
import { publishProgress } from './progress.js';
import { CHUNK_KIND, chunkQueueId, type ChunkJob, type JobQueue } from './queue.js';
import { storedParameterSubset } from '../../platform/values/parameter-subset.js';
import {
  chunkCommitted,
  chunkSamples,
  commitChunk,
  committedChunks,
  failJob,
  isActive,
  loadJob,
  markRunning,
  recordChunkError,
  type JobRow,
} from './storage.js';

/** What pg-boss writes as the output of a chunk that expired while active. */
const EXPIRED = /timeout|exceeded/i;
/** What the queue writes when it gives back a chunk a dead process left active (src/modules/jobs/queue.ts). */
const ORPHANED = CHUNK_KIND.orphaned.message;

/**
 * A reason a client may read: the message of Tangent's own errors, the SQLSTATE of a database
 * error (never its text, which can quote SQL), the first line of anything else. The whole error
 * goes to the worker's log.
 */
export function publicReason(error: unknown): string {
  if (error instanceof TangentError) return error.message;
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return `a database error (SQLSTATE ${code})`;
  const message = error instanceof Error ? error.message : String(error);
  const line = message.split('\n')[0] ?? '';
  return line.length > 300 ? `${line.slice(0, 297)}...` : line;
}

/** The chunk ids of a job still to do under its current attempt (to cancel them). */
export async function pendingChunkIds(db: Database, job: JobRow): Promise<string[]> {
  const done = await committedChunks(db.sql, job.id);
  const ids: string[] = [];
  for (let k = 0; k < job.totalChunks; k++) if (!done.has(k)) ids.push(chunkQueueId(job, job.attempts, k));
  return ids;
}

export interface WorkerDeps {
  db: Database;
  config: Config;
  log: Logger;
  pubsub: PubSub;
  queue: JobQueue;
  compute: ComputeService;
}

/**
 * Works compute-job chunks from the queue. A chunk's tensor work goes to the compute threads; this
 * process's event loop only reads samples, and commits the chunk's values together with its
 * (job, chunk) row in one transaction (`commitChunk`), so a chunk is written once or not at all,
 * however often the queue delivers it. Any number of worker processes can share one database.
 */
export class QueueWorker {
  /** Computations under way per job, aborted when the job is cancelled or fails elsewhere. */
  private readonly running = new Map<number, Set<AbortController>>();
  private readonly stopListening = new AbortController();

  constructor(private readonly deps: WorkerDeps) {}

  async start(): Promise<void> {
    const { queue, config } = this.deps;
    this.watchCancellations();
    await queue.work(CHUNK_KIND, {
      concurrency: config.compute.concurrency,
      handle: (job, stopping) => this.chunk(job, stopping),
      dead: (job) => this.dead(job),
    });
    this.deps.log.info({ concurrency: config.compute.concurrency }, 'compute worker started');
  }

  /**
   * Stops watching for cancellations. The queue's stop aborts the chunks under way (they go back to
   * the queue: CHUNK_KIND's onStop) and stops taking new ones.
   */
  stop(): void {
    this.stopListening.abort();
  }

  private watchCancellations(): void {
    const { pubsub, db, log } = this.deps;
    void (async () => {
      for await (const { jobId } of pubsub.subscribe('jobProgress', this.stopListening.signal)) {
        const set = this.running.get(jobId);
        if (!set?.size) continue;
        const job = await loadJob(db, jobId);
        if (job && isActive(job.status)) continue;
        for (const c of set) c.abort(new Error(`job ${jobId} is ${job?.status ?? 'gone'}`));
      }
    })().catch((error: unknown) => {
      if (!this.stopListening.signal.aborted) log.warn({ err: error }, 'compute worker stopped watching for cancellations');
    });
  }

  private async chunk(message: ChunkJob, stopping: AbortSignal): Promise<void> {
    const { db, compute, pubsub, log } = this.deps;
    const { jobId, chunk, attempt } = message.data;
    const job = await loadJob(db, jobId);
    // A job cancelled, failed, retried under a newer attempt or deleted: nothing to do.
    if (!job || !isActive(job.status) || job.attempts !== attempt) return;
    if (await chunkCommitted(db.sql, jobId, chunk)) return;
    if (await markRunning(db.sql, jobId, attempt)) await publishProgress(pubsub, jobId);

    const abort = new AbortController();
    const stop = () => abort.abort(stopping.reason);
    if (stopping.aborted) stop();
    else stopping.addEventListener('abort', stop, { once: true });
    const set = this.running.get(jobId) ?? new Set();
    set.add(abort);
    this.running.set(jobId, set);
    const t0 = performance.now();
    try {
      const ckpt = await compute.checkpoint(job.checkpointId);
      const samples = await chunkSamples(db.sql, job, ckpt.datasetId, chunk);
      const forTerms = samples.filter((s) => s.lacksTerms).map((s) => s.id);
      const forCross = samples.filter((s) => s.lacksCross).map((s) => s.id);
      const subset = storedParameterSubset(job.subset);
      let trunkHits = 0;
      const opts = { signal: abort.signal, subset, onTrunkHits: (hits: number) => (trunkHits += hits) };
      const columns = forTerms.length ? await compute.metricColumns(ckpt, await compute.samples(ckpt, forTerms), opts) : null;
      const cross = forCross.length && job.targetKey !== null ? await compute.kCross(ckpt, job.targetKey, await compute.samples(ckpt, forCross), opts) : [];
      abort.signal.throwIfAborted();
      const t1 = performance.now();
      // The producer's id is read before the transaction: on PGlite a statement outside the open
      // transaction would wait for it forever.
      const producer = await compute.producer();
      const ref = columns || cross.length ? await compute.producerRef(producer) : null;
      const computed = new Set([...forTerms, ...forCross]).size;
      trunkHits = Math.min(trunkHits, computed); // a sample in both passes counts once
      const outcome = await commitChunk(db, { jobId, attempt, chunk, samples: samples.length, computed, trunkHits }, async (tx) => {
        const shape = checkpointShape(ckpt);
        if (columns) await writeComputedTermsIn(tx, shape, columns, subset, ref!, columnField(`chunk ${chunk}`));
        if (cross.length && job.targetKey !== null) await writeCrossMetricsIn(tx, shape, job.targetKey, subset, cross, ref!);
      });
      if (outcome === 'committed') await publishProgress(pubsub, jobId);
      const ms = { compute: Math.round(t1 - t0), commit: Math.round(performance.now() - t1) };
      log.debug({ jobId, chunk, samples: samples.length, computed, outcome, ms }, 'chunk done');
    } catch (error) {
      if (abort.signal.aborted) {
        // Cancelled (nothing to retry) or stopping (pg-boss fails the chunk back to the queue).
        const current = await loadJob(db, jobId).catch(() => null);
        if (!current || !isActive(current.status) || current.attempts !== attempt) return;
        throw error;
      }
      if (error instanceof ModelUnusableError) {
        // Trying again cannot help: the job fails now, with the reason.
        log.warn({ jobId, chunk, reason: error.message }, 'compute job failed: its model cannot be run');
        await this.fail(jobId, attempt, error.message);
        return;
      }
      log.warn({ err: error, jobId, chunk, attempt: message.retryCount + 1, of: message.retryLimit + 1 }, 'chunk failed');
      await recordChunkError(db.sql, jobId, attempt, publicReason(error)).catch(() => undefined);
      await publishProgress(pubsub, jobId).catch(() => undefined);
      throw error;
    } finally {
      stopping.removeEventListener('abort', stop);
      set.delete(abort);
      if (set.size === 0) this.running.delete(jobId);
    }
  }

  /** A chunk out of retries (or whose every try expired): its job fails, with the reason. */
  private async dead(message: ChunkJob): Promise<void> {
    const { db, config, log } = this.deps;
    const { jobId, chunk, attempt } = message.data;
    const job = await loadJob(db, jobId);
    if (!job || !isActive(job.status) || job.attempts !== attempt) return;
    const output = (message.output ?? {}) as { message?: unknown; value?: { message?: unknown } };
    const text = String(output.message ?? output.value?.message ?? '');
    const tries = message.retryLimit + 1; // the dead-letter job carries the chunk's retry limit
    const last = EXPIRED.test(text)
      ? `it was not finished within ${config.compute.chunkExpireSeconds} s (TANGENT_CHUNK_EXPIRE_SECONDS): its worker stopped or was too slow`
      : text === ORPHANED
        ? 'the process working on it stopped'
        : (job.error ?? 'an error (see the worker log)');
    const reason = `Chunk ${chunk + 1} of ${job.totalChunks} failed ${tries} time${tries === 1 ? '' : 's'}; the last time: ${last}`;
    log.warn({ jobId, chunk, reason }, 'compute job failed');
    await this.fail(jobId, attempt, reason);
  }

  /** Marks the job FAILED (if it is still active), cancels its chunks still queued, and says so. */
  private async fail(jobId: number, attempt: number, reason: string): Promise<void> {
    const { db, pubsub, queue } = this.deps;
    if (!(await failJob(db.sql, jobId, attempt, reason))) return;
    const failed = await loadJob(db, jobId);
    if (failed) await queue.cancel(CHUNK_KIND, await pendingChunkIds(db, failed));
    await publishProgress(pubsub, jobId);
  }
}
