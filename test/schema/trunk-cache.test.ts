import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { cnn1d, initBackend, mantis, serializeModel, type MantisConfig } from '../../src/compute/index.js';
import { layerHashesOf } from '../../src/modules/checkpoints/service.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { importUcr, pollJob, SMALL_CNN } from '../jobs/helpers.js';

/**
 * The frozen-trunk cache end to end over HTTP. Two servers on databases of their own hold the same
 * model and checkpoints: one with the cache (the default), one with TANGENT_TRUNK_CACHE_MB=0. Over the
 * head subset, every term (logits, π, loss, A, H, G norms, kNorm, kTrace, kCross, firstOrder's A, K,
 * G) is the same number on both, bit for bit; a checkpoint that changed only its head is served from
 * the cache, one whose trunk differs in one weight is not; the cache outlives a restart, is bounded,
 * counts its hits in serverInfo and in a job's progress, and purgeTrunkCache empties it.
 */
const TINY: Partial<MantisConfig> = { patches: 5, dim: 8, depth: 1, heads: 2, headDim: 4, mlpDim: 12, scalarDim: 4, scalarScales: [0.01, 1, 100], dropout: 0, seed: 5 };

type Net = { modelId: string; runId: string; checkpoints: string[]; specs: { name: string; shape: number[]; dtype: string }[]; weights: Float32Array[] };

/**
 * A model and a run with three checkpoints: the seeded weights (0), the same with the head changed
 * (1: what head fine-tuning writes), and 1 with one trunk weight changed by one ulp (2).
 */
async function storeNet(t: TestServer, ds: { id: string; length: number; channels: number; classNames: string[] }, arch: 'mantis' | 'cnn1d'): Promise<Net> {
  const suffix = Math.random().toString(36).slice(2, 8);
  const shape = { length: ds.length, channels: ds.channels, classes: ds.classNames.length };
  const config = arch === 'mantis' ? TINY : SMALL_CNN;
  const model = await t.gql(`mutation($input: CreateModelInput!) { createModel(input: $input) { id } }`, {
    input: { name: `${arch}-${suffix}`, format: 'BUILTIN', architecture: arch, config, inputLength: ds.length, channels: ds.channels, numClasses: ds.classNames.length },
  });
  const run = await t.gql(`mutation($input: CreateRunInput!) { createRun(input: $input) { id } }`, {
    input: { name: `run-${suffix}`, modelId: model.createModel.id, datasetId: ds.id, config: { learningRate: 0.01 } },
  });
  await initBackend('auto', () => undefined);
  const stored = await serializeModel(arch === 'mantis' ? mantis({ ...TINY, ...shape }) : cnn1d({ ...SMALL_CNN, ...shape }));
  const specs = stored.weightSpecs as Net['specs'];
  const w0 = new Float32Array(stored.weightData.slice(0));
  const w1 = w0.slice();
  const w2 = w0.slice();
  let offset = 0;
  const headLayers = arch === 'mantis' ? ['head_norm', 'head'] : [specs.at(-1)!.name.split('/')[0]!];
  for (const spec of specs) {
    const size = spec.shape.reduce((a, b) => a * b, 1);
    const layer = spec.name.slice(0, spec.name.lastIndexOf('/'));
    if (headLayers.includes(layer) && !spec.name.includes('moving')) {
      for (let i = offset; i < offset + size; i++) w1[i] = w2[i] = w0[i]! * 1.1 + 0.01;
    }
    offset += size;
  }
  // One weight of the first layer, one ulp away: a trunk that differs anywhere is another trunk.
  const bits = new Uint32Array(w2.buffer);
  bits[0] = bits[0]! + 1;
  const checkpoints: string[] = [];
  for (const [k, w] of [w0, w1, w2].entries()) {
    const res = await t.gql(`mutation($input: CreateCheckpointInput!) { createCheckpoint(input: $input) { id } }`, {
      input: { runId: run.createRun.id, step: k * 10, learningRate: 0.01, weightSpecs: specs, weightData: Buffer.from(w.buffer).toString('base64') },
    });
    checkpoints.push(res.createCheckpoint.id);
  }
  return { modelId: model.createModel.id, runId: run.createRun.id, checkpoints, specs, weights: [w0, w1, w2] };
}

const TERMS = ['LOSS', 'CORRECT', 'LOGITS', 'PROBS', 'A_NORM', 'H_TRACE', 'H_MIN_EIG', 'G_NORM', 'K_NORM', 'K_TRACE'];
const SAMPLE_TERMS = /* GraphQL */ `
  query($c: ID!, $ids: [ID!]!, $terms: [Term!]!, $subset: String) {
    checkpoint(id: $c) { sampleTerms(sampleIds: $ids, terms: $terms, subset: $subset) { sample { id } loss correct logits probs aNorm hTrace hMinEig gNorm kNorm kTrace } }
  }
`;
const FIRST_ORDER = /* GraphQL */ `
  query($c: ID!, $o: ID!, $u: ID!) { checkpoint(id: $c) { firstOrder(observedId: $o, updatedId: $u, subset: "head") { A K G logProbs predictedDeltaLogProbs } } }
`;
const STATS = `{ serverInfo { compute { calls trunkCache { hits misses entries bytes capacityBytes } } } }`;

