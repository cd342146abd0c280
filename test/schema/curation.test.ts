import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { codes } from '../helpers/fixtures.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { bruteOrder, CLASS_NAMES, curationFixture, f32, recordKCross, recordMetrics, type TruthSample, type TruthValues } from './curation-fixture.js';

let t: TestServer;
let fx: Awaited<ReturnType<typeof curationFixture>>;
/** kCross against the validation split at the first checkpoint, for every train sample. */
const kCrossVal = new Map<number, number>();

before(async () => {
  t = await startTestServer();
  fx = await curationFixture(t);
  for (const s of fx.truth) if (s.split === 'train') kCrossVal.set(s.sampleId, Math.round(((s.sampleId * 7919) % 1000) / 7) / 10);
  await recordKCross(t, fx.checkpoints[0]!.id, { split: 'validation' }, kCrossVal);
});
after(() => t?.close());

const RANKED = /* GraphQL */ `
  query($c: ID!, $first: Int, $after: String, $filter: SampleTermFilter, $orderBy: SampleTermOrder, $target: TargetSetInput) {
    checkpoint(id: $c) {
      rankedSamples(first: $first, after: $after, filter: $filter, orderBy: $orderBy, target: $target) {
        totalCount
        pageInfo { hasNextPage endCursor }
        edges { cursor node { sampleId index label className split score loss correct kNorm gNorm hTrace kCross sample { id index } } }
      }
    }
  }
`;

/** Every page of a ranked query, following cursors; checks the page invariants on the way. */
async function allPages(vars: Record<string, unknown>, first: number) {
  const nodes: any[] = [];
  let after: string | null = null;
  let totalCount = -1;
  for (let pages = 0; pages < 1000; pages++) {
    const data: any = await t.gql(RANKED, { ...vars, first, after });
    const conn = data.checkpoint.rankedSamples;
    totalCount = conn.totalCount;
    assert.ok(conn.edges.length <= first);
    if (conn.pageInfo.hasNextPage) assert.equal(conn.edges.length, first, 'a page before the last is full');
    if (conn.edges.length) assert.equal(conn.pageInfo.endCursor, conn.edges.at(-1).cursor);
    nodes.push(...conn.edges.map((e: any) => e.node));
    if (!conn.pageInfo.hasNextPage) return { nodes, totalCount };
    after = conn.pageInfo.endCursor;
  }
  throw new Error('too many pages');
}

type Row = TruthSample & { v: { loss: number; correct: boolean; kNorm: number; gNorm: number; hTrace: number }; kCross?: number };

function rowsAt(values: TruthValues): Row[] {
  return fx.truth.map((s) => ({ ...s, v: values.get(s.sampleId)!, kCross: kCrossVal.get(s.sampleId) }));
}

