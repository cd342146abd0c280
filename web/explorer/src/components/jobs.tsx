import { useEffect } from 'react';
import { useQuery, useSubscription } from 'urql';
import { Link } from 'wouter';
import { graphql } from '../gql';
import type { JobFieldsFragment } from '../gql/graphql';
import { Pager, useCursorPages } from './pager';

/**
 * The compute job queue, live: the list is asked for again every few seconds (new jobs appear), and
 * each job still QUEUED or RUNNING follows its own `jobProgress` subscription (the schema's only job
 * subscription: one job at a time), so its progress moves as chunks commit.
 */

graphql(`
  fragment JobFields on Job {
    id
    status
    terms
    subset
    error
    attempts
    createdAt
    startedAt
    finishedAt
    progress {
      chunksDone
      chunksTotal
      samplesDone
      samplesTotal
      samplesComputed
      fraction
    }
    checkpoint {
      id
      step
      run {
        id
        name
      }
    }
  }
`);

const JobListQuery = graphql(`
  query JobList($first: Int!, $after: String, $status: JobStatus) {
    jobs(first: $first, after: $after, status: $status) {
      totalCount
      pageInfo {
        hasNextPage
        endCursor
      }
      nodes {
        ...JobFields
      }
    }
  }
`);

export const JobProgressSubscription = graphql(`
  subscription JobProgress($id: ID!) {
    jobProgress(id: $id) {
      ...JobFields
    }
  }
`);

export const isFinished = (status: string): boolean => status === 'COMPLETED' || status === 'FAILED' || status === 'CANCELLED';

/** A job as it is now: its `jobProgress` events while it runs, the given row once it has finished. */
export function useLiveJob(job: JobFieldsFragment | null | undefined): JobFieldsFragment | null {
  const [{ data }] = useSubscription({
    query: JobProgressSubscription,
    variables: { id: job?.id ?? '' },
    pause: !job || isFinished(job.status),
  });
  const live = data?.jobProgress;
  if (!job) return null;
  return live && live.id === job.id ? live : job;
}

export function JobProgressBar({ job }: { job: JobFieldsFragment }) {
  const { samplesDone, samplesTotal, fraction } = job.progress;
  return (
    <span className="job-progress">
      <progress
        max={1}
        value={fraction}
        aria-label={`Job ${job.id} progress`}
        data-testid={`job-progress-${job.id}`}
        data-samples-done={samplesDone}
        data-samples-total={samplesTotal}
      />{' '}
      <span data-testid={`job-samples-${job.id}`}>
        {samplesDone} / {samplesTotal}
      </span>
    </span>
  );
}

function JobRow({ job: given }: { job: JobFieldsFragment }) {
  const job = useLiveJob(given)!;
  return (
    <tr data-testid="job-row" data-job-id={job.id} data-status={job.status}>
      <td>{job.id}</td>
      <td>
        <span className={`status ${job.status}`} data-testid={`job-status-${job.id}`}>
          {job.status.toLowerCase()}
        </span>
        {job.error && <span className="notice"> {job.error}</span>}
      </td>
      <td>
        <Link href={`/runs/${job.checkpoint.run.id}`}>{job.checkpoint.run.name}</Link>
      </td>
      <td>
        <Link href={`/checkpoints/${job.checkpoint.id}`}>step {job.checkpoint.step}</Link>
      </td>
      <td>{job.terms.map((t) => t.toLowerCase()).join(', ')}</td>
      <td>{job.subset}</td>
      <td>
        <JobProgressBar job={job} />
      </td>
      <td>{new Date(job.createdAt).toLocaleString()}</td>
    </tr>
  );
}

const PAGE = 20;

export function JobList({ refreshMs = 5000 }: { refreshMs?: number }) {
  const pages = useCursorPages();
  const [{ data, error, fetching }, refetch] = useQuery({ query: JobListQuery, variables: { first: PAGE, after: pages.after } });
  useEffect(() => {
    const timer = setInterval(() => refetch({ requestPolicy: 'network-only' }), refreshMs);
    return () => clearInterval(timer);
  }, [refetch, refreshMs]);
  const jobs = data?.jobs.nodes ?? [];
  return (
    <div className="job-list">
      {error && <p className="notice">Could not list jobs: {error.message}</p>}
      {!data && fetching && <p className="muted">Loading jobs…</p>}
      {data && jobs.length === 0 && <p className="muted">No compute jobs yet.</p>}
      {jobs.length > 0 && (
        <table className="data" data-testid="job-table" data-rows={jobs.length}>
          <thead>
            <tr>
              <th>Job</th>
              <th>Status</th>
              <th>Run</th>
              <th>Checkpoint</th>
              <th>Terms</th>
              <th>Subset</th>
              <th>Progress</th>
              <th>Created</th>
            </tr>
          </thead>
          <tbody>
            {jobs.map((job) => (
              <JobRow key={job.id} job={job} />
            ))}
          </tbody>
        </table>
      )}
      <Pager label="jobs" pages={pages} pageInfo={data?.jobs.pageInfo} totalCount={data?.jobs.totalCount} shown={jobs.length} pageSize={PAGE} />
    </div>
  );
}
