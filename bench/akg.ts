/**
 * `npm run bench:akg -- --json`: throughput of the compute engine's self-kernel K(x, x) and of a
 * cross kernel K(x_o, x_u), per backend, on the two reference architectures, with peak memory and
 * where the time goes; when PyTorch is installed (/usr/bin/python3 with torch), the same models,
 * weights and inputs through functorch `vmap(jacrev)`, the throughput ratio, and the largest
 * relative difference of K against PyTorch in float64. The last line printed is one JSON object.
 *
 * Mantis at its real size (Mantis-8M: 8.0M parameters, input 512 × 1, 10 classes): seconds per
 * 100 samples of kNorm over the head only and over the whole model, per backend, with the CPU
 * seconds, peak resident memory and peak tensor bytes; 'all' is timed on a few samples and scaled
 * to 100 (said in the output). With PyTorch, the same architecture built in PyTorch with random
 * weights (bench/torch_models.py), saved as safetensors, imported into Tangent, and its logits and
 * kNorm compared (float64 reference), with PyTorch's own time for the same kNorms.
 *
 * Flags: --json (only the JSON line on stdout), --arch cnn1d|transformer|mantis|all, --backends
 * tensorflow,wasm,cpu (any of tensorflow, webgpu, wasm, cpu; webgpu takes a software adapter too),
 * --n 256 (self-K samples), --cross 256 (cross-K set size), --cpu-n 32
 * (sizes on the slow pure-JS backend), --chunk 16, --projection 1024, --repeat 3 (best of),
 * --mantis-backends tensorflow,wasm, --mantis-head-n 64, --mantis-all-n 4, --no-torch, --keep
 * (keep the exchange folder with PyTorch), --quick. `backendAgreement` compares each backend's K
 * with the first one listed (`--backends webgpu,wasm`: WebGPU against wasm).
 */
import * as tf from '@tensorflow/tfjs';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  crossKernel,
  createPool,
  initBackend,
  prepareModel,
  selfKernel,
  serializeModel,
  buildArchitecture,
  loadModel,
  logitsOf,
  mantis,
  CNN1D_DEFAULTS,
  MANTIS_DEFAULTS,
  TRANSFORMER_DEFAULTS,
} from '../src/compute/index.js';
import { readSafetensors } from '../src/io/safetensors.js';
import { importTorchWeights } from '../src/io/torch-import.js';
import type {
  ArchitectureName,
  BackendInfo,
  BackendPreference,
  CrossKernelOptions,
  CrossKernelResult,
  EngineModel,
  RunOptions,
  SelfKernelResult,
} from '../src/compute/index.js';
import { pack, ucrSeries } from './ucr.js';
import { flag, opt } from './args.js';

const jsonOnly = flag('json');
const quick = flag('quick');
const say = (line: string) => (jsonOnly ? process.stderr : process.stdout).write(`${line}\n`);

const archArg = opt('arch', 'all');
const archs: ArchitectureName[] = archArg === 'all' ? ['cnn1d', 'transformer'] : archArg === 'mantis' ? [] : [archArg as ArchitectureName];
const withMantis = archArg === 'all' || archArg === 'mantis';
const mantisBackends = opt('mantis-backends', 'tensorflow,wasm').split(',');
const mantisHeadN = Number(opt('mantis-head-n', quick ? '16' : '64'));
const mantisAllN = Number(opt('mantis-all-n', quick ? '2' : '4'));
const backends = opt('backends', 'tensorflow,wasm,cpu').split(',');
const nSelf = Number(opt('n', quick ? '64' : '256'));
const nCross = Number(opt('cross', quick ? '64' : '256'));
const cpuN = Number(opt('cpu-n', quick ? '8' : '32'));
const chunk = Number(opt('chunk', '16'));
const projDim = Number(opt('projection', '1024'));
const repeat = Number(opt('repeat', quick ? '2' : '3'));

/** Real inputs: ArrowHead and GunPoint series (univariate) resampled to the model's length. */
const pool = await (async () => {
  const sets = await Promise.all([ucrSeries('ArrowHead', 'TEST'), ucrSeries('GunPoint', 'TEST'), ucrSeries('ArrowHead', 'TRAIN'), ucrSeries('GunPoint', 'TRAIN')]);
  // Different lengths: resample each set to 512 first, then pool them as one univariate set.
  const length = 512;
  const series = sets.flatMap((d) => d.series.map((s) => pack({ series: [s], length: d.length, channels: d.channels }, 1, length, 1)));
  return { series, length, channels: 1 };
})();

