import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { computeTerms, initBackend, loadModel } from '../../src/compute/index.js';
import { codes } from '../helpers/fixtures.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { followJob, importUcr, JOB_FIELDS, storeCnn, wsClient, type JobState } from '../jobs/helpers.js';

/**
 * On-demand terms over HTTP: a UCR set imported, a model and checkpoints stored, terms asked for
 * that nobody recorded. Inline requests compute once and then read; larger sets run as jobs.
 */
let t: TestServer;
let samples: Awaited<ReturnType<typeof importUcr>>['samples'];
let dataset: Awaited<ReturnType<typeof importUcr>>['dataset'];
let cnn: Awaited<ReturnType<typeof storeCnn>>;

const INLINE_MAX = 32;
const CHUNK = 16;
const MODEL_CACHE_BYTES = 2000;

before(async () => {
  t = await startTestServer({
    env: { TANGENT_INLINE_MAX_SAMPLES: String(INLINE_MAX), TANGENT_CHUNK_SIZE: String(CHUNK), TANGENT_QUEUE_POLL_SECONDS: '0.5', TANGENT_CHUNK_RETRY_DELAY_SECONDS: '0', TANGENT_CHUNK_RETRY_LIMIT: '1',
      // Two threads, room for two of these small models (464 weight bytes each, one copy per thread).
      TANGENT_COMPUTE_THREADS: '2',
      TANGENT_MODEL_CACHE_BYTES: String(MODEL_CACHE_BYTES),
    },
  });
  ({ dataset, samples } = await importUcr(t, 'GunPoint'));
  cnn = await storeCnn(t, dataset, { checkpoints: 3 });
});
after(() => t?.close());

const STATS = `{ serverInfo { compute { calls samples modelLoads inlineMaxSamples worker } } }`;
const SAMPLE_TERMS = /* GraphQL */ `
  query($id: ID!, $ids: [ID!]!, $terms: [Term!]!, $waitMs: Int) {
    checkpoint(id: $id) {
      sampleTerms(sampleIds: $ids, terms: $terms, waitMs: $waitMs) {
        sample { id } kNorm kTrace loss gNorm correct logits
        provenance { term producer { kind backend version } }
      }
    }
  }
`;

async function stats() {
  return (await t.gql(STATS)).serverInfo.compute as { calls: number; samples: number; modelLoads: number };
}

/** The engine called directly (in this test's own thread) on the same stored weights. */
async function engineTerms(checkpoint: number, ids: string[]) {
  await initBackend('auto', () => undefined);
  const c = cnn.checkpoints[checkpoint]!;
  const m = await loadModel({ architecture: 'cnn1d', config: cnn.config, weightSpecs: c.weightSpecs, weightData: c.weightData });
  const rows = ids.map((id) => samples.find((s) => s.id === id)!);
  const x = new Float32Array(rows.flatMap((r) => r.series));
  return computeTerms(m, x, rows.map((r) => r.label));
}

function close(actual: number, expected: number, what: string, rel = 1e-4) {
  assert.ok(Math.abs(actual - expected) <= rel * Math.max(1, Math.abs(expected)), `${what}: ${actual} vs ${expected}`);
}