describe('curation queries: rank and filter', () => {
  test('top by kNorm over every page equals a brute-force sort (ties by sample id), with totalCount', async () => {
    const c = fx.checkpoints[0]!;
    const { nodes, totalCount } = await allPages({ c: c.id, orderBy: { term: 'K_NORM', direction: 'DESC' } }, 37);
    const expected = bruteOrder(rowsAt(c.values), (r) => f32(r.v.kNorm), 'DESC');
    assert.equal(totalCount, fx.truth.length);
    assert.deepEqual(nodes.map((n) => Number(n.sampleId)), expected.map((r) => r.sampleId));
    const ties = expected.filter((r, i) => i > 0 && f32(r.v.kNorm) === f32(expected[i - 1]!.v.kNorm)).length;
    assert.ok(ties > 50, 'the data has many ties, so tie-breaking is exercised');
    const first = nodes[0];
    const truth = expected[0]!;
    // float32 values come back in their shortest decimal form, so compare them in float32.
    assert.equal(f32(first.score), f32(truth.v.kNorm));
    assert.equal(f32(first.kNorm), f32(truth.v.kNorm));
    assert.equal(f32(first.loss), f32(truth.v.loss));
    assert.equal(first.correct, truth.v.correct);
    assert.equal(first.index, truth.index);
    assert.equal(first.className, CLASS_NAMES[truth.label]);
    assert.equal(first.sample.id, String(truth.sampleId));
    assert.equal(first.kCross, null, 'no target, no kCross');
  });

  test('a page as columns holds the same samples and values as its nodes, in rank order', async () => {
    const c = fx.checkpoints[0]!;
    const { checkpoint } = await t.gql(
      `query($c: ID!) { checkpoint(id: $c) { rankedSamples(first: 40, orderBy: { term: K_NORM, direction: DESC }) {
         nodes { sampleId index label split score loss gNorm }
         columns { sampleIds indices labels splits scores loss: values(term: LOSS) gNorm: values(term: G_NORM) } } } }`,
      { c: c.id },
    );
    const { nodes, columns } = checkpoint.rankedSamples;
    assert.equal(nodes.length, 40);
    assert.deepEqual(columns.sampleIds, nodes.map((n: any) => Number(n.sampleId)));
    assert.deepEqual(columns.indices, nodes.map((n: any) => n.index));
    assert.deepEqual(columns.labels, nodes.map((n: any) => n.label));
    assert.deepEqual(columns.splits, nodes.map((n: any) => n.split));
    assert.deepEqual(columns.scores, nodes.map((n: any) => n.score));
    assert.deepEqual(columns.loss, nodes.map((n: any) => n.loss));
    assert.deepEqual(columns.gNorm, nodes.map((n: any) => n.gNorm));
    const expected = bruteOrder(rowsAt(c.values), (r) => f32(r.v.kNorm), 'DESC').slice(0, 40);
    assert.deepEqual(columns.sampleIds, expected.map((r) => r.sampleId));
  });

  test('filters on terms, labels, splits and correctness, ascending by loss, match brute force', async () => {
    const c = fx.checkpoints[1]!;
    const filter = { terms: [{ term: 'K_NORM', min: 1, max: 3.5 }, { term: 'G_NORM', max: 0.8 }], labels: [0, 2], splits: ['train'], correct: true };
    const { nodes, totalCount } = await allPages({ c: c.id, filter, orderBy: { term: 'LOSS', direction: 'ASC' } }, 11);
    const expected = bruteOrder(
      rowsAt(c.values).filter(
        (r) =>
          f32(r.v.kNorm) >= f32(1) && f32(r.v.kNorm) <= f32(3.5) && f32(r.v.gNorm) <= f32(0.8) && [0, 2].includes(r.label) && r.split === 'train' && r.v.correct,
      ),
      (r) => f32(r.v.loss),
      'ASC',
    );
    assert.ok(expected.length > 15);
    assert.equal(totalCount, expected.length);
    assert.deepEqual(nodes.map((n) => Number(n.sampleId)), expected.map((r) => r.sampleId));
    assert.deepEqual(nodes.map((n) => f32(n.score)), expected.map((r) => f32(r.v.loss)));
  });

  test('kCross against a split: ranking, a filter on it, and sample ids', async () => {
    const c = fx.checkpoints[0]!;
    const target = { split: 'validation' };
    const { nodes } = await allPages({ c: c.id, target, filter: { splits: ['train'] }, orderBy: { term: 'K_CROSS' } }, 50);
    const train = rowsAt(c.values).filter((r) => r.split === 'train');
    assert.deepEqual(nodes.map((n) => Number(n.sampleId)), bruteOrder(train, (r) => f32(r.kCross!), 'DESC').map((r) => r.sampleId));
    assert.deepEqual(nodes.slice(0, 5).map((n) => f32(n.kCross)), bruteOrder(train, (r) => f32(r.kCross!), 'DESC').slice(0, 5).map((r) => f32(r.kCross!)));

    const some = train.filter((_, i) => i % 3 === 0).map((r) => r.sampleId);
    const filtered = await allPages(
      { c: c.id, target, filter: { sampleIds: some.map(String), terms: [{ term: 'K_CROSS', min: 2 }] }, orderBy: { term: 'K_NORM', direction: 'ASC' } },
      1000,
    );
    const expected = bruteOrder(train.filter((r) => some.includes(r.sampleId) && f32(r.kCross!) >= 2), (r) => f32(r.v.kNorm), 'ASC');
    assert.deepEqual(filtered.nodes.map((n) => Number(n.sampleId)), expected.map((r) => r.sampleId));
  });

  test('a missing term is never read as zero: TERMS_MISSING says how many samples lack it', async () => {
    const c = fx.checkpoints[0]!;
    // kCross exists for train samples only: asking about every sample names the validation ones.
    const all = await t.request(RANKED, { c: c.id, first: 5, target: { split: 'validation' }, orderBy: { term: 'K_CROSS' } });
    assert.deepEqual(codes(all), ['TERMS_MISSING']);
    const validation = fx.truth.filter((s) => s.split === 'validation').length;
    assert.deepEqual(all.errors![0]!.extensions!.missing, [{ term: 'kCross(split:validation)', count: validation }]);
    assert.match(all.errors![0]!.message, new RegExp(`^${validation} samples lack kCross\\(split:validation\\) at checkpoint ${c.id}`));
    // H_MIN_EIG was never recorded.
    const never = await t.request(RANKED, { c: c.id, first: 5, orderBy: { term: 'H_MIN_EIG' } });
    assert.deepEqual(codes(never), ['TERMS_MISSING']);
    assert.equal(never.errors![0]!.extensions!.missing[0].count, fx.truth.length);
    // A sample added after the metrics were recorded lacks them (a fixture of its own: this one stays complete).
    const small = await curationFixture(t, { n: 12, seed: 3 });
    const sc = small.checkpoints[0]!;
    await t.gql(`mutation($d: ID!, $s: [SampleInput!]!) { addSamples(datasetId: $d, samples: $s) { added } }`, {
      d: small.datasetId,
      s: [{ index: 100000, label: 1, split: 'test', series: [0, 0, 0, 0] }],
    });
    const late = await t.request(RANKED, { c: sc.id, first: 5 });
    assert.deepEqual(codes(late), ['TERMS_MISSING']);
    assert.deepEqual(late.errors![0]!.extensions!.missing, [{ term: 'kNorm', count: 1 }]);
    assert.match(late.errors![0]!.message, /^1 sample lacks kNorm at checkpoint/);
    // Scoped to the samples that have it, the query answers; a filter on a term counts as reading it.
    const scoped = await t.gql(RANKED, { c: sc.id, first: 3, filter: { splits: ['train', 'validation'] } });
    assert.equal(scoped.checkpoint.rankedSamples.edges.length, 3);
    const byFilter = await t.request(RANKED, { c: sc.id, first: 3, filter: { splits: ['train'], terms: [{ term: 'K_TRACE', min: 0 }] } });
    assert.deepEqual(byFilter.errors![0]!.extensions!.missing, [{ term: 'kTrace', count: small.truth.filter((s) => s.split === 'train').length }]);
    const noTarget = await t.request(RANKED, { c: c.id, first: 3, filter: { splits: ['train'] }, orderBy: { term: 'K_CROSS' } });
    assert.deepEqual(codes(noTarget), ['BAD_USER_INPUT']);
  });

  test('cursors are bound to their query; bad arguments are refused with their field', async () => {
    const c = fx.checkpoints[0]!;
    const page = await t.gql(RANKED, { c: c.id, first: 2, filter: { splits: ['train'] } });
    const cursor = page.checkpoint.rankedSamples.pageInfo.endCursor;
    const other = await t.request(RANKED, { c: c.id, first: 2, after: cursor, filter: { splits: ['train'] }, orderBy: { term: 'LOSS' } });
    assert.deepEqual(codes(other), ['BAD_USER_INPUT']);
    const badRange = await t.request(RANKED, { c: c.id, first: 2, filter: { terms: [{ term: 'LOSS', min: 2, max: 1 }] } });
    assert.deepEqual(codes(badRange), ['BAD_USER_INPUT']);
    assert.equal(badRange.errors![0]!.extensions!.field, 'filter.terms.0.min');
    const badTarget = await t.request(RANKED, { c: c.id, first: 2, target: { split: 'x', selectionId: '1' } });
    assert.deepEqual(codes(badTarget), ['BAD_USER_INPUT']);
    const unknown = await t.request(`query { checkpoint(id: "99999") { id } }`);
    assert.equal(unknown.data!.checkpoint, null);
  });
});

