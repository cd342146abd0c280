/**
 * `npm run bench:trunk -- --json`: kNorm over the head at repeated checkpoints of a head fine-tune,
 * without and with the frozen-trunk cache (src/compute/trunk.ts), in this thread. Mantis-8M
 * (512 × 1, 10 classes, seeded weights) by default; each checkpoint changes only head_norm and head,
 * as head fine-tuning does. Without the cache every checkpoint runs the whole encoder; with it the
 * trunk runs once (`trunkFeatures`) and each checkpoint computes every term from its output. The
 * bits of logits, kNorm and kTrace are checked equal at every checkpoint. The last line printed is one
 * JSON object.
 *
 * Flags: --json, --arch mantis|cnn1d|transformer, --backend wasm|cpu|tensorflow (default wasm),
 * --samples 100, --checkpoints 5, --length 512 (series resampled from GunPoint).
 */
import os from 'node:os';
import { parseArgs } from 'node:util';
import { ARCHITECTURES, buildArchitecture, computeTerms, initBackend, loadWeights, prepareModel, serializeModel, trunkFeatures, type ArchitectureName, type BackendPreference } from '../src/compute/index.js';
import { pack, ucrSeries } from './ucr.js';

const { values: flags } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    arch: { type: 'string', default: 'mantis' },
    backend: { type: 'string', default: 'wasm' },
    samples: { type: 'string', default: '100' },
    checkpoints: { type: 'string', default: '5' },
    length: { type: 'string', default: '512' },
  },
});
const say = (line: string) => {
  if (!flags.json) console.log(line);
};

const arch = flags.arch as ArchitectureName;
if (!ARCHITECTURES.includes(arch)) throw new Error(`--arch: one of ${ARCHITECTURES.join(', ')}`);
const n = Number(flags.samples);
const points = Number(flags.checkpoints);
const length = Number(flags.length);
const backend = await initBackend(flags.backend as BackendPreference, () => {});
const classes = 10;
const model = buildArchitecture(arch, { length, channels: 1, classes, ...(arch === 'mantis' ? { dropout: 0 } : {}) });
const m = prepareModel(model);
const gun = await ucrSeries('GunPoint', 'TRAIN');
const x = pack(gun, n, length, 1);
const labels = Array.from({ length: n }, (_, i) => (gun.labels[i % gun.labels.length] as number) % classes);

// Checkpoints of a head fine-tune: the head's weights move, everything else stays byte-identical.
const stored = await serializeModel(model);
const base = new Float32Array(stored.weightData.slice(0));
const head = new Set(arch === 'mantis' ? ['head_norm', 'head'] : [m.graph.ops[m.graph.logits]?.name]);
const checkpoint = (k: number) => {
  const w = base.slice();
  let offset = 0;
  for (const spec of stored.weightSpecs) {
    const size = spec.shape.reduce((a, b) => a * b, 1);
    if (head.has(spec.name.slice(0, spec.name.lastIndexOf('/'))) && !spec.name.includes('moving')) {
      for (let i = offset; i < offset + size; i++) w[i] = (w[i] as number) * (1 + 0.02 * k) + 0.001 * k;
    }
    offset += size;
  }
  return { weightSpecs: stored.weightSpecs, weightData: w.buffer };
};

const cpu = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
const subset = 'head' as const;
say(`${arch}: ${m.parameterCount} parameters, ${n} samples of ${length} steps, ${points} checkpoints, ${backend.name}`);

// Without the cache: the whole forward pass at every checkpoint.
const plain: { s: number; logits: Float32Array; kNorm: Float32Array; kTrace: Float32Array }[] = [];
let c0 = cpu();
for (let k = 0; k < points; k++) {
  loadWeights(m, checkpoint(k));
  const t0 = performance.now();
  const r = await computeTerms(m, x, labels, { subset });
  plain.push({ s: (performance.now() - t0) / 1000, logits: r.logits, kNorm: r.kNorm, kTrace: r.kTrace });
  say(`  without cache, checkpoint ${k}: ${plain[k]!.s.toFixed(2)} s`);
}
const plainCpu = cpu() - c0;

// With the cache: the trunk once, then every checkpoint from its output.
c0 = cpu();
const t0 = performance.now();
loadWeights(m, checkpoint(0));
const t = await trunkFeatures(m, x, { subset });
const trunkS = (performance.now() - t0) / 1000;
say(`  trunk features once: ${trunkS.toFixed(2)} s (${t.width} floats per sample)`);
const cached: number[] = [];
let equal = true;
for (let k = 0; k < points; k++) {
  loadWeights(m, checkpoint(k));
  const t1 = performance.now();
  const r = await computeTerms(m, t.features, labels, { subset, fromTrunk: { width: t.width } });
  cached.push((performance.now() - t1) / 1000);
  const p = plain[k]!;
  const same = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
  equal &&= same(r.logits, p.logits) && same(r.kNorm, p.kNorm) && same(r.kTrace, p.kTrace);
  say(`  with cache, checkpoint ${k}: ${cached[k]!.toFixed(3)} s`);
}
const cachedCpu = cpu() - c0;
const sum = (v: number[]) => v.reduce((a, b) => a + b, 0);
const per100 = (s: number) => (s * 100) / n;
const result = {
  bench: 'trunk',
  arch,
  parameters: m.parameterCount,
  backend: backend.name,
  samples: n,
  length,
  checkpoints: points,
  trunkWidth: t.width,
  withoutCache: { totalS: sum(plain.map((p) => p.s)), per100SamplesPerCheckpointS: per100(sum(plain.map((p) => p.s)) / points), cpuS: plainCpu },
  withCache: { trunkS, totalS: trunkS + sum(cached), per100SamplesPerCheckpointS: per100(sum(cached) / points), cpuS: cachedCpu },
  speedupAtThisManyCheckpoints: sum(plain.map((p) => p.s)) / (trunkS + sum(cached)),
  speedupPerCheckpointAfterTheFirst: sum(plain.map((p) => p.s)) / points / (sum(cached) / points),
  bitsEqual: equal,
  loadAverage: os.loadavg().map((l) => Number(l.toFixed(2))),
};
console.log(JSON.stringify(result));
m.dispose();
if (!equal) process.exitCode = 1;
