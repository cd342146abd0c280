import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { computeTerms, initBackend, kCross, loadModel } from '../../src/compute/index.js';
import { codes } from '../helpers/fixtures.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { followJob, importUcr, JOB_FIELDS, storeCnn, wsClient } from '../jobs/helpers.js';

/**
 * Curation queries on terms nobody recorded: the curation seam (ensureTerms) computes what a query
 * needs, inline for a few samples, as a job (TERMS_PENDING with its id) for many; kCross against a
 * target set is computed by jobs too.
 */
let t: TestServer;
let samples: Awaited<ReturnType<typeof importUcr>>['samples'];
let cnn: Awaited<ReturnType<typeof storeCnn>>;

before(async () => {
  t = await startTestServer({ env: { TANGENT_INLINE_MAX_SAMPLES: '32', TANGENT_CHUNK_SIZE: '32', TANGENT_QUEUE_POLL_SECONDS: '0.5' } });
  const imported = await importUcr(t, 'GunPoint');
  samples = imported.samples;
  cnn = await storeCnn(t, imported.dataset, { checkpoints: 2 });
});
after(() => t?.close());

const RANKED = /* GraphQL */ `
  query($c: ID!, $filter: SampleTermFilter, $orderBy: SampleTermOrder, $target: TargetSetInput) {
    checkpoint(id: $c) { rankedSamples(first: 1000, filter: $filter, orderBy: $orderBy, target: $target) { totalCount nodes { sampleId score kNorm kCross } } }
  }
`;

async function engineModel(k: number) {
  await initBackend('auto', () => undefined);
  const c = cnn.checkpoints[k]!;
  return loadModel({ architecture: 'cnn1d', config: cnn.config, weightSpecs: c.weightSpecs, weightData: c.weightData });
}

const seriesOf = (ids: string[]) => new Float32Array(ids.flatMap((id) => samples.find((s) => s.id === id)!.series));

function close(actual: number, expected: number, what: string) {
  assert.ok(Math.abs(actual - expected) <= 1e-4 * Math.max(1, Math.abs(expected)), `${what}: ${actual} vs ${expected}`);
}

async function follow(jobId: string) {
  const client = wsClient(t.url);
  try {
    return (await followJob(client, jobId)).at(-1)!;
  } finally {
    await client.dispose();
  }
}

describe('curation queries compute the terms they need', () => {
  test('a few samples: statistics and a ranking by kNorm computed inline, as the engine computes them', async () => {
    const ids = samples.filter((_, i) => i % 20 === 0).map((s) => s.id);
    const engine = await computeTerms(await engineModel(0), seriesOf(ids), ids.map((id) => samples.find((s) => s.id === id)!.label));
    const stats = await t.gql(`query($c: ID!, $filter: SampleTermFilter) { checkpoint(id: $c) { termStats(term: K_NORM, filter: $filter) { count min max mean } } }`, {
      c: cnn.checkpoints[0]!.id,
      filter: { sampleIds: ids },
    });
    const s = stats.checkpoint.termStats;
    assert.equal(s.count, ids.length);
    close(s.min, Math.min(...engine.kNorm), 'min kNorm');
    close(s.max, Math.max(...engine.kNorm), 'max kNorm');
    close(s.mean, engine.kNorm.reduce((a, b) => a + b, 0) / ids.length, 'mean kNorm');

    const res = await t.gql(RANKED, { c: cnn.checkpoints[0]!.id, filter: { sampleIds: ids }, orderBy: { term: 'K_NORM', direction: 'DESC' } });
    const expected = ids.map((id, i) => ({ id, kNorm: engine.kNorm[i]! })).sort((a, b) => b.kNorm - a.kNorm || Number(b.id) - Number(a.id));
    const nodes = res.checkpoint.rankedSamples.nodes as { sampleId: string; kNorm: number }[];
    assert.deepEqual(nodes.map((n) => n.sampleId), expected.map((e) => e.id));
    nodes.forEach((n, i) => close(n.kNorm, expected[i]!.kNorm, `kNorm of ${n.sampleId}`));
  });

  test('the whole dataset: TERMS_PENDING with the job computing them, then the ranking', async () => {
    const c = cnn.checkpoints[1]!.id;
    const pending = await t.request(RANKED, { c, orderBy: { term: 'K_TRACE', direction: 'ASC' } });
    assert.deepEqual(codes(pending), ['TERMS_PENDING']);
    const jobId = pending.errors![0]!.extensions!.jobId as string;
    const again = await t.request(RANKED, { c, orderBy: { term: 'K_TRACE', direction: 'ASC' } });
    if (codes(again).length) assert.equal(again.errors![0]!.extensions!.jobId, jobId, 'asking again joins the same job');
    assert.equal((await follow(jobId)).status, 'COMPLETED');
    const res = await t.gql(RANKED, { c, orderBy: { term: 'K_TRACE', direction: 'ASC' } });
    assert.equal(res.checkpoint.rankedSamples.totalCount, samples.length);
    const scores = res.checkpoint.rankedSamples.nodes.map((n: any) => n.score);
    assert.deepEqual(scores, [...scores].sort((a, b) => a - b));
  });

  test('kCross against a split, computed by a job, equals the engine', async () => {
    const c = cnn.checkpoints[0]!.id;
    const test_ = samples.filter((s) => s.split === 'test').slice(0, 40).map((s) => s.id);
    const { computeTerms: job } = await t.gql(`mutation($input: ComputeTermsInput!) { computeTerms(input: $input) { ${JOB_FIELDS} target { key split } terms } }`, {
      input: { checkpointId: c, terms: [], target: { split: 'train' }, sampleIds: test_ },
    });
    assert.deepEqual(job.target, { key: 'split:train', split: 'train' });
    assert.deepEqual(job.terms, []);
    assert.equal((await follow(job.id)).status, 'COMPLETED');

    const res = await t.gql(RANKED, { c, filter: { sampleIds: test_ }, orderBy: { term: 'K_CROSS', direction: 'DESC' }, target: { split: 'train' } });
    const nodes = res.checkpoint.rankedSamples.nodes as { sampleId: string; kCross: number }[];
    assert.equal(nodes.length, test_.length);
    const train = samples.filter((s) => s.split === 'train').map((s) => s.id);
    const engine = await kCross(await engineModel(0), seriesOf(test_), seriesOf(train));
    const byId = new Map(test_.map((id, i) => [id, engine.kCross[i]!]));
    for (const n of nodes) close(n.kCross, byId.get(n.sampleId)!, `kCross of ${n.sampleId}`);
  });
});
