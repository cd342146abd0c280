import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { codes, readUcr, UCR_DIR } from '../helpers/fixtures.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { assertClose, CLASSES, expectedLinear, timeMajor, variableLengthUcr } from '../io/ucr-variable.js';

/** The four shared UCR/UEA problems imported over HTTP with importUcr, checked sample by sample. */
let t: TestServer;
before(async () => {
  t = await startTestServer();
});
after(() => t?.close());

const IMPORT = /* GraphQL */ `
  mutation($input: ImportUcrInput!) {
    importUcr(input: $input) { added dataset { id name length channels classNames sampleCount splits { split count } } }
  }
`;
const PAGE = /* GraphQL */ `
  query($id: ID!, $after: String) {
    dataset(id: $id) { samples(first: 1000, after: $after) { pageInfo { hasNextPage endCursor } nodes { index label className split series } } }
  }
`;

const file = (name: string) => ({ text: readFileSync(`${UCR_DIR}${name}.ts`, 'utf8'), fileName: `${name}.ts` });

const PROBLEMS = [
  { name: 'GunPoint', length: 150, channels: 1, classNames: ['1', '2'], train: 50, test: 150 },
  { name: 'ItalyPowerDemand', length: 24, channels: 1, classNames: ['1', '2'], train: 67, test: 1029 },
  { name: 'ArrowHead', length: 251, channels: 1, classNames: ['0', '1', '2'], train: 36, test: 175 },
  { name: 'BasicMotions', length: 100, channels: 6, classNames: ['Standing', 'Running', 'Walking', 'Badminton'], train: 40, test: 40 },
];

