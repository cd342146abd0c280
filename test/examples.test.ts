import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { initBackend, loadModel } from '../src/compute/index.js';
import { startTestServer, type TestServer } from './helpers/server.js';

/** The Node.js client example, run as a user would against a real server, and what it logged. */
const EXAMPLE = fileURLToPath(new URL('../examples/node/log-run.ts', import.meta.url));
let t: TestServer;
before(async () => {
  t = await startTestServer();
  await initBackend('cpu', () => undefined);
});
after(() => t?.close());

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', EXAMPLE, ...args], { timeout: 120_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('examples/node', () => {
  test('log-run.ts trains, logs a run with checkpoints and per-sample metrics, and Tangent runs the logged weights to the logged logits', async () => {
    const result = await run(['--url', t.url, '--epochs', '2', '--name', 'node-example']);
    assert.equal(result.code, 0, result.stderr);
    const ids = JSON.parse(result.stdout.trim().split('\n').at(-1)!);
    assert.equal(ids.samples, 67 + 1029);
    assert.equal(ids.checkpoints.length, 3);
    const data = await t.gql(
      `query($id: ID!) { run(id: $id) { status config checkpointCount dataset { sampleCount splits { split count } samples(first: 4) { nodes { series } } }
         model { format topology numClasses }
         checkpoints { nodes { id step epoch metrics(first: 4) { totalCount nodes { sample { index label } loss correct logits } } weights { specs data } } } } }`,
      { id: ids.runId },
    );
    const r = data.run;
    assert.equal(r.status, 'COMPLETED');
    assert.deepEqual(r.config, { learningRate: 0.01, optimizer: 'adam', epochs: 2, batchSize: 16, seed: 1 });
    assert.equal(r.checkpointCount, 3);
    assert.deepEqual(r.dataset.splits, [{ split: 'test', count: 1029 }, { split: 'train', count: 67 }]);
    assert.equal(r.model.format, 'TFJS_LAYERS');
    assert.deepEqual(r.checkpoints.nodes.map((c: any) => [c.step, c.epoch]), [[0, null], [5, 1], [10, 2]]);
    for (const c of r.checkpoints.nodes) assert.equal(c.metrics.totalCount, 1096, `checkpoint ${c.step} has a row per sample`);

    // The logged weights, run by Tangent's engine, give the logits the client logged.
    const last = r.checkpoints.nodes.at(-1);
    const engine = await loadModel({ modelTopology: r.model.topology, weightSpecs: last.weights.specs, weightData: Buffer.from(last.weights.data, 'base64') });
    const x = tf.tensor3d(r.dataset.samples.nodes.flatMap((s: any) => s.series), [4, 24, 1]);
    const logits = Array.from(await (engine.model.predict(x) as tf.Tensor).data());
    tf.dispose(x);
    last.metrics.nodes.forEach((m: any, i: number) => {
      assert.equal(m.sample.index, i);
      for (let k = 0; k < 2; k++) assert.ok(Math.abs(m.logits[k] - logits[i * 2 + k]!) < 1e-5, `logit ${k} of sample ${i}: ${m.logits[k]} vs ${logits[i * 2 + k]}`);
      // loss = −log softmax(z)[y] and correct = (argmax z = y), as logged.
      const lse = Math.log(Math.exp(m.logits[0]) + Math.exp(m.logits[1]));
      assert.ok(Math.abs(m.loss - (lse - m.logits[m.sample.label])) < 1e-5);
      assert.equal(m.correct, (m.logits[1] > m.logits[0] ? 1 : 0) === m.sample.label);
    });
  });
});
