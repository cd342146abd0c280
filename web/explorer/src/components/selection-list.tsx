import { useEffect, useState } from 'react';
import { useQuery } from 'urql';
import { graphql } from '../gql';
import { Pager, useCursorPages } from './pager';
import { ClassCounts } from './selection-counts';
import { ExportLink } from './selection-export';

/**
 * The saved selections (of one run, or all), newest first, each with its provenance: the strategy as
 * saved (method, term, checkpoints and their weights, target set, parameter subset, filter), who
 * produced the values it ranked at each checkpoint, the software version, its class counts, and
 * links to export it as CSV or JSONL.
 */

const PAGE = 10;

const SelectionsQuery = graphql(`
  query SavedSelections($first: Int!, $after: String, $runId: ID) {
    selections(first: $first, after: $after, runId: $runId) {
      totalCount
      pageInfo {
        hasNextPage
        endCursor
      }
      nodes {
        id
        name
        description
        runId
        run {
          id
          name
        }
        dataset {
          id
          name
        }
        method
        term
        direction
        k
        fraction
        threshold
        subset
        weighting
        weights
        checkpointIds
        checkpoints {
          id
          step
        }
        target {
          key
        }
        strategy
        softwareVersion
        poolSize
        sampleCount
        createdAt
        classCounts {
          label
          className
          count
        }
        provenance {
          checkpointId
          term
          subset
          producers {
            count
            producer {
              kind
              backend
              version
            }
          }
        }
        csv: exportUrl(format: CSV)
        jsonl: exportUrl(format: JSONL)
      }
    }
  }
`);

const fmt = (x: number) => (Math.abs(x) >= 1000 || (x !== 0 && Math.abs(x) < 1e-3) ? x.toExponential(3) : Number(x.toPrecision(4)).toString());

function methodText(s: { method: string; k?: number | null; fraction?: number | null; threshold?: number | null; direction: string }): string {
  const size = s.k != null ? `k = ${s.k}` : s.fraction != null ? `fraction ${s.fraction}` : s.threshold != null ? `${s.direction === 'DESC' ? '≥' : '≤'} ${s.threshold}` : '';
  return `${s.method.toLowerCase().replace(/_/g, ' ')}${size ? ` (${size})` : ''}`;
}

export function SavedSelections({ runId, refresh }: { runId: string | null; refresh: number }) {
  const pages = useCursorPages();
  const [open, setOpen] = useState<string | null>(null);
  const [{ data, error, fetching }, reexecute] = useQuery({ query: SelectionsQuery, variables: { first: PAGE, after: pages.after, runId } });
  // A save on the page bumps `refresh`: the list is read again (urql's document cache would miss a
  // first selection, since an empty list holds no Selection for a mutation's result to invalidate).
  useEffect(() => {
    if (refresh) reexecute({ requestPolicy: 'network-only' });
  }, [refresh, reexecute]);
  const rows = data?.selections.nodes ?? [];
  return (
    <section className="panel" aria-labelledby="saved-heading">
      <h2 id="saved-heading">Saved selections{runId ? ' of this run' : ''}</h2>
      {error && <p className="notice">{error.message}</p>}
      <table className="data" data-testid="selections-table" data-rows={rows.length} data-ready={!fetching && !!data ? 'true' : 'false'}>
        <thead>
          <tr>
            <th>Name</th>
            <th>Run</th>
            <th>Strategy</th>
            <th>Checkpoints (weight)</th>
            <th className="num">Samples</th>
            <th className="num">Pool</th>
            <th>Export</th>
            <th>Created</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((s) => (
            <tr key={s.id} data-testid="selection-row" data-id={s.id} data-name={s.name}>
              <td>
                <button type="button" className="link" aria-expanded={open === s.id} onClick={() => setOpen(open === s.id ? null : s.id)} data-testid="selection-open">
                  {s.name}
                </button>
                {s.description && <div className="muted">{s.description}</div>}
              </td>
              <td>{s.run ? <a href={`#/runs/${s.run.id}`}>{s.run.name}</a> : <span className="muted">run {s.runId} (deleted)</span>}</td>
              <td>
                {methodText(s)} by {s.term} {s.direction === 'DESC' ? '↓' : '↑'}
                {s.target && <span className="muted"> vs {s.target.key}</span>}
                {s.subset !== 'all' && <span className="muted"> over {s.subset}</span>}
              </td>
              <td>
                {s.checkpointIds.map((id, i) => {
                  const c = s.checkpoints.find((x) => x.id === id);
                  return (
                    <span key={id}>
                      {i ? ', ' : ''}
                      {c ? <a href={`#/checkpoints/${id}`}>step {c.step}</a> : <span className="muted">{id} (deleted)</span>}
                      {s.checkpointIds.length > 1 && ` (${fmt(s.weights[i] ?? 0)})`}
                    </span>
                  );
                })}
                {s.checkpointIds.length > 1 && <div className="muted">{s.weighting.toLowerCase().replace('_', ' ')}</div>}
              </td>
              <td className="num" data-testid="selection-size">
                {s.sampleCount}
              </td>
              <td className="num">{s.poolSize}</td>
              <td>
                <ExportLink href={s.csv} format="CSV" name={s.name} /> · <ExportLink href={s.jsonl} format="JSONL" name={s.name} />
              </td>
              <td>{new Date(s.createdAt as string).toLocaleString()}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <Pager label="selections" pages={pages} pageInfo={data?.selections.pageInfo} totalCount={data?.selections.totalCount} shown={rows.length} pageSize={PAGE} />
      {rows
        .filter((s) => s.id === open)
        .map((s) => (
          <div key={s.id} className="selection-detail" data-testid="selection-detail" data-id={s.id}>
            <h3>{s.name}: provenance</h3>
            <dl className="summary">
              <div>
                <dt>Data set</dt>
                <dd>{s.dataset.name}</dd>
              </div>
              <div>
                <dt>Software</dt>
                <dd>{s.softwareVersion}</dd>
              </div>
              <div>
                <dt>Selected / pool</dt>
                <dd>
                  {s.sampleCount} / {s.poolSize}
                </dd>
              </div>
            </dl>
            <ClassCounts counts={s.classCounts} testid="saved-class-counts" />
            <h4>Who produced the values ranked</h4>
            <table className="data" data-testid="provenance-table">
              <thead>
                <tr>
                  <th>Checkpoint</th>
                  <th>Term</th>
                  <th>Subset</th>
                  <th>Producer</th>
                  <th className="num">Candidates</th>
                </tr>
              </thead>
              <tbody>
                {s.provenance.flatMap((p) =>
                  p.producers.map((pc, i) => (
                    <tr key={`${p.checkpointId}-${p.term}-${i}`}>
                      <td>step {s.checkpoints.find((c) => c.id === p.checkpointId)?.step ?? p.checkpointId}</td>
                      <td>{p.term}</td>
                      <td>{p.subset ?? '—'}</td>
                      <td>
                        {pc.producer.kind.toLowerCase()}
                        {pc.producer.version ? ` · ${pc.producer.version}` : ''}
                      </td>
                      <td className="num">{pc.count}</td>
                    </tr>
                  )),
                )}
              </tbody>
            </table>
            <h4>Strategy, as replayed</h4>
            <pre className="strategy-json">{JSON.stringify(s.strategy, null, 2)}</pre>
          </div>
        ))}
    </section>
  );
}
