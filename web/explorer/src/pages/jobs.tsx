import { useEffect, useState, type FormEvent } from 'react';
import { useMutation, useQuery } from 'urql';
import { Link, useSearch } from 'wouter';
import { isFinished, JobList, JobProgressBar, useLiveJob } from '../components/jobs';
import { termsState } from '../components/pending';
import { graphql } from '../gql';
import type { JobFieldsFragment, ScalarTerm, Term } from '../gql/graphql';
import { useCanWrite, useSession } from '../session';

/**
 * Jobs: computeTerms from a form (checkpoint, terms, parameter subset, splits), the queued job followed
 * over the `jobProgress` subscription, and its terms shown as pending until it has finished, then
 * read back (termStats at the checkpoint). A READER sees the queue and no form.
 * `#/jobs?checkpoint=<id>` opens the form on that checkpoint.
 */

const TERMS: Term[] = ['LOSS', 'CORRECT', 'LOGITS', 'PROBS', 'A_NORM', 'H_TRACE', 'H_MIN_EIG', 'G_NORM', 'K_NORM', 'K_TRACE'];
/** The terms with statistics (ScalarTerm): the others (correct, logits, probs) are shown as stored. */
const SCALAR: Partial<Record<Term, ScalarTerm>> = {
  LOSS: 'LOSS',
  A_NORM: 'A_NORM',
  H_TRACE: 'H_TRACE',
  H_MIN_EIG: 'H_MIN_EIG',
  G_NORM: 'G_NORM',
  K_NORM: 'K_NORM',
  K_TRACE: 'K_TRACE',
};

const JobsRunsQuery = graphql(`
  query JobsRuns {
    runs(first: 100) {
      nodes {
        id
        name
        dataset {
          name
        }
      }
    }
  }
`);

const JobsRunQuery = graphql(`
  query JobsRun($id: ID!) {
    run(id: $id) {
      id
      dataset {
        splits {
          split
          count
        }
      }
      model {
        parameterSubsets {
          name
          parameterCount
        }
      }
      checkpoints(first: 1000) {
        nodes {
          id
          step
        }
      }
    }
  }
`);

const JobsCheckpointQuery = graphql(`
  query JobsCheckpoint($id: ID!) {
    checkpoint(id: $id) {
      id
      run {
        id
      }
    }
  }
`);

const ComputeTermsMutation = graphql(`
  mutation ComputeTerms($input: ComputeTermsInput!) {
    computeTerms(input: $input) {
      ...JobFields
    }
  }
`);

const CancelJobMutation = graphql(`
  mutation CancelJob($id: ID!) {
    cancelJob(id: $id) {
      ...JobFields
    }
  }
`);

const TermResultQuery = graphql(`
  query JobTermResult($checkpointId: ID!, $term: ScalarTerm!, $subset: String, $filter: SampleTermFilter) {
    checkpoint(id: $checkpointId) {
      id
      termStats(term: $term, subset: $subset, filter: $filter) {
        count
        mean
        min
        max
      }
    }
  }
`);

const fmt = (v: number | null | undefined) => (v === null || v === undefined ? '—' : String(Number(v.toPrecision(4))));

/** One term of a job: pending while the job works, then its statistics as the API reads them back. */
function TermResult({ job, term, splits }: { job: JobFieldsFragment; term: Term; splits: string[] }) {
  const done = job.status === 'COMPLETED';
  const scalar = SCALAR[term];
  const [{ data, error }] = useQuery({
    query: TermResultQuery,
    variables: { checkpointId: job.checkpoint.id, term: scalar ?? 'LOSS', subset: job.subset, filter: splits.length ? { splits } : null },
    pause: !done || !scalar,
    requestPolicy: 'network-only',
  });
  const stats = data?.checkpoint?.termStats;
  const state = termsState(error);
  let cell;
  if (!done) cell = <span className="pending">{isFinished(job.status) ? `not computed (job ${job.status.toLowerCase()})` : 'pending'}</span>;
  else if (!scalar) cell = <span>stored</span>;
  else if (state) cell = <span className="pending">{state.kind}</span>;
  else if (error) cell = <span className="notice">{error.message}</span>;
  else if (!stats) cell = <span className="muted">…</span>;
  else
    cell = (
      <span>
        mean <span data-testid={`term-mean-${term}`}>{fmt(stats.mean)}</span> over <span data-testid={`term-count-${term}`}>{stats.count}</span> samples (min {fmt(stats.min)}, max{' '}
        {fmt(stats.max)})
      </span>
    );
  return (
    <tr data-testid="job-term" data-term={term} data-state={!done ? 'pending' : stats ? 'done' : scalar ? 'loading' : 'stored'}>
      <td>{term.toLowerCase()}</td>
      <td>{cell}</td>
    </tr>
  );
}

