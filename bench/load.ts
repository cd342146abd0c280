/**
 * `npm run bench:load -- --json`: a load test of a mixed read workload against a real Tangent
 * server (the CLI, in its own process) with API keys required, on loopback, with autocannon.
 * The database is PostgreSQL when DATABASE_URL is set (a fresh database on that server, dropped
 * afterwards), PGlite in a temporary folder otherwise. The workload cycles through four reads:
 * serverInfo, a page of datasets, a run with its checkpoints, a page of samples with their series.
 * A second pass with auth off measures what checking the key on every request costs (keys are not
 * cached, so that a revocation takes effect at once; this is the price of that).
 *
 * Flags: --json (only the JSON line on stdout), --duration <s> (default 10), --connections <n>
 * (default 16), --no-compare (skip the auth-off pass). The last line printed is one JSON object.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import pg from 'pg';
import { pino } from 'pino';
import { createApiKey } from '../src/auth/keys.js';
import { openDatabase } from '../src/db/database.js';
import { migrate } from '../src/db/migrate.js';
import { ucrSeries } from './ucr.js';

const args = process.argv.slice(2);
const flag = (name: string) => args.includes(`--${name}`);
const option = (name: string, fallback: number) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? Number(args[i + 1]) : fallback;
};
const jsonOnly = flag('json');
const duration = option('duration', 10);
const connections = option('connections', 16);
const say = (line: string) => (jsonOnly ? process.stderr : process.stdout).write(`${line}\n`);

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'tangent.js');
const quiet = pino({ level: 'warn' });

/** A database of the benchmark's own: its env for the server, and how to remove it. */
async function benchDatabase(): Promise<{ env: Record<string, string>; config: Parameters<typeof openDatabase>[0]; backend: string; drop(): Promise<void> }> {
  const admin = process.env.DATABASE_URL;
  if (admin) {
    const name = `tangent_bench_${process.pid}`;
    const exec = async (sql: string) => {
      const client = new pg.Client({ connectionString: admin });
      await client.connect();
      await client.query(sql).finally(() => client.end());
    };
    await exec(`CREATE DATABASE ${name}`);
    const url = new URL(admin);
    url.pathname = `/${name}`;
    return { env: { DATABASE_URL: url.toString() }, config: { kind: 'postgres', url: url.toString(), poolSize: 2 }, backend: 'postgres', drop: () => exec(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'tangent-bench-'));
  return { env: { TANGENT_DATA_DIR: dir }, config: { kind: 'pglite', dataDir: dir }, backend: 'pglite', drop: async () => rmSync(dir, { recursive: true, force: true }) };
}

function startServer(env: Record<string, string>): Promise<{ child: ChildProcess; url: string }> {
  const { DATABASE_URL: _ignored, ...inherited } = process.env;
  const child = spawn(process.execPath, [BIN, 'serve'], {
    env: { ...inherited, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', NODE_ENV: 'production', ...env },
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
  await exited;
}

async function gql(url: string, headers: Record<string, string>, query: string, variables?: unknown) {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ query, variables }) });
  const body = (await res.json()) as { data?: any; errors?: unknown[] };
  if (body.errors) throw new Error(`${query.slice(0, 60)}…: ${JSON.stringify(body.errors)}`);
  return body.data;
}

/** A UCR dataset, a model, a run with 5 checkpoints and metrics for every sample at the last one. */
async function seed(url: string, headers: Record<string, string>) {
  const ucr = await ucrSeries('ArrowHead', 'TRAIN');
  const { createDataset } = await gql(url, headers, `mutation($i: CreateDatasetInput!) { createDataset(input: $i) { id } }`, {
    i: { name: 'ArrowHead', length: ucr.length, channels: ucr.channels, classNames: Array.from({ length: ucr.classes }, (_, c) => `c${c}`), samples: ucr.series.map((s, index) => ({ index, label: ucr.labels[index], series: Array.from(s) })) },
  });
  for (let d = 0; d < 30; d++) await gql(url, headers, `mutation($n: String!) { createDataset(input: { name: $n, length: 4, classNames: ["a"] }) { id } }`, { n: `filler-${d}` });
  const { createModel } = await gql(url, headers, `mutation($l: Int!, $c: Int!) { createModel(input: { name: "cnn", format: BUILTIN, architecture: "cnn1d", config: { filters: 8 }, inputLength: $l, numClasses: $c }) { id } }`, { l: ucr.length, c: ucr.classes });
  const { createRun } = await gql(url, headers, `mutation($m: ID!, $d: ID!) { createRun(input: { name: "run", modelId: $m, datasetId: $d, config: { learningRate: 0.001 } }) { id } }`, { m: createModel.id, d: createDataset.id });
  let checkpointId = '';
  for (let step = 1; step <= 5; step++) {
    const { createCheckpoint } = await gql(url, headers, `mutation($r: ID!, $s: Int!, $w: Base64!) { createCheckpoint(input: { runId: $r, step: $s, weightSpecs: [{ name: "w", shape: [256], dtype: "float32" }], weightData: $w }) { id } }`, {
      r: createRun.id,
      s: step * 100,
      w: Buffer.alloc(1024, step).toString('base64'),
    });
    checkpointId = createCheckpoint.id;
  }
  const { dataset } = await gql(url, headers, `query($d: ID!) { dataset(id: $d) { samples(first: 1000) { nodes { id } } } }`, { d: createDataset.id });
  await gql(url, headers, `mutation($c: ID!, $m: [MetricInput!]!) { recordMetrics(checkpointId: $c, metrics: $m) { written } }`, {
    c: checkpointId,
    m: dataset.samples.nodes.map((s: { id: string }, i: number) => ({ sampleId: s.id, loss: 0.1 + (i % 7) * 0.01, correct: i % 3 !== 0, gNorm: 0.5 })),
  });
  return { datasetId: createDataset.id as string, runId: createRun.id as string, samples: dataset.samples.nodes.length as number };
}

