import { useEffect, useMemo, useState, type FormEvent } from 'react';
import { useMutation, useQuery } from 'urql';
import { useLocation, useSearch } from 'wouter';
import { ClassCounts } from '../components/selection-counts';
import { initialDraft, SelectionForm, toStrategy, type CheckpointChoice, type StrategyDraft } from '../components/selection-form';
import { SavedSelections } from '../components/selection-list';
import { graphql } from '../gql';
import type { SelectionStrategyInput } from '../gql/graphql';
import { useCanWrite } from '../session';
import '../components/selection-styles.css';

/**
 * The selection builder (`#/selections?run=ID&checkpoint=ID`): a strategy over a run's checkpoints,
 * previewed live with `previewSelection` (how many samples, of which classes, from how large a pool)
 * as the form changes, saved with `createSelection` (not for a READER: the form to save is not
 * shown), and the run's saved selections with their provenance and CSV/JSONL export links.
 */

const RunsQuery = graphql(`
  query SelectionRuns {
    runs(first: 100) {
      nodes {
        id
        name
        dataset {
          id
          name
        }
      }
    }
  }
`);

const CheckpointRunQuery = graphql(`
  query SelectionCheckpointRun($id: ID!) {
    checkpoint(id: $id) {
      id
      run {
        id
      }
    }
  }
`);

const RunQuery = graphql(`
  query SelectionRun($id: ID!) {
    run(id: $id) {
      id
      name
      dataset {
        id
        name
        classNames
        splits {
          split
          count
        }
        selections(first: 100) {
          nodes {
            id
            name
          }
        }
      }
      model {
        id
        parameterSubsets {
          name
        }
      }
      checkpoints(first: 500) {
        nodes {
          id
          step
          learningRate
          metrics(first: 1) {
            totalCount
          }
        }
      }
    }
  }
`);

const PreviewQuery = graphql(`
  query PreviewSelection($strategy: SelectionStrategyInput!) {
    previewSelection(strategy: $strategy) {
      count
      poolSize
      minScore
      maxScore
      classCounts {
        label
        className
        count
      }
    }
  }
`);

const CreateSelectionMutation = graphql(`
  mutation CreateSelection($input: CreateSelectionInput!) {
    createSelection(input: $input) {
      id
      name
      sampleCount
      classCounts {
        label
        className
        count
      }
    }
  }
`);

/** The value after it has stopped changing for `ms` (so the preview is not asked on every keystroke). */
function useDebounced<T>(value: T, ms: number): T {
  const [settled, setSettled] = useState(value);
  useEffect(() => {
    const timer = setTimeout(() => setSettled(value), ms);
    return () => clearTimeout(timer);
  }, [value, ms]);
  return settled;
}

const fmt = (x: number | null | undefined) => (x == null ? '—' : Math.abs(x) >= 1000 || (x !== 0 && Math.abs(x) < 1e-3) ? x.toExponential(3) : Number(x.toPrecision(5)).toString());

function Preview({ strategy, problem }: { strategy: SelectionStrategyInput | null; problem: string | null }) {
  const [{ data, error, fetching, operation }] = useQuery({ query: PreviewQuery, variables: { strategy: strategy! }, pause: !strategy });
  const current = !!strategy && !fetching && !!data && JSON.stringify(operation?.variables?.strategy) === JSON.stringify(strategy);
  const preview = data?.previewSelection;
  const pendingJob = error?.graphQLErrors.find((e) => e.extensions?.code === 'TERMS_PENDING')?.extensions?.jobId as string | undefined;
  return (
    <section className="panel" aria-labelledby="preview-heading" aria-live="polite" data-testid="preview" data-ready={current && !error ? 'true' : 'false'}>
      <h2 id="preview-heading">Preview</h2>
      {problem && <p className="notice">{problem}</p>}
      {error &&
        (pendingJob ? (
          <p className="pending" data-testid="preview-pending">
            Terms are being computed (<a href="#/jobs">job {pendingJob}</a>); the preview follows once they are stored.
          </p>
        ) : (
          <p className="notice" data-testid="preview-error">
            {error.graphQLErrors[0]?.message ?? error.message}
          </p>
        ))}
      {preview && !problem && (
        <div className={fetching ? 'stale' : undefined}>
          <dl className="summary">
            <div>
              <dt>Samples taken</dt>
              <dd data-testid="preview-count">{preview.count}</dd>
            </div>
            <div>
              <dt>Candidates</dt>
              <dd data-testid="preview-pool">{preview.poolSize}</dd>
            </div>
            <div>
              <dt>Scores taken</dt>
              <dd data-testid="preview-scores">
                {fmt(preview.minScore)} … {fmt(preview.maxScore)}
              </dd>
            </div>
          </dl>
          <ClassCounts counts={preview.classCounts} testid="preview-class-counts" />
        </div>
      )}
    </section>
  );
}

