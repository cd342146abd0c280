import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { codes, readUcr, UCR_DIR } from '../helpers/fixtures.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/** The four shared UCR/UEA problems imported over HTTP with importUcr, checked sample by sample. */
let t: TestServer;
before(async () => {
  t = await startTestServer();
});
after(() => t.close());

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
});