describe('rankedSamples read ahead by Query.checkpoint', () => {
  // Query.checkpoint starts the page of a rankedSamples selected directly under it before it has
  // looked the checkpoint up; through a fragment it does not (the field resolves as it always did).
  // Every answer must be the same either way: the checks decide, never the page read ahead.
  const FIELDS = /* GraphQL */ `totalCount pageInfo { hasNextPage endCursor } nodes { sampleId kNorm loss kCross score }`;
  const ARGS = `first: $first, after: $after, filter: $filter, orderBy: $orderBy, target: $target, subset: $subset`;
  const VARS = `$c: ID!, $first: Int, $after: String, $filter: SampleTermFilter, $orderBy: SampleTermOrder, $target: TargetSetInput, $subset: String = "all"`;
  const DIRECT = `query(${VARS}) { checkpoint(id: $c) { id rankedSamples(${ARGS}) { ${FIELDS} } } }`;
  const BY_FRAGMENT = `query(${VARS}) { checkpoint(id: $c) { id ...R } } fragment R on Checkpoint { rankedSamples(${ARGS}) { ${FIELDS} } }`;

  /** The answer without `path`/`locations` details that differ between the two documents. */
  const answer = (r: { data?: unknown; errors?: { message: string; extensions?: Record<string, unknown> }[] }) => ({
    data: r.data ?? null,
    errors: (r.errors ?? []).map((e) => ({ message: e.message, code: e.extensions?.code, field: e.extensions?.field, missing: e.extensions?.missing })),
  });

  test('every answer, errors included, is the one the field gives when nothing is read ahead', async () => {
    const c = fx.checkpoints[0]!;
    const first = await t.gql(DIRECT, { c: c.id, first: 3 });
    const cases: [string, Record<string, unknown>][] = [
      ['a page', { c: c.id, first: 7 }],
      ['the next page, through its cursor', { c: c.id, first: 7, after: first.checkpoint.rankedSamples.pageInfo.endCursor }],
      ['a filtered page ascending by loss', { c: c.id, first: 5, filter: { splits: ['train'], labels: [1] }, orderBy: { term: 'LOSS', direction: 'ASC' } }],
      ['kCross against a split, scoped to the samples that have it', { c: c.id, first: 4, filter: { splits: ['train'] }, target: { split: 'validation' }, orderBy: { term: 'K_CROSS' } }],
      ['first: 0', { c: c.id, first: 0 }],
      ['a missing checkpoint', { c: '99999', first: 5 }],
      ['a missing checkpoint with refused arguments', { c: '99999', first: -1, subset: '' }],
      ['a term never recorded (TERMS_MISSING)', { c: c.id, first: 5, orderBy: { term: 'H_MIN_EIG' } }],
      ['kCross lacking for some samples in scope (TERMS_MISSING)', { c: c.id, first: 5, target: { split: 'validation' }, orderBy: { term: 'K_CROSS' } }],
      ['kCross without a target (BAD_USER_INPUT)', { c: c.id, first: 3, orderBy: { term: 'K_CROSS' } }],
      ['a subset the model does not have', { c: c.id, first: 3, subset: 'no-such-subset' }],
      ['a malformed subset name', { c: c.id, first: 3, subset: '' }],
      ['a cursor of another query', { c: c.id, first: 3, after: first.checkpoint.rankedSamples.pageInfo.endCursor, orderBy: { term: 'LOSS' } }],
      ['a negative first', { c: c.id, first: -2 }],
      ['a saved selection that does not exist as target', { c: c.id, first: 3, target: { selectionId: '99999' }, orderBy: { term: 'K_CROSS' } }],
    ];
    for (const [what, vars] of cases) {
      const direct = answer(await t.request(DIRECT, vars));
      const byFragment = answer(await t.request(BY_FRAGMENT, vars));
      assert.deepEqual(direct, byFragment, what);
    }
    // The cases above do reach each outcome they are named for.
    assert.equal((await t.request(DIRECT, { c: '99999', first: 5 })).data!.checkpoint, null);
    assert.deepEqual(codes(await t.request(DIRECT, { c: c.id, first: 5, orderBy: { term: 'H_MIN_EIG' } })), ['TERMS_MISSING']);
    assert.equal(codes(await t.request(DIRECT, { c: c.id, first: 3, subset: 'no-such-subset' })).length, 1);
  });

  test('aliases with different arguments each get their own page; a repeated one reads the same page', async () => {
    const c = fx.checkpoints[0]!;
    const data = await t.gql(
      `query($c: ID!) { checkpoint(id: $c) {
        byK: rankedSamples(first: 6) { nodes { sampleId kNorm } }
        byLoss: rankedSamples(first: 6, orderBy: { term: LOSS, direction: ASC }) { nodes { sampleId loss } }
        again: rankedSamples(first: 6) { nodes { sampleId kNorm } }
        skipped: rankedSamples(first: 2) @skip(if: true) { nodes { sampleId } }
      } }`,
      { c: c.id },
    );
    const alone = async (orderBy: unknown) => (await t.gql(DIRECT, { c: c.id, first: 6, orderBy })).checkpoint.rankedSamples.nodes;
    assert.deepEqual(data.checkpoint.byK.nodes.map((n: any) => n.sampleId), (await alone({ term: 'K_NORM', direction: 'DESC' })).map((n: any) => n.sampleId));
    assert.deepEqual(data.checkpoint.byLoss.nodes.map((n: any) => n.sampleId), (await alone({ term: 'LOSS', direction: 'ASC' })).map((n: any) => n.sampleId));
    assert.deepEqual(data.checkpoint.again, data.checkpoint.byK);
    assert.equal(data.checkpoint.skipped, undefined);
  });
});

