import DataLoader from 'dataloader';
import type { Database } from '../../platform/db/database.js';
import type { Model } from '../../platform/db/generated/client.js';

/** Returns `rows` in the order of `keys` (null where absent), as DataLoader requires. */
function byKey<K, R>(keys: readonly K[], rows: R[], keyOf: (row: R) => K): (R | null)[] {
  const map = new Map<K, R>();
  for (const row of rows) map.set(keyOf(row), row);
  return keys.map((key) => map.get(key) ?? null);
}

/** The models module's loaders of one request (src/modules/loaders.ts composes them). */
export function modelLoaders(db: Database) {
  const { prisma } = db;
  return {
    modelById: new DataLoader<number, Model | null>(async (ids) =>
      byKey(ids, await prisma.model.findMany({ where: { id: { in: [...ids] } } }), (r) => r.id),
    ),
  };
}
