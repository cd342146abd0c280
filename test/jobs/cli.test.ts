import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { after, test } from 'node:test';
import { createTestDatabase, type TestDatabase } from '../helpers/database.js';
import { startTestServer } from '../helpers/server.js';
import { importUcr, storeCnn } from './helpers.js';

/** `npx tangent compute …`: the same job from the command line, followed to the end. */
const BIN = new URL('../../bin/tangent.js', import.meta.url).pathname;

let testDb: TestDatabase | undefined;
after(() => testDb?.destroy());

test('tangent compute runs a job on the database and reports its progress and outcome', async () => {
  testDb = await createTestDatabase();
  const setup = await startTestServer({ testDb, env: { TANGENT_WORKER: 'off' } });
  const { dataset, samples } = await importUcr(setup, 'GunPoint');
  const cnn = await storeCnn(setup, dataset);
  await setup.stop(); // the embedded database takes one process at a time

  const dbEnv = testDb.config.kind === 'postgres' ? { DATABASE_URL: testDb.config.url } : { TANGENT_DATA_DIR: testDb.config.dataDir };
  const { DATABASE_URL: _ignored, ...inherited } = process.env;
  const child = spawn(process.execPath, [BIN, 'compute', '--checkpoint', cnn.checkpoints[0]!.id, '--terms', 'k_norm,LOSS', '--split', 'train'], {
    env: { ...inherited, ...dbEnv, LOG_LEVEL: 'warn', TANGENT_CHUNK_SIZE: '16', TANGENT_QUEUE_POLL_SECONDS: '0.5' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const [code] = await once(child, 'exit');
  assert.equal(code, 0, stderr);
  const train = samples.filter((s) => s.split === 'train').length;
  assert.match(stdout, new RegExp(`^job \\d+ COMPLETED: ${train}/${train} samples \\(${train} computed\\), 4/4 chunks\\n$`));
  // Without a terminal the progress is a line per change.
  assert.match(stderr, /job \d+ (QUEUED|RUNNING): 0\/50 samples/);

  const bad = spawn(process.execPath, [BIN, 'compute', '--checkpoint', cnn.checkpoints[0]!.id, '--terms', 'K_NORM,BOGUS'], { env: { ...inherited, ...dbEnv }, stdio: ['ignore', 'ignore', 'pipe'] });
  let badErr = '';
  bad.stderr!.on('data', (d) => (badErr += d));
  const [badCode] = await once(bad, 'exit');
  assert.equal(badCode, 1);
  assert.match(badErr, /--terms: BOGUS is not a term/);

  const check = await startTestServer({ testDb, env: { TANGENT_WORKER: 'off' } });
  try {
    const res = await check.gql(`query($id: ID!) { checkpoint(id: $id) { metrics(first: 1000) { totalCount nodes { kNorm loss } } } }`, { id: cnn.checkpoints[0]!.id });
    assert.equal(res.checkpoint.metrics.totalCount, train);
    assert.ok(res.checkpoint.metrics.nodes.every((n: any) => typeof n.kNorm === 'number' && typeof n.loss === 'number'));
  } finally {
    await check.stop();
  }
});