describe('importing UCR/UEA files', () => {
  for (const p of PROBLEMS) {
    test(`${p.name}: counts, shape, class labels and every series as in the files`, async () => {
      // TEST first on purpose: train samples are numbered first whatever the order of the files.
      const res = await t.gql(IMPORT, { input: { files: [file(`${p.name}_TEST`), file(`${p.name}_TRAIN`)] } });
      const d = res.importUcr.dataset;
      assert.equal(res.importUcr.added, p.train + p.test);
      assert.deepEqual(
        { name: d.name, length: d.length, channels: d.channels, classNames: d.classNames, sampleCount: d.sampleCount, splits: d.splits },
        { name: p.name, length: p.length, channels: p.channels, classNames: p.classNames, sampleCount: p.train + p.test, splits: [{ split: 'test', count: p.test }, { split: 'train', count: p.train }] },
      );
      const nodes: any[] = [];
      let afterCursor: string | null = null;
      do {
        const page: any = await t.gql(PAGE, { id: d.id, after: afterCursor });
        nodes.push(...page.dataset.samples.nodes);
        afterCursor = page.dataset.samples.pageInfo.hasNextPage ? page.dataset.samples.pageInfo.endCursor : null;
      } while (afterCursor);
      const expected = [...(await readUcr(`${p.name}_TRAIN`)).series.map((s) => ({ ...s, split: 'train' })), ...(await readUcr(`${p.name}_TEST`)).series.map((s) => ({ ...s, split: 'test' }))];
      assert.equal(nodes.length, expected.length);
      for (const [i, node] of nodes.entries()) {
        const e = expected[i]!;
        assert.equal(node.index, i);
        assert.equal(node.split, e.split, `sample ${i} split`);
        assert.equal(node.label, e.label, `sample ${i} label`);
        assert.equal(node.className, p.classNames[e.label]);
        assert.deepEqual(node.series, Array.from(e.values), `sample ${i} series`);
      }
    });
  }

  test('bad files are refused naming the file and line, and nothing is created', async () => {
    const broken = file('GunPoint_TRAIN');
    const lines = broken.text.split('\n');
    const dataLine = lines.findIndex((l) => l.trim() === '@data') + 3;
    lines[dataLine] = lines[dataLine]!.replace(/:(\S+)$/, ':9');
    const res = await t.request(IMPORT, { input: { name: 'broken', files: [file('GunPoint_TEST'), { ...broken, text: lines.join('\n') }] } });
    assert.deepEqual(codes(res), ['BAD_USER_INPUT']);
    assert.equal(res.errors![0]!.extensions!.field, 'input.files[1].text');
    assert.equal(res.errors![0]!.extensions!.line, dataLine + 1);
    const mixed = await t.request(IMPORT, { input: { name: 'mixed', files: [file('GunPoint_TRAIN'), file('ArrowHead_TRAIN')] } });
    assert.deepEqual(codes(mixed), ['BAD_USER_INPUT']);
    assert.equal(mixed.errors![0]!.extensions!.field, 'input.files[1]');
    const listed = await t.gql(`{ datasets(filter: { nameContains: "broken" }) { totalCount } m: datasets(filter: { nameContains: "mixed" }) { totalCount } }`);
    assert.deepEqual([listed.datasets.totalCount, listed.m.totalCount], [0, 0]);
    // A name already taken is a CONFLICT, and an explicit split wins over the file name.
    const again = await t.request(IMPORT, { input: { files: [file('GunPoint_TRAIN')] } });
    assert.deepEqual(codes(again), ['CONFLICT']);
    const renamed = await t.gql(IMPORT, { input: { name: 'gp-validation', files: [{ ...file('GunPoint_TRAIN'), split: 'validation' }] } });
    assert.deepEqual(renamed.importUcr.dataset.splits, [{ split: 'validation', count: 50 }]);
  });

  describe('length policies', () => {
    const vowels = variableLengthUcr(12, 7);
    const TRAIN = { text: vowels.text, fileName: 'VariableVowels_TRAIN.ts' };
    const READ = /* GraphQL */ `
      query($id: ID!) {
        dataset(id: $id) { length channels classNames lengthPolicy { length resample } samples(first: 100) { nodes { index className series originalLength } } }
      }
    `;
    const count = async () => (await t.gql(`{ datasets { totalCount } }`)).datasets.totalCount as number;

    test('without a policy a @equalLength false file is refused at its header line with the options, and nothing is written', async () => {
      const before = await count();
      const res = await t.request(IMPORT, { input: { name: 'vowels-no-policy', files: [TRAIN] } });
      assert.deepEqual(codes(res), ['BAD_USER_INPUT']);
      const error = res.errors![0]!;
      assert.equal(error.extensions!.line, vowels.equalLengthLine);
      assert.equal(error.extensions!.field, 'input.files[0].text');
      assert.match(error.message, new RegExp(`^files\\[0\\]: line ${vowels.equalLengthLine}: @equalLength false: the series have 7 to 15 steps`));
      assert.match(error.message, /lengthPolicy: \{ length: N, resample: LINEAR \| PAD \| TRUNCATE \}/);
      assert.equal(await count(), before);
    });

    test('LINEAR: every channel interpolated to the length, the source length kept, the policy recorded', async () => {
      const res = await t.gql(IMPORT, { input: { name: 'vowels-linear', files: [TRAIN], lengthPolicy: { length: 12, resample: 'LINEAR' } } });
      assert.equal(res.importUcr.added, 12);
      const d = (await t.gql(READ, { id: res.importUcr.dataset.id })).dataset;
      assert.deepEqual([d.length, d.channels, d.classNames, d.lengthPolicy], [12, 3, CLASSES, { length: 12, resample: 'LINEAR' }]);
      assert.equal(d.samples.nodes.length, vowels.series.length);
      for (const [i, node] of d.samples.nodes.entries()) {
        const source = vowels.series[i]!;
        assert.deepEqual([node.index, node.className, node.originalLength], [i, source.label, source.channels[0]!.length]);
        assertClose(node.series, expectedLinear(source.channels, 12), 1e-6, `sample ${i}`);
      }
    });

    test('PAD appends zeros and refuses a longer series; TRUNCATE keeps the first steps and refuses a shorter one', async () => {
      const before = await count();
      const tooLong = vowels.series.find((s) => s.channels[0]!.length > 12)!;
      const refusedPad = await t.request(IMPORT, { input: { name: 'vowels-pad-12', files: [TRAIN], lengthPolicy: { length: 12, resample: 'PAD' } } });
      assert.deepEqual(codes(refusedPad), ['BAD_USER_INPUT']);
      assert.equal(refusedPad.errors![0]!.extensions!.line, tooLong.line);
      assert.match(refusedPad.errors![0]!.message, new RegExp(`line ${tooLong.line}: the series has ${tooLong.channels[0]!.length} steps, more than 12.*truncate or linear`));
      const tooShort = vowels.series.find((s) => s.channels[0]!.length < 12)!;
      const refusedTruncate = await t.request(IMPORT, { input: { name: 'vowels-truncate-12', files: [TRAIN], lengthPolicy: { length: 12, resample: 'TRUNCATE' } } });
      assert.equal(refusedTruncate.errors![0]!.extensions!.line, tooShort.line);
      assert.match(refusedTruncate.errors![0]!.message, new RegExp(`the series has ${tooShort.channels[0]!.length} steps, fewer than 12.*pad or linear`));
      assert.equal(await count(), before);

      const padded = await t.gql(IMPORT, { input: { name: 'vowels-pad', files: [TRAIN], lengthPolicy: { length: 15, resample: 'PAD' } } });
      const p = (await t.gql(READ, { id: padded.importUcr.dataset.id })).dataset;
      assert.deepEqual(p.lengthPolicy, { length: 15, resample: 'PAD' });
      for (const [i, node] of p.samples.nodes.entries()) {
        const source = timeMajor(vowels.series[i]!.channels);
        assertClose(node.series, [...source, ...new Array(45 - source.length).fill(0)], 1e-6, `padded ${i}`);
        assert.equal(node.originalLength, source.length / 3);
      }
      const truncated = await t.gql(IMPORT, { input: { name: 'vowels-truncate', files: [TRAIN], lengthPolicy: { length: 7, resample: 'TRUNCATE' } } });
      const tr = (await t.gql(READ, { id: truncated.importUcr.dataset.id })).dataset;
      for (const [i, node] of tr.samples.nodes.entries()) {
        assertClose(node.series, timeMajor(vowels.series[i]!.channels.map((c) => c.slice(0, 7))), 1e-6, `truncated ${i}`);
      }
      const bad = await t.request(IMPORT, { input: { name: 'vowels-zero', files: [TRAIN], lengthPolicy: { length: 0, resample: 'LINEAR' } } });
      assert.equal(bad.errors![0]!.extensions!.field, 'input.lengthPolicy.length');
    });

    test('a policy applies to equal-length files too (GunPoint 150 → 512); without one, originalLength and lengthPolicy are null', async () => {
      const res = await t.gql(IMPORT, { input: { name: 'gunpoint-512', files: [file('GunPoint_TRAIN')], lengthPolicy: { length: 512, resample: 'LINEAR' } } });
      const d = (await t.gql(READ, { id: res.importUcr.dataset.id })).dataset;
      const source = await readUcr('GunPoint_TRAIN');
      assert.equal(d.length, 512);
      for (const [i, node] of d.samples.nodes.entries()) {
        assert.equal(node.originalLength, 150);
        assertClose(node.series, expectedLinear([Array.from(source.series[i]!.values)], 512), 1e-6, `GunPoint ${i}`);
      }
      const plain = await t.gql(IMPORT, { input: { name: 'gunpoint-plain', files: [file('GunPoint_TRAIN')] } });
      const q = (await t.gql(READ, { id: plain.importUcr.dataset.id })).dataset;
      assert.equal(q.lengthPolicy, null);
      assert.deepEqual(new Set(q.samples.nodes.map((n: { originalLength: number | null }) => n.originalLength)), new Set([null]));
    });
  });
});

