import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Presets, SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import { createContext } from '../context.js';
import { openDatabase, type Database } from '../db/database.js';
import { migrate } from '../db/migrate.js';
import { TERMS } from '../db/terms.js';
import { progressOf } from '../jobs/progress.js';
import { isActive, loadJob, type JobRow } from '../jobs/store.js';
import { createLogger } from '../logger.js';
import { PubSub } from '../pubsub.js';
import { parseComputeTerms } from '../schema/compute.js';
import type { ComputeTermsInput, Term } from '../schema/generated/types.js';
import { startJob } from '../services/compute-jobs.js';
import { ComputeRuntime } from '../services/compute-runtime.js';
import { configOrExit } from './shared.js';

interface ComputeOptions {
  checkpoint: string;
  terms?: string;
  samples?: string;
  split?: string[];
  target?: string;
  subset?: string;
  detach?: boolean;
  work?: boolean;
  progress?: boolean;
}

const list = (value: string) => value.split(',').map((v) => v.trim()).filter(Boolean);

/** The GraphQL input of `computeTerms`, from the command line. */
function inputOf(opts: ComputeOptions): ComputeTermsInput {
  const known = new Set<string>(TERMS.map((t) => t.term));
  const terms = opts.terms ? list(opts.terms).map((t) => t.toUpperCase()) : undefined;
  const unknown = terms?.find((t) => !known.has(t));
  if (unknown) throw new Error(`--terms: ${unknown} is not a term (${[...known].join(', ')})`);
  let target: ComputeTermsInput['target'] = null;
  if (opts.target) {
    const [kind, ...rest] = opts.target.split(':');
    const value = rest.join(':');
    if (kind === 'split' && value) target = { split: value };
    else if (kind === 'selection' && value) target = { selectionId: value };
    else throw new Error('--target must be split:<name> or selection:<id>');
  }
  return {
    checkpointId: opts.checkpoint,
    terms: terms as Term[] | undefined,
    target,
    subset: opts.subset,
    sampleIds: opts.samples ? list(opts.samples) : undefined,
    splits: opts.split?.length ? opts.split : undefined,
  };
}

function describe(job: JobRow): string {
  const p = progressOf(job);
  return `job ${job.id} ${job.status}: ${p.samplesDone}/${p.samplesTotal} samples (${p.samplesComputed} computed), ${p.chunksDone}/${p.chunksTotal} chunks`;
}

/** Follows a job to its end: a progress bar on a terminal, a line per change otherwise. */
async function follow(db: Database, pubsub: PubSub, jobId: number, showBar: boolean): Promise<JobRow> {
  const stop = new AbortController();
  const events = pubsub.subscribe('jobProgress', stop.signal);
  let wake: Promise<unknown> | null = null;
  const bar = showBar ? new SingleBar({ stream: process.stderr, hideCursor: true, format: `job ${jobId} [{bar}] {value}/{total} samples | {chunks} chunks | eta {eta_formatted}` }, Presets.shades_classic) : null;
  let last = '';
  try {
    for (;;) {
      const job = await loadJob(db, jobId);
      if (!job) throw new Error(`job ${jobId} was deleted (with its checkpoint)`);
      const p = progressOf(job);
      if (bar) {
        if (last === '') bar.start(p.samplesTotal, p.samplesDone, { chunks: `${p.chunksDone}/${p.chunksTotal}` });
        else bar.update(p.samplesDone, { chunks: `${p.chunksDone}/${p.chunksTotal}` });
        last = 'started';
      } else {
        const line = describe(job);
        if (line !== last) process.stderr.write(`${line}\n`);
        last = line;
      }
      if (!isActive(job.status)) return job;
      wake ??= (async () => {
        for (;;) {
          const r = await events.next();
          if (r.done || r.value.jobId === jobId) return;
        }
      })().finally(() => (wake = null));
      // Events wake the loop; the poll covers notifications lost while a listener reconnects.
      await Promise.race([wake, sleep(2000, undefined, { signal: stop.signal })]).catch(() => undefined);
    }
  } finally {
    bar?.stop();
    stop.abort();
    await wake?.catch(() => undefined);
  }
}

/**
 * `tangent compute`: the `computeTerms` mutation from the command line, followed to the end with a
 * progress bar. This process works the job's chunks too (unless --no-work, for a PostgreSQL with
 * workers of its own); interrupted, it leaves the job to resume with the next worker.
 */
export function registerCompute(program: Command): void {
  program
    .command('compute')
    .description('compute the missing terms of a checkpoint\'s samples as a durable job, with a progress bar')
    .requiredOption('--checkpoint <id>', 'the checkpoint')
    .option('--terms <list>', `comma-separated terms (default all: ${TERMS.map((t) => t.term).join(',')})`)
    .option('--samples <ids>', 'comma-separated sample ids (default every sample of the run\'s dataset)')
    .option('--split <name...>', 'only samples of these splits')
    .option('--target <set>', 'also kCross against split:<name> or selection:<id>')
    .option('--subset <name>', 'the parameter subset of kNorm, kTrace and kCross (default all; e.g. head)')
    .option('--detach', 'start the job and print its id without waiting')
    .option('--no-work', 'do not work chunks in this process (other workers will)')
    .option('--no-progress', 'no progress bar')
    .action(async (opts: ComputeOptions) => {
      const config = configOrExit();
      const log = createLogger({ ...config, logLevel: config.logLevel === 'info' ? 'warn' : config.logLevel });
      let db: Database;
      try {
        db = await openDatabase(config.database, log, { statementTimeoutMs: config.statementTimeoutMs });
      } catch (error) {
        process.stderr.write(`tangent compute: ${error instanceof Error ? error.message : String(error)}\n`);
        process.exitCode = 1;
        return;
      }
      let pubsub: PubSub | undefined;
      let runtime: ComputeRuntime | undefined;
      let interrupted = false;
      const onSignal = () => {
        if (interrupted) process.exit(130);
        interrupted = true;
        process.stderr.write('\ntangent compute: stopping; the job resumes with the next worker (or `tangent compute` again)\n');
        void shutdown().then(() => process.exit(130));
      };
      const shutdown = async () => {
        await runtime?.stop(config.shutdownGraceMs).catch(() => undefined);
        await pubsub?.close().catch(() => undefined);
        await db.close().catch(() => undefined);
      };
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      try {
        await migrate(db, log);
        pubsub = await PubSub.start(db, log);
        const work = opts.work !== false && !opts.detach;
        runtime = await ComputeRuntime.start({ db, config, log, pubsub }, { worker: work });
        const ctx = createContext({ config, db, pubsub, log }, randomUUID());
        const job = await startJob(runtime, await parseComputeTerms(ctx, inputOf(opts)));
        if (opts.detach) {
          process.stdout.write(`${describe(job)}\n`);
          return;
        }
        if (!work && db.kind === 'pglite') process.stderr.write('tangent compute: --no-work on the embedded database: nothing else can work this job until a server starts on it\n');
        const done = await follow(db, pubsub, job.id, opts.progress !== false && Boolean(process.stderr.isTTY));
        process.stdout.write(`${describe(done)}${done.error ? `: ${done.error}` : ''}\n`);
        if (done.status !== 'COMPLETED') process.exitCode = 1;
      } catch (error) {
        const e = error as Error & { extensions?: Record<string, unknown> };
        const field = e.extensions?.field ? ` (${String(e.extensions.field)})` : '';
        process.stderr.write(`tangent compute: ${e.message}${field}\n`);
        process.exitCode = 1;
      } finally {
        if (!interrupted) await shutdown();
      }
    });
}
