import { basename } from 'node:path';
import type { SingleBar } from 'cli-progress';
import type { Command } from 'commander';
import type { TermSpec } from '../platform/values/term.js';
import type { LengthPolicy, Resample } from '../io/length-policy.js';
import type { MetricBatch, MetricsFormat } from '../io/metrics-file.js';
import type { Api } from './api.js';

/**
 * `tangent import ucr|metrics|tfjs-model`: files people already have, through the public GraphQL
 * mutations (createDataset + addSamplesBulk, logMetrics, importTfjsModel) in batches, with a
 * progress bar on stderr; directly on the database or through a server (`--url`), see ./api.ts.
 *
 * Only types are imported at load time: `tangent --help` loads this file, and the readers, the
 * progress bar and the database are imported by the command that needs them, when it runs.
 */
interface CommonOptions {
  url?: string;
  apiKey?: string;
  json?: boolean;
  progress?: boolean;
}

/**
 * Runs an import and reports failures as one clear line (exit code 1). The body opens the API
 * with `connect` once its files are read, so a file refused never touches the database.
 */
async function run(opts: CommonOptions, body: (connect: () => Promise<Api>) => Promise<unknown>): Promise<void> {
  let api: Api | null = null;
  const connect = async () => {
    const { directApi, httpApi } = await import('./api.js');
    api = opts.url ? httpApi(opts.url, opts.apiKey) : await directApi({ command: 'import' });
    return api;
  };
  try {
    const result = await body(connect);
    process.stdout.write(opts.json ? `${JSON.stringify(result)}\n` : `${describe(result)}\n`);
  } catch (error) {
    const e = error as Error & { code?: string; extensions?: Record<string, unknown> };
    const field = e.extensions?.field ? ` (${String(e.extensions.field)})` : '';
    process.stderr.write(`tangent import: ${e.message}${field}\n`);
    process.exitCode = 1;
  } finally {
    await (api as Api | null)?.close().catch(() => undefined);
  }
}

function describe(result: unknown): string {
  return Object.entries(result as Record<string, unknown>)
    .map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
    .join('\n');
}

async function progressBar(unit: string): Promise<SingleBar> {
  const [{ SingleBar, Presets }, { formatEta }] = await Promise.all([import('cli-progress'), import('./progress.js')]);
  // cli-progress draws only on a terminal; piped output (CI, tests) stays clean. Its own ETA
  // formatter prints `NFs` before the first step; ours leaves it blank.
  return new SingleBar(
    { format: `{bar} {percentage}% | {value}/{total} ${unit} | {eta_formatted}`, formatTime: (t: number) => formatEta(t), stream: process.stderr, hideCursor: true, noTTYOutput: false },
    Presets.shades_classic,
  );
}

const b64 = (values: Float32Array | Int32Array) => Buffer.from(values.buffer, values.byteOffset, values.byteLength).toString('base64');

async function limits(api: Api) {
  const { ingestLimits } = await api.request<{ ingestLimits: { maxRows: number; maxBodyBytes: number } }>('{ ingestLimits { maxRows maxBodyBytes } }', {}, { idempotent: true });
  return ingestLimits;
}

const positiveInt = (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`expected a positive integer, got ${value}`);
  return n;
};

const RESAMPLE_NAMES = ['linear', 'pad', 'truncate'] as const satisfies readonly Resample[];

interface UcrOptions extends CommonOptions {
  name?: string;
  description?: string;
  split?: string;
  batch?: number;
  length?: number;
  resample?: string;
}

/** --length and --resample as one policy: both or neither. */
function lengthPolicyOf(opts: UcrOptions): LengthPolicy | null {
  if (opts.length === undefined && opts.resample === undefined) return null;
  if (opts.length === undefined) throw new Error('--resample needs --length N, the length to bring every series to');
  const resample = opts.resample?.toLowerCase();
  if (!RESAMPLE_NAMES.includes(resample as Resample)) {
    throw new Error(`give --resample ${RESAMPLE_NAMES.join('|')} with --length${opts.resample === undefined ? '' : ` (not ${JSON.stringify(opts.resample)})`}`);
  }
  return { length: opts.length, resample: resample as Resample };
}