function SaveForm({ strategy, onSaved }: { strategy: SelectionStrategyInput | null; onSaved(): void }) {
  const [name, setName] = useState('');
  const [description, setDescription] = useState('');
  const [result, save] = useMutation(CreateSelectionMutation);
  const [saved, setSaved] = useState<{ id: string; name: string; sampleCount: number } | null>(null);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (!strategy || !name.trim()) return;
    const r = await save({ input: { name: name.trim(), description: description.trim() || null, strategy } });
    if (r.data) {
      setSaved(r.data.createSelection);
      setName('');
      setDescription('');
      onSaved();
    }
  };
  return (
    <section className="panel" aria-labelledby="save-heading">
      <h2 id="save-heading">Save</h2>
      <form className="toolbar" onSubmit={submit} aria-label="Save the selection" data-testid="save-form">
        <label>
          Name <input value={name} onChange={(e) => setName(e.target.value)} required maxLength={200} data-testid="save-name" />
        </label>
        <label>
          Description <input value={description} onChange={(e) => setDescription(e.target.value)} size={40} data-testid="save-description" />
        </label>
        <button type="submit" disabled={!strategy || !name.trim() || result.fetching} data-testid="save">
          {result.fetching ? 'Saving…' : 'Save selection'}
        </button>
      </form>
      {result.error && (
        <p className="notice" data-testid="save-error">
          {result.error.graphQLErrors[0]?.message ?? result.error.message}
        </p>
      )}
      {saved && !result.error && (
        <p data-testid="saved" data-id={saved.id} data-count={saved.sampleCount}>
          Saved “{saved.name}”: {saved.sampleCount} samples.
        </p>
      )}
    </section>
  );
}

function Builder({ runId, checkpointId }: { runId: string; checkpointId: string | null }) {
  const canWrite = useCanWrite();
  const [{ data, error }] = useQuery({ query: RunQuery, variables: { id: runId } });
  const run = data?.run;
  const checkpoints: CheckpointChoice[] = useMemo(
    () =>
      (run?.checkpoints.nodes ?? [])
        .map((c) => ({ id: c.id, step: c.step, learningRate: c.learningRate ?? null, rows: c.metrics.totalCount }))
        .sort((a, b) => a.step - b.step),
    [run],
  );
  const [draft, setDraft] = useState<StrategyDraft | null>(null);
  const [refresh, setRefresh] = useState(0);
  // The first draft: the checkpoint asked for, or the last of those with the most rows (the run's last analysis point).
  useEffect(() => {
    if (!run || checkpoints.length === 0) return;
    const most = Math.max(...checkpoints.map((c) => c.rows));
    const chosen = checkpointId && checkpoints.some((c) => c.id === checkpointId) ? checkpointId : checkpoints.filter((c) => c.rows === most).at(-1)!.id;
    const splits = run.dataset.splits.map((s) => s.split);
    // Only once: the run is read again after a save (urql refetches what holds a Selection), and the form stays as it is.
    setDraft((d) => d ?? { ...initialDraft([chosen]), targetSplit: splits.includes('train') ? 'train' : (splits[0] ?? '') });
  }, [run, checkpoints, checkpointId]);
  const built = draft ? toStrategy(draft) : null;
  const strategyNow = built && 'strategy' in built ? built.strategy : null;
  const strategy = useDebounced(strategyNow, 300);
  const settled = JSON.stringify(strategy) === JSON.stringify(strategyNow);

  if (error) return <p className="notice">{error.message}</p>;
  if (!run) return <p className="muted">Loading the run…</p>;
  if (checkpoints.length === 0) return <p>This run has no checkpoints yet: nothing to select from.</p>;
  return (
    <>
      <p>
        Run <a href={`#/runs/${run.id}`}>{run.name}</a> on {run.dataset.name} ({run.dataset.splits.map((s) => `${s.count} ${s.split}`).join(', ')}).
      </p>
      <div className="grid">
        <section className="panel" aria-labelledby="strategy-heading">
          <h2 id="strategy-heading">Strategy</h2>
          {draft && (
            <SelectionForm
              draft={draft}
              onChange={setDraft}
              checkpoints={checkpoints}
              splits={run.dataset.splits.map((s) => s.split)}
              classNames={run.dataset.classNames}
              subsets={['all', ...run.model.parameterSubsets.map((s) => s.name).filter((n) => n !== 'all')]}
              targetSelections={run.dataset.selections.nodes}
            />
          )}
        </section>
        <div>
          <Preview strategy={settled ? strategy : null} problem={built && 'problem' in built ? built.problem : null} />
          {canWrite ? (
            <SaveForm strategy={strategyNow} onSaved={() => setRefresh((n) => n + 1)} />
          ) : (
            <p className="muted" data-testid="read-only">
              Saving a selection needs a writer&apos;s key; this key can preview and export.
            </p>
          )}
        </div>
      </div>
      <SavedSelections runId={run.id} refresh={refresh} />
    </>
  );
}

export function SelectionsPage() {
  const params = new URLSearchParams(useSearch());
  const [, setLocation] = useLocation();
  const checkpointId = params.get('checkpoint');
  const [{ data: runs }] = useQuery({ query: RunsQuery });
  const [{ data: fromCheckpoint }] = useQuery({ query: CheckpointRunQuery, variables: { id: checkpointId ?? '' }, pause: !checkpointId || !!params.get('run') });
  // The run asked for, the checkpoint's run, or the newest run.
  const runId = params.get('run') ?? fromCheckpoint?.checkpoint?.run.id ?? (checkpointId ? null : (runs?.runs.nodes[0]?.id ?? null));
  return (
    <section>
      <h1>Selections</h1>
      <div className="toolbar">
        <label>
          Run{' '}
          <select value={runId ?? ''} onChange={(e) => setLocation(`/selections?run=${e.target.value}`)} data-testid="selection-run">
            {!runId && <option value="">—</option>}
            {(runs?.runs.nodes ?? []).map((r) => (
              <option key={r.id} value={r.id}>
                {r.name} ({r.dataset.name})
              </option>
            ))}
          </select>
        </label>
      </div>
      {runId ? <Builder key={runId} runId={runId} checkpointId={checkpointId} /> : runs && runs.runs.nodes.length === 0 ? <p>No runs yet: a selection is made from a run&apos;s terms.</p> : null}
      {!runId && <SavedSelections runId={null} refresh={0} />}
    </section>
  );
}
