import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cleanupStack } from '../helpers/cleanup.js';
import { createTestDatabase } from '../helpers/database.js';
import { startTestServer } from '../helpers/server.js';
import { importUcr, SMALL_CNN } from '../jobs/helpers.js';
import { readRun } from './helpers.js';

/**
 * A training is a durable job: a server stopped mid-training hands it back to the queue, and the next
 * worker (here: the next server on the same database) trains it again from the start under the next
 * attempt. Training is deterministic, so the checkpoints the first attempt stored are found identical
 * and kept (same ids), and the run completes as if nothing had happened.
 */
const env = { TANGENT_WORKER: 'on', TANGENT_TRAIN_RETRY_DELAY_SECONDS: '0', TANGENT_QUEUE_POLL_SECONDS: '0.5' };
const RUN = `query($id: ID!) { run(id: $id) { status training { attempts error progress { pointsDone points epochsDone } } } }`;

test('a training interrupted by a server stop resumes on the next server and keeps what it stored', { timeout: 240_000 }, async (t) => {
  const defer = cleanupStack(t);
  const testDb = defer(await createTestDatabase(), (d) => d.destroy());
  const first = defer(await startTestServer({ testDb, env }), (s) => s.stop());
  const { dataset } = await importUcr(first, 'GunPoint');
  const { createModel } = await first.gql(`mutation($input: CreateModelInput!) { createModel(input: $input) { id } }`, {
    input: { name: 'resume-cnn', format: 'BUILTIN', architecture: 'cnn1d', config: SMALL_CNN, inputLength: dataset.length, numClasses: 2 },
  });
  const { trainRun } = await first.gql(`mutation($input: TrainRunInput!) { trainRun(input: $input) { id } }`, {
    input: { modelId: createModel.id, datasetId: dataset.id, epochs: 200, analyzeEvery: 50, learningRate: 0.005, seed: 11 },
  });
  // Stop the server once the first two points (epochs 0 and 50) are stored.
  let before;
  for (;;) {
    const { run } = await first.gql(RUN, { id: trainRun.id });
    if (run.training.progress.pointsDone >= 2 || (run.status !== 'PENDING' && run.status !== 'RUNNING')) {
      before = run;
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const stored = await readRun(first, trainRun.id);
  await first.stop();
  assert.equal(before.training.progress.points, 5);

  const second = defer(await startTestServer({ testDb, env }), (s) => s.stop());
  let done;
  for (;;) {
    const { run } = await second.gql(RUN, { id: trainRun.id });
    if (run.status !== 'PENDING' && run.status !== 'RUNNING') {
      done = run;
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.equal(done.status, 'COMPLETED', JSON.stringify(done));
  assert.equal(done.training.error, null);
  assert.deepEqual(done.training.progress, { pointsDone: 5, points: 5, epochsDone: 200 });
  const resumed = await readRun(second, trainRun.id);
  assert.deepEqual(
    resumed.map((c) => c.step),
    [0, 50, 100, 150, 200].map((e) => e * 4),
  );
  // What the first attempt stored stays as it was: the same checkpoints (ids), weights and values.
  const kept = resumed.slice(0, stored.length);
  assert.deepEqual(
    kept.map((c) => [c.id, c.weightSha256, c.metrics.map((m) => m.loss)]),
    stored.map((c) => [c.id, c.weightSha256, c.metrics.map((m) => m.loss)]),
  );
  // Unless the first server finished before it was stopped, a second attempt did the rest.
  if (before.status === 'RUNNING' && before.training.progress.pointsDone < 5) assert.equal(done.training.attempts, 2);
});
