import type { SampleFilter } from './query.js';
import type { ScalarTermName, TargetSet } from './term-columns.js';
import { ALL_PARAMETERS, type ParameterSubset } from '../../platform/values/parameter-subset.js';
import { BadUserInputError, NotFoundError } from '../../platform/errors.js';
import { checkSubset } from '../terms/subsets.js';
import { ensureTerms } from '../terms/availability.js';
import { checkpointInfo, resolveTarget, type CurationContext } from './checkpoint-info.js';
import { requiredTerms, scopeOf } from './query.js';
import { cellKey, checkpointIdsOfRun, SKETCH_GRID, termHistogramCounts, termQuantiles, termSketches, termSummaries, type Sketch, type StatsScope, type Summary } from './stats-storage.js';

export type { Summary };

export interface StatsArgs {
  term: ScalarTermName;
  filter: SampleFilter;
  target: TargetSet | null;
  /** The parameter subset of the kernel terms (default 'all'). */
  subset?: ParameterSubset;
}

interface StatsSpec extends StatsScope {
  /** In step order. */
  checkpointIds: number[];
  classNames: string[];
}

export interface Histogram {
  min: number | null;
  max: number | null;
  binWidth: number | null;
  bins: { lower: number; upper: number; count: number }[];
  /** Values below min / above max (when the bounds were given). */
  below: number;
  above: number;
}

/** One cell of statistics: a term at one checkpoint, over all samples or one class. */
export interface TermStatsRow {
  family: StatsFamily;
  checkpointId: number;
  term: ScalarTermName;
  label: number | null;
  className: string | null;
}

const EMPTY: Summary = { count: 0, mean: null, stddev: null, min: null, max: null, lo: null, hi: null };
export const MAX_BINS = 10_000;
export const MAX_QUANTILES = 100;
/**
 * Cells with at most this many values answer quantiles exactly even when a sketch is asked for:
 * sorting them costs about as much as reading the sketch, and small cells are where one grid step
 * (a thousandth of the values) would be a visible difference.
 */
export const SKETCH_EXACT_BELOW = 10_000;

/** A filter that keeps every sample: statistics over it can come from the checkpoint's sketches. */
function keepsEverything(filter: SampleFilter): boolean {
  return !filter.terms?.length && !filter.labels?.length && !filter.splits?.length && !filter.sampleIds?.length && (filter.correct === null || filter.correct === undefined);
}

/**
 * The quantile at p from a sketch's grid (exact quantiles at i / SKETCH_GRID): the grid value
 * itself at a grid point, else linear between the two around p. Quantiles are monotone in p, so
 * the exact quantile at p and this value both lie between the grid values at ⌊p·G⌋/G and ⌈p·G⌉/G:
 * the answer is within one grid step of p in rank (|F(value) − p| ≤ 1/SKETCH_GRID).
 */
export function gridQuantile(grid: readonly number[], p: number): number {
  const x = p * SKETCH_GRID;
  const nearest = Math.round(x);
  if (Math.abs(x - nearest) < 1e-9) return grid[nearest]!;
  const i = Math.floor(x);
  return grid[i]! + (x - i) * (grid[i + 1]! - grid[i]!);
}

function summaryOf(sketch: Sketch | undefined): Summary {
  if (!sketch) return EMPTY;
  const { grid: _grid, ...summary } = sketch;
  return summary;
}

/**
 * The statistics of one term over a set of cells (checkpoints, or checkpoints × classes) that a
 * request reads together: each statistic is one grouped statement for all cells, run the first
 * time any cell asks for it (a run's series over 20 checkpoints costs one query, not 20).
 */
export class StatsFamily {
  private readonly memo = new Map<string, Promise<Map<string, unknown>>>();
  private classes: StatsFamily | null = null;

  constructor(
    private readonly ctx: CurationContext,
    readonly spec: StatsSpec,
    readonly byLabel: boolean,
    private readonly parent: StatsFamily | null = null,
  ) {}

  cells(): TermStatsRow[] {
    return this.spec.checkpointIds.map((checkpointId) => ({ family: this, checkpointId, term: this.spec.term, label: null, className: null }));
  }

  /** The per-class cells of one checkpoint, every class of the dataset in label order. */
  classCells(checkpointId: number): TermStatsRow[] {
    this.classes ??= new StatsFamily(this.ctx, this.spec, true, this);
    const family = this.classes;
    return this.spec.classNames.map((name, label) => ({ family, checkpointId, term: this.spec.term, label, className: name }));
  }

