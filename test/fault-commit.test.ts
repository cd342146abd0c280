import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { openDatabase } from '../src/platform/db/database.js';
import { cleanupStack } from './helpers/cleanup.js';
import { PgProxy } from './helpers/pg-proxy.js';
import { createTestDatabase, quietLog } from './helpers/database.js';
import { startTestServer } from './helpers/server.js';

/**
 * Honest outcomes: the connection between server and PostgreSQL dies after the server sent COMMIT
 * and before the reply reached it. The rows are committed, so the server must not say "nothing was
 * written": it answers OUTCOME_UNKNOWN (503), and sending the same mutation again leaves one copy.
 */

const BULK = `mutation($d: ID!, $input: SampleColumnsInput!) { addSamplesBulk(datasetId: $d, input: $input) { added unchanged } }`;

async function post(url: string, query: string, variables?: unknown) {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) });
  return {
    status: response.status,
    retryAfter: response.headers.get('retry-after'),
    body: (await response.json()) as { data?: any; errors?: { message: string; extensions?: Record<string, unknown> }[] },
  };
}

test(
  'the connection dies right after COMMIT: OUTCOME_UNKNOWN (503), the rows are there, a retry leaves one copy',
  { skip: !process.env.DATABASE_URL && 'needs DATABASE_URL: PGlite runs inside the process, so there is no socket to cut' },
  async (t) => {
    const defer = cleanupStack(t);
    const testDb = defer(await createTestDatabase(), (d) => d.destroy());
    assert.equal(testDb.config.kind, 'postgres');
    const proxy = defer(await PgProxy.forUrl(testDb.config.url), (p) => p.close());
    const proxied = { ...testDb.config, url: proxy.via(testDb.config.url) };
    const server = defer(
      await startTestServer({ testDb: { ...testDb, config: proxied, open: () => openDatabase(proxied, quietLog) }, env: { TANGENT_WORKER: 'off' } }),
      (s) => s.stop(),
    );
    const direct = defer(new pg.Client({ connectionString: testDb.config.url }), (c) => c.end());
    await direct.connect();

    const { createDataset } = await server.gql<{ createDataset: { id: string } }>(
      `mutation { createDataset(input: { name: "bulk", length: 2, classNames: ["a", "b"] }) { id } }`,
    );
    const n = 500;
    const input = {
      indices: Array.from({ length: n }, (_, i) => i),
      labels: Array.from({ length: n }, (_, i) => i % 2),
      split: 'train',
      series: Array.from({ length: n * 2 }, (_, i) => i / 4),
    };

    proxy.armCommitCut();
    const cut = await post(server.url, BULK, { d: createDataset.id, input });
    assert.equal(proxy.commitCuts, 1, 'the proxy cut the COMMIT of this mutation');
    assert.deepEqual(cut.body.errors?.map((e) => e.extensions?.code), ['OUTCOME_UNKNOWN'], JSON.stringify(cut.body));
    assert.equal(cut.status, 503);
    assert.equal(cut.retryAfter, '5');
    assert.match(cut.body.errors![0]!.message, /may have been written/);
    assert.doesNotMatch(cut.body.errors![0]!.message, /nothing was written/);
    assert.doesNotMatch(JSON.stringify(cut.body), /ECONN|Connection terminated|5432|\.ts\b/);

    const count = async () => Number((await direct.query('SELECT count(*) AS n FROM sample WHERE dataset_id = $1', [Number(createDataset.id)])).rows[0].n);
    assert.equal(await count(), n, 'the rows did commit, although the server could not hear it');

    // The client does what the error says: it sends the same mutation again.
    const retry = await post(server.url, BULK, { d: createDataset.id, input });
    assert.equal(retry.status, 200);
    assert.deepEqual(retry.body, { data: { addSamplesBulk: { added: 0, unchanged: n } } });
    assert.equal(await count(), n, 'exactly one copy');
  },
);

