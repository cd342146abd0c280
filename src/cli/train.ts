import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Command } from 'commander';
import type { Api } from './api.js';
import { envOverrides, reportError, withEnvironment } from './shared.js';

/**
 * `tangent train`: the `trainRun` mutation from the command line, followed to the end with a
 * progress bar, then the run's dynamics summary. By default it works on the configured database
 * directly (DATABASE_URL or the embedded data folder) and trains in this process (on a thread of
 * its own); `--no-work` leaves the training to other workers (PostgreSQL). With `--url` it asks a
 * running server instead, which trains it. The embedded database admits one process per data
 * folder, so while a server holds it `--url` is the way in. Interrupted (Ctrl-C), it cancels the
 * run; what it stored stays.
 */
interface TrainOptions {
  dataset: string;
  model?: string;
  architecture?: string;
  modelConfig?: string;
  modelName?: string;
  name?: string;
  fromCheckpoint?: string;
  optimizer: string;
  learningRate: number;
  weightDecay?: number;
  epochs: number;
  batchSize: number;
  seed: number;
  split: string;
  fraction: number;
  analyzeEvery: number;
  trackEverySteps?: number;
  trackSamples?: number;
  track?: number;
  trackIds?: string;
  analyzeEverySteps?: number;
  fineTuning?: string;
  url?: string;
  apiKey?: string;
  detach?: boolean;
  work?: boolean;
  progress?: boolean;
  json?: boolean;
}

const positiveInt = (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`expected a positive integer, got ${value}`);
  return n;
};
const integer = (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n)) throw new Error(`expected an integer, got ${value}`);
  return n;
};
const number = (value: string) => {
  const n = Number(value);
  if (!Number.isFinite(n)) throw new Error(`expected a number, got ${value}`);
  return n;
};

/** A dataset id, or the id of the dataset with exactly this name. */
async function datasetOf(api: Api, value: string): Promise<{ id: string; name: string; length: number; channels: number; classNames: string[] }> {
  const fields = 'id name length channels classNames';
  if (/^[1-9][0-9]*$/.test(value)) {
    const { dataset } = await api.request(`query($id: ID!) { dataset(id: $id) { ${fields} } }`, { id: value });
    if (!dataset) throw new Error(`--dataset: dataset ${value} does not exist`);
    return dataset;
  }
  const { datasets } = await api.request(`query($name: String!) { datasets(first: 1000, filter: { nameContains: $name }) { nodes { ${fields} } } }`, { name: value });
  const exact = (datasets.nodes as { name: string }[]).filter((d) => d.name === value);
  if (exact.length !== 1) throw new Error(`--dataset: no dataset is named ${JSON.stringify(value)} (give its id, or import it with tangent import ucr)`);
  return exact[0] as never;
}

/** The model to train: --model, or a BUILTIN model of --architecture fitting the dataset (made once, then reused by name). */
async function modelOf(api: Api, opts: TrainOptions, dataset: { name: string; length: number; channels: number; classNames: string[] }): Promise<string> {
  if (opts.model) return opts.model;
  if (!opts.architecture) throw new Error('give --model <id>, or --architecture <cnn1d|transformer> to make a BUILTIN model that fits the dataset');
  let config: Record<string, unknown> = {};
  if (opts.modelConfig) {
    try {
      config = JSON.parse(opts.modelConfig);
    } catch (error) {
      throw new Error(`--model-config is not JSON: ${(error as Error).message}`);
    }
    if (config === null || typeof config !== 'object' || Array.isArray(config)) throw new Error('--model-config must be a JSON object');
  }
  const shape = { inputLength: dataset.length, channels: dataset.channels, numClasses: dataset.classNames.length };
  const digest = createHash('sha256').update(JSON.stringify({ architecture: opts.architecture, config, ...shape })).digest('hex').slice(0, 8);
  const name = opts.modelName ?? `${opts.architecture}-${dataset.name}-${digest}`;
  // Looked up before it is made: the same command again reuses the model.
  const { models } = await api.request(`query($name: String!) { models(first: 1000, filter: { nameContains: $name }) { nodes { id name format architecture } } }`, { name });
  const same = (models.nodes as { id: string; name: string; format: string; architecture: string | null }[]).find((m) => m.name === name);
  if (same) {
    if (same.format !== 'BUILTIN' || same.architecture !== opts.architecture) throw new Error(`--model-name: a different model named ${JSON.stringify(name)} exists`);
    return same.id;
  }
  const { createModel } = await api.request(`mutation($input: CreateModelInput!) { createModel(input: $input) { id } }`, {
    input: { name, format: 'BUILTIN', architecture: opts.architecture, config, ...shape },
  });
  return createModel.id;
}

