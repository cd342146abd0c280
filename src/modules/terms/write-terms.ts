import type { Database } from '../../platform/db/database.js';
import type { Tx } from '../../platform/db/sql.js';
import { BadUserInputError, invariant } from '../../platform/errors.js';
import { KERNEL_TERMS } from '../../platform/values/term.js';
import { ALL_PARAMETERS, type ParameterSubset } from '../../platform/values/parameter-subset.js';
import { copyCrossMetrics, type CrossValue } from './cross-storage.js';
import {
  copyMetricColumns,
  rowsToColumns,
  rowWiseField,
  validateMetricColumns,
  type CheckpointShape,
  type FieldNamer,
  type MetricColumns,
  type MetricValues,
} from './metrics-storage.js';
import { producerRef, type ProducerKey, type ProducerRef } from './producers.js';
import { copySubsetMetrics, type SubsetValue } from './subset-metrics-storage.js';

/**
 * The writers of term values. Each checks its batch first, then resolves its producer (outside any
 * transaction: on PGlite a statement outside an open transaction waits for it forever), then writes
 * in one transaction: its own (`db`), or the caller's (`tx`, the `*In` forms: the chunk commit of a
 * compute job, a training point), with which the values commit or roll back.
 */

/**
 * Who values are marked as produced by: a producer row already resolved (ProducerIds, producerRef),
 * its key (read by the writer), or a function that resolves it (called after the batch is checked,
 * outside the transaction: a cached lookup, such as the compute runtime's).
 */
export type Producer = ProducerKey | ProducerRef | (() => Promise<ProducerRef>);

/** Runs one writer's statements in a transaction: its own, or the caller's. */
type Transaction = <T>(fn: (tx: Tx) => Promise<T>) => Promise<T>;

const ownTransaction =
  (db: Database): Transaction =>
  (fn) =>
    db.transaction(fn);

const callersTransaction =
  (tx: Tx): Transaction =>
  (fn) =>
    fn(tx);

/** The producer row, read (or made) in its own statement when only its key is known. */
function resolve(db: Database | null, producer: Producer): Promise<ProducerRef> {
  if (typeof producer === 'function') return producer();
  if ('id' in producer) return Promise.resolve(producer);
  invariant(db, 'a writer inside a transaction takes its producer resolved (producerRef, before the transaction)');
  return producerRef(db, producer);
}

async function metricColumns(db: Database | null, run: Transaction, checkpoint: CheckpointShape, batch: MetricColumns, producer: Producer, field: FieldNamer): Promise<number> {
  const n = validateMetricColumns(batch, checkpoint.numClasses, field);
  if (n === 0) return 0;
  const src = await resolve(db, producer);
  return run((tx) => copyMetricColumns(tx, checkpoint, batch, n, src, field));
}

/**
 * Writes per-sample values at a checkpoint in one transaction, so a batch lands whole or not at
 * all (src/modules/terms/metrics-storage.ts: a client never silently overwrites a value Tangent
 * computed, a server write only fills what is missing). Checks what can be checked without the
 * database first, naming the first bad row.
 */
export function writeMetricColumns(db: Database, checkpoint: CheckpointShape, batch: MetricColumns, producer: Producer, field: FieldNamer): Promise<number> {
  return metricColumns(db, ownTransaction(db), checkpoint, batch, producer, field);
}

/** `writeMetricColumns` inside the caller's transaction `tx`; its producer resolved before that transaction. */
export function writeMetricColumnsIn(tx: Tx, checkpoint: CheckpointShape, batch: MetricColumns, producer: ProducerRef, field: FieldNamer): Promise<number> {
  return metricColumns(null, callersTransaction(tx), checkpoint, batch, producer, field);
}

/**
 * Writes per-sample values given row by row; the same writer as `writeMetricColumns` (the rows
 * become columns first), so both mutations validate, lock and upsert alike.
 */
export function writeMetrics(db: Database, checkpoint: CheckpointShape, rows: readonly MetricValues[], producer: Producer, field = 'metrics'): Promise<number> {
  return writeMetricColumns(db, checkpoint, rowsToColumns(rows), producer, rowWiseField(field));
}

async function crossMetrics(
  db: Database | null,
  run: Transaction,
  checkpoint: { id: number; datasetId: number },
  targetKey: string,
  subset: ParameterSubset,
  rows: readonly CrossValue[],
  producer: Producer,
  field: string,
): Promise<number> {
  const seen = new Set<number>();
  for (const [i, row] of rows.entries()) {
    if (seen.has(row.sampleId)) throw new BadUserInputError(`${field}[${i}].sampleId ${row.sampleId} appears twice in the batch`, `${field}[${i}].sampleId`);
    seen.add(row.sampleId);
    if (!Number.isFinite(row.kCross) || !Number.isFinite(Math.fround(row.kCross))) {
      throw new BadUserInputError(`${field}[${i}].kCross must be a finite float32 number`, `${field}[${i}].kCross`);
    }
  }
  if (rows.length === 0) return 0;
  const src = await resolve(db, producer);
  return run((tx) => copyCrossMetrics(tx, checkpoint, targetKey, subset, rows, src, field));
}

