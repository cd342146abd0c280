import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { ConfigError, loadConfig } from '../src/platform/config.js';
import { runCli, startCli, type CliProcess } from './helpers/cli.js';
import { startTestServer } from './helpers/server.js';

/** Starts the real CLI (`npm start` runs the same) and resolves with its GraphQL URL from the log. */
async function startServe(env: Record<string, string>): Promise<CliProcess & { url: string }> {
  const cli = await startCli('serve', { env });
  return Object.assign(cli, { url: cli.url! });
}

/** Stops with SIGTERM, as a service manager would, and gives the exit code. */
async function terminate(cli: CliProcess): Promise<number | null> {
  return (await cli.kill('SIGTERM')).code;
}

async function post(url: string, query: string, variables?: unknown) {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) });
  return (await response.json()) as { data?: any; errors?: any[] };
}

describe('the server', () => {
  test('npm start on the embedded database keeps data across a restart', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'tangent-cli-'));
    const children: CliProcess[] = [];
    try {
      const first = await startServe({ TANGENT_DATA_DIR: dataDir });
      children.push(first);
      const created = await post(first.url, `mutation { createDataset(input: { name: "survives", length: 2, classNames: ["a", "b"], samples: [{ index: 0, label: 1, series: [0.5, -1] }] }) { id } }`);
      assert.equal(created.errors, undefined);
      const health = await fetch(first.url.replace('/graphql', '/healthz'));
      assert.deepEqual(await health.json(), { status: 'ok', database: 'pglite' });
      assert.equal(await terminate(first), 0, 'a graceful stop exits 0');

      const second = await startServe({ TANGENT_DATA_DIR: dataDir });
      children.push(second);
      const read = await post(second.url, `{ datasets { nodes { name samples { nodes { label series } } } } }`);
      assert.deepEqual(read.data.datasets.nodes, [{ name: 'survives', samples: { nodes: [{ label: 1, series: [0.5, -1] }] } }]);
      assert.equal(await terminate(second), 0);
    } finally {
      await Promise.all(children.map((child) => child.kill()));
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test('bad configuration is reported whole and the process exits 1', async () => {
    assert.throws(
      () => loadConfig({ PORT: 'eighty', DATABASE_URL: 'mysql://x', LOG_LEVEL: 'loud' }),
      (error: unknown) => error instanceof ConfigError && error.problems.length === 3,
    );
    const { code, stderr } = await runCli(['serve'], { env: { PORT: 'eighty' }, timeoutMs: 60_000 });
    assert.equal(code, 1);
    assert.match(stderr, /PORT/);
  });

  test('shutdown lets an in-flight request finish', async () => {
    const t = await startTestServer();
    try {
      const length = 500;
      const samples = Array.from({ length: 4000 }, (_, index) => ({ index, label: 0, series: Array.from({ length }, (_, i) => Math.sin(index + i)) }));
      let answeredAt = 0;
      const pending = t
        .request(`mutation($s: [SampleInput!]) { createDataset(input: { name: "in-flight", length: ${length}, classNames: ["a"], samples: $s }) { sampleCount } }`, { s: samples })
        .then((r) => {
          answeredAt = Date.now();
          return r;
        });
      await new Promise((r) => setTimeout(r, 150));
      const closeCalledAt = Date.now();
      const closing = t.server.close();
      const result = await pending;
      await closing;
      assert.deepEqual(result, { data: { createDataset: { sampleCount: 4000 } } });
      assert.ok(answeredAt > closeCalledAt, 'the request was still in flight when shutdown began');
      const rows = await t.db.sql.query<{ n: number }>('SELECT count(*)::int AS n FROM sample');
      assert.equal(rows[0]!.n, 4000);
    } finally {
      await t.close();
    }
  });

  test('an unknown failure reaches the client as INTERNAL_SERVER_ERROR without internals', async () => {
    const t = await startTestServer();
    try {
      await t.db.sql.query('ALTER TABLE dataset RENAME TO dataset_gone');
      const res = await t.request(`{ datasets { totalCount } }`);
      assert.equal(res.errors?.[0]?.extensions?.code, 'INTERNAL_SERVER_ERROR');
      const text = JSON.stringify(res);
      assert.doesNotMatch(text, /dataset_gone|relation|SELECT|\.ts:|at /);
      await t.db.sql.query('ALTER TABLE dataset_gone RENAME TO dataset');
    } finally {
      await t.close();
    }
  });
});
