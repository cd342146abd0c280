import { useCallback, useEffect, useMemo, useState } from 'react';
import { useQuery, useSubscription } from 'urql';
import { Link } from 'wouter';
import { LineChart, type LineSeries } from '../charts/line';
import { ProbabilityPaths, type PathData, type PathMode } from '../charts/paths';
import { classColour } from '../charts/scatter-colours';
import { termsState, TermsPending } from '../components/pending';
import { graphql } from '../gql';
import type { RunPageQuery } from '../gql/graphql';

/**
 * A run: its dynamics summary (Run.dynamicsSummary, as a block of numbers), loss and accuracy per
 * analysis checkpoint on the training split and a held-out one, Tr H and ‖A‖_F over the checkpoints
 * (means of Run.termStats), the probability paths of its tracked samples, and its checkpoints.
 */

const RunPageQueryDoc = graphql(`
  query RunPage($id: ID!) {
    run(id: $id) {
      id
      name
      status
      config
      createdAt
      checkpointCount
      dataset {
        id
        name
        classNames
        splits {
          split
          count
        }
      }
      model {
        id
        name
        architecture
        format
      }
      training {
        optimizer
        learningRate
        epochs
        batchSize
        split
        analyzeEvery
        trackEverySteps
        sampleCount
        error
        progress {
          stepsPerEpoch
          steps
          stepsDone
          fraction
        }
        trackedSamples {
          id
          index
          label
          className
        }
      }
      dynamicsSummary {
        analysisPoints
        samplesAnalysed
        hPsdPairs
        hPsdRatio
        hTolerance
        finalTrainingSamples
        finalTrainingAccuracy
        finalTrainingLoss
        probabilityPathsTracked
        pathLength
        finalCheckpoint {
          id
          step
        }
      }
      checkpoints(first: 1000) {
        nodes {
          id
          step
          epoch
        }
      }
    }
  }
`);

const RunUpdatedSubscription = graphql(`
  subscription RunUpdated($id: ID!) {
    runUpdated(id: $id) {
      id
      status
      checkpointCount
    }
  }
`);

const RunCurvesQuery = graphql(`
  query RunCurves($id: ID!, $checkpointIds: [ID!], $splits: [String!]) {
    run(id: $id) {
      id
      loss: termStats(term: LOSS, filter: { splits: $splits }, checkpointIds: $checkpointIds) {
        checkpoint {
          id
          step
        }
        count
        mean
      }
      correct: termStats(term: LOSS, filter: { splits: $splits, correct: true }, checkpointIds: $checkpointIds) {
        count
      }
      aNorm: termStats(term: A_NORM, filter: { splits: $splits }, checkpointIds: $checkpointIds) {
        mean
      }
      hTrace: termStats(term: H_TRACE, filter: { splits: $splits }, checkpointIds: $checkpointIds) {
        mean
      }
    }
  }
`);

const RunPathsQuery = graphql(`
  query RunPaths($id: ID!) {
    run(id: $id) {
      id
      probabilityPaths {
        checkpointIds
        steps
        sampleIds
        labels
        classes
        probsBase64
      }
    }
  }
`);

/** Little-endian float32 values from base64 (every browser the Explorer runs in is little-endian, as the API's bytes are). */
function float32FromBase64(base64: string): Float32Array {
  const bytes = Uint8Array.from(atob(base64), (ch) => ch.charCodeAt(0));
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
}

type Run = NonNullable<RunPageQuery['run']>;
type Summary = Run['dynamicsSummary'];

/** The steps of a Tangent-trained run's analysis points (train-plan: epoch 0, every analyzeEvery-th epoch, the last). */
function analysisSteps(training: NonNullable<Run['training']>): Set<number> {
  const spe = training.progress.stepsPerEpoch;
  const steps = new Set([0, training.epochs * spe]);
  for (let e = training.analyzeEvery; e <= training.epochs; e += training.analyzeEvery) steps.add(e * spe);
  return steps;
}

const num = (v: number | null | undefined, digits = 4) => (v === null || v === undefined ? '—' : String(Number(v.toPrecision(digits))));
const pct = (v: number | null | undefined) => (v === null || v === undefined ? '—' : `${(v * 100).toFixed(1)}%`);

function SummaryItem({ label, testId, value, shown, title }: { label: string; testId: string; value: number | null | undefined; shown: string; title?: string }) {
  return (
    <div title={title}>
      <dt>{label}</dt>
      <dd data-testid={testId} data-value={value ?? ''}>
        {shown}
      </dd>
    </div>
  );
}

