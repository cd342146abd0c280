/**
 * Exact JavaScript kernels that the tfjs wasm backend lacks or gets wrong.
 *
 * tfjs-backend-wasm 4.22 has no `Conv2DBackpropFilter` (so the gradient of any Conv1D/Conv2D
 * weight throws) and no `UnsortedSegmentSum` (the gradient of `gather`), and its `MaxPoolGrad`
 * routes the gradient wrongly for windows whose maximum is ≤ 0. The fast path never calls these,
 * but tfjs autodiff does (the generic path, a real SGD step), so they are registered here with
 * plain loops over the wasm heap. They are slow and exact, and follow the cpu backend's semantics
 * (the first maximum of a window receives the whole gradient).
 *
 * Slice, Unpack and SplitV are replaced too, for speed only: the originals copy the whole input
 * per part.
 * So is Identity (`clone`): the original copies the buffer, where the cpu backend shares it (tfjs
 * tensors are immutable, so a clone only needs a reference).
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { invariant } from './invariant.js';
import { registerSimdKernels } from './kernels/simd.js';

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

/**
 * Copies x[begin : begin + size] from one heap view into another, contiguous runs at a time.
 * tfjs-backend-wasm's own Slice reads the whole input through `readSync` (a copy of the entire
 * tensor) on every call, so `unstack` of n samples copied the chunk n times; this reads a view.
 */
function copySlice(xv: ArrayLike<number> & { subarray(a: number, b: number): ArrayLike<number> }, shape: number[], begin: number[], size: number[], out: { set(a: ArrayLike<number>, o: number): void }): void {
  const rank = shape.length;
  const strides = new Array<number>(rank);
  let acc = 1;
  for (let i = rank - 1; i >= 0; i--) {
    strides[i] = acc;
    acc *= shape[i] as number;
  }
  // The innermost axes taken whole form one contiguous run with the first partial axis above them.
  let inner = rank - 1;
  while (inner > 0 && size[inner] === shape[inner] && begin[inner] === 0) inner--;
  const run = (size[inner] as number) * (strides[inner] as number);
  const outer = size.slice(0, inner).reduce((a, b) => a * b, 1);
  const idx = new Array<number>(inner).fill(0);
  let o = 0;
  for (let k = 0; k < outer; k++) {
    let off = (begin[inner] as number) * (strides[inner] as number);
    for (let d = 0; d < inner; d++) off += ((begin[d] as number) + (idx[d] as number)) * (strides[d] as number);
    out.set(xv.subarray(off, off + run), o);
    o += run;
    for (let d = inner - 1; d >= 0; d--) {
      idx[d] = (idx[d] as number) + 1;
      if ((idx[d] as number) < (size[d] as number)) break;
      idx[d] = 0;
    }
  }
}

function sliceInfo(backend: BackendWasm, x: TensorInfo, begin: number[], size: number[]): TensorInfo {
  const out = backend.makeOutput(size, x.dtype);
  if (size.some((s) => s === 0)) return out;
  // Views are taken after the allocation, which may grow (and detach) the heap.
  const xv = backend.typedArrayFromHeap(x);
  const ov = backend.typedArrayFromHeap(out);
  copySlice(xv, x.shape, begin, size, ov);
  return out;
}

function makeSlice(original: tf.KernelFunc) {
  return (args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): TensorInfo | TensorInfo[] => {
    const x = args.inputs['x'];
    invariant(x !== undefined, 'Slice needs x');
    if (x.dtype === 'string') return original(args as Parameters<tf.KernelFunc>[0]);
    const { begin, size } = args.attrs as unknown as tf.SliceAttrs;
    const [b, s] = tf.slice_util.parseSliceParams(x, begin, size);
    invariant(b !== undefined && s !== undefined, 'slice parameters');
    return sliceInfo(args.backend as BackendWasm, x, b, s);
  };
}

