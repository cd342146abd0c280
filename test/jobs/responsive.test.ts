import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { followJob, importUcr, JOB_FIELDS, storeCnn, wsClient, type JobState } from './helpers.js';

/**
 * The server answers while a large compute job runs: its tensor work is in compute threads, so the
 * event loop that serves GraphQL stays free. Shown by answers that carry the job's own state: each
 * one was given while the job was RUNNING, with chunks still to do.
 */
let t: TestServer;
before(async () => {
  t = await startTestServer({ env: { TANGENT_CHUNK_SIZE: '8', TANGENT_QUEUE_POLL_SECONDS: '0.5' } });
});
after(() => t?.close());

test('simple queries are answered, correctly, while a large job is RUNNING; the job can then be cancelled mid-way', async () => {
  const { dataset, samples } = await importUcr(t, 'GunPoint', 'responsive-gunpoint');
  const cnn = await storeCnn(t, dataset, { config: { filters: [16, 32], kernelSizes: [8, 5] } });
  const { computeTerms: job } = await t.gql(`mutation($input: ComputeTermsInput!) { computeTerms(input: $input) { ${JOB_FIELDS} } }`, {
    input: { checkpointId: cnn.checkpoints[0]!.id, terms: ['K_NORM'] },
  });
  const total = job.progress.chunksTotal as number;
  assert.equal(total, 25);

  const client = wsClient(t.url);
  let running: () => void;
  const firstChunk = new Promise<void>((resolve) => (running = resolve));
  const followed = followJob(client, job.id, (e) => e.status === 'RUNNING' && e.progress.chunksDone >= 1 && running());
  try {
    // A job that ends before its first chunk fails here with its events, rather than waiting for good.
    await Promise.race([firstChunk, followed.then((events) => Promise.reject(new Error(`the job ended before its first chunk: ${JSON.stringify(events.at(-1))}`)))]);
    for (let i = 0; i < 5; i++) {
      const answer = await t.gql(
        `query($id: ID!) { serverInfo { version database } datasets(filter: { nameContains: "responsive-gunpoint" }) { totalCount nodes { sampleCount } } job(id: $id) { status progress { chunksDone chunksTotal } } }`,
        { id: job.id },
      );
      assert.equal(answer.serverInfo.database, t.db.kind);
      assert.deepEqual(answer.datasets, { totalCount: 1, nodes: [{ sampleCount: samples.length }] });
      assert.equal(answer.job.status, 'RUNNING', 'answered while the job runs');
      assert.ok(answer.job.progress.chunksDone < total, 'with chunks still to do');
    }
    const { cancelJob } = await t.gql(`mutation($id: ID!) { cancelJob(id: $id) { ${JOB_FIELDS} } }`, { id: job.id });
    assert.equal(cancelJob.status, 'CANCELLED');
    const events: JobState[] = await followed;
    assert.equal(events.at(-1)!.status, 'CANCELLED');
    assert.ok(events.at(-1)!.progress.chunksDone < total);
  } finally {
    await client.dispose();
  }

  // Nothing of a cancelled job commits afterwards, and the server works on.
  const { job: later } = await t.gql(`query($id: ID!) { job(id: $id) { ${JOB_FIELDS} } }`, { id: job.id });
  const counted = await t.gql(`query($id: ID!) { checkpoint(id: $id) { metrics(first: 0) { totalCount } } }`, { id: cnn.checkpoints[0]!.id });
  assert.equal(counted.checkpoint.metrics.totalCount, later.progress.samplesDone, 'the values stored are those of the chunks it committed');
});
