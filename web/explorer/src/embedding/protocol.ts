/** Messages between the embedding worker and the page, and the helpers both sides use. */

export interface EmbedRequest {
  id: number;
  /** n series of d values each, row-major. */
  data: Float32Array;
  n: number;
  d: number;
  seed: number;
  nNeighbors: number;
  nEpochs: number;
}

export type EmbedMessage =
  | { id: number; kind: 'progress'; done: number; total: number }
  | { id: number; kind: 'done'; xy: Float32Array }
  | { id: number; kind: 'error'; message: string };

/** A seeded uniform [0, 1) source (mulberry32): small, fast, and enough for sampling and UMAP's init. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Each series to zero mean and unit variance (a flat series to zeros), as UCR time-series work
 * compares shapes rather than offsets and scales.
 */
export function zNormalise(values: ArrayLike<number>): number[] {
  const n = values.length;
  let mean = 0;
  for (let i = 0; i < n; i++) mean += values[i]!;
  mean /= n || 1;
  let variance = 0;
  for (let i = 0; i < n; i++) variance += (values[i]! - mean) ** 2;
  const sd = Math.sqrt(variance / (n || 1));
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) out[i] = sd > 1e-12 ? (values[i]! - mean) / sd : 0;
  return out;
}

/**
 * A seeded subsample of `count` positions out of `total` (all of them when total ≤ count), in
 * ascending order: a partial Fisher–Yates shuffle, so the same seed picks the same samples.
 */
export function seededSubsample(total: number, count: number, seed: number): number[] {
  if (total <= count) return Array.from({ length: total }, (_, i) => i);
  const random = mulberry32(seed);
  const order = new Int32Array(total);
  for (let i = 0; i < total; i++) order[i] = i;
  for (let i = 0; i < count; i++) {
    const j = i + Math.floor(random() * (total - i));
    const t = order[i]!;
    order[i] = order[j]!;
    order[j] = t;
  }
  return Array.from(order.subarray(0, count)).sort((a, b) => a - b);
}
