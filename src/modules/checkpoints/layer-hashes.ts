import { createHash } from 'node:crypto';
import { DTYPE_BYTES } from '../../platform/graphql/inputs.js';

/** A weight spec as stored ({name, shape, dtype}); the bytes of each follow in spec order. */
interface Spec {
  name: string;
  shape: readonly number[];
  dtype: string;
}

/** Bytes of one weight's values; NaN for a dtype Tangent does not store. */
export function weightByteLength(spec: Spec): number {
  return spec.shape.reduce((a, b) => a * b, 1) * ((DTYPE_BYTES as Record<string, number>)[spec.dtype] ?? Number.NaN);
}

/** The layer a weight belongs to: its name up to the last '/' ('block0_qkv/kernel' → 'block0_qkv'). */
export function layerOfWeight(name: string): string {
  const slash = name.lastIndexOf('/');
  return slash < 0 ? name : name.slice(0, slash);
}

/**
 * A content hash per layer of a checkpoint's weights: lowercase hex SHA-256 over each of the
 * layer's weights in spec order (name, dtype, shape and bytes), by layer name. Two checkpoints whose
 * hashes agree on a layer hold byte-identical weights there (the frozen-trunk cache relies on it;
 * src/modules/terms/trunk-cache.ts). Throws when the specs describe other bytes than `data` holds.
 */
export function layerHashesOf(specs: readonly Spec[], data: Uint8Array): Record<string, string> {
  const hashes = new Map<string, ReturnType<typeof createHash>>();
  let offset = 0;
  for (const spec of specs) {
    const bytes = weightByteLength(spec);
    if (!Number.isInteger(bytes) || offset + bytes > data.byteLength) throw new Error(`weight ${spec.name}: the specs describe more bytes than the checkpoint holds`);
    const layer = layerOfWeight(spec.name);
    const hash = hashes.get(layer) ?? createHash('sha256');
    hashes.set(layer, hash);
    hash.update(`${spec.name}\0${spec.dtype}\0${spec.shape.join(',')}\0`);
    hash.update(data.subarray(offset, offset + bytes));
    offset += bytes;
  }
  if (offset !== data.byteLength) throw new Error(`the specs describe ${offset} bytes but the checkpoint holds ${data.byteLength}`);
  const out: Record<string, string> = {};
  for (const [layer, hash] of [...hashes].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) out[layer] = hash.digest('hex');
  return out;
}
