import type { Sql } from '../../platform/db/sql.js';
import { and, empty, join, param, raw, sql, type Statement } from '../../platform/db/statement.js';
import { ALL_PARAMETERS } from '../../platform/values/parameter-subset.js';
import { scalarTerm, type ScalarTermName } from './term-columns.js';
import type { SampleFilter } from './query.js';

/**
 * The statement behind `Checkpoint.termColumns` (term-columns-read.ts): every sample of a dataset (or
 * those a filter keeps), in dataset order, with some scalar terms at one checkpoint, as binary columns.
 *
 * The columns are built by PostgreSQL itself: `string_agg` of `int4send`/`float4send` gives one
 * bytea per column (big-endian, the send functions' network order) in one row, so 100,000 samples
 * come back as a handful of buffers instead of 100,000 row objects for the driver to build and
 * JavaScript to walk. The storage swaps them to little-endian (`Buffer.swap32`, native).
 */

/** Binary columns of a dataset's samples at one checkpoint, entry i of each being the i-th sample in dataset order. */
export interface TermColumnsRaw {
  count: number;
  /** Little-endian int32 each. */
  sampleIds: Buffer;
  indices: Buffer;
  labels: Buffer;
  /** The split names, sorted; `splitCodes` holds one byte per sample indexing them. */
  splits: string[];
  splitCodes: Buffer;
  /** One byte per sample: 1 correct, 0 incorrect, 255 not computed. */
  correct: Buffer;
  correctMissing: number;
  /** Per term asked, in the order asked: little-endian float32 (NaN where missing) and how many are missing. */
  terms: { values: Buffer; missing: number }[];
}

/** A bytea as the driver gives it (node-postgres: Buffer; PGlite: Uint8Array), as a Buffer over the same bytes. */
function bytes(value: unknown): Buffer {
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  return Buffer.alloc(0);
}

/** Big-endian 32-bit words (what int4send and float4send write) to little-endian, in place. */
function littleEndian(buffer: Buffer): Buffer {
  // PGlite's Uint8Array may share its memory with the row; swap a copy so nothing else sees it change.
  const out = Buffer.from(buffer);
  return out.length ? out.swap32() : out;
}

export async function termColumnsRaw(
  sql_: Sql,
  o: { checkpointId: number; datasetId: number; terms: readonly ScalarTermName[]; subset: string; filter: SampleFilter },
): Promise<TermColumnsRaw> {
  const subsetJoin = o.subset !== ALL_PARAMETERS;
  // Term column names come only from the fixed term list (scalarTerm); every value is a bound parameter.
  const column = (term: ScalarTermName | 'CORRECT'): Statement => {
    if (term === 'CORRECT') return raw('m.correct');
    const spec = scalarTerm(term);
    return raw(`${spec.kernel && subsetJoin ? 'k' : 'm'}.${spec.column}`);
  };
  const where: Statement[] = [sql`s.dataset_id = ${param(o.datasetId, 'int')}`];
  const f = o.filter;
  if (f.labels?.length) where.push(sql`s.label = ANY(${param(f.labels, 'int[]')})`);
  if (f.splits?.length) where.push(sql`s.split = ANY(${param(f.splits, 'text[]')})`);
  if (f.sampleIds?.length) where.push(sql`s.id = ANY(${param(f.sampleIds, 'int[]')})`);
  for (const range of f.terms ?? []) {
    if (range.min !== null && range.min !== undefined) where.push(sql`${column(range.term)} >= ${param(range.min, 'real')}`);
    if (range.max !== null && range.max !== undefined) where.push(sql`${column(range.term)} <= ${param(range.max, 'real')}`);
  }
  if (f.correct !== null && f.correct !== undefined) where.push(sql`m.correct = ${param(f.correct, 'boolean')}`);
  const checkpoint = param(o.checkpointId, 'int');
  const termSelect = o.terms.map((term, i) => raw(`${column(term).text} AS t${i}`));
  const termAggs = o.terms.map((_, i) =>
    raw(`coalesce(string_agg(float4send(coalesce(r.t${i}, 'NaN'::real)), ''::bytea ORDER BY r.index), ''::bytea) AS v${i}, (count(*) FILTER (WHERE r.t${i} IS NULL))::int AS n${i}`),
  );
  const statement = sql`WITH r AS (
      SELECT s.id, s.index, s.label, s.split, m.correct${termSelect.length ? sql`, ${join(termSelect, ', ')}` : empty}
      FROM sample s
      LEFT JOIN sample_metric m ON m.checkpoint_id = ${checkpoint} AND m.sample_id = s.id
      ${subsetJoin ? sql`LEFT JOIN sample_subset_metric k ON k.checkpoint_id = ${checkpoint} AND k.subset = ${param(o.subset, 'text')} AND k.sample_id = s.id` : empty}
      WHERE ${and(where)}
    ), names AS (SELECT coalesce(array_agg(DISTINCT split ORDER BY split), '{}'::text[]) AS splits FROM r)
    SELECT count(*)::int AS n, (SELECT splits FROM names) AS splits,
      coalesce(string_agg(int4send(r.id), ''::bytea ORDER BY r.index), ''::bytea) AS ids,
      coalesce(string_agg(int4send(r.index), ''::bytea ORDER BY r.index), ''::bytea) AS indices,
      coalesce(string_agg(int4send(r.label), ''::bytea ORDER BY r.index), ''::bytea) AS labels,
      coalesce(string_agg(set_byte(decode('00', 'hex'), 0, array_position((SELECT splits FROM names), r.split) - 1), ''::bytea ORDER BY r.index), ''::bytea) AS split_codes,
      coalesce(string_agg(set_byte(decode('00', 'hex'), 0, CASE WHEN r.correct THEN 1 WHEN NOT r.correct THEN 0 ELSE 255 END), ''::bytea ORDER BY r.index), ''::bytea) AS correct,
      (count(*) FILTER (WHERE r.correct IS NULL))::int AS correct_missing${termAggs.length ? sql`, ${join(termAggs, ', ')}` : empty}
    FROM r`;
  // named: curation.termColumns
  const [row] = await sql_.query<Record<string, unknown>>(statement.text, statement.values);
  return {
    count: Number(row!.n),
    sampleIds: littleEndian(bytes(row!.ids)),
    indices: littleEndian(bytes(row!.indices)),
    labels: littleEndian(bytes(row!.labels)),
    splits: row!.splits as string[],
    splitCodes: Buffer.from(bytes(row!.split_codes)),
    correct: Buffer.from(bytes(row!.correct)),
    correctMissing: Number(row!.correct_missing),
    terms: o.terms.map((_, i) => ({ values: littleEndian(bytes(row![`v${i}`])), missing: Number(row![`n${i}`]) })),
  };
}