interface Side {
  t: TestServer;
  ds: Awaited<ReturnType<typeof importUcr>>;
  mantis: Net;
  cnn: Net;
}

let on: Side;
let off: Side;

async function side(env: Record<string, string>): Promise<Side> {
  const t = await startTestServer({ env: { TANGENT_INLINE_MAX_SAMPLES: '40', TANGENT_CHUNK_SIZE: '16', TANGENT_QUEUE_POLL_SECONDS: '0.5', TANGENT_COMPUTE_THREADS: '2', ...env } });
  const ds = await importUcr(t, 'GunPoint');
  return { t, ds, mantis: await storeNet(t, ds.dataset, 'mantis'), cnn: await storeNet(t, ds.dataset, 'cnn1d') };
}

before(async () => {
  on = await side({});
  off = await side({ TANGENT_TRUNK_CACHE_MB: '0' });
});
after(async () => {
  await on?.t.close();
  await off?.t.close();
});

/** The same samples on both servers (each imported the same file, so by position). */
const ids = (s: Side, from: number, to: number) => s.ds.samples.slice(from, to).map((x) => x.id);

async function terms(s: Side, net: Net, k: number, from: number, to: number) {
  const rows = (await s.t.gql(SAMPLE_TERMS, { c: net.checkpoints[k], ids: ids(s, from, to), terms: TERMS, subset: 'head' })).checkpoint.sampleTerms as any[];
  return rows.map(({ sample: _s, ...values }) => values);
}

async function stats(s: Side) {
  return (await s.t.gql(STATS)).serverInfo.compute.trunkCache;
}

