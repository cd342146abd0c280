/**
 * A small client for Tangent's GraphQL API in Node.js (20+), with nothing but `fetch`: log a
 * dataset, a run, checkpoints and per-sample metrics from a training script. Numbers travel as
 * base64 of little-endian float32/int32 columns, which is what makes logging fast; batches are split
 * to the server's limits, each request is one transaction, and a request that fails on the network is
 * sent again (every bulk write is idempotent).
 */

export class TangentError extends Error {
  constructor(
    message: string,
    /** e.g. BAD_USER_INPUT, CONFLICT, NOT_FOUND */
    readonly code: string | undefined,
    /** For a bad row of a batch: e.g. `input.loss[17]`, and the row (17). */
    readonly field: string | undefined,
    readonly row: number | undefined,
  ) {
    super(message);
    this.name = 'TangentError';
  }
}

/** base64 of little-endian float32 values (Node runs on little-endian hosts). */
export function floatColumn(values: ArrayLike<number>): string {
  const f = values instanceof Float32Array ? values : Float32Array.from(values);
  return Buffer.from(f.buffer, f.byteOffset, f.byteLength).toString('base64');
}

/** base64 of little-endian int32 values. */
export function intColumn(values: ArrayLike<number>): string {
  const i = values instanceof Int32Array ? values : Int32Array.from(values);
  return Buffer.from(i.buffer, i.byteOffset, i.byteLength).toString('base64');
}

export interface WeightSpec {
  name: string;
  shape: number[];
  dtype: 'float32' | 'int32' | 'bool';
}

export interface MetricColumns {
  loss?: ArrayLike<number>;
  correct?: boolean[];
  /** n × V values, row after row. */
  logits?: ArrayLike<number>;
  probs?: ArrayLike<number>;
  gNorm?: ArrayLike<number>;
  kNorm?: ArrayLike<number>;
}

export class TangentClient {
  private limits: { maxRows: number; maxBodyBytes: number } | null = null;

  constructor(
    readonly url = 'http://127.0.0.1:4000/graphql',
    private readonly apiKey?: string,
  ) {}

