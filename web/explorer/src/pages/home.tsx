import { useState } from 'react';
import { useQuery } from 'urql';
import { Link } from 'wouter';
import { JobList } from '../components/jobs';
import { Pager, useCursorPages } from '../components/pager';
import { graphql } from '../gql';
import type { RunStatus } from '../gql/graphql';

/**
 * Home: the data sets, models and runs on this server (Relay paging; a name search where the API
 * filters by name: datasets and models; runs by status, data set or model), and the job queue live.
 * A data set or model narrows the runs to its own.
 */

const PAGE = 10;

const DatasetsQuery = graphql(`
  query HomeDatasets($first: Int!, $after: String, $filter: DatasetFilter) {
    datasets(first: $first, after: $after, filter: $filter) {
      totalCount
      pageInfo {
        hasNextPage
        endCursor
      }
      nodes {
        id
        name
        length
        channels
        classNames
        sampleCount
        createdAt
      }
    }
  }
`);

const ModelsQuery = graphql(`
  query HomeModels($first: Int!, $after: String, $filter: ModelFilter) {
    models(first: $first, after: $after, filter: $filter) {
      totalCount
      pageInfo {
        hasNextPage
        endCursor
      }
      nodes {
        id
        name
        format
        architecture
        inputLength
        numClasses
        createdAt
      }
    }
  }
`);

const RunsQuery = graphql(`
  query HomeRuns($first: Int!, $after: String, $filter: RunFilter) {
    runs(first: $first, after: $after, filter: $filter) {
      totalCount
      pageInfo {
        hasNextPage
        endCursor
      }
      nodes {
        id
        name
        status
        checkpointCount
        createdAt
        dataset {
          id
          name
        }
        model {
          id
          name
        }
      }
    }
  }
`);

function SearchBox({ label, value, onChange }: { label: string; value: string; onChange(value: string): void }) {
  return (
    <label>
      Search {label} by name{' '}
      <input type="search" value={value} onChange={(e) => onChange(e.target.value)} data-testid={`${label}-search`} />
    </label>
  );
}

type Scope = { kind: 'dataset' | 'model'; id: string; name: string } | null;

