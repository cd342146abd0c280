/** Dispatch of the forward and backward of every op kind of the compiled graph. */
import * as tf from '@tensorflow/tfjs';
import type { Op } from '../graph.js';
import { invariant } from '../invariant.js';
import { attentionBackward, attentionForward } from './attention.js';
import { genericBackward, genericForward, genericGrads } from './generic.js';
import { activate, convBackward, convForward, convGrads, denseBackward, denseForward, denseGrads } from './linear.js';
import { expandV } from './linalg.js';
import { layerNormBackward, layerNormForward, layerNormGrads } from './norm.js';
import { globalPoolBackward, globalPoolForward, poolBackward, poolForward } from './pooling.js';
import {
  classTokenBackward,
  classTokenForward,
  classTokenGrads,
  concatBackward,
  concatForward,
  flattenBackward,
  flattenForward,
  positionForward,
  takeTokenBackward,
  takeTokenForward,
} from './structural.js';
import type { Block, Ctx, Saved } from './types.js';

export function forwardOp(op: Op, xs: tf.Tensor[]): Saved {
  const x = xs[0] as tf.Tensor;
  switch (op.kind) {
    case 'input':
      throw new Error('the input op has no forward');
    case 'identity':
      return { out: x.clone() };
    case 'dense':
      return denseForward(op, x);
    case 'conv1d':
      return convForward(op, x);
    case 'pool1d':
      return poolForward(op, x);
    case 'globalPool1d':
      return globalPoolForward(op, x);
    case 'flatten':
      return flattenForward(x);
    case 'layerNorm':
      return layerNormForward(op, x);
    case 'activation':
      return activate(op.act, x);
    case 'add':
      return { out: tf.addN(xs) };
    case 'concat':
      return concatForward(xs);
    case 'classToken':
      return classTokenForward(op, x);
    case 'position':
      return positionForward(x);
    case 'attention':
      return attentionForward(op, x);
    case 'takeToken':
      return takeTokenForward(op, x);
    case 'generic':
      return genericForward(op, xs);
  }
}

export interface BackwardResult {
  /** δ for each input, null where not needed. */
  dxs: Array<tf.Tensor | null>;
  /** J blocks of this op's weights that are in the subset. */
  blocks: Block[];
}

/**
 * Backward of one op for a class-inner signal `dy`.
 * @param need which inputs need a signal.
 * @param grads whether this op's weights are in the subset.
 */
export function backwardOp(op: Op, xs: tf.Tensor[], saved: Saved, dy: tf.Tensor, need: boolean[], grads: boolean, ctx: Ctx): BackwardResult {
  const x = xs[0] as tf.Tensor;
  const need0 = need[0] === true;
  switch (op.kind) {
    case 'input':
      return { dxs: [], blocks: [] };
    case 'identity':
    case 'position':
      return { dxs: [need0 ? dy.clone() : null], blocks: [] };
    case 'dense': {
      const [dx, dz] = denseBackward(op, saved, dy, need0);
      return { dxs: [dx], blocks: grads ? denseGrads(op, x, dz, ctx) : [] };
    }
    case 'conv1d': {
      const [dx, dz] = convBackward(op, x, saved, dy, need0);
      return { dxs: [dx], blocks: grads ? convGrads(op, x, dz, ctx) : [] };
    }
    case 'pool1d':
      return { dxs: [need0 ? poolBackward(op, x, saved, dy) : null], blocks: [] };
    case 'globalPool1d':
      return { dxs: [need0 ? globalPoolBackward(op, x, saved, dy) : null], blocks: [] };
    case 'flatten':
      return { dxs: [need0 ? flattenBackward(x, dy) : null], blocks: [] };
    case 'layerNorm':
      return {
        dxs: [need0 ? layerNormBackward(op, saved, dy) : null],
        blocks: grads ? layerNormGrads(op, saved, dy, ctx) : [],
      };
    case 'activation':
      invariant(saved.dact !== undefined, 'activation without derivative');
      return { dxs: [need0 ? tf.mul(dy, expandV(saved.dact)) : null], blocks: [] };
    case 'add':
      return { dxs: need.map((w) => (w ? dy.clone() : null)), blocks: [] };
    case 'concat':
      return { dxs: concatBackward(xs, dy).map((d, i) => (need[i] ? d : (d.dispose(), null))), blocks: [] };
    case 'classToken':
      return { dxs: [need0 ? classTokenBackward(dy) : null], blocks: grads ? classTokenGrads(op, dy, ctx) : [] };
    case 'attention':
      return { dxs: [need0 ? attentionBackward(op, saved, dy, ctx) : null], blocks: [] };
    case 'takeToken':
      return { dxs: [need0 ? takeTokenBackward(op, x, dy) : null], blocks: [] };
    case 'generic':
      return { dxs: genericBackward(op, xs, dy, need, ctx), blocks: grads ? genericGrads(op, xs, dy, ctx) : [] };
  }
}
