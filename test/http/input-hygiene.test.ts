import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { cleanupStack } from '../helpers/cleanup.js';
import { codes, createModelAndRun } from '../helpers/fixtures.js';
import { startTestServer, type GraphQLResponse, type TestServer } from '../helpers/server.js';

/**
 * What enters is checked once, at the edge (src/platform/http/input-guard.ts, the JSON scalar): text the
 * database cannot store, JSON too deep or too large, a persisted query whose hash lies, and a
 * document nested past what the parser may read are each refused with a code and HTTP 400 before
 * anything runs, nothing is written, and no answer carries a JavaScript error's name, a stack, a
 * file path or SQL. Each case here is one reported against a production server.
 */

const NUL = 'a\u0000b';
const SURROGATE = 'a\ud800b';

type Answer = { status: number; body: GraphQLResponse };

async function post(t: TestServer, body: Record<string, unknown>): Promise<Answer> {
  const response = await fetch(t.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: response.status, body: (await response.json()) as GraphQLResponse };
}

const LEAKS = /RangeError|TypeError|SyntaxError:|Maximum call stack|\bat .+:\d+:\d+|\/work\/|node_modules|\.ts:\d|prisma|SELECT |INSERT |invalid byte sequence|0x00/i;

/** The answer is one error with the code (and field), HTTP 400, no data, nothing that leaks. */
function assertRefused(answer: Answer, code: string, field?: string): void {
  assert.equal(answer.status, 400, JSON.stringify(answer.body));
  assert.deepEqual(codes(answer.body), [code], JSON.stringify(answer.body));
  assert.ok(!answer.body.data, 'no data');
  const error = answer.body.errors![0]!;
  if (field !== undefined) assert.equal(error.extensions?.field, field);
  assert.doesNotMatch(JSON.stringify(answer.body), LEAKS);
  assert.equal(error.extensions?.stacktrace, undefined);
}

async function counts(t: TestServer, datasetId: string) {
  const data = await t.gql<{ datasets: { totalCount: number }; models: { totalCount: number }; runs: { totalCount: number }; dataset: { sampleCount: number } }>(
    `query($d: ID!) { datasets { totalCount } models { totalCount } runs { totalCount } dataset(id: $d) { sampleCount } }`,
    { d: datasetId },
  );
  return { datasets: data.datasets.totalCount, models: data.models.totalCount, runs: data.runs.totalCount, samples: data.dataset.sampleCount };
}

const CREATE_MODEL = `mutation($input: CreateModelInput!) { createModel(input: $input) { id } }`;
const CREATE_RUN = `mutation($input: CreateRunInput!) { createRun(input: $input) { id } }`;
const CREATE_DATASET = `mutation($input: CreateDatasetInput!) { createDataset(input: $input) { id } }`;
const ADD_BULK = `mutation($d: ID!, $input: SampleColumnsInput!) { addSamplesBulk(datasetId: $d, input: $input) { added } }`;

function nestedArrays(depth: number): unknown {
  let value: unknown = [1];
  for (let i = 0; i < depth; i++) value = [value];
  return value;
}

