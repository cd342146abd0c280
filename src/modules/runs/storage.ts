import type { Database } from '../../platform/db/database.js';
import type { Prisma, Run, RunStatus } from '../../platform/db/generated/client.js';

/** A new run's columns, as createRun stores them. */
export interface NewRun {
  name: string;
  modelId: number;
  datasetId: number;
  config: Prisma.InputJsonObject;
  status: RunStatus;
  idempotencyKey: string | null;
}

export function insertRun(db: Database, data: NewRun): Promise<Run> {
  return db.prisma.run.create({ data });
}

export function findRunByIdempotencyKey(db: Database, key: string): Promise<Run | null> {
  return db.prisma.run.findUnique({ where: { idempotencyKey: key } });
}

/** The columns an update may change; absent ones stay. */
export interface RunChanges {
  name?: string;
  status?: RunStatus;
  config?: Prisma.InputJsonObject;
}

export function updateRunById(db: Database, id: number, data: RunChanges): Promise<Run> {
  return db.prisma.run.update({ where: { id }, data });
}

/** Deletes a run (its checkpoints cascade); the number deleted, 0 or 1. */
export async function deleteRunById(db: Database, id: number): Promise<number> {
  const { count } = await db.prisma.run.deleteMany({ where: { id } });
  return count;
}

/** Which runs a runs connection lists: all, or those of a dataset, a model, a status. */
export interface RunFilter {
  datasetId?: number;
  modelId?: number;
  status?: RunStatus;
}

/** Up to `take` runs matching `where` with ids above `after`, by id. */
export function runPage(db: Database, where: RunFilter, after: number | null, take: number): Promise<Run[]> {
  return db.prisma.run.findMany({ where: { ...where, ...(after === null ? {} : { id: { gt: after } }) }, orderBy: { id: 'asc' }, take });
}

export function countRuns(db: Database, where: RunFilter): Promise<number> {
  return db.prisma.run.count({ where });
}