export function registerImport(program: Command): void {
  const command = program
    .command('import')
    .description('import UCR/UEA data sets, per-sample metrics (CSV, JSONL) and TensorFlow.js models');
  const common = (c: Command) =>
    c
      .option('--url <url>', 'go through a running server (e.g. http://127.0.0.1:4000) instead of the database')
      .option('--api-key <key>', 'API key for --url, when the server requires one')
      .option('--json', 'print the result as one JSON object');

  common(
    command
      .command('ucr')
      .description('create a dataset from UCR/UEA .ts files (X_TRAIN.ts, X_TEST.ts → splits train and test)')
      .argument('<files...>', '.ts files of one problem')
      .option('--name <name>', 'dataset name (default: the files\' @problemName)')
      .option('--description <text>', 'dataset description')
      .option('--split <split>', 'split of every file\'s series (default: from the file names, else train)')
      .option('--length <n>', 'bring every series to n steps (needed for @equalLength false files); with --resample', positiveInt)
      .option(
        '--resample <method>',
        'how to reach --length, per channel: linear (interpolate, ends kept), pad (zeros at the end; longer series refused), truncate (first n steps; shorter series refused)',
      )
      .option('--batch <rows>', 'samples per request (default: as many as the server and 16 MB allow)', positiveInt),
  ).action((files: string[], opts: UcrOptions) => run(opts, (connect) => importUcrFiles(connect, files, opts)));

  common(
    command
      .command('metrics')
      .description('log per-sample metrics at a checkpoint from a CSV or JSONL file (columns: sample_id or sample_index, then terms)')
      .argument('<file>', '.csv, .jsonl or .ndjson')
      .requiredOption('--checkpoint <id>', 'the checkpoint the metrics belong to')
      .option('--format <format>', 'csv or jsonl (default: from the extension)')
      .option('--batch <rows>', 'rows per request (default 50000, at most the server\'s limit)', positiveInt),
  ).action((file: string, opts: CommonOptions & { checkpoint: string; format?: string; batch?: number }) =>
    run(opts, async (connect) => importMetricsFile(await connect(), file, opts)),
  );

  common(
    command
      .command('tfjs-model')
      .description('import a TensorFlow.js layers model: model.json\'s topology as a model, its weights as a checkpoint')
      .argument('<model.json>', 'the model.json of the artifacts')
      .option('--weights <files...>', 'weight files in manifest order (default: the manifest\'s paths, next to model.json)')
      .option('--run <id>', 'store the weights as a checkpoint of this run')
      .option('--dataset <id>', 'or create a run of the model on this dataset')
      .option('--run-name <name>', 'name of the new run (with --dataset)')
      .option('--name <name>', 'name of the new model')
      .option('--step <step>', 'checkpoint step', (v) => Number.parseInt(v, 10), 0)
      .option('--epoch <epoch>', 'checkpoint epoch', Number)
      .option('--learning-rate <lr>', 'learning rate at this checkpoint', Number)
      .option('--no-weights', 'import the topology only'),
  ).action(
    (
      file: string,
      opts: CommonOptions & { weights?: string[] | boolean; run?: string; dataset?: string; runName?: string; name?: string; step: number; epoch?: number; learningRate?: number },
    ) => run(opts, async (connect) => importTfjsFiles(await connect(), file, opts)),
  );
}

