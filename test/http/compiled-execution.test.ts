import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { execute, parse, validate, type ExecutionResult, type GraphQLError } from 'graphql';
import { loadConfig } from '../../src/platform/config.js';
import { createContext } from '../../src/modules/context.js';
import { compiledExecution, runsCompiled } from '../../src/platform/http/compiled-execution.js';
import { buildSchema } from '../../src/modules/schema.js';
import { codes } from '../helpers/fixtures.js';
import { quietLog } from '../helpers/database.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { curationFixture } from '../schema/curation-fixture.js';

/**
 * Queries over HTTP run compiled (graphql-jit) where that is exact: these tests hold the compiled
 * path to graphql-js's answers on the same data (data, error messages, paths and codes), and check
 * that what graphql-jit would get wrong is routed to graphql-js.
 */
const schema = buildSchema();

/** Queries clients send with scalar variables: each must compile, and answer as graphql-js does. */
const COMPILED: { name: string; query: string; variables: (fx: Fixture) => Record<string, unknown> }[] = [
  {
    name: 'a ranked page as nodes, with nested samples and totalCount',
    query: `query($c: ID!) { checkpoint(id: $c) { id step learningRate rankedSamples(first: 50, orderBy: { term: K_NORM, direction: DESC }) {
      totalCount pageInfo { hasNextPage endCursor }
      nodes { sampleId index label className split score loss correct kNorm gNorm hTrace kCross sample { id index label split series } } } } }`,
    variables: (fx) => ({ c: fx.checkpoints[0]!.id }),
  },
  {
    name: 'edges with cursors, columns, aliases, a fragment and @include',
    query: `query Page($c: ID!, $after: String, $withColumns: Boolean!) { checkpoint(id: $c) {
      first: rankedSamples(first: 7, after: $after, orderBy: { term: LOSS }) { edges { cursor node { ...row } } }
      wide: rankedSamples(first: 30, orderBy: { term: G_NORM, direction: DESC }) @include(if: $withColumns) {
        columns { sampleIds indices labels splits scores values(term: H_TRACE) } } } }
      fragment row on RankedSample { sampleId label loss }`,
    variables: (fx) => ({ c: fx.checkpoints[1]!.id, after: null, withColumns: true }),
  },
  {
    name: 'a filter written inline (input-object literals, with their defaults)',
    query: `query($c: ID!) { checkpoint(id: $c) { rankedSamples(first: 100, orderBy: { term: G_NORM },
      filter: { labels: [1, 2], splits: ["train"], terms: [{ term: LOSS, max: 1.5 }] }) { totalCount nodes { sampleId label loss gNorm } } } }`,
    variables: (fx) => ({ c: fx.checkpoints[0]!.id }),
  },
  {
    name: 'statistics: quantiles, a histogram and per class',
    query: `query($c: ID!) { checkpoint(id: $c) { termStats(term: K_NORM) {
      term count mean stddev min max quantiles(at: [0.1, 0.5, 0.9]) { p value }
      histogram(bins: 5) { min max binWidth bins { lower upper count } below above }
      byClass { label className count mean quantiles { p value } } } } }`,
    variables: (fx) => ({ c: fx.checkpoints[0]!.id }),
  },
  {
    name: 'datasets, samples and runs with their checkpoints',
    query: `query($d: ID!) { dataset(id: $d) { id name length channels classNames sampleCount
      samples(first: 5) { totalCount nodes { id index label split series } pageInfo { hasNextPage endCursor } }
      runs { nodes { id name status config checkpoints { nodes { id step learningRate } } } } } }`,
    variables: (fx) => ({ d: fx.datasetId }),
  },
  {
    name: 'a missing checkpoint beside a present one given a bad cursor',
    query: `query($c: ID!) { missing: checkpoint(id: "987654321") { id rankedSamples(first: 1) { nodes { sampleId } } }
      present: checkpoint(id: $c) { rankedSamples(first: 1, after: "bm90LWEtY3Vyc29y") { nodes { sampleId } } } }`,
    variables: (fx) => ({ c: fx.checkpoints[0]!.id }),
  },
];

type Fixture = Awaited<ReturnType<typeof curationFixture>>;

/** What must agree between the two executions: data, and per error its message, path and code. */
function comparable(result: ExecutionResult) {
  return {
    data: JSON.parse(JSON.stringify(result.data ?? null)),
    errors: (result.errors ?? []).map((e: GraphQLError) => ({ message: e.message, path: e.path, code: e.extensions?.code ?? e.originalError?.constructor.name })),
  };
}

