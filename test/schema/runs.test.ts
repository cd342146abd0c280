import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { codes, createModelAndRun, createUcrDataset } from '../helpers/fixtures.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let t: TestServer;
let datasetId: string;
before(async () => {
  t = await startTestServer();
  ({ datasetId } = await createUcrDataset(t, 'ArrowHead_TRAIN'));
});
after(() => t?.close());

const shape = () => ({ id: datasetId, length: 251, channels: 1, classes: 3 });

const CREATE_CHECKPOINT = /* GraphQL */ `
  mutation($input: CreateCheckpointInput!) {
    createCheckpoint(input: $input) { id step epoch learningRate weightBytes weightSha256 }
  }
`;

/** A tfjs-style weight set: specs and one little-endian buffer. */
function weights(seed: number) {
  const specs = [
    { name: 'conv1d/kernel', shape: [5, 1, 4], dtype: 'float32' },
    { name: 'conv1d/bias', shape: [4], dtype: 'float32' },
    { name: 'dense/kernel', shape: [4, 3], dtype: 'float32' },
    { name: 'dense/bias', shape: [3], dtype: 'float32' },
  ];
  const values = new Float32Array(20 + 4 + 12 + 3).map((_, i) => Math.sin(seed * 1000 + i) * 1e-3 * (i + 1));
  // Odd bit patterns must survive too: negative zero, a subnormal, the largest float32.
  values[0] = -0;
  values[1] = 1.4e-45;
  values[2] = 3.4028234663852886e38;
  return { specs, data: Buffer.from(values.buffer) };
}

