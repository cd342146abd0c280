/**
 * `npm run bench:load -- --json`: load tests, with autocannon on loopback, of a real Tangent server
 * (the built CLI, `node bin/tangent.js serve`, in its own process: run `npm run build:server` first)
 * beside a bare Apollo Server 5 (standalone, `{ __typename }` on a one-field schema, also in its own
 * process) measured in the same run on the same machine, so that the ratio means something on a
 * shared machine. The database is PostgreSQL when DATABASE_URL is set (a fresh database on that
 * server, dropped afterwards), PGlite in a temporary folder otherwise.
 *
 * Scenarios, each with auth off and with auth on (a READER key; the rate limiter runs, with a
 * limit it never reaches): `__typename`; a run with its 10 checkpoints; a page of 50 samples with
 * their series; and the mixed workload, cycling through serverInfo, a page of datasets, the run
 * and the samples page. The top-level figures of the JSON line are the mixed workload with auth on
 * (as before), `authOff` the same with auth off.
 *
 * Each pass gives req/s, p50/p99 latency, the server's CPU time per request and (PostgreSQL on
 * this machine) its backends' CPU time per request; `__typename` is compared with bare Apollo both
 * by req/s and by server CPU per request, the one that moves less with the machine's load. Every
 * server is up and warm before the first pass, and each scenario's auth-on and auth-off passes run
 * back to back.
 *
 * Flags: --json (only the JSON line on stdout), --duration <s> (default 10), --connections <n>
 * (default 20), --warmup <s> (load on each server before its passes, default 3, longer until its CPU per request settles), --no-compare (auth on only), --no-baseline (skip bare Apollo), --only <a,b>
 * (scenarios by key: typename, run, samples, mixed), --profile <dir> (servers run under
 * `node --cpu-prof`, profiles written there when they stop). The last line printed is one JSON object.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import pg from 'pg';
import { pino } from 'pino';
import { createApiKey } from '../src/modules/api-keys/service.js';
import { openDatabase } from '../src/platform/db/database.js';
import { migrate } from '../src/platform/db/migrate.js';
import { ucrSeries } from './ucr.js';
import { flag, opt } from './args.js';

const args = process.argv.slice(2);
const option = (name: string, fallback: number) => Number(opt(name, String(fallback)));
const jsonOnly = flag('json');
const warmupSeconds = option('warmup', 3);
const duration = option('duration', 10);
const connections = option('connections', 20);
const text = (name: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const only = text('only')?.split(',');
const profileDir = text('profile');
const say = (line: string) => (jsonOnly ? process.stderr : process.stdout).write(`${line}\n`);

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const BIN = path.join(ROOT, 'bin', 'tangent.js');
if (!existsSync(path.join(ROOT, 'dist', 'main.js'))) {
  process.stderr.write('bench:load measures the built server: run `npm run build:server` first\n');
  process.exit(2);
}
const quiet = pino({ level: 'warn' });

/** A database of the benchmark's own: its env for the server, and how to remove it. */
async function benchDatabase(): Promise<{
  env: Record<string, string>;
  config: Parameters<typeof openDatabase>[0];
  backend: string;
  /** Process ids of the PostgreSQL backends serving the benchmark's database (to read their CPU time when the server is local). */
  backendPids?(): Promise<number[]>;
  drop(): Promise<void>;
}> {
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
    const backendPids = async () => {
      const client = new pg.Client({ connectionString: admin });
      await client.connect();
      try {
        const { rows } = await client.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE datname = $1', [name]);
        return rows.map((r) => r.pid);
      } finally {
        await client.end();
      }
    };
    return {
      env: { DATABASE_URL: url.toString() },
      config: { kind: 'postgres', url: url.toString(), poolSize: 2 },
      backend: 'postgres',
      backendPids,
      drop: () => exec(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`),
    };
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'tangent-bench-'));
  return { env: { TANGENT_DATA_DIR: dir }, config: { kind: 'pglite', dataDir: dir }, backend: 'pglite', drop: async () => rmSync(dir, { recursive: true, force: true }) };
}

/** Node's flags for a server process: a CPU profile per process under --profile. */
function nodeFlags(label: string): string[] {
  return profileDir ? ['--cpu-prof', '--cpu-prof-dir', profileDir, '--cpu-prof-name', `${label}-${Date.now()}.cpuprofile`] : [];
}

function startServer(env: Record<string, string>, label: string): Promise<{ child: ChildProcess; url: string }> {
  const { DATABASE_URL: _ignored, TANGENT_FROM_SOURCE: _source, ...inherited } = process.env;
  const child = spawn(process.execPath, [...nodeFlags(label), BIN, 'serve'], {
    env: { ...inherited, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', NODE_ENV: 'production', ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return urlOf(child);
}

/** A bare Apollo Server 5, standalone, one field: what GraphQL over HTTP costs with nothing of Tangent's. */
function startBareApollo(): Promise<{ child: ChildProcess; url: string }> {
  const program = `
    import { ApolloServer } from '@apollo/server';
    import { startStandaloneServer } from '@apollo/server/standalone';
    const server = new ApolloServer({ typeDefs: 'type Query { hello: String }', resolvers: { Query: { hello: () => 'world' } } });
    const { url } = await startStandaloneServer(server, { listen: { port: 0, host: '127.0.0.1' } });
    console.log(JSON.stringify({ url }));
    process.on('SIGTERM', () => server.stop().then(() => process.exit(0)));
  `;
  const child = spawn(process.execPath, [...nodeFlags('apollo'), '--input-type=module', '-e', program], {
    cwd: ROOT,
    env: { ...process.env, NODE_ENV: 'production' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return urlOf(child);
}

function urlOf(child: ChildProcess): Promise<{ child: ChildProcess; url: string }> {
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

/** A UCR dataset, a model, a run with 10 checkpoints and metrics for every sample at the last one. */
async function seed(url: string, headers: Record<string, string>) {
  const ucr = await ucrSeries('ArrowHead', 'TRAIN');
  const { createDataset } = await gql(url, headers, `mutation($i: CreateDatasetInput!) { createDataset(input: $i) { id } }`, {
    i: { name: 'ArrowHead', length: ucr.length, channels: ucr.channels, classNames: Array.from({ length: ucr.classes }, (_, c) => `c${c}`), samples: ucr.series.map((s, index) => ({ index, label: ucr.labels[index], series: Array.from(s) })) },
  });
  for (let d = 0; d < 30; d++) await gql(url, headers, `mutation($n: String!) { createDataset(input: { name: $n, length: 4, classNames: ["a"] }) { id } }`, { n: `filler-${d}` });
  const { createModel } = await gql(url, headers, `mutation($l: Int!, $c: Int!) { createModel(input: { name: "cnn", format: BUILTIN, architecture: "cnn1d", config: { filters: [8], kernelSizes: [3] }, inputLength: $l, numClasses: $c }) { id } }`, { l: ucr.length, c: ucr.classes });
  const { createRun } = await gql(url, headers, `mutation($m: ID!, $d: ID!) { createRun(input: { name: "run", modelId: $m, datasetId: $d, config: { learningRate: 0.001 } }) { id } }`, { m: createModel.id, d: createDataset.id });
  let checkpointId = '';
  for (let step = 1; step <= 10; step++) {
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

type Op = { name: string; query: string; variables?: unknown };

function workload(ids: { datasetId: string; runId: string }): Op[] {
  return [
    { name: 'serverInfo', query: `{ serverInfo { version database } }` },
    { name: 'datasets page', query: `{ datasets(first: 20) { totalCount pageInfo { hasNextPage endCursor } nodes { id name length channels classNames } } }` },
    { name: 'run with checkpoints', query: `query($id: ID!) { run(id: $id) { name status config checkpointCount checkpoints(first: 10) { nodes { id step learningRate weightBytes } } } }`, variables: { id: ids.runId } },
    { name: 'samples page', query: `query($id: ID!) { dataset(id: $id) { samples(first: 50) { pageInfo { endCursor } nodes { id index label split series } } } }`, variables: { id: ids.datasetId } },
  ];
}

/** The scenarios, by key: one request each, and the mixed workload last. */
function scenarios(ids: { datasetId: string; runId: string }): { key: string; label: string; ops: Op[] }[] {
  const mix = workload(ids);
  const all = [
    { key: 'typename', label: '{ __typename }', ops: [{ name: '__typename', query: '{ __typename }' }] },
    { key: 'run', label: 'a run with its 10 checkpoints', ops: [mix[2]!] },
    { key: 'samples', label: 'a page of 50 samples', ops: [mix[3]!] },
    { key: 'mixed', label: 'mixed workload', ops: mix },
  ];
  return all.filter((s) => !only || only.includes(s.key));
}

/**
 * `cpuMsPerRequest`: the server process's own CPU time (user + system, from /proc) over the pass,
 * divided by the requests it served. On a shared 2-core machine req/s follows whatever else runs;
 * CPU per request is what the server itself spends, so it compares across runs and loads (it still
 * rises somewhat with contention: cache misses, and the kernel's loopback work charged to writes).
 * Absent where /proc is not readable. The database server's own CPU is not in it: that is
 * `dbCpuMsPerRequest`, the CPU time of the PostgreSQL backends serving the benchmark's database
 * (when PostgreSQL runs on this machine; they share its cores with the server).
 */
type Figures = { rps: number; p50Ms: number; p99Ms: number; errors: number; requests: number; cpuMsPerRequest?: number; dbCpuMsPerRequest?: number };

/** User + system CPU time of a process, in ms (Linux /proc; clock ticks at the usual 100 Hz). */
function cpuMsOf(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    // Fields after the command name (which may hold spaces, inside parentheses): utime is the 12th, stime the 13th.
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return null;
  }
}

/**
 * A freshly started server runs its first seconds of load before V8 has optimised its hot paths.
 * The auth-off server starts after every auth-on pass and, unlike the auth-on one (which served the
 * seeding), was measured from its first request: its first pass included its warm-up, one reason
 * auth off could measure slower than auth on. Each server now gets the same warm-up before its
 * passes; `--warmup 0` leaves it out.
 *
 * A fixed number of seconds was not enough either: V8 optimises on a background thread, and on a
 * loaded 2-core machine that thread waits for a core, so a fresh server measured 1.2 ms of CPU per
 * `{ __typename }` in its first 3 s, 0.4 ms in the next 3 and 0.25 ms after (load average 12). So
 * the warm-up goes on, in rounds of a second, past `--warmup` seconds until the server's CPU per
 * request settles (two rounds within 10 % of each other), for at most 5 × `--warmup` seconds. It
 * is given to the bare Apollo Server too.
 */
async function warmUp(url: string, headers: Record<string, string>, ops: Op[], server?: ChildProcess): Promise<void> {
  if (warmupSeconds <= 0) return;
  const requests = ops.map((op) => ({ method: 'POST' as const, headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify({ query: op.query, variables: op.variables }) }));
  const started = Date.now();
  let previous: number | null = null;
  for (;;) {
    const before = cpuMsOf(server?.pid);
    const result = await autocannon({ url, connections, duration: 1, requests });
    const after = cpuMsOf(server?.pid);
    const perRequest = before !== null && after !== null && result.requests.total > 0 ? (after - before) / result.requests.total : null;
    const elapsed = (Date.now() - started) / 1000;
    if (elapsed >= warmupSeconds * 5) break;
    if (elapsed >= warmupSeconds) {
      if (perRequest === null) break; // no /proc: the plain warm-up
      if (previous !== null && Math.abs(perRequest - previous) <= 0.1 * previous) break;
    }
    previous = perRequest;
  }
}

async function pass(url: string, headers: Record<string, string>, ops: Op[], server?: ChildProcess, database = true): Promise<Figures> {
  for (const op of ops) await gql(url, headers, op.query, op.variables); // every request of the mix is valid
  const cpuBefore = cpuMsOf(server?.pid);
  const dbBefore = database ? await dbCpu() : null;
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
    ...cpuFigure(cpuBefore, cpuMsOf(server?.pid), result.requests.total),
    ...(database ? dbFigure(dbBefore, await dbCpu(), result.requests.total) : {}),
  };
}

/** CPU time (ms) by backend pid of the benchmark database's PostgreSQL backends on this machine, or null. */
async function dbCpu(): Promise<Map<number, number> | null> {
  if (!db.backendPids) return null;
  const out = new Map<number, number>();
  for (const pid of await db.backendPids()) {
    const ms = cpuMsOf(pid);
    if (ms !== null) out.set(pid, ms);
  }
  return out.size ? out : null;
}

/** A backend that started during the pass counts from zero; one that ended during it is lost (the pool keeps them while busy). */
function dbFigure(before: Map<number, number> | null, after: Map<number, number> | null, requests: number): { dbCpuMsPerRequest?: number } {
  if (!after || requests === 0) return {};
  let ms = 0;
  for (const [pid, now] of after) ms += now - (before?.get(pid) ?? 0);
  return { dbCpuMsPerRequest: Math.round((ms / requests) * 1000) / 1000 };
}

function cpuFigure(before: number | null, after: number | null, requests: number): { cpuMsPerRequest?: number } {
  if (before === null || after === null || requests === 0) return {};
  return { cpuMsPerRequest: Math.round(((after - before) / requests) * 1000) / 1000 };
}

const line = (name: string, f: Figures) =>
  `${name.padEnd(42)} ${String(f.rps).padStart(6)} req/s, p50 ${f.p50Ms} ms, p99 ${f.p99Ms} ms, ${f.errors} errors of ${f.requests}${f.cpuMsPerRequest !== undefined ? `, server CPU ${f.cpuMsPerRequest} ms/request` : ''}${f.dbCpuMsPerRequest !== undefined ? `, PostgreSQL CPU ${f.dbCpuMsPerRequest} ms/request` : ''}`;
const round3 = (x: number) => Math.round(x * 1000) / 1000;

const db = await benchDatabase();
const children: ChildProcess[] = [];
try {
  // The first admin key, made in the database before the server starts (what `tangent keys create` does).
  const direct = await openDatabase(db.config, quiet);
  await migrate(direct, quiet);
  const { secret } = await createApiKey(direct, { name: 'bench', role: 'ADMIN' });
  const reader = await createApiKey(direct, { name: 'bench-reader', role: 'READER' });
  await direct.close();

  const load = () => loadavg().map((x) => Math.round(x * 100) / 100);
  const loadBefore = load();
  const limits = { TANGENT_RATE_LIMIT_PER_MIN: '100000000' }; // the limiter runs, without refusing
  // Seeded through a server of its own: the measured servers then start together, with the same
  // history. (The auth-on server used to serve the seeding too, and measured less CPU per request
  // than the fresh auth-off one in the same minutes, while two fresh servers measured alike.)
  const seeder = await startServer({ ...db.env, ...limits, TANGENT_AUTH: 'on' }, 'seed');
  children.push(seeder.child);
  const ids = await seed(seeder.url, { authorization: `Bearer ${secret}` });
  await stopServer(seeder.child);
  const secured = await startServer({ ...db.env, ...limits, TANGENT_AUTH: 'on' }, 'auth-on');
  children.push(secured.child);
  say(`backend ${db.backend}; ${ids.samples} samples; ${connections} connections for ${duration} s per pass; server: dist (node bin/tangent.js serve); load average ${loadBefore.join(' ')}`);
  // Every server is started and warmed up before any pass, and the auth-on and auth-off passes of
  // each scenario run back to back, the bare Apollo baseline just before them: on a shared machine
  // whose load drifts by the minute, figures taken minutes apart (auth off used to run only after
  // every auth-on pass, on a younger server) differed by more than what they compared.
  const typenameOps: Op[] = [{ name: '__typename', query: '{ __typename }' }];
  const bare = flag('no-baseline') ? null : await startBareApollo();
  if (bare) children.push(bare.child);
  const open = flag('no-compare') ? null : await startServer({ ...db.env, ...limits, TANGENT_AUTH: 'off' }, 'auth-off');
  if (open) children.push(open.child);
  const readerHeaders = { authorization: `Bearer ${reader.secret}` };
  // Warm-up on the requests the passes send (under --only, those alone: a profile then shows them, not the rest of the mix).
  const measured = [...new Set(scenarios(ids).flatMap((s) => s.ops))];
  if (bare) await warmUp(bare.url, {}, typenameOps, bare.child);
  await warmUp(secured.url, readerHeaders, measured, secured.child);
  if (open) await warmUp(open.url, {}, measured, open.child);

  let apollo: Figures | null = null;
  if (bare) {
    apollo = await pass(bare.url, {}, typenameOps, bare.child, false);
    say(line('bare Apollo Server 5: { __typename }', apollo));
    await stopServer(bare.child);
  }
  const results: Record<string, { label: string; authOn: Figures; authOff?: Figures }> = {};
  for (const scenario of scenarios(ids)) {
    const authOn = await pass(secured.url, readerHeaders, scenario.ops, secured.child);
    results[scenario.key] = { label: scenario.label, authOn };
    say(line(`auth on : ${scenario.label}`, authOn));
    if (open) {
      const authOff = await pass(open.url, {}, scenario.ops, open.child);
      results[scenario.key]!.authOff = authOff;
      say(line(`auth off: ${scenario.label}`, authOff));
    }
  }
  await stopServer(secured.child);
  if (open) await stopServer(open.child);
  const typename = results.typename;
  // req/s ratios, and the same by server CPU (bare Apollo's CPU per request over Tangent's: 0.6
  // means Tangent spends 1/0.6 of Apollo's CPU on a request), which moves less with the machine's load.
  const cpuRatio = (f: Figures | undefined) => (apollo?.cpuMsPerRequest && f?.cpuMsPerRequest ? round3(apollo.cpuMsPerRequest / f.cpuMsPerRequest) : null);
  const ratios =
    apollo && typename
      ? {
          typenameVsApolloAuthOff: typename.authOff ? round3(typename.authOff.rps / apollo.rps) : null,
          typenameVsApolloAuthOn: round3(typename.authOn.rps / apollo.rps),
          typenameCpuVsApolloAuthOff: cpuRatio(typename.authOff),
          typenameCpuVsApolloAuthOn: cpuRatio(typename.authOn),
        }
      : {};
  if (apollo && typename) {
    say(`__typename vs bare Apollo: auth off ${ratios.typenameVsApolloAuthOff ?? '-'}×, auth on ${ratios.typenameVsApolloAuthOn}× (by server CPU per request: auth off ${ratios.typenameCpuVsApolloAuthOff ?? '-'}×, auth on ${ratios.typenameCpuVsApolloAuthOn ?? '-'}×)`);
  }
  const loadAfter = load();
  say(`load average after: ${loadAfter.join(' ')}`);

  const mixed = results.mixed;
  const out = {
    bench: 'load',
    backend: db.backend,
    server: 'dist',
    workload: workload(ids).map((op) => op.name),
    connections,
    durationS: duration,
    loadAverage: { before: loadBefore, after: loadAfter },
    // The mixed workload, auth on then off, as before.
    ...(mixed ? { auth: 'on', ...mixed.authOn } : {}),
    ...(mixed?.authOff ? { authOff: mixed.authOff, authCostPct: Math.round((1 - mixed.authOn.rps / mixed.authOff.rps) * 1000) / 10 } : {}),
    apolloBaseline: apollo,
    scenarios: results,
    ...ratios,
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
} finally {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  await db.drop();
}
