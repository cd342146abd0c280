/**
 * Backend selection for the compute engine.
 *
 * `auto` prefers `@tensorflow/tfjs-node-gpu` when it sees a CUDA device, then WebGPU on an adapter
 * that is not a software one (webgpu.ts), then `@tensorflow/tfjs-node` (tfjs-node-gpu on the CPU
 * included; both optional: their install downloads libtensorflow, so they exist only where an image
 * put them), then the wasm backend (XNNPACK + SIMD, one thread), then the pure-JS cpu backend.
 */
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths, version_wasm } from '@tensorflow/tfjs-backend-wasm';
import { createRequire } from 'node:module';
import path from 'node:path';
import { registerGramKernel } from './gram.js';
import { patchWasmKernels } from './wasm-kernels.js';
import { startWebgpu, webgpuMemoryBudget } from './webgpu.js';
import type { WebGpuAdapter } from './webgpu.js';

export type { WebGpuAdapter } from './webgpu.js';

/** What `TANGENT_BACKEND` may say. */
export const BACKEND_PREFERENCES = ['auto', 'tensorflow', 'webgpu', 'wasm', 'cpu'] as const;
export type BackendPreference = (typeof BACKEND_PREFERENCES)[number];

/** The backend in use, as logged at start and exposed by the API. */
export interface BackendInfo {
  /** tfjs backend name: 'tensorflow' | 'webgpu' | 'wasm' | 'cpu'. */
  name: string;
  /** True when tfjs-node-gpu placed ops on a CUDA device, or WebGPU runs on an adapter that is not a software one. */
  gpu: boolean;
  /** The WebGPU adapter (webgpu only). */
  adapter?: WebGpuAdapter;
  /** Tensor bytes per chunk when a computation sets none (512 MiB; on WebGPU from the adapter's limits). */
  memoryBudgetBytes: number;
  /** Version string, e.g. 'tfjs 4.22.0, wasm 4.22.0 (simd)'. */
  version: string;
  /** Why preferred backends were skipped (empty when the first choice worked). */
  skipped: SkippedBackend[];
}

/** A backend `auto` passed over, and why in a few words (not a stack: it is no error). */
export interface SkippedBackend {
  backend: string;
  reason: string;
}

/**
 * The backend a process computes on, as one structured entry for the caller's logger. The compute
 * module logs nothing itself (it knows no logger): callers pass a callback that receives this.
 */
export interface BackendReport {
  backend: string;
  gpu: boolean;
  version: string;
  /** The WebGPU adapter (webgpu only). */
  adapter?: WebGpuAdapter;
  /** Compute threads (a pool's report; absent for one tfjs instance). */
  threads?: number;
  skipped: SkippedBackend[];
}

/** Receives the backend report once the backend is up. */
export type BackendLog = (report: BackendReport) => void;

/** Why a backend could not start, in a few words: a missing optional package is the usual case. */
function reasonOf(err: unknown, pkg?: string): string {
  const e = err as { code?: string; message?: string };
  const message = typeof e?.message === 'string' ? e.message : String(err);
  if (pkg && (e?.code === 'ERR_MODULE_NOT_FOUND' || e?.code === 'MODULE_NOT_FOUND' || /Cannot find (package|module)/.test(message))) {
    return `${pkg} is not installed`;
  }
  const first = message.split('\n')[0]!.trim();
  return first.length > 200 ? `${first.slice(0, 197)}...` : first;
}

/** A failed attempt, with the backends it passed over. */
class BackendUnavailable extends Error {
  constructor(readonly skipped: SkippedBackend[]) {
    super(skipped.map((s) => `${s.backend}: ${s.reason}`).join('; '));
  }
}

let current: BackendInfo | undefined;

/** Chunk memory on the CPU backends (and tensorflow): tensors of one chunk, bytes. */
export const DEFAULT_MEMORY_BUDGET = 512 * 2 ** 20;

function wasmDir(): string {
  const require = createRequire(import.meta.url);
  return path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + path.sep;
}

async function tryTensorflow(): Promise<BackendInfo> {
  const errors: SkippedBackend[] = [];
  // Non-literal specifiers: the packages are optional and have no types here.
  for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    try {
      const mod = (await import(pkg)) as { version?: Record<string, string> };
      if (!(await tf.setBackend('tensorflow'))) throw new Error('setBackend("tensorflow") returned false');
      await tf.ready();
      const be = tf.backend() as unknown as { isUsingGpuDevice?: boolean; isGPUPackage?: boolean };
      const gpu = pkg.endsWith('-gpu') && be.isUsingGpuDevice === true;
      const v = mod.version?.['tfjs-node'] ?? tf.version.tfjs;
      return { name: 'tensorflow', gpu, version: `tfjs ${tf.version.tfjs}, ${pkg} ${v}`, memoryBudgetBytes: DEFAULT_MEMORY_BUDGET, skipped: errors };
    } catch (err) {
      errors.push({ backend: 'tensorflow', reason: reasonOf(err, pkg) });
    }
  }
  throw new BackendUnavailable(errors);
}

/**
 * The wasm backend's Emscripten loader adds process-wide `uncaughtException` and
 * `unhandledRejection` listeners that rethrow (so Node prints the loader's minified source on any
 * error anywhere in the process); a server keeps its own policy, so they are removed again.
 */
async function withoutLoaderListeners<T>(f: () => Promise<T>): Promise<T> {
  type Listener = (...args: unknown[]) => void;
  const events = ['uncaughtException', 'unhandledRejection'];
  const list = (e: string) => process.listeners(e as 'uncaughtException') as Listener[];
  const before = new Map(events.map((e) => [e, new Set(list(e))]));
  try {
    return await f();
  } finally {
    for (const e of events) {
      for (const l of list(e)) if (!before.get(e)?.has(l)) process.removeListener(e, l);
    }
  }
}