describe('models, runs and checkpoints', () => {
  test('a run with checkpoints: create, read back, weights bit-exact, page in step order', async () => {
    const { runId, modelId } = await createModelAndRun(t, shape());
    const stored: { step: number; data: Buffer }[] = [];
    for (const step of [300, 100, 200]) {
      const w = weights(step);
      const modelJson = { format: 'layers-model', modelTopology: {}, weightsManifest: [{ paths: ['group1-shard1of1.bin'], weights: w.specs }] };
      const input = step === 100 ? { runId, step, epoch: 1, learningRate: 1e-3, weightSpecs: w.specs, weightData: w.data.toString('base64') } : { runId, step, epoch: step / 100, learningRate: 5e-4, modelJson, weightData: w.data.toString('base64') };
      const { createCheckpoint } = await t.gql(CREATE_CHECKPOINT, { input });
      assert.equal(createCheckpoint.weightBytes, w.data.byteLength);
      stored.push({ step, data: w.data });
    }
    const data = await t.gql(
      `query($id: ID!) { run(id: $id) { name status config checkpointCount model { id numClasses } dataset { id }
         checkpoints(first: 2) { pageInfo { hasNextPage endCursor } nodes { step learningRate weights { specs data } } } } }`,
      { id: runId },
    );
    const run = data.run;
    assert.equal(run.status, 'PENDING');
    assert.deepEqual(run.config, { learningRate: 0.001, optimizer: 'adam', epochs: 3, batchSize: 16, seed: 7 });
    assert.equal(run.checkpointCount, 3);
    assert.equal(run.model.id, modelId);
    assert.deepEqual(run.checkpoints.nodes.map((n: any) => n.step), [100, 200]);
    for (const node of run.checkpoints.nodes) {
      const expected = stored.find((s) => s.step === node.step)!.data;
      assert.ok(Buffer.from(node.weights.data, 'base64').equals(expected), `checkpoint ${node.step} weights are bit-exact`);
      assert.equal(node.weights.specs.length, 4);
    }
    const rest = await t.gql(`query($id: ID!, $after: String) { run(id: $id) { checkpoints(after: $after) { pageInfo { hasNextPage } nodes { step } } } }`, {
      id: runId,
      after: run.checkpoints.pageInfo.endCursor,
    });
    assert.deepEqual(rest.run.checkpoints.nodes.map((n: any) => n.step), [300]);
    assert.equal(rest.run.checkpoints.pageInfo.hasNextPage, false);
  });

  test('a run read with a first page of its checkpoints (one statement) answers as the two reads apart do', async () => {
    const { runId } = await createModelAndRun(t, shape());
    const { runId: emptyRunId } = await createModelAndRun(t, shape());
    for (const step of [30, 10, 50, 20, 40]) {
      const w = weights(step);
      await t.gql(CREATE_CHECKPOINT, { input: { runId, step, epoch: step / 10, learningRate: step === 30 ? null : 1e-3 / step, weightSpecs: w.specs, weightData: w.data.toString('base64') } });
    }
    const PAGE = `totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id step epoch learningRate weightBytes weightSha256 createdAt } }`;
    // The same selection plainly (read with the run: one statement) and under @include (never read
    // ahead: a lookahead cannot know whether a conditional field runs), so the two must agree.
    const query = (args: string, conditional: boolean) => {
      const variables = ['$id: ID!', ...(conditional ? ['$yes: Boolean!'] : []), ...(args.includes('$n') ? ['$n: Int'] : [])];
      return `query(${variables.join(', ')}) { run(id: $id) { id name status checkpointCount checkpoints${args}${conditional ? ' @include(if: $yes)' : ''} { ${PAGE} } } }`;
    };
    for (const id of [runId, emptyRunId, '999999']) {
      for (const [args, n] of [['(first: 2)', null], ['(first: 5)', null], ['(first: 10)', null], ['(first: 0)', null], ['', null], ['(first: $n)', 3], ['(first: $n)', null]] as const) {
        const variables = { id, ...(args.includes('$n') ? { n } : {}) };
        const ahead = await t.gql(query(args, false), variables);
        const apart = await t.gql(query(args, true), { ...variables, yes: true });
        assert.deepEqual(ahead, apart, `run ${id}, checkpoints${args} with n = ${n}`);
        if (id === runId && args === '(first: 2)') {
          assert.deepEqual(ahead.run.checkpoints.edges.map((e: any) => e.node.step), [10, 20]);
          assert.equal(ahead.run.checkpoints.pageInfo.hasNextPage, true);
          assert.equal(ahead.run.checkpoints.totalCount, 5);
        }
        if (id === emptyRunId) assert.deepEqual(ahead.run.checkpoints.edges, []);
        if (id === '999999') assert.equal(ahead.run, null);
      }
    }
    // Read through a fragment, the later page through the first's cursor, and a run asked twice under aliases.
    const viaFragment = await t.gql(`query($id: ID!) { run(id: $id) { ...R } } fragment R on Run { checkpoints(first: 3) { nodes { step } pageInfo { endCursor } } }`, { id: runId });
    assert.deepEqual(viaFragment.run.checkpoints.nodes.map((n: any) => n.step), [10, 20, 30]);
    const later = await t.gql(`query($id: ID!, $after: String) { run(id: $id) { checkpoints(first: 3, after: $after) { nodes { step } pageInfo { hasNextPage } } } }`, {
      id: runId,
      after: viaFragment.run.checkpoints.pageInfo.endCursor,
    });
    assert.deepEqual(later.run.checkpoints.nodes.map((n: any) => n.step), [40, 50]);
    assert.equal(later.run.checkpoints.pageInfo.hasNextPage, false);
    const twice = await t.gql(`query($id: ID!) { run(id: $id) { a: checkpoints(first: 1) { nodes { step } } b: checkpoints(first: 4) { nodes { step } } } }`, { id: runId });
    assert.deepEqual([twice.run.a.nodes.map((n: any) => n.step), twice.run.b.nodes.map((n: any) => n.step)], [[10], [10, 20, 30, 40]]);
    const bad = await t.request(`query($id: ID!) { run(id: $id) { checkpoints(first: -1) { nodes { step } } } }`, { id: runId });
    assert.deepEqual(codes(bad), ['BAD_USER_INPUT']);
  });

  test('a layer unchanged between checkpoints is stored once; deletes free what no checkpoint holds; inline rows still read', async () => {
    const { runId } = await createModelAndRun(t, shape());
    // Step 2 moves the dense layer only (a frozen conv trunk); step 3 moves nothing.
    const w1 = weights(5);
    const w2 = { specs: w1.specs, data: Buffer.from(w1.data) };
    new Float32Array(w2.data.buffer, w2.data.byteOffset + 24 * 4, 15).fill(0.125);
    const ids: string[] = [];
    for (const [step, w] of [[1, w1], [2, w2], [3, w2]] as const) {
      ids.push((await t.gql(CREATE_CHECKPOINT, { input: { runId, step, weightSpecs: w.specs, weightData: w.data.toString('base64') } })).createCheckpoint.id);
    }
    const layersOf = async (id: string) =>
      (await t.db.sql.query<{ layer: string; hash: string }>('SELECT layer, hash FROM checkpoint_layer WHERE checkpoint_id = $1 ORDER BY layer', [Number(id)])).map((r) => r.hash);
    const [l1, l2, l3] = [await layersOf(ids[0]!), await layersOf(ids[1]!), await layersOf(ids[2]!)];
    assert.equal(l1.length, 2);
    assert.equal(l1[0], l2[0], 'the conv layer is shared');
    assert.notEqual(l1[1], l2[1], 'the dense layer is not');
    assert.deepEqual(l3, l2);
    const stored = async (hashes: string[]) => Number((await t.db.sql.query<{ n: number }>('SELECT count(*)::int AS n FROM weight_layer WHERE hash = ANY($1::text[])', [hashes]))[0]!.n);
    assert.equal(await stored([...new Set([...l1, ...l2])]), 3, 'three distinct layers, each stored once');
    const read = async (id: string) => Buffer.from((await t.gql(`query($id: ID!) { checkpoint(id: $id) { weights { data } } }`, { id })).checkpoint.weights.data, 'base64');
    assert.ok((await read(ids[0]!)).equals(w1.data));
    assert.ok((await read(ids[1]!)).equals(w2.data));

    // Deleting step 1 frees its dense layer only; steps 2 and 3 still hold the conv layer and theirs.
    await t.gql(`mutation($id: ID!) { deleteCheckpoint(id: $id) { id } }`, { id: ids[0] });
    assert.equal(await stored([l1[1]!]), 0);
    assert.equal(await stored(l2), 2);
    assert.ok((await read(ids[2]!)).equals(w2.data));

    // A checkpoint stored before layers were shared keeps its bytes inline, and reads the same.
    await t.db.sql.query('DELETE FROM checkpoint_layer WHERE checkpoint_id = $1', [Number(ids[2])]);
    await t.db.sql.query('UPDATE checkpoint_weights SET data = $2, layer_hashes = NULL WHERE checkpoint_id = $1', [Number(ids[2]), w2.data]);
    assert.ok((await read(ids[2]!)).equals(w2.data));

    await t.gql(`mutation($id: ID!) { deleteRun(id: $id) { id } }`, { id: runId });
    assert.equal(await stored([...l1, ...l2]), 0, 'the run took its layers with it');
  });

  test('checkpoint input is checked: bytes against specs, duplicate steps, unknown runs', async () => {
    const { runId } = await createModelAndRun(t, shape());
    const w = weights(1);
    const short = await t.request(CREATE_CHECKPOINT, { input: { runId, step: 1, weightSpecs: w.specs, weightData: w.data.subarray(4).toString('base64') } });
    assert.deepEqual(codes(short), ['BAD_USER_INPUT']);
    const notBase64 = await t.request(CREATE_CHECKPOINT, { input: { runId, step: 1, weightSpecs: w.specs, weightData: '@@@@' } });
    assert.deepEqual(codes(notBase64), ['BAD_USER_INPUT']);
    const badSpec = await t.request(CREATE_CHECKPOINT, { input: { runId, step: 1, weightSpecs: [{ name: 'x', shape: [-1], dtype: 'float32' }], weightData: '' } });
    assert.deepEqual(codes(badSpec), ['BAD_USER_INPUT']);
    await t.gql(CREATE_CHECKPOINT, { input: { runId, step: 1, weightSpecs: w.specs, weightData: w.data.toString('base64') } });
    // The same checkpoint again is a retry (answered with the stored one); other weights at that step are a CONFLICT.
    const again = await t.request(CREATE_CHECKPOINT, { input: { runId, step: 1, weightSpecs: w.specs, weightData: weights(2).data.toString('base64') } });
    assert.deepEqual(codes(again), ['CONFLICT']);
    const unknownRun = await t.request(CREATE_CHECKPOINT, { input: { runId: '987654', step: 1, weightSpecs: w.specs, weightData: w.data.toString('base64') } });
    assert.deepEqual(codes(unknownRun), ['NOT_FOUND']);
  });

  test('a run whose model does not fit the dataset is refused', async () => {
    const { createModel } = await t.gql(`mutation { createModel(input: { name: "misfit", format: BUILTIN, architecture: "cnn1d", inputLength: 100, numClasses: 3 }) { id } }`);
    const res = await t.request(`mutation($m: ID!, $d: ID!) { createRun(input: { name: "r", modelId: $m, datasetId: $d }) { id } }`, { m: createModel.id, d: datasetId });
    assert.deepEqual(codes(res), ['BAD_USER_INPUT']);
    const tfjs = await t.request(`mutation { createModel(input: { name: "no-topology", format: TFJS_LAYERS, inputLength: 251, numClasses: 3 }) { id } }`);
    assert.deepEqual(codes(tfjs), ['BAD_USER_INPUT']);
  });

  test('metrics recorded at a checkpoint read back with their provenance, and deleting the run removes everything under it', async () => {
    const { runId } = await createModelAndRun(t, shape());
    const w = weights(2);
    const { createCheckpoint } = await t.gql(CREATE_CHECKPOINT, { input: { runId, step: 10, weightSpecs: w.specs, weightData: w.data.toString('base64') } });
    const samples = await t.gql(`query($id: ID!) { dataset(id: $id) { samples(first: 5) { nodes { id } } } }`, { id: datasetId });
    const ids: string[] = samples.dataset.samples.nodes.map((n: any) => n.id);
    const metrics = ids.map((sampleId, i) => ({ sampleId, loss: 0.5 + i, correct: i % 2 === 0, logits: [i, -i - 0.5, 0.25] }));
    const recorded = await t.gql(
      `mutation($c: ID!, $m: [MetricInput!]!) { recordMetrics(checkpointId: $c, metrics: $m) { written checkpoint { id } } }`,
      { c: createCheckpoint.id, m: metrics },
    );
    assert.equal(recorded.recordMetrics.written, 5);
    const read = await t.gql(
      `query($id: ID!) { checkpoint(id: $id) { metrics { totalCount nodes { sample { id } loss correct logits probs kNorm provenance { term producer { kind } } } } } }`,
      { id: createCheckpoint.id },
    );
    assert.equal(read.checkpoint.metrics.totalCount, 5);
    for (const [i, node] of read.checkpoint.metrics.nodes.entries()) {
      assert.equal(node.sample.id, ids[i]);
      assert.equal(node.loss, 0.5 + i);
      assert.equal(node.correct, i % 2 === 0);
      assert.deepEqual(node.logits, [i, -i - 0.5, 0.25]);
      assert.equal(node.probs, null, 'a vector that was never recorded is null, not []');
      assert.equal(node.kNorm, null);
      assert.deepEqual(node.provenance, [
        { term: 'LOSS', producer: { kind: 'CLIENT' } },
        { term: 'CORRECT', producer: { kind: 'CLIENT' } },
        { term: 'LOGITS', producer: { kind: 'CLIENT' } },
      ]);
    }
    const wrongLogits = await t.request(`mutation($c: ID!, $m: [MetricInput!]!) { recordMetrics(checkpointId: $c, metrics: $m) { written } }`, {
      c: createCheckpoint.id,
      m: [{ sampleId: ids[0], logits: [1, 2] }],
    });
    assert.deepEqual(codes(wrongLogits), ['BAD_USER_INPUT']);

    // Values below float32's range are stored as float32 rounds them (0, or a subnormal), as every
    // value is; above it they are refused.
    const tiny = [1e-50, 1e-40, -0, 5e-324, 1.234567e6];
    const rounded = await t.gql(`mutation($c: ID!, $m: [MetricInput!]!) { recordMetrics(checkpointId: $c, metrics: $m) { written } }`, {
      c: createCheckpoint.id,
      m: tiny.map((hTrace, i) => ({ sampleId: ids[i], hTrace })),
    });
    assert.equal(rounded.recordMetrics.written, 5);
    const stored = await t.gql(`query($id: ID!) { checkpoint(id: $id) { metrics { nodes { hTrace } } } }`, { id: createCheckpoint.id });
    // Read back as the shortest decimal of the float32 (JSON has no -0): equal through Math.fround.
    const asFloat32 = (v: number) => Math.fround(v) + 0;
    assert.deepEqual(stored.checkpoint.metrics.nodes.map((n: { hTrace: number }) => asFloat32(n.hTrace)), tiny.map(asFloat32));
    assert.ok(asFloat32(stored.checkpoint.metrics.nodes[1].hTrace) > 0, '1e-40 is a float32 subnormal, not 0');
    const huge = await t.request(`mutation($c: ID!, $m: [MetricInput!]!) { recordMetrics(checkpointId: $c, metrics: $m) { written } }`, { c: createCheckpoint.id, m: [{ sampleId: ids[0], hTrace: 1e39 }] });
    assert.deepEqual(codes(huge), ['BAD_USER_INPUT']);

    const deleted = await t.gql(`mutation($id: ID!) { deleteRun(id: $id) { id } }`, { id: runId });
    assert.equal(deleted.deleteRun.id, runId);
    assert.equal((await t.gql(`query($id: ID!) { run(id: $id) { id } }`, { id: runId })).run, null);
    assert.equal((await t.gql(`query($id: ID!) { checkpoint(id: $id) { id } }`, { id: createCheckpoint.id })).checkpoint, null);
    const left = await t.db.sql.query<{ n: number }>(
      `SELECT (SELECT count(*) FROM sample_metric WHERE checkpoint_id = $1)::int
            + (SELECT count(*) FROM checkpoint_weights WHERE checkpoint_id = $1)::int AS n`,
      [Number(createCheckpoint.id)],
    );
    assert.equal(left[0]!.n, 0, 'metrics and weights went with the run');
    const again = await t.request(`mutation($id: ID!) { deleteRun(id: $id) { id } }`, { id: runId });
    assert.deepEqual(codes(again), ['NOT_FOUND']);
    assert.equal((await t.gql(`query($id: ID!) { dataset(id: $id) { sampleCount } }`, { id: datasetId })).dataset.sampleCount, 36, 'samples stay');
  });

  test('runUpdated streams over graphql-ws on the same path', async () => {
    const { runId } = await createModelAndRun(t, shape());
    const client = createClient({ url: t.url.replace('http', 'ws'), webSocketImpl: WebSocket, retryAttempts: 0 });
    try {
      const updates: string[] = [];
      const done = new Promise<void>((resolve, reject) => {
        const unsubscribe = client.subscribe<{ runUpdated: { status: string; checkpointCount: number } }>(
          { query: `subscription($id: ID!) { runUpdated(id: $id) { status checkpointCount } }`, variables: { id: runId } },
          {
            next: ({ data }) => {
              updates.push(`${data!.runUpdated.status}/${data!.runUpdated.checkpointCount}`);
              if (updates.length === 2) {
                unsubscribe();
                resolve();
              }
            },
            error: reject,
            complete: () => undefined,
          },
        );
      });
      // The subscription is registered once the server has acknowledged it; give it a moment.
      await new Promise((r) => setTimeout(r, 300));
      await t.gql(`mutation($id: ID!) { updateRun(id: $id, input: { status: RUNNING }) { id } }`, { id: runId });
      const w = weights(3);
      await t.gql(CREATE_CHECKPOINT, { input: { runId, step: 5, weightSpecs: w.specs, weightData: w.data.toString('base64') } });
      await done;
      assert.deepEqual(updates, ['RUNNING/0', 'RUNNING/1']);
    } finally {
      await client.dispose();
    }
  });

  test('a model in use cannot be deleted; a dataset delete cascades to its runs', async () => {
    const { createDataset } = await t.gql(`mutation { createDataset(input: { name: "doomed", length: 251, classNames: ["a", "b", "c"] }) { id } }`);
    const { runId, modelId } = await createModelAndRun(t, { ...shape(), id: createDataset.id });
    const refused = await t.request(`mutation($id: ID!) { deleteModel(id: $id) { id } }`, { id: modelId });
    assert.deepEqual(codes(refused), ['CONFLICT']);
    const model = await t.gql(`query($id: ID!) { model(id: $id) { name } }`, { id: modelId });
    const sameName = await t.request(`mutation($n: String!) { createModel(input: { name: $n, format: BUILTIN, architecture: "cnn1d", inputLength: 251, numClasses: 3 }) { id } }`, { n: model.model.name });
    assert.deepEqual(codes(sameName), ['CONFLICT'], 'a taken model name is a CONFLICT on every database');
    await t.gql(`mutation($id: ID!) { deleteDataset(id: $id) { id } }`, { id: createDataset.id });
    assert.equal((await t.gql(`query($id: ID!) { run(id: $id) { id } }`, { id: runId })).run, null);
    await t.gql(`mutation($id: ID!) { deleteModel(id: $id) { id } }`, { id: modelId });
  });
});
