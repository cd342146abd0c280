import DataLoader from 'dataloader';
import type { Database } from '../../platform/db/database.js';
import type { Producer } from '../../platform/db/generated/client.js';
import { byKey } from '../../platform/db/loader-rows.js';

/** The terms module's loaders of one request (src/modules/loaders.ts composes them). */
export function termLoaders(db: Database) {
  const { prisma } = db;
  return {
    producerById: new DataLoader<number, Producer | null>(async (ids) =>
      byKey(ids, await prisma.producer.findMany({ where: { id: { in: [...ids] } } }), (r) => r.id),
    ),
  };
}