describe('queries run compiled, with the answers graphql-js gives', () => {
  let t: TestServer;
  let fx: Fixture;
  before(async () => {
    t = await startTestServer();
    fx = await curationFixture(t, { n: 120 });
  });
  after(() => t?.close());

  const services = () => ({ config: loadConfig({ LOG_LEVEL: 'silent' }), db: t.db, pubsub: null as never, log: quietLog });

  for (const c of COMPILED) {
    test(c.name, async () => {
      const document = parse(c.query);
      assert.deepEqual(validate(schema, document), [], 'a valid query');
      assert.ok(runsCompiled(schema, document), 'the query is one that compiles');
      const gateway = compiledExecution(schema);
      const { executor } = await gateway.load({ apollo: {} as never });
      const variables = c.variables(fx);
      const compiledRun = () =>
        executor!({ document, request: { query: c.query, variables }, context: createContext(services(), 'compiled') } as never) as Promise<ExecutionResult>;
      const compiled = await compiledRun();
      const again = await compiledRun(); // the second run reuses the compiled plan
      const reference = await execute({ schema, document, variableValues: variables, contextValue: createContext(services(), 'reference') });
      assert.deepEqual(comparable(compiled), comparable(reference));
      assert.deepEqual(comparable(again), comparable(reference));
      // And through the server, where Apollo formats what the executor returns.
      const overHttp = await t.request(c.query, variables);
      assert.deepEqual(JSON.parse(JSON.stringify(overHttp.data ?? null)), comparable(reference).data);
      assert.deepEqual(
        (overHttp.errors ?? []).map((e) => e.path),
        (reference.errors ?? []).map((e) => e.path),
      );
    });
  }

  test('errors keep their codes: a refused cursor is BAD_USER_INPUT beside a missing checkpoint (null); a bad variable is a 400', async () => {
    const res = await t.request<any>(COMPILED.at(-1)!.query, COMPILED.at(-1)!.variables(fx));
    assert.deepEqual(codes(res), ['BAD_USER_INPUT']);
    assert.deepEqual(res.errors!.map((e) => e.path), [['present', 'rankedSamples']]);
    assert.equal(res.data!.missing, null);
    for (const variables of [{}, { c: { id: 1 } }, { c: null }]) {
      const response = await fetch(t.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ query: `query($c: ID!) { checkpoint(id: $c) { id } }`, variables }),
      });
      assert.equal(response.status, 400, JSON.stringify(variables));
      const body = (await response.json()) as { errors: { extensions: { code: string } }[] };
      assert.deepEqual(codes(body), ['BAD_USER_INPUT']);
    }
  });

  test('what graphql-jit would get wrong runs through graphql-js, and is right', async () => {
    // Mutations are not compiled, nor are inline values of scalars whose parsed form is not JSON.
    assert.equal(runsCompiled(schema, parse(`mutation { deleteSelection(id: "1") { id } }`)), false);
    const created = await t.gql(`mutation($input: CreateDatasetInput!) { createDataset(input: $input) { channels } }`, {
      input: { name: 'defaults', length: 2, classNames: ['a'], samples: [{ index: 0, label: 0, series: [1, 2] }] },
    });
    assert.equal(created.createDataset.channels, 1);
    // Input-object variables: graphql-jit refuses a variable's value that leaves out a non-null field
    // with a default (as `createDataset` takes `channels: Int! = 1`), so they run through graphql-js,
    // which applies every default (here `orderBy.direction`).
    const query = `query($c: ID!, $filter: SampleTermFilter, $orderBy: SampleTermOrder) { checkpoint(id: $c) {
      rankedSamples(first: 5, filter: $filter, orderBy: $orderBy) { totalCount nodes { sampleId loss } } } }`;
    assert.equal(runsCompiled(schema, parse(query)), false);
    const res = await t.gql(query, { c: fx.checkpoints[0]!.id, filter: { splits: ['train'] }, orderBy: { term: 'LOSS' } });
    const losses = res.checkpoint.rankedSamples.nodes.map((n: { loss: number }) => n.loss);
    assert.deepEqual(losses, [...losses].sort((a, b) => b - a), 'the default direction (DESC) applied');
    // A scalar variable beside them still compiles.
    assert.equal(runsCompiled(schema, parse(`query($c: ID!, $n: Int) { checkpoint(id: $c) { rankedSamples(first: $n) { nodes { sampleId } } } }`)), true);
  });
});
