import DataLoader from 'dataloader';
import type { Database } from '../../platform/db/database.js';
import type { Model } from '../../platform/db/generated/client.js';
import { byKey } from '../../platform/db/loader-rows.js';

/** The models module's loaders of one request (src/modules/loaders.ts composes them). */
export function modelLoaders(db: Database) {
  const { prisma } = db;
  return {
    modelById: new DataLoader<number, Model | null>(async (ids) =>
      byKey(ids, await prisma.model.findMany({ where: { id: { in: [...ids] } } }), (r) => r.id),
    ),
  };
}
