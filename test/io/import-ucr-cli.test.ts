import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { UCR_DIR } from '../helpers/fixtures.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { assertClose, CLASSES, expectedLinear, timeMajor, variableLengthUcr } from './ucr-variable.js';

/** `tangent import …` as a user runs it: a child process, through a server (--url) or on the database directly. */
const BIN = fileURLToPath(new URL('../../bin/tangent.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'tangent-import-'));
let t: TestServer;
before(async () => {
  t = await startTestServer();
});
after(async () => {
  await t?.close();
  rmSync(dir, { recursive: true, force: true });
});

function cli(args: string[], env: Record<string, string | undefined> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const merged: Record<string, string | undefined> = { ...process.env, LOG_LEVEL: 'silent', ...env };
  for (const [key, value] of Object.entries(merged)) if (value === undefined) delete merged[key];
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, 'import', ...args], { env: merged as NodeJS.ProcessEnv, timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
  });
}

/** Environment that points the CLI at the test server's own database. */
function databaseEnv(): Record<string, string | undefined> {
  const config = t.testDb.config;
  return config.kind === 'postgres' ? { DATABASE_URL: config.url } : { DATABASE_URL: undefined, TANGENT_DATA_DIR: config.dataDir };
}

const ucr = (name: string) => `${UCR_DIR}${name}.ts`;

describe('tangent import ucr', () => {
  test('ucr through a running server, and directly on the database (refused while a server holds the embedded one)', async () => {
    const viaServer = await cli(['ucr', ucr('GunPoint_TEST'), ucr('GunPoint_TRAIN'), '--url', t.url, '--json', '--batch', '64']);
    assert.equal(viaServer.code, 0, viaServer.stderr);
    const result = JSON.parse(viaServer.stdout);
    assert.deepEqual(
      { ...result, datasetId: undefined },
      {
        datasetId: undefined,
        name: 'GunPoint',
        length: 150,
        channels: 1,
        classNames: ['1', '2'],
        samples: 200,
        splits: [{ split: 'train', count: 50 }, { split: 'test', count: 150 }],
        lengthPolicy: null,
      },
    );
    const read = await t.gql(`query($id: ID!) { dataset(id: $id) { sampleCount splits { split count } } }`, { id: result.datasetId });
    assert.deepEqual(read.dataset, { sampleCount: 200, splits: [{ split: 'test', count: 150 }, { split: 'train', count: 50 }] });

    if (t.testDb.config.kind === 'pglite') {
      const locked = await cli(['ucr', ucr('BasicMotions_TRAIN'), '--json'], databaseEnv());
      assert.equal(locked.code, 1);
      assert.match(locked.stderr, /in use by process[\s\S]*--url/);
      await t.stop();
      const direct = await cli(['ucr', ucr('BasicMotions_TRAIN'), ucr('BasicMotions_TEST'), '--name', 'motions', '--json'], databaseEnv());
      assert.equal(direct.code, 0, direct.stderr);
      t = await startTestServer({ testDb: t.testDb });
    } else {
      const direct = await cli(['ucr', ucr('BasicMotions_TRAIN'), ucr('BasicMotions_TEST'), '--name', 'motions', '--json'], databaseEnv());
      assert.equal(direct.code, 0, direct.stderr);
    }
    const motions = await t.gql(`{ datasets(filter: { nameContains: "motions" }) { nodes { channels classNames sampleCount } } }`);
    assert.deepEqual(motions.datasets.nodes, [{ channels: 6, classNames: ['Standing', 'Running', 'Walking', 'Badminton'], sampleCount: 80 }]);
  });

  test('a variable-length multivariate file: refused without --length/--resample, resampled with them', async () => {
    const train = variableLengthUcr(9, 3);
    const testFile = variableLengthUcr(6, 11);
    const trainPath = join(dir, 'VariableVowels_TRAIN.ts');
    const testPath = join(dir, 'VariableVowels_TEST.ts');
    writeFileSync(trainPath, train.text);
    writeFileSync(testPath, testFile.text);
    const count = async () => (await t.gql(`{ datasets { totalCount } }`)).datasets.totalCount as number;
    const before = await count();

    const refused = await cli(['ucr', trainPath, testPath, '--url', t.url]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, new RegExp(`VariableVowels_TRAIN\\.ts: line ${train.equalLengthLine}: @equalLength false: the series have 7 to 15 steps`));
    assert.match(refused.stderr, /give --length N --resample linear\|pad\|truncate/);
    const tooLong = train.series.find((s) => s.channels[0]!.length > 12)!;
    const padTooShort = await cli(['ucr', trainPath, '--url', t.url, '--length', '12', '--resample', 'pad']);
    assert.equal(padTooShort.code, 1);
    assert.match(padTooShort.stderr, new RegExp(`line ${tooLong.line}: the series has ${tooLong.channels[0]!.length} steps, more than 12.*truncate or linear`));
    const halfPolicy = await cli(['ucr', trainPath, '--url', t.url, '--length', '12']);
    assert.equal(halfPolicy.code, 1);
    assert.match(halfPolicy.stderr, /give --resample linear\|pad\|truncate with --length/);
    assert.equal(await count(), before);

    // --batch 4 sends several addSamplesBulk requests, each with its originalLengths.
    const done = await cli(['ucr', testPath, trainPath, '--url', t.url, '--length', '12', '--resample', 'linear', '--batch', '4', '--json']);
    assert.equal(done.code, 0, done.stderr);
    const result = JSON.parse(done.stdout);
    assert.deepEqual(
      { ...result, datasetId: undefined },
      {
        datasetId: undefined,
        name: 'VariableVowels',
        length: 12,
        channels: 3,
        classNames: CLASSES,
        samples: 15,
        splits: [{ split: 'train', count: 9 }, { split: 'test', count: 6 }],
        lengthPolicy: { length: 12, resample: 'linear' },
      },
    );
    const read = await t.gql(
      `query($id: ID!) { dataset(id: $id) { length lengthPolicy { length resample } samples(first: 100) { nodes { index split className series originalLength } } } }`,
      { id: result.datasetId },
    );
    assert.deepEqual([read.dataset.length, read.dataset.lengthPolicy], [12, { length: 12, resample: 'LINEAR' }]);
    const expected = [...train.series.map((s) => ({ ...s, split: 'train' })), ...testFile.series.map((s) => ({ ...s, split: 'test' }))];
    assert.equal(read.dataset.samples.nodes.length, expected.length);
    for (const [i, node] of read.dataset.samples.nodes.entries()) {
      const e = expected[i]!;
      assert.deepEqual([node.index, node.split, node.className, node.originalLength], [i, e.split, e.label, e.channels[0]!.length]);
      assertClose(node.series, expectedLinear(e.channels, 12), 1e-6, `sample ${i}`);
    }

    // Truncating to the shortest length keeps exactly the first steps.
    const truncated = await cli(['ucr', trainPath, '--url', t.url, '--name', 'vowels-first-7', '--length', '7', '--resample', 'truncate', '--json']);
    assert.equal(truncated.code, 0, truncated.stderr);
    const first = await t.gql(`query($id: ID!) { dataset(id: $id) { samples(first: 1) { nodes { series originalLength } } } }`, { id: JSON.parse(truncated.stdout).datasetId });
    const node = first.dataset.samples.nodes[0];
    assertClose(node.series, timeMajor(train.series[0]!.channels.map((c) => c.slice(0, 7))), 1e-6, 'truncated');
    assert.equal(node.originalLength, train.series[0]!.channels[0]!.length);
  });
});

