import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { computeTerms, crossKernel, initBackend, kCross, loadModel, mantis, serializeModel, type MantisConfig } from '../../src/compute/index.js';
import { codes } from '../helpers/fixtures.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { followJob, importUcr, JOB_FIELDS, storeCnn, wsClient, type Gql } from '../jobs/helpers.js';

/**
 * Kernel terms over a named parameter subset, end to end over HTTP: a tiny Mantis (whose `head`
 * subset is its fine-tuning mode: head_norm + head) on a real UCR set. kNorm over the head computed
 * on demand, in a job, ranked, summarised, selected, exported, and the first-order terms and kCross
 * over it, each against the engine called directly with the same subset.
 */
let t: TestServer;
let samples: Awaited<ReturnType<typeof importUcr>>['samples'];
let dataset: Awaited<ReturnType<typeof importUcr>>['dataset'];
let net: Awaited<ReturnType<typeof storeMantis>>;

const TINY: Partial<MantisConfig> = { patches: 5, dim: 8, depth: 1, heads: 2, headDim: 4, mlpDim: 12, scalarDim: 4, scalarScales: [0.01, 1, 100], dropout: 0, seed: 5 };

/** A BUILTIN Mantis model, a run and checkpoints (seeded weights scaled by 1 + 0.05·k) stored over HTTP. */
async function storeMantis(g: Gql, ds: { id: string; length: number; channels: number; classNames: string[] }, checkpoints = 1) {
  const suffix = Math.random().toString(36).slice(2, 8);
  const config = { ...TINY, length: ds.length, channels: ds.channels, classes: ds.classNames.length };
  const model = await g.gql(`mutation($input: CreateModelInput!) { createModel(input: $input) { id } }`, {
    input: { name: `mantis-${suffix}`, format: 'BUILTIN', architecture: 'mantis', config: TINY, inputLength: ds.length, channels: ds.channels, numClasses: ds.classNames.length },
  });
  const run = await g.gql(`mutation($input: CreateRunInput!) { createRun(input: $input) { id } }`, {
    input: { name: `run-${suffix}`, modelId: model.createModel.id, datasetId: ds.id, config: { learningRate: 0.01 } },
  });
  await initBackend('auto', () => undefined);
  const stored = await serializeModel(mantis(config));
  const base = new Float32Array(stored.weightData.slice(0));
  const out: { id: string; weightSpecs: typeof stored.weightSpecs; weightData: ArrayBuffer }[] = [];
  for (let k = 0; k < checkpoints; k++) {
    const weights = base.map((w) => w * (1 + 0.05 * k));
    const res = await g.gql(`mutation($input: CreateCheckpointInput!) { createCheckpoint(input: $input) { id } }`, {
      input: { runId: run.createRun.id, step: k * 10, learningRate: 0.01, weightSpecs: stored.weightSpecs, weightData: Buffer.from(weights.buffer).toString('base64') },
    });
    out.push({ id: res.createCheckpoint.id, weightSpecs: stored.weightSpecs, weightData: weights.buffer });
  }
  return { modelId: model.createModel.id as string, runId: run.createRun.id as string, config, checkpoints: out };
}

before(async () => {
  t = await startTestServer({
    env: { TANGENT_INLINE_MAX_SAMPLES: '32', TANGENT_CHUNK_SIZE: '64', TANGENT_QUEUE_POLL_SECONDS: '0.5', TANGENT_COMPUTE_THREADS: '2' },
  });
  ({ dataset, samples } = await importUcr(t, 'GunPoint'));
  net = await storeMantis(t, dataset, 3);
});
after(() => t?.close());

/** The engine in this test's own thread, on checkpoint k's stored weights. */
async function engine(k = 0) {
  await initBackend('auto', () => undefined);
  const c = net.checkpoints[k]!;
  return loadModel({ architecture: 'mantis', config: net.config, weightSpecs: c.weightSpecs, weightData: c.weightData });
}

const seriesOf = (ids: readonly string[]) => new Float32Array(ids.flatMap((id) => samples.find((s) => s.id === id)!.series));
const labelsOf = (ids: readonly string[]) => ids.map((id) => samples.find((s) => s.id === id)!.label);