function Datasets({ onPick }: { onPick(scope: Scope): void }) {
  const [search, setSearch] = useState('');
  const pages = useCursorPages();
  const [{ data, error }] = useQuery({
    query: DatasetsQuery,
    variables: { first: PAGE, after: pages.after, filter: search ? { nameContains: search } : null },
  });
  const rows = data?.datasets.nodes ?? [];
  return (
    <section className="panel" aria-labelledby="datasets-heading">
      <h2 id="datasets-heading">Data sets</h2>
      <div className="toolbar">
        <SearchBox label="datasets" value={search} onChange={(v) => (setSearch(v), pages.reset())} />
      </div>
      {error && <p className="notice">{error.message}</p>}
      <table className="data" data-testid="datasets-table" data-rows={rows.length}>
        <thead>
          <tr>
            <th>Name</th>
            <th className="num">Samples</th>
            <th className="num">Length</th>
            <th>Classes</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((d) => (
            <tr key={d.id} data-testid="dataset-row" data-id={d.id}>
              <td>
                <a href="#runs-heading" onClick={(e) => (e.preventDefault(), onPick({ kind: 'dataset', id: d.id, name: d.name }))}>
                  {d.name}
                </a>
              </td>
              <td className="num">{d.sampleCount}</td>
              <td className="num">
                {d.length}
                {d.channels > 1 ? ` × ${d.channels}` : ''}
              </td>
              <td>{d.classNames.join(', ')}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <Pager label="datasets" pages={pages} pageInfo={data?.datasets.pageInfo} totalCount={data?.datasets.totalCount} shown={rows.length} pageSize={PAGE} />
    </section>
  );
}

function Models({ onPick }: { onPick(scope: Scope): void }) {
  const [search, setSearch] = useState('');
  const pages = useCursorPages();
  const [{ data, error }] = useQuery({
    query: ModelsQuery,
    variables: { first: PAGE, after: pages.after, filter: search ? { nameContains: search } : null },
  });
  const rows = data?.models.nodes ?? [];
  return (
    <section className="panel" aria-labelledby="models-heading">
      <h2 id="models-heading">Models</h2>
      <div className="toolbar">
        <SearchBox label="models" value={search} onChange={(v) => (setSearch(v), pages.reset())} />
      </div>
      {error && <p className="notice">{error.message}</p>}
      <table className="data" data-testid="models-table" data-rows={rows.length}>
        <thead>
          <tr>
            <th>Name</th>
            <th>Architecture</th>
            <th className="num">Input</th>
            <th className="num">Classes</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((m) => (
            <tr key={m.id} data-testid="model-row" data-id={m.id}>
              <td>
                <a href="#runs-heading" onClick={(e) => (e.preventDefault(), onPick({ kind: 'model', id: m.id, name: m.name }))}>
                  {m.name}
                </a>
              </td>
              <td>{m.architecture ?? m.format.toLowerCase()}</td>
              <td className="num">{m.inputLength}</td>
              <td className="num">{m.numClasses}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <Pager label="models" pages={pages} pageInfo={data?.models.pageInfo} totalCount={data?.models.totalCount} shown={rows.length} pageSize={PAGE} />
    </section>
  );
}

const RUN_STATUSES: RunStatus[] = ['PENDING', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED'];

function Runs({ scope, onScope }: { scope: Scope; onScope(scope: Scope): void }) {
  const [status, setStatus] = useState<RunStatus | ''>('');
  const pages = useCursorPages();
  const filter = {
    ...(status ? { status } : {}),
    ...(scope?.kind === 'dataset' ? { datasetId: scope.id } : {}),
    ...(scope?.kind === 'model' ? { modelId: scope.id } : {}),
  };
  const [{ data, error }] = useQuery({ query: RunsQuery, variables: { first: PAGE, after: pages.after, filter } });
  const rows = data?.runs.nodes ?? [];
  return (
    <section className="panel" aria-labelledby="runs-heading">
      <h2 id="runs-heading">Runs</h2>
      <div className="toolbar">
        <label>
          Status{' '}
          <select value={status} onChange={(e) => (setStatus(e.target.value as RunStatus | ''), pages.reset())} data-testid="runs-status">
            <option value="">any</option>
            {RUN_STATUSES.map((s) => (
              <option key={s} value={s}>
                {s.toLowerCase()}
              </option>
            ))}
          </select>
        </label>
        {scope && (
          <span data-testid="runs-scope">
            of {scope.kind} <strong>{scope.name}</strong>{' '}
            <button type="button" onClick={() => (onScope(null), pages.reset())}>
              All runs
            </button>
          </span>
        )}
      </div>
      {error && <p className="notice">{error.message}</p>}
      <table className="data" data-testid="runs-table" data-rows={rows.length}>
        <thead>
          <tr>
            <th>Run</th>
            <th>Status</th>
            <th>Data set</th>
            <th>Model</th>
            <th className="num">Checkpoints</th>
            <th>Created</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={r.id} data-testid="run-row" data-id={r.id}>
              <td>
                <Link href={`/runs/${r.id}`}>{r.name}</Link>
              </td>
              <td>
                <span className={`status ${r.status}`}>{r.status.toLowerCase()}</span>
              </td>
              <td>{r.dataset.name}</td>
              <td>{r.model.name}</td>
              <td className="num">{r.checkpointCount}</td>
              <td>{new Date(r.createdAt).toLocaleString()}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <Pager label="runs" pages={pages} pageInfo={data?.runs.pageInfo} totalCount={data?.runs.totalCount} shown={rows.length} pageSize={PAGE} />
    </section>
  );
}

export function HomePage() {
  const [scope, setScope] = useState<Scope>(null);
  return (
    <>
      <h1>Explorer</h1>
      <p className="muted">Data sets, models and runs on this server; pick a run to see its learning dynamics.</p>
      <div className="grid">
        <Datasets onPick={setScope} />
        <Models onPick={setScope} />
      </div>
      <Runs key={scope ? `${scope.kind}:${scope.id}` : 'all'} scope={scope} onScope={setScope} />
      <section className="panel" aria-labelledby="jobs-heading">
        <h2 id="jobs-heading">
          Job queue <Link href="/jobs">(compute terms)</Link>
        </h2>
        <JobList />
      </section>
    </>
  );
}
