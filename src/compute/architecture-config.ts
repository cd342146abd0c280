/**
 * The rules a built-in architecture's config must satisfy to be built and run, checked without
 * building anything. The builders throw the first problem found; the service checks a model's
 * config against the data set's shape with the same rules before it writes a model or a run, so a
 * config the engine would refuse later is refused up front, with the values named.
 */
import type { Cnn1dConfig, TransformerConfig } from './architectures.js';

/** One reason a config cannot be built: the config key to blame and a message that names the values. */
export interface ConfigProblem {
  /** The key of the config (`patch`, `kernelSizes`…), or `length` etc. for the data set's shape. */
  key: string;
  message: string;
}

/** Throws the first problem as a plain Error (the engine's way); does nothing when there is none. */
export function throwFirst(problems: readonly ConfigProblem[]): void {
  if (problems.length > 0) throw new Error(problems[0]!.message);
}

/** The divisors of n in ascending order, at most `limit` of them shown (then "…"). */
export function divisorList(n: number, keep: (d: number) => boolean = () => true, limit = 12): string {
  const out: number[] = [];
  for (let d = 1; d <= n && out.length <= limit; d++) if (n % d === 0 && keep(d)) out.push(d);
  return out.length > limit ? `${out.slice(0, limit).join(', ')}, …` : out.join(', ');
}

const show = (v: unknown) => JSON.stringify(v) ?? String(v);

/** Problems with the integer `c[key]` (must be ≥ min), prefixed with the architecture's name. */
export function intProblem(arch: string, c: Record<string, unknown>, key: string, min: number): ConfigProblem[] {
  const v = c[key];
  return typeof v === 'number' && Number.isInteger(v) && v >= min ? [] : [{ key, message: `${arch}: ${key} must be an integer ≥ ${min}; got ${show(v)}` }];
}

/** A dropout rate in [0, 1) (1 would zero every activation while training). */
export function dropoutProblem(arch: string, c: Record<string, unknown>): ConfigProblem[] {
  const v = c.dropout;
  return typeof v === 'number' && v >= 0 && v < 1 ? [] : [{ key: 'dropout', message: `${arch}: dropout must be a number in [0, 1); got ${show(v)}` }];
}

/** A seed of the initial weights: any finite number (tfjs's initialisers take it as it is). */
export function seedProblem(arch: string, c: Record<string, unknown>): ConfigProblem[] {
  return typeof c.seed === 'number' && Number.isFinite(c.seed) ? [] : [{ key: 'seed', message: `${arch}: seed must be a finite number; got ${show(c.seed)}` }];
}

const positiveInts = (v: unknown): v is number[] => Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'number' && Number.isInteger(x) && x >= 1);

/**
 * cnn1d: one positive filter count and kernel size per Conv1D layer (a kernel longer than the series
 * is fine: the convolutions pad to the same length), a pool size that is an integer ≥ 0, and a
 * series long enough that pooling after every layer but the last leaves at least one time step.
 */
export function cnn1dProblems(config: Cnn1dConfig): ConfigProblem[] {
  const c = config as unknown as Record<string, unknown>;
  const out = [...shapeProblems('cnn1d', c), ...dropoutProblem('cnn1d', c), ...seedProblem('cnn1d', c), ...intProblem('cnn1d', c, 'pool', 0)];
  if (!positiveInts(c.filters)) out.push({ key: 'filters', message: `cnn1d: filters must be a non-empty list of integers ≥ 1; got ${show(c.filters)}` });
  if (!positiveInts(c.kernelSizes)) out.push({ key: 'kernelSizes', message: `cnn1d: kernelSizes must be a non-empty list of integers ≥ 1; got ${show(c.kernelSizes)}` });
  if (out.length > 0) return out;
  const { filters, kernelSizes, pool, length } = config;
  if (filters.length !== kernelSizes.length) {
    out.push({ key: 'kernelSizes', message: `cnn1d: kernelSizes has ${kernelSizes.length} entries and filters ${filters.length} (one kernel size per Conv1D layer)` });
  } else if (pool > 1) {
    // Max-pooling (stride = size, no padding) after every layer but the last: floor(L / pool) each time.
    const pools = filters.length - 1;
    let steps = length;
    for (let i = 0; i < pools; i++) steps = Math.floor(steps / pool);
    if (steps < 1) {
      out.push({
        key: 'pool',
        message: `cnn1d: length ${length} pooled by ${pool} after each of the first ${pools} Conv1D layers leaves no time step (it needs length ≥ ${pool ** pools}: use a smaller pool, pool 0, fewer layers, or resample the data set)`,
      });
    }
  }
  return out;
}

/**
 * transformer: patch tokens cut the series into whole patches (length a multiple of patch), and
 * heads split the token width evenly (dim a multiple of heads).
 */
export function transformerProblems(config: TransformerConfig): ConfigProblem[] {
  const c = config as unknown as Record<string, unknown>;
  const out = [
    ...shapeProblems('transformer', c),
    ...intProblem('transformer', c, 'patch', 1),
    ...intProblem('transformer', c, 'dim', 1),
    ...intProblem('transformer', c, 'depth', 0),
    ...intProblem('transformer', c, 'heads', 1),
    ...intProblem('transformer', c, 'mlpDim', 1),
    ...dropoutProblem('transformer', c),
    ...seedProblem('transformer', c),
  ];
  if (out.length > 0) return out;
  const { length, patch, dim, heads } = config;
  if (length % patch !== 0) {
    out.push({
      key: 'patch',
      message: `transformer: length ${length} is not a multiple of patch ${patch} (choose patch among ${divisorList(length)}, or resample the data set)`,
    });
  }
  if (dim % heads !== 0) out.push({ key: 'heads', message: `transformer: dim ${dim} is not divisible by heads ${heads} (choose heads among ${divisorList(dim)})` });
  return out;
}

/** The shape every architecture takes: length, channels and classes, positive integers. */
export function shapeProblems(arch: string, c: Record<string, unknown>): ConfigProblem[] {
  return [...intProblem(arch, c, 'length', 1), ...intProblem(arch, c, 'channels', 1), ...intProblem(arch, c, 'classes', 1)];
}
