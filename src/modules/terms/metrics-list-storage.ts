import type { Database } from '../../platform/db/database.js';
import type { SampleMetric } from '../../platform/db/generated/client.js';

/** Up to `take` of a checkpoint's stored metrics in sample-id order, with sample ids above `after`. */
export function sampleMetricPage(db: Database, checkpointId: number, after: number | null, take: number): Promise<SampleMetric[]> {
  return db.prisma.sampleMetric.findMany({
    where: { checkpointId, ...(after !== null ? { sampleId: { gt: after } } : {}) },
    orderBy: { sampleId: 'asc' },
    take,
  });
}

export function countSampleMetrics(db: Database, checkpointId: number): Promise<number> {
  return db.prisma.sampleMetric.count({ where: { checkpointId } });
}
