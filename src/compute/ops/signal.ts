/** Helpers for backprop signals that may be separable (see `Separable`). */
import * as tf from '@tensorflow/tfjs';
import type { Separable, Signal } from './types.js';

export function isSeparable(s: Signal): s is Separable {
  return !(s instanceof tf.Tensor);
}

/** The class-inner tensor [n, ...positions, V, C] of a signal (cached on separable ones). */
export function materialize(s: Signal): tf.Tensor {
  if (!isSeparable(s)) return s;
  if (s.dense === undefined) {
    const [V, C] = s.u.shape as [number, number];
    const ms = s.m.shape;
    const m = tf.reshape(s.m, [...ms.slice(0, -1), 1, ms[ms.length - 1] as number]);
    s.dense = tf.mul(m, tf.reshape(s.u, [...ms.slice(0, -1).map(() => 1), V, C]));
  }
  return s.dense;
}

/** m with its channel axis at full width C. */
export function fullM(s: Separable): tf.Tensor {
  const C = s.u.shape[1] as number;
  const ms = s.m.shape;
  return ms[ms.length - 1] === C ? s.m : tf.mul(s.m, tf.ones([...ms.slice(0, -1).map(() => 1), C]));
}

export function cloneSignal(s: Signal): Signal {
  return isSeparable(s) ? { kind: 'separable', m: s.m.clone(), u: s.u.clone() } : s.clone();
}

export function disposeSignal(s: Signal): void {
  if (isSeparable(s)) tf.dispose([s.m, s.u, ...(s.dense === undefined ? [] : [s.dense])]);
  else s.dispose();
}

/** Sum of two signals arriving at the same op (materialised unless they share u). */
export function addSignals(a: Signal, b: Signal): Signal {
  if (isSeparable(a) && isSeparable(b) && a.u.dataId === b.u.dataId) return { kind: 'separable', m: tf.add(a.m, b.m), u: a.u.clone() };
  return tf.add(materialize(a), materialize(b));
}