const PROGRESS = `status training { error backend progress { epochsDone epochs stepsDone steps pointsDone points fraction epochLoss epochAccuracy } }`;
const SUMMARY = `dynamicsSummary(split: $split) {
  analysisPoints samplesAnalysed hPsdPairs hPsdRatio hTolerance finalTrainingSamples finalTrainingAccuracy finalTrainingLoss
  probabilityPathsTracked pathLength finalCheckpoint { id step epoch }
}`;

interface Progress {
  status: string;
  training: {
    error: string | null;
    backend: string | null;
    progress: { epochsDone: number; epochs: number; stepsDone: number; steps: number; pointsDone: number; points: number; fraction: number; epochLoss: number | null; epochAccuracy: number | null };
  } | null;
}

const fmt = (v: number | null, digits = 4) => (v === null ? '-' : v.toFixed(digits));

function line(runId: string, run: Progress): string {
  const p = run.training?.progress;
  if (!p) return `run ${runId} ${run.status}`;
  return `run ${runId} ${run.status}: epoch ${p.epochsDone}/${p.epochs}, step ${p.stepsDone}/${p.steps}, ${p.pointsDone}/${p.points} checkpoints, loss ${fmt(p.epochLoss)}, accuracy ${fmt(p.epochAccuracy, 3)}`;
}

/** Follows the run until it leaves PENDING and RUNNING: a progress bar on a terminal, a line per change otherwise. */
async function follow(api: Api, runId: string, show: boolean | undefined, signal: AbortSignal): Promise<Progress> {
  const { progressBar } = await import('./progress.js');
  const bar = progressBar(`run ${runId} [{bar}] {value}/{total} steps | epoch {epoch} | loss {loss} | acc {acc} | {checkpoints} checkpoints | eta {eta_formatted}`, show);
  let started = false;
  let last = '';
  try {
    for (;;) {
      const { run } = await api.request<{ run: Progress | null }>(`query($id: ID!) { run(id: $id) { ${PROGRESS} } }`, { id: runId });
      if (!run) throw new Error(`run ${runId} was deleted`);
      const p = run.training?.progress;
      if (bar && p) {
        const payload = { epoch: `${p.epochsDone}/${p.epochs}`, loss: fmt(p.epochLoss), acc: fmt(p.epochAccuracy, 3), checkpoints: `${p.pointsDone}/${p.points}` };
        if (!started) bar.start(p.steps, p.stepsDone, payload);
        else bar.update(p.stepsDone, payload);
        started = true;
      } else if (!bar) {
        const text = line(runId, run);
        if (text !== last) process.stderr.write(`${text}\n`);
        last = text;
      }
      if (run.status !== 'PENDING' && run.status !== 'RUNNING') return run;
      await sleep(api.pollMs, undefined, { signal }).catch(() => undefined);
      if (signal.aborted) {
        // Interrupted: the run is cancelled; read it once more to report where it stopped.
        await api.request(`mutation($id: ID!) { updateRun(id: $id, input: { status: CANCELLED }) { id } }`, { id: runId }).catch(() => undefined);
      }
    }
  } finally {
    bar?.stop();
  }
}

