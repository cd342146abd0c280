import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cleanupStack } from '../helpers/cleanup.js';
import { runCli } from '../helpers/cli.js';
import { createTestDatabase } from '../helpers/database.js';
import { startTestServer } from '../helpers/server.js';
import { importUcr, SMALL_CNN, wsClient, type Gql } from '../jobs/helpers.js';
import { assertSummary, bruteForceSummary, readRun, SUMMARY_FIELDS, type StoredCheckpoint } from './helpers.js';

/**
 * `npx tangent train` on GunPoint (train split, 50 samples) with a small cnn1d, on the database the
 * way a user runs it (a child process; the embedded database admits one process at a time), then
 * the run read back over GraphQL; the same training through `trainRun` on a server, followed over
 * `runUpdated`, gives the same weights bit for bit; a fine-tune from its last checkpoint, cancelled.
 */
const TERMS = ['LOSS', 'CORRECT', 'LOGITS', 'PROBS', 'A_NORM', 'H_TRACE', 'H_MIN_EIG', 'G_NORM'];
/** 4 epochs of 4 steps (50 samples, batches of 16); analysis at epochs 0, 2, 4; the tracked 4 samples every 3 steps. */
const SPEC = { epochs: 4, batchSize: 16, seed: 3, learningRate: 0.01, analyzeEvery: 2, trackEverySteps: 3, trackSamples: 4 };
const ANALYSIS_STEPS = [0, 8, 16];
const STEPS = [0, 3, 6, 8, 9, 12, 15, 16];

/** `tangent train …` run to its end (killed, failing the test, if it has not ended in 3 minutes). */
function cli(args: string[], dbEnv: Record<string, string>) {
  return runCli(['train', ...args], { env: { ...dbEnv, LOG_LEVEL: 'warn' }, timeoutMs: 180_000 });
}

/** What the stored rows of a Tangent-trained run must look like. */
function checkRows(checkpoints: StoredCheckpoint[], trained: number, tracked: string[]) {
  assert.deepEqual(
    checkpoints.map((c) => c.step),
    STEPS,
  );
  for (const c of checkpoints) {
    assert.equal(c.epoch, c.step / 4, `epoch of step ${c.step}`);
    assert.equal(c.learningRate, SPEC.learningRate);
    const analysis = ANALYSIS_STEPS.includes(c.step);
    assert.equal(c.metrics.length, analysis ? trained : tracked.length, `rows at step ${c.step}`);
    if (!analysis) assert.deepEqual(c.metrics.map((m) => m.sample.id).sort(), [...tracked].sort(), `tracked rows at step ${c.step}`);
    for (const m of c.metrics) {
      assert.equal(m.sample.split, 'train');
      assert.equal(m.probs!.length, 2);
      assert.ok(Math.abs(m.probs!.reduce((a, b) => a + b, 0) - 1) < 1e-6);
      assert.deepEqual(m.provenance.map((p) => p.term), TERMS);
      for (const p of m.provenance) {
        assert.equal(p.producer.kind, 'SERVER');
        assert.ok(p.producer.backend && /^tangent .*; tfjs/.test(p.producer.version ?? ''), JSON.stringify(p.producer));
      }
    }
  }
}

const RUN = `query($id: ID!) { run(id: $id) { status checkpointCount training { backend attempts error sampleCount trackedSamples { id }
  progress { epochsDone epochs stepsDone steps pointsDone points fraction } } dynamicsSummary { ${SUMMARY_FIELDS} } } }`;

async function createModel(t: Gql, length: number) {
  const { createModel } = await t.gql(`mutation($input: CreateModelInput!) { createModel(input: $input) { id } }`, {
    input: { name: `small-cnn-${process.pid}`, format: 'BUILTIN', architecture: 'cnn1d', config: { ...SMALL_CNN, dropout: 0.2 }, inputLength: length, numClasses: 2 },
  });
  return createModel.id as string;
}

