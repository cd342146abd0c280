/**
 * `npm run bench:seed -- --json`: the experiment Tangent was made for, end to end through the API:
 * Mantis-8M (seeded random weights: there is no model hub here) fine-tuned in head mode on 10% of a
 * real UCR data set from datasets/ucr resampled to 512 steps, 100 tracked samples analysed at 450
 * analysis points. It prints the dynamics summary block, the training time (trainRun until
 * COMPLETED: trunk once, head steps, and at every point the forward terms of the tracked samples and
 * a checkpoint, whose unchanged layers are stored once for the whole run) and the analysis time
 * (kNorm and kTrace over the head, K = J Jᵀ with J over head_norm and head, of the tracked samples
 * at every point: `Checkpoint.sampleTerms` with
 * subset "head", `--per-request` checkpoints per request) separately.
 *
 * The frozen-trunk cache (TANGENT_TRUNK_CACHE_MB), where this build has it (serverInfo.compute
 * .trunkCache): `--cache both` (the default) trains the run twice (same seed: the same weights),
 * analyses the first with the cache off and the second with it on, and checks the kNorms are equal
 * bit for bit. `--cache off|on` does one.
 *
 * PyTorch (when /usr/bin/python3 imports torch and functorch): the same head kNorm the usual way, the
 * trunk recomputed at each point (bench/torch_models.py `bench`, Mantis with this config, `--track`
 * samples, 2 threads), timed at one point and multiplied by the points (every point costs the same
 * there), and the ratio to Tangent's analysis.
 *
 * The data set: ItalyPowerDemand is the one in datasets/ucr with enough samples for 100 tracked at
 * 10% (its TEST file has 1,029 series; its TRAIN file 67), so the run trains on the split `test`.
 *
 * Flags: --points 450 --track 100 --epochs 50 --fraction 0.1 --batch 6 --lr 0.001 --optimizer adamw
 * --seed 1 --dataset ItalyPowerDemand --split test --length 512 --mantis '{"depth":2}' (config over
 * Mantis-8M's) --cache both|on|off --per-request 10 --threads 2 --backend <TANGENT_BACKEND>
 * --url postgresql://… (a scratch database there instead of an embedded one on disk) --no-torch --json;
 * --safetensors FILE starts from your own Mantis checkpoint instead of seeded weights (MantisTrainer's
 * `fine_tuned_model.state_dict()` saved as safetensors; `--mantis` gives its config where it is not 8M's).
 * The last line printed is one JSON object.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os, { loadavg } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { MANTIS_DEFAULTS } from '../src/compute/index.js';
import { trainPlan } from '../src/modules/training/train-plan.js';
import { loadConfig } from '../src/platform/config.js';
import { createLogger } from '../src/platform/logger.js';
import { createServer, type RunningServer } from '../src/server.js';
import { flag, opt } from './args.js';

const json = flag('json');
const say = (line: string) => (json ? process.stderr : process.stdout).write(`${line}\n`);
const round = (v: number, d = 3) => Math.round(v * 10 ** d) / 10 ** d;

const POINTS = Number(opt('points', '450'));
const TRACK = Number(opt('track', '100'));
const EPOCHS = Number(opt('epochs', '50'));
const FRACTION = Number(opt('fraction', '0.1'));
const BATCH = Number(opt('batch', '6'));
const LR = Number(opt('lr', '0.001'));
const OPTIMIZER = opt('optimizer', 'adamw').toUpperCase();
const SEED = Number(opt('seed', '1'));
const DATASET = opt('dataset', 'ItalyPowerDemand');
const SPLIT = opt('split', 'test');
const LENGTH = Number(opt('length', '512'));
const MANTIS = JSON.parse(opt('mantis', '{}')) as Record<string, unknown>;
const CACHE = opt('cache', 'both');
const PER_REQUEST = Number(opt('per-request', '10'));
const THREADS = opt('threads', '2');
if (!['both', 'on', 'off'].includes(CACHE)) throw new Error('--cache is both, on or off');
if (!(POINTS >= 2) || !(TRACK >= 1) || !(EPOCHS >= 1)) throw new Error('--points ≥ 2, --track ≥ 1, --epochs ≥ 1');

const UCR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'datasets', 'ucr');
const dataDir = opt('url', '') ? null : mkdtempSync(path.join(os.tmpdir(), 'tangent-seed-'));
let databaseUrl: string | undefined;
if (opt('url', '')) {
  const u = new URL(opt('url', ''));
  const admin = new (await import('pg')).default.Client({ connectionString: u.toString() });
  await admin.connect();
  const name = `tangent_seed_${process.pid}`;
  await admin.query(`DROP DATABASE IF EXISTS ${name}`);
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  u.pathname = `/${name}`;
  databaseUrl = u.toString();
}

let server: RunningServer | null = null;
/** With --safetensors: the imported checkpoint training starts from. */
let fromCheckpointId: string | null = null;
async function start(cacheOn: boolean): Promise<void> {
  const env: Record<string, string> = {
    LOG_LEVEL: 'warn',
    PORT: '0',
    HOST: '127.0.0.1',
    TANGENT_COMPUTE_THREADS: THREADS,
    TANGENT_INLINE_MAX_SAMPLES: '1000000',
    TANGENT_COMPUTE_TIMEOUT_MS: '3600000',
    TANGENT_STATEMENT_TIMEOUT_MS: '0',
    TANGENT_WORKER: 'on',
    ...(cacheOn ? {} : { TANGENT_TRUNK_CACHE_MB: '0' }),
    ...(opt('backend', '') ? { TANGENT_BACKEND: opt('backend', '') } : {}),
    ...(databaseUrl ? { DATABASE_URL: databaseUrl } : { TANGENT_DATA_DIR: dataDir! }),
  };
  const config = loadConfig(env);
  server = await createServer(config, { log: createLogger(config) });
}
async function stop(): Promise<void> {
  await server?.close();
  server = null;
}