test(
  'the connection dies before COMMIT is sent: DATABASE_UNAVAILABLE (503), and truly nothing was written',
  { skip: !process.env.DATABASE_URL && 'needs DATABASE_URL: PGlite runs inside the process, so there is no socket to cut' },
  async (t) => {
    const defer = cleanupStack(t);
    const testDb = defer(await createTestDatabase(), (d) => d.destroy());
    assert.equal(testDb.config.kind, 'postgres');
    const direct = defer(new pg.Client({ connectionString: testDb.config.url }), (c) => c.end());
    const server = defer(await startTestServer({ testDb, env: { TANGENT_WORKER: 'off' } }), (s) => s.stop());
    await direct.connect();
    const { createDataset } = await server.gql<{ createDataset: { id: string } }>(
      `mutation { createDataset(input: { name: "bulk", length: 1, classNames: ["a"] }) { id } }`,
    );
    // Another session holds the dataset's rows, so the mutation waits inside its transaction; then
    // PostgreSQL itself ends the mutation's connection (as a restart would) before it reaches COMMIT.
    await direct.query('BEGIN');
    await direct.query('LOCK TABLE sample IN ACCESS EXCLUSIVE MODE');
    const pending = post(server.url, BULK, { d: createDataset.id, input: { indices: [0, 1], labels: [0, 0], series: [1, 2] } });
    let victim: number | undefined;
    while (victim === undefined) {
      const { rows } = await direct.query(
        `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()`,
      );
      victim = rows[0]?.pid;
    }
    await direct.query('SELECT pg_terminate_backend($1)', [victim]);
    await direct.query('ROLLBACK');
    const res = await pending;
    assert.deepEqual(res.body.errors?.map((e) => e.extensions?.code), ['DATABASE_UNAVAILABLE'], JSON.stringify(res.body));
    assert.equal(res.status, 503);
    assert.equal(res.retryAfter, '5');
    assert.match(res.body.errors![0]!.message, /nothing was written/);
    const { rows } = await direct.query('SELECT count(*)::int AS n FROM sample WHERE dataset_id = $1', [Number(createDataset.id)]);
    assert.equal(rows[0].n, 0);
  },
);

