import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { parse as parseCsv } from 'csv-parse';
import { TERMS, type TermField } from '../platform/values/term.js';

/**
 * Per-sample metrics from files: CSV (a header row, then one row per sample) or JSONL (one JSON
 * object per line). Each row names its sample by `sampleId` (Tangent's id) or `sampleIndex` (its
 * position in the dataset) and carries terms by their field or column name (`kNorm` or `k_norm`).
 * Vectors (logits, probs) are a JSON array in JSONL; in CSV either one cell of numbers separated
 * by spaces, semicolons or commas (optionally in brackets), or one column per class
 * (`logits_0`, `logits_1`, …, also `logits.0` or `logits[0]`). Every row of a file has the same
 * terms, so that a batch maps onto the columns of `logMetrics`.
 */
export type MetricsFormat = 'csv' | 'jsonl';

export interface MetricBatch {
  /** Line of the file where the batch's first row is (1-based). */
  firstLine: number;
  /** Line of each row, for error messages. */
  lines: number[];
  ref: 'sampleIds' | 'sampleIndices';
  refs: number[];
  /** Scalars and booleans, one per row; vectors, one array per row. */
  columns: Partial<Record<TermField, number[] | boolean[] | number[][]>>;
}

export class MetricsFileError extends Error {
  constructor(
    message: string,
    readonly line: number,
  ) {
    super(`line ${line}: ${message}`);
    this.name = 'MetricsFileError';
  }
}

/** The format a file's extension names, or null. */
export function metricsFormatOf(path: string): MetricsFormat | null {
  if (/\.csv$/i.test(path)) return 'csv';
  if (/\.(jsonl|ndjson)$/i.test(path)) return 'jsonl';
  return null;
}

const ALIASES = new Map<string, TermField | 'sampleIds' | 'sampleIndices'>();
for (const t of TERMS) {
  ALIASES.set(t.field.toLowerCase(), t.field);
  ALIASES.set(t.column.toLowerCase(), t.field);
}
for (const name of ['sampleid', 'sample_id', 'sample']) ALIASES.set(name, 'sampleIds');
for (const name of ['sampleindex', 'sample_index', 'index']) ALIASES.set(name, 'sampleIndices');

const termOf = new Map(TERMS.map((t) => [t.field, t]));

function keyOf(name: string) {
  return ALIASES.get(name.trim().toLowerCase()) ?? null;
}

function parseNumber(text: unknown, line: number, what: string): number {
  const value = typeof text === 'number' ? text : typeof text === 'string' && text.trim() !== '' ? Number(text) : Number.NaN;
  if (!Number.isFinite(value)) throw new MetricsFileError(`${what} is ${JSON.stringify(text)}, not a finite number`, line);
  return value;
}

function parseBool(text: unknown, line: number, what: string): boolean {
  if (typeof text === 'boolean') return text;
  const t = String(text).trim().toLowerCase();
  if (t === 'true' || t === '1' || t === 't' || t === 'yes') return true;
  if (t === 'false' || t === '0' || t === 'f' || t === 'no') return false;
  throw new MetricsFileError(`${what} is ${JSON.stringify(text)}, not a boolean (true/false or 1/0)`, line);
}

function parseVector(value: unknown, line: number, what: string): number[] {
  if (Array.isArray(value)) return value.map((v, k) => parseNumber(v, line, `${what}[${k}]`));
  if (typeof value === 'string') {
    const body = value.trim().replace(/^\[|\]$/g, '').trim();
    if (!body) throw new MetricsFileError(`${what} is empty`, line);
    return body.split(/[\s;,]+/).map((v, k) => parseNumber(v, line, `${what}[${k}]`));
  }
  throw new MetricsFileError(`${what} must be a list of numbers`, line);
}

/** Collects rows into batches of `batchRows`, checking that every row has the same terms. */
class Batcher {
  private batch: MetricBatch | null = null;
  private terms: TermField[] | null = null;
  private ref: MetricBatch['ref'] | null = null;

  constructor(private readonly batchRows: number) {}

  /** Adds one row (its values by key); returns a full batch when there is one. */
  add(line: number, values: Map<TermField | 'sampleIds' | 'sampleIndices', unknown>): MetricBatch | null {
    if (this.ref === null) {
      const hasId = values.has('sampleIds');
      const hasIndex = values.has('sampleIndices');
      if (hasId === hasIndex) throw new MetricsFileError('each row names its sample by sampleId or by sampleIndex (exactly one of them)', line);
      this.ref = hasId ? 'sampleIds' : 'sampleIndices';
      this.terms = [...values.keys()].filter((k): k is TermField => k !== 'sampleIds' && k !== 'sampleIndices');
      if (this.terms.length === 0) throw new MetricsFileError('the rows carry no terms (loss, correct, logits, …)', line);
    }
    const batch = (this.batch ??= { firstLine: line, lines: [], ref: this.ref, refs: [], columns: {} });
    const refValue = values.get(this.ref);
    if (refValue === undefined || refValue === null || refValue === '') throw new MetricsFileError(`${this.ref === 'sampleIds' ? 'sampleId' : 'sampleIndex'} is missing`, line);
    const ref = parseNumber(refValue, line, this.ref === 'sampleIds' ? 'sampleId' : 'sampleIndex');
    if (!Number.isInteger(ref)) throw new MetricsFileError(`the sample reference ${ref} is not an integer`, line);
    batch.lines.push(line);
    batch.refs.push(ref);
    for (const term of this.terms!) {
      const value = values.get(term);
      if (value === undefined || value === null || value === '') {
        throw new MetricsFileError(`${term} is missing; every row of a file carries the same terms as the first`, line);
      }
      const column = (batch.columns[term] ??= []) as unknown[];
      const kind = termOf.get(term)!.sqlType;
      column.push(kind === 'boolean' ? parseBool(value, line, term) : kind === 'real' ? parseNumber(value, line, term) : parseVector(value, line, term));
    }
    for (const key of values.keys()) {
      if (key !== this.ref && !this.terms!.includes(key as TermField)) {
        throw new MetricsFileError(`${key} is not in the first row; every row of a file carries the same terms`, line);
      }
    }
    if (batch.refs.length >= this.batchRows) return this.flush();
    return null;
  }