async function request(query: string, variables: Record<string, unknown> = {}): Promise<{ data?: any; errors?: { message: string; extensions?: Record<string, unknown> }[] }> {
  // A read is sent again when its connection was reset: the embedded database runs on the server's
  // event loop, and a long write (a checkpoint of 8M weights) can outlast an idle keep-alive socket.
  for (let attempt = 1; ; attempt++) {
    try {
      const res = await fetch(server!.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) });
      return (await res.json()) as never;
    } catch (error) {
      if (attempt >= 5 || query.trimStart().startsWith('mutation')) throw error;
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
}
async function gql(query: string, variables: Record<string, unknown> = {}): Promise<any> {
  const r = await request(query, variables);
  if (r.errors?.length) throw new Error(`GraphQL: ${JSON.stringify(r.errors).slice(0, 2000)}`);
  return r.data;
}

/** The trunk cache's counters, or null where this build has none. */
async function trunkCache(): Promise<{ hits: number; misses: number } | null> {
  const r = await request('{ serverInfo { compute { trunkCache { hits misses } } } }');
  return r.errors?.length ? null : r.data.serverInfo.compute.trunkCache;
}

const file = (name: string) => ({ text: readFileSync(path.join(UCR, `${name}.ts`), 'utf8'), fileName: `${name}.ts` });

