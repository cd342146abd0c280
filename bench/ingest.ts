/**
 * `npm run bench:ingest -- --json`: per-sample metrics for N samples (default 1,000,000) logged
 * through the GraphQL bulk mutation `logMetrics` by a client with several requests in flight, against
 * a raw COPY of the same rows into the same table (`sample_metric`, a fresh checkpoint) of the same
 * PostgreSQL, from this process, in the same run. Both paths encode their rows as they go (the client
 * base64 columns, the raw COPY text lines), so each is timed from its first byte to its last commit.
 *
 * The server runs as `tangent serve` in its own process (as it would beside a training script), on a
 * database of the benchmark's own on the PostgreSQL that DATABASE_URL names (default
 * postgresql://postgres@127.0.0.1:5432/test), created as `tangent_bench_ingest` and dropped afterwards.
 * The dataset's samples are added through `addSamplesBulk` first, and that rate is reported too.
 *
 * Rows carry loss, correct, logits (V values) and kNorm. The raw COPY goes first, so the GraphQL path
 * writes into the larger table (which costs it a little, never helps it).
 *
 * Flags: --json (only the JSON line on stdout), --rows <n> (1000000), --batch <rows per request>
 * (100000), --concurrency <requests in flight> (3), --classes <V> (10), --rounds <n> (1: each path
 * once; more alternate the two and report the median of each). The last line printed is one JSON object.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { loadavg } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { formatFloat32 } from '../src/modules/terms/metrics-storage.js';
import { flag, opt } from './args.js';

const option = (name: string, fallback: number) => Number(opt(name, String(fallback)));
const jsonOnly = flag('json');
const N = option('rows', 1_000_000);
const BATCH = option('batch', 100_000);
const CONCURRENCY = option('concurrency', 3);
const V = option('classes', 10);
const ROUNDS = option('rounds', 1);
const say = (line: string) => (jsonOnly ? process.stderr : process.stdout).write(`${line}\n`);

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'tangent.js');
const ADMIN_URL = process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/test';
const DB_NAME = 'tangent_bench_ingest';

async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: ADMIN_URL });
  await client.connect();
  await client.query(sql).finally(() => client.end());
}

function startServer(databaseUrl: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, [BIN, 'serve'], {
    env: { ...process.env, DATABASE_URL: databaseUrl, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', NODE_ENV: 'production', TANGENT_BACKEND: 'cpu' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        const entry = JSON.parse(line) as { url?: string };
        if (entry.url) resolve({ child, url: entry.url });
      } catch {
        /* not a log line */
      }
    });
    child.once('exit', (code) => reject(new Error(`the server exited with ${code} before serving`)));
  });
}

async function stopServer(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 10_000))]);
  if (child.exitCode === null) child.kill('SIGKILL');
}

async function gql<T = any>(url: string, query: string, variables: Record<string, unknown> = {}): Promise<T> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) });
  const body = (await response.json()) as { data?: T; errors?: { message: string }[] };
  if (body.errors?.length) throw new Error(`GraphQL: ${body.errors[0]!.message}`);
  return body.data as T;
}

const b64 = (values: Float32Array | Int32Array) => Buffer.from(values.buffer, values.byteOffset, values.byteLength).toString('base64');

/** The rows both paths write: deterministic values, float32 from the start (what a client holds). */
function makeRows(n: number) {
  const loss = new Float32Array(n);
  const correct = new Array<boolean>(n);
  const logits = new Float32Array(n * V);
  const kNorm = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    loss[i] = Math.abs(Math.sin(i * 0.37)) * 4;
    correct[i] = i % 5 !== 0;
    kNorm[i] = 1 + (i % 997) * 0.125;
    for (let k = 0; k < V; k++) logits[i * V + k] = Math.cos(i * 0.01 + k) * 6;
  }
  return { loss, correct, logits, kNorm };
}

