/**
 * A server on a seeded database for the Explorer's browser tests:
 *
 *     const seed = await startSeededServer(t, options?);
 *     //   t:        the test's context (its `after` hook stops the server and drops the database), or the
 *     //             test's `cleanupStack(t)` to stop it in order with the rest (start it before the browser)
 *     //   options:  { auth?: boolean (TANGENT_AUTH=on, with an ADMIN and a READER key: seed.keys),
 *     //               env?: extra server environment }
 *     seed.origin                    // http://127.0.0.1:<port>, where the Explorer is served (`/`)
 *     await seed.gql(query, vars)    // GraphQL over HTTP (with the ADMIN key when auth is on), fails on errors
 *
 * What it holds, all made through the public API the way a user would:
 * - GunPoint from datasets/ucr (importUcr): 50 train and 150 test samples of length 150, 2 classes;
 * - a small cnn1d model, and a run Tangent trained itself (trainRun, by the server's worker) on the
 *   train split: 4 epochs of 4 steps (batches of 16), analysis at epochs 0, 2 and 4 (steps 0, 8, 16:
 *   loss, correct, logits, probs, aNorm, hTrace, hMinEig, gNorm of every trained sample), and
 *   `trackSamples` samples tracked every 3 steps (probability paths over 8 checkpoints);
 * - computeTerms run to completion: every sample of both splits at the last analysis checkpoint (so
 *   kNorm, kTrace and the test split's forward terms are stored there), the trained samples at the
 *   other two (kNorm across checkpoints, for strategies that weight them);
 * - a saved selection: the top 10 train samples by kNorm at the last analysis checkpoint.
 *
 * Seeding takes ~15 s on this machine under load (PostgreSQL: server 1.5 s, import 1 s, training 3 s,
 * computeTerms 8 s); PGlite adds its start (2–13 s by load). SEED_DEBUG=1 prints each part's time.
 */
import { cleanupStack, type Defer, type Hooks } from '../helpers/cleanup.js';
import { createTestDatabase } from '../helpers/database.js';
import { startTestServer, type GraphQLResponse, type TestServer } from '../helpers/server.js';
import { importUcr, pollJob, SMALL_CNN } from '../jobs/helpers.js';
import { createApiKey } from '../../src/modules/api-keys/service.js';

export interface SeedOptions {
  /** Require API keys (TANGENT_AUTH=on); `keys` then holds an ADMIN and a READER secret, and gql sends the ADMIN one. */
  auth?: boolean;
  env?: Record<string, string>;
  /** Samples followed every 3 steps (default 4). */
  trackSamples?: number;
  /** Another training than SEED_TRAINING (e.g. longer, for the README's screenshots: scripts/screenshots.ts). */
  training?: Partial<typeof SEED_TRAINING>;
  /** Options of the cnn1d model over SMALL_CNN's (e.g. more filters, for a run that learns more). */
  model?: Record<string, unknown>;
}

export interface SeededCheckpoint {
  id: string;
  step: number;
  /** An analysis point (every trained sample has its terms here) rather than a tracking point. */
  analysis: boolean;
}

export interface Seeded {
  server: TestServer;
  /** The server's origin; the Explorer is at `${origin}/`. */
  origin: string;
  /** The GraphQL endpoint (`${origin}/graphql`). */
  url: string;
  gql<T = Record<string, any>>(query: string, variables?: Record<string, unknown>, headers?: Record<string, string>): Promise<T>;
  request<T = Record<string, any>>(query: string, variables?: Record<string, unknown>, headers?: Record<string, string>): Promise<GraphQLResponse<T>>;
  keys: { admin: string; reader: string } | null;
  dataset: { id: string; name: string; length: number; classNames: string[]; sampleCount: number };
  samples: { id: string; index: number; label: number; split: string }[];
  modelId: string;
  runId: string;
  /** Every checkpoint of the run, in step order. */
  checkpoints: SeededCheckpoint[];
  /** The analysis checkpoints (steps 0, 8, 16), in step order. */
  analysisCheckpointIds: string[];
  /** The last analysis checkpoint. */
  checkpointId: string;
  trackedSampleIds: string[];
  selectionId: string;
  /** How long seeding took, in ms. */
  seedMs: number;
}

export const SEED_TRAINING = { epochs: 4, batchSize: 16, seed: 3, learningRate: 0.01, analyzeEvery: 2, trackEverySteps: 3 };