function makeUnpack(original: tf.KernelFunc) {
  return (args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): TensorInfo | TensorInfo[] => {
    const value = args.inputs['value'];
    invariant(value !== undefined, 'Unpack needs value');
    if (value.dtype === 'string') return original(args as Parameters<tf.KernelFunc>[0]);
    let axis = (args.attrs as unknown as tf.UnpackAttrs).axis;
    if (axis < 0) axis += value.shape.length;
    const outShape = value.shape.filter((_, i) => i !== axis);
    const size = value.shape.slice();
    size[axis] = 1;
    const outs: TensorInfo[] = [];
    for (let i = 0; i < (value.shape[axis] as number); i++) {
      const begin = value.shape.map((_, d) => (d === axis ? i : 0));
      const o = sliceInfo(args.backend as BackendWasm, value, begin, size);
      outs.push({ dataId: o.dataId, dtype: o.dtype, shape: outShape });
    }
    return outs;
  };
}

function makeSplitV(original: tf.KernelFunc) {
  return (args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): TensorInfo | TensorInfo[] => {
    const x = args.inputs['x'];
    invariant(x !== undefined, 'SplitV needs x');
    if (x.dtype === 'string') return original(args as Parameters<tf.KernelFunc>[0]);
    const { numOrSizeSplits, axis } = args.attrs as unknown as tf.SplitVAttrs;
    const ax = tf.util.parseAxisParam(axis, x.shape)[0] as number;
    const sizes = tf.backend_util.prepareSplitSize(x, numOrSizeSplits, ax);
    const begin = x.shape.map(() => 0);
    return sizes.map((s) => {
      const size = x.shape.slice();
      size[ax] = s;
      const part = sliceInfo(args.backend as BackendWasm, x, begin.slice(), size);
      begin[ax] = (begin[ax] as number) + s;
      return part;
    });
  };
}

function makeIdentity(original: tf.KernelFunc) {
  return (args: { inputs: tf.NamedTensorInfoMap; backend: unknown; attrs?: tf.NamedAttrMap }): TensorInfo | TensorInfo[] => {
    const x = args.inputs['x'];
    invariant(x !== undefined, 'Identity needs x');
    if (x.dtype === 'string') return original(args as Parameters<tf.KernelFunc>[0]);
    (args.backend as BackendWasm).incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
  };
}

let patched = false;

/**
 * Registers the exact JS kernels above, and the engine's SIMD kernels (kernels/simd.ts), for the
 * `wasm` backend (idempotent). Call before the wasm backend runs any gradient; `initBackend` does it.
 */
export function patchWasmKernels(): void {
  if (patched) return;
  patched = true;
  registerSimdKernels();
  const original = (name: string): tf.KernelFunc => {
    const k = tf.getKernel(name, 'wasm');
    invariant(k !== undefined, `wasm kernel ${name} missing`);
    return k.kernelFunc;
  };
  const kernels: Array<[string, tf.KernelFunc]> = [
    ['Conv2DBackpropFilter', conv2DBackpropFilter as tf.KernelFunc],
    ['MaxPoolGrad', maxPoolGrad as tf.KernelFunc],
    ['UnsortedSegmentSum', unsortedSegmentSum as tf.KernelFunc],
    ['Slice', makeSlice(original('Slice')) as tf.KernelFunc],
    ['Unpack', makeUnpack(original('Unpack')) as tf.KernelFunc],
    ['SplitV', makeSplitV(original('SplitV')) as tf.KernelFunc],
    ['Identity', makeIdentity(original('Identity')) as tf.KernelFunc],
  ];
  for (const [kernelName, kernelFunc] of kernels) {
    const prev = tf.getKernel(kernelName, 'wasm');
    if (prev !== undefined) tf.unregisterKernel(kernelName, 'wasm');
    tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc, setupFunc: prev?.setupFunc, disposeFunc: prev?.disposeFunc });
  }
}
