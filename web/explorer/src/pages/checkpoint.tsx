import { useEffect, useMemo, useRef, useState } from 'react';
import { useQuery, type CombinedError } from 'urql';
import { Link } from 'wouter';
import { Histogram, type ClassHistogram } from '../charts/histogram';
import { Scatter, type ScatterColour } from '../charts/scatter';
import { Sparkline } from '../charts/sparkline';
import { embedSeries } from '../embedding/embed';
import { seededSubsample } from '../embedding/protocol';
import { graphql } from '../gql';
import type { OrderDirection, ScalarTerm, SampleTermFilter } from '../gql/graphql';

/**
 * The checkpoint page (#/checkpoints/:id): ‖K‖_F per class over shared bins, loss against kNorm for
 * every sample, a UMAP map of the data set's series coloured by any term, and the ranked table with
 * keyset paging; all over the parameter subset chosen in the switch. Terms not computed yet are shown
 * as pending (the API's TERMS_PENDING, or a null value), never as zeros.
 */

const CheckpointQuery = graphql(`
  query CheckpointPage($id: ID!) {
    checkpoint(id: $id) {
      id
      step
      epoch
      learningRate
      run {
        id
        name
        model {
          id
          name
          parameterSubsets {
            name
            parameterCount
          }
        }
        dataset {
          id
          name
          length
          channels
          classNames
          sampleCount
          splits {
            split
            count
          }
        }
      }
    }
  }
`);

const KNormStatsQuery = graphql(`
  query CheckpointKNormStats($id: ID!, $subset: String!, $bins: Int!) {
    checkpoint(id: $id) {
      id
      termStats(term: K_NORM, subset: $subset) {
        count
        mean
        min
        max
        quantiles(at: [0.5]) {
          p
          value
        }
        byClass {
          label
          className
          count
          histogram(bins: $bins) {
            bins {
              lower
              upper
              count
            }
          }
        }
      }
    }
  }
`);

const ColumnsQuery = graphql(`
  query CheckpointTermColumns($id: ID!, $terms: [ScalarTerm!]!, $subset: String!) {
    checkpoint(id: $id) {
      id
      termColumns(terms: $terms, subset: $subset) {
        count
        sampleIds
        indices
        labels
        splits
        splitCodes
        correct
        columns {
          term
          values
          missing
        }
      }
    }
  }
`);

const RankedQuery = graphql(`
  query CheckpointRanked($id: ID!, $first: Int!, $after: String, $filter: SampleTermFilter, $orderBy: SampleTermOrder!, $subset: String!, $target: TargetSetInput) {
    checkpoint(id: $id) {
      id
      rankedSamples(first: $first, after: $after, filter: $filter, orderBy: $orderBy, subset: $subset, target: $target) {
        totalCount
        pageInfo {
          hasNextPage
          endCursor
        }
        nodes {
          sampleId
          index
          label
          className
          split
          score
          loss
          correct
          aNorm
          hTrace
          hMinEig
          gNorm
          kNorm
          kTrace
          kCross
          sample {
            id
            series
          }
        }
      }
    }
  }
`);

const SeriesQuery = graphql(`
  query CheckpointSeries($id: ID!, $first: Int!, $ids: [ID!]!) {
    checkpoint(id: $id) {
      id
      rankedSamples(first: $first, filter: { sampleIds: $ids }, orderBy: { term: LOSS, direction: ASC }) {
        nodes {
          sampleId
          sample {
            id
            series
          }
        }
      }
    }
  }
`);

/** The terms a table can rank by, with their fields on RankedSample and the export's rows. */
export const TERMS: { term: ScalarTerm; field: TermField; label: string }[] = [
  { term: 'K_NORM', field: 'kNorm', label: '‖K‖_F' },
  { term: 'K_TRACE', field: 'kTrace', label: 'Tr K' },
  { term: 'LOSS', field: 'loss', label: 'loss' },
  { term: 'G_NORM', field: 'gNorm', label: '‖G‖' },
  { term: 'A_NORM', field: 'aNorm', label: '‖A‖_F' },
  { term: 'H_TRACE', field: 'hTrace', label: 'Tr H' },
  { term: 'H_MIN_EIG', field: 'hMinEig', label: 'λmin H' },
  { term: 'K_CROSS', field: 'kCross', label: 'kCross' },
];
type TermField = 'kNorm' | 'kTrace' | 'loss' | 'gNorm' | 'aNorm' | 'hTrace' | 'hMinEig' | 'kCross';

