/**
 * `npm run bench:jobs -- --json`: on-demand terms end to end, against the compute engine alone.
 *
 * Starts the server in-process (embedded database in memory, or `--url postgresql://…` to create a
 * scratch database there), imports a UCR problem over HTTP, stores the reference cnn1d (defaults,
 * fitted to the problem's shape) with two checkpoints, and measures
 *
 *   - the engine alone: a ComputePool's computeTerms over every sample (warm), samples/s;
 *   - `computeTerms` as a job over every sample of the second checkpoint, from the mutation to
 *     COMPLETED (queue, chunks, writes, progress events included), samples/s and its ratio to the
 *     engine alone;
 *   - `Checkpoint.sampleTerms` inline for 32 samples: cold (the model loads), warm, and read back;
 *   - with `--url` (PostgreSQL) only: scale-out. The in-process server is restarted with
 *     TANGENT_WORKER=off and 1, 2, 3 (`--workers 1,2,3`) `tangent worker` processes are started
 *     beside it, one compute thread each (`--worker-threads 1`); for each count, a job over every
 *     sample of a fresh checkpoint, timed from the mutation to COMPLETED, with which worker
 *     committed how many chunks (from their 'chunk done' debug lines). The workers run the
 *     TypeScript sources (TANGENT_FROM_SOURCE=1), like the in-process server.
 *
 * Flags: --json (only the JSON line on stdout), --problem GunPoint, --threads N (compute threads;
 * default one per core), --chunk 64, --workers 1,2,3, --worker-threads 1, --worker-chunk 16, --worker-terms LOSS,K_NORM, --concurrency 1 (chunks at once), --log-level warn, --url postgresql://… (default: PGlite in memory). The last
 * line printed is one JSON object.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { CNN1D_DEFAULTS, cnn1d, createPool, initBackend, serializeModel } from '../src/compute/index.js';
import { loadConfig } from '../src/platform/config.js';
import { createLogger } from '../src/platform/logger.js';
import { createServer } from '../src/server.js';
import { flag, opt } from './args.js';

const jsonOnly = flag('json');
const say = (line: string) => (jsonOnly ? process.stderr : process.stdout).write(`${line}\n`);
const problem = opt('problem', 'GunPoint');
const threads = opt('threads', '0');
const chunk = opt('chunk', '64');
const adminUrl = flag('url') ? opt('url', '') : null;
const UCR = new URL('../datasets/ucr/', import.meta.url).pathname;

async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl! });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

const dbName = `tangent_bench_jobs_${randomBytes(3).toString('hex')}`;
let databaseUrl: string | undefined;
if (adminUrl) {
  await admin(`CREATE DATABASE ${dbName}`);
  const u = new URL(adminUrl);
  u.pathname = `/${dbName}`;
  databaseUrl = u.toString();
}

const env = {
  PORT: '0',
  LOG_LEVEL: opt('log-level', 'warn'),
  NODE_ENV: 'production',
  TANGENT_DATA_DIR: 'memory://',
  TANGENT_COMPUTE_THREADS: threads,
  TANGENT_CHUNK_SIZE: chunk,
  TANGENT_WORKER_CONCURRENCY: opt('concurrency', '1'),
  TANGENT_QUEUE_POLL_SECONDS: '0.5',
  ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
};
const config = loadConfig(env);
let server = await createServer(config, { log: createLogger(config) });

async function gql(query: string, variables?: Record<string, unknown>): Promise<any> {
  const response = await fetch(server.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) });
  const body = (await response.json()) as { data?: any; errors?: unknown[] };
  if (body.errors?.length) throw new Error(JSON.stringify(body.errors));
  return body.data;
}

try {
  const file = (name: string) => ({ text: readFileSync(`${UCR}${name}.ts`, 'utf8'), fileName: `${name}.ts` });
  const { importUcr } = await gql(`mutation($input: ImportUcrInput!) { importUcr(input: $input) { dataset { id length channels classNames } } }`, {
    input: { files: [file(`${problem}_TRAIN`), file(`${problem}_TEST`)] },
  });
  const dataset = importUcr.dataset;
  const samples: { id: string; label: number; series: number[] }[] = [];
  for (let after: string | null = null; ; ) {
    const page: any = (
      await gql(`query($id: ID!, $after: String) { dataset(id: $id) { samples(first: 1000, after: $after) { pageInfo { hasNextPage endCursor } nodes { id label series } } } }`, {
        id: dataset.id,
        after,
      })
    ).dataset.samples;
    samples.push(...page.nodes);
    if (!page.pageInfo.hasNextPage) break;
    after = page.pageInfo.endCursor;
  }
  const n = samples.length;

  const modelConfig = { ...CNN1D_DEFAULTS, length: dataset.length, channels: dataset.channels, classes: dataset.classNames.length };
  await initBackend('auto', () => undefined);
  const stored = await serializeModel(cnn1d(modelConfig));
  const weightData = Buffer.from(stored.weightData).toString('base64');
  const { createModel } = await gql(`mutation($input: CreateModelInput!) { createModel(input: $input) { id } }`, {
    input: { name: 'bench-cnn', format: 'BUILTIN', architecture: 'cnn1d', config: modelConfig, inputLength: dataset.length, channels: dataset.channels, numClasses: dataset.classNames.length },
  });
  const { createRun } = await gql(`mutation($input: CreateRunInput!) { createRun(input: $input) { id } }`, { input: { name: 'bench', modelId: createModel.id, datasetId: dataset.id } });
  const checkpoints: string[] = [];
  for (const step of [0, 1]) {
    const { createCheckpoint } = await gql(`mutation($input: CreateCheckpointInput!) { createCheckpoint(input: $input) { id } }`, {
      input: { runId: createRun.id, step, learningRate: 0.01, weightSpecs: stored.weightSpecs, weightData },
    });
    checkpoints.push(createCheckpoint.id);
  }

  // The engine alone, warm, with as many threads as the server uses.
  const pool = await createPool({ backend: config.backend, ...(Number(threads) > 0 ? { threads: Number(threads) } : {}) });
  const x = new Float32Array(samples.flatMap((s) => s.series));
  const labels = samples.map((s) => s.label);
  const model = await pool.load({ architecture: 'cnn1d', config: modelConfig, weightSpecs: stored.weightSpecs, weightData: stored.weightData });
  await pool.computeTerms(model, x.subarray(0, 16 * dataset.length * dataset.channels), labels.slice(0, 16));
  let t0 = performance.now();
  await pool.computeTerms(model, x, labels);
  const engineMs = performance.now() - t0;
  const backend = pool.backend;
  const poolThreads = pool.threads;
  await pool.close();
  say(`engine alone (${backend.name}, ${poolThreads} threads): ${n} samples in ${engineMs.toFixed(0)} ms, ${((n / engineMs) * 1000).toFixed(1)} samples/s`);

  // Inline: 32 samples cold (model load), 32 others warm, then the first 32 read back.
  const Q = `query($c: ID!, $ids: [ID!]!) { checkpoint(id: $c) { sampleTerms(sampleIds: $ids, terms: [K_NORM]) { kNorm } } }`;
  const timed = async (ids: string[]) => {
    const s = performance.now();
    await gql(Q, { c: checkpoints[0], ids });
    return performance.now() - s;
  };
  const first = samples.slice(0, 32).map((s) => s.id);
  const coldMs = await timed(first);
  const warmMs = await timed(samples.slice(32, 64).map((s) => s.id));
  const readMs = await timed(first);
  say(`inline, 32 samples: cold ${coldMs.toFixed(0)} ms, warm ${warmMs.toFixed(0)} ms, read back ${readMs.toFixed(1)} ms`);

  // A job over every sample of the second checkpoint, from the mutation to COMPLETED.
  t0 = performance.now();
  const { computeTerms: job } = await gql(`mutation($c: ID!) { computeTerms(input: { checkpointId: $c }) { id progress { chunksTotal } } }`, { c: checkpoints[1] });
  let status = '';
  while (status !== 'COMPLETED') {
    await new Promise((r) => setTimeout(r, 50));
    ({ status } = (await gql(`query($id: ID!) { job(id: $id) { status error } }`, { id: job.id })).job);
    if (status === 'FAILED' || status === 'CANCELLED') throw new Error(`the job ended ${status}`);
  }
  const jobMs = performance.now() - t0;
  say(`job: ${n} samples in ${job.progress.chunksTotal} chunks of ${chunk}, ${jobMs.toFixed(0)} ms, ${((n / jobMs) * 1000).toFixed(1)} samples/s (${((jobMs / engineMs) * 100).toFixed(0)}% of the engine's time)`);

  const scaleOut = adminUrl ? await workerScaling(stored.weightSpecs, weightData, createRun.id, n) : null;

  const result = {
    bench: 'jobs',
    problem,
    samples: n,
    database: server.db.kind,
    backend: backend.name,
    backendVersion: backend.version,
    threads: poolThreads,
    chunkSize: Number(chunk),
    concurrency: config.compute.concurrency,
    model: { architecture: 'cnn1d', filters: modelConfig.filters, kernelSizes: modelConfig.kernelSizes },
    engineSamplesPerSec: Number(((n / engineMs) * 1000).toFixed(2)),
    jobSamplesPerSec: Number(((n / jobMs) * 1000).toFixed(2)),
    jobOverEngine: Number((jobMs / engineMs).toFixed(3)),
    inline32: { coldMs: Math.round(coldMs), warmMs: Math.round(warmMs), readBackMs: Number(readMs.toFixed(1)) },
    ...(scaleOut ? { scaleOut } : {}),
    loadAverage: loadavg().map((l) => Number(l.toFixed(2))),
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
} finally {
  await server.close();
  if (adminUrl) await admin(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
}

interface Worker {
  child: ChildProcess;
  stdout: string;
  exited: Promise<void>;
}

/** `tangent worker` against the bench database, logging each chunk it commits (debug). */
function startWorker(threads: string): Worker {
  const bin = fileURLToPath(new URL('../bin/tangent.js', import.meta.url));
  const child = spawn(process.execPath, [bin, 'worker'], {
    env: { ...process.env, ...env, LOG_LEVEL: 'debug', TANGENT_COMPUTE_THREADS: threads, TANGENT_FROM_SOURCE: '1' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const worker: Worker = { child, stdout: '', exited: new Promise((resolve) => child.once('close', () => resolve())) };
  child.stdout!.setEncoding('utf8').on('data', (d: string) => (worker.stdout += d));
  return worker;
}

function logLines(worker: Worker): Record<string, any>[] {
  return worker.stdout.split('\n').flatMap((line) => {
    try {
      return [JSON.parse(line)];
    } catch {
      return [];
    }
  });
}

async function untilReady(worker: Worker): Promise<void> {
  const deadline = Date.now() + 120_000;
  while (!logLines(worker).some((e) => e.msg === 'Tangent worker is taking compute jobs')) {
    if (worker.child.exitCode !== null || Date.now() > deadline) throw new Error(`a worker did not start: ${worker.stdout.slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function stopWorker(worker: Worker): Promise<void> {
  if (worker.child.exitCode === null && worker.child.signalCode === null) worker.child.kill('SIGTERM');
  const timer = setTimeout(() => worker.child.kill('SIGKILL'), 15_000);
  await worker.exited;
  clearTimeout(timer);
}

/**
 * The same job (every sample, `--worker-terms`) on a fresh checkpoint per worker count, with the
 * API server working nothing itself, so the count of `tangent worker` processes is the only thing
 * that changes. On a machine with fewer cores than workers the extra ones only share the cores.
 */
async function workerScaling(
  weightSpecs: unknown,
  weightData: string,
  runId: string,
  n: number,
): Promise<{ workers: number; ms: number; samplesPerSec: number; chunks: number; chunksPerWorker: number[]; speedup: number }[]> {
  await server.close();
  const chunkSize = opt('worker-chunk', '16');
  server = await createServer(loadConfig({ ...env, TANGENT_WORKER: 'off', TANGENT_CHUNK_SIZE: chunkSize }), { log: createLogger(config) });
  const counts = opt('workers', '1,2,3').split(',').map(Number);
  const threadsEach = opt('worker-threads', '1');
  const terms = opt('worker-terms', 'LOSS,K_NORM').split(',');
  const rows: { workers: number; ms: number; samplesPerSec: number; chunks: number; chunksPerWorker: number[]; speedup: number }[] = [];
  for (const [i, count] of counts.entries()) {
    const { createCheckpoint } = await gql(`mutation($input: CreateCheckpointInput!) { createCheckpoint(input: $input) { id } }`, {
      input: { runId, step: 100 + i, learningRate: 0.01, weightSpecs, weightData },
    });
    const workers = Array.from({ length: count }, () => startWorker(threadsEach));
    try {
      await Promise.all(workers.map(untilReady));
      const t0 = performance.now();
      const { computeTerms: job } = await gql(`mutation($c: ID!, $terms: [Term!]!) { computeTerms(input: { checkpointId: $c, terms: $terms }) { id progress { chunksTotal } } }`, {
        c: createCheckpoint.id,
        terms,
      });
      for (;;) {
        const { status } = (await gql(`query($id: ID!) { job(id: $id) { status } }`, { id: job.id })).job;
        if (status === 'COMPLETED') break;
        if (status === 'FAILED' || status === 'CANCELLED') throw new Error(`the job ended ${status}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const ms = performance.now() - t0;
      const chunksPerWorker = workers.map((w) => logLines(w).filter((e) => e.msg === 'chunk done' && String(e.jobId) === String(job.id) && e.outcome === 'committed').length);
      const row = { workers: count, ms: Math.round(ms), samplesPerSec: Number(((n / ms) * 1000).toFixed(2)), chunks: job.progress.chunksTotal, chunksPerWorker, speedup: 1 };
      row.speedup = rows.length ? Number((rows[0]!.ms / ms).toFixed(2)) : 1;
      rows.push(row);
      say(`${count} worker(s) × ${threadsEach} thread(s), chunks of ${chunkSize}: ${n} samples in ${row.ms} ms, ${row.samplesPerSec} samples/s, chunks per worker ${chunksPerWorker.join('/')}, ×${row.speedup} (load ${loadavg()[0]!.toFixed(2)})`);
    } finally {
      await Promise.all(workers.map(stopWorker));
    }
  }
  return rows;
}
