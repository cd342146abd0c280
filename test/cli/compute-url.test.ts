import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startTestServer } from '../helpers/server.js';
import { importUcr, storeCnn } from '../jobs/helpers.js';
import { tangent, waitFor } from './helpers.js';

/**
 * `tangent compute --url`: the job runs on a running server (which holds the embedded database),
 * started through computeTerms and followed over the jobProgress subscription.
 */
test('tangent compute --url runs the job on the server and follows it to the end', { timeout: 300_000 }, async (t) => {
  const server = await startTestServer({ env: { TANGENT_CHUNK_SIZE: '16', TANGENT_QUEUE_POLL_SECONDS: '0.5', TANGENT_COMPUTE_THREADS: '1' } });
  t.after(() => server.close());
  const { dataset, samples } = await importUcr(server, 'GunPoint');
  const cnn = await storeCnn(server, dataset);
  const checkpointId = cnn.checkpoints[0]!.id;
  const train = samples.filter((s) => s.split === 'train').length;

  // --progress draws the bar although stderr is a pipe here: one line per redraw.
  const cli = tangent(['compute', '--checkpoint', checkpointId, '--terms', 'k_norm,LOSS', '--split', 'train', '--url', server.url, '--progress']);
  t.after(() => cli.stop());
  assert.equal(await cli.exited, 0, cli.stderr());
  assert.match(cli.stdout(), new RegExp(`^job \\d+ COMPLETED: ${train}/${train} samples \\(${train} computed\\), 4/4 chunks\\n$`));
  assert.match(cli.stderr(), new RegExp(`job \\d+ \\[[^\\]]*\\] \\d+/${train} samples \\| \\d/4 chunks \\| eta`));
  assert.match(cli.stderr(), new RegExp(`${train}/${train} samples \\| 4/4 chunks`));
  assert.doesNotMatch(cli.stderr(), /NaN|Infinity|NF/);

  // The terms are the server's now.
  const res = await server.gql(`query($id: ID!) { checkpoint(id: $id) { metrics(first: 1000) { totalCount nodes { kNorm loss } } } }`, { id: checkpointId });
  assert.equal(res.checkpoint.metrics.totalCount, train);
  assert.ok(res.checkpoint.metrics.nodes.every((n: { kNorm: unknown; loss: unknown }) => typeof n.kNorm === 'number' && typeof n.loss === 'number'));

  // Without --progress and without a terminal: a line per change, ending COMPLETED (nothing left to compute).
  const again = tangent(['compute', '--checkpoint', checkpointId, '--terms', 'K_NORM', '--split', 'train', '--url', server.url]);
  t.after(() => again.stop());
  assert.equal(await again.exited, 0, again.stderr());
  assert.match(again.stdout(), /COMPLETED/);
  assert.doesNotMatch(again.stderr(), /NaN|Infinity/);

  // A checkpoint the server does not have: exit 1 with the server's code and message.
  const missing = tangent(['compute', '--checkpoint', '99999999', '--url', server.url]);
  t.after(() => missing.stop());
  assert.equal(await missing.exited, 1);
  assert.match(missing.stderr(), /^tangent compute: .*99999999.* \[NOT_FOUND\]/m);
  assert.equal(missing.stdout(), '');
});

test('Ctrl-C detaches tangent compute --url: the job stays on the server', { timeout: 180_000 }, async (t) => {
  // No worker on this server: the job waits in the queue, so the CLI is still following it.
  const server = await startTestServer({ env: { TANGENT_WORKER: 'off' } });
  t.after(() => server.close());
  const { dataset } = await importUcr(server, 'GunPoint');
  const cnn = await storeCnn(server, dataset);
  const cli = tangent(['compute', '--checkpoint', cnn.checkpoints[0]!.id, '--terms', 'LOSS', '--url', server.url]);
  t.after(() => cli.stop());
  await waitFor(cli, () => /job \d+ QUEUED/.test(cli.stderr()), 'the job queued');
  const jobId = /job (\d+) QUEUED/.exec(cli.stderr())![1]!;
  cli.child.kill('SIGINT');
  assert.equal(await cli.exited, 130);
  assert.match(cli.stderr(), new RegExp(`detached; job ${jobId} goes on running on the server`));
  const { job } = await server.gql(`query($id: ID!) { job(id: $id) { status } }`, { id: jobId });
  assert.equal(job.status, 'QUEUED');
});