/** A number as the page shows it; null (not computed) is never shown as a number. */
export function fmt(v: number | null | undefined): string {
  if (v == null || !Number.isFinite(v)) return 'pending';
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(3);
  return String(Number(v.toPrecision(5)));
}

/**
 * A value cell: the shown number, the exact one in data-value; a missing value says so ("pending",
 * or `missing` where there is nothing to wait for) and is never shown as a number.
 */
export function Value({ v, testId, missing }: { v: number | null | undefined; testId?: string; missing?: string }) {
  const absent = v == null || !Number.isFinite(v);
  return (
    <td className={absent ? 'num pending' : 'num'} data-testid={testId} data-value={absent ? '' : String(v)}>
      {absent && missing ? missing : fmt(v)}
    </td>
  );
}

/** What a failed query says: terms being computed (TERMS_PENDING, with its job), or another error. */
export function termsProblem(error: CombinedError | undefined): { pending: boolean; jobId: string | null; message: string } | null {
  if (!error) return null;
  const pending = error.graphQLErrors.find((e) => e.extensions?.code === 'TERMS_PENDING');
  if (pending) return { pending: true, jobId: pending.extensions?.jobId != null ? String(pending.extensions.jobId) : null, message: pending.message };
  const missing = error.graphQLErrors.find((e) => e.extensions?.code === 'TERMS_MISSING');
  if (missing) return { pending: true, jobId: null, message: missing.message };
  return { pending: false, jobId: null, message: error.graphQLErrors[0]?.message ?? error.message };
}

/**
 * termsProblem of a query that polls while terms are pending: kept through each re-ask (urql clears
 * the error while a refetch is in flight), so "pending" stays on the page until the values come.
 */
export function useTermsProblem(error: CombinedError | undefined, fetching: boolean): ReturnType<typeof termsProblem> {
  const last = useRef<ReturnType<typeof termsProblem>>(null);
  const now = termsProblem(error);
  if (now || !fetching) last.current = now;
  return now ?? (fetching ? last.current : null);
}

/** Pending terms or an error, as a notice; while pending the caller polls (`usePoll`). */
export function Problem({ problem, testId }: { problem: ReturnType<typeof termsProblem>; testId?: string }) {
  if (!problem) return null;
  return problem.pending ? (
    <p className="pending" role="status" data-testid={testId}>
      Pending: {problem.message}
      {problem.jobId && (
        <>
          {' '}
          (<Link href="/jobs">job {problem.jobId}</Link>)
        </>
      )}
    </p>
  ) : (
    <p className="notice" role="alert" data-testid={testId}>
      {problem.message}
    </p>
  );
}

/**
 * Re-runs `refetch` every few seconds while `active` (terms pending): the page fills in when the job
 * ends. Without a job (a READER's key starts none) it asks rarely: someone else may compute them.
 */
export function usePoll(active: boolean, refetch: () => void, ms = 3000) {
  // The latest refetch, so a re-render (a new closure) does not restart the interval.
  const latest = useRef(refetch);
  latest.current = refetch;
  useEffect(() => {
    if (!active) return;
    const timer = setInterval(() => latest.current(), ms);
    return () => clearInterval(timer);
  }, [active, ms]);
}

export function CheckpointPage({ id }: { id: string }) {
  const [{ data, fetching, error }] = useQuery({ query: CheckpointQuery, variables: { id } });
  const [subset, setSubset] = useState('all');
  // Started here, beside the checkpoint's own query rather than after it: every sample's terms are
  // what the page waits longest for.
  const sampleColumns = useSampleColumns(id, subset);
  const checkpoint = data?.checkpoint;
  if (fetching && !data) return <p className="muted">Loading checkpoint {id}…</p>;
  if (error) return <Problem problem={termsProblem(error)} />;
  if (!checkpoint) return <p className="notice">No checkpoint {id}.</p>;
  const { run } = checkpoint;
  const { dataset } = run;
  return (
    <section data-testid="checkpoint-page">
      <h1>
        Checkpoint at step <span data-testid="checkpoint-step">{checkpoint.step}</span>
      </h1>
      <p>
        Run <Link href={`/runs/${run.id}`}>{run.name}</Link> · model {run.model.name} · dataset {dataset.name} (
        <span data-testid="dataset-sample-count">{dataset.sampleCount}</span> samples, {dataset.classNames.length} classes)
        {checkpoint.epoch != null && <> · epoch {fmt(checkpoint.epoch)}</>}
        {checkpoint.learningRate != null && <> · η {fmt(checkpoint.learningRate)}</>}
      </p>
      <div className="toolbar">
        <label>
          Parameter subset{' '}
          <select value={subset} onChange={(e) => setSubset(e.target.value)} data-testid="subset-switch">
            <option value="all">all</option>
            {run.model.parameterSubsets
              .filter((s) => s.name !== 'all')
              .map((s) => (
                <option key={s.name} value={s.name}>
                  {s.name} ({s.parameterCount.toLocaleString()} parameters)
                </option>
              ))}
          </select>
        </label>
        <span className="muted">kNorm, kTrace and kCross are over this subset's parameters.</span>
      </div>
      <div className="grid">
        <div className="panel">
          <h2>‖K‖_F per class</h2>
          <KNormHistograms id={id} subset={subset} />
        </div>
        <SampleScatters id={id} subset={subset} state={sampleColumns} dataset={dataset} />
      </div>
      <h2>Ranked samples</h2>
      <RankedTable checkpointId={id} subset={subset} classNames={dataset.classNames} splits={dataset.splits.map((s) => s.split)} channels={dataset.channels} />
    </section>
  );
}

