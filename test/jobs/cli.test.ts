import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cleanupStack } from '../helpers/cleanup.js';
import { runCli } from '../helpers/cli.js';
import { createTestDatabase } from '../helpers/database.js';
import { startTestServer } from '../helpers/server.js';
import { importUcr, storeCnn } from './helpers.js';

/** `npx tangent compute …`: the same job from the command line, followed to the end. */
test('tangent compute runs a job on the database and reports its progress and outcome', { timeout: 180_000 }, async (t) => {
  const defer = cleanupStack(t);
  const testDb = defer(await createTestDatabase(), (d) => d.destroy());
  const setup = defer(await startTestServer({ testDb, env: { TANGENT_WORKER: 'off' } }), (s) => s.stop());
  const { dataset, samples } = await importUcr(setup, 'GunPoint');
  const cnn = await storeCnn(setup, dataset);
  await setup.stop(); // the embedded database takes one process at a time

  const dbEnv = testDb.config.kind === 'postgres' ? { DATABASE_URL: testDb.config.url } : { TANGENT_DATA_DIR: testDb.config.dataDir };
  const { code, stdout, stderr } = await runCli(['compute', '--checkpoint', cnn.checkpoints[0]!.id, '--terms', 'k_norm,LOSS', '--split', 'train'], {
    env: { ...dbEnv, LOG_LEVEL: 'warn', TANGENT_CHUNK_SIZE: '16', TANGENT_QUEUE_POLL_SECONDS: '0.5' },
  });
  assert.equal(code, 0, stderr);
  const train = samples.filter((s) => s.split === 'train').length;
  assert.match(stdout, new RegExp(`^job \\d+ COMPLETED: ${train}/${train} samples \\(${train} computed\\), 4/4 chunks\\n$`));
  // Without a terminal the progress is a line per change.
  assert.match(stderr, /job \d+ (QUEUED|RUNNING): 0\/50 samples/);

  const bad = await runCli(['compute', '--checkpoint', cnn.checkpoints[0]!.id, '--terms', 'K_NORM,BOGUS'], { env: dbEnv });
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /--terms: BOGUS is not a term/);

  const check = defer(await startTestServer({ testDb, env: { TANGENT_WORKER: 'off' } }), (s) => s.stop());
  const res = await check.gql(`query($id: ID!) { checkpoint(id: $id) { metrics(first: 1000) { totalCount nodes { kNorm loss } } } }`, { id: cnn.checkpoints[0]!.id });
  assert.equal(res.checkpoint.metrics.totalCount, train);
  assert.ok(res.checkpoint.metrics.nodes.every((n: any) => typeof n.kNorm === 'number' && typeof n.loss === 'number'));
});
