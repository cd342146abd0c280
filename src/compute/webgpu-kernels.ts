/**
 * Kernels that tfjs-backend-webgpu 4.22 gets wrong on Dawn, wrapped around its own.
 *
 * - `MaxPoolGrad` routes a window's gradient to its last maximum (`value >= max`); the cpu
 *   backend, the wasm patch (wasm-kernels.ts) and the engine's fast path route it to the first.
 *   The positions shader is the backend's own with that one comparison changed.
 * - `AddN` of more inputs than the device's storage bindings per shader stage less one (the
 *   output): tfjs binds every input, and the default limit is 8, so a sum of the per-layer
 *   kernels of a deep model made an invalid pipeline. Such sums are taken in groups that fit.
 *
 * - Elementwise binary ops (Mul, Add, …) and Pad of rank 5 or more: their shaders index a `vec5`,
 *   which WGSL lacks (max pooling over Mantis's [n, G, T, C] routes the signal in rank 5). Axes
 *   that broadcast alike (or that are not padded) are merged first, a reshape that moves no data,
 *   so the backend's own kernel runs in rank 4 or less.
 *
 * The AddN failure is silent (a validation error on the console, wrong numbers returned), as is
 * an int32 transpose (ops/pooling.ts keeps its mask float32 for that reason): this is why the
 * compute tests run on webgpu too.
 */
import * as tf from '@tensorflow/tfjs';
import { invariant } from './invariant.js';

type TensorInfo = tf.TensorInfo;
interface WebGpuBackendLike {
  device: { limits: { maxStorageBuffersPerShaderStage: number } };
  disposeData(dataId: object): boolean;
}
interface KernelArgs {
  inputs: tf.NamedTensorInfoMap | TensorInfo[];
  backend: unknown;
  attrs?: tf.NamedAttrMap;
}
type Kernel = (args: KernelArgs) => TensorInfo;

function original(name: string): Kernel {
  const k = tf.getKernel(name, 'webgpu');
  invariant(k !== undefined, `webgpu kernel ${name} missing`);
  return k.kernelFunc as unknown as Kernel;
}

function makeAddN(addN: Kernel): Kernel {
  const sum = (ts: TensorInfo[], backend: WebGpuBackendLike): TensorInfo => {
    const most = Math.max(2, backend.device.limits.maxStorageBuffersPerShaderStage - 1);
    if (ts.length <= most) return addN({ inputs: ts, backend });
    const partial: TensorInfo[] = [];
    for (let i = 0; i < ts.length; i += most) partial.push(sum(ts.slice(i, i + most), backend));
    const out = sum(partial, backend);
    for (const p of partial) backend.disposeData(p.dataId);
    return out;
  };
  return (args) => sum(args.inputs as TensorInfo[], args.backend as WebGpuBackendLike);
}

interface Program {
  shaderKey: string;
  getUserCode(): string;
}
type RunProgram = (program: Program, ...rest: unknown[]) => TensorInfo;

const LAST_MAX = 'if (value >= currMaxValue) {';
const FIRST_MAX = 'if (maxValueFound == 0.0 || value > maxValue) {';

function makeMaxPoolGrad(maxPoolGrad: Kernel): Kernel {
  return (args) => {
    const backend = args.backend as { runWebGPUProgram: RunProgram };
    const run = backend.runWebGPUProgram;
    // The positions program is made inside the kernel; its code is amended as it is run (and
    // given its own pipeline-cache key).
    backend.runWebGPUProgram = function (this: unknown, program: Program, ...rest: unknown[]): TensorInfo {
      if (program.shaderKey.startsWith('pool2D_max_true')) {
        const code = program.getUserCode();
        invariant(code.includes(LAST_MAX), 'tfjs-backend-webgpu max-pool positions shader changed');
        program.getUserCode = () => code.replace(LAST_MAX, FIRST_MAX);
        program.shaderKey = `${program.shaderKey}_firstmax`;
      }
      return run.call(this, program, ...rest);
    };
    try {
      return maxPoolGrad(args);
    } finally {
      backend.runWebGPUProgram = run;
    }
  };
}

type Reshape = (args: { inputs: { x: TensorInfo }; backend: unknown; attrs: { shape: number[] } }) => TensorInfo;

/** Shapes of a and b broadcast against each other with alike axes merged, or null if that leaves rank > 4. */
export function mergeBroadcastAxes(aShape: readonly number[], bShape: readonly number[]): { a: number[]; b: number[]; out: number[] } | null {
  const r = Math.max(aShape.length, bShape.length);
  const pa = [...Array<number>(r - aShape.length).fill(1), ...aShape];
  const pb = [...Array<number>(r - bShape.length).fill(1), ...bShape];
  const a: number[] = [];
  const b: number[] = [];
  const out: number[] = [];
  let last = '';
  for (let i = 0; i < r; i++) {
    const o = Math.max(pa[i] as number, pb[i] as number);
    if (o === 1) continue;
    const key = `${pa[i] === o ? 1 : 0}${pb[i] === o ? 1 : 0}`;
    if (key === last) {
      const k = out.length - 1;
      out[k] = (out[k] as number) * o;
      a[k] = (a[k] as number) * (pa[i] as number);
      b[k] = (b[k] as number) * (pb[i] as number);
    } else {
      out.push(o);
      a.push(pa[i] as number);
      b.push(pb[i] as number);
      last = key;
    }
  }
  if (out.length === 0) return { a: [1], b: [1], out: [1] };
  return out.length <= 4 ? { a, b, out } : null;
}