function close(actual: number, expected: number, what: string, rel = 1e-4) {
  assert.ok(Math.abs(actual - expected) <= rel * Math.max(1, Math.abs(expected)), `${what}: ${actual} vs ${expected}`);
}

async function follow(jobId: string) {
  const client = wsClient(t.url);
  try {
    return (await followJob(client, jobId)).at(-1)!;
  } finally {
    await client.dispose();
  }
}

const STATS = `{ serverInfo { compute { calls samples } } }`;
const SAMPLE_TERMS = /* GraphQL */ `
  query($c: ID!, $ids: [ID!]!, $terms: [Term!]!, $subset: String) {
    checkpoint(id: $c) { sampleTerms(sampleIds: $ids, terms: $terms, subset: $subset) { sample { id } kNorm kTrace loss subset provenance { term subset producer { kind } } } }
  }
`;
const RANKED = /* GraphQL */ `
  query($c: ID!, $first: Int, $after: String, $filter: SampleTermFilter, $orderBy: SampleTermOrder, $target: TargetSetInput, $subset: String) {
    checkpoint(id: $c) {
      rankedSamples(first: $first, after: $after, filter: $filter, orderBy: $orderBy, target: $target, subset: $subset) {
        totalCount pageInfo { hasNextPage endCursor } nodes { sampleId score kNorm kTrace kCross loss subset }
      }
    }
  }
`;