function inputs(n: number, length: number, channels: number): Float32Array {
  return pack(pool, n, length, channels);
}

function rss(): number {
  return process.memoryUsage().rss;
}

interface Row {
  arch: ArchitectureName;
  backend: string;
  /** Compute threads: 1 is the engine in this thread; more is a ComputePool. */
  threads: number;
  gpu: boolean;
  version: string;
  parameters: number;
  selfK: {
    n: number;
    seconds: number;
    samplesPerSecond: number;
    /** n over the CPU seconds the process used (all threads): per-core throughput, robust to other load. */
    cpuSamplesPerSecond: number;
    chunkSize: number;
    jacobianShare: number;
    reduceShare: number;
  };
  crossK: { no: number; nu: number; seconds: number; pairsPerSecond: number; samplesPerSecond: number };
  crossKProjected: { dim: number; no: number; nu: number; seconds: number; pairsPerSecond: number; selfKRelError: { mean: number; max: number } };
  /** Tensor memory at its peak within one chunk (single-thread rows), per thread. */
  peakTensorBytes: number | null;
  /** Resident memory of the whole process (all threads) at its highest after a chunk. */
  peakRssBytes: number;
  topKernels: Array<{ kernel: string; ms: number; share: number }> | null;
  K: Float32Array;
}

/** One chunk under tf.profile: the tensor-memory peak and the kernels the time went to. */
async function profileChunk(m: EngineModel, x: Float32Array): Promise<{ peak: number; top: NonNullable<Row['topKernels']> }> {
  const info = await tf.profile(async () => {
    await selfKernel(m, x, { chunkSize: chunk, returnK: false });
  });
  const byName = new Map<string, number>();
  let total = 0;
  for (const k of info.kernels) {
    const ms = await (k as unknown as { kernelTimeMs: number | Promise<number> }).kernelTimeMs;
    const v = typeof ms === 'number' ? ms : 0;
    byName.set(k.name, (byName.get(k.name) ?? 0) + v);
    total += v;
  }
  const top = [...byName.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, 8)
    .map(([kernel, ms]) => ({ kernel, ms: Math.round(ms * 10) / 10, share: Math.round((ms / total) * 1000) / 1000 }));
  return { peak: info.peakBytes, top };
}

type Skipped = { arch: ArchitectureName; backend: string; threads: number; skipped: string };

/** The engine in this thread, or a pool of threads, behind one shape. */
interface Runner {
  info: BackendInfo;
  parameters: number;
  self(x: Float32Array, opts: RunOptions): Promise<SelfKernelResult>;
  cross(xo: Float32Array, xu: Float32Array, opts: CrossKernelOptions): Promise<CrossKernelResult>;
  profile?(x: Float32Array): Promise<{ peak: number; top: NonNullable<Row['topKernels']> }>;
  close(): Promise<void>;
}

async function runner(arch: ArchitectureName, backend: string, threads: number): Promise<Runner> {
  if (threads > 1) {
    const pool = await createPool({ threads, backend: backend as BackendPreference, log: () => {} });
    const model = await pool.load({ architecture: arch });
    return {
      info: pool.backend,
      parameters: model.parameterCount,
      self: (x, opts) => pool.selfKernel(model, x, opts),
      cross: (xo, xu, opts) => pool.crossKernel(model, xo, xu, opts),
      close: () => pool.close(),
    };
  }
  const info = await initBackend(backend as BackendPreference, () => {});
  const m = prepareModel(buildArchitecture(arch));
  return {
    info,
    parameters: m.parameterCount,
    self: (x, opts) => selfKernel(m, x, opts),
    cross: (xo, xu, opts) => crossKernel(m, xo, xu, opts),
    profile: (x) => profileChunk(m, x),
    close: async () => m.dispose(),
  };
}

