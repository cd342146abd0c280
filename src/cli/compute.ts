import type { Command } from 'commander';
import { TERMS, isTermName } from '../platform/values/term.js';
import type { ComputeTermsInput, Term } from '../modules/generated/types.js';
import type { Api } from './api.js';
import { envOverrides, reportError, withEnvironment } from './shared.js';

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
  url?: string;
  apiKey?: string;
}

/** A job as the CLI reads it, over either transport. */
interface JobState {
  id: string;
  status: 'QUEUED' | 'RUNNING' | 'COMPLETED' | 'FAILED' | 'CANCELLED';
  error: string | null;
  progress: { chunksDone: number; chunksTotal: number; samplesDone: number; samplesTotal: number; samplesComputed: number };
}

const JOB = 'id status error progress { chunksDone chunksTotal samplesDone samplesTotal samplesComputed }';

const list = (value: string) => value.split(',').map((v) => v.trim()).filter(Boolean);

/** The GraphQL input of `computeTerms`, from the command line. */
function inputOf(opts: ComputeOptions): ComputeTermsInput {
  const terms = opts.terms ? list(opts.terms).map((t) => t.toUpperCase()) : undefined;
  const unknown = terms?.find((t) => !isTermName(t));
  if (unknown) throw new Error(`--terms: ${unknown} is not a term (${TERMS.map((t) => t.term).join(', ')})`);
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

const isActive = (job: JobState) => job.status === 'QUEUED' || job.status === 'RUNNING';

function describe(job: JobState): string {
  const p = job.progress;
  return `job ${job.id} ${job.status}: ${p.samplesDone}/${p.samplesTotal} samples (${p.samplesComputed} computed), ${p.chunksDone}/${p.chunksTotal} chunks`;
}

/**
 * Follows a job to its end through the `jobProgress` subscription: a progress bar on a terminal
 * (or with --progress), a line per change otherwise. Should the subscription end early (a dropped
 * connection), the job is read again and followed anew.
 */
async function follow(api: Api, job: JobState, show: boolean | undefined): Promise<JobState> {
  const { progressBar } = await import('./progress.js');
  const bar = progressBar(`job ${job.id} [{bar}] {value}/{total} samples | {chunks} chunks | eta {eta_formatted}`, show);
  let started = false;
  let last = '';
  const draw = (j: JobState) => {
    const p = j.progress;
    if (bar) {
      if (!started) bar.start(p.samplesTotal, p.samplesDone, { chunks: `${p.chunksDone}/${p.chunksTotal}` });
      else bar.update(p.samplesDone, { chunks: `${p.chunksDone}/${p.chunksTotal}` });
      started = true;
    } else {
      const line = describe(j);
      if (line !== last) process.stderr.write(`${line}\n`);
      last = line;
    }
  };
  try {
    let current = job;
    draw(current);
    for (let lost = 0; isActive(current); ) {
      try {
        for await (const event of api.subscribe<{ jobProgress: JobState }>(`subscription($id: ID!) { jobProgress(id: $id) { ${JOB} } }`, { id: job.id })) {
          current = event.jobProgress;
          draw(current);
        }
      } catch (error) {
        // A dropped connection is retried a few times; what the server refused is not.
        if ((error as { code?: string }).code !== 'CONNECTION_CLOSED' || ++lost > 5) throw error;
      }
      if (!isActive(current)) break;
      await new Promise((resolve) => setTimeout(resolve, api.pollMs));
      const { job: now } = await api.request<{ job: JobState | null }>(`query($id: ID!) { job(id: $id) { ${JOB} } }`, { id: job.id }, { idempotent: true });
      if (!now) throw Object.assign(new Error(`job ${job.id} was deleted (with its checkpoint)`), { code: 'NOT_FOUND' });
      current = now;
      draw(current);
    }
    return current;
  } finally {
    bar?.stop();
  }
}

/**
 * `tangent compute`: the `computeTerms` mutation from the command line, followed to the end with a
 * progress bar from the `jobProgress` subscription. With `--url` the server runs the job and
 * Ctrl-C only stops following it. Without, the command opens the database itself and works the
 * job's chunks in this process (unless --no-work, for a PostgreSQL with workers of its own);
 * interrupted, it leaves the job to resume with the next worker.
 */
export function registerCompute(program: Command): void {
  const command = program
    .command('compute')
    .description('compute the missing terms of a checkpoint\'s samples as a durable job, with a progress bar')
    .requiredOption('--checkpoint <id>', 'the checkpoint')
    .option('--terms <list>', `comma-separated terms (default all: ${TERMS.map((t) => t.term).join(',')})`)
    .option('--samples <ids>', 'comma-separated sample ids (default every sample of the run\'s dataset)')
    .option('--split <name...>', 'only samples of these splits')
    .option('--target <set>', 'also kCross against split:<name> or selection:<id>')
    .option('--subset <name>', 'the parameter subset of kNorm, kTrace and kCross (default all; e.g. head)')
    .option('--url <url>', 'go through a running server (e.g. http://127.0.0.1:4000), which runs the job, instead of the database')
    .option('--api-key <key>', 'API key for --url, when the server requires one')
    .option('--detach', 'start the job and print its id without waiting')
    .option('--no-work', 'do not work chunks in this process (other workers will; without --url only)')
    .option('--progress', 'draw the progress bar even where stderr is not a terminal')
    .option('--no-progress', 'no progress bar: a line per change');
  withEnvironment(command, ['database']).action(async (opts: ComputeOptions & Record<string, unknown>) => {
    let api: (Api & { db?: { kind: string } }) | null = null;
    let interrupted = false;
    let jobId: string | null = null;
    const onSignal = () => {
      if (interrupted) process.exit(130);
      interrupted = true;
      if (opts.url) {
        // Nothing runs here: the server goes on with the job.
        process.stderr.write(`\ntangent compute: detached; ${jobId ? `job ${jobId}` : 'the job'} goes on running on the server (follow it with job(id) or jobProgress)\n`);
        process.exit(130);
      }
      process.stderr.write('\ntangent compute: stopping; the job resumes with the next worker (or `tangent compute` again)\n');
      void (api?.close() ?? Promise.resolve()).catch(() => undefined).then(() => process.exit(130));
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    try {
      const input = inputOf(opts);
      const work = !opts.url && opts.work !== false && !opts.detach;
      if (opts.url) {
        const { httpApi } = await import('./api.js');
        api = httpApi(opts.url, opts.apiKey);
      } else {
        const { directApi } = await import('./api.js');
        api = await directApi({ command: 'compute', runtime: { work }, quietLevel: 'warn', env: envOverrides(opts) });
      }
      const { computeTerms: job } = await api.request<{ computeTerms: JobState }>(`mutation($input: ComputeTermsInput!) { computeTerms(input: $input) { ${JOB} } }`, { input });
      jobId = job.id;
      if (opts.detach) {
        process.stdout.write(`${describe(job)}\n`);
        return;
      }
      if (!work && !opts.url && api.db?.kind === 'pglite') {
        process.stderr.write('tangent compute: --no-work on the embedded database: nothing else can work this job until a server starts on it\n');
      }
      const done = await follow(api, job, opts.progress);
      process.stdout.write(`${describe(done)}${done.error ? `: ${done.error}` : ''}\n`);
      if (done.status !== 'COMPLETED') {
        process.stderr.write(`tangent compute: job ${done.id} ${done.status}${done.error ? `: ${done.error}` : ''} [JOB_${done.status}]\n`);
        process.exitCode = 1;
      }
    } catch (error) {
      reportError('compute', error);
      process.exitCode = 1;
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      if (!interrupted) await api?.close().catch(() => undefined);
    }
  });
}