  /**
   * The sketches of this family's cells (every checkpoint, over all samples or per class), read or
   * built once per request; null when the filter leaves samples out (sketches are of every sample).
   */
  private sketches(): Promise<Map<string, Sketch>> | null {
    if (!keepsEverything(this.spec.filter)) return null;
    const { term, targetKey, subset, checkpointIds } = this.spec;
    // A class family reads after its parent: a stale sketch is rebuilt once (for every class too), not twice.
    const before = this.parent?.sketches() ?? null;
    return this.once('sketches', async () => {
      await before;
      return termSketches(this.ctx.db.sql, { term, targetKey, subset, checkpointIds }, this.byLabel);
    }) as Promise<Map<string, Sketch>>;
  }

  async summary(cell: TermStatsRow): Promise<Summary> {
    const sketches = this.sketches();
    if (sketches) return summaryOf((await sketches).get(cellKey(cell.checkpointId, cell.label)));
    const all = await this.once('summary', () => termSummaries(this.ctx.db.sql, this.spec, this.byLabel));
    return (all.get(cellKey(cell.checkpointId, cell.label)) as Summary | undefined) ?? EMPTY;
  }

  /**
   * Quantiles at the probabilities `at`. Over every sample and unless `exact`, from the cell's
   * sketch (within 1/SKETCH_GRID in rank; exact at multiples of it, and for cells of at most
   * SKETCH_EXACT_BELOW values); otherwise percentile_cont over the cell's values.
   */
  async quantiles(cell: TermStatsRow, at: readonly number[], exact = false): Promise<{ p: number; value: number | null }[]> {
    if (at.length > MAX_QUANTILES) throw new BadUserInputError(`At most ${MAX_QUANTILES} quantiles at once`, 'at');
    for (const [i, p] of at.entries()) {
      if (!(p >= 0 && p <= 1)) throw new BadUserInputError(`at[${i}] must be a probability in [0, 1]`, `at[${i}]`);
    }
    if (at.length === 0) return [];
    const sketches = this.sketches();
    if (sketches) {
      const sketch = (await sketches).get(cellKey(cell.checkpointId, cell.label));
      if (!sketch) return at.map((p) => ({ p, value: null }));
      if (!exact && sketch.count > SKETCH_EXACT_BELOW) return at.map((p) => ({ p, value: gridQuantile(sketch.grid, p) }));
      // Exact, over this cell's values only (not the whole family's: its other cells may be large).
      const spec = { ...this.spec, checkpointIds: [cell.checkpointId], filter: cell.label === null ? {} : { labels: [cell.label] } };
      const one = await this.once(`quantiles:${JSON.stringify(at)}:${cell.checkpointId}:${cell.label}`, () => termQuantiles(this.ctx.db.sql, spec, false, at));
      const values = (one.get(cellKey(cell.checkpointId, null)) as (number | null)[] | undefined) ?? at.map(() => null);
      return at.map((p, i) => ({ p, value: values[i] ?? null }));
    }
    const all = await this.once(`quantiles:${JSON.stringify(at)}`, () => termQuantiles(this.ctx.db.sql, this.spec, this.byLabel, at));
    const values = (all.get(cellKey(cell.checkpointId, cell.label)) as (number | null)[] | undefined) ?? at.map(() => null);
    return at.map((p, i) => ({ p, value: values[i] ?? null }));
  }

  /** Default histogram bounds: the smallest and largest value over every cell of the top family. */
  async bounds(): Promise<{ lo: number; hi: number } | null> {
    if (this.parent) return this.parent.bounds();
    let lo = Infinity;
    let hi = -Infinity;
    for (const cell of this.cells()) {
      const s = await this.summary(cell);
      if (s.lo !== null && s.lo < lo) lo = s.lo;
      if (s.hi !== null && s.hi > hi) hi = s.hi;
    }
    return lo <= hi ? { lo, hi } : null;
  }

