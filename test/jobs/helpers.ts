import { readFileSync } from 'node:fs';
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { cnn1d, initBackend, serializeModel, type Cnn1dConfig } from '../../src/compute/index.js';
import { ucrPath } from '../helpers/fixtures.js';

/** Anything that speaks GraphQL over HTTP: a TestServer, or a child `tangent serve`. */
export interface Gql {
  gql<T = Record<string, any>>(query: string, variables?: Record<string, unknown>): Promise<T>;
}

/** gql over plain fetch, for a server started as a child process. */
export function httpGql(url: string): Gql & { request(query: string, variables?: Record<string, unknown>): Promise<{ data?: any; errors?: any[] }> } {
  const request = async (query: string, variables?: Record<string, unknown>) => {
    const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) });
    return (await response.json()) as { data?: any; errors?: any[] };
  };
  return {
    request,
    async gql(query, variables) {
      const r = await request(query, variables);
      if (r.errors?.length) throw new Error(`GraphQL errors: ${JSON.stringify(r.errors, null, 2)}`);
      return r.data;
    },
  };
}

const ucrFile = (name: string) => ({ text: readFileSync(ucrPath(name), 'utf8'), fileName: `${name}.ts` });

/** Imports a shared UCR problem (train and test files) over HTTP; returns its id and sample ids in index order. */
export async function importUcr(t: Gql, problem: string, name = `${problem}-${Math.random().toString(36).slice(2, 8)}`) {
  const res = await t.gql(
    `mutation($input: ImportUcrInput!) { importUcr(input: $input) { dataset { id length channels classNames sampleCount } } }`,
    { input: { name, files: [ucrFile(`${problem}_TRAIN`), ucrFile(`${problem}_TEST`)] } },
  );
  const dataset = res.importUcr.dataset as { id: string; length: number; channels: number; classNames: string[]; sampleCount: number };
  const samples: { id: string; index: number; label: number; split: string; series: number[] }[] = [];
  let after: string | null = null;
  do {
    const page: any = await t.gql(
      `query($id: ID!, $after: String) { dataset(id: $id) { samples(first: 1000, after: $after) { pageInfo { hasNextPage endCursor } nodes { id index label split series } } } }`,
      { id: dataset.id, after },
    );
    samples.push(...page.dataset.samples.nodes);
    after = page.dataset.samples.pageInfo.hasNextPage ? page.dataset.samples.pageInfo.endCursor : null;
  } while (after);
  return { dataset, samples };
}

/** A small 1D-CNN: quick enough for tests, with every kind of layer the engine's fast path knows. */
export const SMALL_CNN: Partial<Cnn1dConfig> = { filters: [4, 6], kernelSizes: [5, 3], pool: 2, dropout: 0, seed: 3 };

/**
 * Stores a BUILTIN cnn1d model, a run and checkpoints over HTTP. Checkpoint `step` k has the seeded
 * initial weights scaled by `1 + 0.05·k`, so checkpoints differ. Returns the ids and each
 * checkpoint's stored weights (to compare with the engine called directly).
 */