const STATS = /* GraphQL */ `
  query($c: ID!, $term: ScalarTerm!, $filter: SampleTermFilter, $target: TargetSetInput, $at: [Float!]!, $bins: Int!, $min: Float, $max: Float) {
    checkpoint(id: $c) {
      termStats(term: $term, filter: $filter, target: $target) {
        term label count mean stddev min max
        quantiles(at: $at) { p value }
        histogram(bins: $bins, min: $min, max: $max) { min max binWidth below above bins { lower upper count } }
        byClass { label className count mean quantiles(at: $at) { p value } histogram(bins: $bins, min: $min, max: $max) { bins { count } } }
      }
    }
  }
`;

function quantile(sorted: number[], p: number): number {
  const pos = p * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

function close(actual: number, expected: number, what: string) {
  assert.ok(Math.abs(actual - expected) <= 1e-9 * Math.max(1, Math.abs(expected)), `${what}: ${actual} vs ${expected}`);
}

describe('curation queries: statistics', () => {
  test('count, mean, quantiles and a histogram of a term, overall and per class, match brute force', async () => {
    const c = fx.checkpoints[0]!;
    const at = [0, 0.1, 0.5, 0.9, 1];
    const data = await t.gql(STATS, { c: c.id, term: 'K_NORM', filter: { splits: ['train'] }, at, bins: 5, min: 0, max: 5 });
    const stats = data.checkpoint.termStats;
    const groups = [null, 0, 1, 2].map((label) =>
      rowsAt(c.values)
        .filter((r) => r.split === 'train' && (label === null || r.label === label))
        .map((r) => f32(r.v.kNorm))
        .sort((a, b) => a - b),
    );
    const check = (s: any, values: number[], what: string) => {
      assert.equal(s.count, values.length, what);
      close(s.mean, values.reduce((a, b) => a + b, 0) / values.length, `${what} mean`);
      for (const q of s.quantiles) close(q.value, quantile(values, q.p), `${what} q${q.p}`);
      const counts = [0, 0, 0, 0, 0];
      for (const v of values) counts[Math.min(4, Math.floor(5 * ((v - 0) / (5 - 0))))]! += 1;
      assert.deepEqual(s.histogram.bins.map((b: any) => b.count), counts, `${what} histogram`);
    };
    check(stats, groups[0]!, 'all');
    assert.equal(stats.min, groups[0]![0]);
    assert.equal(stats.max, groups[0]!.at(-1));
    const mean = groups[0]!.reduce((a, b) => a + b, 0) / groups[0]!.length;
    close(stats.stddev, Math.sqrt(groups[0]!.reduce((a, v) => a + (v - mean) ** 2, 0) / (groups[0]!.length - 1)), 'stddev');
    assert.deepEqual(stats.histogram.bins[0], { lower: 0, upper: 1, count: stats.histogram.bins[0].count });
    assert.equal(stats.histogram.binWidth, 1);
    assert.deepEqual(stats.byClass.map((s: any) => s.className), CLASS_NAMES);
    for (const [label, s] of stats.byClass.entries()) check(s, groups[label + 1]!, `class ${label}`);
  });

  test('default histogram range covers every value; empty scope gives zeros and nulls', async () => {
    const c = fx.checkpoints[1]!;
    const data = await t.gql(STATS, { c: c.id, term: 'LOSS', at: [0.5], bins: 7 });
    const h = data.checkpoint.termStats.histogram;
    assert.equal(h.bins.reduce((a: number, b: any) => a + b.count, 0), data.checkpoint.termStats.count);
    assert.equal(h.below + h.above, 0);
    assert.equal(h.min, data.checkpoint.termStats.min === null ? null : h.min);
    const empty = await t.gql(STATS, { c: c.id, term: 'LOSS', at: [0.5], bins: 3, filter: { terms: [{ term: 'LOSS', min: 100 }] } });
    assert.equal(empty.checkpoint.termStats.count, 0);
    assert.equal(empty.checkpoint.termStats.mean, null);
    assert.deepEqual(empty.checkpoint.termStats.quantiles, [{ p: 0.5, value: null }]);
    assert.deepEqual(empty.checkpoint.termStats.histogram.bins, []);
    const bad = await t.request(STATS, { c: c.id, term: 'LOSS', at: [1.5], bins: 3 });
    assert.deepEqual(codes(bad), ['BAD_USER_INPUT']);
  });

  test("across a run's checkpoints: one entry per checkpoint in step order, bins shared", async () => {
    const data = await t.gql(
      `query($r: ID!) { run(id: $r) { termStats(term: G_NORM) { checkpoint { id step } count mean histogram(bins: 4) { min max bins { count } } } } }`,
      { r: fx.runId },
    );
    const series = data.run.termStats;
    assert.deepEqual(series.map((s: any) => s.checkpoint.id), fx.checkpoints.map((c) => c.id));
    const all = fx.checkpoints.flatMap((c) => [...c.values.values()].map((v) => f32(v.gNorm)));
    for (const [i, s] of series.entries()) {
      const values = [...fx.checkpoints[i]!.values.values()].map((v) => f32(v.gNorm));
      assert.equal(s.count, values.length);
      close(s.mean, values.reduce((a, b) => a + b, 0) / values.length, 'mean');
      assert.equal(s.histogram.min, Math.min(...all));
      assert.equal(s.histogram.max, Math.max(...all));
    }
  });
});

describe('selections', () => {
  const CREATE = /* GraphQL */ `
    mutation($input: CreateSelectionInput!) {
      createSelection(input: $input) {
        id name method term direction checkpointIds weights weighting k fraction threshold sampleCount poolSize softwareVersion strategy
        target { key split selection { id } }
        classCounts { label className count }
        provenance { checkpointId term producers { producer { kind backend version } count } }
        checkpoints { id }
        exportUrl(format: CSV)
      }
    }
  `;
  const PREVIEW = `query($s: SelectionStrategyInput!) { previewSelection(strategy: $s) { count poolSize minScore maxScore classCounts { label className count } } }`;

  async function selected(id: string) {
    const out: any[] = [];
    let after: string | null = null;
    for (;;) {
      const data: any = await t.gql(
        `query($id: ID!, $after: String) { selection(id: $id) { samples(first: 40, after: $after) { totalCount pageInfo { hasNextPage endCursor } nodes { rank score sampleId label className } } } }`,
        { id, after },
      );
      out.push(...data.selection.samples.nodes);
      if (!data.selection.samples.pageInfo.hasNextPage) return out;
      after = data.selection.samples.pageInfo.endCursor;
    }
  }

  let n = 0;
  const create = async (strategy: Record<string, unknown>) => (await t.gql(CREATE, { input: { name: `sel-${++n}`, strategy } })).createSelection;

  test('top-k by kNorm: saved with everything needed to reproduce it, and it reproduces exactly', async () => {
    const c = fx.checkpoints[0]!;
    const strategy = { checkpointIds: [c.id], term: 'K_NORM', method: 'TOP_K', k: 25, filter: { splits: ['train'] } };
    const preview = (await t.gql(PREVIEW, { s: strategy })).previewSelection;
    const sel = await create(strategy);
    const train = rowsAt(c.values).filter((r) => r.split === 'train');
    const expected = bruteOrder(train, (r) => f32(r.v.kNorm), 'DESC').slice(0, 25);
    const rows = await selected(sel.id);
    assert.deepEqual(rows.map((r) => Number(r.sampleId)), expected.map((r) => r.sampleId));
    assert.deepEqual(rows.map((r) => r.rank), expected.map((_, i) => i + 1));
    assert.deepEqual(rows.map((r) => r.score), expected.map((r) => f32(r.v.kNorm)));
    assert.equal(sel.sampleCount, 25);
    assert.equal(sel.poolSize, train.length);
    assert.equal(sel.method, 'TOP_K');
    assert.deepEqual(sel.weights, [1]);
    assert.equal(sel.weighting, 'EQUAL');
    assert.equal(sel.k, 25);
    assert.equal(sel.fraction, null);
    assert.deepEqual(sel.checkpoints, [{ id: c.id }]);
    assert.equal(sel.target, null);
    assert.match(sel.softwareVersion, /^\d+\.\d+\.\d+/);
    assert.deepEqual(sel.provenance, [{ checkpointId: c.id, term: 'K_NORM', producers: [{ producer: { kind: 'CLIENT', backend: null, version: null }, count: train.length }] }]);
    const perClass = CLASS_NAMES.map((className, label) => ({ label, className, count: expected.filter((r) => r.label === label).length }));
    assert.deepEqual(sel.classCounts, perClass);
    assert.deepEqual(preview, { count: 25, poolSize: train.length, minScore: f32(expected.at(-1)!.v.kNorm), maxScore: f32(expected[0]!.v.kNorm), classCounts: perClass });
    assert.equal(sel.exportUrl, `/export/selections/${sel.id}?format=csv`);

    const again = await create(strategy);
    assert.deepEqual(await selected(again.id), rows, 'the same strategy on the same data selects the same samples, ranks and scores');
    const verify = await t.gql(`query($id: ID!) { selection(id: $id) { verify { reproduces count missing extra moved problem } } }`, { id: sel.id });
    assert.deepEqual(verify.selection.verify, { reproduces: true, count: 25, missing: 0, extra: 0, moved: 0, problem: null });
  });

  test('a weighted combination across checkpoints (LESS: by learning rate) matches brute force', async () => {
    const [c1, c2] = fx.checkpoints as [any, any];
    const sel = await create({ checkpointIds: [c1.id, c2.id], term: 'K_NORM', method: 'TOP_FRACTION', fraction: 0.1, weighting: 'LEARNING_RATE' });
    const w1 = c1.learningRate / (c1.learningRate + c2.learningRate);
    const w2 = c2.learningRate / (c1.learningRate + c2.learningRate);
    assert.deepEqual(sel.weights, [w1, w2]);
    assert.equal(sel.weighting, 'LEARNING_RATE');
    const scored = fx.truth.map((s) => ({ ...s, score: w1 * f32(c1.values.get(s.sampleId).kNorm) + w2 * f32(c2.values.get(s.sampleId).kNorm) }));
    const k = Math.ceil(0.1 * fx.truth.length);
    const expected = bruteOrder(scored, (r) => r.score, 'DESC').slice(0, k);
    const rows = await selected(sel.id);
    assert.deepEqual(rows.map((r) => Number(r.sampleId)), expected.map((r) => r.sampleId));
    assert.deepEqual(rows.map((r) => r.score), expected.map((r) => r.score));
    assert.equal(sel.provenance.length, 2);

    const custom = await create({ checkpointIds: [c1.id, c2.id], method: 'THRESHOLD', threshold: 3, weights: [3, 1], direction: 'DESC' });
    assert.deepEqual(custom.weights, [0.75, 0.25]);
    assert.equal(custom.weighting, 'CUSTOM');
    const expectedCustom = bruteOrder(
      fx.truth.map((s) => ({ ...s, score: 0.75 * f32(c1.values.get(s.sampleId).kNorm) + 0.25 * f32(c2.values.get(s.sampleId).kNorm) })).filter((r) => r.score >= 3),
      (r) => r.score,
      'DESC',
    );
    assert.deepEqual((await selected(custom.id)).map((r) => Number(r.sampleId)), expectedCustom.map((r) => r.sampleId));
  });

  test('per-class balanced top-k and stratified selections take the right number of each class, the best of each', async () => {
    const c = fx.checkpoints[1]!;
    const train = rowsAt(c.values).filter((r) => r.split === 'train');
    const sizes = [0, 1, 2].map((label) => train.filter((r) => r.label === label).length);
    const small = Math.min(...sizes);
    // k large enough that the smallest class cannot fill its equal share.
    const k = small * 3 + 12;
    const balanced = await create({ checkpointIds: [c.id], term: 'LOSS', direction: 'ASC', method: 'BALANCED_TOP_K', k, filter: { splits: ['train'] } });
    // Independent computation of "as equal as possible": the largest level L with Σ min(n_c, L) ≤ k, the rest one each by label.
    let level = 0;
    while ([0, 1, 2].reduce((a, l) => a + Math.min(sizes[l]!, level + 1), 0) <= k) level++;
    const quota = sizes.map((n) => Math.min(n, level));
    let left = k - quota.reduce((a, b) => a + b, 0);
    for (let l = 0; l < 3 && left > 0; l++) {
      if (sizes[l]! > quota[l]!) {
        quota[l]! += 1;
        left--;
      }
    }
    assert.deepEqual(balanced.classCounts.map((c: any) => c.count), quota);
    assert.equal(balanced.sampleCount, k);
    const rows = await selected(balanced.id);
    for (const label of [0, 1, 2]) {
      const best = bruteOrder(train.filter((r) => r.label === label), (r) => f32(r.v.loss), 'ASC').slice(0, quota[label]);
      assert.deepEqual(
        rows.filter((r) => r.label === label).map((r) => Number(r.sampleId)).sort((a, b) => a - b),
        best.map((r) => r.sampleId).sort((a, b) => a - b),
        `class ${label} takes its best`,
      );
    }
    assert.deepEqual(rows.map((r) => r.score), [...rows.map((r) => r.score)].sort((a, b) => a - b), 'ranked by score overall');

    const stratified = await create({ checkpointIds: [c.id], term: 'G_NORM', method: 'STRATIFIED', fraction: 0.25, filter: { splits: ['train'] } });
    const total = Math.ceil(0.25 * train.length);
    const exact = sizes.map((n) => (total * n) / train.length);
    assert.equal(stratified.sampleCount, total);
    for (const [label, count] of stratified.classCounts.map((c: any) => c.count).entries()) {
      assert.ok(count === Math.floor(exact[label]!) || count === Math.ceil(exact[label]!), `class ${label}: ${count} vs ${exact[label]}`);
    }
  });

  test('kCross against a saved selection; selections are immutable, verify notices changed data, delete', async () => {
    const c = fx.checkpoints[0]!;
    const target = await create({ checkpointIds: [c.id], method: 'TOP_K', k: 10, filter: { splits: ['validation'] } });
    const values = new Map<number, number>();
    for (const s of fx.truth) if (s.split === 'train') values.set(s.sampleId, (s.sampleId % 13) / 4);
    await recordKCross(t, c.id, { selectionId: target.id }, values);
    const byCross = await create({ checkpointIds: [c.id], term: 'K_CROSS', target: { selectionId: target.id }, method: 'TOP_K', k: 7, filter: { splits: ['train'] } });
    assert.deepEqual(byCross.target, { key: `selection:${target.id}`, split: null, selection: { id: target.id } });
    const expected = bruteOrder(
      fx.truth.filter((s) => s.split === 'train').map((s) => ({ ...s, kc: values.get(s.sampleId)! })),
      (r) => f32(r.kc),
      'DESC',
    ).slice(0, 7);
    assert.deepEqual((await selected(byCross.id)).map((r) => Number(r.sampleId)), expected.map((r) => r.sampleId));

    // A client changes a kNorm that the top-k selection used: the saved rows stay, the replay differs.
    const topk = await create({ checkpointIds: [c.id], method: 'TOP_K', k: 5 });
    const first = (await selected(topk.id))[0];
    const changed: TruthValues = new Map([[Number(first.sampleId), { ...c.values.get(Number(first.sampleId))!, kNorm: 0 }]]);
    await recordMetrics(t, c.id, changed);
    const verify = await t.gql(`query($id: ID!) { selection(id: $id) { sampleCount verify { reproduces missing extra moved } samples(first: 1) { nodes { sampleId } } } }`, { id: topk.id });
    assert.equal(verify.selection.verify.reproduces, false);
    assert.equal(verify.selection.verify.missing, 1);
    assert.equal(verify.selection.samples.nodes[0].sampleId, first.sampleId, 'the saved selection did not change');
    await recordMetrics(t, c.id, new Map([[Number(first.sampleId), c.values.get(Number(first.sampleId))!]]));
    const back = await t.gql(`query($id: ID!) { selection(id: $id) { verify { reproduces } } }`, { id: topk.id });
    assert.equal(back.selection.verify.reproduces, true);

    const dup = await t.request(CREATE, { input: { name: `sel-${n}`, strategy: { checkpointIds: [c.id], method: 'TOP_K', k: 1 } } });
    assert.deepEqual(codes(dup), ['CONFLICT']);
    const bad = await t.request(CREATE, { input: { name: 'x', strategy: { checkpointIds: [c.id], method: 'TOP_K' } } });
    assert.deepEqual(codes(bad), ['BAD_USER_INPUT']);
    assert.equal(bad.errors![0]!.extensions!.field, 'input.strategy.k');

    const listed = await t.gql(`query($d: ID!) { dataset(id: $d) { selections(first: 100) { totalCount nodes { id name } } } }`, { d: fx.datasetId });
    assert.ok(listed.dataset.selections.nodes.some((s: any) => s.id === topk.id));
    await t.gql(`mutation($id: ID!) { deleteSelection(id: $id) { id } }`, { id: target.id });
    assert.equal((await t.gql(`query($id: ID!) { selection(id: $id) { id } }`, { id: target.id })).selection, null);
    const gone = await t.request(RANKED, { c: c.id, first: 1, target: { selectionId: target.id }, orderBy: { term: 'K_CROSS' } });
    assert.deepEqual(codes(gone), ['NOT_FOUND']);
  });
});

describe('selections outlive what made them', () => {
  test('immutable rows; a deleted checkpoint or run leaves the selection, and verify says why it cannot replay', async () => {
    const small = await curationFixture(t, { n: 12, seed: 5 });
    const [c1] = small.checkpoints as [any];
    const { createSelection: sel } = await t.gql(
      `mutation($input: CreateSelectionInput!) { createSelection(input: $input) { id runId sampleCount } }`,
      { input: { name: 'outlives', strategy: { checkpointIds: [c1.id], method: 'TOP_K', k: 4 } } },
    );
    await assert.rejects(t.db.sql.query(`UPDATE selection SET name = 'renamed' WHERE id = $1`, [Number(sel.id)]), /immutable/);
    await assert.rejects(t.db.sql.query(`UPDATE selection_sample SET score = 0 WHERE selection_id = $1`, [Number(sel.id)]), /immutable/);
    await t.gql(`mutation($id: ID!) { deleteCheckpoint(id: $id) { id } }`, { id: c1.id });
    const after = await t.gql(
      `query($id: ID!) { selection(id: $id) { sampleCount checkpointIds checkpoints { id } samples(first: 10) { totalCount nodes { rank } } verify { reproduces problem } } }`,
      { id: sel.id },
    );
    assert.equal(after.selection.sampleCount, 4);
    assert.deepEqual(after.selection.checkpointIds, [c1.id]);
    assert.deepEqual(after.selection.checkpoints, []);
    assert.deepEqual(after.selection.samples.nodes.map((n: any) => n.rank), [1, 2, 3, 4]);
    assert.equal(after.selection.verify.reproduces, false);
    assert.match(after.selection.verify.problem, new RegExp(`Checkpoint ${c1.id} does not exist`));
    await t.gql(`mutation($id: ID!) { deleteRun(id: $id) { id } }`, { id: small.runId });
    const orphan = await t.gql(`query($id: ID!) { selection(id: $id) { runId run { id } sampleCount } }`, { id: sel.id });
    assert.deepEqual(orphan.selection, { runId: small.runId, run: null, sampleCount: 4 });
  });
});

describe('exports', () => {
  test('a selection exports as CSV and JSONL with its ranks, scores and terms', async () => {
    const c = fx.checkpoints[0]!;
    const { createSelection: sel } = await t.gql(
      `mutation($input: CreateSelectionInput!) { createSelection(input: $input) { id csv: exportUrl(format: CSV) jsonl: exportUrl checkpoints { id } } }`,
      { input: { name: 'to-export', strategy: { checkpointIds: [c.id], method: 'TOP_K', k: 30 } } },
    );
    const csv = await fetch(new URL(sel.csv, t.url));
    assert.equal(csv.status, 200);
    assert.match(csv.headers.get('content-type')!, /^text\/csv/);
    const lines = (await csv.text()).trimEnd().split('\n');
    assert.equal(lines[0], 'rank,score,sampleId,index,label,className,split,loss,aNorm,hTrace,hMinEig,gNorm,kNorm,kTrace,correct');
    assert.equal(lines.length, 31);
    const jsonl = await fetch(new URL(sel.jsonl, t.url));
    assert.match(jsonl.headers.get('content-type')!, /^application\/x-ndjson/);
    const objects = (await jsonl.text()).trimEnd().split('\n').map((l) => JSON.parse(l));
    const expected = bruteOrder(rowsAt(c.values), (r) => f32(r.v.kNorm), 'DESC').slice(0, 30);
    assert.deepEqual(objects.map((o) => o.sampleId), expected.map((r) => r.sampleId));
    const asF32 = (o: Record<string, unknown>) =>
      Object.fromEntries(Object.entries(o).map(([k, v]) => [k, typeof v === 'number' && !['rank', 'sampleId', 'index', 'label'].includes(k) ? f32(v) : v]));
    assert.deepEqual(asF32(objects[0]), {
      rank: 1,
      score: f32(expected[0]!.v.kNorm),
      sampleId: expected[0]!.sampleId,
      index: expected[0]!.index,
      label: expected[0]!.label,
      className: CLASS_NAMES[expected[0]!.label],
      split: expected[0]!.split,
      loss: f32(expected[0]!.v.loss),
      aNorm: null,
      hTrace: f32(expected[0]!.v.hTrace),
      hMinEig: null,
      gNorm: f32(expected[0]!.v.gNorm),
      kNorm: f32(expected[0]!.v.kNorm),
      kTrace: null,
      correct: expected[0]!.v.correct,
    });
    // CSV quoting: the class name with a comma and quotes survives.
    const dogLine = lines.find((l) => l.includes('dog'));
    if (dogLine) assert.ok(dogLine.includes('"dog, ""big"""'));
    const missing = await fetch(new URL('/export/selections/999999?format=csv', t.url));
    assert.equal(missing.status, 404);
    assert.equal(((await missing.json()) as any).errors[0].extensions.code, 'NOT_FOUND');
    const badFormat = await fetch(new URL(`/export/selections/${sel.id}?format=xml`, t.url));
    assert.equal(badFormat.status, 400);
  });

  test('a CSV cell a spreadsheet would run as a formula is neutralised; negative numbers stay numbers', async () => {
    const { createDataset: ds } = await t.gql(
      `mutation { createDataset(input: { name: "formula-names", length: 1, classNames: ["=HYPERLINK(\\"http://x\\")", "plain"],
        samples: [{ index: 0, label: 0, series: [1] }, { index: 1, label: 1, series: [2] }] }) { id samples { nodes { id } } } }`,
    );
    const { createModel: m } = await t.gql(`mutation { createModel(input: { name: "formula-model", format: BUILTIN, architecture: "cnn1d", config: { pool: 0 }, inputLength: 1, numClasses: 2 }) { id } }`);
    const { createRun: r } = await t.gql(`mutation($m: ID!, $d: ID!) { createRun(input: { name: "formula-run", modelId: $m, datasetId: $d }) { id } }`, { m: m.id, d: ds.id });
    const { createCheckpoint: c } = await t.gql(`mutation($r: ID!) { createCheckpoint(input: { runId: $r, step: 0, weightSpecs: [], weightData: "" }) { id } }`, { r: r.id });
    const ids = ds.samples.nodes.map((n: any) => n.id);
    await t.gql(`mutation($c: ID!, $m: [MetricInput!]!) { recordMetrics(checkpointId: $c, metrics: $m) { written } }`, {
      c: c.id,
      m: [{ sampleId: ids[0], kNorm: 2, hMinEig: -0.5 }, { sampleId: ids[1], kNorm: 1, hMinEig: -0.25 }],
    });
    const { createSelection: sel } = await t.gql(
      `mutation($c: ID!) { createSelection(input: { name: "formulas", strategy: { checkpointIds: [$c], method: TOP_K, k: 2 } }) { csv: exportUrl(format: CSV) } }`,
      { c: c.id },
    );
    const lines = (await (await fetch(new URL(sel.csv, t.url))).text()).trimEnd().split('\n');
    const header = lines[0]!.split(',');
    const first = lines[1]!;
    assert.ok(first.includes(`"'=HYPERLINK(""http://x"")"`), first);
    assert.equal(first.split(',')[header.indexOf('hMinEig')], '-0.5', 'a negative number is written as a number');
  });

  test('a filtered query exports the same rows as its pages', async () => {
    const c = fx.checkpoints[1]!;
    const args = { filter: { labels: [1], terms: [{ term: 'LOSS', max: 2 }] }, orderBy: { term: 'G_NORM', direction: 'ASC' } };
    const { checkpoint } = await t.gql(
      `query($c: ID!, $filter: SampleTermFilter, $orderBy: SampleTermOrder) { checkpoint(id: $c) { exportUrl(format: JSONL, filter: $filter, orderBy: $orderBy) } }`,
      { c: c.id, ...args },
    );
    const text = await (await fetch(new URL(checkpoint.exportUrl, t.url))).text();
    const exported = text.trimEnd().split('\n').map((l) => JSON.parse(l));
    const { nodes } = await allPages({ c: c.id, ...args }, 1000);
    assert.deepEqual(exported.map((o) => o.sampleId), nodes.map((n) => Number(n.sampleId)));
    assert.deepEqual(exported.map((o) => o.score), nodes.map((n) => n.score));
    const missing = await t.request(`query($c: ID!) { checkpoint(id: $c) { exportUrl(orderBy: { term: K_TRACE }) } }`, { c: c.id });
    assert.deepEqual(codes(missing), ['TERMS_MISSING']);
  });
});
