import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { readCsv, readJsonl, type MetricBatch } from '../../src/io/metrics-file.js';
import { canonicalJson, modelShapeOf, parseModelJson, topologyHash, TfjsModelError } from '../../src/io/tfjs-model.js';
import { applyLengthPolicy } from '../../src/io/length-policy.js';
import { parseUcr, UcrFormatError } from '../../src/io/ucr.js';
import { planUcrImport, splitOfFileName, UcrImportError } from '../../src/io/ucr-import.js';
import { readUcr } from '../helpers/fixtures.js';
import { assertClose, CLASSES, expectedLinear, timeMajor, variableLengthUcr } from './ucr-variable.js';

/** The file readers behind `tangent import` and the import mutations, on their own. */
async function all(batches: AsyncGenerator<MetricBatch>): Promise<MetricBatch[]> {
  const out = [];
  for await (const b of batches) out.push(b);
  return out;
}
const text = (s: string) => Readable.from([s]);

describe('metrics files', () => {
  test('CSV: aliases, vectors as one cell or one column per class, booleans, batches with line numbers', async () => {
    const csv = 'sample_index,Loss,correct,k_norm,logits_0,logits_1,probs\n0,1.5,true,2,0.5,-0.5,"0.25 0.75"\n1,2.5,0,3,1,-1,[0.5;0.5]\n\n2,3.5,yes,4,2,-2,"0.1,0.9"\n';
    const batches = await all(readCsv(text(csv), 2));
    assert.equal(batches.length, 2);
    assert.deepEqual(batches[0], {
      firstLine: 2,
      lines: [2, 3],
      ref: 'sampleIndices',
      refs: [0, 1],
      columns: { loss: [1.5, 2.5], correct: [true, false], kNorm: [2, 3], logits: [[0.5, -0.5], [1, -1]], probs: [[0.25, 0.75], [0.5, 0.5]] },
    });
    assert.deepEqual(batches[1]!.lines, [5]);
    assert.deepEqual(batches[1]!.columns.probs, [[0.1, 0.9]]);
  });

  test('JSONL: keys by field or column name, the same terms on every line, errors name the line', async () => {
    const [batch] = await all(readJsonl(text('{"sampleId": 7, "gNorm": 0.5, "logits": [1, 2]}\n\n{"sample_id": 9, "g_norm": 1, "logits": [3, 4]}\n'), 10));
    assert.deepEqual(batch, { firstLine: 1, lines: [1, 3], ref: 'sampleIds', refs: [7, 9], columns: { gNorm: [0.5, 1], logits: [[1, 2], [3, 4]] } });
    const cases: [string, RegExp][] = [
      ['{"sampleId": 1, "loss": 1}\n{"sampleId": 2}\n', /line 2: loss is missing/],
      ['{"sampleId": 1, "loss": 1}\n{"sampleId": 2, "loss": 1, "kNorm": 2}\n', /line 2: kNorm is not in the first row/],
      ['{"sampleId": 1, "loss": "NaN"}\n', /line 1: loss is "NaN", not a finite number/],
      ['{"sampleId": 1, "sampleIndex": 1, "loss": 1}\n', /line 1: each row names its sample by sampleId or by sampleIndex/],
      ['{"sampleId": 1, "lost": 1}\n', /line 1: unknown key "lost"/],
      ['{"sampleId": 1, "loss": 1}\nnot json\n', /line 2: not valid JSON/],
      ['{"sampleId": 1, "correct": "maybe"}\n', /line 1: correct is "maybe", not a boolean/],
    ];
    for (const [input, message] of cases) await assert.rejects(all(readJsonl(text(input), 10)), message);
    await assert.rejects(all(readCsv(text('sample_index,what\n1,2\n'), 10)), /unknown column "what"/);
    await assert.rejects(all(readCsv(text('sample_index,logits_0,logits_2\n1,2,3\n'), 10)), /line 2: logits\[1\] is missing/);
    await assert.rejects(all(readCsv(text('sample_index,loss\n1,2,3\n'), 10)), /Invalid Record Length/i);
  });
});

