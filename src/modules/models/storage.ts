import type { Database } from '../../platform/db/database.js';
import type { Model, Prisma } from '../../platform/db/generated/client.js';
import { likeLiteral } from '../../platform/db/statement.js';

/** A new model's columns, as createModel stores them. */
export type NewModel = Prisma.ModelCreateInput;

export function insertModel(db: Database, data: NewModel): Promise<Model> {
  return db.prisma.model.create({ data });
}

export function findModelByName(db: Database, name: string): Promise<Model | null> {
  return db.prisma.model.findUnique({ where: { name } });
}

/** How many runs use the model (a model with runs is not deleted). */
export function countRunsOfModel(db: Database, modelId: number): Promise<number> {
  return db.prisma.run.count({ where: { modelId } });
}

/** Deletes a model; the number deleted, 0 or 1. */
export async function deleteModelById(db: Database, id: number): Promise<number> {
  const { count } = await db.prisma.model.deleteMany({ where: { id } });
  return count;
}

export interface ModelFilter {
  format?: 'TFJS_LAYERS' | 'BUILTIN' | null;
  nameContains?: string | null;
}

function modelWhere(filter: ModelFilter): Prisma.ModelWhereInput {
  return {
    ...(filter.format ? { format: filter.format } : {}),
    ...(filter.nameContains ? { name: { contains: likeLiteral(filter.nameContains), mode: 'insensitive' } } : {}),
  };
}

/** Up to `take` models matching `filter` with ids above `after`, by id. */
export function modelPage(db: Database, filter: ModelFilter, after: number | null, take: number): Promise<Model[]> {
  return db.prisma.model.findMany({ where: { ...modelWhere(filter), ...(after === null ? {} : { id: { gt: after } }) }, orderBy: { id: 'asc' }, take });
}

export function countModels(db: Database, filter: ModelFilter): Promise<number> {
  return db.prisma.model.count({ where: modelWhere(filter) });
}
