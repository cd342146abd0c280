import { setTimeout as sleep } from 'node:timers/promises';
import type { Database } from '../../platform/db/database.js';
import type { PubSub } from '../../platform/pubsub.js';
import { isActive, loadJob, type JobRow } from './storage.js';

/** How far a job has come (Job.progress). */
export interface JobProgress {
  chunksDone: number;
  chunksTotal: number;
  samplesDone: number;
  samplesTotal: number;
  /** Samples the job computed; the others already had every value it makes present. */
  samplesComputed: number;
  /** Of those, samples whose trunk activations came from the frozen-trunk cache. */
  samplesFromTrunkCache: number;
  /** samplesDone / samplesTotal, 1 for a job without samples. */
  fraction: number;
}

export function progressOf(job: JobRow): JobProgress {
  return {
    chunksDone: job.doneChunks,
    chunksTotal: job.totalChunks,
    samplesDone: job.doneSamples,
    samplesTotal: job.totalSamples,
    samplesComputed: job.computedSamples,
    samplesFromTrunkCache: job.trunkHits,
    fraction: job.totalSamples === 0 ? 1 : job.doneSamples / job.totalSamples,
  };
}

/** Tells every process (subscriptions, waiting queries, workers) that the job moved. */
export async function publishProgress(pubsub: PubSub, jobId: number): Promise<void> {
  await pubsub.publish('jobProgress', { jobId });
}

/** How often a waiter re-reads the job even without an event (notifications sent while a listener reconnects are lost). */
const POLL_MS = 1000;

/**
 * Resolves with the job once it is no longer QUEUED or RUNNING, or as it is when `ms` have passed
 * (null if it does not exist). Woken by jobProgress events, with a slow poll as a safety net.
 */
export async function waitForJob(db: Database, pubsub: PubSub, jobId: number, ms: number): Promise<JobRow | null> {
  const deadline = Date.now() + ms;
  const stop = new AbortController();
  const events = pubsub.subscribe('jobProgress', stop.signal);
  // One pending read of the iterator at a time; a wake-up is any event for this job.
  let next: Promise<unknown> | null = null;
  const nextEvent = async () => {
    for (;;) {
      const r = await events.next();
      if (r.done || r.value.jobId === jobId) return;
    }
  };
  try {
    for (;;) {
      const job = await loadJob(db, jobId);
      const left = deadline - Date.now();
      if (!job || !isActive(job.status) || left <= 0) return job;
      next ??= nextEvent().finally(() => (next = null));
      await Promise.race([next, sleep(Math.min(POLL_MS, left), undefined, { signal: stop.signal })]).catch(() => undefined);
    }
  } finally {
    stop.abort();
    await next?.catch(() => undefined);
  }
}