function workload(ids: { datasetId: string; runId: string }) {
  return [
    { name: 'serverInfo', query: `{ serverInfo { version database } }` },
    { name: 'datasets page', query: `{ datasets(first: 20) { totalCount pageInfo { hasNextPage endCursor } nodes { id name length channels classNames } } }` },
    { name: 'run with checkpoints', query: `query($id: ID!) { run(id: $id) { name status config checkpointCount checkpoints(first: 10) { nodes { id step learningRate weightBytes } } } }`, variables: { id: ids.runId } },
    { name: 'samples page', query: `query($id: ID!) { dataset(id: $id) { samples(first: 50) { pageInfo { endCursor } nodes { id index label split series } } } }`, variables: { id: ids.datasetId } },
  ];
}

async function pass(url: string, headers: Record<string, string>, ids: { datasetId: string; runId: string }) {
  const ops = workload(ids);
  for (const op of ops) await gql(url, headers, op.query, op.variables); // every request of the mix is valid
  const result = await autocannon({
    url,
    connections,
    duration,
    requests: ops.map((op) => ({ method: 'POST' as const, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ query: op.query, variables: op.variables }) })),
  });
  return {
    rps: Math.round(result.requests.average),
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    errors: result.errors + result.timeouts + result.non2xx,
    requests: result.requests.total,
  };
}

const db = await benchDatabase();
const children: ChildProcess[] = [];
try {
  // The first admin key, made in the database before the server starts (what `tangent keys create` does).
  const direct = await openDatabase(db.config, quiet);
  await migrate(direct, quiet);
  const { secret } = await createApiKey(direct, { name: 'bench', role: 'ADMIN' });
  const reader = await createApiKey(direct, { name: 'bench-reader', role: 'READER' });
  await direct.close();

  const limits = { TANGENT_RATE_LIMIT_PER_MIN: '100000000' }; // the limiter runs, without refusing
  const secured = await startServer({ ...db.env, ...limits, TANGENT_AUTH: 'on' });
  children.push(secured.child);
  const ids = await seed(secured.url, { authorization: `Bearer ${secret}` });
  say(`backend ${db.backend}; ${ids.samples} samples; ${connections} connections for ${duration} s per pass`);
  const withAuth = await pass(secured.url, { authorization: `Bearer ${reader.secret}` }, ids);
  say(`auth on : ${withAuth.rps} req/s, p50 ${withAuth.p50Ms} ms, p99 ${withAuth.p99Ms} ms, ${withAuth.errors} errors of ${withAuth.requests}`);
  await stopServer(secured.child);

  let withoutAuth: Awaited<ReturnType<typeof pass>> | null = null;
  if (!flag('no-compare')) {
    const open = await startServer({ ...db.env, ...limits, TANGENT_AUTH: 'off' });
    children.push(open.child);
    withoutAuth = await pass(open.url, {}, ids);
    say(`auth off: ${withoutAuth.rps} req/s, p50 ${withoutAuth.p50Ms} ms, p99 ${withoutAuth.p99Ms} ms, ${withoutAuth.errors} errors of ${withoutAuth.requests}`);
    await stopServer(open.child);
  }

  const out = {
    bench: 'load',
    backend: db.backend,
    workload: workload(ids).map((op) => op.name),
    connections,
    durationS: duration,
    auth: 'on',
    ...withAuth,
    ...(withoutAuth ? { authOff: withoutAuth, authCostPct: Math.round((1 - withAuth.rps / withoutAuth.rps) * 1000) / 10 } : {}),
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
} finally {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  await db.drop();
}
