/**
 * The WebGPU backend: `@tensorflow/tfjs-backend-webgpu` on Dawn's Node.js binding (the `webgpu`
 * package, whose `dawn.node` binaries ship inside the npm package: nothing is downloaded at
 * install). Dawn loads the system's Vulkan loader (`libvulkan.so.1`) when an adapter is asked
 * for, not when the module loads, so on a machine without Vulkan the import works and
 * `requestAdapter()` answers null: the backend is then skipped with that reason.
 *
 * A software adapter (Mesa's lavapipe/llvmpipe, SwiftShader) runs every kernel correctly but far
 * slower than wasm, so `auto` passes it over; `TANGENT_BACKEND=webgpu` takes it (the tests do).
 */
import * as tf from '@tensorflow/tfjs';
import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { patchWebgpuKernels } from './webgpu-kernels.js';

/** The few parts of the WebGPU API used here (lib "dom" is not in this project's tsconfig). */
interface GpuAdapterInfo {
  vendor?: string;
  architecture?: string;
  device?: string;
  description?: string;
  isFallbackAdapter?: boolean;
}
interface GpuAdapter {
  info?: GpuAdapterInfo;
  isFallbackAdapter?: boolean;
  limits: { maxBufferSize: number; maxStorageBufferBindingSize: number };
}
interface Gpu {
  requestAdapter(options?: { powerPreference?: 'high-performance' | 'low-power' }): Promise<GpuAdapter | null>;
}

/** The adapter the WebGPU backend runs on, as `serverInfo.backend.adapter` reports it. */
export interface WebGpuAdapter {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** A CPU implementation of the API (lavapipe, SwiftShader): correct, not fast. */
  software: boolean;
  /** The largest buffer the adapter allows, bytes. */
  maxBufferSize: number;
  /** The largest storage binding, bytes: one tensor of tfjs-backend-webgpu is one such binding. */
  maxStorageBufferBindingSize: number;
}

let gpu: Promise<Gpu> | undefined;

/**
 * Dawn's `GPU`, made once per thread and set as `navigator.gpu` (Node 20 has no `navigator`;
 * Node 21+ has one without `gpu`): tfjs-backend-webgpu registers itself only when it finds
 * `navigator.gpu` at import.
 */
function dawn(): Promise<Gpu> {
  gpu ??= (async () => {
    // Non-literal specifier: the package's types declare the DOM's WebGPU globals, which this
    // project's lib does not have.
    const pkg = 'webgpu';
    const { create, globals } = (await import(pkg)) as { create: (flags: string[]) => Gpu; globals: Record<string, unknown> };
    for (const [k, v] of Object.entries(globals)) if (!(k in globalThis)) (globalThis as Record<string, unknown>)[k] = v;
    const g = create([]);
    const nav = (globalThis as { navigator?: Record<string, unknown> }).navigator;
    if (nav === undefined) (globalThis as { navigator?: unknown }).navigator = { gpu: g };
    else if (nav['gpu'] === undefined) Object.defineProperty(nav, 'gpu', { value: g, configurable: true });
    return g;
  })();
  return gpu;
}

function describe(a: GpuAdapter): WebGpuAdapter {
  const info = a.info ?? {};
  const text = `${info.vendor ?? ''} ${info.architecture ?? ''} ${info.device ?? ''} ${info.description ?? ''}`;
  return {
    vendor: info.vendor ?? '',
    architecture: info.architecture ?? '',
    device: info.device ?? '',
    description: info.description ?? '',
    software: info.isFallbackAdapter === true || a.isFallbackAdapter === true || /llvmpipe|lavapipe|swiftshader|\bsoftware\b/i.test(text),
    maxBufferSize: a.limits.maxBufferSize,
    maxStorageBufferBindingSize: a.limits.maxStorageBufferBindingSize,
  };
}

/**
 * The adapter tfjs-backend-webgpu would take (it asks for 'high-performance'), or why there is
 * none, in a few words. Loads Dawn but starts no device.
 */