describe('on-demand terms', () => {
  test('kNorm of 20 samples: computed once, equal to the engine, then read from the database', async () => {
    const ids = samples.slice(5, 25).map((s) => s.id);
    const checkpointId = cnn.checkpoints[0]!.id;
    const before = await stats();
    const first = await t.gql(SAMPLE_TERMS, { id: checkpointId, ids, terms: ['K_NORM'] });
    const rows = first.checkpoint.sampleTerms as any[];
    assert.deepEqual(rows.map((r) => r.sample.id), ids);
    const mid = await stats();
    assert.equal(mid.calls - before.calls, 1, 'the 20 missing samples are one batched compute call');
    assert.equal(mid.samples - before.samples, 20);

    const engine = await engineTerms(0, ids);
    rows.forEach((r, i) => {
      close(r.kNorm, engine.kNorm[i]!, `kNorm of sample ${ids[i]}`);
      close(r.kTrace, engine.kTrace[i]!, `kTrace of sample ${ids[i]}`);
      close(r.loss, engine.loss![i]!, `loss of sample ${ids[i]}`);
      assert.equal(r.correct, engine.correct![i] === 1);
      const kNorm = r.provenance.find((p: any) => p.term === 'K_NORM');
      assert.equal(kNorm.producer.kind, 'SERVER');
      assert.match(kNorm.producer.backend, /^(wasm|cpu|tensorflow)$/);
      assert.match(kNorm.producer.version, /^tangent \d/);
    });

    const again = await t.gql(SAMPLE_TERMS, { id: checkpointId, ids, terms: ['K_NORM', 'LOSS', 'G_NORM'] });
    assert.deepEqual(again.checkpoint.sampleTerms, rows, 'the same values, read back');
    const last = await stats();
    assert.equal(last.calls, mid.calls, 'nothing is computed the second time');
    assert.equal(last.samples, mid.samples);
  });

  test('concurrent requests and aliases for the same samples share one computation', async () => {
    const ids = samples.slice(30, 40).map((s) => s.id);
    const checkpointId = cnn.checkpoints[1]!.id;
    const before = await stats();
    const query = /* GraphQL */ `
      query($id: ID!, $a: [ID!]!, $b: [ID!]!) {
        checkpoint(id: $id) { a: sampleTerms(sampleIds: $a, terms: [K_NORM]) { kNorm } b: sampleTerms(sampleIds: $b, terms: [K_TRACE]) { kTrace } }
      }
    `;
    const [one, two] = await Promise.all([
      t.gql(query, { id: checkpointId, a: ids.slice(0, 6), b: ids.slice(4) }),
      t.gql(query, { id: checkpointId, a: ids, b: ids.slice(0, 2) }),
    ]);
    assert.deepEqual(one.checkpoint.a.map((r: any) => r.kNorm), two.checkpoint.a.slice(0, 6).map((r: any) => r.kNorm));
    const after = await stats();
    assert.equal(after.samples - before.samples, 10, 'each of the 10 samples is computed once');
    assert.ok(after.calls - before.calls <= 2, 'one call per request at most (the second joins the first)');
  });

  test('all samples through a job, followed to the end over the jobProgress subscription', async () => {
    const checkpointId = cnn.checkpoints[0]!.id;
    const { computeTerms: job } = await t.gql(`mutation($input: ComputeTermsInput!) { computeTerms(input: $input) { ${JOB_FIELDS} } }`, {
      input: { checkpointId, terms: ['K_NORM'] },
    });
    assert.ok(['QUEUED', 'RUNNING', 'COMPLETED'].includes(job.status));
    assert.equal(job.progress.samplesTotal, samples.length);
    assert.equal(job.progress.chunksTotal, Math.ceil(samples.length / CHUNK));

    const client = wsClient(t.url);
    let events: JobState[];
    try {
      events = await followJob(client, job.id);
    } finally {
      await client.dispose();
    }
    const last = events.at(-1)!;
    assert.equal(last.status, 'COMPLETED');
    assert.deepEqual(last.progress, {
      chunksDone: job.progress.chunksTotal,
      chunksTotal: job.progress.chunksTotal,
      samplesDone: samples.length,
      samplesTotal: samples.length,
      samplesComputed: samples.length - 20, // the first test computed 20 of them inline
      fraction: 1,
    });
    for (let i = 1; i < events.length; i++) assert.ok(events[i]!.progress.chunksDone >= events[i - 1]!.progress.chunksDone, 'progress never goes back');
    assert.ok(events.some((e) => e.status === 'RUNNING' || e.progress.chunksDone < e.progress.chunksTotal) || events.length === 1);

    const stored = await t.gql(`query($id: ID!) { checkpoint(id: $id) { metrics(first: 1000) { totalCount nodes { kNorm provenance { term producer { kind } } } } } }`, { id: checkpointId });
    assert.equal(stored.checkpoint.metrics.totalCount, samples.length);
    assert.ok(stored.checkpoint.metrics.nodes.every((n: any) => typeof n.kNorm === 'number'));

    // Asking for the same work again while nothing is missing: a job with nothing left to compute.
    const engine = await engineTerms(0, samples.slice(100, 104).map((s) => s.id));
    const read = await t.gql(SAMPLE_TERMS, { id: checkpointId, ids: samples.slice(100, 104).map((s) => s.id), terms: ['K_NORM'] });
    read.checkpoint.sampleTerms.forEach((r: any, i: number) => close(r.kNorm, engine.kNorm[i]!, 'job-computed kNorm'));
  });

  test('more missing samples than the inline limit: TERMS_PENDING with the job, or the rows within waitMs', async () => {
    const checkpointId = cnn.checkpoints[2]!.id;
    const ids = samples.slice(0, INLINE_MAX + 8).map((s) => s.id);
    const pending = await t.request(SAMPLE_TERMS, { id: checkpointId, ids, terms: ['K_TRACE'] });
    assert.deepEqual(codes(pending), ['TERMS_PENDING']);
    const jobId = pending.errors![0]!.extensions!.jobId as string;
    assert.match(jobId, /^\d+$/);
    const waited = await t.gql(SAMPLE_TERMS, { id: checkpointId, ids, terms: ['K_TRACE'], waitMs: 120_000 });
    assert.equal(waited.checkpoint.sampleTerms.length, ids.length);
    assert.ok(waited.checkpoint.sampleTerms.every((r: any) => typeof r.kTrace === 'number'));
    const { job } = await t.gql(`query($id: ID!) { job(id: $id) { ${JOB_FIELDS} checkpoint { id } terms } }`, { id: jobId });
    assert.equal(job.status, 'COMPLETED');
    assert.equal(job.checkpoint.id, checkpointId);
    assert.deepEqual(job.terms, ['K_TRACE']);
  });

  test('first-order terms of one pair, with the change observed at the next checkpoint', async () => {
    const [o, u] = [samples[3]!, samples[60]!];
    const res = await t.gql(
      `query($id: ID!, $o: ID!, $u: ID!) { checkpoint(id: $id) { firstOrder(observedId: $o, updatedId: $u) {
         learningRate A K G logProbs predictedDeltaLogits predictedDeltaLogProbs observedDeltaLogProbs nextCheckpoint { id } observed { id } updated { label } } } }`,
      { id: cnn.checkpoints[0]!.id, o: o.id, u: u.id },
    );
    const f = res.checkpoint.firstOrder;
    const V = dataset.classNames.length;
    assert.equal(f.learningRate, 0.01);
    assert.equal(f.nextCheckpoint.id, cnn.checkpoints[1]!.id);
    assert.equal(f.observed.id, o.id);
    assert.equal(f.A.length, V);
    assert.equal(f.K.length, V);
    // −η A K G, recomputed from the returned matrices.
    const pi = f.logProbs.map(Math.exp);
    f.A.forEach((row: number[], i: number) => row.forEach((a, j) => close(a, (i === j ? 1 : 0) - pi[j], `A[${i}][${j}]`)));
    const dz = f.K.map((row: number[]) => -f.learningRate * row.reduce((s, k, j) => s + k * f.G[j], 0));
    dz.forEach((v: number, i: number) => close(f.predictedDeltaLogits[i], v, `Δz[${i}]`));
    const mean = pi.reduce((s: number, p: number, j: number) => s + p * dz[j], 0);
    dz.forEach((v: number, i: number) => close(f.predictedDeltaLogProbs[i], v - mean, `Δlog π[${i}]`));
    close(f.G.reduce((s: number, g: number) => s + g, 0), 0, 'G sums to 0');
    assert.ok(f.G[u.label] < 0, 'G is π − e_y: negative at the label');
    // The observed change: the engine on the next checkpoint's weights.
    await initBackend('auto', () => undefined);
    const next = await loadModel({ architecture: 'cnn1d', config: cnn.config, weightSpecs: cnn.checkpoints[1]!.weightSpecs, weightData: cnn.checkpoints[1]!.weightData });
    const later = await computeTerms(next, new Float32Array(o.series), [o.label]);
    f.observedDeltaLogProbs.forEach((d: number, j: number) => close(d, Math.log(later.probs[j]!) - f.logProbs[j], `observed Δlog π[${j}]`, 1e-3));

    const last = await t.gql(`query($id: ID!, $o: ID!) { checkpoint(id: $id) { firstOrder(observedId: $o, updatedId: $o, learningRate: 0.5) { learningRate nextCheckpoint { id } observedDeltaLogProbs } } }`, {
      id: cnn.checkpoints[2]!.id,
      o: o.id,
    });
    assert.deepEqual(last.checkpoint.firstOrder, { learningRate: 0.5, nextCheckpoint: null, observedDeltaLogProbs: null });
  });

  test('a job whose chunks keep failing ends FAILED with the reason; bad input is refused', async () => {
    const broken = await storeCnn(t, dataset, { architecture: 'no-such-net' });
    const inline = await t.request(SAMPLE_TERMS, { id: broken.checkpoints[0]!.id, ids: [samples[0]!.id], terms: ['K_NORM'] });
    assert.deepEqual(codes(inline), ['MODEL_UNUSABLE']);
    assert.match(inline.errors![0]!.message, /^The model of checkpoint \d+ cannot be run: Tangent has no built-in architecture 'no-such-net'/);

    const { computeTerms: job } = await t.gql(`mutation($input: ComputeTermsInput!) { computeTerms(input: $input) { id } }`, {
      input: { checkpointId: broken.checkpoints[0]!.id, sampleIds: samples.slice(0, 3).map((s) => s.id) },
    });
    const client = wsClient(t.url);
    try {
      const events = await followJob(client, job.id);
      const last = events.at(-1)!;
      assert.equal(last.status, 'FAILED');
      assert.equal(last.error, `The model of checkpoint ${broken.checkpoints[0]!.id} cannot be run: Tangent has no built-in architecture 'no-such-net' (known: cnn1d, transformer, mantis)`);
      assert.doesNotMatch(last.error!, /at .*\.ts:\d+/, 'no stack');
    } finally {
      await client.dispose();
    }

    const foreign = await t.request(`mutation($input: ComputeTermsInput!) { computeTerms(input: $input) { id } }`, {
      input: { checkpointId: cnn.checkpoints[0]!.id, sampleIds: ['999999'] },
    });
    assert.deepEqual(codes(foreign), ['BAD_USER_INPUT']);
    const missing = await t.request(`{ job(id: 999999) { id } checkpoint(id: 999999) { id } }`);
    assert.deepEqual(missing.data, { job: null, checkpoint: null });
  });

  test('a burst of requests on one checkpoint loads its model once; loaded models stay within their bytes', async () => {
    const fresh = await storeCnn(t, dataset);
    const before = (await t.gql(`{ serverInfo { compute { modelLoads } backend { name gpu threads } } }`)).serverInfo;
    assert.match(before.backend.name, /^(wasm|cpu|tensorflow)$/);
    assert.equal(before.backend.threads, 2);
    await Promise.all(
      [0, 1, 2, 3].map((k) => t.gql(SAMPLE_TERMS, { id: fresh.checkpoints[0]!.id, ids: samples.slice(k * 5, k * 5 + 5).map((s) => s.id), terms: ['K_NORM'] })),
    );
    const after = (await t.gql(`{ serverInfo { compute { modelLoads cachedModels cachedBytes } } }`)).serverInfo.compute;
    assert.equal(after.modelLoads - before.compute.modelLoads, 1, 'four concurrent requests, one load');
    const { checkpoint } = await t.gql(`query($id: ID!) { checkpoint(id: $id) { weightBytes } }`, { id: fresh.checkpoints[0]!.id });
    assert.equal(checkpoint.weightBytes, 464);
    assert.ok(after.cachedBytes <= MODEL_CACHE_BYTES, `${after.cachedBytes} bytes loaded`);
    assert.equal(after.cachedBytes, after.cachedModels * 464 * 2);
    assert.ok(after.cachedModels >= 1);
  });

  test('cancel and retry', async () => {
    const checkpointId = cnn.checkpoints[1]!.id;
    const { computeTerms: job } = await t.gql(`mutation($input: ComputeTermsInput!) { computeTerms(input: $input) { id status } }`, {
      input: { checkpointId, splits: ['test'] },
    });
    const { cancelJob } = await t.gql(`mutation($id: ID!) { cancelJob(id: $id) { ${JOB_FIELDS} } }`, { id: job.id });
    // Cancelled unless it finished first; either way it is no longer active.
    assert.ok(['CANCELLED', 'COMPLETED'].includes(cancelJob.status));
    const { retryJob } = await t.gql(`mutation($id: ID!) { retryJob(id: $id) { ${JOB_FIELDS} } }`, { id: job.id });
    if (cancelJob.status === 'CANCELLED') assert.equal(retryJob.attempts, 2);
    const client = wsClient(t.url);
    try {
      const events = await followJob(client, job.id);
      assert.equal(events.at(-1)!.status, 'COMPLETED');
      assert.equal(events.at(-1)!.progress.samplesDone, samples.filter((s) => s.split === 'test').length);
    } finally {
      await client.dispose();
    }
  });
});
