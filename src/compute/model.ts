/**
 * The engine's handle on a model: the tfjs layers model plus its compiled graph. Created once per
 * model (and reused across checkpoints by loading new weights into it).
 */
import type * as tf from '@tensorflow/tfjs';
import { compile } from './graph.js';
import { releaseTransposedKernels } from './ops/transposed-kernels.js';
import type { Graph } from './graph.js';

export interface EngineModel {
  readonly model: tf.LayersModel;
  readonly graph: Graph;
  /** Number of classes V. */
  readonly classes: number;
  /** [length, channels] of one sample. */
  readonly inputShape: [number, number];
  /** Number of trainable parameters P. */
  readonly parameterCount: number;
  /** Layers the fast path does not know (computed through the generic path), with reasons. */
  readonly generic: ReadonlyArray<{ layer: string; reason: string }>;
  /** Releases the model's weights. */
  dispose(): void;
}

/** Wraps an in-memory tfjs layers model (built, with one input [n, length, channels]). */
export function prepareModel(model: tf.LayersModel): EngineModel {
  const graph = compile(model);
  return {
    model,
    graph,
    classes: graph.classes,
    inputShape: graph.inputShape,
    parameterCount: graph.params.reduce((a, p) => a + p.size, 0),
    generic: graph.generic,
    dispose: () => {
      releaseTransposedKernels(graph);
      model.dispose();
    },
  };
}
