/**
 * PyTorch checkpoints into Tangent: safetensors files of the three built-in architectures made by
 * PyTorch (bench/torch_models.py) import into the tfjs models and give PyTorch's logits and kNorm
 * (float64 reference) to 1e-4 relative. The committed fixtures are checked always; a fresh
 * comparison against PyTorch itself runs where /usr/bin/python3 has torch.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { buildArchitecture, initBackend, loadModel, logitsOf, selfKernel } from '../../src/compute/index.js';
import type { Subset } from '../../src/compute/index.js';
import { importTorchWeights, TorchImportError, torchImportTable } from '../../src/io/torch-import.js';
import type { TorchArchitecture } from '../../src/io/torch-import.js';
import { readSafetensors } from '../../src/io/safetensors.js';
import { fixtureCases, liveCase, maxRel, specsOf, torchVersion, writeSafetensors } from './safetensors-helpers.js';
import type { TorchCase } from './safetensors-helpers.js';

const TOL = 1e-4;

/** Imports a case and compares logits and kNorm per subset with PyTorch's; returns the worst relative differences. */
async function compare(c: TorchCase): Promise<{ logits: number; kNorm: Record<string, number> }> {
  const w = importTorchWeights(c.architecture, c.config, c.file);
  const m = await loadModel({ architecture: c.architecture, config: w.config, weightSpecs: w.weightSpecs, weightData: w.weightData });
  try {
    assert.deepEqual(m.generic, [], `${c.name}: every layer on the fast path`);
    const logits = maxRel(await logitsOf(m, c.x), c.expected.logits);
    assert.ok(logits <= TOL, `${c.name}: logits differ from PyTorch by ${logits.toExponential(2)} (relative)`);
    const kNorm: Record<string, number> = {};
    for (const subset of c.subsets) {
      // 'adapter' alone: the adapter's J, reached only through Mantis's no-gradient statistics.
      const k = await selfKernel(m, c.x, { subset: subset === 'adapter' ? ['adapter'] : (subset as Subset), returnK: false });
      assert.equal(k.info.path, 'fast');
      assert.deepEqual(k.info.genericLayers, []);
      assert.equal(k.info.parameters, c.expected.parameters[subset], `${c.name}: parameters in subset ${subset}`);
      kNorm[subset] = maxRel(k.kNorm, c.expected.kNorm[subset] as number[]);
      assert.ok(kNorm[subset] <= TOL, `${c.name}: kNorm over '${subset}' differs from PyTorch by ${kNorm[subset].toExponential(2)}`);
    }
    return { logits, kNorm };
  } finally {
    m.dispose();
  }
}

let fixturesCompared = 0;