describe('model.json', () => {
  const dense = (name: string, units: number, inbound: string) => ({ name, class_name: 'Dense', config: { name, units }, inbound_nodes: [[[inbound, 0, 0, {}]]] });

  test('shape of Sequential and functional topologies, through a softmax after the head', () => {
    const sequential = parseModelJson({
      modelTopology: {
        class_name: 'Sequential',
        config: { name: 'seq', layers: [{ class_name: 'Conv1D', config: { filters: 4, batch_input_shape: [null, 24, 3] } }, { class_name: 'Dense', config: { units: 5 } }, { class_name: 'Activation', config: { activation: 'softmax' } }] },
      },
    });
    assert.deepEqual(modelShapeOf(sequential), { name: 'seq', inputLength: 24, channels: 3, numClasses: 5 });
    const functional = parseModelJson({
      format: 'layers-model',
      modelTopology: {
        class_name: 'Functional',
        config: {
          name: 'fn',
          layers: [
            { name: 'in', class_name: 'InputLayer', config: { batch_shape: [null, 100, 6] }, inbound_nodes: [] },
            dense('hidden', 32, 'in'),
            dense('head', 4, 'hidden'),
            { name: 'soft', class_name: 'Softmax', config: { name: 'soft' }, inbound_nodes: [[['head', 0, 0, {}]]] },
          ],
          input_layers: [['in', 0, 0]],
          output_layers: [['soft', 0, 0]],
        },
      },
      weightsManifest: [{ paths: ['a.bin'], weights: [{ name: 'hidden/kernel', shape: [6, 32], dtype: 'float32' }] }],
    });
    assert.deepEqual(modelShapeOf(functional), { name: 'fn', inputLength: 100, channels: 6, numClasses: 4 });
    // A rank-2 input says nothing about channels; the caller must give them.
    const flat = parseModelJson({ modelTopology: { class_name: 'Sequential', config: [{ class_name: 'Dense', config: { units: 2, batch_input_shape: [null, 24] } }] } });
    assert.deepEqual(modelShapeOf(flat), { name: null, inputLength: null, channels: null, numClasses: 2 });
  });

  test('refuses graph models, quantized weights and malformed manifests; hashes ignore key order and library versions', () => {
    assert.throws(() => parseModelJson({ format: 'graph-model', modelTopology: { node: [] } }), TfjsModelError);
    assert.throws(() => parseModelJson({ modelTopology: { class_name: 'Sequential', config: {} }, weightsManifest: [{ paths: [], weights: [{ name: 'w', shape: [1], dtype: 'float32', quantization: { dtype: 'uint8' } }] }] }), /quantized/);
    assert.throws(() => parseModelJson({ modelTopology: { class_name: 'Sequential', config: {} }, weightsManifest: {} }), /weightsManifest/);
    const a = parseModelJson({ modelTopology: { class_name: 'Sequential', config: { b: 1, a: [1, { y: 2, x: 1 }] }, keras_version: '1' } });
    const b = parseModelJson({ modelTopology: { keras_version: '2', config: { a: [1, { x: 1, y: 2 }], b: 1 }, class_name: 'Sequential' } });
    assert.equal(canonicalJson({ b: 1, a: { d: 1, c: 2 } }), '{"a":{"c":2,"d":1},"b":1}');
    assert.equal(topologyHash(a), topologyHash(b));
  });
});