test('every create and bulk mutation sent twice leaves one copy; a different one under the same key is a CONFLICT', async (t) => {
  const defer = cleanupStack(t);
  const server = defer(await startTestServer({ env: { TANGENT_WORKER: 'off' } }), (s) => s.close());
  const twice = async (query: string, variables?: Record<string, unknown>) => {
    const first = await server.gql<Record<string, any>>(query, variables);
    const second = await server.request<Record<string, any>>(query, variables);
    assert.equal(second.errors, undefined, JSON.stringify(second.errors));
    return [first, second.data!] as const;
  };
  const conflict = async (query: string, variables?: Record<string, unknown>) => {
    const res = await server.request(query, variables);
    assert.deepEqual(res.errors?.map((e) => e.extensions?.code), ['CONFLICT'], JSON.stringify(res));
  };

  const DATASET = `mutation($input: CreateDatasetInput!) { createDataset(input: $input) { id sampleCount } }`;
  const dataset = { name: 'd', length: 2, classNames: ['a', 'b'], samples: [{ index: 0, label: 1, series: [0.5, 1.5] }, { index: 1, label: 0, series: [2, 3] }] };
  const [d1, d2] = await twice(DATASET, { input: dataset });
  assert.deepEqual(d2, d1);
  assert.equal(d1.createDataset.sampleCount, 2);
  await conflict(DATASET, { input: { ...dataset, samples: [dataset.samples[0]] } });
  await conflict(DATASET, { input: { ...dataset, classNames: ['a', 'c'] } });

  const MODEL = `mutation($input: CreateModelInput!) { createModel(input: $input) { id } }`;
  const model = { name: 'm', format: 'BUILTIN', architecture: 'cnn1d', config: { filters: [4], kernelSizes: [1] }, inputLength: 2, numClasses: 2 };
  const [m1, m2] = await twice(MODEL, { input: model });
  assert.deepEqual(m2, m1);
  await conflict(MODEL, { input: { ...model, config: { filters: [8], kernelSizes: [1] } } });

  // Runs have no natural key: the client's idempotencyKey is theirs.
  const RUN = `mutation($input: CreateRunInput!) { createRun(input: $input) { id name } }`;
  const run = { name: 'r', modelId: m1.createModel.id, datasetId: d1.createDataset.id, idempotencyKey: 'run-7f3a' };
  const [r1, r2] = await twice(RUN, { input: run });
  assert.deepEqual(r2, r1);
  await conflict(RUN, { input: { ...run, name: 'another' } });
  const unkeyed = await server.gql<{ createRun: { id: string } }>(RUN, { input: { ...run, idempotencyKey: null } });
  assert.notEqual(unkeyed.createRun.id, r1.createRun.id, 'without a key each create makes a run');
  const createRun = r1.createRun as { id: string };
  const TRAIN = `mutation($input: TrainRunInput!) { trainRun(input: $input) { id status } }`;
  const train = { modelId: m1.createModel.id, datasetId: d1.createDataset.id, epochs: 1, idempotencyKey: 'train-51c2' };
  const [tr1, tr2] = await twice(TRAIN, { input: train });
  assert.deepEqual(tr2, tr1);
  await conflict(TRAIN, { input: { ...train, name: 'another' } });
  const CHECKPOINT = `mutation($input: CreateCheckpointInput!) { createCheckpoint(input: $input) { id step } }`;
  const checkpoint = { runId: createRun.id, step: 3, learningRate: 0.1, weightSpecs: [{ name: 'w', shape: [2], dtype: 'float32' }], weightData: Buffer.from(new Float32Array([1, 2]).buffer).toString('base64') };
  const [c1, c2] = await twice(CHECKPOINT, { input: checkpoint });
  assert.deepEqual(c2, c1);
  await conflict(CHECKPOINT, { input: { ...checkpoint, weightData: Buffer.from(new Float32Array([1, 3]).buffer).toString('base64') } });

  const BULK_ADD = `mutation($d: ID!, $input: SampleColumnsInput!) { addSamplesBulk(datasetId: $d, input: $input) { added unchanged } }`;
  const [b1, b2] = await twice(BULK_ADD, { d: d1.createDataset.id, input: { indices: [2, 3], labels: [0, 1], split: 'test', series: [1, 2, 3, 4] } });
  assert.deepEqual([b1.addSamplesBulk, b2.addSamplesBulk], [{ added: 2, unchanged: 0 }, { added: 0, unchanged: 2 }]);

  const LOG = `mutation($c: ID!, $input: MetricColumnsInput!) { logMetrics(checkpointId: $c, input: $input) { written } }`;
  const [l1, l2] = await twice(LOG, { c: c1.createCheckpoint.id, input: { sampleIndices: [0, 1], loss: [0.25, 0.5] } });
  assert.deepEqual(l2, l1);
  const { checkpoint: stored } = await server.gql<{ checkpoint: { metrics: { totalCount: number } } }>(`query($c: ID!) { checkpoint(id: $c) { metrics(first: 10) { totalCount } } }`, { c: c1.createCheckpoint.id });
  assert.equal(stored.metrics.totalCount, 2);
  const SELECTION = `mutation($input: CreateSelectionInput!) { createSelection(input: $input) { id sampleCount } }`;
  const selection = { name: 's', strategy: { checkpointIds: [c1.createCheckpoint.id], term: 'LOSS', method: 'TOP_K', k: 1, filter: { splits: ['train'] } } };
  const [s1, s2] = await twice(SELECTION, { input: selection });
  assert.deepEqual(s2, s1);
  await conflict(SELECTION, { input: { ...selection, strategy: { ...selection.strategy, k: 2 } } });

  const { datasets, runs } = await server.gql<{ datasets: { totalCount: number }; runs: { totalCount: number } }>(`{ datasets { totalCount } runs { totalCount } }`);
  assert.equal(datasets.totalCount, 1);
  assert.equal(runs.totalCount, 3, 'the keyed run, the unkeyed one and the trained one');
});
