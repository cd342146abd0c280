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
  skipped: string[];
}

let current: BackendInfo | undefined;

function wasmDir(): string {
  const require = createRequire(import.meta.url);
  return path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + path.sep;
}

async function tryTensorflow(): Promise<BackendInfo> {
  const errors: string[] = [];
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
      errors.push(`${pkg}: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
    }
  }
  throw new Error(errors.join('; '));
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
 * @param log receives one line naming the chosen backend (default: stderr).
 */
export async function initBackend(
  pref: BackendPreference = 'auto',
  log: (line: string) => void = (line) => process.stderr.write(`${line}\n`),
): Promise<BackendInfo> {
  if (!BACKEND_PREFERENCES.includes(pref)) {
    throw new Error(`TANGENT_BACKEND must be one of ${BACKEND_PREFERENCES.join(', ')}; got '${String(pref)}'`);
  }
  tf.env().set('PROD', true); // no NaN checks or debug overhead on every kernel
  const order: Array<[string, () => Promise<BackendInfo>]> =
    pref === 'auto'
      ? [['tensorflow', tryTensorflow], ['wasm', tryWasm], ['cpu', tryCpu]]
      : [[pref, pref === 'tensorflow' ? tryTensorflow : pref === 'wasm' ? tryWasm : tryCpu]];
  const skipped: string[] = [];
  for (const [name, attempt] of order) {
    try {
      const info = await attempt();
      current = { ...info, skipped: [...skipped, ...info.skipped] };
      log(`tangent compute: backend=${current.name} gpu=${current.gpu} (${current.version})` +
        (current.skipped.length > 0 ? `; skipped: ${current.skipped.join('; ')}` : ''));
      return current;
    } catch (err) {
      skipped.push(`${name}: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
    }
  }
  throw new Error(`no tfjs backend could start for TANGENT_BACKEND=${pref}: ${skipped.join('; ')}`);
}

/** The backend chosen by the last `initBackend`, or undefined before it. */
export function backendInfo(): BackendInfo | undefined {
  return current !== undefined && current.name === tf.getBackend() ? current : undefined;
}
