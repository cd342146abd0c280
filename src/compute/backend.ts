/**
 * Backend selection for the compute engine.
 *
 * `auto` prefers `@tensorflow/tfjs-node-gpu`, then `@tensorflow/tfjs-node` (both optional: their
 * install downloads libtensorflow, so they exist only where an image put them), then the wasm
 * backend (XNNPACK + SIMD, one thread), then the pure-JS cpu backend.
 */
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths, version_wasm } from '@tensorflow/tfjs-backend-wasm';
import { createRequire } from 'node:module';
import path from 'node:path';
import { registerGramKernel } from './gram.js';
import { patchWasmKernels } from './wasm-kernels.js';

/** What `TANGENT_BACKEND` may say. */
export const BACKEND_PREFERENCES = ['auto', 'tensorflow', 'wasm', 'cpu'] as const;
export type BackendPreference = (typeof BACKEND_PREFERENCES)[number];

/** The backend in use, as logged at start and exposed by the API. */
export interface BackendInfo {
  /** tfjs backend name: 'tensorflow' | 'wasm' | 'cpu'. */
  name: string;
  /** True only when tfjs-node-gpu loaded and TensorFlow placed ops on a GPU. */
  gpu: boolean;
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
      return { name: 'tensorflow', gpu, version: `tfjs ${tf.version.tfjs}, ${pkg} ${v}`, skipped: errors };
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
  return { name: 'wasm', gpu: false, version: `tfjs ${tf.version.tfjs}, wasm ${version_wasm}${simd ? ' (simd)' : ''}`, skipped: [] };
}

async function tryCpu(): Promise<BackendInfo> {
  if (!(await tf.setBackend('cpu'))) throw new Error('setBackend("cpu") returned false');
  await tf.ready();
  return { name: 'cpu', gpu: false, version: `tfjs ${tf.version.tfjs}, cpu`, skipped: [] };
}

/**
 * Selects and initialises the tfjs backend. Idempotent per preference; calling it again with
 * another preference switches backends (tensors move lazily, models stay usable).
 *
 * @param pref `auto` tries tensorflow → wasm → cpu; any other value must work or this throws.
 * @param log receives the chosen backend as one structured report (default: nothing is logged).
 */
export async function initBackend(pref: BackendPreference = 'auto', log: BackendLog = () => undefined): Promise<BackendInfo> {
  if (!BACKEND_PREFERENCES.includes(pref)) {
    throw new Error(`TANGENT_BACKEND must be one of ${BACKEND_PREFERENCES.join(', ')}; got '${String(pref)}'`);
  }
  tf.env().set('PROD', true); // no NaN checks or debug overhead on every kernel
  const order: Array<[string, () => Promise<BackendInfo>]> =
    pref === 'auto'
      ? [['tensorflow', tryTensorflow], ['wasm', tryWasm], ['cpu', tryCpu]]
      : [[pref, pref === 'tensorflow' ? tryTensorflow : pref === 'wasm' ? tryWasm : tryCpu]];
  const skipped: SkippedBackend[] = [];
  for (const [name, attempt] of order) {
    try {
      const info = await attempt();
      current = { ...info, skipped: [...skipped, ...info.skipped] };
      log({ backend: current.name, gpu: current.gpu, version: current.version, skipped: current.skipped });
      return current;
    } catch (err) {
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
