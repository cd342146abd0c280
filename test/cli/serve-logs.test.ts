import assert from 'node:assert/strict';
import { test } from 'node:test';
import { tangent, waitFor } from './helpers.js';

/**
 * Whatever reads a server's output (a log shipper, `jq`) gets JSON lines only: on stdout and on
 * stderr, from the start to the stop, the compute backend's choice included.
 */
test('every line tangent serve writes while it starts, answers and stops is a JSON log entry', { timeout: 180_000 }, async (t) => {
  // The flags set the port and the data folder (a throwaway embedded database).
  const serve = tangent(['serve', '--port', '0', '--data-dir', 'memory://', '--backend', 'auto'], { LOG_LEVEL: 'info', TANGENT_COMPUTE_THREADS: '1' });
  t.after(() => serve.stop());
  let url: string | undefined;
  await waitFor(
    serve,
    () => {
      url ??= serve.stdout().split('\n').map((line) => /"url":"([^"]+)"/.exec(line)?.[1]).find(Boolean);
      return url !== undefined;
    },
    'the serving log entry',
  );

  // serverInfo.backend starts the compute threads: the backend is chosen and reported now.
  const response = await fetch(url!, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: '{ serverInfo { backend { name threads } } }' }) });
  const body = (await response.json()) as { data: { serverInfo: { backend: { name: string; threads: number } } } };
  assert.equal(body.data.serverInfo.backend.threads, 1);
  await waitFor(serve, () => serve.stdout().includes('"msg":"compute backend"'), 'the compute backend entry');
  assert.equal(await serve.stop(), 0);

  const lines = [...serve.stdout().split('\n'), ...serve.stderr().split('\n')].filter((line) => line !== '');
  const entries = lines.map((line) => {
    try {
      return JSON.parse(line) as Record<string, unknown>;
    } catch {
      assert.fail(`not a JSON line: ${line}`);
    }
  });
  assert.ok(entries.every((e) => typeof e.level === 'number' && typeof e.msg === 'string'), 'pino entries');

  const backend = entries.filter((e) => e.msg === 'compute backend');
  assert.equal(backend.length, 1, 'one entry for the backend');
  assert.equal(backend[0]!.level, 30);
  assert.equal(backend[0]!.backend, body.data.serverInfo.backend.name);
  assert.equal(backend[0]!.threads, 1);
  for (const skipped of backend[0]!.skipped as { backend: string; reason: string }[]) {
    assert.doesNotMatch(skipped.reason, /Cannot find|\n|at /, 'a short reason, not an error text');
  }
  assert.ok(!lines.some((line) => line.includes('tangent compute')));
});
