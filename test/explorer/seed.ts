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
 * It is done once and copied for the next tests (see seedKey below): a copy starts in ~4 s.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { openDatabase } from '../../src/platform/db/database.js';
import { cleanupStack, type Defer, type Hooks } from '../helpers/cleanup.js';
import { createTestDatabase, quietLog, type TestDatabase } from '../helpers/database.js';
import { ucrPath } from '../helpers/fixtures.js';
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

/** What seeding made: the ids, the same in every copy of the seeded database. */
type SeedContent = Omit<Seeded, 'server' | 'origin' | 'url' | 'gql' | 'request' | 'keys' | 'seedMs'>;

/**
 * The seeded database is made once per seed (options, seed.ts, the migrations, the server's sources
 * and GunPoint: a change to any makes a new one) and copied for each test: a PGlite dump in the temp
 * folder (as the migrated template of test/helpers/database.ts), or on PostgreSQL a template database
 * `tangent_seed_<key>` cloned with CREATE DATABASE … TEMPLATE. The first test to need it makes it
 * through the API as described above; the others start from a copy in about a second instead of
 * training again. TANGENT_SEED_CACHE=off makes every test seed its own.
 */
function seedKey(options: SeedOptions): string {
  const hash = createHash('sha256');
  hash.update(JSON.stringify({ training: { ...SEED_TRAINING, ...options.training }, model: options.model ?? null, trackSamples: options.trackSamples ?? 4 }));
  const root = fileURLToPath(new URL('../../', import.meta.url));
  const files = [
    fileURLToPath(import.meta.url),
    ...['src', 'prisma/migrations'].flatMap((dir) =>
      readdirSync(join(root, dir), { recursive: true, encoding: 'utf8' })
        .map((f) => join(root, dir, f))
        .filter((f) => /\.(ts|sql|graphql|wat|json)$/.test(f) && !f.includes('/generated/')),
    ),
    ucrPath('GunPoint_TRAIN'),
    ucrPath('GunPoint_TEST'),
  ].sort();
  for (const file of files) hash.update(file.slice(root.length)).update(readFileSync(file));
  return hash.digest('hex').slice(0, 16);
}

async function adminQuery(url: string, text: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}