describe('input hygiene over HTTP', () => {
  const defer = cleanupStack({ after });
  let t: TestServer;
  let datasetId: string;
  let modelId: string;
  let before0: Awaited<ReturnType<typeof counts>>;
  const model = (input: Record<string, unknown>) => ({
    input: { name: 'm', format: 'BUILTIN', architecture: 'cnn1d', config: { filters: [8], kernelSizes: [3] }, inputLength: 8, channels: 1, numClasses: 2, ...input },
  });

  before(async () => {
    t = defer(await startTestServer(), (s) => s.close());
    const { createDataset } = await t.gql<{ createDataset: { id: string } }>(CREATE_DATASET, {
      input: { name: 'hygiene', length: 8, channels: 1, classNames: ['a', 'b'], samples: [{ index: 0, label: 0, series: [0, 1, 2, 3, 4, 5, 6, 7] }] },
    });
    datasetId = createDataset.id;
    ({ modelId } = await createModelAndRun(t, { id: datasetId, length: 8, channels: 1, classes: 2 }));
    before0 = await counts(t, datasetId);
  });

  test('NUL and lone surrogates in a filter variable: BAD_USER_INPUT naming filter.nameContains (the reported example)', async () => {
    for (const s of [NUL, SURROGATE, '\udc00', 'x\ud800']) {
      const answer = await post(t, { query: `query($s: String) { datasets(first: 5, filter: { nameContains: $s }) { totalCount } }`, variables: { s } });
      assertRefused(answer, 'BAD_USER_INPUT', 'filter.nameContains');
      assert.match(answer.body.errors![0]!.message, /`filter\.nameContains` \(an argument of `datasets`\) holds (a NUL character|an unpaired UTF-16 surrogate)/);
    }
    // A properly paired surrogate (an emoji) is text like any other.
    const fine = await post(t, { query: `query($s: String) { datasets(first: 5, filter: { nameContains: $s }) { totalCount } }`, variables: { s: '\ud83d\ude00' } });
    assert.equal(fine.status, 200);
    assert.deepEqual(fine.body, { data: { datasets: { totalCount: 0 } } });
  });

  test('every string argument tried in the report is refused before anything is written', async (tc) => {
    const cases: { name: string; body: Record<string, unknown>; field: string }[] = [
      { name: 'createModel name', body: { query: CREATE_MODEL, variables: model({ name: NUL }) }, field: 'input.name' },
      { name: 'createModel architecture', body: { query: CREATE_MODEL, variables: model({ architecture: SURROGATE }) }, field: 'input.architecture' },
      { name: 'createRun name', body: { query: CREATE_RUN, variables: { input: { name: SURROGATE, modelId, datasetId } } }, field: 'input.name' },
      { name: 'createRun id', body: { query: CREATE_RUN, variables: { input: { name: 'r', modelId: `1${'\u0000'}`, datasetId } } }, field: 'input.modelId' },
      {
        name: 'createDataset name',
        body: { query: CREATE_DATASET, variables: { input: { name: NUL, length: 8, channels: 1, classNames: ['a', 'b'] } } },
        field: 'input.name',
      },
      {
        name: 'createDataset class name',
        body: { query: CREATE_DATASET, variables: { input: { name: 'ok', length: 8, channels: 1, classNames: ['a', SURROGATE] } } },
        field: 'input.classNames[1]',
      },
      {
        name: 'createDataset sample split',
        body: { query: CREATE_DATASET, variables: { input: { name: 'ok', length: 8, classNames: ['a'], samples: [{ index: 0, label: 0, split: NUL, series: [0, 0, 0, 0, 0, 0, 0, 0] }] } } },
        field: 'input.samples[0].split',
      },
      {
        name: 'a literal \\u0000 in the document',
        body: { query: `mutation { createDataset(input: { name: "a\\u0000b", length: 8, classNames: ["a"] }) { id } }` },
        field: 'input.name',
      },
      { name: 'samples(filter: {split})', body: { query: `query($d: ID!, $s: String) { dataset(id: $d) { samples(filter: { split: $s }) { totalCount } } }`, variables: { d: datasetId, s: NUL } }, field: 'filter.split' },
      { name: 'models nameContains', body: { query: `query($s: String) { models(filter: { nameContains: $s }) { totalCount } }`, variables: { s: SURROGATE } }, field: 'filter.nameContains' },
      {
        name: 'addSamplesBulk split',
        body: { query: ADD_BULK, variables: { d: datasetId, input: { indices: [1, 2], labels: [0, 1], split: NUL, series: new Array(16).fill(0) } } },
        field: 'input.split',
      },
      {
        name: 'addSamplesBulk splits column',
        body: { query: ADD_BULK, variables: { d: datasetId, input: { indices: [1, 2], labels: [0, 1], splits: ['train', SURROGATE], series: new Array(16).fill(0) } } },
        field: 'input.splits[1]',
      },
      { name: 'a string in JSON config', body: { query: CREATE_MODEL, variables: model({ config: { filters: [8], kernelSizes: [3], note: NUL } }) }, field: 'input.config.note' },
      { name: 'a key in JSON config', body: { query: CREATE_MODEL, variables: model({ config: { filters: [8], [`k${'\ud800'}`]: 1 } }) }, field: 'input.config' },
    ];
    for (const c of cases) {
      const answer = await post(t, c.body);
      await tc.test(c.name, () => assertRefused(answer, 'BAD_USER_INPUT', c.field));
    }
    assert.deepEqual(await counts(t, datasetId), before0);
  });

  test('deep JSON in createModel.config (500 nested arrays): BAD_USER_INPUT naming the limit, nothing written', async () => {
    for (const body of [
      { query: CREATE_MODEL, variables: model({ config: { filters: nestedArrays(500) } }) },
      { query: CREATE_MODEL, variables: model({ config: nestedArrays(33) }) },
      // Written in the document, within the nesting the document may have but past JSON's depth.
      { query: `mutation { createModel(input: { name: "m", format: BUILTIN, architecture: "cnn1d", inputLength: 8, numClasses: 2, config: ${'['.repeat(40)}1${']'.repeat(40)} }) { id } }` },
    ]) {
      const answer = await post(t, body);
      assertRefused(answer, 'BAD_USER_INPUT');
      assert.match(answer.body.errors![0]!.message, /nested deeper than 32 levels/);
    }
    const wide = await post(t, { query: CREATE_MODEL, variables: model({ config: { filters: [8], pad: new Array(100_001).fill(0) } }) });
    assertRefused(wide, 'BAD_USER_INPUT', 'input.config.pad');
    assert.match(wide.body.errors![0]!.message, /100000 keys and elements/);
    // At the limit it passes the scalar, and the architecture's own schema refuses the unknown option.
    const atLimit = await post(t, { query: CREATE_MODEL, variables: model({ config: { filters: [8], kernelSizes: [3], pad: nestedArrays(30) } }) });
    assert.doesNotMatch(atLimit.body.errors?.[0]?.message ?? '', /nested deeper|keys and elements/, 'a 32-deep value passes the JSON limits');
    assert.doesNotMatch(JSON.stringify(atLimit.body), LEAKS);
    assert.deepEqual(await counts(t, datasetId), before0);
  });

  test('persisted queries: a hash that is not the query’s is PERSISTED_QUERY_HASH_MISMATCH (400); a true one registers', async () => {
    const query = `{ datasets { totalCount } }`;
    const mismatch = await post(t, { query, extensions: { persistedQuery: { version: 1, sha256Hash: 'deadbeef' } } });
    assertRefused(mismatch, 'PERSISTED_QUERY_HASH_MISMATCH');
    const sha256Hash = createHash('sha256').update(query).digest('hex');
    // Apollo's own refusal of an unknown protocol version carries a code too.
    assertRefused(await post(t, { query, extensions: { persistedQuery: { version: 2, sha256Hash } } }), 'BAD_REQUEST');
    const unknown = await post(t, { extensions: { persistedQuery: { version: 1, sha256Hash } } });
    assert.deepEqual(codes(unknown.body), ['PERSISTED_QUERY_NOT_FOUND']);
    const registered = await post(t, { query, extensions: { persistedQuery: { version: 1, sha256Hash } } });
    assert.equal(registered.status, 200);
    const byHash = await fetch(`${t.url}?extensions=${encodeURIComponent(JSON.stringify({ persistedQuery: { version: 1, sha256Hash } }))}`, { headers: { 'apollo-require-preflight': 'true' } });
    assert.equal(byHash.status, 200);
    assert.deepEqual(await byHash.json(), registered.body);
    const getMismatch = await fetch(`${t.url}?query=${encodeURIComponent(query)}&extensions=${encodeURIComponent(JSON.stringify({ persistedQuery: { version: 1, sha256Hash: 'deadbeef' } }))}`, {
      headers: { 'apollo-require-preflight': 'true' },
    });
    assertRefused({ status: getMismatch.status, body: (await getMismatch.json()) as GraphQLResponse }, 'PERSISTED_QUERY_HASH_MISMATCH');
  });

  test('a 2,000-level nested selection is refused by the nesting limit before parsing, every time', async () => {
    const deep = `{ ${'dataset(id: 1) { '.repeat(2000)}id${' }'.repeat(2000)} }`;
    for (let i = 0; i < 3; i++) {
      const answer = await post(t, { query: deep });
      assertRefused(answer, 'GRAPHQL_VALIDATION_FAILED');
      assert.equal(answer.body.errors![0]!.extensions?.limit, 'maxNesting');
      assert.match(answer.body.errors![0]!.message, /more than \d+ deep/);
    }
    // Brackets in a list literal, and braces in object literals, count as well; strings and comments do not.
    assertRefused(await post(t, { query: `{ datasets(filter: ${'{ nameContains: '.repeat(3000)}"x"${' }'.repeat(3000)}) { totalCount } }` }), 'GRAPHQL_VALIDATION_FAILED');
    assertRefused(await post(t, { query: `mutation { createModel(input: { config: ${'['.repeat(5000)}${']'.repeat(5000)} }) { id } }` }), 'GRAPHQL_VALIDATION_FAILED');
    const quoted = await post(t, { query: `# ${'{'.repeat(5000)}\n query($s: String = "${'{'.repeat(3000)}") { datasets(filter: { nameContains: $s }) { totalCount } }` });
    assert.equal(quoted.status, 200, JSON.stringify(quoted.body));
    // The token limit still answers as before.
    const tokens = await post(t, { query: `{ serverInfo { ${'version '.repeat(6000)} } }` });
    assertRefused(tokens, 'GRAPHQL_PARSE_FAILED');
    assert.equal(tokens.body.errors![0]!.extensions?.limit, 'maxTokens');
  });
});