function CurrentJob({ job: queued, splits }: { job: JobFieldsFragment; splits: string[] }) {
  const job = useLiveJob(queued)!;
  const canWrite = useCanWrite();
  const [, cancel] = useMutation(CancelJobMutation);
  return (
    <section className="panel" aria-labelledby="current-job-heading" data-testid="current-job" data-job-id={job.id} data-status={job.status}>
      <h2 id="current-job-heading">
        Job {job.id}{' '}
        <span className={`status ${job.status}`} data-testid="current-job-status">
          {job.status.toLowerCase()}
        </span>
      </h2>
      <p>
        <Link href={`/runs/${job.checkpoint.run.id}`}>{job.checkpoint.run.name}</Link> ·{' '}
        <Link href={`/checkpoints/${job.checkpoint.id}`}>checkpoint at step {job.checkpoint.step}</Link> · subset {job.subset}
      </p>
      <p>
        <JobProgressBar job={job} /> · chunks {job.progress.chunksDone} / {job.progress.chunksTotal} · computed {job.progress.samplesComputed} (the others had every term already)
        {canWrite && !isFinished(job.status) && (
          <>
            {' '}
            <button type="button" onClick={() => cancel({ id: job.id })}>
              Cancel job
            </button>
          </>
        )}
      </p>
      {job.error && <p className="notice">{job.error}</p>}
      <table className="data">
        <thead>
          <tr>
            <th>Term</th>
            <th>At this checkpoint{splits.length ? ` (${splits.join(', ')})` : ''}</th>
          </tr>
        </thead>
        <tbody>
          {job.terms.map((term) => (
            <TermResult key={term} job={job} term={term} splits={splits} />
          ))}
        </tbody>
      </table>
    </section>
  );
}

