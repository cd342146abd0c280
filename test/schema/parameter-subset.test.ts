import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { codes } from '../helpers/fixtures.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { curationFixture } from './curation-fixture.js';

/**
 * A `subset` argument is parsed once, where it enters (a resolver, an input parser, the /export
 * route): a malformed name is BAD_USER_INPUT with the same message wherever it is given, naming the
 * argument it came in, and nothing is read, computed or written for it. An explicit 'all' is the
 * default.
 */
let t: TestServer;
let fixture: Awaited<ReturnType<typeof curationFixture>>;

const MALFORMED = 'head; DROP TABLE sample';
const MESSAGE = 'A parameter subset is named by 1 to 100 letters, digits, _ . / or - (e.g. all or head); Model.parameterSubsets lists them';

before(async () => {
  t = await startTestServer();
  fixture = await curationFixture(t, { n: 20 });
});
after(() => t?.close());

describe('a malformed parameter subset', () => {
  test('is BAD_USER_INPUT naming the argument, on every GraphQL field that takes one', async () => {
    const c = fixture.checkpoints[0]!.id;
    const r = fixture.runId;
    const s = String(fixture.truth[0]!.sampleId);
    const cases: [string, string, Record<string, unknown>, string][] = [
      ['rankedSamples', `query($c: ID!, $k: String) { checkpoint(id: $c) { rankedSamples(first: 3, subset: $k) { nodes { sample { id } } } } }`, { c }, 'subset'],
      ['Checkpoint.termStats', `query($c: ID!, $k: String) { checkpoint(id: $c) { termStats(term: K_NORM, subset: $k) { count } } }`, { c }, 'subset'],
      ['Run.termStats', `query($r: ID!, $k: String) { run(id: $r) { termStats(term: K_NORM, subset: $k) { count } } }`, { r }, 'subset'],
      ['exportUrl', `query($c: ID!, $k: String) { checkpoint(id: $c) { exportUrl(subset: $k) } }`, { c }, 'subset'],
      ['sampleTerms', `query($c: ID!, $s: ID!, $k: String) { checkpoint(id: $c) { sampleTerms(sampleIds: [$s], terms: [K_NORM], subset: $k) { kNorm } } }`, { c, s }, 'subset'],
      ['firstOrder', `query($c: ID!, $s: ID!, $k: String) { checkpoint(id: $c) { firstOrder(observedId: $s, updatedId: $s, subset: $k) { K } } }`, { c, s }, 'subset'],
      ['previewSelection', `query($c: ID!, $k: String) { previewSelection(strategy: { checkpointIds: [$c], method: TOP_K, k: 3, subset: $k }) { count } }`, { c }, 'strategy.subset'],
      ['computeTerms', `mutation($c: ID!, $k: String) { computeTerms(input: { checkpointId: $c, terms: [K_NORM], subset: $k }) { id } }`, { c }, 'input.subset'],
      [
        'recordKCross',
        `mutation($c: ID!, $s: ID!, $k: String) { recordKCross(checkpointId: $c, target: { split: "validation" }, values: [{ sampleId: $s, kCross: 1 }], subset: $k) { written } }`,
        { c, s },
        'subset',
      ],
    ];
    for (const [name, query, variables, field] of cases) {
      const response = await t.request(query, { ...variables, k: MALFORMED });
      assert.deepEqual(codes(response), ['BAD_USER_INPUT'], `${name}: ${JSON.stringify(response.errors)}`);
      assert.equal(response.errors![0]!.message, MESSAGE, name);
      assert.equal(response.errors![0]!.extensions!.field, field, name);
    }
    const { checkpoint } = await t.gql(`query($c: ID!) { checkpoint(id: $c) { jobs { totalCount } } }`, { c });
    assert.equal(checkpoint.jobs.totalCount, 0, 'no job was made for a malformed subset');
  });

  test('is BAD_USER_INPUT naming q.subset on the /export route (400)', async () => {
    const c = fixture.checkpoints[0]!.id;
    const q = Buffer.from(JSON.stringify({ subset: MALFORMED })).toString('base64url');
    const response = await fetch(new URL(`/export/checkpoints/${c}?format=jsonl&q=${q}`, t.url));
    assert.equal(response.status, 400);
    const body = (await response.json()) as { errors: { message: string; extensions: Record<string, unknown> }[] };
    assert.equal(body.errors[0]!.extensions.code, 'BAD_USER_INPUT');
    assert.equal(body.errors[0]!.message, MESSAGE);
    assert.equal(body.errors[0]!.extensions.field, 'q.subset');
  });

  test('names outside the syntax are refused, the longest and odd-but-valid ones are not', async () => {
    const c = fixture.checkpoints[0]!.id;
    const ranked = `query($c: ID!, $k: String) { checkpoint(id: $c) { rankedSamples(first: 3, subset: $k) { nodes { sample { id } } } } }`;
    for (const bad of ['', '-head', '.head', 'a'.repeat(101), 'head:1', 'héad']) {
      const response = await t.request(ranked, { c, k: bad });
      assert.deepEqual(codes(response), ['BAD_USER_INPUT'], JSON.stringify(bad));
      assert.equal(response.errors![0]!.message, MESSAGE);
    }
    // Well formed: past the parser; over a model without them they are simply not there to rank by.
    for (const good of ['a'.repeat(100), '_x', 'blocks.0/attn-q']) {
      const response = await t.request(ranked, { c, k: good });
      assert.notEqual(response.errors?.[0]?.message, MESSAGE, JSON.stringify(good));
    }
  });
});

describe("an explicit 'all'", () => {
  test('is the default subset', async () => {
    const c = fixture.checkpoints[0]!.id;
    const ranked = `query($c: ID!, $k: String) { checkpoint(id: $c) { rankedSamples(first: 5, subset: $k) { nodes { sample { id } kNorm } } } }`;
    const implicit = await t.gql(`query($c: ID!) { checkpoint(id: $c) { rankedSamples(first: 5) { nodes { sample { id } kNorm } } } }`, { c });
    const explicit = await t.gql(ranked, { c, k: 'all' });
    assert.equal(implicit.checkpoint.rankedSamples.nodes.length, 5);
    assert.deepEqual(explicit, implicit);
  });
});
