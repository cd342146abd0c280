import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cleanupStack } from '../helpers/cleanup.js';
import { startCli, type CliProcess } from '../helpers/cli.js';
import { createTestDatabase } from '../helpers/database.js';
import { startTestServer } from '../helpers/server.js';
import { followJob, httpGql, importUcr, JOB_FIELDS, pollJob, storeCnn, wsClient, type Gql, type JobState } from './helpers.js';

/**
 * A worker killed (SIGKILL) in the middle of a job: after a restart the job finishes, and every
 * sample has its value exactly once. On the embedded database the worker is the server itself (one
 * process per data folder); on PostgreSQL it is `tangent worker` beside a server that only serves.
 */
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

test(`a worker killed mid-job: after a restart the job finishes with every value present exactly once (${postgres ? 'PostgreSQL' : 'PGlite'})`, { timeout: 240_000 }, async (t) => {
  const defer = cleanupStack(t);
  const testDb = defer(await createTestDatabase(), (d) => d.destroy());
  const dbEnv: Record<string, string> = testDb.config.kind === 'postgres' ? { DATABASE_URL: testDb.config.url } : { TANGENT_DATA_DIR: testDb.config.dataDir };
  /** `tangent serve` or `tangent worker` on the test's database, stopped at the end whatever happens. */
  const cli = async (command: 'serve' | 'worker') => defer(await startCli(command, { env: { ...QUEUE_ENV, ...dbEnv } }), (c) => c.stop());

  // The API: on PostgreSQL a server that does not work jobs, on PGlite the server that also works them.
  let api: Gql;
  let url: string;
  let worker: CliProcess;
  if (postgres) {
    const server = defer(await startTestServer({ testDb, env: { ...QUEUE_ENV, TANGENT_WORKER: 'off' } }), (s) => s.stop());
    api = server;
    url = server.url;
    worker = await cli('worker');
  } else {
    // A data folder made from the migrated template (no initdb in the child), then closed for it.
    await (await testDb.open()).close();
    const serve = await cli('serve');
    api = httpGql(serve.url!);
    url = serve.url!;
    worker = serve;
  }

  const { dataset, samples } = await importUcr(api, 'GunPoint');
  // Wide enough that a chunk takes a while, so the kill lands in the middle of the job.
  const cnn = await storeCnn(api, dataset, { config: { filters: [8, 16], kernelSizes: [8, 5] } });
  const checkpointId = cnn.checkpoints[0]!.id;
  const { computeTerms: job } = await api.gql(`mutation($input: ComputeTermsInput!) { computeTerms(input: $input) { ${JOB_FIELDS} } }`, {
    input: { checkpointId, terms: ['K_NORM', 'LOSS'] },
  });
  const total = job.progress.chunksTotal as number;
  assert.equal(total, Math.ceil(samples.length / 8));

  const beforeKill = await pollJob(api, job.id, (j) => j.progress.chunksDone >= 3);
  await worker.kill('SIGKILL');
  assert.equal(beforeKill.status, 'RUNNING');
  assert.ok(beforeKill.progress.chunksDone < total, `killed with ${beforeKill.progress.chunksDone} of ${total} chunks done`);

  if (postgres) {
    const stalled = await api.gql<{ job: JobState }>(`query($id: ID!) { job(id: $id) { ${JOB_FIELDS} } }`, { id: job.id });
    assert.equal(stalled.job.status, 'RUNNING', 'nobody works the job while no worker runs');
    await cli('worker');
  } else {
    const serve = await cli('serve');
    api = httpGql(serve.url!);
    url = serve.url!;
  }

  // Followed to the end over the subscription: on PostgreSQL its events come from the worker process.
  const client = defer(wsClient(url), (c) => c.dispose());
  const done = (await followJob(client, job.id)).at(-1)!;
  await client.dispose();
  assert.equal(done.status, 'COMPLETED', done.error ?? '');
  assert.deepEqual(
    { ...done.progress, samplesComputed: undefined },
    { chunksDone: total, chunksTotal: total, samplesDone: samples.length, samplesTotal: samples.length, samplesComputed: undefined, fraction: 1 },
    'each chunk committed exactly once (a chunk committed twice would count twice)',
  );
  assert.equal(done.progress.samplesComputed, samples.length, 'no sample was computed by two chunks');

  const stored = await api.gql(
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
  const { computeTerms: again } = await api.gql(`mutation($input: ComputeTermsInput!) { computeTerms(input: $input) { ${JOB_FIELDS} } }`, {
    input: { checkpointId, terms: ['K_NORM', 'LOSS'] },
  });
  const second = await pollJob(api, again.id);
  assert.equal(second.status, 'COMPLETED');
  assert.equal(second.progress.samplesComputed, 0);
});