export async function probeAdapter(): Promise<{ adapter: WebGpuAdapter } | { reason: string }> {
  let g: Gpu;
  try {
    g = await dawn();
  } catch (err) {
    const e = err as { code?: string; message?: string };
    if (e?.code === 'ERR_MODULE_NOT_FOUND') return { reason: 'the webgpu package is not installed' };
    return { reason: `Dawn did not load: ${String(e?.message ?? err).split('\n')[0]}` };
  }
  const a = await g.requestAdapter({ powerPreference: 'high-performance' });
  if (a === null) return { reason: 'no WebGPU adapter (no Vulkan loader or driver: libvulkan1 and a Vulkan ICD)' };
  return { adapter: describe(a) };
}

/**
 * `probeAdapter` in a child process, for `auto`. Dawn writes its own warnings straight to the
 * process's stderr when it enumerates adapters (lavapipe: "maxDynamic… artificially reduced"), and
 * no API routes or silences them; a server whose every output line is a JSON log entry must not
 * load Dawn only to pass a software adapter over. The child's output is the answer; what Dawn
 * printed there is dropped. About 0.2 s, once, when the compute threads start.
 */
export function probeAdapterApart(): Promise<{ adapter: WebGpuAdapter } | { reason: string }> {
  let entry: string;
  try {
    entry = pathToFileURL(createRequire(import.meta.url).resolve('webgpu')).href;
  } catch {
    return Promise.resolve({ reason: 'the webgpu package is not installed' });
  }
  const script = `
    const { create } = await import(${JSON.stringify(entry)});
    const a = await create([]).requestAdapter({ powerPreference: 'high-performance' });
    const info = a?.info ?? {};
    process.stdout.write(JSON.stringify(a === null ? null : { info: { vendor: info.vendor, architecture: info.architecture, device: info.device, description: info.description, isFallbackAdapter: info.isFallbackAdapter }, isFallbackAdapter: a.isFallbackAdapter, limits: { maxBufferSize: a.limits.maxBufferSize, maxStorageBufferBindingSize: a.limits.maxStorageBufferBindingSize } }));
    process.exit(0);`;
  return new Promise((resolve) => {
    execFile(process.execPath, ['--input-type=module', '-e', script], { timeout: 30_000 }, (err, stdout) => {
      if (err) return resolve({ reason: `Dawn did not load: ${String(err.message).split('\n')[0]}` });
      const a = JSON.parse(stdout) as GpuAdapter | null;
      resolve(a === null ? { reason: 'no WebGPU adapter (no Vulkan loader or driver: libvulkan1 and a Vulkan ICD)' } : { adapter: describe(a) });
    });
  });
}

/**
 * Tensor bytes per chunk on this adapter. Every tensor is one storage binding, so a chunk whose
 * tensors together fit the largest binding has no tensor that does not; WebGPU does not expose
 * the device's memory, so 2 GiB bounds it where the binding limit is larger (NVIDIA: 4 GiB).
 */
export function webgpuMemoryBudget(a: WebGpuAdapter): number {
  return Math.max(64 * 2 ** 20, Math.min(a.maxStorageBufferBindingSize, a.maxBufferSize, 2 * 2 ** 30));
}

/**
 * Starts tfjs on WebGPU. Throws with the reason when there is no adapter, or (unless
 * `allowSoftware`) when the adapter is a software one.
 */
export async function startWebgpu(allowSoftware: boolean): Promise<WebGpuAdapter> {
  // `auto` asks in a child first, so Dawn is loaded here only for an adapter it will use.
  if (!allowSoftware) {
    const apart = await probeAdapterApart();
    if ('reason' in apart) throw new Error(apart.reason);
    if (apart.adapter.software) throw new Error(`only a software adapter (${apart.adapter.description || apart.adapter.device}): slower than wasm; TANGENT_BACKEND=webgpu takes it`);
  }
  const probe = await probeAdapter();
  if ('reason' in probe) throw new Error(probe.reason);
  const a = probe.adapter;
  if (a.software && !allowSoftware) {
    throw new Error(`only a software adapter (${a.description || a.device}): slower than wasm; TANGENT_BACKEND=webgpu takes it`);
  }
  await import('@tensorflow/tfjs-backend-webgpu');
  patchWebgpuKernels();
  // The backend's first readSync warning and its CPU forwarding of small ops on CPU-resident
  // values are fine; sync reads of GPU tensors are not possible in Node (they need an
  // OffscreenCanvas), so the engine reads results with `await data()` only.
  if (!(await tf.setBackend('webgpu'))) throw new Error('setBackend("webgpu") returned false');
  await tf.ready();
  return a;
}