function KNormHistograms({ id, subset }: { id: string; subset: string }) {
  const [bins, setBins] = useState(20);
  const [{ data, error, fetching }, refetch] = useQuery({ query: KNormStatsQuery, variables: { id, subset, bins } });
  const problem = useTermsProblem(error, fetching);
  usePoll(!!problem?.pending, () => refetch({ requestPolicy: 'network-only' }), problem?.jobId ? 3000 : 15000);
  const stats = data?.checkpoint?.termStats;
  const classes = useMemo<ClassHistogram[]>(
    () => (stats ? stats.byClass.map((c) => ({ label: c.label ?? null, name: c.className ?? `class ${c.label}`, bins: c.histogram.bins })) : []),
    [stats],
  );
  return (
    <>
      <div className="toolbar">
        <label>
          Bins{' '}
          <select value={bins} onChange={(e) => setBins(Number(e.target.value))} data-testid="histogram-bins">
            {[10, 20, 40, 80].map((b) => (
              <option key={b}>{b}</option>
            ))}
          </select>
        </label>
        {stats && (
          <span className="muted">
            <span data-testid="knorm-count">{stats.count}</span> samples · mean <span data-testid="knorm-mean">{fmt(stats.mean)}</span> · median{' '}
            {fmt(stats.quantiles.find((q) => q.p === 0.5)?.value)}
          </span>
        )}
      </div>
      <Problem problem={problem} testId="histogram-problem" />
      {fetching && !data && <p className="muted">Loading…</p>}
      {stats && <Histogram classes={classes} xLabel="‖K‖_F" label={`Histogram of ‖K‖_F per class over ${bins} shared bins, subset ${subset}`} testId="knorm-histogram" />}
    </>
  );
}

/** Every sample's terms at the checkpoint, as columns in dataset order (Checkpoint.termColumns: one request, binary columns). */
interface SampleColumns {
  n: number;
  sampleIds: string[];
  index: Int32Array;
  label: Int32Array;
  split: string[];
  correct: Float32Array;
  /** The terms read so far (the scatter's at first; the map's colour terms when picked); NaN where not computed. */
  values: Partial<Record<TermField, Float32Array>>;
  /** Per term read: how many samples lack it (NaN in `values`), so pending is said, never drawn as 0. */
  missing: Partial<Record<TermField, number>>;
}

/** The terms the scatter draws, read with every sample's ids and labels. */
const SCATTER_TERMS: ScalarTerm[] = ['K_NORM', 'LOSS'];

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Base64 to bytes: the browser's own decoder where it has one (Uint8Array.fromBase64), else atob. */
function base64Bytes(b64: string): Uint8Array<ArrayBuffer> {
  const native = (Uint8Array as unknown as { fromBase64?: (s: string) => Uint8Array<ArrayBuffer> }).fromBase64;
  if (native) return native(b64);
  const text = atob(b64);
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}