function SummaryBlock({ summary, split }: { summary: Summary; split: string }) {
  return (
    <dl className="summary" data-testid="dynamics-summary" aria-label="Dynamics summary">
      <SummaryItem
        label="H PSD ratio"
        testId="summary-h-psd-ratio"
        value={summary.hPsdRatio}
        shown={summary.hPsdRatio === null ? '—' : `${num(summary.hPsdRatio, 6)} (${summary.hPsdPairs} rows)`}
        title={`Rows whose H has its smallest eigenvalue ≥ −${summary.hTolerance}`}
      />
      <SummaryItem label="Samples analysed" testId="summary-samples-analysed" value={summary.samplesAnalysed} shown={String(summary.samplesAnalysed)} />
      <SummaryItem label="Analysis points" testId="summary-analysis-points" value={summary.analysisPoints} shown={String(summary.analysisPoints)} />
      <SummaryItem label="Paths tracked" testId="summary-paths-tracked" value={summary.probabilityPathsTracked} shown={String(summary.probabilityPathsTracked)} />
      <SummaryItem label="Mean path length" testId="summary-path-length" value={summary.pathLength} shown={num(summary.pathLength)} title="Mean over tracked samples of Σ ‖π_t − π_{t−1}‖₂" />
      <SummaryItem
        label={`Final accuracy (${split})`}
        testId="summary-final-accuracy"
        value={summary.finalTrainingAccuracy}
        shown={pct(summary.finalTrainingAccuracy)}
        title={`Over ${summary.finalTrainingSamples} samples at the last analysis point`}
      />
      <SummaryItem label={`Final loss (${split})`} testId="summary-final-loss" value={summary.finalTrainingLoss} shown={num(summary.finalTrainingLoss)} />
    </dl>
  );
}

/** The held-out split is drawn dashed, so the two splits differ by more than colour. */
const HELD_OUT_DASH = [6, 4];

/** Loss, accuracy, Tr H and ‖A‖_F means per analysis checkpoint, for one split. */
function useCurves(runId: string, checkpointIds: string[] | null, split: string | null) {
  const [result, refetch] = useQuery({
    query: RunCurvesQuery,
    variables: { id: runId, checkpointIds, splits: split ? [split] : null },
    pause: !checkpointIds || !split,
  });
  const retry = useCallback(() => refetch({ requestPolicy: 'network-only' }), [refetch]);
  return { ...result, retry };
}

function Curves({ run, checkpointIds, trainSplit }: { run: Run; checkpointIds: string[]; trainSplit: string }) {
  const heldOutChoices = run.dataset.splits.map((s) => s.split).filter((s) => s !== trainSplit);
  const [heldOut, setHeldOut] = useState<string>(heldOutChoices.includes('test') ? 'test' : (heldOutChoices[0] ?? ''));
  const train = useCurves(run.id, checkpointIds, trainSplit);
  const test = useCurves(run.id, checkpointIds, heldOut || null);
  const trainState = termsState(train.error);
  const testState = termsState(test.error);

  const steps = useMemo(() => (train.data?.run?.loss ?? []).map((s) => s.checkpoint.step), [train.data]);
  const charts = useMemo(() => {
    const t = train.data?.run;
    const h = test.data?.run;
    const mean = (rows: readonly { mean?: number | null }[] | undefined) => (rows ? rows.map((r) => r.mean ?? null) : steps.map(() => null));
    const accuracy = (r: typeof t) => (r ? r.loss.map((l, i) => (l.count ? r.correct[i]!.count / l.count : null)) : steps.map(() => null));
    const pair = (a: (number | null)[], b: (number | null)[], colourA: string, colourB: string): LineSeries[] => [
      { label: trainSplit, values: a, colour: colourA },
      ...(heldOut ? [{ label: heldOut, values: b, colour: colourB, dash: HELD_OUT_DASH }] : []),
    ];
    return {
      loss: pair(mean(t?.loss), mean(h?.loss), '#0072B2', '#D55E00'),
      accuracy: pair(accuracy(t), accuracy(h), '#0072B2', '#D55E00'),
      hTrace: pair(mean(t?.hTrace), mean(h?.hTrace), '#009E73', '#CC79A7'),
      aNorm: pair(mean(t?.aNorm), mean(h?.aNorm), '#E69F00', '#56B4E9'),
    };
  }, [train.data, test.data, steps, trainSplit, heldOut]);

  return (
    <section aria-labelledby="curves-heading">
      <h2 id="curves-heading">Over the analysis checkpoints</h2>
      <div className="toolbar">
        <span>
          Training split: <strong>{trainSplit}</strong>
        </span>
        {heldOutChoices.length > 0 && (
          <label>
            Held-out split{' '}
            <select value={heldOut} onChange={(e) => setHeldOut(e.target.value)} data-testid="held-out-split">
              <option value="">none</option>
              {heldOutChoices.map((s) => (
                <option key={s} value={s}>
                  {s}
                </option>
              ))}
            </select>
          </label>
        )}
      </div>
      {train.error && !trainState && <p className="notice">{train.error.message}</p>}
      {test.error && !testState && <p className="notice">{test.error.message}</p>}
      {trainState && <TermsPending state={trainState} what={`Terms of the ${trainSplit} split`} onDone={train.retry} testId="curves-pending-train" />}
      {testState && <TermsPending state={testState} what={`Terms of the ${heldOut} split`} onDone={test.retry} testId="curves-pending-heldout" />}
      {train.fetching && !train.data && <p className="muted">Loading…</p>}
      {steps.length > 0 && (
        <div className="grid">
          <div className="panel">
            <h3>Mean loss</h3>
            <LineChart x={steps} xLabel="step" yLabel="loss" series={charts.loss} label="Mean loss per analysis checkpoint" testId="loss-chart" />
          </div>
          <div className="panel">
            <h3>Accuracy</h3>
            <LineChart x={steps} xLabel="step" yLabel="accuracy" series={charts.accuracy} label="Accuracy per analysis checkpoint" testId="accuracy-chart" format={(v) => `${(v * 100).toFixed(1)}%`} />
          </div>
          <div className="panel">
            <h3>Mean Tr H</h3>
            <LineChart x={steps} xLabel="step" yLabel="Tr H" series={charts.hTrace} label="Mean trace of H per analysis checkpoint" testId="htrace-chart" />
          </div>
          <div className="panel">
            <h3>Mean ‖A‖_F</h3>
            <LineChart x={steps} xLabel="step" yLabel="‖A‖_F" series={charts.aNorm} label="Mean Frobenius norm of A per analysis checkpoint" testId="anorm-chart" />
          </div>
        </div>
      )}
    </section>
  );
}

