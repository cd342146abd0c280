import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { UCR_DIR } from '../helpers/fixtures.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

/** `tangent import …` as a user runs it: a child process, through a server (--url) or on the database directly. */
const BIN = fileURLToPath(new URL('../../bin/tangent.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'tangent-import-'));
let t: TestServer;
before(async () => {
  t = await startTestServer();
});
after(async () => {
  await t.close();
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
      { datasetId: undefined, name: 'GunPoint', length: 150, channels: 1, classNames: ['1', '2'], samples: 200, splits: [{ split: 'train', count: 50 }, { split: 'test', count: 150 }] },
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

});
