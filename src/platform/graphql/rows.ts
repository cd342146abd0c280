import type {
  Checkpoint,
  Dataset,
  Model,
  Run,
  Sample,
  SampleMetric,
} from '../db/generated/client.js';

/**
 * What each GraphQL object's resolvers receive (codegen's `mappers`): mostly the Prisma row as it
 * comes from the database, so a resolver that needs more must load it.
 */
export type DatasetRow = Dataset;
export type SampleRow = Sample;
export type ModelRow = Model;
export type RunRow = Run;
/** Checkpoint rows never carry their weights; `Checkpoint.weights` loads them on demand. */
export type CheckpointRow = Checkpoint;
/** A checkpoint's weights put together from its stored layers (modules/checkpoints/weight-storage.ts). */
export interface CheckpointWeightsRow {
  specs: unknown;
  data: Uint8Array;
}
/**
 * A sample_metric row; with `subset` (a named parameter subset), its kNorm and kTrace and their
 * producers are those over that subset (sample_subset_metric). Without it they are over 'all'.
 */
export type SampleMetricRow = SampleMetric & { subset?: string };

export interface AddSamplesPayloadRow {
  datasetId: number;
  added: number;
}

export interface RecordMetricsPayloadRow {
  checkpointId: number;
  written: number;
}

/** A page of a Relay connection; `count` runs only when a client asks for totalCount. */
export interface ConnectionRow<T> {
  edges: { cursor: string; node: T }[];
  /** The nodes, when the page has them at hand (else taken from the edges). */
  nodes?: T[];
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
  count: () => Promise<number>;
}
