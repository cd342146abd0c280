import { useEffect, useMemo, useRef, useState } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { useQuery } from 'urql';
import { Link } from 'wouter';
import { classColour } from '../charts/scatter-colours';
import { graphql } from '../gql';
import { useHashSearch } from '../hash-location';
import { fmt, Problem, RankedTable, usePoll, useTermsProblem, Value } from './checkpoint';

/**
 * The sample page (#/samples/:id, optionally ?checkpoint=<id>): the sample's series, its terms at
 * every checkpoint of a run (each checkpoint asked on its own, so one whose terms are pending shows
 * "pending" while the others show values), and the first-order prediction of how one SGD step on
 * another sample, picked from the checkpoint's ranked table, moves this sample's log-probabilities,
 * beside the change observed at the run's next checkpoint.
 */

const SampleQuery = graphql(`
  query SamplePage($id: ID!) {
    sample(id: $id) {
      id
      index
      label
      className
      split
      series
      originalLength
      dataset {
        id
        name
        length
        channels
        classNames
        splits {
          split
        }
        runs(first: 50) {
          nodes {
            id
            name
          }
        }
      }
    }
  }
`);

const SampleCheckpointQuery = graphql(`
  query SampleCheckpoint($id: ID!) {
    checkpoint(id: $id) {
      id
      step
      run {
        id
      }
    }
  }
`);

const RunCheckpointsQuery = graphql(`
  query SampleRunCheckpoints($id: ID!, $first: Int!) {
    run(id: $id) {
      id
      name
      checkpointCount
      model {
        id
        parameterSubsets {
          name
        }
      }
      checkpoints(first: $first) {
        nodes {
          id
          step
          epoch
        }
      }
    }
  }
`);

const TermsAtQuery = graphql(`
  query SampleTermsAt($checkpoint: ID!, $sample: ID!, $subset: String!) {
    checkpoint(id: $checkpoint) {
      id
      sampleTerms(sampleIds: [$sample], terms: [LOSS, CORRECT, PROBS, A_NORM, H_TRACE, H_MIN_EIG, G_NORM, K_NORM, K_TRACE], subset: $subset) {
        loss
        correct
        probs
        aNorm
        hTrace
        hMinEig
        gNorm
        kNorm
        kTrace
      }
    }
  }
`);

const FirstOrderQuery = graphql(`
  query SampleFirstOrder($checkpoint: ID!, $observed: ID!, $updated: ID!, $subset: String!) {
    checkpoint(id: $checkpoint) {
      id
      firstOrder(observedId: $observed, updatedId: $updated, subset: $subset) {
        learningRate
        subset
        logProbs
        predictedDeltaLogProbs
        observedDeltaLogProbs
        nextCheckpoint {
          id
          step
        }
        updated {
          id
          index
          className
        }
      }
    }
  }
`);

/** The most checkpoints the terms table asks about (one request each). */
const MAX_CHECKPOINTS = 100;

type Terms = { loss: number | null; correct: boolean | null; piTrue: number | null; aNorm: number | null; hTrace: number | null; hMinEig: number | null; gNorm: number | null; kNorm: number | null; kTrace: number | null };
const TERM_COLUMNS: { key: keyof Omit<Terms, 'correct'>; label: string }[] = [
  { key: 'loss', label: 'loss' },
  { key: 'piTrue', label: 'π(y)' },
  { key: 'gNorm', label: '‖G‖' },
  { key: 'aNorm', label: '‖A‖_F' },
  { key: 'hTrace', label: 'Tr H' },
  { key: 'hMinEig', label: 'λmin H' },
  { key: 'kNorm', label: '‖K‖_F' },
  { key: 'kTrace', label: 'Tr K' },
];