/**
 * Writes kCross(x; T) values at a checkpoint for one target set and parameter subset, in one
 * transaction, with the same rules as writeMetricColumns (src/modules/terms/cross-storage.ts).
 */
export function writeCrossMetrics(
  db: Database,
  checkpoint: { id: number; datasetId: number },
  targetKey: string,
  subset: ParameterSubset,
  rows: readonly CrossValue[],
  producer: Producer,
  field = 'values',
): Promise<number> {
  return crossMetrics(db, ownTransaction(db), checkpoint, targetKey, subset, rows, producer, field);
}

/** `writeCrossMetrics` inside the caller's transaction `tx`; its producer resolved before that transaction. */
export function writeCrossMetricsIn(
  tx: Tx,
  checkpoint: { id: number; datasetId: number },
  targetKey: string,
  subset: ParameterSubset,
  rows: readonly CrossValue[],
  producer: ProducerRef,
  field = 'values',
): Promise<number> {
  return crossMetrics(null, callersTransaction(tx), checkpoint, targetKey, subset, rows, producer, field);
}

/**
 * Writes kNorm and kTrace over a named parameter subset (not 'all': those are sample_metric's
 * columns) at a checkpoint, in one transaction (src/modules/terms/subset-metrics-storage.ts). Only
 * Tangent computes these values (no mutation records them), so the producer is a server.
 */
async function subsetMetrics(db: Database | null, run: Transaction, checkpoint: { id: number; datasetId: number }, subset: ParameterSubset, rows: readonly SubsetValue[], producer: ProducerKey | ProducerRef): Promise<number> {
  invariant(subset !== ALL_PARAMETERS, "kernel terms over 'all' are sample_metric's columns");
  invariant(producer.kind === 'SERVER', 'only Tangent writes kernel terms over a named subset');
  if (rows.length === 0) return 0;
  for (const row of rows) {
    for (const v of [row.kNorm, row.kTrace]) invariant(v === null || (Number.isFinite(v) && Number.isFinite(Math.fround(v))), `a finite kernel term of sample ${row.sampleId}`);
  }
  const src = await resolve(db, producer);
  return run((tx) => copySubsetMetrics(tx, checkpoint, subset, rows, src));
}

async function computedTerms(
  db: Database | null,
  run: Transaction,
  checkpoint: CheckpointShape,
  batch: MetricColumns,
  subset: ParameterSubset,
  producer: ProducerKey | ProducerRef,
  field: FieldNamer,
): Promise<void> {
  if (subset === ALL_PARAMETERS) {
    await metricColumns(db, run, checkpoint, batch, producer, field);
    return;
  }
  const ids = batch.sampleIds;
  invariant(ids, 'computed terms name their samples by id');
  const kernel = Object.fromEntries(KERNEL_TERMS.map((t) => [t.field, batch.columns[t.field] as ArrayLike<number | null> | undefined]));
  const rest = Object.fromEntries(Object.entries(batch.columns).filter(([field]) => !KERNEL_TERMS.some((t) => t.field === field)));
  if (Object.keys(rest).length > 0) await metricColumns(db, run, checkpoint, { sampleIds: ids, columns: rest }, producer, field);
  if (kernel.kNorm || kernel.kTrace) {
    const rows = Array.from(ids, (sampleId, i) => ({ sampleId, kNorm: kernel.kNorm?.[i] ?? null, kTrace: kernel.kTrace?.[i] ?? null }));
    await subsetMetrics(db, run, checkpoint, subset, rows, producer);
  }
}

/**
 * Writes what one pass of the engine computed over a parameter subset: over 'all', every column
 * into sample_metric; over a named subset, kNorm and kTrace into sample_subset_metric and the other
 * terms (which do not depend on the subset) into sample_metric. Server writes: they only fill what
 * is missing. Each of the (at most two) writes is its own transaction.
 */
export function writeComputedTerms(db: Database, checkpoint: CheckpointShape, batch: MetricColumns, subset: ParameterSubset, producer: ProducerKey | ProducerRef, field: FieldNamer): Promise<void> {
  return computedTerms(db, ownTransaction(db), checkpoint, batch, subset, producer, field);
}

/** `writeComputedTerms` with both writes inside the caller's transaction `tx` (a compute job's chunk commit). */
export function writeComputedTermsIn(tx: Tx, checkpoint: CheckpointShape, batch: MetricColumns, subset: ParameterSubset, producer: ProducerRef, field: FieldNamer): Promise<void> {
  return computedTerms(null, callersTransaction(tx), checkpoint, batch, subset, producer, field);
}