/** π of the tracked samples at every checkpoint of the run (Run.probabilityPaths: one request, float32 columns). */
function usePaths(run: Run): { data: PathData | null; error: ReturnType<typeof useQuery>[0]['error']; fetching: boolean; retry(): void } {
  const tracked = run.training?.trackedSamples ?? [];
  // Asked again whenever the page remounts it (the Paths section is keyed by the checkpoint count, so a
  // run still training draws each new checkpoint): the document cache would otherwise answer the old paths.
  const [{ data, error, fetching }, refetch] = useQuery({ query: RunPathsQuery, variables: { id: run.id }, pause: tracked.length === 0, requestPolicy: 'cache-and-network' });
  const retry = useCallback(() => refetch({ requestPolicy: 'network-only' }), [refetch]);
  const paths = useMemo((): PathData | null => {
    const p = data?.run?.probabilityPaths;
    if (!p) return null;
    const known = new Map(tracked.map((s) => [s.id, s]));
    const samples = p.sampleIds.map((id, i) => {
      const label = p.labels[i]!;
      return known.get(id) ?? { id, index: Number.NaN, label, className: run.dataset.classNames[label] ?? String(label) };
    });
    return {
      checkpoints: p.checkpointIds.map((id, i) => ({ id, step: p.steps[i]! })),
      samples,
      classNames: run.dataset.classNames.length === p.classes ? run.dataset.classNames : Array.from({ length: p.classes }, (_, c) => String(c)),
      probs: float32FromBase64(p.probsBase64),
    };
  }, [data, tracked, run.dataset.classNames]);
  return { data: paths, error, fetching, retry };
}