export async function startSeededServer(t: Hooks | Defer, options: SeedOptions = {}): Promise<Seeded> {
  const started = performance.now();
  const spec = { ...SEED_TRAINING, ...options.training };
  const defer: Defer = typeof t === 'function' ? t : cleanupStack(t);
  const testDb = defer(await createTestDatabase(), (d) => d.destroy());
  const server = defer(
    await startTestServer({ testDb, env: { TANGENT_WORKER: 'on', ...(options.auth ? { TANGENT_AUTH: 'on' } : {}), ...options.env } }),
    (s) => s.stop(),
  );
  let keys: Seeded['keys'] = null;
  if (options.auth) {
    keys = {
      admin: (await createApiKey(server.db, { name: 'explorer-admin', role: 'ADMIN' })).secret,
      reader: (await createApiKey(server.db, { name: 'explorer-reader', role: 'READER' })).secret,
    };
  }
  const adminHeaders: Record<string, string> = keys ? { authorization: `Bearer ${keys.admin}` } : {};
  const gql: Seeded['gql'] = (query, variables, headers) => server.gql(query, variables, headers ?? adminHeaders);
  const request: Seeded['request'] = (query, variables, headers) => server.request(query, variables, headers ?? adminHeaders);

  const lap = (what: string) => process.env.SEED_DEBUG && console.error(`seed: ${what} at ${Math.round(performance.now() - started)} ms`);
  lap('server');
  const { dataset, samples } = await importUcr({ gql }, 'GunPoint', 'GunPoint');
  const { createModel } = await gql(`mutation($input: CreateModelInput!) { createModel(input: $input) { id } }`, {
    input: { name: 'small-cnn', format: 'BUILTIN', architecture: 'cnn1d', config: { ...SMALL_CNN, ...options.model }, inputLength: dataset.length, numClasses: dataset.classNames.length },
  });
  const { trainRun } = await gql(`mutation($input: TrainRunInput!) { trainRun(input: $input) { id } }`, {
    input: { modelId: createModel.id, datasetId: dataset.id, name: 'gunpoint-cnn', optimizer: 'ADAM', ...spec, trackSamples: options.trackSamples ?? 4 },
  });
  lap('imported, training');
  const runId = trainRun.id as string;
  let run: any;
  for (;;) {
    ({ run } = await gql(
      `query($id: ID!) { run(id: $id) { status training { error trackedSamples { id } } checkpoints(first: 1000) { nodes { id step } } } }`,
      { id: runId },
    ));
    if (run.status !== 'PENDING' && run.status !== 'RUNNING') break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  if (run.status !== 'COMPLETED') throw new Error(`the seeded run ended ${run.status}: ${run.training.error}`);

  const stepsPerEpoch = Math.ceil(samples.filter((s) => s.split === 'train').length / spec.batchSize);
  const steps = spec.epochs * stepsPerEpoch;
  const isAnalysis = (step: number) => step === steps || (step % stepsPerEpoch === 0 && (step / stepsPerEpoch) % spec.analyzeEvery === 0);
  const checkpoints: SeededCheckpoint[] = (run.checkpoints.nodes as { id: string; step: number }[])
    .map((c) => ({ id: c.id, step: c.step, analysis: isAnalysis(c.step) }))
    .sort((a, b) => a.step - b.step);
  const analysisCheckpointIds = checkpoints.filter((c) => c.analysis).map((c) => c.id);

  lap('trained');
  // kNorm and kTrace where the pages and the strategies read them: every sample (both splits) at the
  // last analysis checkpoint, the trained samples at the others (a strategy weighting checkpoints, as
  // LESS does, needs them at each). The jobs are started together and the worker takes them in turn.
  const jobs: string[] = [];
  for (const checkpointId of analysisCheckpointIds) {
    const last = checkpointId === analysisCheckpointIds.at(-1);
    const { computeTerms } = await gql(`mutation($input: ComputeTermsInput!) { computeTerms(input: $input) { id } }`, {
      input: { checkpointId, ...(last ? {} : { splits: ['train'] }) },
    });
    jobs.push(computeTerms.id);
  }
  for (const jobId of jobs) {
    const job = await pollJob({ gql }, jobId);
    if (job.status !== 'COMPLETED') throw new Error(`computeTerms job ${jobId} ended ${job.status}: ${job.error}`);
  }
  lap('computed');
  const checkpointId = analysisCheckpointIds.at(-1)!;
  const { createSelection } = await gql(`mutation($input: CreateSelectionInput!) { createSelection(input: $input) { id } }`, {
    input: {
      name: 'top-10-knorm',
      description: 'The 10 train samples with the largest ‖K‖_F at the last analysis checkpoint',
      strategy: { checkpointIds: [checkpointId], term: 'K_NORM', method: 'TOP_K', k: 10, filter: { splits: ['train'] } },
    },
  });

  return {
    server,
    origin: new URL(server.url).origin,
    url: server.url,
    gql,
    request,
    keys,
    dataset: { id: dataset.id, name: 'GunPoint', length: dataset.length, classNames: dataset.classNames, sampleCount: dataset.sampleCount },
    samples: samples.map(({ id, index, label, split }) => ({ id, index, label, split })),
    modelId: createModel.id,
    runId,
    checkpoints,
    analysisCheckpointIds,
    checkpointId,
    trackedSampleIds: run.training.trackedSamples.map((s: { id: string }) => s.id),
    selectionId: createSelection.id,
    seedMs: Math.round(performance.now() - started),
  };
}
