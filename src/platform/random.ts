/**
 * A small seeded PRNG (mulberry32): uniform floats in [0, 1). Written out rather than taken from a
 * package because it is ten lines, and the same seed must give the same stream in every thread and
 * process (training plans, test data, benchmarks), whatever a dependency's version does.
 */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
