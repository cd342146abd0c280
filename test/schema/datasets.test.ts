import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { codes, CREATE_DATASET, createUcrDataset } from '../helpers/fixtures.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

let t: TestServer;
before(async () => {
  t = await startTestServer();
});
after(() => t?.close());

const SAMPLES_PAGE = /* GraphQL */ `
  query Samples($id: ID!, $first: Int, $after: String, $filter: SampleFilter) {
    dataset(id: $id) {
      samples(first: $first, after: $after, filter: $filter) {
        totalCount
        pageInfo { hasNextPage endCursor }
        edges { cursor node { id index label className split series } }
      }
    }
  }
`;

describe('datasets and samples', () => {
  test('a UCR data set goes in and comes back exactly, with counts, classes and splits', async () => {
    const { datasetId, ucr } = await createUcrDataset(t, 'GunPoint_TRAIN');
    const data = await t.gql(
      `query($id: ID!) { dataset(id: $id) { name length channels classNames sampleCount splits { split count } trainCount: sampleCount(split: "train") } }`,
      { id: datasetId },
    );
    assert.equal(data.dataset.length, 150);
    assert.equal(data.dataset.channels, 1);
    assert.deepEqual(data.dataset.classNames, ['1', '2']);
    assert.equal(data.dataset.sampleCount, 50);
    assert.equal(data.dataset.trainCount, 50);
    assert.deepEqual(data.dataset.splits, [{ split: 'train', count: 50 }]);

    const page = await t.gql(SAMPLES_PAGE, { id: datasetId, first: 50 });
    const nodes = page.dataset.samples.edges.map((e: any) => e.node);
    assert.equal(nodes.length, 50);
    for (const [i, node] of nodes.entries()) {
      assert.equal(node.index, i);
      assert.equal(node.label, ucr.series[i]!.label);
      assert.equal(node.className, ucr.classNames[ucr.series[i]!.label]);
      assert.deepEqual(node.series, Array.from(ucr.series[i]!.values), `series ${i} reads back bit-exact`);
    }
  });

  test('a multivariate series is stored time-major and accepted as base64 float32', async () => {
    const values = new Float32Array([0.1, -2, 3.25, 4, 1e-7, 6]); // length 3 × channels 2
    const { createDataset } = await t.gql(CREATE_DATASET, {
      input: {
        name: 'mv-base64',
        length: 3,
        channels: 2,
        classNames: ['x', 'y'],
        samples: [{ index: 0, label: 1, split: 'validation', series: Buffer.from(values.buffer).toString('base64') }],
      },
    });
    const data = await t.gql(SAMPLES_PAGE, { id: createDataset.id });
    assert.deepEqual(data.dataset.samples.edges[0].node.series, Array.from(values));
    assert.equal(data.dataset.samples.edges[0].node.split, 'validation');
  });

  test('paging with cursors while samples arrive between pages gives no duplicates and no gaps', async () => {
    const series = [0, 0];
    const { createDataset } = await t.gql(CREATE_DATASET, {
      input: {
        name: 'paging',
        length: 2,
        classNames: ['a', 'b'],
        samples: Array.from({ length: 25 }, (_, i) => ({ index: i * 2, label: i % 2, series })),
      },
    });
    const id = createDataset.id;
    const seen: number[] = [];
    let after: string | null = null;
    let round = 0;
    for (;;) {
      const page: any = await t.gql(SAMPLES_PAGE, { id, first: 7, after });
      const conn = page.dataset.samples;
      seen.push(...conn.edges.map((e: any) => e.node.index));
      // Between pages, another client appends samples: odd indices and some past the end.
      await t.gql(`mutation($id: ID!, $s: [SampleInput!]!) { addSamples(datasetId: $id, samples: $s) { added } }`, {
        id,
        s: [{ index: 1 + round * 2, label: 0, series }, { index: 100 + round, label: 1, series }],
      });
      round++;
      if (!conn.pageInfo.hasNextPage) break;
      after = conn.pageInfo.endCursor;
    }
    assert.equal(new Set(seen).size, seen.length, 'no sample is seen twice');
    const sorted = [...seen].sort((a, b) => a - b);
    assert.deepEqual(seen, sorted, 'pages follow index order');
    // Every even index that existed at the start is there; nothing before a cursor was skipped.
    for (let i = 0; i < 50; i += 2) assert.ok(seen.includes(i), `index ${i} was seen`);
    const total = await t.gql(`query($id: ID!) { dataset(id: $id) { sampleCount } }`, { id });
    assert.equal(total.dataset.sampleCount, 25 + 2 * round);
  });

  test('filters on split, label and index range', async () => {
    const series = [1];
    const { createDataset } = await t.gql(CREATE_DATASET, {
      input: {
        name: 'filters',
        length: 1,
        classNames: ['a', 'b', 'c'],
        samples: Array.from({ length: 30 }, (_, i) => ({ index: i, label: i % 3, split: i < 20 ? 'train' : 'test', series })),
      },
    });
    const data = await t.gql(SAMPLES_PAGE, { id: createDataset.id, filter: { split: 'train', label: 2, indexFrom: 5, indexTo: 17 } });
    assert.deepEqual(
      data.dataset.samples.edges.map((e: any) => e.node.index),
      [5, 8, 11, 14, 17],
    );
    assert.equal(data.dataset.samples.totalCount, 5);
  });

  test('malformed input is refused with BAD_USER_INPUT and writes nothing', async () => {
    const { createDataset } = await t.gql(CREATE_DATASET, {
      input: { name: 'guarded', length: 3, classNames: ['a', 'b'], samples: [{ index: 0, label: 0, series: [1, 2, 3] }] },
    });
    const id = createDataset.id;
    const add = (samples: unknown[]) =>
      t.request(`mutation($id: ID!, $s: [SampleInput!]!) { addSamples(datasetId: $id, samples: $s) { added } }`, { id, s: samples });

    const wrongLength = await add([{ index: 1, label: 0, series: [1, 2, 3] }, { index: 2, label: 0, series: [1, 2] }]);
    assert.deepEqual(codes(wrongLength), ['BAD_USER_INPUT']);
    assert.equal(wrongLength.errors![0]!.extensions!.field, 'samples[1].series');

    const nan = new Float32Array([1, Number.NaN, 3]);
    const withNaN = await add([{ index: 1, label: 0, series: Buffer.from(nan.buffer).toString('base64') }]);
    assert.deepEqual(codes(withNaN), ['BAD_USER_INPUT']);

    const infLiteral = await t.request(`mutation { addSamples(datasetId: ${id}, samples: [{index: 1, label: 0, series: [1, 1e999, 3]}]) { added } }`);
    assert.deepEqual(codes(infLiteral), ['BAD_USER_INPUT']);

    const badLabel = await add([{ index: 1, label: 5, series: [1, 2, 3] }]);
    assert.deepEqual(codes(badLabel), ['BAD_USER_INPUT']);
    assert.match(badLabel.errors![0]!.message, /label 5/);

    const duplicate = await add([{ index: 1, label: 0, series: [1, 2, 3] }, { index: 0, label: 0, series: [1, 2, 3] }]);
    assert.deepEqual(codes(duplicate), ['BAD_USER_INPUT']);
    assert.equal(duplicate.errors![0]!.extensions!.field, 'samples[1].index');

    const unknown = await t.request(`mutation { addSamples(datasetId: 999999, samples: [{index: 1, label: 0, series: [1, 2, 3]}]) { added } }`);
    assert.deepEqual(codes(unknown), ['NOT_FOUND']);

    const badId = await t.request(`{ dataset(id: "1 OR 1=1") { id } }`);
    assert.deepEqual(codes(badId), ['BAD_USER_INPUT']);

    const tampered = Buffer.from(JSON.stringify({ l: 'samples:1', k: ['x'] })).toString('base64url');
    for (const cursor of ['not-a-cursor!', tampered, Buffer.from('{"l":"datasets","k":[1]}').toString('base64url')]) {
      const res = await t.request(SAMPLES_PAGE, { id, after: cursor });
      assert.deepEqual(codes(res), ['BAD_USER_INPUT'], `cursor ${cursor}`);
    }

    const count = await t.gql(`query($id: ID!) { dataset(id: $id) { sampleCount } }`, { id });
    assert.equal(count.dataset.sampleCount, 1, 'no refused batch left a sample behind');
  });

  test('a dataset name is unique, and an invalid dataset is refused field by field', async () => {
    await t.gql(CREATE_DATASET, { input: { name: 'unique-name', length: 1, classNames: ['a'] } });
    // The same dataset again is a retry (answered with the stored one); a different one of that name is a CONFLICT.
    const again = await t.request(CREATE_DATASET, { input: { name: 'unique-name', length: 2, classNames: ['a'] } });
    assert.deepEqual(codes(again), ['CONFLICT']);
    const bad = await t.request(CREATE_DATASET, { input: { name: ' ', length: 0, classNames: ['a', 'a'] } });
    assert.deepEqual(codes(bad), ['BAD_USER_INPUT']);
    const fields = bad.errors![0]!.extensions!.issues.map((i: any) => i.field);
    assert.deepEqual(fields.sort(), ['input.classNames', 'input.length', 'input.name']);
    const withBadSample = await t.request(CREATE_DATASET, {
      input: { name: 'half-written', length: 2, classNames: ['a'], samples: [{ index: 0, label: 0, series: [1, 2] }, { index: 1, label: 0, series: [1] }] },
    });
    assert.deepEqual(codes(withBadSample), ['BAD_USER_INPUT']);
    const listed = await t.gql(`{ datasets(filter: { nameContains: "half-written" }) { totalCount } }`);
    assert.equal(listed.datasets.totalCount, 0, 'the dataset was not created without its samples');
  });

  test('datasets page by id and filter by name', async () => {
    for (const name of ['page-a', 'page-b', 'page-c']) await t.gql(CREATE_DATASET, { input: { name, length: 1, classNames: ['a'] } });
    const first = await t.gql(`{ datasets(first: 2, filter: { nameContains: "PAGE-" }) { totalCount pageInfo { hasNextPage endCursor } nodes { name } } }`);
    assert.equal(first.datasets.totalCount, 3);
    assert.deepEqual(first.datasets.nodes.map((n: any) => n.name), ['page-a', 'page-b']);
    const second = await t.gql(`query($after: String) { datasets(first: 2, after: $after, filter: { nameContains: "page-" }) { pageInfo { hasNextPage } nodes { name } } }`, {
      after: first.datasets.pageInfo.endCursor,
    });
    assert.deepEqual(second.datasets.nodes.map((n: any) => n.name), ['page-c']);
    assert.equal(second.datasets.pageInfo.hasNextPage, false);
    const negative = await t.request(`{ datasets(first: -1) { totalCount } }`);
    assert.deepEqual(codes(negative), ['BAD_USER_INPUT']);
  });

  test('a name search matches %, _ and \\ literally, for datasets and models alike', async () => {
    const names = ['lit_50%_a\\b', 'litx50yza\\b', 'LIT_50%_A\\B-2', 'lit_50%_ab'];
    for (const name of names) await t.gql(CREATE_DATASET, { input: { name, length: 4, classNames: ['a', 'b'] } });
    for (const name of names) {
      await t.gql(`mutation($input: CreateModelInput!) { createModel(input: $input) { id } }`, {
        input: { name, format: 'BUILTIN', architecture: 'cnn1d', config: { filters: [2], kernelSizes: [3] }, inputLength: 4, channels: 1, numClasses: 2 },
      });
    }
    const search = async (s: string) => {
      const data = await t.gql(`query($s: String) { datasets(first: 10, filter: { nameContains: $s }) { totalCount nodes { name } } models(first: 10, filter: { nameContains: $s }) { totalCount nodes { name } } }`, { s });
      assert.equal(data.datasets.totalCount, data.datasets.nodes.length);
      assert.deepEqual(data.models.nodes.map((n: any) => n.name), data.datasets.nodes.map((n: any) => n.name), `models and datasets agree on ${s}`);
      return data.datasets.nodes.map((n: any) => n.name);
    };
    // `_` and `%` are not wildcards, a backslash is a backslash, and case does not matter.
    assert.deepEqual(await search('_50%_a\\'), ['lit_50%_a\\b', 'LIT_50%_A\\B-2']);
    assert.deepEqual(await search('lit_'), ['lit_50%_a\\b', 'LIT_50%_A\\B-2', 'lit_50%_ab']);
    assert.deepEqual(await search('%_ab'), ['lit_50%_ab']);
    assert.deepEqual(await search('a\\B'), ['lit_50%_a\\b', 'litx50yza\\b', 'LIT_50%_A\\B-2']);
  });
});