describe('kernel terms over a named parameter subset', () => {
  test('Model.parameterSubsets: all, head and adapter_head for Mantis; all and head for a 1D-CNN', async () => {
    const m = await engine();
    const res = await t.gql(`query($id: ID!) { model(id: $id) { parameterSubsets { name parameterCount layers } } }`, { id: net.modelId });
    const V = dataset.classNames.length;
    const dim = TINY.dim!;
    // The head: BatchNorm over the CLS features (γ, β) and Linear(dim → V).
    const head = { parameterCount: 2 * dim + dim * V + V, layers: ['head_norm', 'head'] };
    assert.deepEqual(res.model.parameterSubsets, [
      { name: 'all', parameterCount: m.parameterCount, layers: res.model.parameterSubsets[0].layers },
      { name: 'head', ...head },
      { name: 'adapter_head', ...head }, // no channel adapter configured: the head alone
    ]);
    assert.ok(res.model.parameterSubsets[0].layers.length > 10 && res.model.parameterSubsets[0].layers.includes('head'));
    m.dispose();

    const cnn = await storeCnn(t, dataset);
    const c = await t.gql(`query($id: ID!) { model(id: $id) { parameterSubsets { name parameterCount layers } } }`, { id: cnn.modelId });
    assert.deepEqual(c.model.parameterSubsets.map((s: any) => s.name), ['all', 'head']);
    assert.equal(c.model.parameterSubsets[1].layers.length, 1, "a plain model's head is the layer producing the logits");

    const broken = await storeCnn(t, dataset, { architecture: 'no-such-net' });
    const refused = await t.request(`query($id: ID!) { model(id: $id) { parameterSubsets { name } } }`, { id: broken.modelId });
    assert.deepEqual(codes(refused), ['MODEL_UNUSABLE']);
    assert.match(refused.errors![0]!.message, /^Model \d+ cannot be run: Tangent has no built-in architecture 'no-such-net'/);
  });

  test('kNorm over the head on demand: the engine with subset head, unlike all; stored once, provenance says the subset', async () => {
    const ids = samples.slice(0, 20).map((s) => s.id);
    const c = net.checkpoints[0]!.id;
    const before = (await t.gql(STATS)).serverInfo.compute;
    const head = (await t.gql(SAMPLE_TERMS, { c, ids, terms: ['K_NORM', 'K_TRACE', 'LOSS'], subset: 'head' })).checkpoint.sampleTerms as any[];
    const mid = (await t.gql(STATS)).serverInfo.compute;
    assert.equal(mid.calls - before.calls, 1, 'one batched compute call');

    const m = await engine();
    const x = seriesOf(ids);
    const direct = await computeTerms(m, x, labelsOf(ids), { subset: 'head' });
    const all = await computeTerms(m, x, labelsOf(ids));
    m.dispose();
    head.forEach((r, i) => {
      assert.equal(r.sample.id, ids[i]);
      assert.equal(r.subset, 'head');
      close(r.kNorm, direct.kNorm[i]!, `kNorm over the head of ${ids[i]}`);
      close(r.kTrace, direct.kTrace[i]!, `kTrace over the head of ${ids[i]}`);
      close(r.loss, direct.loss![i]!, `loss of ${ids[i]}`);
      assert.ok(all.kTrace[i]! > direct.kTrace[i]! * 1.01, 'Tr K over all parameters exceeds Tr K over the head');
      const byTerm = Object.fromEntries(r.provenance.map((p: any) => [p.term, p]));
      assert.deepEqual(byTerm.K_NORM, { term: 'K_NORM', subset: 'head', producer: { kind: 'SERVER' } });
      assert.deepEqual(byTerm.LOSS, { term: 'LOSS', subset: null, producer: { kind: 'SERVER' } });
    });

    // Read back: nothing computed again; over 'all' the values are the engine's over all parameters.
    const again = (await t.gql(SAMPLE_TERMS, { c, ids, terms: ['K_NORM', 'K_TRACE', 'LOSS'], subset: 'head' })).checkpoint.sampleTerms;
    assert.deepEqual(again, head);
    assert.equal((await t.gql(STATS)).serverInfo.compute.calls, mid.calls, 'nothing is computed the second time');
    const overAll = (await t.gql(SAMPLE_TERMS, { c, ids, terms: ['K_NORM'] })).checkpoint.sampleTerms as any[];
    overAll.forEach((r, i) => {
      assert.equal(r.subset, 'all');
      close(r.kNorm, all.kNorm[i]!, `kNorm over all of ${ids[i]}`);
      assert.notEqual(r.kNorm, head[i].kNorm);
      assert.equal(r.provenance.find((p: any) => p.term === 'K_NORM').subset, 'all');
    });
  });

  test('a job over the head for a whole checkpoint; the ranking by head kNorm is the brute-force sort, page after page', async () => {
    // computeTerms over the head: every per-sample term, K over the head only.
    const c1 = net.checkpoints[1]!.id;
    const { computeTerms: job } = await t.gql(`mutation($input: ComputeTermsInput!) { computeTerms(input: $input) { ${JOB_FIELDS} subset terms } }`, {
      input: { checkpointId: c1, subset: 'head' },
    });
    assert.equal(job.subset, 'head');
    assert.equal(job.terms.length, 10);
    assert.equal(job.progress.samplesTotal, samples.length);
    const finished = await follow(job.id);
    assert.equal(finished.status, 'COMPLETED');
    assert.equal(finished.progress.samplesComputed, samples.length);
    const some = samples.slice(100, 104).map((s) => s.id);
    const before = (await t.gql(STATS)).serverInfo.compute;
    const read = (await t.gql(SAMPLE_TERMS, { c: c1, ids: some, terms: ['K_NORM', 'K_TRACE', 'LOSS'], subset: 'head' })).checkpoint.sampleTerms as any[];
    assert.equal((await t.gql(STATS)).serverInfo.compute.calls, before.calls, 'the job stored them all');
    const m1 = await engine(1);
    const direct1 = await computeTerms(m1, seriesOf(some), labelsOf(some), { subset: 'head' });
    m1.dispose();
    read.forEach((r, i) => close(r.kNorm, direct1.kNorm[i]!, `job-computed head kNorm of ${some[i]}`));
    const stored = await t.gql(`query($c: ID!) { checkpoint(id: $c) { metrics(first: 1000) { totalCount nodes { kNorm loss } } } }`, { c: c1 });
    assert.equal(stored.checkpoint.metrics.totalCount, samples.length);
    assert.ok(stored.checkpoint.metrics.nodes.every((n: any) => n.kNorm === null && typeof n.loss === 'number'), 'K over all parameters was not computed');

    // A ranking that lacks head kNorm for the whole dataset starts the job itself.
    const c = net.checkpoints[0]!.id;
    const pending = await t.request(RANKED, { c, first: 10, orderBy: { term: 'K_NORM', direction: 'DESC' }, subset: 'head' });
    assert.deepEqual(codes(pending), ['TERMS_PENDING'], 'the whole dataset lacks kNorm over the head');
    const jobId = pending.errors![0]!.extensions!.jobId as string;
    const started = (await t.gql(`query($id: ID!) { job(id: $id) { subset terms } }`, { id: jobId })).job;
    assert.deepEqual(started, { subset: 'head', terms: ['K_NORM'] });
    const done = await follow(jobId);
    assert.equal(done.status, 'COMPLETED');
    assert.equal(done.progress.samplesComputed, samples.length - 20, 'the 20 computed inline before are not computed again');

    const m = await engine();
    const ids = samples.map((s) => s.id);
    const direct = await computeTerms(m, seriesOf(ids), labelsOf(ids), { subset: 'head' });
    m.dispose();
    const expected = ids.map((id, i) => ({ id, kNorm: direct.kNorm[i]! })).sort((a, b) => b.kNorm - a.kNorm || Number(b.id) - Number(a.id));
    const nodes: any[] = [];
    let after: string | null = null;
    let total = 0;
    do {
      const page: any = (await t.gql(RANKED, { c, first: 64, after, orderBy: { term: 'K_NORM', direction: 'DESC' }, subset: 'head' })).checkpoint.rankedSamples;
      nodes.push(...page.nodes);
      total = page.totalCount;
      after = page.pageInfo.hasNextPage ? page.pageInfo.endCursor : null;
    } while (after);
    assert.equal(total, samples.length);
    assert.deepEqual(nodes.map((n) => n.sampleId), expected.map((e) => e.id));
    nodes.forEach((n, i) => {
      assert.equal(n.subset, 'head');
      assert.equal(n.score, n.kNorm);
      close(n.kNorm, expected[i]!.kNorm, `head kNorm of ${n.sampleId}`);
    });

    // A cursor of the head ranking is refused by the same query over all parameters.
    const first = (await t.gql(RANKED, { c, first: 5, subset: 'head' })).checkpoint.rankedSamples;
    const crossed = await t.request(RANKED, { c, first: 5, after: first.pageInfo.endCursor });
    assert.deepEqual(codes(crossed), ['BAD_USER_INPUT']);

    const stats = await t.gql(`query($c: ID!) { checkpoint(id: $c) { termStats(term: K_NORM, subset: "head") { subset count max min } } }`, { c });
    assert.equal(stats.checkpoint.termStats.subset, 'head');
    assert.equal(stats.checkpoint.termStats.count, samples.length);
    close(stats.checkpoint.termStats.max, expected[0]!.kNorm, 'max head kNorm');
    close(stats.checkpoint.termStats.min, expected.at(-1)!.kNorm, 'min head kNorm');
  });

  test('a selection by head kNorm records the subset in its strategy and provenance, reproduces, and exports it', async () => {
    const c = net.checkpoints[0]!.id;
    const { createSelection: sel } = await t.gql(
      `mutation($input: CreateSelectionInput!) { createSelection(input: $input) {
         id subset strategy sampleCount verify { reproduces problem }
         provenance { checkpointId term subset producers { producer { kind } count } }
         samples(first: 100) { nodes { sampleId score rank } }
         csv: exportUrl(format: CSV)
       } }`,
      { input: { name: `head-top-${Math.random().toString(36).slice(2, 8)}`, strategy: { checkpointIds: [c], term: 'K_NORM', subset: 'head', method: 'TOP_K', k: 12 } } },
    );
    assert.equal(sel.subset, 'head');
    assert.equal((sel.strategy as { subset: string }).subset, 'head');
    assert.deepEqual(sel.provenance, [{ checkpointId: c, term: 'K_NORM', subset: 'head', producers: [{ producer: { kind: 'SERVER' }, count: samples.length }] }]);
    assert.deepEqual(sel.verify, { reproduces: true, problem: null });
    const top = (await t.gql(RANKED, { c, first: 12, subset: 'head' })).checkpoint.rankedSamples.nodes as any[];
    assert.deepEqual(sel.samples.nodes.map((n: any) => n.sampleId), top.map((n) => n.sampleId));
    sel.samples.nodes.forEach((n: any, i: number) => assert.equal(Math.fround(n.score), Math.fround(top[i].kNorm)));

    const lines = (await (await fetch(new URL(sel.csv, t.url))).text()).trimEnd().split('\n');
    const header = lines[0]!.split(',');
    assert.equal(header.at(-1), 'subset');
    const row = lines[1]!.split(',');
    assert.equal(row[header.indexOf('subset')], 'head');
    assert.equal(Math.fround(Number(row[header.indexOf('kNorm')])), Math.fround(top[0].kNorm), 'the exported kNorm is over the head');
    assert.equal(Number(row[header.indexOf('sampleId')]), Number(top[0].sampleId));

    // A query's export over the head says so, and carries kNorm over the head.
    const { checkpoint } = await t.gql(`query($c: ID!) { checkpoint(id: $c) { exportUrl(subset: "head") } }`, { c });
    const first = JSON.parse((await (await fetch(new URL(checkpoint.exportUrl, t.url))).text()).split('\n')[0]!);
    assert.equal(first.subset, 'head');
    assert.equal(first.sampleId, Number(top[0].sampleId));
    assert.equal(Math.fround(first.kNorm), Math.fround(top[0].kNorm));

    const preview = await t.gql(`query($s: SelectionStrategyInput!) { previewSelection(strategy: $s) { count maxScore } }`, {
      s: { checkpointIds: [c], term: 'K_NORM', subset: 'head', method: 'TOP_K', k: 12 },
    });
    assert.equal(preview.previewSelection.count, 12);
    assert.equal(Math.fround(preview.previewSelection.maxScore), Math.fround(top[0].kNorm));
  });

  test('kCross and the first-order terms over the head equal the engine with subset head', async () => {
    const c = net.checkpoints[0]!.id;
    const tests = samples.filter((s) => s.split === 'test').slice(0, 8).map((s) => s.id);
    const train = samples.filter((s) => s.split === 'train').map((s) => s.id);
    const res = await t.gql(RANKED, { c, first: 100, filter: { sampleIds: tests }, orderBy: { term: 'K_CROSS', direction: 'DESC' }, target: { split: 'train' }, subset: 'head' });
    const nodes = res.checkpoint.rankedSamples.nodes as any[];
    assert.equal(nodes.length, tests.length);
    const m = await engine();
    const direct = await kCross(m, seriesOf(tests), seriesOf(train), { subset: 'head' });
    const overAll = await kCross(m, seriesOf(tests), seriesOf(train));
    const byId = new Map(tests.map((id, i) => [id, i]));
    for (const n of nodes) {
      close(n.kCross, direct.kCross[byId.get(n.sampleId)!]!, `head kCross of ${n.sampleId}`);
      assert.ok(Math.abs(n.kCross - overAll.kCross[byId.get(n.sampleId)!]!) > 1e-3 * n.kCross, 'kCross over the head is not kCross over all');
      assert.equal(n.subset, 'head');
    }

    // Values a client measured over the head, against another target set, are recorded as such.
    const recorded = tests.slice(0, 2).map((sampleId, i) => ({ sampleId, kCross: 0.5 + i }));
    await t.gql(`mutation($c: ID!, $v: [KCrossInput!]!) { recordKCross(checkpointId: $c, target: { split: "test" }, values: $v, subset: "head") { written } }`, { c, v: recorded });
    const read = await t.gql(RANKED, { c, first: 10, filter: { sampleIds: tests.slice(0, 2) }, orderBy: { term: 'K_CROSS', direction: 'ASC' }, target: { split: 'test' }, subset: 'head' });
    assert.deepEqual(read.checkpoint.rankedSamples.nodes.map((n: any) => [n.sampleId, n.kCross]), recorded.map((r) => [r.sampleId, r.kCross]));
    const notOverAll = await t.request(RANKED, { c, first: 10, filter: { sampleIds: tests.slice(0, 2) }, orderBy: { term: 'K_CROSS' }, target: { split: 'test' } });
    assert.ok(codes(notOverAll).length === 0 && notOverAll.data!.checkpoint.rankedSamples.nodes.every((n: any) => n.kCross !== 0.5), 'over all parameters they are other values');

    const [o, u] = [samples[3]!, samples[60]!];
    const f = (
      await t.gql(`query($c: ID!, $o: ID!, $u: ID!) { checkpoint(id: $c) { firstOrder(observedId: $o, updatedId: $u, subset: "head") { subset K predictedDeltaLogits G learningRate } } }`, {
        c,
        o: o.id,
        u: u.id,
      })
    ).checkpoint.firstOrder;
    assert.equal(f.subset, 'head');
    const cross = await crossKernel(m, new Float32Array(o.series), new Float32Array(u.series), { subset: 'head', returnK: true });
    m.dispose();
    const V = dataset.classNames.length;
    f.K.forEach((row: number[], i: number) => row.forEach((k, j) => close(k, cross.K![i * V + j]!, `K over the head [${i}][${j}]`)));
    f.K.forEach((row: number[], i: number) => close(f.predictedDeltaLogits[i], -f.learningRate * row.reduce((s, k, j) => s + k * f.G[j], 0), `Δz[${i}]`));
  });

  test('an unknown subset is BAD_USER_INPUT naming the valid ones, wherever it is asked for', async () => {
    const c = net.checkpoints[2]!.id;
    const ids = samples.slice(0, 3).map((s) => s.id);
    const refusals = [
      await t.request(SAMPLE_TERMS, { c, ids, terms: ['K_NORM'], subset: 'encoder' }),
      await t.request(RANKED, { c, first: 5, subset: 'encoder' }),
      await t.request(RANKED, { c, first: 5, orderBy: { term: 'LOSS', direction: 'ASC' }, filter: { sampleIds: ids }, subset: 'encoder' }),
      await t.request(`query($c: ID!) { checkpoint(id: $c) { termStats(term: K_TRACE, subset: "encoder") { count } } }`, { c }),
      await t.request(`mutation($c: ID!) { computeTerms(input: { checkpointId: $c, subset: "encoder" }) { id } }`, { c }),
      await t.request(`query($c: ID!, $o: ID!) { checkpoint(id: $c) { firstOrder(observedId: $o, updatedId: $o, subset: "encoder") { K } } }`, { c, o: ids[0] }),
      await t.request(`query($c: ID!) { previewSelection(strategy: { checkpointIds: [$c], subset: "encoder", method: TOP_K, k: 3 }) { count } }`, { c }),
      await t.request(`mutation($c: ID!, $s: ID!) { recordKCross(checkpointId: $c, target: { split: "test" }, values: [{ sampleId: $s, kCross: 1 }], subset: "encoder") { written } }`, { c, s: ids[0] }),
    ];
    for (const r of refusals) {
      assert.deepEqual(codes(r), ['BAD_USER_INPUT'], JSON.stringify(r.errors));
      assert.match(r.errors![0]!.message, /^Model \d+ has no parameter subset "encoder"; its subsets: all, head, adapter_head$/);
      assert.deepEqual(r.errors![0]!.extensions!.subsets, ['all', 'head', 'adapter_head']);
    }
    assert.equal(refusals[4]!.errors![0]!.extensions!.field, 'input.subset');
    assert.equal(refusals[6]!.errors![0]!.extensions!.field, 'strategy.subset');
    const { checkpoint } = await t.gql(`query($c: ID!) { checkpoint(id: $c) { jobs { totalCount } } }`, { c });
    assert.equal(checkpoint.jobs.totalCount, 0, 'no job was made for an unknown subset');

    const malformed = await t.request(RANKED, { c, first: 5, subset: 'head; DROP TABLE sample' });
    assert.deepEqual(codes(malformed), ['BAD_USER_INPUT']);
    assert.equal(malformed.errors![0]!.extensions!.field, 'subset');

    // A model without a channel adapter's name for it: a plain CNN has no adapter_head.
    const cnn = await storeCnn(t, dataset);
    const noAdapter = await t.request(SAMPLE_TERMS, { c: cnn.checkpoints[0]!.id, ids, terms: ['K_NORM'], subset: 'adapter_head' });
    assert.deepEqual(codes(noAdapter), ['BAD_USER_INPUT']);
    assert.deepEqual(noAdapter.errors![0]!.extensions!.subsets, ['all', 'head']);
  });
});