export function registerTrain(program: Command): void {
  const command = program
    .command('train')
    .description('train a stored model on a stored dataset with tfjs (checkpoints and per-sample terms at each analysis point), with a progress bar')
    .requiredOption('--dataset <id|name>', 'the dataset (its id, or its exact name)')
    .option('--model <id>', 'the stored model to train')
    .option('--architecture <name>', 'or make a BUILTIN model of this architecture (cnn1d, transformer, mantis) that fits the dataset')
    .option('--model-config <json>', 'the BUILTIN model\'s config (e.g. \'{"filters":[16,32],"kernelSizes":[7,5]}\')')
    .option('--model-name <name>', 'name of that model (default <architecture>-<dataset>-<hash of config>)')
    .option('--name <name>', 'name of the run (default train-<model name>)')
    .option('--from-checkpoint <id>', 'fine-tune from this checkpoint\'s weights (a checkpoint of the same model)')
    .option('--optimizer <name>', 'sgd, adam or adamw', 'adam')
    .option('--learning-rate <lr>', 'learning rate', number, 0.001)
    .option('--weight-decay <wd>', 'AdamW\'s decoupled weight decay (default 0.01)', number)
    .option('--epochs <n>', 'epochs', positiveInt, 10)
    .option('--batch-size <n>', 'samples per optimizer step', positiveInt, 16)
    .option('--seed <n>', 'seed of the initial weights, sample order, dropout and subsets', integer, 1)
    .option('--split <name>', 'the split trained on', 'train')
    .option('--fraction <f>', 'fraction of the split trained on (a seeded subset), in (0, 1]', number, 1)
    .option('--analyze-every <k>', 'a checkpoint with per-sample terms every k epochs (and at the start and the end)', positiveInt, 1)
    .option('--analyze-every-steps <k>', 'instead: a checkpoint with per-sample terms of every trained sample every k optimizer steps', positiveInt)
    .option('--track-every-steps <n>', 'also record π of the tracked samples every n optimizer steps', positiveInt)
    .option('--track <n>', 'track n of the trained samples (a seeded choice; default 8 with --track-every-steps)', positiveInt)
    .option('--track-samples <n>', 'the same as --track', positiveInt)
    .option('--track-ids <ids>', 'track these samples instead (comma-separated sample ids, each one the run trains on)')
    .option('--fine-tuning <mode>', 'what training moves: full, head or adapter_head (Mantis; the rest frozen)', 'full')
    .option('--url <url>', 'go through a running server (e.g. http://127.0.0.1:4000) instead of the database')
    .option('--api-key <key>', 'API key for --url, when the server requires one')
    .option('--detach', 'start the training and print the run id without waiting')
    .option('--no-work', 'do not train in this process (other workers will)')
    .option('--progress', 'draw the progress bar even where stderr is not a terminal')
    .option('--no-progress', 'no progress bar: a line per change')
    .option('--json', 'print the result as one JSON object');
  withEnvironment(command, ['database']).action(async (opts: TrainOptions & Record<string, unknown>) => {
      let api: Api | null = null;
      const interrupt = new AbortController();
      const onSignal = () => {
        if (interrupt.signal.aborted) process.exit(130);
        process.stderr.write('\ntangent train: cancelling the run (its checkpoints so far stay); Ctrl-C again to quit at once\n');
        interrupt.abort();
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
      try {
        const optimizer = opts.optimizer.toUpperCase();
        if (!['SGD', 'ADAM', 'ADAMW'].includes(optimizer)) throw new Error(`--optimizer: ${opts.optimizer} is not sgd, adam or adamw`);
        const fineTuning = (opts.fineTuning ?? 'full').toUpperCase().replace('-', '_');
        if (!['FULL', 'HEAD', 'ADAPTER_HEAD'].includes(fineTuning)) throw new Error(`--fine-tuning: ${opts.fineTuning} is not full, head or adapter_head`);
        const trackIds = opts.trackIds === undefined ? null : opts.trackIds.split(',').map((v) => v.trim()).filter((v) => v !== '');
        if (trackIds !== null && (trackIds.length === 0 || trackIds.some((v) => !/^[1-9][0-9]*$/.test(v)))) throw new Error(`--track-ids: ${opts.trackIds} is not a comma-separated list of sample ids`);
        const track = opts.track ?? opts.trackSamples ?? null;
        if (track !== null && trackIds !== null) throw new Error('give --track (a seeded choice) or --track-ids, not both');
        const { directApi, httpApi } = await import('./api.js');
        if (opts.url) api = httpApi(opts.url, opts.apiKey);
        else {
          const work = opts.work !== false && !opts.detach;
          const direct = await directApi({ command: 'train', runtime: { work }, quietLevel: 'warn', env: envOverrides(opts) });
          if (!work && direct.db.kind === 'pglite') process.stderr.write('tangent train: --no-work on the embedded database: nothing trains this run until a server starts on it\n');
          api = direct;
        }
        const dataset = await datasetOf(api, opts.dataset);
        const modelId = await modelOf(api, opts, dataset);
        const { trainRun } = await api.request(`mutation($input: TrainRunInput!) { trainRun(input: $input) { id } }`, {
          input: {
            modelId,
            datasetId: dataset.id,
            name: opts.name ?? null,
            fromCheckpointId: opts.fromCheckpoint ?? null,
            optimizer,
            learningRate: opts.learningRate,
            weightDecay: opts.weightDecay ?? null,
            epochs: opts.epochs,
            batchSize: opts.batchSize,
            seed: opts.seed,
            split: opts.split,
            trainFraction: opts.fraction,
            analyzeEvery: opts.analyzeEvery,
            analyzeEverySteps: opts.analyzeEverySteps ?? null,
            trackEverySteps: opts.trackEverySteps ?? null,
            trackSamples: track,
            trackSampleIds: trackIds,
            fineTuning,
          },
        });
        const runId = String(trainRun.id);
        if (opts.detach) {
          process.stdout.write(opts.json ? `${JSON.stringify({ runId, modelId, datasetId: dataset.id })}\n` : `run ${runId} PENDING\n`);
          return;
        }
        const done = await follow(api, runId, opts.progress, interrupt.signal);
        const { run } = await api.request(`query($id: ID!, $split: String) { run(id: $id) { checkpointCount training { backend } ${SUMMARY} } }`, { id: runId, split: opts.split });
        const result = {
          runId,
          modelId,
          datasetId: dataset.id,
          status: done.status,
          error: done.training?.error ?? null,
          backend: run.training?.backend ?? null,
          checkpoints: run.checkpointCount,
          summary: run.dynamicsSummary,
        };
        if (opts.json) process.stdout.write(`${JSON.stringify(result)}\n`);
        else {
          const s = result.summary;
          process.stdout.write(
            [
              `run ${runId} ${result.status}${result.error ? `: ${result.error}` : ''}`,
              `backend: ${result.backend ?? '-'}`,
              `analysis points: ${s.analysisPoints} (checkpoints: ${result.checkpoints})`,
              `samples analysed: ${s.samplesAnalysed}`,
              `H-PSD ratio: ${s.hPsdRatio === null ? '-' : s.hPsdRatio} (${s.hPsdPairs} pairs, tolerance ${s.hTolerance})`,
              `final training accuracy: ${fmt(s.finalTrainingAccuracy)} over ${s.finalTrainingSamples} samples`,
              `final training loss: ${fmt(s.finalTrainingLoss)}`,
              `probability paths tracked: ${s.probabilityPathsTracked}`,
              `mean path length: ${fmt(s.pathLength)}`,
            ].join('\n') + '\n',
          );
        }
        if (done.status !== 'COMPLETED') process.exitCode = 1;
      } catch (error) {
        reportError('train', error);
        process.exitCode = 1;
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        await api?.close().catch(() => undefined);
      }
    });
}