function makeBinary(binary: Kernel, reshape: Reshape): Kernel {
  return (args) => {
    const { a, b } = args.inputs as tf.NamedTensorInfoMap;
    invariant(a !== undefined && b !== undefined, 'a binary kernel needs a and b');
    if (a.shape.length <= 4 && b.shape.length <= 4) return binary(args);
    const merged = mergeBroadcastAxes(a.shape, b.shape);
    if (merged === null) return binary(args);
    const backend = args.backend as WebGpuBackendLike;
    const a2 = reshape({ inputs: { x: a }, backend, attrs: { shape: merged.a } });
    const b2 = reshape({ inputs: { x: b }, backend, attrs: { shape: merged.b } });
    const y = binary({ ...args, inputs: { a: a2, b: b2 } });
    const outShape = tf.backend_util.assertAndGetBroadcastShape(a.shape, b.shape);
    const out = reshape({ inputs: { x: y }, backend, attrs: { shape: outShape } });
    for (const t of [a2, b2, y]) backend.disposeData(t.dataId);
    return out;
  };
}

function makePad(pad: Kernel, reshape: Reshape): Kernel {
  return (args) => {
    const x = (args.inputs as tf.NamedTensorInfoMap)['x'];
    invariant(x !== undefined, 'Pad needs x');
    if (x.shape.length <= 4) return pad(args);
    const paddings = (args.attrs as unknown as { paddings: Array<[number, number]> }).paddings;
    const shape: number[] = [];
    const pads: Array<[number, number]> = [];
    let open = false; // the last kept axis is unpadded and may take more
    x.shape.forEach((d, i) => {
      const [lo, hi] = paddings[i] as [number, number];
      if (lo === 0 && hi === 0) {
        if (open) shape[shape.length - 1] = (shape[shape.length - 1] as number) * d;
        else {
          shape.push(d);
          pads.push([0, 0]);
          open = true;
        }
      } else {
        shape.push(d);
        pads.push([lo, hi]);
        open = false;
      }
    });
    if (shape.length > 4) return pad(args);
    const backend = args.backend as WebGpuBackendLike;
    const x2 = reshape({ inputs: { x }, backend, attrs: { shape } });
    const y = pad({ ...args, inputs: { x: x2 }, attrs: { ...args.attrs, paddings: pads } });
    const outShape = x.shape.map((d, i) => d + (paddings[i] as [number, number])[0] + (paddings[i] as [number, number])[1]);
    const out = reshape({ inputs: { x: y }, backend, attrs: { shape: outShape } });
    for (const t of [x2, y]) backend.disposeData(t.dataId);
    return out;
  };
}

/** The binary kernels of tfjs-backend-webgpu that run BinaryOpProgram. */
const BINARY = ['Add', 'Sub', 'Multiply', 'RealDiv', 'Maximum', 'Minimum', 'SquaredDifference', 'Pow', 'FloorDiv', 'Mod', 'Atan2', 'Greater', 'GreaterEqual', 'Less', 'LessEqual', 'Equal', 'NotEqual', 'LogicalAnd', 'LogicalOr'];

let patched = false;

/** Replaces the kernels above on the webgpu backend (idempotent; initBackend calls it). */
export function patchWebgpuKernels(): void {
  if (patched) return;
  patched = true;
  const kernels: Array<[string, Kernel]> = [

    ['AddN', makeAddN(original('AddN'))],
    ['MaxPoolGrad', makeMaxPoolGrad(original('MaxPoolGrad'))],
    ['PadV2', makePad(original('PadV2'), original('Reshape') as unknown as Reshape)],
    ...BINARY.filter((k) => tf.getKernel(k, 'webgpu') !== undefined).map((k): [string, Kernel] => [k, makeBinary(original(k), original('Reshape') as unknown as Reshape)]),
  ];
  for (const [kernelName, kernelFunc] of kernels) {
    const prev = tf.getKernel(kernelName, 'webgpu');
    if (prev !== undefined) tf.unregisterKernel(kernelName, 'webgpu');
    tf.registerKernel({ kernelName, backendName: 'webgpu', kernelFunc: kernelFunc as unknown as tf.KernelFunc, setupFunc: prev?.setupFunc, disposeFunc: prev?.disposeFunc });
  }
}
