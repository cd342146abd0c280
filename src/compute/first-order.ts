/**
 * The first-order prediction (docs/concepts.md): after one SGD step of rate η on the loss of (x_u, y_u),
 * Δlog π(·|x_o) ≈ −η A(x_o) K(x_o, x_u) G(x_u, y_u). For several x_u the step is on their mean
 * loss, so the prediction averages over them.
 */
import type { RunInfo } from './engine.js';
import { crossKernel } from './cross.js';
import type { CrossKernelOptions, CrossKernelResult } from './cross.js';
import type { EngineModel } from './model.js';
import { softmaxRow } from './terms.js';

export interface FirstOrderInput {
  /** Observed samples x_o, [no, length, channels]. */
  xo: Float32Array;
  /** Update samples x_u, [nu, length, channels], and their labels. */
  xu: Float32Array;
  yu: ArrayLike<number>;
  /** SGD learning rate η. */
  eta: number;
  /** The step's loss over x_u: 'mean' (default, as a batch) or 'sum'. */
  reduction?: 'mean' | 'sum';
}

export interface FirstOrderResult {
  /** Predicted Δz(x_o) = −η Σ_u w K(x_o, x_u) G(x_u, y_u), [no, V]. */
  deltaLogits: Float32Array;
  /** Predicted Δlog π(·|x_o) = A(x_o) Δz(x_o), [no, V]. */
  deltaLogProbs: Float32Array;
  info: RunInfo;
}

/**
 * Predicted change of log π(·|x_o) after one SGD step of rate η on (x_u, y_u):
 * −η A(x_o) K(x_o, x_u) G(x_u, y_u), averaged over x_u (a mean-loss batch step) unless
 * `reduction: 'sum'`. Returns [no, V] arrays of Δz and Δlog π.
 */
export async function firstOrder(m: EngineModel, input: FirstOrderInput, opts: Omit<CrossKernelOptions, 'returnK'> = {}): Promise<FirstOrderResult> {
  if (!Number.isFinite(input.eta)) throw new Error('eta must be a finite number');
  const cross = await crossKernel(m, input.xo, input.xu, { ...opts, returnK: true });
  return firstOrderFromKernel(cross, input);
}

/** −η A(x_o) K(x_o, x_u) G(x_u, y_u) from a computed cross kernel (float64 arithmetic). */
export function firstOrderFromKernel(cross: CrossKernelResult, input: Pick<FirstOrderInput, 'yu' | 'eta' | 'reduction'>): FirstOrderResult {
  const { yu, eta } = input;
  if (!Number.isFinite(eta)) throw new Error('eta must be a finite number');
  const { no, nu, V } = cross;
  const K = cross.K;
  if (K === undefined) throw new Error('firstOrder needs the full cross kernel');
  if (yu.length !== nu) throw new Error(`${yu.length} labels for ${nu} update samples`);
  const weight = -eta / (input.reduction === 'sum' ? 1 : nu);
  const G = new Float64Array(nu * V);
  const pi = new Float64Array(V);
  for (let u = 0; u < nu; u++) {
    const y = yu[u] as number;
    if (!Number.isInteger(y) || y < 0 || y >= V) throw new Error(`label ${y} of update sample ${u} is not in [0, ${V})`);
    softmaxRow(cross.logitsU, u * V, V, pi);
    for (let j = 0; j < V; j++) G[u * V + j] = (pi[j] as number) - (j === y ? 1 : 0);
  }
  const deltaLogits = new Float32Array(no * V);
  const deltaLogProbs = new Float32Array(no * V);
  const dz = new Float64Array(V);
  for (let o = 0; o < no; o++) {
    dz.fill(0);
    for (let u = 0; u < nu; u++) {
      const base = (o * nu + u) * V * V;
      for (let i = 0; i < V; i++) {
        let s = 0;
        for (let j = 0; j < V; j++) s += (K[base + i * V + j] as number) * (G[u * V + j] as number);
        dz[i] = (dz[i] as number) + weight * s;
      }
    }
    // A = I − 1πᵀ, so (A Δz)_i = Δz_i − πᵀΔz.
    softmaxRow(cross.logitsO, o * V, V, pi);
    let mean = 0;
    for (let j = 0; j < V; j++) mean += (pi[j] as number) * (dz[j] as number);
    for (let i = 0; i < V; i++) {
      deltaLogits[o * V + i] = dz[i] as number;
      deltaLogProbs[o * V + i] = (dz[i] as number) - mean;
    }
  }
  return { deltaLogits, deltaLogProbs, info: cross.info };
}