describe('frozen-trunk cache', () => {
  for (const arch of ['mantis', 'cnn'] as const) {
    test(`${arch}: the same bits with and without the cache over the head, across checkpoints sharing the trunk; a changed trunk misses`, async () => {
      const before0 = await stats(on);
      const a0 = await terms(on, on[arch], 0, 0, 10);
      const b0 = await terms(off, off[arch], 0, 0, 10);
      assert.deepEqual(a0, b0, 'checkpoint 0: the cache computes the trunk (misses) and the same terms');
      const s0 = await stats(on);
      assert.equal(s0.misses - before0.misses, 10);
      assert.equal(s0.hits - before0.hits, 0);

      // Checkpoint 1 changed only its head: every sample's trunk comes from the cache; 5 more samples are new.
      const a1 = await terms(on, on[arch], 1, 0, 15);
      const b1 = await terms(off, off[arch], 1, 0, 15);
      assert.deepEqual(a1, b1, 'checkpoint 1 from cached trunk features: the same numbers');
      assert.notDeepEqual(a1.slice(0, 10), a0, 'the head changed, so the terms did');
      const s1 = await stats(on);
      assert.equal(s1.hits - s0.hits, 10, 'the ten samples of checkpoint 0 are served from the cache');
      assert.equal(s1.misses - s0.misses, 5);

      // Checkpoint 2: one trunk weight one ulp away: another trunk, never served from checkpoint 1's rows.
      const a2 = await terms(on, on[arch], 2, 0, 10);
      const b2 = await terms(off, off[arch], 2, 0, 10);
      assert.deepEqual(a2, b2);
      const s2 = await stats(on);
      assert.equal(s2.hits - s1.hits, 0, 'a changed trunk misses the cache');
      assert.equal(s2.misses - s1.misses, 10);

      // firstOrder over the head (A, K, G and the prediction) at checkpoint 1, from the cache.
      const [o, u] = [ids(on, 3, 4)[0], ids(on, 7, 8)[0]];
      const [o2, u2] = [ids(off, 3, 4)[0], ids(off, 7, 8)[0]];
      const f = (await on.t.gql(FIRST_ORDER, { c: on[arch].checkpoints[1], o, u })).checkpoint.firstOrder;
      const g = (await off.t.gql(FIRST_ORDER, { c: off[arch].checkpoints[1], o: o2, u: u2 })).checkpoint.firstOrder;
      assert.deepEqual(f, g, 'firstOrder from cached trunk features: the same numbers');
      assert.equal((await stats(on)).hits - s2.hits, 2);
    });
  }

  test('kCross over the head in a job: the same numbers, the hits in the job progress', async () => {
    const run = async (s: Side) => {
      const { computeTerms: job } = await s.t.gql(`mutation($input: ComputeTermsInput!) { computeTerms(input: $input) { id } }`, {
        input: { checkpointId: s.mantis.checkpoints[1], terms: ['K_NORM'], subset: 'head', target: { split: 'train' }, sampleIds: ids(s, 0, 30) },
      });
      const done = await pollJob(s.t, job.id);
      assert.equal(done.status, 'COMPLETED', done.error ?? '');
      const full = await s.t.gql(`query($id: ID!) { job(id: $id) { progress { samplesComputed samplesFromTrunkCache } } }`, { id: job.id });
      const ranked = await s.t.gql(
        `query($c: ID!) { checkpoint(id: $c) { rankedSamples(first: 30, orderBy: { term: K_CROSS, direction: DESC }, target: { split: "train" }, subset: "head", filter: { sampleIds: ${JSON.stringify(ids(s, 0, 30))} }) { nodes { sampleId kCross } } } }`,
        { c: s.mantis.checkpoints[1] },
      );
      return { progress: full.job.progress, kCross: ranked.checkpoint.rankedSamples.nodes.map((n: any) => n.kCross) };
    };
    const a = await run(on);
    const b = await run(off);
    assert.deepEqual(a.kCross, b.kCross, 'kCross from cached trunk features: the same numbers');
    assert.equal(a.kCross.length, 30);
    assert.equal(a.progress.samplesComputed, 30);
    assert.ok(a.progress.samplesFromTrunkCache >= 15, `the job read the trunk of the 15 samples terms were asked for before (${a.progress.samplesFromTrunkCache})`);
    assert.equal(b.progress.samplesFromTrunkCache, 0, 'without the cache nothing is read from it');
  });

  test('layer hashes are kept at write; a checkpoint stored without them is hashed on first use and still served', async () => {
    const { mantis: net } = on;
    const [row] = await on.t.db.sql.query<{ layer_hashes: Record<string, string> }>('SELECT layer_hashes FROM checkpoint_weights WHERE checkpoint_id = $1', [Number(net.checkpoints[1])]);
    assert.deepEqual(row!.layer_hashes, layerHashesOf(net.specs, new Uint8Array(net.weights[1]!.buffer)));
    assert.ok(Object.keys(row!.layer_hashes).includes('head') && Object.keys(row!.layer_hashes).includes('block0_qkv'));
    // As a checkpoint written before hashes were kept (and layers shared): its bytes inline, no hashes.
    await on.t.db.sql.query('DELETE FROM checkpoint_layer WHERE checkpoint_id = $1', [Number(net.checkpoints[0])]);
    await on.t.db.sql.query('UPDATE checkpoint_weights SET layer_hashes = NULL, data = $2 WHERE checkpoint_id = $1', [
      Number(net.checkpoints[0]),
      Buffer.from(net.weights[0]!.buffer, net.weights[0]!.byteOffset, net.weights[0]!.byteLength),
    ]);
    const s0 = await stats(on);
    // Checkpoint 0 shares its trunk with checkpoint 1, whose rows are in the cache (samples 15–29 by the job).
    const a = await terms(on, net, 0, 15, 20);
    const b = await terms(off, off.mantis, 0, 15, 20);
    assert.deepEqual(a, b);
    assert.equal((await stats(on)).hits - s0.hits, 5);
    const [filled] = await on.t.db.sql.query<{ layer_hashes: Record<string, string> }>('SELECT layer_hashes FROM checkpoint_weights WHERE checkpoint_id = $1', [Number(net.checkpoints[0])]);
    assert.deepEqual(filled!.layer_hashes, layerHashesOf(net.specs, new Uint8Array(net.weights[0]!.buffer)));
  });

  test('the cache survives a restart, is bounded, and purgeTrunkCache empties it', async () => {
    const held = await stats(on);
    assert.ok(held.entries > 0 && held.bytes > 0 && held.bytes <= held.capacityBytes);
    await on.t.stop();
    // A server on the same database, with a bound of 1 KiB (32 rows of this Mantis's 8 floats).
    on.t = await startTestServer({ testDb: on.t.testDb, env: { TANGENT_TRUNK_CACHE_MB: String(1 / 1024), TANGENT_COMPUTE_THREADS: '2' } });
    assert.equal((await stats(on)).hits, 0);
    // Checkpoint 0 at samples 20–24: their trunk rows were written before the restart (by the job at checkpoint 1).
    const a = await terms(on, on.mantis, 0, 20, 25);
    assert.equal((await stats(on)).hits, 5, 'rows written before the restart are read after it');
    assert.deepEqual(a, await terms(off, off.mantis, 0, 20, 25));
    assert.ok((await stats(on)).bytes > 1024, 'nothing was stored yet, so nothing was evicted');
    await terms(on, on.mantis, 2, 30, 40); // ten new rows under checkpoint 2's trunk: eviction runs
    const bounded = await stats(on);
    assert.equal(bounded.capacityBytes, 1024);
    assert.equal(bounded.misses, 10);
    assert.ok(bounded.bytes <= 1024 && bounded.entries >= 10, `held ${bounded.bytes} bytes in ${bounded.entries} rows`);
    // The newest rows are the ones kept: checkpoint 2 again at those samples reads them.
    await on.t.db.sql.query('DELETE FROM sample_subset_metric WHERE checkpoint_id = $1', [Number(on.mantis.checkpoints[2])]);
    await terms(on, on.mantis, 2, 30, 40);
    assert.equal((await stats(on)).hits - bounded.hits, 10);
    const purged = await on.t.gql(`mutation { purgeTrunkCache }`);
    assert.equal(purged.purgeTrunkCache, bounded.entries);
    assert.equal((await stats(on)).entries, 0);
  });
});