async function train(modelId: string, datasetId: string, trackEverySteps: number): Promise<{ runId: string; seconds: number; tracked: string[]; checkpoints: string[]; shas: string[] }> {
  const t0 = performance.now();
  const { trainRun } = await gql(`mutation($input: TrainRunInput!) { trainRun(input: $input) { id } }`, {
    input: {
      modelId,
      datasetId,
      fineTuning: 'HEAD',
      optimizer: OPTIMIZER,
      learningRate: LR,
      epochs: EPOCHS,
      batchSize: BATCH,
      seed: SEED,
      split: SPLIT,
      trainFraction: FRACTION,
      analyzeEvery: EPOCHS,
      trackEverySteps,
      trackSamples: TRACK,
      fromCheckpointId,
    },
  });
  let last = '';
  for (;;) {
    const { run } = await gql(`query($id: ID!) { run(id: $id) { status training { error progress { stepsDone steps pointsDone points epochLoss } } } }`, { id: trainRun.id });
    const p = run.training.progress;
    const line = `[seed]   run ${trainRun.id} ${run.status}: step ${p.stepsDone}/${p.steps}, ${p.pointsDone}/${p.points} points, loss ${p.epochLoss === null ? '-' : round(p.epochLoss, 4)}`;
    if (line !== last && (p.pointsDone % 50 === 0 || run.status !== 'RUNNING')) say(line);
    last = line;
    if (run.status === 'COMPLETED') break;
    if (run.status !== 'PENDING' && run.status !== 'RUNNING') throw new Error(`training ${run.status}: ${run.training.error}`);
    await new Promise((r) => setTimeout(r, 500));
  }
  const seconds = (performance.now() - t0) / 1000;
  const { run } = await gql(`query($id: ID!) { run(id: $id) { training { trackedSamples { id } } } }`, { id: trainRun.id });
  const checkpoints: string[] = [];
  const shas: string[] = [];
  let after: string | null = null;
  do {
    const page: any = await gql(`query($id: ID!, $after: String) { run(id: $id) { checkpoints(first: 1000, after: $after) { pageInfo { hasNextPage endCursor } nodes { id weightSha256 } } } }`, { id: trainRun.id, after });
    checkpoints.push(...page.run.checkpoints.nodes.map((c: { id: string }) => c.id));
    shas.push(...page.run.checkpoints.nodes.map((c: { weightSha256: string }) => c.weightSha256));
    after = page.run.checkpoints.pageInfo.hasNextPage ? page.run.checkpoints.pageInfo.endCursor : null;
  } while (after);
  return { runId: trainRun.id, seconds, tracked: run.training.trackedSamples.map((s: { id: string }) => s.id), checkpoints, shas };
}

/** kNorm and kTrace over the head of the tracked samples at every checkpoint; the kNorms, checkpoint-major. */
async function analyse(checkpoints: string[], tracked: string[]): Promise<{ seconds: number; kNorm: Float64Array; cache: { hits: number; misses: number } | null }> {
  const before = await trunkCache();
  const kNorm = new Float64Array(checkpoints.length * tracked.length);
  const t0 = performance.now();
  // The first point alone: a cold trunk cache fills once, rather than once per checkpoint of a batch computed side by side.
  let next = 0;
  while (next < checkpoints.length) {
    const start = next;
    next = start === 0 ? 1 : Math.min(checkpoints.length, start + PER_REQUEST);
    const part = checkpoints.slice(start, next);
    const fields = part.map((id, i) => `c${i}: checkpoint(id: "${id}") { sampleTerms(sampleIds: $ids, terms: [K_NORM, K_TRACE], subset: "head") { kNorm } }`);
    const data = await gql(`query($ids: [ID!]!) { ${fields.join('\n')} }`, { ids: tracked });
    part.forEach((_, i) => (data[`c${i}`].sampleTerms as { kNorm: number }[]).forEach((row, s) => (kNorm[(start + i) * tracked.length + s] = row.kNorm)));
    say(`[seed]   analysed ${next}/${checkpoints.length} points, ${round((performance.now() - t0) / 1000, 1)} s`);
  }
  const seconds = (performance.now() - t0) / 1000;
  const after = await trunkCache();
  return { seconds, kNorm, cache: before && after ? { hits: after.hits - before.hits, misses: after.misses - before.misses } : null };
}

