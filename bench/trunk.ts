/**
 * `npm run bench:trunk -- --json`: kNorm over the head at repeated checkpoints of a head fine-tune,
 * without and with the frozen-trunk cache (src/compute/trunk.ts), in this thread. Mantis-8M
 * (512 × 1, 10 classes, seeded weights) by default; each checkpoint changes only head_norm and head,
 * as head fine-tuning does. Without the cache every checkpoint runs the whole encoder; with it the
 * trunk runs once (`trunkFeatures`) and each checkpoint computes every term from its output. The
 * bits of logits, kNorm and kTrace are checked equal at every checkpoint. The last line printed is one
 * JSON object.
 *
 * With --server, the same through the API instead: an in-process server (embedded database in
 * memory, 2 compute threads) with the model and its checkpoints stored, a `computeTerms` job of kNorm
 * over the head at each checkpoint in turn, timed from the mutation to COMPLETED, once with the cache
 * (TANGENT_TRUNK_CACHE_MB default) and once without (0); the jobs' `samplesFromTrunkCache`, and
 * every stored kNorm compared between the two servers.
 *
 * Flags: --json, --arch mantis|cnn1d|transformer, --backend wasm|cpu|tensorflow (default wasm),
 * --samples 100, --checkpoints 5, --length 512 (series resampled from GunPoint), --server.
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
    server: { type: 'boolean', default: false },
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
const sum = (v: number[]) => v.reduce((a, b) => a + b, 0);

if (flags.server) {
  console.log(JSON.stringify(await throughServer()));
  m.dispose();
} else {
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
}

/**
 * The same measurement through the API: computeTerms jobs at each checkpoint, with and without the
 * cache. Both servers run side by side, their compute threads started together, and take each
 * checkpoint's job in turn (one job at a time).
 */
async function throughServer() {
  const { loadConfig } = await import('../src/platform/config.js');
  const { createLogger } = await import('../src/platform/logger.js');
  const { createServer } = await import('../src/server.js');
  type Side = { name: string; gql: (query: string, variables?: Record<string, unknown>) => Promise<any>; close: () => Promise<void>; jobS: number[]; hits: number[]; kNorm: number[][]; runId?: string; ids?: string[] };
  const start = async (name: string, mb: string): Promise<Side> => {
    const env = { PORT: '0', LOG_LEVEL: 'error', NODE_ENV: 'production', TANGENT_DATA_DIR: 'memory://', TANGENT_COMPUTE_THREADS: '2', TANGENT_QUEUE_POLL_SECONDS: '0.5', TANGENT_TRUNK_CACHE_MB: mb, TANGENT_AUTH: 'off' };
    const config = loadConfig(env);
    const server = await createServer(config, { log: createLogger(config) });
    const gql = async (query: string, variables?: Record<string, unknown>): Promise<any> => {
      const response = await fetch(server.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) });
      const body = (await response.json()) as { data?: any; errors?: unknown[] };
      if (body.errors?.length) throw new Error(JSON.stringify(body.errors));
      return body.data;
    };
    return { name, gql, close: () => server.close(), jobS: [], hits: [], kNorm: [] };
  };
  const on = await start('withCache', '256');
  const off = await start('withoutCache', '0');
  try {
    // Asking for the backend starts the compute threads: both load the engine at the same moment.
    await Promise.all([on, off].map((s) => s.gql('{ serverInfo { backend { name } } }')));
    for (const s of [on, off]) {
      const samples = labels.map((label, index) => ({ index, label, split: 'train', series: Array.from(x.subarray(index * length, (index + 1) * length)) }));
      const { createDataset } = await s.gql(`mutation($input: CreateDatasetInput!) { createDataset(input: $input) { id samples(first: 1000) { nodes { id } } } }`, {
        input: { name: 'bench-trunk', length, channels: 1, classNames: Array.from({ length: classes }, (_, c) => `c${c}`), samples },
      });
      s.ids = createDataset.samples.nodes.map((r: { id: string }) => r.id);
      const { createModel } = await s.gql(`mutation($input: CreateModelInput!) { createModel(input: $input) { id } }`, {
        input: { name: 'bench-trunk', format: 'BUILTIN', architecture: arch, config: arch === 'mantis' ? { dropout: 0 } : {}, inputLength: length, channels: 1, numClasses: classes },
      });
      s.runId = (await s.gql(`mutation($input: CreateRunInput!) { createRun(input: $input) { id } }`, { input: { name: 'bench-trunk', modelId: createModel.id, datasetId: createDataset.id } })).createRun.id;
    }
    for (let k = 0; k < points; k++) {
      const w = checkpoint(k);
      const weightData = Buffer.from(w.weightData).toString('base64');
      for (const s of [on, off]) {
        const { createCheckpoint } = await s.gql(`mutation($input: CreateCheckpointInput!) { createCheckpoint(input: $input) { id } }`, {
          input: { runId: s.runId, step: k, learningRate: 0.01, weightSpecs: w.weightSpecs, weightData },
        });
        const t0 = performance.now();
        const { computeTerms: job } = await s.gql(`mutation($input: ComputeTermsInput!) { computeTerms(input: $input) { id } }`, { input: { checkpointId: createCheckpoint.id, terms: ['K_NORM'], subset } });
        let done: any;
        do {
          await new Promise((r) => setTimeout(r, 100));
          done = (await s.gql(`query($id: ID!) { job(id: $id) { status error progress { samplesFromTrunkCache } } }`, { id: job.id })).job;
        } while (done.status === 'QUEUED' || done.status === 'RUNNING');
        if (done.status !== 'COMPLETED') throw new Error(`job ${job.id}: ${done.status} ${done.error}`);
        s.jobS.push((performance.now() - t0) / 1000);
        s.hits.push(done.progress.samplesFromTrunkCache);
        const terms = await s.gql(`query($c: ID!, $ids: [ID!]!) { checkpoint(id: $c) { sampleTerms(sampleIds: $ids, terms: [K_NORM], subset: "head") { kNorm } } }`, { c: createCheckpoint.id, ids: s.ids });
        s.kNorm.push(terms.checkpoint.sampleTerms.map((r: { kNorm: number }) => r.kNorm));
        say(`  ${s.name}, checkpoint ${k}: job ${s.jobS[k]!.toFixed(2)} s, ${s.hits[k]} samples from the trunk cache`);
      }
    }
  } finally {
    await on.close();
    await off.close();
  }
  return {
    bench: 'trunk',
    mode: 'server',
    arch,
    parameters: m.parameterCount,
    samples: n,
    length,
    checkpoints: points,
    computeThreads: 2,
    withCache: { jobS: on.jobS, totalS: sum(on.jobS), samplesFromTrunkCache: on.hits },
    withoutCache: { jobS: off.jobS, totalS: sum(off.jobS), samplesFromTrunkCache: off.hits },
    speedupAtThisManyCheckpoints: sum(off.jobS) / sum(on.jobS),
    kNormEqualPerCheckpoint: on.kNorm.map((v, k) => JSON.stringify(v) === JSON.stringify(off.kNorm[k])),
    loadAverage: os.loadavg().map((l) => Number(l.toFixed(2))),
  };
}
