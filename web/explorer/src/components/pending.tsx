import { useEffect } from 'react';
import { useQuery, type CombinedError } from 'urql';
import { graphql } from '../gql';
import { isFinished, JobProgressBar, useLiveJob } from './jobs';

/**
 * Terms the server is still computing: a query that reads them fails with TERMS_PENDING (naming the
 * job computing them, when the caller may compute) or TERMS_MISSING. Such values are shown as
 * pending, with the job's progress, and asked for again when it finishes: never drawn as zeros.
 */

export interface TermsState {
  kind: 'pending' | 'missing';
  jobId: string | null;
  message: string;
}

/** The TERMS_PENDING / TERMS_MISSING of a failed query, if that is why it failed. */
export function termsState(error: CombinedError | undefined): TermsState | null {
  for (const e of error?.graphQLErrors ?? []) {
    const code = e.extensions?.code;
    if (code === 'TERMS_PENDING' || code === 'TERMS_MISSING') {
      const jobId = e.extensions?.jobId;
      return { kind: code === 'TERMS_PENDING' ? 'pending' : 'missing', jobId: jobId === undefined || jobId === null ? null : String(jobId), message: e.message };
    }
  }
  return null;
}

const PendingJobQuery = graphql(`
  query PendingJob($id: ID!) {
    job(id: $id) {
      ...JobFields
    }
  }
`);

function FollowJob({ jobId, onDone }: { jobId: string; onDone(): void }) {
  const [{ data }] = useQuery({ query: PendingJobQuery, variables: { id: jobId } });
  const job = useLiveJob(data?.job);
  const done = job ? isFinished(job.status) : false;
  useEffect(() => {
    if (done) onDone();
  }, [done, onDone]);
  if (!job) return null;
  return (
    <>
      {' '}
      job {job.id} <JobProgressBar job={job} />
    </>
  );
}

/** "pending" (with the job computing the terms, followed live) or "missing", in place of values. */
export function TermsPending({ state, what, onDone, testId }: { state: TermsState; what: string; onDone(): void; testId?: string }) {
  return (
    <p className="pending" role="status" data-testid={testId ?? 'terms-pending'} data-kind={state.kind} data-job-id={state.jobId ?? ''}>
      {state.kind === 'pending' ? `${what}: pending, still being computed` : `${what}: not computed`}
      {state.jobId ? <FollowJob jobId={state.jobId} onDone={onDone} /> : state.kind === 'pending' ? ' (ask a writer to compute them)' : ` (${state.message})`}
    </p>
  );
}