describe('input hygiene on /export', () => {
  const defer = cleanupStack({ after });
  let t: TestServer;
  before(async () => {
    t = defer(await startTestServer(), (s) => s.close());
  });

  test('a NUL in a query parameter or in a string inside `q` is BAD_USER_INPUT naming it (400)', async () => {
    const base = t.url.replace(/\/graphql$/, '/export');
    const q = (args: unknown) => Buffer.from(JSON.stringify(args)).toString('base64url');
    for (const [url, field] of [
      [`${base}/checkpoints/1?format=csv%00`, 'format'],
      [`${base}/selections/1?checkpoint=1%00`, 'checkpoint'],
      [`${base}/checkpoints/1?q=${q({ target: { split: NUL } })}`, 'q.target.split'],
      [`${base}/checkpoints/1?q=${q({ subset: SURROGATE })}`, 'q.subset'],
      [`${base}/checkpoints/1?q=${q({ filter: { splits: ['train', NUL] } })}`, 'q.filter.splits[1]'],
      // Percent-encoding that is not UTF-8 (an encoded lone surrogate, a cut-short sequence) or encodes a NUL.
      [`${base}/selections/%ED%A0%80`, 'path'],
      [`${base}/checkpoints/%E0%A4%A?format=csv`, 'path'],
      [`${base}/checkpoints/1%00`, 'path'],
    ] as const) {
      const response = await fetch(url);
      assertRefused({ status: response.status, body: (await response.json()) as GraphQLResponse }, 'BAD_USER_INPUT', field);
    }
  });
});