function ComputeForm({ onQueued }: { onQueued(job: JobFieldsFragment, splits: string[]): void }) {
  const search = new URLSearchParams(useSearch());
  const askedCheckpoint = search.get('checkpoint') ?? '';
  const [runId, setRunId] = useState('');
  const [checkpointId, setCheckpointId] = useState(askedCheckpoint);
  const [terms, setTerms] = useState<Set<Term>>(new Set(['K_NORM', 'K_TRACE']));
  const [subset, setSubset] = useState('all');
  const [splits, setSplits] = useState<Set<string>>(new Set());
  const [{ data: runs }] = useQuery({ query: JobsRunsQuery });
  const [{ data: asked }] = useQuery({ query: JobsCheckpointQuery, variables: { id: askedCheckpoint }, pause: !askedCheckpoint });
  const [{ data: run }] = useQuery({ query: JobsRunQuery, variables: { id: runId }, pause: !runId });
  const [result, computeTerms] = useMutation(ComputeTermsMutation);

  // The checkpoint in the URL names its run; otherwise the first run.
  useEffect(() => {
    if (runId) return;
    const fromUrl = asked?.checkpoint?.run.id;
    const first = runs?.runs.nodes[0]?.id;
    if (fromUrl) setRunId(fromUrl);
    else if (!askedCheckpoint && first) setRunId(first);
  }, [runId, asked, runs, askedCheckpoint]);
  const checkpoints = run?.run?.checkpoints.nodes ?? [];
  useEffect(() => {
    if (checkpoints.length && !checkpoints.some((c) => c.id === checkpointId)) setCheckpointId(checkpoints[checkpoints.length - 1]!.id);
  }, [checkpoints, checkpointId]);

  const toggle = <T,>(set: Set<T>, value: T, on: boolean) => {
    const next = new Set(set);
    if (on) next.add(value);
    else next.delete(value);
    return next;
  };

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const chosenSplits = [...splits];
    const answer = await computeTerms({
      input: { checkpointId, terms: [...terms], subset, ...(chosenSplits.length ? { splits: chosenSplits } : {}) },
    });
    if (answer.data?.computeTerms) onQueued(answer.data.computeTerms, chosenSplits);
  };

  return (
    <form className="panel compute-form" onSubmit={submit} aria-labelledby="compute-heading" data-testid="compute-form">
      <h2 id="compute-heading">Compute terms</h2>
      <div className="toolbar">
        <label>
          Run{' '}
          <select value={runId} onChange={(e) => (setRunId(e.target.value), setCheckpointId(''))} data-testid="compute-run">
            {!runId && <option value="">…</option>}
            {runs?.runs.nodes.map((r) => (
              <option key={r.id} value={r.id}>
                {r.name} ({r.dataset.name})
              </option>
            ))}
          </select>
        </label>
        <label>
          Checkpoint{' '}
          <select value={checkpointId} onChange={(e) => setCheckpointId(e.target.value)} data-testid="compute-checkpoint" required>
            {checkpoints.map((c) => (
              <option key={c.id} value={c.id}>
                step {c.step}
              </option>
            ))}
          </select>
        </label>
        <label>
          Parameter subset{' '}
          <select value={subset} onChange={(e) => setSubset(e.target.value)} data-testid="compute-subset">
            {(run?.run?.model.parameterSubsets ?? [{ name: 'all', parameterCount: 0 }]).map((s) => (
              <option key={s.name} value={s.name}>
                {s.name}
                {s.parameterCount ? ` (${s.parameterCount.toLocaleString()} parameters)` : ''}
              </option>
            ))}
          </select>
        </label>
      </div>
      <fieldset>
        <legend>Terms</legend>
        {TERMS.map((term) => (
          <label key={term} className="check">
            <input type="checkbox" checked={terms.has(term)} onChange={(e) => setTerms(toggle(terms, term, e.target.checked))} data-testid={`compute-term-${term}`} />{' '}
            {term.toLowerCase()}
          </label>
        ))}
      </fieldset>
      {run?.run && run.run.dataset.splits.length > 1 && (
        <fieldset>
          <legend>Splits (none ticked: every sample)</legend>
          {run.run.dataset.splits.map((s) => (
            <label key={s.split} className="check">
              <input type="checkbox" checked={splits.has(s.split)} onChange={(e) => setSplits(toggle(splits, s.split, e.target.checked))} data-testid={`compute-split-${s.split}`} />{' '}
              {s.split} ({s.count})
            </label>
          ))}
        </fieldset>
      )}
      <p>
        <button type="submit" disabled={!checkpointId || terms.size === 0 || result.fetching} data-testid="compute-submit">
          Queue the job
        </button>{' '}
        <span className="muted">One pass computes every per-sample term; the ones ticked are made present. Work already under way is joined, not repeated.</span>
      </p>
      {result.error && (
        <p className="notice" role="alert" data-testid="compute-error">
          {result.error.graphQLErrors[0]?.message ?? result.error.message}
        </p>
      )}
    </form>
  );
}

export function JobsPage() {
  const canWrite = useCanWrite();
  const { role } = useSession();
  const [current, setCurrent] = useState<{ job: JobFieldsFragment; splits: string[] } | null>(null);
  return (
    <>
      <h1>Jobs</h1>
      {canWrite ? (
        <ComputeForm onQueued={(job, splits) => setCurrent({ job, splits })} />
      ) : (
        role && (
          <p className="muted" data-testid="reader-note">
            Your key is a {role.toLowerCase()}'s: you can follow the queue, not start jobs.
          </p>
        )
      )}
      {current && <CurrentJob key={current.job.id} job={current.job} splits={current.splits} />}
      <section className="panel" aria-labelledby="queue-heading">
        <h2 id="queue-heading">Queue</h2>
        <JobList refreshMs={3000} />
      </section>
    </>
  );
}