async function importUcrFiles(connect: () => Promise<Api>, files: string[], opts: UcrOptions) {
  const lengthPolicy = lengthPolicyOf(opts);
  const [{ readUcrFile, UcrFormatError }, { planUcrImport, UcrImportError }] = await Promise.all([import('../io/ucr.js'), import('../io/ucr-import.js')]);
  const parsed = [];
  for (const file of files) {
    try {
      parsed.push({ dataset: await readUcrFile(file), fileName: basename(file), split: opts.split ?? null });
    } catch (error) {
      if (error instanceof UcrFormatError) throw new Error(`${file}: ${error.message}`);
      throw error;
    }
  }
  let plan;
  try {
    plan = planUcrImport(parsed, lengthPolicy);
  } catch (error) {
    if (error instanceof UcrImportError) {
      const hint = error.needsLengthPolicy ? `; give --length N --resample ${RESAMPLE_NAMES.join('|')}` : '';
      throw new Error(`${files[error.file]}: ${error.message}${hint}`);
    }
    throw error;
  }
  const name = opts.name ?? plan.problemName;
  if (!name) throw new Error('the files name no @problemName; give --name');
  const api = await connect();
  const { maxRows, maxBodyBytes } = await limits(api);
  const values = plan.length * plan.channels;
  // base64 is 4 bytes per 3; leave half the body for everything else.
  const byBytes = Math.max(1, Math.floor(Math.min(maxBodyBytes / 2, 16 * 1024 * 1024) / (values * 4 * 1.34 + 64)));
  const batch = Math.min(opts.batch ?? Number.POSITIVE_INFINITY, maxRows, byBytes);

  const { createDataset } = await api.request<{ createDataset: { id: string } }>(
    'mutation($input: CreateDatasetInput!) { createDataset(input: $input) { id } }',
    {
      input: {
        name,
        description: opts.description ?? null,
        length: plan.length,
        channels: plan.channels,
        classNames: plan.classNames,
        ...(lengthPolicy ? { lengthResample: lengthPolicy.resample.toUpperCase() } : {}),
      },
    },
  );
  const n = plan.indices.length;
  const bar = await progressBar('samples');
  bar.start(n, 0);
  try {
    for (let start = 0; start < n; start += batch) {
      const end = Math.min(n, start + batch);
      await api.request('mutation($id: ID!, $input: SampleColumnsInput!) { addSamplesBulk(datasetId: $id, input: $input) { added } }', {
        id: createDataset.id,
        input: {
          indices: b64(plan.indices.subarray(start, end)),
          labels: b64(plan.labels.subarray(start, end)),
          splits: plan.splits.slice(start, end),
          series: b64(plan.series.subarray(start * values, end * values)),
          ...(plan.originalLengths ? { originalLengths: b64(plan.originalLengths.subarray(start, end)) } : {}),
        },
      }, { idempotent: true });
      bar.update(end);
    }
  } catch (error) {
    bar.stop();
    // All or nothing for the user too: a dataset left half-imported is removed again.
    await api.request('mutation($id: ID!) { deleteDataset(id: $id) { id } }', { id: createDataset.id }).catch(() => undefined);
    throw error;
  }
  bar.stop();
  return {
    datasetId: createDataset.id,
    name,
    length: plan.length,
    channels: plan.channels,
    classNames: plan.classNames,
    samples: n,
    splits: plan.counts,
    lengthPolicy,
  };
}

/** One file batch as logMetrics columns; vectors are flattened (each row must have the same width). */
function batchColumns(batch: MetricBatch, terms: readonly TermSpec[], rowError: (message: string, line: number) => Error): Record<string, unknown> {
  const n = batch.refs.length;
  const input: Record<string, unknown> = { [batch.ref]: b64(Int32Array.from(batch.refs)) };
  for (const t of terms) {
    const column = batch.columns[t.field];
    if (!column) continue;
    if (t.sqlType === 'boolean') input[t.field] = column;
    else if (t.sqlType === 'real') input[t.field] = b64(Float32Array.from(column as number[]));
    else {
      const rows = column as number[][];
      const width = rows[0]!.length;
      const flat = new Float32Array(n * width);
      rows.forEach((row, i) => {
        if (row.length !== width) throw rowError(`${t.field} has ${row.length} values; the first row has ${width}`, batch.lines[i]!);
        flat.set(row, i * width);
      });
      input[t.field] = b64(flat);
    }
  }
  return input;
}