export function SamplePage({ id }: { id: string }) {
  const search = new URLSearchParams(useHashSearch());
  const checkpointParam = search.get('checkpoint');
  const [{ data, error, fetching }] = useQuery({ query: SampleQuery, variables: { id } });
  const [{ data: cpData }] = useQuery({ query: SampleCheckpointQuery, variables: { id: checkpointParam ?? '' }, pause: !checkpointParam });
  const sample = data?.sample;
  const [runChoice, setRunChoice] = useState<string | null>(null);
  const runId = runChoice ?? cpData?.checkpoint?.run.id ?? (checkpointParam ? null : (sample?.dataset.runs.nodes[0]?.id ?? null));
  const [subset, setSubset] = useState('all');

  if (fetching && !data) return <p className="muted">Loading sample {id}…</p>;
  if (error) return <Problem problem={{ pending: false, jobId: null, message: error.graphQLErrors[0]?.message ?? error.message }} />;
  if (!sample) return <p className="notice">No sample {id}.</p>;
  const { dataset } = sample;
  return (
    <section data-testid="sample-page">
      <h1>
        Sample <span data-testid="sample-index">{sample.index}</span> of {dataset.name}
      </h1>
      <p>
        Class <span data-testid="sample-class">{sample.className}</span> (label {sample.label}) · split {sample.split} · {dataset.length} steps × {dataset.channels}{' '}
        channel{dataset.channels === 1 ? '' : 's'}
        {sample.originalLength != null && <> · {sample.originalLength} steps in its source file</>}
      </p>
      <div className="panel">
        <h2>Series</h2>
        <SeriesChart series={sample.series} channels={dataset.channels} label={`Series of sample ${sample.index}`} />
      </div>
      <div className="toolbar">
        <label>
          Run{' '}
          <select value={runId ?? ''} onChange={(e) => setRunChoice(e.target.value)} data-testid="sample-run">
            {!runId && <option value="">(choose)</option>}
            {dataset.runs.nodes.map((r) => (
              <option key={r.id} value={r.id}>
                {r.name} ({r.id})
              </option>
            ))}
          </select>
        </label>
      </div>
      {runId ? (
        <RunTerms
          runId={runId}
          sampleId={sample.id}
          label={sample.label}
          classNames={dataset.classNames}
          splits={dataset.splits.map((s) => s.split)}
          channels={dataset.channels}
          preferredCheckpoint={runChoice ? null : checkpointParam}
          subset={subset}
          setSubset={setSubset}
        />
      ) : (
        <p className="muted">{dataset.runs.nodes.length === 0 ? 'No run on this data set yet.' : 'Choose a run.'}</p>
      )}
    </section>
  );
}