/** A base64 column of little-endian 32-bit values as a typed array (copied through a DataView on a big-endian machine). */
function column32<T extends Int32Array | Float32Array>(b64: string, Kind: { new (buffer: ArrayBuffer): T; new (length: number): T }): T {
  const bytes = base64Bytes(b64);
  if (LITTLE_ENDIAN) return new Kind(bytes.buffer);
  const view = new DataView(bytes.buffer);
  const out = new Kind(bytes.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = Kind === (Float32Array as unknown) ? view.getFloat32(4 * i, true) : view.getInt32(4 * i, true);
  return out;
}

type TermColumnsAnswer = NonNullable<NonNullable<ReturnType<typeof useColumnsQuery>[0]['data']>['checkpoint']>['termColumns'];

function useColumnsQuery(id: string, subset: string, terms: ScalarTerm[], pause = false) {
  return useQuery({ query: ColumnsQuery, variables: { id, subset, terms }, pause });
}

/** The answer's term columns, by the page's field names. */
function termValues(answer: TermColumnsAnswer): { values: SampleColumns['values']; missing: SampleColumns['missing'] } {
  const values: SampleColumns['values'] = {};
  const missing: SampleColumns['missing'] = {};
  for (const c of answer.columns) {
    const field = TERMS.find((t) => t.term === c.term)!.field;
    values[field] = column32(c.values, Float32Array);
    missing[field] = c.missing;
  }
  return { values, missing };
}

function toColumns(answer: TermColumnsAnswer): SampleColumns {
  const n = answer.count;
  const ids = column32(answer.sampleIds, Int32Array);
  const codes = base64Bytes(answer.splitCodes);
  const correctBytes = base64Bytes(answer.correct);
  const correct = new Float32Array(n);
  // 1 correct, 0 wrong, 255 not computed: NaN, never taken as either.
  for (let i = 0; i < n; i++) correct[i] = correctBytes[i] === 255 ? NaN : correctBytes[i]!;
  return {
    n,
    sampleIds: Array.from(ids, String),
    index: column32(answer.indices, Int32Array),
    label: column32(answer.labels, Int32Array),
    split: Array.from(codes, (k) => answer.splits[k]!),
    correct,
    ...termValues(answer),
  };
}

/** Every sample's terms, once read. */
interface ColumnsState {
  columns: SampleColumns | null;
  problem: ReturnType<typeof termsProblem>;
}

function useSampleColumns(id: string, subset: string): ColumnsState {
  const [{ data, error, fetching }, refetch] = useColumnsQuery(id, subset, SCATTER_TERMS);
  const answer = data?.checkpoint?.termColumns;
  const columns = useMemo(() => (answer ? toColumns(answer) : null), [answer]);
  // Values not computed yet (a job, or another page's query, computing them): asked again until they come.
  const pending = !!columns && SCATTER_TERMS.some((t) => (columns.missing[TERMS.find((x) => x.term === t)!.field] ?? 0) > 0);
  usePoll(pending, () => refetch({ requestPolicy: 'network-only' }), 5000);
  return { columns, problem: error && !fetching ? termsProblem(error) : null };
}

/** One more term's column of the same samples (the map's colour), read when first picked. */
function useTermColumn(id: string, subset: string, field: TermField | null, columns: SampleColumns): { values: Float32Array | null; missing: number } {
  const have = field ? columns.values[field] : undefined;
  const term = field ? TERMS.find((t) => t.field === field)!.term : null;
  const [{ data }] = useColumnsQuery(id, subset, term ? [term] : [], !term || !!have);
  const answer = data?.checkpoint?.termColumns;
  const read = useMemo(() => (answer && answer.count === columns.n ? termValues(answer) : null), [answer, columns.n]);
  if (!field) return { values: null, missing: 0 };
  if (have) return { values: have, missing: columns.missing[field] ?? 0 };
  return { values: read?.values[field] ?? null, missing: read?.missing[field] ?? 0 };
}

interface DatasetInfo {
  id: string;
  length: number;
  channels: number;
  classNames: string[];
  sampleCount: number;
}

/** The scatter of loss against kNorm and the embedding map, two panels that read the same per-sample columns. */
function SampleScatters({ id, subset, state, dataset }: { id: string; subset: string; state: ColumnsState; dataset: DatasetInfo }) {
  const { columns, problem } = state;
  const [selected, setSelected] = useState<number | null>(null);
  const kNorm = columns?.values.kNorm;
  const loss = columns?.values.loss;
  const missingKNorm = columns?.missing.kNorm ?? 0;
  const missingLoss = columns?.missing.loss ?? 0;
  const colour = useMemo<ScatterColour | null>(() => (columns ? { kind: 'class', labels: columns.label, names: dataset.classNames } : null), [columns, dataset.classNames]);
  const describe = (i: number) =>
    columns
      ? `sample ${columns.index[i]} (${dataset.classNames[columns.label[i]!]}, ${columns.split[i]}): loss ${fmt(loss?.[i])}, ‖K‖_F ${fmt(kNorm?.[i])}${columns.correct[i] === 0 ? ', misclassified' : ''}`
      : '';
  return (
    <>
      <div className="panel">
        <h2>Loss against ‖K‖_F</h2>
        <Problem problem={problem} testId="scatter-problem" />
        {!columns && !problem && <p className="muted">Loading every sample's terms…</p>}
        {columns && kNorm && loss && colour && (
          <>
            <p className="muted">
              <span data-testid="scatter-samples">{columns.n}</span> samples
              {missingKNorm > 0 && (
                <span className="pending">
                  {' '}
                  · ‖K‖_F pending for {missingKNorm} (not drawn)
                </span>
              )}
              {missingLoss > 0 && (
                <span className="pending">
                  {' '}
                  · loss pending for {missingLoss} (not drawn)
                </span>
              )}
              . Click a point to select it.
            </p>
            <Scatter
              x={kNorm}
              y={loss}
              colour={colour}
              correct={columns.correct}
              xLabel="‖K‖_F"
              yLabel="loss"
              label="Loss against ‖K‖_F, one point per sample, coloured by class; crosses are misclassified"
              height={360}
              describe={describe}
              selected={selected}
              onSelect={setSelected}
              testId="loss-knorm-scatter"
            />
            <SelectedSample columns={columns} i={selected} checkpointId={id} classNames={dataset.classNames} />
          </>
        )}
      </div>
      <div className="panel">
        <h2>Embedding of the data set (UMAP of the series)</h2>
        {columns ? <EmbeddingMap checkpointId={id} subset={subset} columns={columns} dataset={dataset} /> : <p className="muted">Waiting for every sample's terms (above).</p>}
      </div>
    </>
  );
}

function SelectedSample({ columns, i, checkpointId, classNames }: { columns: SampleColumns; i: number | null; checkpointId: string; classNames: string[] }) {
  if (i == null) return null;
  return (
    <p data-testid="selected-sample">
      Selected: <Link href={`/samples/${columns.sampleIds[i]}?checkpoint=${checkpointId}`}>sample {columns.index[i]}</Link> ({classNames[columns.label[i]!]},{' '}
      {columns.split[i]}) · loss {fmt(columns.values.loss?.[i])} · ‖K‖_F {fmt(columns.values.kNorm?.[i])}
    </p>
  );
}

/** The most series the map embeds: above it, a seeded subsample (UMAP in a browser worker takes some seconds per thousand). */
export const EMBED_CAP = 2000;
const EMBED_SEED = 42;

function EmbeddingMap({ checkpointId, subset, columns, dataset }: { checkpointId: string; subset: string; columns: SampleColumns; dataset: DatasetInfo }) {
  const [colourBy, setColourBy] = useState<'class' | 'correct' | TermField>('class');
  // A term's column is read when first picked (the scatter's two come with every sample's ids).
  const colourTerm = colourBy === 'class' || colourBy === 'correct' ? null : colourBy;
  const termColumn = useTermColumn(checkpointId, subset, colourTerm, columns);
  const [scheme, setScheme] = useState<'viridis' | 'cividis'>('viridis');
  // Positions (in the columns) of the embedded samples: all of them, or a seeded subsample. Keyed by
  // the ids' text, so new columns of the same samples (another subset) neither refetch nor re-embed.
  const picked = useMemo(() => seededSubsample(columns.n, EMBED_CAP, EMBED_SEED), [columns.n]);
  const idsKey = picked.map((p) => columns.sampleIds[p]).join(',');
  const ids = useMemo(() => (idsKey ? idsKey.split(',') : []), [idsKey]);
  const { series, problem } = useSeries(checkpointId, ids);
  const [xy, setXy] = useState<Float32Array | null>(null);
  const [progress, setProgress] = useState<string>('');
  const [failure, setFailure] = useState<string | null>(null);

  useEffect(() => {
    if (!series) return;
    const d = dataset.length * dataset.channels;
    const data = new Float32Array(ids.length * d);
    ids.forEach((sampleId, k) => data.set(series.get(sampleId) ?? [], k * d));
    setXy(null);
    const job = embedSeries(data, ids.length, d, { seed: EMBED_SEED, onProgress: (done, total) => setProgress(`${Math.round((100 * done) / total)}%`) });
    job.result.then(setXy, (e: unknown) => setFailure(e instanceof Error ? e.message : String(e)));
    return job.cancel;
  }, [series, ids, dataset.length, dataset.channels]);

  const xs = useMemo(() => (xy ? Float32Array.from({ length: picked.length }, (_, k) => xy[2 * k]!) : null), [xy, picked.length]);
  const ys = useMemo(() => (xy ? Float32Array.from({ length: picked.length }, (_, k) => xy[2 * k + 1]!) : null), [xy, picked.length]);
  const colour = useMemo<ScatterColour>(() => {
    if (colourBy === 'class') return { kind: 'class', labels: Int32Array.from(picked, (p) => columns.label[p]!), names: dataset.classNames };
    if (colourBy === 'correct') return { kind: 'class', labels: Int32Array.from(picked, (p) => (columns.correct[p] === 0 ? 1 : 0)), names: ['correct', 'incorrect'] };
    const all = termColumn.values;
    // Not read yet, or not computed: no value (drawn as such), never 0.
    const values = Array.from(picked, (p) => {
      const v = all ? all[p]! : NaN;
      return Number.isNaN(v) ? null : v;
    });
    return { kind: 'continuous', values, label: TERMS.find((t) => t.field === colourBy)!.label, scheme };
  }, [colourBy, scheme, picked, columns, dataset.classNames, termColumn.values]);

  return (
    <div className="embedding" data-testid="embedding">
      <div className="toolbar">
        <label>
          Colour by{' '}
          <select value={colourBy} onChange={(e) => setColourBy(e.target.value as typeof colourBy)} data-testid="embedding-colour">
            <option value="class">class</option>
            <option value="correct">correct / incorrect</option>
            {TERMS.filter((t) => t.field !== 'kCross').map((t) => (
              <option key={t.field} value={t.field}>
                {t.label}
              </option>
            ))}
          </select>
        </label>
        {colourBy !== 'class' && colourBy !== 'correct' && (
          <label>
            Scale{' '}
            <select value={scheme} onChange={(e) => setScheme(e.target.value as typeof scheme)}>
              <option value="viridis">viridis</option>
              <option value="cividis">cividis</option>
            </select>
          </label>
        )}
      </div>
      <p className="muted" data-testid="embedding-note">
        {picked.length < columns.n
          ? `A seeded subsample of ${picked.length} of the ${columns.n} samples is embedded (seed ${EMBED_SEED}): UMAP runs in this browser, and past ${EMBED_CAP} series it would take minutes.`
          : `All ${columns.n} samples, z-normalised series, UMAP (seed ${EMBED_SEED}) computed in this browser.`}
      </p>
      {colourTerm && termColumn.missing > 0 && (
        <p className="pending" data-testid="embedding-colour-pending">
          {TERMS.find((t) => t.field === colourTerm)!.label} pending for {termColumn.missing} of {columns.n} samples (drawn as no value).
        </p>
      )}
      {failure && <p className="notice">The embedding failed: {failure}</p>}
      <Problem problem={problem} testId="embedding-problem" />
      {!xy && !failure && !problem && <p className="muted">{series ? `Embedding… ${progress}` : 'Loading the series…'}</p>}
      {xs && ys && (
        <Scatter
          x={xs}
          y={ys}
          colour={colour}
          xLabel="UMAP 1"
          yLabel="UMAP 2"
          label="UMAP map of the data set's series"
          height={360}
          describe={(k) => {
            const p = picked[k]!;
            const head = `sample ${columns.index[p]} (${dataset.classNames[columns.label[p]!]}${columns.correct[p] === 0 ? ', misclassified' : ''})`;
            return colourBy === 'class' || colourBy === 'correct' ? head : `${head}: ${TERMS.find((t) => t.field === colourBy)!.label} ${fmt(termColumn.values?.[p])}`;
          }}
          testId="embedding-map"
        />
      )}
    </div>
  );
}

/** The series of the given samples, by id, fetched in pages of the ranked query filtered to them. */
function useSeries(checkpointId: string, ids: string[]): { series: Map<string, number[]> | null; problem: ReturnType<typeof termsProblem> } {
  const CHUNK = 500;
  const chunks = useMemo(() => Array.from({ length: Math.ceil(ids.length / CHUNK) }, (_, c) => ids.slice(c * CHUNK, (c + 1) * CHUNK)), [ids]);
  const [progress, setProgress] = useState<{ chunks: string[][]; next: number; got: Map<string, number[]> }>({ chunks, next: 0, got: new Map() });
  // New ids start over (state reset during render, as React advises for derived state).
  if (progress.chunks !== chunks) setProgress({ chunks, next: 0, got: new Map() });
  const current = progress.chunks === chunks ? chunks[progress.next] : undefined;
  const [{ data, error, fetching }, refetch] = useQuery({ query: SeriesQuery, variables: { id: checkpointId, first: CHUNK, ids: current ?? [] }, pause: !current });
  const problem = useTermsProblem(error, fetching);
  usePoll(!!problem?.pending, () => refetch({ requestPolicy: 'network-only' }), problem?.jobId ? 3000 : 15000);
  const nodes = data?.checkpoint?.rankedSamples.nodes;
  useEffect(() => {
    if (!nodes || !current) return;
    // Only the answer to the chunk asked for (a cached answer to an earlier one may still be shown).
    if (!nodes.every((n) => current.includes(String(n.sampleId)))) return;
    setProgress((p) => {
      if (p.chunks !== chunks || p.chunks[p.next] !== current) return p;
      const got = new Map(p.got);
      for (const n of nodes) got.set(String(n.sampleId), n.sample.series);
      return { chunks, next: p.next + 1, got };
    });
  }, [nodes, current, chunks]);
  const done = progress.chunks === chunks && progress.next >= chunks.length && chunks.length > 0;
  return { series: done ? progress.got : null, problem };
}

const PAGE_SIZES = [20, 50, 100];

/**
 * The ranked table: any term, either direction, filtered by class, split, correctness and a range of
 * the ranked term, paged by the API's keyset cursors (Next follows endCursor; Previous returns to a
 * cursor already seen). Each row links to its sample and draws its series.
 */
export function RankedTable({
  checkpointId,
  subset,
  classNames,
  splits,
  channels,
  onPick,
  pickLabel = 'Pick',
  initialFirst = 20,
  testId = 'ranked',
}: {
  checkpointId: string;
  subset: string;
  classNames: string[];
  splits: string[];
  channels: number;
  onPick?: (sampleId: string) => void;
  pickLabel?: string;
  initialFirst?: number;
  testId?: string;
}) {
  const [term, setTerm] = useState<ScalarTerm>('K_NORM');
  const [direction, setDirection] = useState<OrderDirection>('DESC');
  const [label, setLabel] = useState<string>('');
  const [split, setSplit] = useState<string>('');
  const [correct, setCorrect] = useState<string>('');
  const [min, setMin] = useState('');
  const [max, setMax] = useState('');
  const [targetSplit, setTargetSplit] = useState(splits[0] ?? 'train');
  const [first, setFirst] = useState(initialFirst);
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  const after = cursors[cursors.length - 1] ?? null;

  const filter = useMemo<SampleTermFilter | null>(() => {
    const f: SampleTermFilter = {};
    if (label !== '') f.labels = [Number(label)];
    if (split !== '') f.splits = [split];
    if (correct !== '') f.correct = correct === 'true';
    const lo = min.trim() === '' ? null : Number(min);
    const hi = max.trim() === '' ? null : Number(max);
    if ((lo != null && Number.isFinite(lo)) || (hi != null && Number.isFinite(hi))) f.terms = [{ term, ...(lo != null && Number.isFinite(lo) ? { min: lo } : {}), ...(hi != null && Number.isFinite(hi) ? { max: hi } : {}) }];
    return Object.keys(f).length ? f : null;
  }, [label, split, correct, min, max, term]);
  // A new order or filter starts again from the first page.
  useEffect(() => setCursors([null]), [term, direction, filter, subset, first, targetSplit]);

  const needsTarget = term === 'K_CROSS';
  const [{ data, error, fetching }, refetch] = useQuery({
    query: RankedQuery,
    variables: { id: checkpointId, first, after, filter, orderBy: { term, direction }, subset, target: needsTarget ? { split: targetSplit } : null },
  });
  const problem = useTermsProblem(error, fetching);
  usePoll(!!problem?.pending, () => refetch({ requestPolicy: 'network-only' }), problem?.jobId ? 3000 : 15000);
  const connection = data?.checkpoint?.rankedSamples;
  const rows = connection?.nodes ?? [];
  const termLabel = TERMS.find((t) => t.term === term)!.label;
  const shown = TERMS.filter((t) => t.field !== 'kCross' || needsTarget);

  return (
    <div data-testid={testId}>
      <form className="toolbar" onSubmit={(e) => e.preventDefault()} aria-label="Ranking and filters">
        <label>
          Rank by{' '}
          <select value={term} onChange={(e) => setTerm(e.target.value as ScalarTerm)} data-testid={`${testId}-term`}>
            {TERMS.map((t) => (
              <option key={t.term} value={t.term}>
                {t.label}
              </option>
            ))}
          </select>
        </label>
        <label>
          Order{' '}
          <select value={direction} onChange={(e) => setDirection(e.target.value as OrderDirection)} data-testid={`${testId}-direction`}>
            <option value="DESC">largest first</option>
            <option value="ASC">smallest first</option>
          </select>
        </label>
        {needsTarget && (
          <label>
            kCross against split{' '}
            <select value={targetSplit} onChange={(e) => setTargetSplit(e.target.value)}>
              {splits.map((s) => (
                <option key={s}>{s}</option>
              ))}
            </select>
          </label>
        )}
        <label>
          Class{' '}
          <select value={label} onChange={(e) => setLabel(e.target.value)} data-testid={`${testId}-class`}>
            <option value="">any</option>
            {classNames.map((c, i) => (
              <option key={i} value={i}>
                {c}
              </option>
            ))}
          </select>
        </label>
        <label>
          Split{' '}
          <select value={split} onChange={(e) => setSplit(e.target.value)} data-testid={`${testId}-split`}>
            <option value="">any</option>
            {splits.map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </label>
        <label>
          Prediction{' '}
          <select value={correct} onChange={(e) => setCorrect(e.target.value)} data-testid={`${testId}-correct`}>
            <option value="">any</option>
            <option value="true">correct</option>
            <option value="false">incorrect</option>
          </select>
        </label>
        <label>
          {termLabel} from <input size={7} inputMode="decimal" value={min} onChange={(e) => setMin(e.target.value)} aria-label={`${termLabel} at least`} data-testid={`${testId}-min`} />
        </label>
        <label>
          to <input size={7} inputMode="decimal" value={max} onChange={(e) => setMax(e.target.value)} aria-label={`${termLabel} at most`} data-testid={`${testId}-max`} />
        </label>
        <label>
          Rows{' '}
          <select value={first} onChange={(e) => setFirst(Number(e.target.value))}>
            {PAGE_SIZES.map((s) => (
              <option key={s}>{s}</option>
            ))}
          </select>
        </label>
      </form>
      <Problem problem={problem} testId={`${testId}-problem`} />
      <div className="pager">
        <button type="button" disabled={cursors.length <= 1} onClick={() => setCursors((c) => c.slice(0, -1))}>
          ← Previous
        </button>
        <button type="button" disabled={!connection?.pageInfo.hasNextPage} onClick={() => setCursors((c) => [...c, connection!.pageInfo.endCursor ?? null])} data-testid={`${testId}-next`}>
          Next →
        </button>
        <span className="muted">
          page {cursors.length}
          {connection && (
            <>
              {' '}
              · rows {(cursors.length - 1) * first + 1}–{(cursors.length - 1) * first + rows.length} of <span data-testid={`${testId}-total`}>{connection.totalCount}</span>
            </>
          )}
          {fetching && ' · loading…'}
        </span>
      </div>
      <table className="data" data-testid={`${testId}-table`} data-ready={connection && !fetching ? 'true' : 'false'}>
        <thead>
          <tr>
            <th scope="col" className="num">
              #
            </th>
            <th scope="col">sample</th>
            <th scope="col">class</th>
            <th scope="col">split</th>
            <th scope="col">series</th>
            <th scope="col">correct</th>
            {shown.map((t) => (
              <th scope="col" className="num" key={t.field} aria-sort={t.term === term ? (direction === 'DESC' ? 'descending' : 'ascending') : undefined}>
                {t.label}
              </th>
            ))}
            {onPick && <th scope="col">firstOrder</th>}
          </tr>
        </thead>
        <tbody>
          {rows.map((r, i) => (
            <tr key={r.sampleId} data-testid={`${testId}-row`} data-sample-id={r.sampleId} data-score={r.score}>
              <td className="num">{(cursors.length - 1) * first + i + 1}</td>
              <td>
                <Link href={`/samples/${r.sampleId}?checkpoint=${checkpointId}`}>#{r.index}</Link>
              </td>
              <td>{r.className}</td>
              <td>{r.split}</td>
              <td>
                <Sparkline series={r.sample.series} channels={channels} label={`series of sample ${r.index}`} />
              </td>
              <td className={r.correct == null ? 'pending' : undefined}>{r.correct == null ? 'pending' : r.correct ? 'yes' : 'no'}</td>
              {shown.map((t) => (
                <Value key={t.field} v={r[t.field]} testId={`${testId}-${t.field}`} />
              ))}
              {onPick && (
                <td>
                  <button type="button" onClick={() => onPick(String(r.sampleId))} data-testid={`${testId}-pick`}>
                    {pickLabel}
                  </button>
                </td>
              )}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