describe('PyTorch checkpoints (safetensors) into the built-in architectures', () => {
  const cases = fixtureCases();

  test('the fixtures cover mantis (BatchNorm head; adapter and LayerNorm head), cnn1d and transformer in F32, F16, F64 and BF16', () => {
    assert.deepEqual(cases.map((c) => c.name), ['cnn1d', 'mantis', 'mantis-adapter', 'transformer']);
    const dtypes = new Set(cases.flatMap((c) => [...c.file.tensors.values()].filter((t) => t.name.endsWith('.weight')).map((t) => t.dtype)));
    assert.deepEqual([...dtypes].sort(), ['BF16', 'F16', 'F32', 'F64']);
  });

  for (const c of fixtureCases()) {
    test(`${c.name} (stored fixture): logits and kNorm over ${c.subsets.join(', ')} = PyTorch's to 1e-4`, async () => {
      await initBackend('wasm', () => {});
      await compare(c);
      fixturesCompared++;
    });
  }

  const version = torchVersion();
  test(version === null ? 'live PyTorch comparison: PyTorch absent (/usr/bin/python3 -c "import torch" fails), the stored fixtures were compared instead' : `live PyTorch ${version}: fresh random models of all three architectures, logits and kNorm to 1e-4`, async () => {
    if (version === null) {
      assert.equal(fixturesCompared, fixtureCases().length, 'every stored fixture was compared');
      return;
    }
    await initBackend('wasm', () => {});
    const specs: Array<{ name: string; architecture: TorchArchitecture; config: Record<string, unknown>; subsets: string[]; dtype?: string }> = [
      { name: 'mantis', architecture: 'mantis', config: { length: 96, channels: 2, classes: 5, patches: 6, dim: 16, depth: 2, heads: 2, headDim: 8, mlpDim: 24, scalarDim: 8 }, subsets: ['all', 'head'] },
      { name: 'mantis-adapter', architecture: 'mantis', config: { length: 40, channels: 3, classes: 3, patches: 4, dim: 8, depth: 1, heads: 1, headDim: 8, mlpDim: 16, scalarDim: 4, adapterChannels: 2, headNorm: 'layernorm' }, subsets: ['all', 'adapter_head', 'adapter'], dtype: 'BF16' },
      { name: 'cnn1d', architecture: 'cnn1d', config: { length: 50, channels: 3, classes: 4, filters: [6, 4], kernelSizes: [5, 2], pool: 3 }, subsets: ['all', 'head'] },
      { name: 'transformer', architecture: 'transformer', config: { length: 30, channels: 1, classes: 3, patch: 5, dim: 12, depth: 2, heads: 3, mlpDim: 10 }, subsets: ['all', 'head'], dtype: 'F16' },
    ];
    for (const [i, s] of specs.entries()) {
      const c = liveCase(s.name, { ...s, seed: 100 + i + (Date.now() % 1000), n: 3 });
      await compare(c);
    }
  });

  test('the mapping tables name exactly the built models’ weights (names and shapes)', async () => {
    await initBackend('cpu', () => {});
    const configs: Array<[TorchArchitecture, Record<string, unknown>]> = [
      ['mantis', { length: 64, channels: 2, classes: 3, patches: 4, dim: 8, depth: 2, heads: 2, headDim: 4, mlpDim: 8, scalarDim: 4 }],
      ['mantis', { length: 30, channels: 3, classes: 2, patches: 5, dim: 6, depth: 1, heads: 1, headDim: 6, mlpDim: 8, scalarDim: 4, adapterChannels: 1, headNorm: 'layernorm', scalarScales: [0.5, 2] }],
      ['cnn1d', { length: 32, channels: 2, classes: 3 }],
      ['transformer', { length: 32, channels: 1, classes: 4, patch: 8, dim: 8, heads: 2, depth: 3 }],
    ];
    for (const [arch, config] of configs) {
      const model = buildArchitecture(arch, config);
      const built = model.weights.map((w) => `${w.originalName} [${w.shape.join(',')}]`).sort();
      const table = torchImportTable(arch, config).weights.map((w) => `${w.tfjs} [${w.shape.join(',')}]`).sort();
      assert.deepEqual(table, built, `${arch} ${JSON.stringify(config)}`);
      model.dispose();
    }
  });

  test('refuses missing, extra, mis-shaped and integer tensors and buffers that contradict the config, listing every problem', () => {
    const c = cases.find((x) => x.name === 'mantis')!;
    const tensors = specsOf(c.file);
    const problems = (edit: (t: typeof tensors) => void, config = c.config): string[] => {
      const t = structuredClone(tensors);
      edit(t);
      try {
        importTorchWeights('mantis', config, readSafetensors(writeSafetensors(t)));
      } catch (error) {
        assert.ok(error instanceof TorchImportError);
        return error.problems;
      }
      assert.fail('the import should have been refused');
    };
    assert.deepEqual(problems((t) => delete t['head.1.weight']), ["missing tensor 'head.1.weight' ([3, 16], for head/kernel)"]);
    assert.deepEqual(problems((t) => (t['encoder.extra.weight'] = { dtype: 'F32', shape: [2], values: [1, 2] })), ["unexpected tensor 'encoder.extra.weight' ([2]): mantis has no such weight"]);
    assert.deepEqual(
      problems((t) => (t['head.1.bias'] = { dtype: 'F32', shape: [4], values: [1, 2, 3, 4] })),
      ["tensor 'head.1.bias' has shape [4]; mantis with this config needs [3]"],
    );
    assert.deepEqual(
      problems((t) => (t['head.1.bias'] = { dtype: 'I64', shape: [3], values: [1, 2, 3] })),
      ["tensor 'head.1.bias' is I64; a weight must be floating point (F32, F16, BF16 or F64)"],
    );
    // The older Mantis8M name of the transformer unit is accepted, but not both names at once.
    const renamed = problems((t) => {
      for (const k of Object.keys(t)) {
        if (k.startsWith('encoder.transf_unit.')) {
          t[k.replace('encoder.transf_unit.', 'encoder.vit_unit.')] = t[k]!;
          delete t[k];
        }
      }
      delete t['head.0.bias'];
    });
    assert.deepEqual(renamed, ["missing tensor 'head.0.bias' ([16], for head_norm/beta)"]);
    const both = problems((t) => (t['encoder.vit_unit.cls_token'] = t['encoder.transf_unit.cls_token']!));
    assert.deepEqual(both, ["tensors 'encoder.transf_unit.cls_token' and 'encoder.vit_unit.cls_token' are the same weight under two names"]);
    // Several problems at once; a config whose scales are not the file's.
    const many = problems((t) => {
      delete t['encoder.tokgen_unit.convs.0.conv.bias'];
      t['surplus'] = { dtype: 'F32', shape: [1], values: [0] };
    }, { ...c.config, scalarScales: [1, 10, 100, 1000, 10000, 1e5, 1e6, 1e7, 1e8] });
    assert.equal(many.length, 4, many.join('\n'));
    assert.ok(many.some((p) => p.startsWith("missing tensor 'encoder.tokgen_unit.convs.0.conv.bias'")));
    assert.ok(many.some((p) => p.startsWith("unexpected tensor 'surplus'")));
    assert.ok(many.some((p) => /scalar_encoders\.0\.scales is \[.*\] but config\.scalarScales is \[1, 10/.test(p)));
    // A config the file does not fit: every weight of the other width is named.
    const narrow = problems(() => {}, { ...c.config, dim: 8 });
    assert.ok(narrow.length > 10 && narrow.every((p) => /has shape|differs from the sinusoidal|pe has shape/.test(p)), narrow.join('\n'));
    assert.throws(() => torchImportTable('mantis', { length: 60, patches: 7 }), /length 60 must be a multiple of patches 7/);
    assert.throws(() => torchImportTable('transformer', { dim: 10, heads: 3 }), /dim 10 must be divisible by config.heads 3/);
    assert.throws(() => torchImportTable('cnn1d', { filters: [4], kernelSizes: [3, 3] }), /equal length/);
  });

  test('known non-weights are skipped and reported: buffers, the BatchNorm counter, the pre-training projector', () => {
    const c = cases.find((x) => x.name === 'mantis')!;
    const w = importTorchWeights('mantis', c.config, c.file);
    assert.deepEqual(w.ignored.map((i) => i.name).sort(), [
      'encoder.prj.0.bias',
      'encoder.prj.0.weight',
      'encoder.prj.1.bias',
      'encoder.prj.1.weight',
      'encoder.tokgen_unit.scalar_encoders.0.scales',
      'encoder.tokgen_unit.scalar_encoders.1.scales',
      'encoder.transf_unit.pos_encoder.pe',
      'head.0.num_batches_tracked',
    ]);
    assert.equal(w.mapping.length + w.ignored.length, c.file.tensors.size);
    const conv = w.mapping.find((m) => m.torch === 'encoder.tokgen_unit.convs.1.conv.weight');
    assert.deepEqual(conv, { torch: 'encoder.tokgen_unit.convs.1.conv.weight', tfjs: 'conv_series/kernel', layout: 'conv' });
    assert.deepEqual(w.mapping.find((m) => m.torch === 'head.0.running_var'), { torch: 'head.0.running_var', tfjs: 'head_norm/moving_variance', layout: 'same' });
    // Conv1d [out, in, k] → Conv1D [k, in, out]: element (o, 0, j) lands at (j, 0, o).
    const src = c.file.tensors.get('encoder.tokgen_unit.convs.1.conv.weight')!;
    const [out, , k] = src.shape as [number, number, number];
    const spec = w.weightSpecs.findIndex((s) => s.name === 'conv_series/kernel');
    const offset = w.weightSpecs.slice(0, spec).reduce((a, s) => a + s.shape.reduce((x, y) => x * y, 1), 0);
    const dst = new Float32Array(w.weightData.buffer, w.weightData.byteOffset + offset * 4, out * k);
    assert.equal(dst[(2 * 1 + 0) * out + 5], src.values[(5 * 1 + 0) * k + 2]);
  });
});
