/** Dispatch of the forward and backward of every op kind of the compiled graph. */
import * as tf from '@tensorflow/tfjs';
import type { Op } from '../graph.js';
import { attentionBackward, attentionForward } from './attention.js';
import { genericBackward, genericForward, genericGrads } from './generic.js';
import { activate, convBackward, convForward, convGrads, denseBackward, denseForward, denseGrads, throughActivation } from './linear.js';
import { cloneSignal, disposeSignal, materialize } from './signal.js';
import { batchNormBackward, batchNormForward, batchNormGrads, layerNormBackward, layerNormForward, layerNormGrads } from './norm.js';
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
import {
  channelSeriesBackward,
  channelSeriesForward,
  scalarEncoderBackward,
  scalarEncoderForward,
  scalarEncoderGrads,
  seriesNormBackward,
  seriesNormForward,
  stopGradientForward,
} from './series.js';
import type { Block, Ctx, Saved, Signal } from './types.js';

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
    case 'batchNorm':
      return batchNormForward(op, x);
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
    case 'channelSeries':
      return channelSeriesForward(x);
    case 'seriesNorm':
      return seriesNormForward(op, x);
    case 'stopGradient':
      return stopGradientForward(op, x);
    case 'scalarEncoder':
      return scalarEncoderForward(op, x);
    case 'generic':
      return genericForward(op, xs);
  }
}

export interface BackwardResult {
  /** δ for each input, null where not needed. */
  dxs: Array<Signal | null>;
  /** J blocks of this op's weights that are in the subset. */
  blocks: Block[];
}

/**
 * Backward of one op for a class-inner signal `dy`.
 * @param need which inputs need a signal.
 * @param grads whether this op's weights are in the subset.
 */
export function backwardOp(op: Op, xs: tf.Tensor[], saved: Saved, dy: Signal, need: boolean[], grads: boolean, ctx: Ctx): BackwardResult {
  const x = xs[0] as tf.Tensor;
  const need0 = need[0] === true;
  // Ops that mix channels or move the class axis take the materialised signal.
  const d = () => materialize(dy);
  switch (op.kind) {
    case 'input':
      return { dxs: [], blocks: [] };
    case 'identity':
    case 'position':
      return { dxs: [need0 ? cloneSignal(dy) : null], blocks: [] };
    case 'dense': {
      const [dx, dz] = denseBackward(op, saved, dy, need0);
      const blocks = grads ? denseGrads(op, x, dz, ctx) : [];
      if (dz !== dy) disposeSignal(dz); // blocks and dx hold their own tensors
      return { dxs: [dx], blocks };
    }
    case 'conv1d': {
      const [dx, dz] = convBackward(op, x, saved, dy, need0);
      const blocks = grads ? convGrads(op, x, dz, ctx) : [];
      if (dz !== dy) disposeSignal(dz);
      return { dxs: [dx], blocks };
    }
    case 'pool1d':
      return { dxs: [need0 ? poolBackward(op, x, saved, dy) : null], blocks: [] };
    case 'globalPool1d':
      return { dxs: [need0 ? globalPoolBackward(op, x, saved, dy) : null], blocks: [] };
    case 'flatten':
      return { dxs: [need0 ? flattenBackward(x, d()) : null], blocks: [] };
    case 'layerNorm':
      return {
        dxs: [need0 ? layerNormBackward(op, saved, d()) : null],
        blocks: grads ? layerNormGrads(op, saved, d(), ctx) : [],
      };
    case 'batchNorm':
      return { dxs: [need0 ? batchNormBackward(op, dy) : null], blocks: grads ? batchNormGrads(op, saved, dy, ctx) : [] };
    case 'activation':
      return { dxs: [need0 ? throughActivation(op.act, saved, dy) : null], blocks: [] };
    case 'add':
      return { dxs: need.map((w) => (w ? cloneSignal(dy) : null)), blocks: [] };
    case 'concat':
      return { dxs: concatBackward(xs, d()).map((t, i) => (need[i] ? t : (t.dispose(), null))), blocks: [] };
    case 'classToken':
      return { dxs: [need0 ? classTokenBackward(d()) : null], blocks: grads ? classTokenGrads(op, d(), ctx) : [] };
    case 'attention':
      return { dxs: [need0 ? attentionBackward(op, saved, d(), ctx) : null], blocks: [] };
    case 'takeToken':
      return { dxs: [need0 ? takeTokenBackward(op, x, d()) : null], blocks: [] };
    case 'channelSeries':
      return { dxs: [need0 ? channelSeriesBackward(d()) : null], blocks: [] };
    case 'seriesNorm':
      return { dxs: [need0 ? seriesNormBackward(saved, d()) : null], blocks: [] };
    case 'stopGradient':
      return { dxs: [null], blocks: [] };
    case 'scalarEncoder':
      return {
        dxs: [need0 ? scalarEncoderBackward(op, saved, d(), ctx) : null],
        blocks: grads ? scalarEncoderGrads(op, saved, d(), ctx) : [],
      };
    case 'generic':
      return { dxs: genericBackward(op, xs, d(), need, ctx), blocks: grads ? genericGrads(op, xs, d(), ctx) : [] };
  }
}