describe('input hygiene over graphql-ws', () => {
  const defer = cleanupStack({ after });
  let t: TestServer;
  before(async () => {
    t = defer(await startTestServer(), (s) => s.close());
  });

  /** Runs one operation over graphql-ws and returns its errors (or its data). */
  async function overWs(query: string, variables?: Record<string, unknown>): Promise<GraphQLResponse> {
    const client = createClient({ url: t.url.replace('http', 'ws'), webSocketImpl: WebSocket, retryAttempts: 0, lazy: true });
    try {
      return await new Promise<GraphQLResponse>((resolve, reject) => {
        let result: GraphQLResponse = {};
        client.subscribe(
          { query, ...(variables ? { variables } : {}) },
          {
            next: (value) => (result = value as GraphQLResponse),
            error: (error) => (Array.isArray(error) ? resolve({ errors: error }) : reject(error)),
            complete: () => resolve(result),
          },
        );
      });
    } finally {
      await client.dispose();
    }
  }

  test('a NUL in a variable and a 2,000-level selection are refused with the same codes as on HTTP', async () => {
    const nul = await overWs(`query($s: String) { datasets(first: 5, filter: { nameContains: $s }) { totalCount } }`, { s: NUL });
    assert.deepEqual(codes(nul), ['BAD_USER_INPUT']);
    assert.equal(nul.errors![0]!.extensions?.field, 'filter.nameContains');
    const deep = await overWs(`{ ${'dataset(id: 1) { '.repeat(2000)}id${' }'.repeat(2000)} }`);
    assert.deepEqual(codes(deep), ['GRAPHQL_VALIDATION_FAILED']);
    assert.equal(deep.errors![0]!.extensions?.limit, 'maxNesting');
    const json = await overWs(`mutation($input: CreateModelInput!) { createModel(input: $input) { id } }`, {
      input: { name: 'm', format: 'BUILTIN', architecture: 'cnn1d', config: nestedArrays(500), inputLength: 8, numClasses: 2 },
    });
    assert.deepEqual(codes(json), ['BAD_USER_INPUT']);
    for (const answer of [nul, deep, json]) assert.doesNotMatch(JSON.stringify(answer), LEAKS);
    // Variables that do not coerce are the client's mistake here as on HTTP, never internal errors.
    const coercion = await overWs(`query($first: Int, $s: String) { datasets(first: $first, filter: { nameContains: $s }) { totalCount } serverInfo { version } }`, {
      first: 1e308,
      s: { not: 'a string' },
    });
    assert.ok(coercion.errors!.length >= 2, JSON.stringify(coercion));
    assert.deepEqual(new Set(codes(coercion)), new Set(['BAD_USER_INPUT']));
    const fine = await overWs(`query($s: String) { datasets(first: 5, filter: { nameContains: $s }) { totalCount } }`, { s: 'ok' });
    assert.deepEqual(fine, { data: { datasets: { totalCount: 0 } } });
    assert.deepEqual((await t.gql(`{ models { totalCount } }`)).models, { totalCount: 0 });
  });
});
