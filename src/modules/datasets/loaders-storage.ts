import DataLoader from 'dataloader';
import type { Database } from '../../platform/db/database.js';
import type { Dataset, Sample } from '../../platform/db/generated/client.js';
import { byKey } from '../../platform/db/loader-rows.js';
import { DATASET_COLUMNS, SAMPLE_COLUMNS } from './storage.js';

/** The datasets module's loaders of one request (src/modules/loaders.ts composes them). */
export function datasetLoaders(db: Database) {
  const { prisma } = db;
  return {
    datasetById: new DataLoader<number, Dataset | null>(async (ids) =>
      byKey(ids, await db.sql.query<Dataset>(`SELECT ${DATASET_COLUMNS} FROM dataset WHERE id = ANY($1::int[])`, [[...ids]]), (r) => r.id),
    ),
    // Plain SQL for the series' sake (see samplePage).
    sampleById: new DataLoader<number, Sample | null>(async (ids) =>
      byKey(ids, await db.sql.query<Sample>(`SELECT ${SAMPLE_COLUMNS} FROM sample WHERE id = ANY($1::int[])`, [[...ids]]), (r) => r.id),
    ),
    /** Key: `${datasetId}` for all samples, `${datasetId}/${split}` for one split. */
    sampleCount: new DataLoader<string, number>(async (keys) => {
      const datasetIds = [...new Set(keys.map((key) => Number(key.split('/')[0])))];
      const groups = await prisma.sample.groupBy({
        by: ['datasetId', 'split'],
        where: { datasetId: { in: datasetIds } },
        _count: { _all: true },
      });
      const counts = new Map<string, number>();
      for (const g of groups) {
        counts.set(`${g.datasetId}`, (counts.get(`${g.datasetId}`) ?? 0) + g._count._all);
        counts.set(`${g.datasetId}/${g.split}`, g._count._all);
      }
      return keys.map((key) => counts.get(key) ?? 0);
    }),
    splitsByDataset: new DataLoader<number, { split: string; count: number }[]>(async (ids) => {
      const groups = await prisma.sample.groupBy({
        by: ['datasetId', 'split'],
        where: { datasetId: { in: [...ids] } },
        _count: { _all: true },
        orderBy: { split: 'asc' },
      });
      return ids.map((id) =>
        groups.filter((g) => g.datasetId === id).map((g) => ({ split: g.split, count: g._count._all })),
      );
    }),
  };
}