function Paths({ run }: { run: Run }) {
  const [mode, setMode] = useState<PathMode>('true');
  const paths = usePaths(run);
  const state = termsState(paths.error);
  const tracked = run.training?.trackedSamples ?? [];
  return (
    <section aria-labelledby="paths-heading">
      <h2 id="paths-heading">Probability paths</h2>
      {tracked.length === 0 ? (
        <p className="muted" data-testid="paths-none">
          No tracked samples: a run Tangent trains tracks some (trainRun's trackSamples and trackEverySteps).
        </p>
      ) : (
        <>
          <div className="toolbar" role="radiogroup" aria-label="Which probabilities">
            <label>
              <input type="radio" name="paths-mode" checked={mode === 'true'} onChange={() => setMode('true')} /> π of the true class
            </label>
            <label>
              <input type="radio" name="paths-mode" checked={mode === 'all'} onChange={() => setMode('all')} data-testid="paths-all-classes" /> all classes
            </label>
            <span className="muted">Hover a line to name its sample; click to open it at that checkpoint.</span>
          </div>
          {state && <TermsPending state={state} what="Probabilities of the tracked samples" onDone={paths.retry} testId="paths-pending" />}
          {paths.error && !state && <p className="notice">{paths.error.message}</p>}
          {paths.fetching && !paths.data && <p className="muted">Loading…</p>}
          {paths.data && <ProbabilityPaths data={paths.data} mode={mode} />}
          <details>
            <summary>Tracked samples ({tracked.length})</summary>
            <ul className="tracked" data-testid="tracked-samples">
              {tracked.map((s) => (
                <li key={s.id}>
                  <span className="swatch" style={{ background: classColour(s.label) }} aria-hidden="true" />
                  <Link href={`/samples/${s.id}`}>
                    sample #{s.index} ({s.className})
                  </Link>
                </li>
              ))}
            </ul>
          </details>
        </>
      )}
    </section>
  );
}

function Checkpoints({ run, analysis }: { run: Run; analysis: Set<string> }) {
  const nodes = run.checkpoints.nodes;
  return (
    <section aria-labelledby="checkpoints-heading">
      <h2 id="checkpoints-heading">Checkpoints ({run.checkpointCount})</h2>
      <table className="data" data-testid="checkpoints-table" data-rows={nodes.length}>
        <thead>
          <tr>
            <th className="num">Step</th>
            <th className="num">Epoch</th>
            <th>Kind</th>
          </tr>
        </thead>
        <tbody>
          {nodes.map((c) => (
            <tr key={c.id} data-testid="checkpoint-row" data-id={c.id}>
              <td className="num">
                <Link href={`/checkpoints/${c.id}`}>step {c.step}</Link>
              </td>
              <td className="num">{c.epoch === null || c.epoch === undefined ? '—' : num(c.epoch, 3)}</td>
              <td>{analysis.has(c.id) ? 'analysis' : 'tracking'}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

export function RunPage({ id }: { id: string }) {
  const [{ data, error, fetching }, refetch] = useQuery({ query: RunPageQueryDoc, variables: { id } });
  const run = data?.run;
  const live = run && (run.status === 'PENDING' || run.status === 'RUNNING');
  // While it trains, each change (a checkpoint stored, its status) brings the page up to date.
  const [{ data: updated }] = useSubscription({ query: RunUpdatedSubscription, variables: { id }, pause: !live });
  useEffect(() => {
    if (updated) refetch({ requestPolicy: 'network-only' });
  }, [updated, refetch]);

  const analysis = useMemo(() => {
    if (!run) return null;
    const nodes = run.checkpoints.nodes;
    if (!run.training) return new Set(nodes.map((c) => c.id));
    const steps = analysisSteps(run.training);
    return new Set(nodes.filter((c) => steps.has(c.step)).map((c) => c.id));
  }, [run]);
  const analysisIds = useMemo(() => (run && analysis ? run.checkpoints.nodes.filter((c) => analysis.has(c.id)).map((c) => c.id) : null), [run, analysis]);

  if (error) return <p className="notice">Could not load run {id}: {error.message}</p>;
  if (!data && fetching) return <p className="muted">Loading run {id}…</p>;
  if (!run || !analysis || !analysisIds) return <p className="notice">No run {id}.</p>;
  const trainSplit = run.training?.split ?? 'train';
  const t = run.training;
  return (
    <article data-testid="run-page" data-run-id={run.id}>
      <p className="muted">
        <Link href="/">Home</Link> › run
      </p>
      <h1>
        {run.name} <span className={`status ${run.status}`}>{run.status.toLowerCase()}</span>
      </h1>
      <p className="muted">
        {run.model.name} ({run.model.architecture ?? run.model.format.toLowerCase()}) on {run.dataset.name}
        {t && ` · ${t.optimizer.toLowerCase()} η=${t.learningRate}, ${t.epochs} epochs of batches of ${t.batchSize}, ${t.sampleCount} ${t.split} samples`}
        {live && t && ` · ${(t.progress.fraction * 100).toFixed(0)}% trained`}
      </p>
      {t?.error && <p className="notice">{t.error}</p>}
      <h2>Dynamics summary</h2>
      <SummaryBlock summary={run.dynamicsSummary} split={trainSplit} />
      {run.dynamicsSummary.finalCheckpoint && (
        <p>
          Last analysis point: <Link href={`/checkpoints/${run.dynamicsSummary.finalCheckpoint.id}`}>step {run.dynamicsSummary.finalCheckpoint.step}</Link>
        </p>
      )}
      {analysisIds.length > 0 ? <Curves run={run} checkpointIds={analysisIds} trainSplit={trainSplit} /> : <p className="muted">No checkpoints yet.</p>}
      <Paths key={run.checkpointCount} run={run} />
      <Checkpoints run={run} analysis={analysis} />
    </article>
  );
}
