import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { initBackend, loadModel } from '../src/compute/index.js';
import { startTestServer, type TestServer } from './helpers/server.js';

/**
 * The Python client example (standard library only): it must at least compile; where python3 is
 * present it runs against a real server, with the pure-Python trainer and, where an interpreter
 * has PyTorch, with torch too. Tangent's engine then runs the logged weights of the built-in cnn1d
 * and must reproduce the logged logits, which checks the weight layouts the example converts to.
 */
const DIR = fileURLToPath(new URL('../examples/python/', import.meta.url));
const FILES = ['tangent_client.py', 'train_loop.py'].map((f) => `${DIR}${f}`);
// Byte code goes to a temporary folder, never next to the examples.
const ENV = { ...process.env, PYTHONDONTWRITEBYTECODE: '1', PYTHONPYCACHEPREFIX: mkdtempSync(join(tmpdir(), 'tangent-pycache-')) };

function works(python: string, code: string): boolean {
  try {
    execFileSync(python, ['-c', code], { stdio: 'ignore', timeout: 60_000, env: ENV });
    return true;
  } catch {
    return false;
  }
}
const PYTHON = ['python3', '/usr/bin/python3'].find((p) => works(p, 'import sys; assert sys.version_info >= (3, 8)')) ?? null;
const TORCH_PYTHON = ['python3', '/usr/bin/python3'].find((p) => works(p, 'import torch')) ?? null;

let t: TestServer;
before(async () => {
  t = await startTestServer();
  await initBackend('cpu', () => undefined);
});
after(async () => {
  await t?.close();
  rmSync(ENV.PYTHONPYCACHEPREFIX, { recursive: true, force: true });
});

function run(python: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(python, [`${DIR}train_loop.py`, ...args], { timeout: 180_000, env: ENV }, (error, stdout, stderr) =>
      resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** Runs the example and checks what it logged, down to the logits the stored weights produce. */
async function runAndCheck(python: string, extra: string[], trainer: string) {
  const result = await run(python, ['--url', t.url, '--epochs', '2', '--name', `py-${trainer}`, ...extra]);
  assert.equal(result.code, 0, result.stderr);
  const ids = JSON.parse(result.stdout.trim().split('\n').at(-1)!);
  assert.equal(ids.trainer, trainer);
  assert.equal(ids.samples, 1096);
  const data = await t.gql(
    `query($id: ID!) { run(id: $id) { status config checkpointCount dataset { splits { split count } samples(first: 5) { nodes { series } } }
       model { format architecture config inputLength channels numClasses }
       checkpoints { nodes { step epoch learningRate metrics(first: 5) { totalCount nodes { sample { index label } loss correct logits provenance { term producer { kind } } } } weights { specs data } } } } }`,
    { id: ids.runId },
  );
  const r = data.run;
  assert.equal(r.status, 'COMPLETED');
  assert.equal(r.config.extra.trainer, trainer);
  assert.equal(r.checkpointCount, 2);
  assert.deepEqual(r.dataset.splits, [{ split: 'test', count: 1029 }, { split: 'train', count: 67 }]);
  assert.deepEqual(r.checkpoints.nodes.map((c: any) => [c.step, c.epoch]), [[5, 1], [10, 2]]);
  for (const c of r.checkpoints.nodes) assert.equal(c.metrics.totalCount, 1096);

  const last = r.checkpoints.nodes.at(-1);
  const m = r.model;
  const engine = await loadModel({
    architecture: m.architecture,
    config: { ...m.config, length: m.inputLength, channels: m.channels, classes: m.numClasses },
    weightSpecs: last.weights.specs,
    weightData: Buffer.from(last.weights.data, 'base64'),
  });
  const x = tf.tensor3d(r.dataset.samples.nodes.flatMap((s: any) => s.series), [5, m.inputLength, m.channels]);
  const logits = Array.from(await (engine.model.predict(x) as tf.Tensor).data());
  tf.dispose(x);
  last.metrics.nodes.forEach((row: any, i: number) => {
    assert.equal(row.sample.index, i);
    assert.deepEqual(row.provenance.map((p: any) => p.term), ['LOSS', 'CORRECT', 'LOGITS']);
    for (let k = 0; k < 2; k++) {
      const want = logits[i * 2 + k]!;
      assert.ok(Math.abs(row.logits[k] - want) <= 1e-4 * Math.max(1, Math.abs(want)), `sample ${i} logit ${k}: logged ${row.logits[k]}, engine ${want}`);
    }
  });
}

describe('examples/python', () => {
  test('tangent_client.py and train_loop.py compile', { skip: PYTHON ? false : 'no python3 on this machine' }, () => {
    execFileSync(PYTHON!, ['-m', 'py_compile', ...FILES], { stdio: 'pipe', env: ENV });
  });

  test('train_loop.py (pure Python) logs a run Tangent can run', { skip: PYTHON ? false : 'no python3 on this machine' }, async () => {
    await runAndCheck(PYTHON!, ['--no-torch'], 'pure-python');
  });

  test('train_loop.py (PyTorch) logs a run Tangent can run', { skip: TORCH_PYTHON ? false : 'no python3 with torch on this machine' }, async () => {
    await runAndCheck(TORCH_PYTHON!, [], 'torch');
  });
});