function RunTerms(props: {
  runId: string;
  sampleId: string;
  label: number;
  classNames: string[];
  splits: string[];
  channels: number;
  preferredCheckpoint: string | null;
  subset: string;
  setSubset: (s: string) => void;
}) {
  const { runId, sampleId, label, classNames, splits, channels, preferredCheckpoint, subset, setSubset } = props;
  const [{ data, error }] = useQuery({ query: RunCheckpointsQuery, variables: { id: runId, first: MAX_CHECKPOINTS } });
  const run = data?.run;
  const checkpoints = run?.checkpoints.nodes ?? [];
  const [terms, setTerms] = useState<Record<string, Terms>>({});
  const [checkpointChoice, setCheckpointChoice] = useState<string | null>(null);
  const checkpointId = checkpointChoice ?? (preferredCheckpoint && checkpoints.some((c) => c.id === preferredCheckpoint) ? preferredCheckpoint : (checkpoints.at(-1)?.id ?? null));
  useEffect(() => setTerms({}), [subset, runId]);

  if (error) return <Problem problem={{ pending: false, jobId: null, message: error.graphQLErrors[0]?.message ?? error.message }} />;
  if (!run) return <p className="muted">Loading the run…</p>;
  return (
    <>
      <div className="toolbar">
        <label>
          Parameter subset{' '}
          <select value={subset} onChange={(e) => setSubset(e.target.value)} data-testid="subset-switch">
            <option value="all">all</option>
            {run.model.parameterSubsets
              .filter((s) => s.name !== 'all')
              .map((s) => (
                <option key={s.name}>{s.name}</option>
              ))}
          </select>
        </label>
      </div>
      <div className="panel">
        <h2>Terms across the run's checkpoints</h2>
        {run.checkpointCount > checkpoints.length && (
          <p className="muted">
            The first {checkpoints.length} of {run.checkpointCount} checkpoints.
          </p>
        )}
        <TermsChart checkpoints={checkpoints} terms={terms} />
        <table className="data" data-testid="sample-terms">
          <thead>
            <tr>
              <th scope="col" className="num">
                step
              </th>
              <th scope="col">correct</th>
              {TERM_COLUMNS.map((c) => (
                <th scope="col" className="num" key={c.key}>
                  {c.label}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {checkpoints.map((c) => (
              <TermsRow
                key={`${c.id}/${subset}`}
                checkpointId={c.id}
                step={c.step}
                sampleId={sampleId}
                label={label}
                subset={subset}
                onTerms={(t) => setTerms((prev) => (prev[c.id] === t ? prev : { ...prev, [c.id]: t }))}
              />
            ))}
          </tbody>
        </table>
      </div>
      <div className="panel">
        <h2>First order: one step on another sample, seen here</h2>
        <div className="toolbar">
          <label>
            At checkpoint{' '}
            <select value={checkpointId ?? ''} onChange={(e) => setCheckpointChoice(e.target.value)} data-testid="firstorder-checkpoint">
              {checkpoints.map((c) => (
                <option key={c.id} value={c.id}>
                  step {c.step}
                </option>
              ))}
            </select>
          </label>
          {checkpointId && (
            <Link href={`/checkpoints/${checkpointId}`} data-testid="checkpoint-link">
              open the checkpoint
            </Link>
          )}
        </div>
        {checkpointId && <FirstOrderPanel checkpointId={checkpointId} sampleId={sampleId} classNames={classNames} splits={splits} channels={channels} subset={subset} />}
      </div>
    </>
  );
}

function TermsRow({ checkpointId, step, sampleId, label, subset, onTerms }: { checkpointId: string; step: number; sampleId: string; label: number; subset: string; onTerms: (t: Terms) => void }) {
  const [{ data, error, fetching }, refetch] = useQuery({ query: TermsAtQuery, variables: { checkpoint: checkpointId, sample: sampleId, subset } });
  const problem = useTermsProblem(error, fetching);
  usePoll(!!problem?.pending, () => refetch({ requestPolicy: 'network-only' }), problem?.jobId ? 3000 : 15000);
  const m = data?.checkpoint?.sampleTerms[0];
  const terms = useMemo<Terms | null>(
    () =>
      m
        ? {
            loss: m.loss ?? null,
            correct: m.correct ?? null,
            piTrue: m.probs ? (m.probs[label] ?? null) : null,
            aNorm: m.aNorm ?? null,
            hTrace: m.hTrace ?? null,
            hMinEig: m.hMinEig ?? null,
            gNorm: m.gNorm ?? null,
            kNorm: m.kNorm ?? null,
            kTrace: m.kTrace ?? null,
          }
        : null,
    [m, label],
  );
  const report = useRef(onTerms);
  report.current = onTerms;
  useEffect(() => {
    if (terms) report.current(terms);
  }, [terms]);
  return (
    <tr data-testid="sample-terms-row" data-checkpoint-id={checkpointId} data-ready={terms ? 'true' : 'false'}>
      <td className="num">
        <Link href={`/checkpoints/${checkpointId}`}>{step}</Link>
      </td>
      {terms ? (
        <>
          <td className={terms.correct == null ? 'pending' : undefined} data-testid="term-correct">
            {terms.correct == null ? 'pending' : terms.correct ? 'yes' : 'no'}
          </td>
          {TERM_COLUMNS.map((c) => (
            <Value key={c.key} v={terms[c.key]} testId={`term-${c.key}`} />
          ))}
        </>
      ) : (
        <td colSpan={TERM_COLUMNS.length + 1} className={problem?.pending || fetching ? 'pending' : 'notice'} data-testid="terms-pending">
          {problem ? (problem.pending ? `pending: ${problem.message}` : problem.message) : 'loading…'}
        </td>
      )}
    </tr>
  );
}

/** A uPlot chart owned by a React component: made on mount and when its data or options change, destroyed after. */
function UPlotChart({ options, data, label, testId }: { options: Omit<uPlot.Options, 'width'>; data: uPlot.AlignedData; label: string; testId?: string }) {
  const ref = useRef<HTMLDivElement>(null);
  const [ready, setReady] = useState(false);
  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    const plot = new uPlot({ ...options, width: Math.max(240, el.clientWidth), hooks: { draw: [() => setReady(true)] } }, data, el);
    const observer = new ResizeObserver(() => plot.setSize({ width: Math.max(240, el.clientWidth), height: options.height }));
    observer.observe(el);
    return () => {
      observer.disconnect();
      plot.destroy();
      setReady(false);
    };
  }, [options, data]);
  return <div ref={ref} className="chart" role="img" aria-label={label} data-testid={testId} data-ready={ready ? 'true' : 'false'} />;
}

const CHANNEL_COLOURS = ['#0072B2', '#D55E00', '#009E73', '#CC79A7'];

function SeriesChart({ series, channels, label }: { series: number[]; channels: number; label: string }) {
  const length = Math.floor(series.length / channels);
  const data = useMemo<uPlot.AlignedData>(
    () => [Array.from({ length }, (_, t) => t), ...Array.from({ length: channels }, (_, c) => Array.from({ length }, (_, t) => series[t * channels + c]!))],
    [series, channels, length],
  );
  const options = useMemo<Omit<uPlot.Options, 'width'>>(
    () => ({
      height: 220,
      scales: { x: { time: false } },
      axes: [{ label: 'time step' }, {}],
      series: [{ label: 't' }, ...Array.from({ length: channels }, (_, c) => ({ label: channels === 1 ? 'value' : `channel ${c}`, stroke: CHANNEL_COLOURS[c % CHANNEL_COLOURS.length], width: 1.5 }))],
    }),
    [channels],
  );
  return <UPlotChart options={options} data={data} label={label} testId="sample-series" />;
}

function TermsChart({ checkpoints, terms }: { checkpoints: readonly { id: string; step: number }[]; terms: Record<string, Terms> }) {
  // Lines over the checkpoints whose terms have come; a missing value is a gap (null), never 0.
  const data = useMemo<uPlot.AlignedData>(() => {
    const at = checkpoints.filter((c) => terms[c.id]);
    return [at.map((c) => c.step), at.map((c) => terms[c.id]!.loss), at.map((c) => terms[c.id]!.piTrue), at.map((c) => terms[c.id]!.kNorm)];
  }, [checkpoints, terms]);
  const options = useMemo<Omit<uPlot.Options, 'width'>>(
    () => ({
      height: 220,
      scales: { x: { time: false }, k: {} },
      axes: [{ label: 'step' }, { label: 'loss, π(y)' }, { scale: 'k', side: 1, label: '‖K‖_F', grid: { show: false } }],
      series: [
        { label: 'step' },
        { label: 'loss', stroke: '#D55E00', width: 1.5 },
        { label: 'π(y)', stroke: '#0072B2', width: 1.5 },
        { label: '‖K‖_F', stroke: '#009E73', width: 1.5, dash: [6, 3], scale: 'k' },
      ],
    }),
    [],
  );
  if (data[0].length === 0) return null;
  return <UPlotChart options={options} data={data} label="Loss, π of the true class and ‖K‖_F at each checkpoint" testId="sample-terms-chart" />;
}

function FirstOrderPanel({ checkpointId, sampleId, classNames, splits, channels, subset }: { checkpointId: string; sampleId: string; classNames: string[]; splits: string[]; channels: number; subset: string }) {
  const [updated, setUpdated] = useState<string | null>(null);
  const [{ data, error, fetching }] = useQuery({
    query: FirstOrderQuery,
    variables: { checkpoint: checkpointId, observed: sampleId, updated: updated ?? '', subset },
    pause: !updated,
  });
  const fo = data?.checkpoint?.firstOrder;
  const bars = useMemo<uPlot.AlignedData | null>(
    () => (fo ? [classNames.map((_, c) => c), fo.predictedDeltaLogProbs, fo.observedDeltaLogProbs ?? classNames.map(() => null)] : null),
    [fo, classNames],
  );
  const options = useMemo<Omit<uPlot.Options, 'width'>>(
    () => ({
      height: 200,
      scales: { x: { time: false, range: (_u, lo, hi) => [lo - 0.6, hi + 0.6] } },
      // One tick per class, named.
      axes: [{ label: 'class', splits: () => classNames.map((_, c) => c), values: (_u, ticks) => ticks.map((t) => classNames[t] ?? '') }, { label: 'Δ log π' }],
      series: [
        { label: 'class' },
        { label: 'predicted', stroke: classColour(4), fill: `${classColour(4)}aa`, paths: uPlot.paths.bars!({ size: [0.35, 60], align: -1 }), points: { show: false } },
        { label: 'observed', stroke: classColour(5), fill: `${classColour(5)}aa`, paths: uPlot.paths.bars!({ size: [0.35, 60], align: 1 }), points: { show: false } },
      ],
    }),
    [classNames],
  );
  return (
    <>
      <p className="muted">Pick the sample x_u the step is taken on: the prediction is Δlog π(·|this sample) ≈ −η A K G, over the parameter subset {subset}.</p>
      <RankedTable checkpointId={checkpointId} subset={subset} classNames={classNames} splits={splits} channels={channels} onPick={setUpdated} pickLabel="Step on it" initialFirst={20} testId="pick" />
      {updated && (
        <div data-testid="firstorder">
          {fetching && !fo && <p className="muted">Computing the prediction…</p>}
          {error && <Problem problem={{ pending: false, jobId: null, message: error.graphQLErrors[0]?.message ?? error.message }} testId="firstorder-problem" />}
          {fo && bars && (
            <>
              <p>
                One step of η = <span data-testid="firstorder-lr">{fmt(fo.learningRate)}</span> on{' '}
                <Link href={`/samples/${fo.updated.id}?checkpoint=${checkpointId}`} data-testid="firstorder-updated" data-sample-id={fo.updated.id}>
                  sample {fo.updated.index}
                </Link>{' '}
                ({fo.updated.className}), over {fo.subset};{' '}
                {fo.nextCheckpoint ? <>observed: the change to the next checkpoint (step {fo.nextCheckpoint.step}).</> : <span className="pending">no next checkpoint, so nothing observed.</span>}
              </p>
              <UPlotChart options={options} data={bars} label="Predicted and observed change of log π per class" testId="firstorder-chart" />
              <table className="data" data-testid="firstorder-table">
                <thead>
                  <tr>
                    <th scope="col">class</th>
                    <th scope="col" className="num">
                      log π now
                    </th>
                    <th scope="col" className="num">
                      predicted Δlog π
                    </th>
                    <th scope="col" className="num">
                      observed Δlog π
                    </th>
                  </tr>
                </thead>
                <tbody>
                  {classNames.map((name, c) => (
                    <tr key={c} data-testid="firstorder-row">
                      <td>{name}</td>
                      <Value v={fo.logProbs[c]} testId="fo-logprob" />
                      <Value v={fo.predictedDeltaLogProbs[c]} testId="fo-predicted" />
                      <Value v={fo.observedDeltaLogProbs?.[c]} testId="fo-observed" missing="none" />
                    </tr>
                  ))}
                </tbody>
              </table>
            </>
          )}
        </div>
      )}
    </>
  );
}