  flush(): MetricBatch | null {
    const batch = this.batch;
    this.batch = null;
    return batch && batch.refs.length ? batch : null;
  }
}

/** Reads a metrics file as batches of at most `batchRows` rows, streaming (the file is never whole in memory). */
export async function* readMetricsFile(path: string, format: MetricsFormat, batchRows: number, onBytes?: (bytes: number) => void): AsyncGenerator<MetricBatch> {
  const stream = createReadStream(path);
  if (onBytes) stream.on('data', (chunk) => onBytes(chunk.length));
  yield* format === 'csv' ? readCsv(stream, batchRows) : readJsonl(stream, batchRows);
}

export async function* readJsonl(input: Readable, batchRows: number): AsyncGenerator<MetricBatch> {
  const batcher = new Batcher(batchRows);
  let line = 0;
  for await (const text of createInterface({ input, crlfDelay: Infinity })) {
    line++;
    if (!text.trim()) continue;
    let record: unknown;
    try {
      record = JSON.parse(text);
    } catch {
      throw new MetricsFileError('not valid JSON', line);
    }
    if (typeof record !== 'object' || record === null || Array.isArray(record)) throw new MetricsFileError('each line is one JSON object', line);
    const values = new Map<TermField | 'sampleIds' | 'sampleIndices', unknown>();
    for (const [name, value] of Object.entries(record)) {
      const key = keyOf(name);
      if (!key) throw new MetricsFileError(`unknown key ${JSON.stringify(name)}; expected sampleId or sampleIndex and terms (${TERMS.map((t) => t.field).join(', ')})`, line);
      if (value !== null) values.set(key, value);
    }
    const full = batcher.add(line, values);
    if (full) yield full;
  }
  const rest = batcher.flush();
  if (rest) yield rest;
}

/** A CSV header cell: a key, or one component of a vector term (`logits_3`). */
type HeaderCell = { key: TermField | 'sampleIds' | 'sampleIndices'; component: number | null };

function parseHeader(cells: string[]): HeaderCell[] {
  return cells.map((cell) => {
    const key = keyOf(cell);
    if (key) return { key, component: null };
    const match = /^(.+?)(?:_|\.|\[)(\d+)\]?$/.exec(cell.trim());
    const vector = match ? keyOf(match[1]!) : null;
    if (vector && termOf.get(vector as TermField)?.sqlType === 'real[]') return { key: vector, component: Number(match![2]) };
    throw new MetricsFileError(`unknown column ${JSON.stringify(cell)}; expected sample_id or sample_index and terms (${TERMS.map((t) => t.column).join(', ')})`, 1);
  });
}

export async function* readCsv(input: Readable, batchRows: number): AsyncGenerator<MetricBatch> {
  const batcher = new Batcher(batchRows);
  const parser = input.pipe(parseCsv({ skip_empty_lines: true, trim: true, info: true, relax_column_count: false, bom: true }));
  let header: HeaderCell[] | null = null;
  try {
    for await (const { record, info } of parser as AsyncIterable<{ record: string[]; info: { lines: number } }>) {
      if (!header) {
        header = parseHeader(record);
        continue;
      }
      const line = info.lines;
      const values = new Map<TermField | 'sampleIds' | 'sampleIndices', unknown>();
      const components = new Map<TermField, number[]>();
      header.forEach((cell, c) => {
        const text = record[c] ?? '';
        if (cell.component === null) {
          if (text !== '') values.set(cell.key, text);
          return;
        }
        if (text === '') return;
        const vector = components.get(cell.key as TermField) ?? [];
        vector[cell.component] = parseNumber(text, line, `${cell.key}[${cell.component}]`);
        components.set(cell.key as TermField, vector);
      });
      for (const [term, vector] of components) {
        for (let k = 0; k < vector.length; k++) if (vector[k] === undefined) throw new MetricsFileError(`${term}[${k}] is missing`, line);
        values.set(term, vector);
      }
      const full = batcher.add(line, values);
      if (full) yield full;
    }
  } catch (error) {
    if (error instanceof MetricsFileError) throw error;
    const e = error as { message?: string; lines?: number };
    throw new MetricsFileError(e.message ?? String(error), e.lines ?? 0);
  }
  const rest = batcher.flush();
  if (rest) yield rest;
}