/** A fresh PostgreSQL database cloned from a template, in the shape createTestDatabase gives. */
async function cloneDatabase(adminUrl: string, template: string): Promise<TestDatabase> {
  const name = `tangent_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  // A clone fails while another session is connected to the template (another clone starting): retry.
  for (let attempt = 0; ; attempt++) {
    try {
      await adminQuery(adminUrl, `CREATE DATABASE ${name} TEMPLATE ${template}`);
      break;
    } catch (error) {
      if (attempt >= 50 || !/being accessed by other users/.test(String(error))) throw error;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
  const dbUrl = new URL(adminUrl);
  dbUrl.pathname = `/${name}`;
  const config = { kind: 'postgres', url: dbUrl.toString(), poolSize: 5 } as const;
  return { config, open: () => openDatabase(config, quietLog), destroy: () => adminQuery(adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

/** A PGlite database in a new folder, started from a dump. */
function pgliteFrom(dump: string): TestDatabase {
  const template = new Blob([readFileSync(dump)]);
  const dataDir = mkdtempSync(join(tmpdir(), 'tangent-test-'));
  const config = { kind: 'pglite', dataDir } as const;
  return {
    config,
    open: () => openDatabase(config, quietLog, { pgliteTemplate: template }),
    destroy: async () => rmSync(dataDir, { recursive: true, force: true }),
  };
}

export async function startSeededServer(t: Hooks | Defer, options: SeedOptions = {}): Promise<Seeded> {
  const started = performance.now();
  const defer: Defer = typeof t === 'function' ? t : cleanupStack(t);
  const env = { TANGENT_WORKER: 'on', ...(options.auth ? { TANGENT_AUTH: 'on' } : {}), ...options.env };
  const cached = process.env.TANGENT_SEED_CACHE !== 'off';
  const key = cached ? seedKey(options) : '';
  const adminUrl = process.env.DATABASE_URL;
  const prefix = `tangent-explorer-seed-${adminUrl ? 'pg' : 'pglite'}-`;
  const metaPath = join(tmpdir(), `${prefix}${key}.json`);
  const dumpPath = join(tmpdir(), `${prefix}${key}.tar.gz`);
  const template = `tangent_seed_${key}`;
  let content: SeedContent | null = null;
  let testDb: TestDatabase;
  let release = async () => undefined as unknown;
  if (cached && adminUrl) {
    // One process makes the template at a time; the others wait for it, then clone it.
    const lock = new pg.Client({ connectionString: adminUrl });
    await lock.connect();
    await lock.query('SELECT pg_advisory_lock(hashtext($1))', [template]);
    let held = true;
    release = async () => {
      if (!held) return;
      held = false;
      await lock.query('SELECT pg_advisory_unlock(hashtext($1))', [template]).catch(() => undefined);
      await lock.end().catch(() => undefined);
    };
    const found = await lock.query('SELECT 1 FROM pg_database WHERE datname = $1', [template]);
    if (found.rowCount && existsSync(metaPath)) {
      content = JSON.parse(readFileSync(metaPath, 'utf8')) as SeedContent;
      await release();
    }
  }
  let copy: TestDatabase | null = null;
  if (cached && !adminUrl && existsSync(metaPath) && existsSync(dumpPath)) {
    try {
      content = JSON.parse(readFileSync(metaPath, 'utf8')) as SeedContent;
      copy = pgliteFrom(dumpPath);
    } catch {
      // Replaced by another seed's while being read: this test seeds its own.
      content = null;
    }
  }
  try {
    testDb = defer(content && adminUrl ? await cloneDatabase(adminUrl, template) : (copy ?? (await createTestDatabase())), (d) => d.destroy());
    let server = defer(await startTestServer({ testDb, env }), (s) => s.stop());
    let keys: Seeded['keys'] = null;
    if (options.auth) {
      keys = {
        admin: (await createApiKey(server.db, { name: `explorer-admin-${randomBytes(3).toString('hex')}`, role: 'ADMIN' })).secret,
        reader: (await createApiKey(server.db, { name: `explorer-reader-${randomBytes(3).toString('hex')}`, role: 'READER' })).secret,
      };
    }
    const adminHeaders: Record<string, string> = keys ? { authorization: `Bearer ${keys.admin}` } : {};
    if (!content) {
      content = await seed((query, variables) => server.gql(query, variables, adminHeaders), options, started);
      if (cached && adminUrl) {
        // The template is a copy of this database, taken with the server stopped (no session on it).
        await server.stop();
        // Seeds of other sources are stale: dropped (best effort), so templates do not pile up.
        const list = new pg.Client({ connectionString: adminUrl });
        await list.connect();
        const stale = await list.query<{ datname: string }>(`SELECT datname FROM pg_database WHERE datname LIKE 'tangent\\_seed\\_%'`).finally(() => list.end());
        for (const { datname } of stale.rows) await adminQuery(adminUrl, `DROP DATABASE IF EXISTS ${datname}`).catch(() => undefined);
        await adminQuery(adminUrl, `CREATE DATABASE ${template} TEMPLATE ${new URL((testDb.config as { url: string }).url).pathname.slice(1)}`);
        writeFileSync(`${metaPath}.${process.pid}`, JSON.stringify(content));
        renameSync(`${metaPath}.${process.pid}`, metaPath);
        server = defer(await startTestServer({ testDb, env }), (s) => s.stop());
      } else if (cached) {
        for (const file of readdirSync(tmpdir()).filter((f) => f.startsWith(prefix))) rmSync(join(tmpdir(), file), { force: true });
        const dump = await server.db.pglite!.dumpDataDir('gzip');
        writeFileSync(`${dumpPath}.${process.pid}`, Buffer.from(await dump.arrayBuffer()));
        renameSync(`${dumpPath}.${process.pid}`, dumpPath);
        writeFileSync(`${metaPath}.${process.pid}`, JSON.stringify(content));
        renameSync(`${metaPath}.${process.pid}`, metaPath);
      }
    }
    const running = server;
    return {
      ...content,
      server: running,
      origin: new URL(running.url).origin,
      url: running.url,
      gql: (query, variables, headers) => running.gql(query, variables, headers ?? adminHeaders),
      request: (query, variables, headers) => running.request(query, variables, headers ?? adminHeaders),
      keys,
      seedMs: Math.round(performance.now() - started),
    };
  } finally {
    await release();
  }
}

/** Seeds the database behind `gql` through the API (see the top of this file). */
async function seed(gql: (query: string, variables?: Record<string, unknown>) => Promise<any>, options: SeedOptions, started: number): Promise<SeedContent> {
  const spec = { ...SEED_TRAINING, ...options.training };
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
    dataset: { id: dataset.id, name: 'GunPoint', length: dataset.length, classNames: dataset.classNames, sampleCount: dataset.sampleCount },
    samples: samples.map(({ id, index, label, split }) => ({ id, index, label, split })),
    modelId: createModel.id,
    runId,
    checkpoints,
    analysisCheckpointIds,
    checkpointId,
    trackedSampleIds: run.training.trackedSamples.map((s: { id: string }) => s.id),
    selectionId: createSelection.id,
  };
}
