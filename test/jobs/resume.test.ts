import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { after, test } from 'node:test';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { followJob, httpGql, importUcr, JOB_FIELDS, pollJob, storeCnn, wsClient, type Gql, type JobState } from './helpers.js';

/**
 * A worker killed (SIGKILL) in the middle of a job: after a restart the job finishes, and every
 * sample has its value exactly once. On the embedded database the worker is the server itself (one
 * process per data folder); on PostgreSQL it is `tangent worker` beside a server that only serves.
 */
const BIN = new URL('../../bin/tangent.js', import.meta.url).pathname;
const postgres = Boolean(process.env.DATABASE_URL);

const QUEUE_ENV = {
  TANGENT_CHUNK_SIZE: '8',
  TANGENT_COMPUTE_THREADS: '1',
  TANGENT_QUEUE_POLL_SECONDS: '0.5',
  TANGENT_QUEUE_MAINTENANCE_SECONDS: '1',
  // A dead worker's chunk is handed on after this long (PostgreSQL); a live one finishes a chunk far sooner.
  TANGENT_CHUNK_EXPIRE_SECONDS: '4',
  TANGENT_CHUNK_RETRY_DELAY_SECONDS: '0',
};

const children = new Set<ChildProcess>();
let testDb: TestDatabase | undefined;
let api: TestServer | undefined;
after(async () => {
  for (const child of children) child.kill('SIGKILL');
  await api?.close();
  if (!api) await testDb?.destroy();
});

/** Starts `tangent <command>` and resolves once its log says it is ready (with the URL for serve). */
async function startCli(command: 'serve' | 'worker', env: Record<string, string>): Promise<{ child: ChildProcess; url: string | null }> {
  const { DATABASE_URL: _ignored, ...inherited } = process.env;
  const child = spawn(process.execPath, [BIN, command], {
    env: { ...inherited, PORT: '0', LOG_LEVEL: 'info', ...QUEUE_ENV, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  return new Promise((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      try {
        const entry = JSON.parse(line) as { url?: string; msg?: string };
        if (command === 'serve' && entry.url) resolve({ child, url: entry.url });
        if (command === 'worker' && entry.msg === 'Tangent worker is taking compute jobs') resolve({ child, url: null });
      } catch {
        /* not a log line */
      }
    });
    child.once('exit', (code) => reject(new Error(`tangent ${command} exited with ${code} before it was ready`)));
  });
}

async function kill(child: ChildProcess): Promise<void> {
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
}

test(`a worker killed mid-job: after a restart the job finishes with every value present exactly once (${postgres ? 'PostgreSQL' : 'PGlite'})`, async () => {
  testDb = await createTestDatabase();
  const dbEnv: Record<string, string> = testDb.config.kind === 'postgres' ? { DATABASE_URL: testDb.config.url } : { TANGENT_DATA_DIR: testDb.config.dataDir };

  // The API: on PostgreSQL a server that does not work jobs, on PGlite the server that also works them.
  let t: Gql;
  let url: string;
  let worker: ChildProcess;
  if (postgres) {
    api = await startTestServer({ testDb, env: { ...QUEUE_ENV, TANGENT_WORKER: 'off' } });
    t = api;
    url = api.url;
    worker = (await startCli('worker', dbEnv)).child;
  } else {
    // A data folder made from the migrated template (no initdb in the child), then closed for it.
    await (await testDb.open()).close();
    const serve = await startCli('serve', dbEnv);
    t = httpGql(serve.url!);
    url = serve.url!;
    worker = serve.child;
  }

  const { dataset, samples } = await importUcr(t, 'GunPoint');
  // Wide enough that a chunk takes a while, so the kill lands in the middle of the job.
  const cnn = await storeCnn(t, dataset, { config: { filters: [8, 16], kernelSizes: [8, 5] } });
  const checkpointId = cnn.checkpoints[0]!.id;
  const { computeTerms: job } = await t.gql(`mutation($input: ComputeTermsInput!) { computeTerms(input: $input) { ${JOB_FIELDS} } }`, {
    input: { checkpointId, terms: ['K_NORM', 'LOSS'] },
  });
  const total = job.progress.chunksTotal as number;
  assert.equal(total, Math.ceil(samples.length / 8));

  const beforeKill = await pollJob(t, job.id, (j) => j.progress.chunksDone >= 3);
  await kill(worker);
  assert.equal(beforeKill.status, 'RUNNING');
  assert.ok(beforeKill.progress.chunksDone < total, `killed with ${beforeKill.progress.chunksDone} of ${total} chunks done`);

  if (postgres) {
    const stalled = await t.gql<{ job: JobState }>(`query($id: ID!) { job(id: $id) { ${JOB_FIELDS} } }`, { id: job.id });
    assert.equal(stalled.job.status, 'RUNNING', 'nobody works the job while no worker runs');
    await startCli('worker', dbEnv);
  } else {
    const serve = await startCli('serve', dbEnv);
    t = httpGql(serve.url!);
    url = serve.url!;
  }

  // Followed to the end over the subscription: on PostgreSQL its events come from the worker process.
  const client = wsClient(url);
  let done: JobState;
  try {
    done = (await followJob(client, job.id)).at(-1)!;
  } finally {
    await client.dispose();
  }
  assert.equal(done.status, 'COMPLETED', done.error ?? '');
  assert.deepEqual(
    { ...done.progress, samplesComputed: undefined },
    { chunksDone: total, chunksTotal: total, samplesDone: samples.length, samplesTotal: samples.length, samplesComputed: undefined, fraction: 1 },
    'each chunk committed exactly once (a chunk committed twice would count twice)',
  );
  assert.equal(done.progress.samplesComputed, samples.length, 'no sample was computed by two chunks');

  const stored = await t.gql(
    `query($id: ID!) { checkpoint(id: $id) { metrics(first: 1000) { totalCount nodes { sample { id } kNorm loss provenance { term producer { kind backend version } } } } } }`,
    { id: checkpointId },
  );
  const nodes = stored.checkpoint.metrics.nodes as { sample: { id: string }; kNorm: number | null; loss: number | null; provenance: { term: string; producer: { kind: string } }[] }[];
  assert.equal(stored.checkpoint.metrics.totalCount, samples.length, 'one row per sample');
  assert.deepEqual(nodes.map((n) => n.sample.id).sort(), samples.map((s) => s.id).sort(), 'every sample, each once');
  for (const n of nodes) {
    assert.equal(typeof n.kNorm, 'number');
    assert.equal(typeof n.loss, 'number');
    assert.deepEqual(new Set(n.provenance.map((p) => p.producer.kind)), new Set(['SERVER']));
  }

  // The same terms asked for again: a job with nothing left to compute, and no new values.
  const { computeTerms: again } = await t.gql(`mutation($input: ComputeTermsInput!) { computeTerms(input: $input) { ${JOB_FIELDS} } }`, {
    input: { checkpointId, terms: ['K_NORM', 'LOSS'] },
  });
  const second = await pollJob(t, again.id);
  assert.equal(second.status, 'COMPLETED');
  assert.equal(second.progress.samplesComputed, 0);
});