describe('UCR imports', () => {
  test('split from file names; train, validation, test order whatever the order given; classes mapped by name', async () => {
    assert.equal(splitOfFileName('/x/GunPoint_TRAIN.ts'), 'train');
    assert.equal(splitOfFileName('GunPoint_test.ts'), 'test');
    assert.equal(splitOfFileName('Foo_VALIDATION.ts'), 'validation');
    assert.equal(splitOfFileName('Foo.ts'), null);
    const train = await readUcr('ArrowHead_TRAIN');
    const test = await readUcr('ArrowHead_TEST');
    // The test file lists its classes in another order: labels follow the names, not the positions.
    const shuffled = { ...test, classNames: ['2', '0', '1'], series: test.series.map((s) => ({ ...s, label: [1, 2, 0][s.label]! })) };
    const plan = planUcrImport([{ dataset: shuffled, fileName: 'ArrowHead_TEST.ts' }, { dataset: train, fileName: 'ArrowHead_TRAIN.ts' }]);
    assert.deepEqual(plan.counts, [{ split: 'train', count: 36 }, { split: 'test', count: 175 }]);
    assert.deepEqual(plan.classNames, ['0', '1', '2']);
    assert.deepEqual(Array.from(plan.labels.subarray(36)), test.series.map((s) => s.label));
    assert.deepEqual(Array.from(plan.series.subarray(36 * 251, 37 * 251)), Array.from(test.series[0]!.values));
    assert.deepEqual(Array.from(plan.indices.subarray(0, 3)), [0, 1, 2]);
    const motions = await readUcr('BasicMotions_TRAIN');
    assert.throws(() => planUcrImport([{ dataset: train }, { dataset: motions }]), /have 6 channels; the first file's have 1/);
  });
});

describe('variable-length UCR/UEA files', () => {
  const file = variableLengthUcr(9);
  const parse = (text: string) => parseUcr(text.split('\n'));

  test('each line keeps its own length, channels time-major, with its line; @equalLength false is remembered', async () => {
    const d = await parse(file.text);
    assert.equal(d.problemName, 'VariableVowels');
    assert.deepEqual([d.length, d.channels, d.classNames, d.equalLengthLine], [0, 3, CLASSES, file.equalLengthLine]);
    assert.deepEqual(
      d.series.map((s) => [s.label, s.length, s.line]),
      file.series.map((s) => [CLASSES.indexOf(s.label), s.channels[0]!.length, s.line]),
    );
    assert.deepEqual(new Set(d.series.map((s) => s.length)), new Set([7, 8, 9, 10, 11, 12, 13, 14, 15]));
    for (const [i, s] of d.series.entries()) assertClose(s.values, timeMajor(file.series[i]!.channels), 1e-6, `series ${i}`);
  });

  test('channels of one line must share its length; an equal-length file must be equal; both name the line', async () => {
    const lines = file.text.split('\n');
    const at = file.series[2]!.line - 1;
    const [first, ...rest] = lines[at]!.split(':');
    const ragged = [...lines];
    ragged[at] = [`${first},0.5`, ...rest].join(':');
    await assert.rejects(parse(ragged.join('\n')), (e: UcrFormatError) => e.line === at + 1 && /channel 1 has \d+ values, channel 0 has \d+/.test(e.message));
    const declaredEqual = lines.map((l) => (l === '@equalLength false' ? '@equalLength true' : l));
    await assert.rejects(parse(declaredEqual.join('\n')), (e: UcrFormatError) => e.line === file.series[1]!.line && /does not say @equalLength false/.test(e.message));
  });

  test('without a policy the plan is refused at the @equalLength header; with one every series has the length', async () => {
    const d = await parse(file.text);
    assert.throws(
      () => planUcrImport([{ dataset: d, fileName: 'VariableVowels_TRAIN.ts' }]),
      (e: UcrImportError) => e.line === file.equalLengthLine && e.needsLengthPolicy && /line \d+: @equalLength false: the series have 7 to 15 steps/.test(e.message),
    );
    const linear = planUcrImport([{ dataset: d }], { length: 12, resample: 'linear' });
    assert.deepEqual([linear.length, linear.channels, Array.from(linear.originalLengths!)], [12, 3, d.series.map((s) => s.length)]);
    for (const [i, s] of file.series.entries()) {
      assertClose(linear.series.subarray(i * 36, (i + 1) * 36), expectedLinear(s.channels, 12), 1e-6, `series ${i}`);
    }
    // Pad refuses the first series longer than the length, naming its line and length; truncate the first shorter one.
    const longer = file.series.find((s) => s.channels[0]!.length > 12)!;
    assert.throws(() => planUcrImport([{ dataset: d }], { length: 12, resample: 'pad' }), (e: UcrImportError) => e.line === longer.line && /has 1[3-5] steps, more than 12.*truncate or linear/.test(e.message));
    const shorter = file.series.find((s) => s.channels[0]!.length < 12)!;
    assert.throws(() => planUcrImport([{ dataset: d }], { length: 12, resample: 'truncate' }), (e: UcrImportError) => e.line === shorter.line && /has \d+ steps, fewer than 12.*pad or linear/.test(e.message));
    const padded = planUcrImport([{ dataset: d }], { length: 15, resample: 'pad' });
    const s0 = file.series[0]!;
    assert.deepEqual(Array.from(padded.series.subarray(0, 45)), [...Array.from(Float32Array.from(timeMajor(s0.channels))), ...new Array(45 - s0.channels[0]!.length * 3).fill(0)]);
    const truncated = planUcrImport([{ dataset: d }], { length: 7, resample: 'truncate' });
    const s1 = file.series[1]!;
    assert.deepEqual(Array.from(truncated.series.subarray(21, 42)), Array.from(Float32Array.from(timeMajor(s1.channels.map((c) => c.slice(0, 7))))));
  });

  test('linear keeps both ends; one step repeats its value; one target step takes the first; equal-length files resample too', async () => {
    assert.deepEqual(Array.from(applyLengthPolicy(Float32Array.of(1, 10, 3, 30), 2, 2, { length: 3, resample: 'linear' })), [1, 10, 2, 20, 3, 30]);
    assert.deepEqual(Array.from(applyLengthPolicy(Float32Array.of(5, -5), 1, 2, { length: 3, resample: 'linear' })), [5, -5, 5, -5, 5, -5]);
    assert.deepEqual(Array.from(applyLengthPolicy(Float32Array.of(1, 2, 3), 3, 1, { length: 1, resample: 'linear' })), [1]);
    const gunPoint = await readUcr('GunPoint_TRAIN');
    const plan = planUcrImport([{ dataset: gunPoint }], { length: 512, resample: 'linear' });
    assert.equal(plan.length, 512);
    assert.deepEqual(new Set(plan.originalLengths), new Set([150]));
    const first = gunPoint.series[0]!.values;
    assertClose(plan.series.subarray(0, 512), expectedLinear([Array.from(first)], 512), 1e-6, 'GunPoint 0');
    assert.equal(plan.series[511], first[149]);
  });
});