/** PyTorch's head kNorm for `TRACK` samples, the whole model run (bench/torch_models.py bench); null without torch. */
function torchHeadSeconds(V: number): { seconds: number; version: string; threads: number } | { skipped: string } {
  if (flag('no-torch')) return { skipped: '--no-torch' };
  const probe = spawnSync('/usr/bin/python3', ['-c', 'import torch, functorch; print(torch.__version__)'], { encoding: 'utf8' });
  if (probe.status !== 0) return { skipped: `PyTorch is not importable by /usr/bin/python3 (${(probe.stderr || probe.error?.message || '').trim().split('\n').at(-1)})` };
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tangent-seed-torch-'));
  try {
    const config = { ...MANTIS, length: LENGTH, channels: 1, classes: V };
    writeFileSync(
      path.join(dir, 'spec.json'),
      JSON.stringify({ architecture: 'mantis', config, seed: SEED, n: 2, accuracyN: 2, subsets: ['head'], chunk: 1, time: { head: TRACK }, timeChunk: { head: Math.min(TRACK, 16) }, threads: Number(THREADS) }),
    );
    const script = path.join(path.dirname(fileURLToPath(import.meta.url)), 'torch_models.py');
    const r = spawnSync('/usr/bin/python3', [script, 'bench', dir], { stdio: ['ignore', 'ignore', 'inherit'] });
    if (r.status !== 0) return { skipped: `bench/torch_models.py failed (${r.status})` };
    const t = JSON.parse(readFileSync(path.join(dir, 'timings.json'), 'utf8')) as { torch: string; threads: number; timings: { head: { seconds: number } } };
    return { seconds: t.timings.head.seconds, version: t.torch, threads: t.threads };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const load0 = loadavg();
try {
  say(`[seed] load average ${load0.map((l) => l.toFixed(2)).join(' ')}; ${os.cpus().length} cores`);
  await start(CACHE !== 'off' && CACHE !== 'both');
  const hasCache = (await trunkCache()) !== null;
  const { serverInfo } = await gql('{ serverInfo { backend { name version threads } } }');
  say(`[seed] backend ${serverInfo.backend.name} ${serverInfo.backend.version}, ${serverInfo.backend.threads} compute threads; trunk cache ${hasCache ? 'available' : 'not in this build'}`);

  const { importUcr } = await gql(`mutation($input: ImportUcrInput!) { importUcr(input: $input) { dataset { id classNames splits { split count } } } }`, {
    input: { name: `${DATASET}-512`, files: [file(`${DATASET}_TRAIN`), file(`${DATASET}_TEST`)], lengthPolicy: { length: LENGTH, resample: 'LINEAR' } },
  });
  const ds = importUcr.dataset as { id: string; classNames: string[]; splits: { split: string; count: number }[] };
  const V = ds.classNames.length;
  const inSplit = ds.splits.find((s) => s.split === SPLIT)?.count ?? 0;
  const trained = Math.min(inSplit, Math.max(1, Math.round(FRACTION * inSplit)));
  // Tracking every k steps gives 2 + ⌊(T − 1)/k⌋ points (the start and the end analyse every trained sample).
  const steps = Math.ceil(trained / BATCH) * EPOCHS;
  const every = Math.max(1, Math.floor((steps - 1) / Math.max(1, POINTS - 2)));
  const plan = trainPlan({ samples: trained, epochs: EPOCHS, batchSize: BATCH, analyzeEvery: EPOCHS, trackEverySteps: every });
  say(`[seed] ${DATASET} resampled to ${LENGTH}: ${inSplit} samples in '${SPLIT}', training on ${trained} (${FRACTION}), ${steps} steps, tracking ${Math.min(TRACK, trained)} every ${every} steps: ${plan.points.length} analysis points`);

  let modelId: string;
  if (opt('safetensors', '')) {
    // Your own Mantis checkpoint (MantisTrainer's fine_tuned_model.state_dict(), saved as safetensors): training starts from it.
    const bytes = readFileSync(opt('safetensors', ''));
    const { importSafetensors } = await gql(`mutation($input: ImportSafetensorsInput!) { importSafetensors(input: $input) { model { id } checkpoint { id } } }`, {
      input: { safetensors: bytes.toString('base64'), architecture: 'mantis', config: MANTIS, datasetId: ds.id, runName: 'imported' },
    });
    modelId = importSafetensors.model.id;
    fromCheckpointId = importSafetensors.checkpoint.id;
  } else {
    const { createModel } = await gql(`mutation($input: CreateModelInput!) { createModel(input: $input) { id } }`, {
      input: { name: `mantis-seed-${SEED}`, format: 'BUILTIN', architecture: 'mantis', config: { ...MANTIS, seed: SEED }, inputLength: LENGTH, numClasses: V },
    });
    modelId = createModel.id;
  }

  say('[seed] training (head fine-tuning) …');
  const run1 = await train(modelId, ds.id, every);
  say(`[seed] trained in ${round(run1.seconds, 1)} s`);
  const { run: summaryRun } = await gql(
    `query($id: ID!, $split: String) { run(id: $id) { dynamicsSummary(split: $split) { analysisPoints samplesAnalysed hPsdPairs hPsdRatio finalTrainingSamples finalTrainingAccuracy finalTrainingLoss probabilityPathsTracked pathLength } } }`,
    { id: run1.runId, split: SPLIT },
  );
  const summary = summaryRun.dynamicsSummary;
  // The probability paths of the tracked samples at every point, in one request: as base64 float32 and as JSON numbers.
  const paths: Record<string, { seconds: number; bytes: number }> = {};
  for (const field of ['probsBase64', 'probs']) {
    const t0 = performance.now();
    const res = await fetch(server!.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ query: `query($id: ID!) { run(id: $id) { probabilityPaths { sampleIds steps ${field} } } }`, variables: { id: run1.runId } }),
    });
    const text = await res.text();
    paths[field] = { seconds: round((performance.now() - t0) / 1000), bytes: text.length };
  }
  say(`[seed] probabilityPaths: ${run1.tracked.length} samples × ${run1.checkpoints.length} points × ${V} classes in ${paths.probsBase64!.seconds} s (base64, ${paths.probsBase64!.bytes} bytes), ${paths.probs!.seconds} s (JSON, ${paths.probs!.bytes} bytes)`);

  const analyses: Record<string, { seconds: number; perPointSeconds: number; cache: { hits: number; misses: number } | null; trainSeconds: number }> = {};
  let equal: boolean | null = null;
  const modes = hasCache ? (CACHE === 'both' ? ['off', 'on'] : [CACHE]) : ['off'];
  let firstKNorm: Float64Array | null = null;
  let sameWeights: boolean | null = null;
  let maxRelDiff: number | null = null;
  for (const [i, mode] of modes.entries()) {
    let run = run1;
    if (i > 0) {
      say('[seed] training again (same seed) for the second analysis …');
      run = await train(modelId, ds.id, every);
      say(`[seed] trained in ${round(run.seconds, 1)} s`);
    }
    await stop();
    await start(mode === 'on');
    say(`[seed] analysis, trunk cache ${mode}: kNorm and kTrace over the head of ${run.tracked.length} samples at ${run.checkpoints.length} points …`);
    const a = await analyse(run.checkpoints, run.tracked);
    say(`[seed]   ${round(a.seconds, 1)} s${a.cache ? ` (cache hits ${a.cache.hits}, misses ${a.cache.misses})` : ''}`);
    analyses[mode] = { seconds: round(a.seconds), perPointSeconds: round(a.seconds / run.checkpoints.length, 4), cache: a.cache, trainSeconds: round(run.seconds) };
    if (firstKNorm) {
      equal = firstKNorm.length === a.kNorm.length && firstKNorm.every((v, j) => Object.is(v, a.kNorm[j]));
      // Where they differ: were the two trainings the same weights (then the cache changed the numbers)?
      sameWeights = run.shas.length === run1.shas.length && run.shas.every((sha, j) => sha === run1.shas[j]);
      maxRelDiff = 0;
      firstKNorm.forEach((v, j) => (maxRelDiff = Math.max(maxRelDiff!, Math.abs(v - a.kNorm[j]!) / Math.max(Math.abs(v), 1e-30))));
    } else firstKNorm = a.kNorm;
  }

  const torch = torchHeadSeconds(V);
  const tangentAnalysis = (analyses.on ?? analyses.off)!.seconds;
  const torchAnalysis = 'seconds' in torch ? torch.seconds * run1.checkpoints.length : null;
  const load1 = loadavg();
  const result = {
    bench: 'seed',
    dataset: { name: DATASET, length: LENGTH, split: SPLIT, samples: inSplit, trained, classes: V },
    model: { architecture: 'mantis', config: { ...MANTIS_DEFAULTS, ...MANTIS, length: LENGTH, classes: V, seed: SEED }, fineTuning: 'HEAD' },
    training: { optimizer: OPTIMIZER, learningRate: LR, epochs: EPOCHS, batchSize: BATCH, steps, trackEverySteps: every, points: run1.checkpoints.length, tracked: run1.tracked.length, seconds: round(run1.seconds) },
    summary,
    probabilityPaths: paths,
    analysis: analyses,
    cacheResultsEqual: equal,
    cacheComparison: equal === null ? null : { sameWeightsBothTrainings: sameWeights, kNormMaxRelDiff: maxRelDiff },
    torch: 'seconds' in torch ? { ...torch, headSecondsPerPoint: round(torch.seconds), analysisSeconds: round(torchAnalysis!), note: 'one point timed, × points' } : torch,
    ratioVsTorch: torchAnalysis === null ? null : round(torchAnalysis / tangentAnalysis, 2),
    loadAverage: { start: load0.map((l) => round(l, 2)), end: load1.map((l) => round(l, 2)) },
    cores: os.cpus().length,
  };
  const s = summary;
  say('');
  say(`A/H PSD ratio (H-PSD ratio):  ${s.hPsdRatio} over ${s.hPsdPairs} (point, sample) pairs`);
  say(`samples analysed:             ${s.samplesAnalysed}`);
  say(`final training accuracy:      ${s.finalTrainingAccuracy === null ? '-' : round(s.finalTrainingAccuracy, 4)} (${s.finalTrainingSamples} samples)`);
  say(`final training loss:          ${s.finalTrainingLoss === null ? '-' : round(s.finalTrainingLoss, 4)}`);
  say(`analysis points:              ${s.analysisPoints}`);
  say(`probability paths tracked:    ${s.probabilityPathsTracked}`);
  say(`mean path length:             ${s.pathLength === null ? '-' : round(s.pathLength, 4)}`);
  say(`training:                     ${round(run1.seconds, 1)} s`);
  for (const [mode, a] of Object.entries(analyses)) say(`analysis (trunk cache ${mode}):  ${a.seconds} s`);
  if (equal !== null) say(`results equal with and without the cache: ${equal} (the two trainings' weights ${sameWeights ? 'identical' : 'differ'}; kNorm max relative difference ${maxRelDiff})`);
  say(`PyTorch: ${'seconds' in torch ? `${round(torchAnalysis!, 1)} s (ratio ${result.ratioVsTorch}×)` : torch.skipped}`);
  process.stdout.write(`${JSON.stringify(result)}\n`);
} finally {
  await stop().catch(() => undefined);
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  if (databaseUrl) {
    const u = new URL(databaseUrl);
    const name = u.pathname.slice(1);
    u.pathname = '/postgres';
    const admin = new (await import('pg')).default.Client({ connectionString: u.toString() });
    await admin.connect().then(() => admin.query(`DROP DATABASE IF EXISTS ${name}`)).catch(() => undefined);
    await admin.end().catch(() => undefined);
  }
}