  /** One GraphQL operation; `idempotent` ones are retried on network failures (never on GraphQL errors). */
  async request<T = any>(query: string, variables: Record<string, unknown> = {}, idempotent = false): Promise<T> {
    const body = JSON.stringify({ query, variables });
    for (let attempt = 0; ; attempt++) {
      let response: Response;
      try {
        response = await fetch(this.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...(this.apiKey ? { authorization: `Bearer ${this.apiKey}` } : {}) },
          body,
        });
      } catch (error) {
        if (!idempotent || attempt >= 3) throw error;
        await new Promise((resolve) => setTimeout(resolve, 200 * 2 ** attempt));
        continue;
      }
      const result = (await response.json()) as { data?: T; errors?: { message: string; extensions?: Record<string, any> }[] };
      const first = result.errors?.[0];
      if (first) throw new TangentError(first.message, first.extensions?.code, first.extensions?.field, first.extensions?.row);
      return result.data as T;
    }
  }

  private async batchRows(bytesPerRow: number): Promise<number> {
    this.limits ??= (await this.request('{ ingestLimits { maxRows maxBodyBytes } }', {}, true)).ingestLimits as { maxRows: number; maxBodyBytes: number };
    const byBytes = Math.floor(Math.min(this.limits.maxBodyBytes / 2, 16 * 1024 * 1024) / (bytesPerRow * 1.34 + 64));
    return Math.max(1, Math.min(this.limits.maxRows, byBytes));
  }

  async createDataset(input: { name: string; length: number; channels?: number; classNames: string[]; description?: string }): Promise<string> {
    const data = await this.request('mutation($input: CreateDatasetInput!) { createDataset(input: $input) { id } }', { input });
    return data.createDataset.id;
  }

  /** Adds samples in bulk; `series` holds n × length × channels values, time-major per sample. */
  async addSamples(datasetId: string, samples: { indices: ArrayLike<number>; labels: ArrayLike<number>; splits: string[]; series: Float32Array }): Promise<number> {
    const n = samples.indices.length;
    const per = samples.series.length / n;
    const rows = await this.batchRows(per * 4 + 8);
    let added = 0;
    for (let start = 0; start < n; start += rows) {
      const end = Math.min(n, start + rows);
      const data = await this.request(
        'mutation($id: ID!, $input: SampleColumnsInput!) { addSamplesBulk(datasetId: $id, input: $input) { added } }',
        {
          id: datasetId,
          input: {
            indices: intColumn(Int32Array.from(samples.indices).subarray(start, end)),
            labels: intColumn(Int32Array.from(samples.labels).subarray(start, end)),
            splits: samples.splits.slice(start, end),
            series: floatColumn(samples.series.subarray(start * per, end * per)),
          },
        },
        true,
      );
      added += data.addSamplesBulk.added;
    }
    return added;
  }

  /**
   * Registers a TensorFlow.js layers model (its model.json topology) and, with weights, a run of it
   * on a dataset with its first checkpoint.
   */
  async importTfjsModel(input: { modelJson: object; weightData?: Uint8Array; datasetId?: string; runName?: string; modelName?: string; step?: number }) {
    const data = await this.request(
      `mutation($input: ImportTfjsModelInput!) { importTfjsModel(input: $input) { model { id numClasses } run { id } checkpoint { id } } }`,
      { input: { ...input, weightData: input.weightData ? Buffer.from(input.weightData).toString('base64') : null } },
    );
    const r = data.importTfjsModel;
    return { modelId: r.model.id as string, numClasses: r.model.numClasses as number, runId: r.run?.id as string | undefined, checkpointId: r.checkpoint?.id as string | undefined };
  }

  async createCheckpoint(input: { runId: string; step: number; epoch?: number; learningRate?: number; weightSpecs: WeightSpec[]; weightData: Uint8Array }): Promise<string> {
    const data = await this.request('mutation($input: CreateCheckpointInput!) { createCheckpoint(input: $input) { id } }', {
      input: { ...input, weightData: Buffer.from(input.weightData.buffer, input.weightData.byteOffset, input.weightData.byteLength).toString('base64') },
    });
    return data.createCheckpoint.id;
  }

  async setRunStatus(runId: string, status: 'RUNNING' | 'COMPLETED' | 'FAILED'): Promise<void> {
    await this.request('mutation($id: ID!, $s: RunStatus) { updateRun(id: $id, input: { status: $s }) { id } }', { id: runId, s: status }, true);
  }

  /**
   * Logs per-sample metrics at a checkpoint: row i is the sample at position `sampleIndices[i]` of
   * the run's dataset. Returns the rows written. A refused row is named in the error relative to
   * the whole call, not to the request it was sent in.
   */
  async logMetrics(checkpointId: string, sampleIndices: ArrayLike<number>, columns: MetricColumns, numClasses: number): Promise<number> {
    const n = sampleIndices.length;
    const width = (field: string) => (field === 'logits' || field === 'probs' ? numClasses : 1);
    const fields = Object.entries(columns).filter(([, v]) => v !== undefined) as [keyof MetricColumns, ArrayLike<number> | boolean[]][];
    const rows = await this.batchRows(4 + fields.reduce((sum, [field]) => sum + 4 * width(field), 0));
    let written = 0;
    for (let start = 0; start < n; start += rows) {
      const end = Math.min(n, start + rows);
      const input: Record<string, unknown> = { sampleIndices: intColumn(Int32Array.from(sampleIndices).subarray(start, end)) };
      for (const [field, values] of fields) {
        const w = width(field);
        input[field] = field === 'correct' ? (values as boolean[]).slice(start, end) : floatColumn(Float32Array.from(values as ArrayLike<number>).subarray(start * w, end * w));
      }
      try {
        const data = await this.request('mutation($c: ID!, $input: MetricColumnsInput!) { logMetrics(checkpointId: $c, input: $input) { written } }', { c: checkpointId, input }, true);
        written += data.logMetrics.written;
      } catch (error) {
        if (error instanceof TangentError && error.row !== undefined) throw new TangentError(error.message, error.code, error.field, error.row + start);
        throw error;
      }
    }
    return written;
  }
}