async function main() {
  await admin(`DROP DATABASE IF EXISTS ${DB_NAME} WITH (FORCE)`);
  await admin(`CREATE DATABASE ${DB_NAME}`);
  const dbUrl = new URL(ADMIN_URL);
  dbUrl.pathname = `/${DB_NAME}`;
  let server: { child: ChildProcess; url: string } | null = null;
  const raw = new pg.Client({ connectionString: dbUrl.toString() });
  try {
    server = await startServer(dbUrl.toString());
    await raw.connect();
    const url = server.url;

    // Setup: a dataset of N samples (series of length 1) through addSamplesBulk, a model, a run.
    const { createDataset } = await gql(url, `mutation { createDataset(input: { name: "bench", length: 1, classNames: [${Array.from({ length: V }, (_, k) => `"c${k}"`).join(',')}] }) { id } }`);
    const datasetId = createDataset.id as string;
    const samplesStart = performance.now();
    const perSampleRequest = 250_000;
    for (let start = 0; start < N; start += perSampleRequest) {
      const end = Math.min(N, start + perSampleRequest);
      await gql(url, 'mutation($id: ID!, $input: SampleColumnsInput!) { addSamplesBulk(datasetId: $id, input: $input) { added } }', {
        id: datasetId,
        input: {
          indices: b64(Int32Array.from({ length: end - start }, (_, i) => start + i)),
          labels: b64(Int32Array.from({ length: end - start }, (_, i) => (start + i) % V)),
          split: 'train',
          series: b64(Float32Array.from({ length: end - start }, (_, i) => (start + i) * 0.001)),
        },
      });
    }
    const samplesSeconds = (performance.now() - samplesStart) / 1000;
    say(`samples: ${N} through addSamplesBulk in ${samplesSeconds.toFixed(1)} s (${Math.round(N / samplesSeconds)} rows/s)`);
    const { createModel } = await gql(url, `mutation { createModel(input: { name: "bench", format: BUILTIN, architecture: "cnn1d", config: { pool: 0 }, inputLength: 1, numClasses: ${V} }) { id } }`);
    const { createRun } = await gql(url, 'mutation($m: ID!, $d: ID!) { createRun(input: { name: "bench", modelId: $m, datasetId: $d }) { id } }', { m: createModel.id, d: datasetId });
    let step = 0;
    const checkpoint = async () =>
      (await gql(url, 'mutation($r: ID!, $s: Int!) { createCheckpoint(input: { runId: $r, step: $s, weightSpecs: [], weightData: "" }) { id } }', { r: createRun.id, s: step++ })).createCheckpoint.id as string;

    const ids = await raw.query<{ id: number }>('SELECT id FROM sample WHERE dataset_id = $1 ORDER BY index', [Number(datasetId)]);
    const sampleIds = Int32Array.from(ids.rows, (r) => r.id);
    const rows = makeRows(N);
    const { rows: [producer] } = await raw.query<{ id: number }>(
      `INSERT INTO producer (kind, backend, version) VALUES ('CLIENT', '', '') ON CONFLICT (kind, backend, version) DO UPDATE SET kind = EXCLUDED.kind RETURNING id`,
    );
    const src = producer!.id;

    /** The GraphQL path: `CONCURRENCY` requests in flight, each BATCH rows as base64 columns. */
    async function viaGraphql(checkpointId: string): Promise<number> {
      const t0 = performance.now();
      let next = 0;
      const worker = async () => {
        while (next < N) {
          const start = next;
          const end = Math.min(N, start + BATCH);
          next = end;
          const data = await gql(url, 'mutation($c: ID!, $input: MetricColumnsInput!) { logMetrics(checkpointId: $c, input: $input) { written } }', {
            c: checkpointId,
            input: {
              sampleIds: b64(sampleIds.subarray(start, end)),
              loss: b64(rows.loss.subarray(start, end)),
              correct: rows.correct.slice(start, end),
              logits: b64(rows.logits.subarray(start * V, end * V)),
              kNorm: b64(rows.kNorm.subarray(start, end)),
            },
          });
          if (data.logMetrics.written !== end - start) throw new Error(`wrote ${data.logMetrics.written} of ${end - start}`);
        }
      };
      await Promise.all(Array.from({ length: CONCURRENCY }, worker));
      return (performance.now() - t0) / 1000;
    }

    /** The raw path: one COPY of the same rows, values and provenance, into sample_metric. */
    async function viaCopy(checkpointId: string): Promise<number> {
      const t0 = performance.now();
      await raw.query('BEGIN');
      const stream = raw.query(
        copyFrom('COPY sample_metric (checkpoint_id, sample_id, loss, loss_src, correct, correct_src, logits, logits_src, k_norm, k_norm_src) FROM STDIN'),
      );
      const lines = function* () {
        for (let start = 0; start < N; start += 512) {
          let chunk = '';
          for (let i = start; i < Math.min(N, start + 512); i++) {
            let logits = '{';
            for (let k = 0; k < V; k++) logits += (k ? ',' : '') + formatFloat32(rows.logits[i * V + k]!);
            chunk += `${checkpointId}\t${sampleIds[i]}\t${formatFloat32(rows.loss[i]!)}\t${src}\t${rows.correct[i] ? 't' : 'f'}\t${src}\t${logits}}\t${src}\t${formatFloat32(rows.kNorm[i]!)}\t${src}\n`;
          }
          yield chunk;
        }
      };
      await pipeline(Readable.from(lines()), stream);
      await raw.query('COMMIT');
      return (performance.now() - t0) / 1000;
    }

    const timings = { graphql: [] as number[], copy: [] as number[] };
    for (let round = 0; round < ROUNDS; round++) {
      const copySeconds = await viaCopy(await checkpoint());
      timings.copy.push(copySeconds);
      say(`round ${round + 1}: raw COPY ${N} rows in ${copySeconds.toFixed(2)} s (${Math.round(N / copySeconds)} rows/s)`);
      const graphqlSeconds = await viaGraphql(await checkpoint());
      timings.graphql.push(graphqlSeconds);
      say(`round ${round + 1}: GraphQL logMetrics ${N} rows in ${graphqlSeconds.toFixed(2)} s (${Math.round(N / graphqlSeconds)} rows/s), ${CONCURRENCY} requests of ${BATCH} rows in flight`);
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const graphqlRate = Math.round(N / median(timings.graphql));
    const copyRate = Math.round(N / median(timings.copy));
    const stored = await raw.query<{ n: number }>('SELECT count(*)::int AS n FROM sample_metric');
    if (stored.rows[0]!.n !== N * 2 * ROUNDS) throw new Error(`expected ${N * 2 * ROUNDS} stored rows, found ${stored.rows[0]!.n}`);
    const out = {
      bench: 'ingest',
      backend: 'postgres',
      rows: N,
      columns: ['loss', 'correct', `logits[${V}]`, 'kNorm'],
      batchRows: BATCH,
      concurrency: CONCURRENCY,
      rounds: ROUNDS,
      graphql: { seconds: Math.round(median(timings.graphql) * 100) / 100, rowsPerSec: graphqlRate },
      rawCopy: { seconds: Math.round(median(timings.copy) * 100) / 100, rowsPerSec: copyRate },
      ratio: Math.round((graphqlRate / copyRate) * 1000) / 1000,
      target: 0.8,
      samples: { rows: N, seconds: Math.round(samplesSeconds * 100) / 100, rowsPerSec: Math.round(N / samplesSeconds) },
      loadAvg: loadavg().map((x) => Math.round(x * 100) / 100),
    };
    process.stdout.write(`${JSON.stringify(out)}\n`);
  } finally {
    await raw.end().catch(() => undefined);
    if (server) await stopServer(server.child);
    await admin(`DROP DATABASE IF EXISTS ${DB_NAME} WITH (FORCE)`).catch(() => undefined);
  }
}

await main();