test('tangent train on GunPoint, end to end on the database; trainRun gives the same weights; a fine-tune cancelled mid-way', { timeout: 240_000 }, async (ctx) => {
  const defer = cleanupStack(ctx);
  const testDb = defer(await createTestDatabase(), (d) => d.destroy());
  const setup = defer(await startTestServer({ testDb, env: { TANGENT_WORKER: 'off' } }), (s) => s.stop());
  const { dataset } = await importUcr(setup, 'GunPoint');
  const modelId = await createModel(setup, dataset.length);
  await setup.stop(); // the embedded database takes one process at a time

  const dbEnv: Record<string, string> = testDb.config.kind === 'postgres' ? { DATABASE_URL: testDb.config.url } : { TANGENT_DATA_DIR: testDb.config.dataDir };
  const args = ['--dataset', dataset.id, '--model', modelId, '--optimizer', 'adamw', '--learning-rate', String(SPEC.learningRate), '--epochs', String(SPEC.epochs)];
  args.push('--batch-size', '16', '--seed', String(SPEC.seed), '--analyze-every', '2', '--track-every-steps', '3', '--track-samples', '4', '--json');
  const run = await cli(args, dbEnv);
  assert.equal(run.code, 0, run.stderr);
  const printed = JSON.parse(run.stdout);
  assert.equal(printed.status, 'COMPLETED');
  assert.equal(printed.checkpoints, STEPS.length);
  // Without a terminal the progress is a line per change it sees.
  assert.match(run.stderr, /^run \d+ (PENDING|RUNNING)/);
  assert.match(run.stderr, /\nrun \d+ COMPLETED: epoch 4\/4, step 16\/16, 8\/8 checkpoints, loss \d\.\d{4}, accuracy \d\.\d{3}\n$/);

  const t = defer(await startTestServer({ testDb, env: { TANGENT_WORKER: 'on' } }), (s) => s.stop());
  const { run: stored } = await t.gql(RUN, { id: printed.runId });
  assert.equal(stored.status, 'COMPLETED');
  assert.equal(stored.checkpointCount, STEPS.length);
  assert.deepEqual(stored.training.progress, { epochsDone: 4, epochs: 4, stepsDone: 16, steps: 16, pointsDone: 8, points: 8, fraction: 1 });
  assert.equal(stored.training.attempts, 1);
  assert.equal(stored.training.error, null);
  assert.equal(stored.training.sampleCount, 50);
  const tracked = stored.training.trackedSamples.map((s: { id: string }) => s.id);
  assert.equal(tracked.length, 4);
  const checkpoints = await readRun(t, printed.runId);
  checkRows(checkpoints, 50, tracked);
  // The summary the command printed is the one the API gives, and both are what the rows say.
  const { epoch: _epoch, ...finalPrinted } = printed.summary.finalCheckpoint;
  assert.deepEqual({ ...printed.summary, finalCheckpoint: finalPrinted }, stored.dynamicsSummary);
  assertSummary(stored.dynamicsSummary, bruteForceSummary(checkpoints));
  assert.equal(stored.dynamicsSummary.analysisPoints, STEPS.length);
  assert.equal(stored.dynamicsSummary.samplesAnalysed, 50);
  assert.equal(stored.dynamicsSummary.probabilityPathsTracked, 4);
  assert.equal(stored.dynamicsSummary.hPsdRatio, 1);
  assert.equal(stored.dynamicsSummary.finalTrainingSamples, 50);
  assert.equal(stored.dynamicsSummary.finalCheckpoint.step, 16);

  // The same training through the mutation on a server (trained by its worker), followed over runUpdated.
  const input = { modelId, datasetId: dataset.id, optimizer: 'ADAMW', ...SPEC };
  const client = defer(wsClient(t.url), (c) => c.dispose());
  const { trainRun } = await t.gql(`mutation($input: TrainRunInput!) { trainRun(input: $input) { id } }`, { input });
  const events = await new Promise<{ status: string; training: { progress: { epochsDone: number; pointsDone: number } } }[]>((resolve, reject) => {
    const seen: any[] = [];
    const stop = client.subscribe<{ runUpdated: any }>(
      { query: `subscription($id: ID!) { runUpdated(id: $id) { status training { progress { epochsDone pointsDone } } } }`, variables: { id: trainRun.id } },
      {
        next: ({ data, errors }) => {
          if (errors?.length) return reject(new Error(JSON.stringify(errors)));
          seen.push(data!.runUpdated);
          if (data!.runUpdated.status !== 'PENDING' && data!.runUpdated.status !== 'RUNNING') {
            stop();
            resolve(seen);
          }
        },
        error: reject,
        complete: () => resolve(seen),
      },
    );
  });
  await client.dispose();
  assert.equal(events.at(-1)!.status, 'COMPLETED');
  for (const key of ['epochsDone', 'pointsDone'] as const) {
    const seen = events.map((e) => e.training.progress[key]);
    assert.deepEqual(seen, [...seen].sort((a, b) => a - b), `${key} only moves forward`);
  }
  assert.ok(events.some((e) => e.status === 'RUNNING'), 'the run was seen running');
  assert.deepEqual(events.at(-1)!.training.progress, { epochsDone: 4, pointsDone: 8 });
  const viaServer = await readRun(t, trainRun.id);
  assert.deepEqual(
    viaServer.map((c) => [c.step, c.weightSha256]),
    checkpoints.map((c) => [c.step, c.weightSha256]),
    'the same seed gives the same weights, in the CLI and in the server',
  );
  assert.deepEqual(
    viaServer.map((c) => c.metrics.map((m) => m.loss)),
    checkpoints.map((c) => c.metrics.map((m) => m.loss)),
  );

  // A fine-tune from the last checkpoint on a seeded half of the split, cancelled after its first epoch.
  const last = checkpoints.at(-1)!;
  const { trainRun: tune } = await t.gql(`mutation($input: TrainRunInput!) { trainRun(input: $input) { id } }`, {
    input: { modelId, datasetId: dataset.id, fromCheckpointId: last.id, optimizer: 'SGD', learningRate: 0.01, epochs: 100000, trainFraction: 0.5, analyzeEvery: 50000 },
  });
  for (;;) {
    const { run: r } = await t.gql(RUN, { id: tune.id });
    if (r.training.progress.epochsDone >= 1) break;
    assert.equal(r.status === 'PENDING' || r.status === 'RUNNING', true, JSON.stringify(r));
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await t.gql(`mutation($id: ID!) { updateRun(id: $id, input: { status: CANCELLED }) { id } }`, { id: tune.id });
  let cancelled;
  for (;;) {
    const { run: r } = await t.gql(`query($id: ID!) { run(id: $id) { status training { finishedAt sampleCount progress { epochsDone } } } }`, { id: tune.id });
    if (r.training.finishedAt) {
      cancelled = r;
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.equal(cancelled.status, 'CANCELLED');
  assert.equal(cancelled.training.sampleCount, 25);
  assert.ok(cancelled.training.progress.epochsDone < 100000);
  // It started from the stored weights: its step-0 checkpoint is that checkpoint, bit for bit; what it stored stays.
  const tuned = await readRun(t, tune.id);
  assert.equal(tuned[0]!.step, 0);
  assert.equal(tuned[0]!.weightSha256, last.weightSha256);
  assert.equal(tuned[0]!.metrics.length, 25);
});