async function tryWasm(): Promise<BackendInfo> {
  setWasmPaths(wasmDir());
  patchWasmKernels();
  registerGramKernel();
  const ok = await withoutLoaderListeners(async () => {
    const set = await tf.setBackend('wasm');
    await tf.ready();
    return set;
  });
  if (!ok) throw new Error('setBackend("wasm") returned false');
  const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
  return { name: 'wasm', gpu: false, version: `tfjs ${tf.version.tfjs}, wasm ${version_wasm}${simd ? ' (simd)' : ''}`, memoryBudgetBytes: DEFAULT_MEMORY_BUDGET, skipped: [] };
}

async function tryCpu(): Promise<BackendInfo> {
  if (!(await tf.setBackend('cpu'))) throw new Error('setBackend("cpu") returned false');
  await tf.ready();
  return { name: 'cpu', gpu: false, version: `tfjs ${tf.version.tfjs}, cpu`, memoryBudgetBytes: DEFAULT_MEMORY_BUDGET, skipped: [] };
}

async function tryWebgpu(allowSoftware: boolean): Promise<BackendInfo> {
  const adapter = await startWebgpu(allowSoftware);
  const kind = adapter.software ? 'software' : adapter.architecture || 'gpu';
  return {
    name: 'webgpu',
    gpu: !adapter.software,
    adapter,
    version: `tfjs ${tf.version.tfjs}, webgpu ${tf.version.tfjs} on Dawn (${adapter.vendor || 'unknown vendor'}, ${kind}: ${adapter.description || adapter.device})`,
    memoryBudgetBytes: webgpuMemoryBudget(adapter),
    skipped: [],
  };
}

/**
 * tfjs-node(-gpu) is tried once per process: `auto` asks first for it on a CUDA device and, after
 * WebGPU, for it on the CPU.
 */
let tensorflowAttempt: Promise<BackendInfo> | undefined;

async function tryTensorflowGpu(): Promise<BackendInfo> {
  tensorflowAttempt ??= tryTensorflow();
  const info = await tensorflowAttempt;
  if (!info.gpu) throw new BackendUnavailable([{ backend: 'tensorflow', reason: 'tfjs-node(-gpu) sees no CUDA device (tried again after WebGPU)' }]);
  return info;
}

async function tryTensorflowAgain(): Promise<BackendInfo> {
  tensorflowAttempt ??= tryTensorflow();
  const info = await tensorflowAttempt;
  if (!(await tf.setBackend('tensorflow'))) throw new Error('setBackend("tensorflow") returned false');
  return { ...info, skipped: [] };
}

/**
 * Selects and initialises the tfjs backend. Idempotent per preference; calling it again with
 * another preference switches backends (tensors move lazily, models stay usable).
 *
 * @param pref `auto` tries tensorflow on CUDA → webgpu on a hardware adapter → tensorflow → wasm → cpu;
 *   any other value must work or this throws (`webgpu` takes a software adapter too).
 * @param log receives the chosen backend as one structured report (default: nothing is logged).
 */
export async function initBackend(pref: BackendPreference = 'auto', log: BackendLog = () => undefined): Promise<BackendInfo> {
  if (!BACKEND_PREFERENCES.includes(pref)) {
    throw new Error(`TANGENT_BACKEND must be one of ${BACKEND_PREFERENCES.join(', ')}; got '${String(pref)}'`);
  }
  tf.env().set('PROD', true); // no NaN checks or debug overhead on every kernel
  const single: Record<Exclude<BackendPreference, 'auto'>, () => Promise<BackendInfo>> = {
    tensorflow: tryTensorflow,
    webgpu: () => tryWebgpu(true),
    wasm: tryWasm,
    cpu: tryCpu,
  };
  const order: Array<[string, () => Promise<BackendInfo>]> =
    pref === 'auto'
      ? [['tensorflow', tryTensorflowGpu], ['webgpu', () => tryWebgpu(false)], ['tensorflow', tryTensorflowAgain], ['wasm', tryWasm], ['cpu', tryCpu]]
      : [[pref, single[pref]]];
  const skipped: SkippedBackend[] = [];
  for (const [name, attempt] of order) {
    try {
      const info = await attempt();
      current = { ...info, skipped: [...skipped, ...info.skipped] };
      log({ backend: current.name, gpu: current.gpu, version: current.version, ...(current.adapter ? { adapter: current.adapter } : {}), skipped: current.skipped });
      return current;
    } catch (err) {
      // The second tensorflow attempt fails for the reasons the first already gave.
      const again = name === 'tensorflow' && skipped.some((s) => s.backend === 'tensorflow');
      if (again) continue;
      if (err instanceof BackendUnavailable) skipped.push(...err.skipped);
      else skipped.push({ backend: name, reason: reasonOf(err) });
    }
  }
  throw new Error(`no tfjs backend could start for TANGENT_BACKEND=${pref}: ${skipped.map((s) => `${s.backend}: ${s.reason}`).join('; ')}`);
}

/** The backend chosen by the last `initBackend`, or undefined before it. */
export function backendInfo(): BackendInfo | undefined {
  return current !== undefined && current.name === tf.getBackend() ? current : undefined;
}

/** Tensor bytes per chunk when a computation gives no `memoryBudgetBytes`: the current backend's. */
export function defaultMemoryBudget(): number {
  return backendInfo()?.memoryBudgetBytes ?? DEFAULT_MEMORY_BUDGET;
}
