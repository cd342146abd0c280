import type { Sql } from '../../platform/db/sql.js';
import { and, empty, join, param, raw, sql, type Statement } from '../../platform/db/statement.js';
import { invariant } from '../../platform/errors.js';
import { ALL_PARAMETERS } from '../../platform/values/parameter-subset.js';
import { scalarTerm, type ScalarTermName } from './term-columns.js';
import type { SampleFilter } from './query.js';

/**
 * The statement behind `Checkpoint.termColumns` (term-columns-read.ts): every sample of a dataset (or
 * those a filter keeps), in dataset order, with some scalar terms at one checkpoint, as binary columns.
 *
 * PostgreSQL builds the bytes: one `string_agg` (one sort by index) of a fixed-width record per sample,
 * `int4send`/`float4send` of each value (big-endian, the send functions' network order), so 100,000
 * samples come back as one bytea in one row instead of 100,000 row objects for the driver to build
 * and JavaScript to walk; here the records are split into little-endian columns in one pass. (One
 * aggregate per column would sort the rows once per column on PostgreSQL 15: 3× slower at 7 terms.)
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

/** A bytea as the driver gives it (node-postgres: Buffer; PGlite: Uint8Array). */
function bytes(value: unknown): Uint8Array {
  return value instanceof Uint8Array ? value : new Uint8Array(0);
}

/** Bytes of each sample's record: id, index, label (int32 each), correct and split code (a byte each), then the terms (float32 each). */
const HEAD = 14;

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
  // NaN where a value is missing (its count beside it): the record keeps its width.
  const termBytes = raw(o.terms.map((_, i) => ` || float4send(coalesce(r.t${i}, 'NaN'::real))`).join(''));
  const termMissing = raw(o.terms.map((_, i) => `, (count(*) FILTER (WHERE r.t${i} IS NULL))::int AS n${i}`).join(''));
  const statement = sql`WITH r AS (
      SELECT s.id, s.index, s.label, s.split, m.correct${termSelect.length ? sql`, ${join(termSelect, ', ')}` : empty}
      FROM sample s
      LEFT JOIN sample_metric m ON m.checkpoint_id = ${checkpoint} AND m.sample_id = s.id
      ${subsetJoin ? sql`LEFT JOIN sample_subset_metric k ON k.checkpoint_id = ${checkpoint} AND k.subset = ${param(o.subset, 'text')} AND k.sample_id = s.id` : empty}
      WHERE ${and(where)}
    ), names AS (SELECT coalesce(array_agg(DISTINCT split ORDER BY split), '{}'::text[]) AS splits FROM r)
    SELECT count(*)::int AS n, (SELECT splits FROM names) AS splits,
      string_agg(int4send(r.id) || int4send(r.index) || int4send(r.label)
        || set_byte(set_byte(decode('0000', 'hex'), 0, CASE WHEN r.correct THEN 1 WHEN NOT r.correct THEN 0 ELSE 255 END), 1, array_position((SELECT splits FROM names), r.split) - 1)
        ${termBytes}, ''::bytea ORDER BY r.index) AS records,
      (count(*) FILTER (WHERE r.correct IS NULL))::int AS correct_missing${termMissing}
    FROM r`;
  // named: curation.termColumns
  const [row] = await sql_.query<Record<string, unknown>>(statement.text, statement.values);
  const n = Number(row!.n);
  const T = o.terms.length;
  const width = HEAD + 4 * T;
  const records = bytes(row!.records);
  invariant(records.length === n * width, `termColumns read ${records.length} bytes for ${n} records of ${width}`);
  const from = new DataView(records.buffer, records.byteOffset, records.byteLength);
  const sampleIds = Buffer.alloc(4 * n);
  const indices = Buffer.alloc(4 * n);
  const labels = Buffer.alloc(4 * n);
  const correct = Buffer.alloc(n);
  const splitCodes = Buffer.alloc(n);
  const terms = Array.from({ length: T }, () => Buffer.alloc(4 * n));
  const views = [sampleIds, indices, labels, ...terms].map((b) => new DataView(b.buffer, b.byteOffset, b.byteLength));
  const [idsOut, indicesOut, labelsOut, ...termsOut] = views as [DataView, DataView, DataView, ...DataView[]];
  // Each word copied as its 32 bits, big- to little-endian (a float's bits, NaN's included, unchanged).
  for (let i = 0, at = 0; i < n; i++, at += width) {
    idsOut.setUint32(4 * i, from.getUint32(at), true);
    indicesOut.setUint32(4 * i, from.getUint32(at + 4), true);
    labelsOut.setUint32(4 * i, from.getUint32(at + 8), true);
    correct[i] = records[at + 12]!;
    splitCodes[i] = records[at + 13]!;
    for (let t = 0; t < T; t++) termsOut[t]!.setUint32(4 * i, from.getUint32(at + HEAD + 4 * t), true);
  }
  return {
    count: n,
    sampleIds,
    indices,
    labels,
    splits: row!.splits as string[],
    splitCodes,
    correct,
    correctMissing: Number(row!.correct_missing),
    terms: terms.map((values, t) => ({ values, missing: Number(row![`n${t}`]) })),
  };
}