async function runOne(arch: ArchitectureName, backend: string, threads: number): Promise<Row | Skipped> {
  let r: Runner;
  try {
    r = await runner(arch, backend, threads);
  } catch (err) {
    return { arch, backend, threads, skipped: err instanceof Error ? err.message : String(err) };
  }
  const slow = backend === 'cpu';
  const cfg = arch === 'cnn1d' ? CNN1D_DEFAULTS : TRANSFORMER_DEFAULTS;
  const n = slow ? Math.min(cpuN, nSelf) : nSelf;
  const nc = slow ? Math.min(cpuN, nCross) : nCross;
  const per = cfg.length * cfg.channels;
  const x = inputs(Math.max(n, 2 * nc), cfg.length, cfg.channels);
  let peakRss = rss();
  const track = () => {
    peakRss = Math.max(peakRss, rss());
  };
  try {
    await r.self(x.subarray(0, Math.min(n, 4 * chunk * threads) * per), { chunkSize: chunk }); // warm-up
    // Best of `repeat` runs: this machine is shared, so the fastest run is the least disturbed one.
    const cpuRun = async () => {
      const c0 = process.cpuUsage();
      const res = await r.self(x.subarray(0, n * per), { chunkSize: chunk, onProgress: track });
      const c = process.cpuUsage(c0);
      return { res, cpu: (c.user + c.system) / 1e6 };
    };
    let { res: self, cpu: selfCpu } = await cpuRun();
    for (let i = 1; i < (slow ? 1 : repeat); i++) {
      const again = await cpuRun();
      if (again.res.info.timings.totalMs < self.info.timings.totalMs) self = again.res;
      selfCpu = Math.min(selfCpu, again.cpu);
    }
    const selfS = self.info.timings.totalMs / 1000;
    const xo = x.subarray(0, nc * per);
    const xu = x.subarray(nc * per, 2 * nc * per);
    const t1 = performance.now();
    await r.cross(xo, xu, { chunkSize: chunk, returnK: false, onProgress: track });
    const crossS = (performance.now() - t1) / 1000;
    const t2 = performance.now();
    const proj = await r.cross(xo, xu, { chunkSize: chunk, returnK: false, projection: { dim: projDim, seed: 7 }, onProgress: track });
    const projS = (performance.now() - t2) / 1000;
    const prof = r.profile === undefined ? null : await r.profile(x.subarray(0, chunk * per));
    track();
    const t = self.info.timings;
    const work = t.jacobianMs + t.reduceMs;
    return {
      arch,
      backend: r.info.name,
      threads,
      gpu: r.info.gpu,
      version: r.info.version,
      parameters: r.parameters,
      selfK: {
        n,
        seconds: round(selfS),
        samplesPerSecond: round(n / selfS),
        cpuSamplesPerSecond: round(n / selfCpu),
        chunkSize: self.info.chunkSize,
        jacobianShare: round(t.jacobianMs / work),
        reduceShare: round(t.reduceMs / work),
      },
      crossK: { no: nc, nu: nc, seconds: round(crossS), pairsPerSecond: round((nc * nc) / crossS), samplesPerSecond: round((2 * nc) / crossS) },
      crossKProjected: {
        dim: projDim,
        no: nc,
        nu: nc,
        seconds: round(projS),
        pairsPerSecond: round((nc * nc) / projS),
        selfKRelError: proj.projection?.selfKRelError ?? { mean: NaN, max: NaN },
      },
      peakTensorBytes: prof?.peak ?? null,
      peakRssBytes: peakRss,
      topKernels: prof?.top ?? null,
      K: self.K as Float32Array,
    };
  } finally {
    await r.close();
  }
}

function round(v: number): number {
  return Math.round(v * 1000) / 1000;
}

/** Largest per-sample relative difference: ‖ΔK‖_F / ‖K_ref‖_F and max|ΔK| / max|K_ref|. */
function kDiff(a: ArrayLike<number>, ref: ArrayLike<number>, n: number, V: number): { frobenius: number; entry: number } {
  let fro = 0;
  let entry = 0;
  for (let s = 0; s < n; s++) {
    let num = 0;
    let den = 0;
    let maxD = 0;
    let maxR = 0;
    for (let i = 0; i < V * V; i++) {
      const r = ref[s * V * V + i] as number;
      const d = (a[s * V * V + i] as number) - r;
      num += d * d;
      den += r * r;
      maxD = Math.max(maxD, Math.abs(d));
      maxR = Math.max(maxR, Math.abs(r));
    }
    fro = Math.max(fro, Math.sqrt(num / den));
    entry = Math.max(entry, maxD / maxR);
  }
  return { frobenius: fro, entry };
}

