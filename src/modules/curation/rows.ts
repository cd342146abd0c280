import type { Selection } from '../../platform/db/generated/client.js';
import type { RankedSampleRow } from './rank.js';
import type { SelectedSampleRow } from './selections.js';
import type { TermStatsRow } from './stats.js';
import type { ConnectionRow } from '../../platform/graphql/rows.js';

/** What the curation types' resolvers receive (codegen `mappers`). */
export type { RankedSampleRow, SelectedSampleRow, TermStatsRow };
export type SelectionRow = Selection;
export type RankedSampleConnectionRow = ConnectionRow<RankedSampleRow>;
/** A ranked page as rows; the RankedColumns resolvers read it column by column. */
export type RankedColumnsRow = readonly RankedSampleRow[];
export type SelectedSampleConnectionRow = ConnectionRow<SelectedSampleRow>;
export type SelectionConnectionRow = ConnectionRow<Selection>;

/** A target set by its key (`split:<name>` or `selection:<id>`). */
export interface TargetSetRow {
  key: string;
}

export interface SelectionProvenanceRow {
  checkpointId: number;
  term: string;
  /** The parameter subset of a kernel term's values; absent in provenance saved before subsets existed. */
  subset?: string | null;
  producers: { kind: string | null; backend: string | null; version: string | null; count: number }[];
}