  async histogram(cell: TermStatsRow, bins: number, min: number | null | undefined, max: number | null | undefined): Promise<Histogram> {
    if (!Number.isInteger(bins) || bins < 1 || bins > MAX_BINS) throw new BadUserInputError(`bins must be an integer from 1 to ${MAX_BINS}`, 'bins');
    for (const [name, v] of [['min', min], ['max', max]] as const) {
      if (v !== null && v !== undefined && !Number.isFinite(v)) throw new BadUserInputError(`${name} must be finite`, name);
    }
    const given = min !== null && min !== undefined && max !== null && max !== undefined;
    const auto = given ? null : await this.bounds();
    const lo = min ?? auto?.lo;
    let hi = max ?? auto?.hi;
    if (lo === undefined || hi === undefined) return { min: null, max: null, binWidth: null, bins: [], below: 0, above: 0 };
    if (lo > hi) throw new BadUserInputError('The histogram needs min < max', 'min');
    // All values equal: one unit-wide range, so every value lands in the first bin.
    if (lo === hi) hi = lo + 1;
    const upper = hi;
    const all = await this.once(`histogram:${bins}:${lo}:${hi}`, () => termHistogramCounts(this.ctx.db.sql, this.spec, this.byLabel, bins, lo, upper));
    const counts = ((all.get(cellKey(cell.checkpointId, cell.label)) as { b: number; n: number }[] | undefined) ?? []);
    const width = (hi - lo) / bins;
    const out: Histogram = {
      min: lo,
      max: hi,
      binWidth: width,
      bins: Array.from({ length: bins }, (_, i) => ({ lower: lo! + i * width, upper: i === bins - 1 ? hi! : lo! + (i + 1) * width, count: 0 })),
      below: 0,
      above: 0,
    };
    for (const { b, n } of counts) {
      if (b <= 0) out.below += n;
      else if (b > bins) out.above += n;
      else out.bins[b - 1]!.count += n;
    }
    return out;
  }

  private once(key: string, run: () => Promise<Map<string, unknown>>): Promise<Map<string, unknown>> {
    let p = this.memo.get(key);
    if (!p) {
      p = run();
      this.memo.set(key, p);
    }
    return p;
  }
}

/** Statistics of a term at one checkpoint, after making sure every sample in scope has it. */
export async function checkpointTermStats(ctx: CurationContext, checkpointId: number, args: StatsArgs): Promise<TermStatsRow> {
  const info = await checkpointInfo(ctx, checkpointId);
  const targetKey = await resolveTarget(ctx, info.datasetId, args.target);
  const subset = args.subset ?? ALL_PARAMETERS;
  await checkSubset(ctx, checkpointId, subset);
  await ensureTerms(ctx, checkpointId, requiredTerms([args.term], args.filter, targetKey, subset), scopeOf(info.datasetId, args.filter));
  const family = new StatsFamily(ctx, { term: args.term, targetKey, subset, filter: args.filter, checkpointIds: [checkpointId], classNames: info.classNames }, false);
  return family.cells()[0]!;
}

/**
 * The same statistics at each of a run's checkpoints (all, or the ones given), in step order: how
 * the distribution moves. Default histogram bounds are shared by every checkpoint so bins line up.
 */
export async function runTermStats(ctx: CurationContext, runId: number, args: StatsArgs & { checkpointIds?: number[] | null }): Promise<TermStatsRow[]> {
  const run = await ctx.loaders.runById.load(runId);
  if (!run) throw new NotFoundError('Run', runId);
  let ids = await checkpointIdsOfRun(ctx.db, runId);
  if (args.checkpointIds) {
    const wanted = new Set(args.checkpointIds);
    for (const [i, id] of args.checkpointIds.entries()) {
      if (!ids.includes(id)) throw new BadUserInputError(`Checkpoint ${id} is not a checkpoint of run ${runId}`, `checkpointIds[${i}]`);
    }
    ids = ids.filter((id) => wanted.has(id));
  }
  if (ids.length === 0) return [];
  const dataset = await ctx.loaders.datasetById.load(run.datasetId);
  const targetKey = await resolveTarget(ctx, run.datasetId, args.target);
  const subset = args.subset ?? ALL_PARAMETERS;
  const required = requiredTerms([args.term], args.filter, targetKey, subset);
  for (const id of ids) {
    await checkSubset(ctx, id, subset);
    await ensureTerms(ctx, id, required, scopeOf(run.datasetId, args.filter));
  }
  const family = new StatsFamily(ctx, { term: args.term, targetKey, subset, filter: args.filter, checkpointIds: ids, classNames: dataset?.classNames ?? [] }, false);
  return family.cells();
}

