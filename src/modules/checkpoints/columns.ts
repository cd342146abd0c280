import type { Checkpoint } from '../../platform/db/generated/client.js';

/**
 * A checkpoint row's columns, in the order plain-SQL reads select them, under the Prisma field
 * names. Not a storage file: it runs nothing, and other modules' statements that read a
 * checkpoint beside their own rows (a run with its first checkpoints) select the same columns.
 */
const FIELDS: ReadonlyArray<readonly [keyof Checkpoint, string]> = [
  ['id', 'id'],
  ['runId', 'run_id'],
  ['step', 'step'],
  ['epoch', 'epoch'],
  ['learningRate', 'learning_rate'],
  ['weightBytes', 'weight_bytes'],
  ['weightSha256', 'weight_sha256'],
  ['createdAt', 'created_at'],
];

/** The select list of a checkpoint row, of table `alias` when given, each column named by its field. */
export function checkpointColumns(alias?: string): string {
  const of = alias ? `${alias}.` : '';
  return FIELDS.map(([field, column]) => (field === column ? `${of}${column}` : `${of}${column} AS "${field}"`)).join(', ');
}

/**
 * A checkpoint from the JSON PostgreSQL wrote of a row of checkpointColumns (json_agg): numbers
 * come back as the same doubles (PostgreSQL writes floats in shortest round-trip form), and the
 * timestamp, written with its offset, becomes the Date the driver would have made.
 */
export function checkpointFromJson(row: Record<string, unknown>): Checkpoint {
  // In place: the object is JSON.parse's own, and a copy per checkpoint showed in bench:load's profile.
  row.createdAt = new Date(row.createdAt as string);
  return row as unknown as Checkpoint;
}
