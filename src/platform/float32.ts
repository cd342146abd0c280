import { endianness } from 'node:os';

/**
 * Series, logits and weights travel and rest as little-endian float32 bytes. Typed arrays use the
 * platform's byte order, so a big-endian host would silently read them wrong: refuse to start.
 */
if (endianness() !== 'LE') throw new Error('Tangent stores float32 little-endian and needs a little-endian host');

/** Copies bytes into a fresh, aligned Float32Array (a Buffer's offset need not be 4-aligned). */
export function bytesToFloat32(bytes: Uint8Array): Float32Array {
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return new Float32Array(copy.buffer, 0, bytes.byteLength >>> 2);
}

/** The bytes of a Float32Array, without copying. */
export function float32ToBytes(values: Float32Array): Buffer {
  return Buffer.from(values.buffer, values.byteOffset, values.byteLength);
}

export function isFiniteArray(values: ArrayLike<number>): boolean {
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) return false;
  return true;
}