async function importMetricsFile(api: Api, file: string, opts: CommonOptions & { checkpoint: string; format?: string; batch?: number }) {
  const [{ stat }, { TERMS }, { metricsFormatOf, MetricsFileError, readMetricsFile }, { ApiError }] = await Promise.all([
    import('node:fs/promises'),
    import('../platform/values/term.js'),
    import('../io/metrics-file.js'),
    import('./api.js'),
  ]);
  const format = (opts.format ?? metricsFormatOf(file)) as MetricsFormat | null;
  if (format !== 'csv' && format !== 'jsonl') throw new Error(`${file}: give --format csv or jsonl (the extension does not say)`);
  const { maxRows } = await limits(api);
  const batchRows = Math.min(opts.batch ?? 50_000, maxRows);
  const { size } = await stat(file);
  const bar = await progressBar('bytes');
  bar.start(size, 0);
  let read = 0;
  let rows = 0;
  let requests = 0;
  try {
    for await (const batch of readMetricsFile(file, format, batchRows, (bytes) => bar.update((read += bytes)))) {
      try {
        await api.request('mutation($c: ID!, $input: MetricColumnsInput!) { logMetrics(checkpointId: $c, input: $input) { written } }', {
          c: opts.checkpoint,
          input: batchColumns(batch, TERMS, (message, line) => new MetricsFileError(message, line)),
        }, { idempotent: true });
      } catch (error) {
        // Name the file's line for the row the server refused.
        const row = error instanceof ApiError ? error.extensions.row : undefined;
        if (typeof row === 'number' && batch.lines[row] !== undefined) {
          throw new Error(`${file} line ${batch.lines[row]}: ${(error as Error).message}; ${rows} rows before this batch were logged (re-running is harmless)`);
        }
        throw error;
      }
      rows += batch.refs.length;
      requests++;
    }
  } catch (error) {
    if (error instanceof MetricsFileError) throw new Error(`${file} ${error.message}`);
    throw error;
  } finally {
    bar.stop();
  }
  return { checkpointId: opts.checkpoint, rows, requests };
}

async function importTfjsFiles(
  api: Api,
  file: string,
  opts: CommonOptions & { weights?: string[] | boolean; run?: string; dataset?: string; runName?: string; name?: string; step: number; epoch?: number; learningRate?: number },
) {
  const [{ readFile }, { parseModelJson, readWeightShards, TfjsModelError, weightSpecsOfModelJson }] = await Promise.all([
    import('node:fs/promises'),
    import('../io/tfjs-model.js'),
  ]);
  let modelJson;
  try {
    modelJson = parseModelJson(JSON.parse(await readFile(file, 'utf8')));
  } catch (error) {
    if (error instanceof SyntaxError) throw new Error(`${file} is not JSON: ${error.message}`);
    if (error instanceof TfjsModelError) throw new Error(`${file}: ${error.message}${error.path ? ` (${error.path})` : ''}`);
    throw error;
  }
  const withWeights = opts.weights !== false && weightSpecsOfModelJson(modelJson).length > 0 && Boolean(opts.run || opts.dataset);
  let weightData: Buffer | null = null;
  if (withWeights) {
    const bar = await progressBar('bytes');
    const files = Array.isArray(opts.weights) ? opts.weights : undefined;
    const specs = weightSpecsOfModelJson(modelJson);
    const expected = specs.reduce((sum, spec) => sum + spec.shape.reduce((a, b) => a * b, 1) * (spec.dtype === 'bool' ? 1 : 4), 0);
    bar.start(expected, 0);
    let read = 0;
    weightData = await readWeightShards(file, modelJson, files, (bytes) => bar.update((read += bytes)));
    bar.stop();
  }
  const { importTfjsModel } = await api.request<{ importTfjsModel: { model: { id: string; name: string; inputLength: number; channels: number; numClasses: number }; run: { id: string } | null; checkpoint: { id: string; step: number; weightBytes: number } | null } }>(
    `mutation($input: ImportTfjsModelInput!) {
       importTfjsModel(input: $input) { model { id name inputLength channels numClasses } run { id } checkpoint { id step weightBytes } }
     }`,
    {
      input: {
        modelJson,
        weightData: weightData ? weightData.toString('base64') : null,
        modelName: opts.name ?? null,
        runId: opts.run ?? null,
        datasetId: opts.dataset ?? null,
        runName: opts.runName ?? null,
        step: opts.step,
        epoch: opts.epoch ?? null,
        learningRate: opts.learningRate ?? null,
      },
    },
  );
  const { model, run: createdRun, checkpoint } = importTfjsModel;
  return {
    modelId: model.id,
    modelName: model.name,
    inputLength: model.inputLength,
    channels: model.channels,
    numClasses: model.numClasses,
    runId: createdRun?.id ?? null,
    checkpointId: checkpoint?.id ?? null,
    weightBytes: checkpoint?.weightBytes ?? 0,
  };
}
