/**
 * The terms that depend on the logits only (docs/concepts.md): π, loss, correct, A, H, G and their
 * norms. Plain float64 JavaScript over [n, V] logits; no tensors.
 */

/** Per-sample output terms; arrays are sample-major. */
export interface OutputTerms {
  n: number;
  V: number;
  /** z, [n, V]. */
  logits: Float32Array;
  /** π = softmax(z), [n, V]. */
  probs: Float32Array;
  /** ‖A‖_F = √(V‖π‖² + V − 2), [n]. */
  aNorm: Float32Array;
  /** Tr H = 1 − ‖π‖², [n]. */
  hTrace: Float32Array;
  /**
   * Smallest eigenvalue of H on the subspace orthogonal to 1, [n]. H·1 = 0 always (shifting all
   * logits changes nothing), so on all of R^V the smallest eigenvalue is exactly 0; this is the
   * curvature left in every direction that does change π.
   */
  hMinEig: Float32Array;
  /** With labels: −log π_y, [n]. */
  loss?: Float32Array;
  /** With labels: argmax z = y (first maximum), [n]. */
  correct?: Uint8Array;
  /** With labels: ‖G‖ = ‖π − e_y‖ (the EL2N score), [n]. */
  gNorm?: Float32Array;
  /** With labels and `matrices`: G = π − e_y, [n, V]. */
  G?: Float32Array;
  /** With `matrices`: A = I − 1πᵀ, [n, V, V]. */
  A?: Float32Array;
  /** With `matrices`: H = diag(π) − ππᵀ, [n, V, V]. */
  H?: Float32Array;
}

/** Softmax of one row in float64. */
export function softmaxRow(z: ArrayLike<number>, offset: number, V: number, out: Float64Array): void {
  let max = -Infinity;
  for (let j = 0; j < V; j++) max = Math.max(max, z[offset + j] as number);
  let sum = 0;
  for (let j = 0; j < V; j++) {
    const e = Math.exp((z[offset + j] as number) - max);
    out[j] = e;
    sum += e;
  }
  for (let j = 0; j < V; j++) out[j] = (out[j] as number) / sum;
}

/**
 * Smallest eigenvalue of diag(π) − ππᵀ orthogonal to 1: the root of the secular equation
 * 1 = Σ π_i² / (π_i − λ) between the two smallest probabilities (eigenvalues of a rank-one
 * downdate interlace with the diagonal; the root below the smallest one is λ = 0).
 */
export function hMinEigOrth(pi: ArrayLike<number>, V: number): number {
  if (V < 2) return 0;
  const p = Array.from({ length: V }, (_, i) => pi[i] as number).sort((a, b) => a - b);
  const lo0 = p[0] as number;
  const hi0 = p[1] as number;
  if (lo0 <= 0) return 0; // a zero probability leaves a second null direction
  if (hi0 - lo0 <= 1e-15 * hi0) return lo0; // repeated smallest probability is itself an eigenvalue
  const f = (lambda: number) => {
    let s = 0;
    for (const q of p) s += (q * q) / (q - lambda);
    return 1 - s;
  };
  let lo = lo0;
  let hi = hi0;
  for (let it = 0; it < 200 && hi - lo > 1e-17; it++) {
    const mid = 0.5 * (lo + hi);
    if (mid <= lo || mid >= hi) break;
    if (f(mid) > 0) lo = mid;
    else hi = mid;
  }
  return 0.5 * (lo + hi);
}

/**
 * Computes the output terms from logits.
 * @param logits [n, V], sample-major.
 * @param labels optional class index per sample (0 ≤ y < V).
 * @param matrices also return A and H (n·V² floats each) and G.
 */
export function outputTerms(
  logits: Float32Array,
  V: number,
  labels?: ArrayLike<number>,
  matrices = false,
): OutputTerms {
  if (V < 1 || logits.length % V !== 0) throw new Error(`logits length ${logits.length} is not a multiple of V = ${V}`);
  const n = logits.length / V;
  if (labels !== undefined && labels.length !== n) throw new Error(`${labels.length} labels for ${n} samples`);
  const probs = new Float32Array(n * V);
  const aNorm = new Float32Array(n);
  const hTrace = new Float32Array(n);
  const hMinEig = new Float32Array(n);
  const withLabels = labels !== undefined;
  const loss = withLabels ? new Float32Array(n) : undefined;
  const correct = withLabels ? new Uint8Array(n) : undefined;
  const gNorm = withLabels ? new Float32Array(n) : undefined;
  const G = withLabels && matrices ? new Float32Array(n * V) : undefined;
  const A = matrices ? new Float32Array(n * V * V) : undefined;
  const H = matrices ? new Float32Array(n * V * V) : undefined;
  const pi = new Float64Array(V);
  for (let s = 0; s < n; s++) {
    const o = s * V;
    softmaxRow(logits, o, V, pi);
    let sq = 0;
    for (let j = 0; j < V; j++) {
      const pj = pi[j] as number;
      probs[o + j] = pj;
      sq += pj * pj;
    }
    aNorm[s] = Math.sqrt(Math.max(V * sq + V - 2, 0));
    hTrace[s] = 1 - sq;
    hMinEig[s] = hMinEigOrth(pi, V);
    if (A !== undefined && H !== undefined) {
      for (let i = 0; i < V; i++) {
        for (let j = 0; j < V; j++) {
          const pj = pi[j] as number;
          A[(s * V + i) * V + j] = (i === j ? 1 : 0) - pj;
          H[(s * V + i) * V + j] = (i === j ? pj : 0) - (pi[i] as number) * pj;
        }
      }
    }
    if (labels !== undefined && loss !== undefined && correct !== undefined && gNorm !== undefined) {
      const y = labels[s] as number;
      if (!Number.isInteger(y) || y < 0 || y >= V) throw new Error(`label ${y} of sample ${s} is not in [0, ${V})`);
      let max = -Infinity;
      let arg = 0;
      for (let j = 0; j < V; j++) {
        const zj = logits[o + j] as number;
        if (zj > max) {
          max = zj;
          arg = j;
        }
      }
      let lse = 0;
      for (let j = 0; j < V; j++) lse += Math.exp((logits[o + j] as number) - max);
      loss[s] = Math.log(lse) + max - (logits[o + y] as number);
      correct[s] = arg === y ? 1 : 0;
      let g2 = 0;
      for (let j = 0; j < V; j++) {
        const g = (pi[j] as number) - (j === y ? 1 : 0);
        g2 += g * g;
        if (G !== undefined) G[o + j] = g;
      }
      gNorm[s] = Math.sqrt(g2);
    }
  }
  return { n, V, logits, probs, aNorm, hTrace, hMinEig, loss, correct, gNorm, G, A, H };
}
