/**
 * Exact JavaScript kernels that the tfjs wasm backend lacks or gets wrong.
 *
 * tfjs-backend-wasm 4.22 has no `Conv2DBackpropFilter` (so the gradient of any Conv1D/Conv2D
 * weight throws) and no `UnsortedSegmentSum` (the gradient of `gather`), and its `MaxPoolGrad`
 * routes the gradient wrongly for windows whose maximum is ≤ 0. The fast path never calls these,
 * but tfjs autodiff does (the generic path, a real SGD step), so they are registered here with
 * plain loops over the wasm heap. They are slow and exact, and follow the cpu backend's semantics
 * (the first maximum of a window receives the whole gradient).
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { invariant } from './invariant.js';

type TensorInfo = tf.TensorInfo;

function read(backend: BackendWasm, t: TensorInfo): Float32Array | Int32Array {
  const values = backend.readSync(t.dataId);
  invariant(values instanceof Float32Array || values instanceof Int32Array, 'numeric tensor expected');
  return values;
}

function output(backend: BackendWasm, shape: number[]): { info: TensorInfo; values: Float32Array } {
  const info = backend.makeOutput(shape, 'float32');
  const values = backend.typedArrayFromHeap(info);
  invariant(values instanceof Float32Array, 'float32 output expected');
  values.fill(0);
  return { info, values };
}

function conv2DBackpropFilter(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}): TensorInfo {
  const backend = args.backend as BackendWasm;
  const x = args.inputs['x'];
  const dy = args.inputs['dy'];
  invariant(x !== undefined && dy !== undefined, 'Conv2DBackpropFilter needs x and dy');
  const attrs = args.attrs as unknown as tf.Conv2DBackpropFilterAttrs;
  if (attrs.dataFormat !== undefined && attrs.dataFormat !== 'NHWC') {
    throw new Error('Conv2DBackpropFilter (wasm, JS kernel): only NHWC is supported');
  }
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number],
    attrs.filterShape as [number, number, number, number],
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
    false,
    'channelsLast',
  );
  const xs = read(backend, x);
  const dys = read(backend, dy);
  const { info: out, values: dw } = output(backend, attrs.filterShape as number[]);
  const [, inH, inW, inC] = x.shape as [number, number, number, number];
  const { batchSize, outHeight, outWidth, outChannels, strideHeight, strideWidth } = info;
  const { filterHeight, filterWidth, dilationHeight, dilationWidth } = info;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  for (let fr = 0; fr < filterHeight; fr++) {
    for (let fc = 0; fc < filterWidth; fc++) {
      for (let b = 0; b < batchSize; b++) {
        for (let yr = 0; yr < outHeight; yr++) {
          const xr = yr * strideHeight + fr * dilationHeight - top;
          if (xr < 0 || xr >= inH) continue;
          for (let yc = 0; yc < outWidth; yc++) {
            const xc = yc * strideWidth + fc * dilationWidth - left;
            if (xc < 0 || xc >= inW) continue;
            const xBase = ((b * inH + xr) * inW + xc) * inC;
            const dyBase = ((b * outHeight + yr) * outWidth + yc) * outChannels;
            for (let d1 = 0; d1 < inC; d1++) {
              const xv = xs[xBase + d1] as number;
              if (xv === 0) continue;
              const wBase = ((fr * filterWidth + fc) * inC + d1) * outChannels;
              for (let d2 = 0; d2 < outChannels; d2++) {
                dw[wBase + d2] = (dw[wBase + d2] as number) + xv * (dys[dyBase + d2] as number);
              }
            }
          }
        }
      }
    }
  }
  return out;
}

function maxPoolGrad(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}): TensorInfo {
  const backend = args.backend as BackendWasm;
  const dy = args.inputs['dy'];
  const input = args.inputs['input'];
  invariant(dy !== undefined && input !== undefined, 'MaxPoolGrad needs dy and input');
  const attrs = args.attrs as unknown as tf.MaxPoolGradAttrs;
  const info = tf.backend_util.computePool2DInfo(
    input.shape as [number, number, number, number],
    attrs.filterSize,
    attrs.strides,
    1,
    attrs.pad,
    attrs.dimRoundingMode,
  );
  const xs = read(backend, input);
  const dys = read(backend, dy);
  const { info: out, values: dx } = output(backend, input.shape);
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth } = info;
  const { strideHeight, strideWidth, effectiveFilterHeight, effectiveFilterWidth } = info;
  const { dilationHeight, dilationWidth } = info;
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  for (let b = 0; b < batchSize; b++) {
    for (let d = 0; d < inChannels; d++) {
      for (let yr = 0; yr < outHeight; yr++) {
        const r0 = yr * strideHeight - top;
        for (let yc = 0; yc < outWidth; yc++) {
          const c0 = yc * strideWidth - left;
          let best = Number.NEGATIVE_INFINITY;
          let where = -1;
          for (let r = r0; r < r0 + effectiveFilterHeight; r += dilationHeight) {
            if (r < 0 || r >= inHeight) continue;
            for (let c = c0; c < c0 + effectiveFilterWidth; c += dilationWidth) {
              if (c < 0 || c >= inWidth) continue;
              const at = ((b * inHeight + r) * inWidth + c) * inChannels + d;
              const v = xs[at] as number;
              if (v > best || where < 0) {
                best = v;
                where = at;
              }
            }
          }
          if (where >= 0) {
            const g = dys[((b * outHeight + yr) * outWidth + yc) * inChannels + d] as number;
            dx[where] = (dx[where] as number) + g;
          }
        }
      }
    }
  }
  return out;
}

function unsortedSegmentSum(args: {
  inputs: tf.NamedTensorInfoMap;
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}): TensorInfo {
  const backend = args.backend as BackendWasm;
  const x = args.inputs['x'];
  const ids = args.inputs['segmentIds'];
  invariant(x !== undefined && ids !== undefined, 'UnsortedSegmentSum needs x and segmentIds');
  if (x.dtype !== 'float32') throw new Error('UnsortedSegmentSum (wasm, JS kernel): float32 only');
  const numSegments = (args.attrs as unknown as tf.UnsortedSegmentSumAttrs).numSegments;
  const xs = read(backend, x);
  const seg = read(backend, ids);
  const inner = x.shape.slice(ids.shape.length).reduce((a, b) => a * b, 1);
  const { info: out, values } = output(backend, [numSegments, ...x.shape.slice(ids.shape.length)]);
  for (let i = 0; i < seg.length; i++) {
    const s = seg[i] as number;
    if (s < 0 || s >= numSegments) continue;
    for (let j = 0; j < inner; j++) {
      values[s * inner + j] = (values[s * inner + j] as number) + (xs[i * inner + j] as number);
    }
  }
  return out;
}

let patched = false;

/**
 * Registers the exact JS kernels above for the `wasm` backend (idempotent). Call before the wasm
 * backend runs any gradient; `initBackend` does it.
 */
export function patchWasmKernels(): void {
  if (patched) return;
  patched = true;
  const kernels: Array<[string, tf.KernelFunc]> = [
    ['Conv2DBackpropFilter', conv2DBackpropFilter as tf.KernelFunc],
    ['MaxPoolGrad', maxPoolGrad as tf.KernelFunc],
    ['UnsortedSegmentSum', unsortedSegmentSum as tf.KernelFunc],
  ];
  for (const [kernelName, kernelFunc] of kernels) {
    if (tf.getKernel(kernelName, 'wasm') !== undefined) tf.unregisterKernel(kernelName, 'wasm');
    tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc });
  }
}