function torchAvailable(): string | null {
  const r = spawnSync('/usr/bin/python3', ['-c', 'import torch, functorch; print(torch.__version__)'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

async function torchRun(arch: ArchitectureName, n: number, nc: number): Promise<{ result: Record<string, unknown>; k64: Float64Array; k32: Float32Array } | null> {
  const cfg = arch === 'cnn1d' ? CNN1D_DEFAULTS : TRANSFORMER_DEFAULTS;
  await initBackend('cpu', () => {});
  const model = buildArchitecture(arch);
  const stored = await serializeModel(model);
  model.dispose();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tangent-akg-'));
  try {
    let offset = 0;
    const weights = stored.weightSpecs.map((s) => {
      const size = s.shape.reduce((a, b) => a * b, 1);
      const w = { name: s.name, shape: s.shape, offset };
      offset += size;
      return w;
    });
    writeFileSync(path.join(dir, 'weights.bin'), new Uint8Array(stored.weightData));
    const x = inputs(Math.max(n, 2 * nc), cfg.length, cfg.channels);
    // Self-K on the first n samples; cross-K between the first nc and the next nc, as here.
    writeFileSync(path.join(dir, 'x.bin'), new Uint8Array(x.buffer, x.byteOffset, x.byteLength));
    writeFileSync(path.join(dir, 'spec.json'), JSON.stringify({ architecture: arch, config: cfg, n: Math.max(n, 2 * nc), selfN: n, cross: nc, chunk, repeat: Math.max(3, repeat), weights }));
    const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'akg_torch.py');
    execFileSync('/usr/bin/python3', [script, dir], { stdio: ['ignore', 'ignore', 'inherit'] });
    const result = JSON.parse(readFileSync(path.join(dir, 'torch.json'), 'utf8')) as Record<string, unknown>;
    const b64 = readFileSync(path.join(dir, 'k_torch64.bin'));
    const b32 = readFileSync(path.join(dir, 'k_torch32.bin'));
    return {
      result,
      k64: new Float64Array(b64.buffer.slice(b64.byteOffset, b64.byteOffset + b64.byteLength)),
      k32: new Float32Array(b32.buffer.slice(b32.byteOffset, b32.byteOffset + b32.byteLength)),
    };
  } finally {
    if (flag('keep')) say(`[akg]   kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}


// ---------------------------------------------------------------------------------------------
// Mantis at its real size

interface MantisTiming {
  subset: 'head' | 'all';
  parameters: number;
  /** Samples actually timed. */
  n: number;
  chunkSize: number;
  seconds: number;
  /** seconds / n × 100; for 'all' an extrapolation from n samples. */
  secondsPer100: number;
  cpuSecondsPer100: number;
  extrapolated: boolean;
  /** Tensor memory at its peak within one chunk (tf.profile). */
  peakTensorBytes: number;
}

interface MantisRow {
  backend: string;
  gpu: boolean;
  version: string;
  parameters: number;
  head: MantisTiming;
  all: MantisTiming;
  /** Resident memory after building the model, and at its highest while computing. */
  rssAfterBuildBytes: number;
  peakRssBytes: number;
  loadavg: number[];
}

async function mantisRow(backend: string): Promise<MantisRow | { backend: string; skipped: string }> {
  let info: BackendInfo;
  try {
    info = await initBackend(backend as BackendPreference, () => {});
  } catch (err) {
    return { backend, skipped: err instanceof Error ? err.message : String(err) };
  }
  const m = prepareModel(mantis());
  const rssAfterBuild = rss();
  let peakRss = rssAfterBuild;
  const track = () => {
    peakRss = Math.max(peakRss, rss());
  };
  const x = inputs(Math.max(mantisHeadN, mantisAllN), MANTIS_DEFAULTS.length, MANTIS_DEFAULTS.channels);
  const per = MANTIS_DEFAULTS.length * MANTIS_DEFAULTS.channels;
  try {
    const time = async (subset: 'head' | 'all', n: number): Promise<MantisTiming> => {
      await selfKernel(m, x.subarray(0, per), { subset, returnK: false }); // warm-up
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      const r = await selfKernel(m, x.subarray(0, n * per), { subset, returnK: false, onProgress: track });
      const seconds = (performance.now() - t0) / 1000;
      const c = process.cpuUsage(c0);
      const prof = await tf.profile(async () => {
        await selfKernel(m, x.subarray(0, Math.min(n, r.info.chunkSize) * per), { subset, returnK: false });
      });
      track();
      return {
        subset,
        parameters: r.info.parameters,
        n,
        chunkSize: r.info.chunkSize,
        seconds: round(seconds),
        secondsPer100: round((seconds / n) * 100),
        cpuSecondsPer100: round(((c.user + c.system) / 1e6 / n) * 100),
        extrapolated: n !== 100,
        peakTensorBytes: prof.peakBytes,
      };
    };
    const head = await time('head', mantisHeadN);
    const all = await time('all', mantisAllN);
    return { backend: info.name, gpu: info.gpu, version: info.version, parameters: m.parameterCount, head, all, rssAfterBuildBytes: rssAfterBuild, peakRssBytes: peakRss, loadavg: os.loadavg() };
  } finally {
    m.dispose();
  }
}

/**
 * PyTorch's Mantis with random weights (bench/torch_models.py bench): its safetensors file
 * imported into Tangent, logits and kNorm against PyTorch's float64 ones, and PyTorch's float32
 * time for the same kNorms (vmap(jacrev) over the subset, one thread).
 */
async function mantisTorch(backend: string): Promise<Record<string, unknown>> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tangent-akg-mantis-'));
  try {
    const accuracyN = 2;
    writeFileSync(
      path.join(dir, 'spec.json'),
      JSON.stringify({ architecture: 'mantis', config: {}, seed: 21, n: accuracyN, accuracyN, subsets: ['head', 'all'], chunk: 1, time: { head: mantisHeadN, all: mantisAllN }, timeChunk: { head: Math.min(mantisHeadN, 16), all: 1 }, threads: 1 }),
    );
    const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'torch_models.py');
    execFileSync('/usr/bin/python3', [script, 'bench', dir], { stdio: ['ignore', 'ignore', 'inherit'] });
    const expected = JSON.parse(readFileSync(path.join(dir, 'expected.json'), 'utf8')) as { logits: number[]; kNorm: Record<'head' | 'all', number[]> };
    const timings = JSON.parse(readFileSync(path.join(dir, 'timings.json'), 'utf8')) as {
      torch: string;
      threads: number;
      peakRssBytes: number;
      timings: Record<'head' | 'all', { n: number; chunk: number; seconds: number; cpuSeconds: number; parameters: number }>;
    };
    const bytes = readFileSync(path.join(dir, 'weights.safetensors'));
    const t0 = performance.now();
    const w = importTorchWeights('mantis', {}, readSafetensors(bytes));
    const importSeconds = (performance.now() - t0) / 1000;
    await initBackend(backend as BackendPreference, () => {});
    const m = await loadModel({ architecture: 'mantis', config: w.config, weightSpecs: w.weightSpecs, weightData: w.weightData });
    try {
      const xb = readFileSync(path.join(dir, 'x.bin'));
      const x = new Float32Array(xb.buffer.slice(xb.byteOffset, xb.byteOffset + xb.byteLength));
      const rel = (a: ArrayLike<number>, b: number[]) => {
        let d = 0;
        let mx = 0;
        for (let i = 0; i < b.length; i++) {
          d = Math.max(d, Math.abs((a[i] as number) - (b[i] as number)));
          mx = Math.max(mx, Math.abs(b[i] as number));
        }
        return d / mx;
      };
      const head = await selfKernel(m, x, { subset: 'head', returnK: false });
      const all = await selfKernel(m, x, { subset: 'all', returnK: false });
      const per100 = (t: { n: number; seconds: number }) => round((t.seconds / t.n) * 100);
      return {
        version: timings.torch,
        threads: timings.threads,
        fileBytes: bytes.byteLength,
        importSeconds: round(importSeconds),
        samplesCompared: accuracyN,
        maxRelVsTorch64: { logits: rel(await logitsOf(m, x), expected.logits), kNormHead: rel(head.kNorm, expected.kNorm.head), kNormAll: rel(all.kNorm, expected.kNorm.all) },
        head: { n: timings.timings.head.n, secondsPer100: per100(timings.timings.head), cpuSecondsPer100: round((timings.timings.head.cpuSeconds / timings.timings.head.n) * 100) },
        all: { n: timings.timings.all.n, secondsPer100: per100(timings.timings.all), cpuSecondsPer100: round((timings.timings.all.cpuSeconds / timings.timings.all.n) * 100), extrapolated: timings.timings.all.n !== 100 },
        peakRssBytes: timings.peakRssBytes,
      };
    } finally {
      m.dispose();
    }
  } finally {
    if (flag('keep')) say(`[akg]   kept ${dir}`);
    else rmSync(dir, { recursive: true, force: true });
  }
}

async function mantisSection(): Promise<Record<string, unknown>> {
  const loadavgBefore = os.loadavg();
  const rows: Array<MantisRow | { backend: string; skipped: string }> = [];
  for (const backend of mantisBackends) {
    say(`[akg] mantis (real size) on ${backend} …`);
    const row = await mantisRow(backend);
    rows.push(row);
    if ('skipped' in row) {
      say(`[akg]   skipped: ${row.skipped}`);
      continue;
    }
    say(
      `[akg]   ${row.parameters} parameters; kNorm over the head (${row.head.parameters}): ${row.head.secondsPer100} s per 100 samples (n=${row.head.n}); ` +
        `over all: ${row.all.secondsPer100} s per 100 (${row.all.extrapolated ? `extrapolated from ${row.all.n}` : 'measured'}); ` +
        `rss ${(row.peakRssBytes / 2 ** 20).toFixed(0)} MiB, peak tensors ${(row.all.peakTensorBytes / 2 ** 20).toFixed(0)} MiB (all), ${(row.head.peakTensorBytes / 2 ** 20).toFixed(0)} MiB (head)`,
    );
  }
  let torch: Record<string, unknown> | null = null;
  const ran = rows.find((r): r is MantisRow => !('skipped' in r));
  const version = flag('no-torch') ? null : torchAvailable();
  if (version !== null && ran !== undefined) {
    say(`[akg] mantis in PyTorch ${version}: random weights → safetensors → Tangent …`);
    torch = await mantisTorch(ran.backend);
    const d = torch['maxRelVsTorch64'] as Record<string, number>;
    const th = torch['head'] as { secondsPer100: number };
    const ta = torch['all'] as { secondsPer100: number };
    say(
      `[akg]   imported ${((torch['fileBytes'] as number) / 2 ** 20).toFixed(1)} MiB in ${torch['importSeconds'] as number} s; max rel vs torch float64: logits ${d['logits']!.toExponential(2)}, kNorm head ${d['kNormHead']!.toExponential(2)}, all ${d['kNormAll']!.toExponential(2)}; ` +
        `PyTorch (${torch['threads'] as number} thread): head ${th.secondsPer100} s, all ${ta.secondsPer100} s per 100`,
    );
  } else if (version === null) {
    say('[akg] mantis: PyTorch not found or skipped: "torch": null');
  }
  return {
    architecture: 'mantis',
    config: { ...MANTIS_DEFAULTS },
    note: `kNorm over 'all' is timed on ${mantisAllN} samples and scaled to 100; 'head' on ${mantisHeadN}`,
    loadavgBefore,
    loadavgAfter: os.loadavg(),
    results: rows,
    torch,
  };
}

const loadavgAtStart = os.loadavg();

async function main(): Promise<void> {
  const rows: Array<Row | Skipped> = [];
  const cores = os.availableParallelism();
  for (const arch of archs) {
    for (const backend of backends) {
      // The engine on one thread, then (wasm runs on one core) a pool over every core. The pure-JS
      // cpu backend is measured on a few samples only, so one thread says all there is to say.
      const threadCounts = backend !== 'wasm' || cores === 1 ? [1] : [1, cores];
      for (const threads of threadCounts) {
        say(`[akg] ${arch} on ${backend}, ${threads} thread${threads > 1 ? 's' : ''} …`);
        const row = await runOne(arch, backend, threads);
        rows.push(row);
        if ('skipped' in row) {
          say(`[akg]   skipped: ${row.skipped}`);
          break;
        }
        say(`[akg]   self-K ${row.selfK.samplesPerSecond} samples/s (${row.selfK.cpuSamplesPerSecond} per CPU-second; n=${row.selfK.n}, chunk ${row.selfK.chunkSize}); cross-K ${row.crossK.no}×${row.crossK.nu} in ${row.crossK.seconds} s (${row.crossK.pairsPerSecond} pairs/s); projected d=${row.crossKProjected.dim} ${row.crossKProjected.seconds} s; rss ${(row.peakRssBytes / 2 ** 20).toFixed(0)} MiB`);
        if (row.topKernels !== null) {
          say(`[akg]   peak tensors ${((row.peakTensorBytes ?? 0) / 2 ** 20).toFixed(0)} MiB; time: ${row.topKernels.map((k) => `${k.kernel} ${(k.share * 100).toFixed(0)}%`).join(', ')}`);
        }
      }
    }
  }
  const torchVersion = flag('no-torch') ? null : torchAvailable();
  const torch: Record<string, unknown> = {};
  const comparison: Array<Record<string, unknown>> = [];
  if (torchVersion !== null) {
    for (const arch of archs) {
      say(`[akg] ${arch} in PyTorch ${torchVersion} …`);
      const t = await torchRun(arch, nSelf, nCross);
      if (t === null) continue;
      torch[arch] = t.result;
      const V = (arch === 'cnn1d' ? CNN1D_DEFAULTS : TRANSFORMER_DEFAULTS).classes;
      const byThreads = t.result['selfKByThreads'] as Record<string, number>;
      const cpuByThreads = t.result['selfKCpuByThreads'] as Record<string, number>;
      const crossByThreads = t.result['crossKByThreads'] as Record<string, number>;
      const k32 = kDiff(t.k32, t.k64, nSelf, V);
      for (const r of rows) {
        if ('skipped' in r || r.arch !== arch) continue;
        const ts = byThreads[String(r.threads)] ?? (t.result['selfK'] as { samplesPerSecond: number }).samplesPerSecond;
        const tc = crossByThreads[String(r.threads)] ?? (t.result['crossK'] as { pairsPerSecond: number }).pairsPerSecond;
        const d = kDiff(r.K, t.k64, r.selfK.n, V);
        comparison.push({
          arch,
          backend: r.backend,
          threads: r.threads,
          torchThreads: byThreads[String(r.threads)] !== undefined ? r.threads : t.result['threads'],
          selfKRatio: round(r.selfK.samplesPerSecond / ts),
          selfKRatioCpuTime: round(r.selfK.cpuSamplesPerSecond / (cpuByThreads[String(r.threads)] ?? NaN)),
          crossKRatio: round(r.crossK.pairsPerSecond / tc),
          maxRelKvsTorch64: { frobenius: d.frobenius, entry: d.entry },
          torch32vsTorch64: { frobenius: k32.frobenius, entry: k32.entry },
        });
        say(`[akg]   ${r.backend} ×${r.threads}: self-K ${round(r.selfK.samplesPerSecond / ts)}× PyTorch (${round(ts)}/s; per CPU-second ${round(r.selfK.cpuSamplesPerSecond / (cpuByThreads[String(r.threads)] ?? NaN))}×), cross-K ${round(r.crossK.pairsPerSecond / tc)}× (${round(tc)} pairs/s); max rel ΔK vs torch float64: ${d.frobenius.toExponential(2)} (Frobenius), ${d.entry.toExponential(2)} (entry); torch float32: ${k32.frobenius.toExponential(2)}`);
      }
    }
  } else {
    say(flag('no-torch') ? '[akg] PyTorch skipped (--no-torch)' : '[akg] PyTorch not found (/usr/bin/python3 -c "import torch" failed): "torch": null');
  }
  // Backends agree: compare each backend's K with the first available one on common samples.
  const ok = rows.filter((r): r is Row => !('skipped' in r) && r.threads === 1);
  const agreement: Array<Record<string, unknown>> = [];
  for (const arch of archs) {
    const rs = ok.filter((r) => r.arch === arch);
    const ref = rs[0];
    if (ref === undefined) continue;
    const V = (arch === 'cnn1d' ? CNN1D_DEFAULTS : TRANSFORMER_DEFAULTS).classes;
    for (const r of rs.slice(1)) {
      const n = Math.min(r.selfK.n, ref.selfK.n);
      agreement.push({ arch, backends: [ref.backend, r.backend], samples: n, maxRelK: kDiff(r.K, ref.K, n, V) });
    }
  }
  const mantisOut = withMantis ? await mantisSection() : null;
  const out = {
    bench: 'akg',
    // Other work on the machine shows in wall-clock numbers (not in the per-CPU-second ones).
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model ?? '', node: process.version, loadavgAtStart, loadavgAtEnd: os.loadavg() },
    results: rows.map((r) => ('skipped' in r ? r : { ...r, K: undefined })),
    backendAgreement: agreement,
    torch: torchVersion === null ? null : { version: torchVersion, ...torch },
    comparison,
    mantis: mantisOut,
  };
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:akg failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