export async function storeCnn(
  t: Gql & { db?: { sql: { query(text: string, values?: unknown[]): Promise<unknown> } } },
  dataset: { id: string; length: number; channels: number; classNames: string[] },
  options: { config?: Partial<Cnn1dConfig>; checkpoints?: number; learningRate?: number; architecture?: string } = {},
) {
  const suffix = Math.random().toString(36).slice(2, 8);
  const config = { ...SMALL_CNN, ...options.config, length: dataset.length, channels: dataset.channels, classes: dataset.classNames.length };
  const model = await t.gql(`mutation($input: CreateModelInput!) { createModel(input: $input) { id } }`, {
    input: {
      name: `cnn-${suffix}`,
      format: 'BUILTIN',
      architecture: 'cnn1d',
      config,
      inputLength: dataset.length,
      channels: dataset.channels,
      numClasses: dataset.classNames.length,
    },
  });
  const run = await t.gql(`mutation($input: CreateRunInput!) { createRun(input: $input) { id } }`, {
    input: { name: `run-${suffix}`, modelId: model.createModel.id, datasetId: dataset.id, config: { learningRate: options.learningRate ?? 0.01 } },
  });
  await initBackend('auto', () => undefined);
  const stored = await serializeModel(cnn1d(config));
  const base = new Float32Array(stored.weightData.slice(0));
  const checkpoints: { id: string; weightSpecs: typeof stored.weightSpecs; weightData: ArrayBuffer }[] = [];
  for (let k = 0; k < (options.checkpoints ?? 1); k++) {
    const weights = base.map((w) => w * (1 + 0.05 * k));
    const res = await t.gql(`mutation($input: CreateCheckpointInput!) { createCheckpoint(input: $input) { id } }`, {
      input: {
        runId: run.createRun.id,
        step: k * 10,
        learningRate: options.learningRate ?? 0.01,
        weightSpecs: stored.weightSpecs,
        weightData: Buffer.from(weights.buffer).toString('base64'),
      },
    });
    checkpoints.push({ id: res.createCheckpoint.id, weightSpecs: stored.weightSpecs, weightData: weights.buffer });
  }
  if (options.architecture !== undefined && options.architecture !== 'cnn1d') {
    // Another architecture: what a model stored before createModel checked configs looks like
    // (written into the row, since createModel and createRun refuse it now).
    if (!t.db) throw new Error('storeCnn: another architecture needs a TestServer (its db)');
    await t.db.sql.query('UPDATE model SET architecture = $2 WHERE id = $1', [Number(model.createModel.id), options.architecture]);
  }
  return { modelId: model.createModel.id as string, runId: run.createRun.id as string, config, checkpoints };
}

export function wsClient(url: string): Client {
  return createClient({ url: url.replace('http', 'ws'), webSocketImpl: WebSocket, retryAttempts: 0 });
}

export interface JobState {
  id: string;
  status: 'QUEUED' | 'RUNNING' | 'COMPLETED' | 'FAILED' | 'CANCELLED';
  error: string | null;
  progress: { chunksDone: number; chunksTotal: number; samplesDone: number; samplesTotal: number; samplesComputed: number; fraction: number };
}

export const JOB_FIELDS = 'id status error attempts progress { chunksDone chunksTotal samplesDone samplesTotal samplesComputed fraction }';

/** Every jobProgress event of a job until it finishes (the subscription ends itself then). */
export function followJob(client: Client, jobId: string, onEvent: (job: JobState) => void = () => undefined): Promise<JobState[]> {
  const events: JobState[] = [];
  return new Promise((resolve, reject) => {
    client.subscribe<{ jobProgress: JobState }>(
      { query: `subscription($id: ID!) { jobProgress(id: $id) { ${JOB_FIELDS} } }`, variables: { id: jobId } },
      {
        next: ({ data, errors }) => {
          if (errors?.length) return reject(new Error(JSON.stringify(errors)));
          events.push(data!.jobProgress);
          onEvent(data!.jobProgress);
        },
        error: (error) => reject(error instanceof Error ? error : new Error(JSON.stringify(error))),
        complete: () => resolve(events),
      },
    );
  });
}

/**
 * Polls job(id) until `until` holds, by default until it is no longer QUEUED or RUNNING (for servers
 * that come and go). A job that ends without ever reaching the state waited for fails the wait
 * with its state, rather than leaving the test to poll until its timeout.
 */
export async function pollJob(t: Gql, jobId: string, until: (job: JobState) => boolean = (j) => j.status !== 'QUEUED' && j.status !== 'RUNNING'): Promise<JobState> {
  for (;;) {
    const { job } = await t.gql<{ job: JobState }>(`query($id: ID!) { job(id: $id) { ${JOB_FIELDS} } }`, { id: jobId });
    if (until(job)) return job;
    if (job.status !== 'QUEUED' && job.status !== 'RUNNING') throw new Error(`job ${jobId} ended before the state waited for: ${JSON.stringify(job)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
