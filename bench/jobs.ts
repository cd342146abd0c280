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
 *   - `Checkpoint.sampleTerms` inline for 32 samples: cold (the model loads), warm, and read back.
 *
 * Flags: --json (only the JSON line on stdout), --problem GunPoint, --threads N (compute threads;
 * default one per core), --chunk 64, --concurrency 1 (chunks at once), --log-level warn, --url postgresql://… (default: PGlite in memory). The last
 * line printed is one JSON object.
 */
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { CNN1D_DEFAULTS, cnn1d, createPool, initBackend, serializeModel } from '../src/compute/index.js';
import { loadConfig } from '../src/platform/config.js';
import { createLogger } from '../src/platform/logger.js';
import { createServer } from '../src/server.js';

const args = process.argv.slice(2);
const flag = (name: string) => args.includes(`--${name}`);
const opt = (name: string, dflt: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? (args[i + 1] as string) : dflt;
};
const jsonOnly = flag('json');
const say = (line: string) => (jsonOnly ? process.stderr : process.stdout).write(`${line}\n`);
const problem = opt('problem', 'GunPoint');
const threads = opt('threads', '0');
const chunk = opt('chunk', '64');
const adminUrl = args.includes('--url') ? opt('url', '') : null;
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
const server = await createServer(config, { log: createLogger(config) });

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
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
} finally {
  await server.close();
  if (adminUrl) await admin(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
}
