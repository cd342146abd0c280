/**
 * A strict reader of the safetensors format (Hugging Face; the format PyTorch checkpoints are
 * shared in instead of pickles). Written here rather than taken from npm: the registry has no
 * maintained standalone parser (Hugging Face's JavaScript packages read only headers, over
 * HTTP), and the format is small enough to check completely. It never executes anything from
 * the file.
 *
 * Format (huggingface/safetensors README, "Format"; checks as in its reference `validate`):
 * - 8 bytes: N, unsigned little-endian 64-bit, the header's length;
 * - N bytes: a UTF-8 JSON object that starts with `{` (and may be padded with trailing spaces):
 *   `{ name: { dtype, shape, data_offsets: [begin, end] }, …, "__metadata__"?: { string: string } }`,
 *   offsets relative to the byte buffer after the header;
 * - the byte buffer: every tensor's little-endian, row-major bytes. The tensors must cover the
 *   buffer exactly, contiguous and without overlap or holes; duplicate names are refused.
 *
 * Floating-point tensors (F64, F32, F16, BF16) are returned as float32; I64 and I32 tensors (a
 * BatchNorm's `num_batches_tracked`, say) are returned as float64 values when they are exact.
 */

/** Header bytes beyond this are refused (the reference implementation's limit). */
export const MAX_HEADER_BYTES = 100_000_000;

/** Bytes per element of the dtypes this reader converts. */
export const SAFETENSORS_DTYPES = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4 } as const;
export type SafetensorsDtype = keyof typeof SAFETENSORS_DTYPES;

/** Dtypes the format defines but this reader refuses (named so that the error can say so). */
const KNOWN_OTHER = new Set(['BOOL', 'U8', 'I8', 'I16', 'U16', 'U32', 'U64', 'C64', 'F8_E5M2', 'F8_E4M3', 'F8_E8M0', 'F4', 'F6_E2M3', 'F6_E3M2']);

export interface SafetensorsTensor {
  name: string;
  /** The dtype in the file. */
  dtype: SafetensorsDtype;
  shape: number[];
  /** Values as float32 (floating dtypes) or exact integers as float64 (I64, I32). */
  values: Float32Array | Float64Array;
}

export interface SafetensorsFile {
  /** `__metadata__`, if any. */
  metadata: Record<string, string>;
  /** Tensors by name, in file (offset) order. */
  tensors: Map<string, SafetensorsTensor>;
}

/** Why a file is not valid safetensors (or uses what this reader does not convert). */
export class SafetensorsError extends Error {
  override name = 'SafetensorsError';
}

function fail(message: string): never {
  throw new SafetensorsError(message);
}

/** IEEE half → float. */
function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f === 0 ? s * Infinity : NaN;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

function decode(dtype: SafetensorsDtype, bytes: Uint8Array, count: number, name: string): Float32Array | Float64Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (dtype) {
    case 'F32': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(4 * i, true);
      return out;
    }
    case 'F64': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(8 * i, true);
      return out;
    }
    case 'F16': {
      const out = new Float32Array(count);
      for (let i = 0; i < count; i++) out[i] = halfToFloat(view.getUint16(2 * i, true));
      return out;
    }
    case 'BF16': {
      // bfloat16 is the top half of a float32.
      const out = new Float32Array(count);
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < count; i++) bits[i] = view.getUint16(2 * i, true) << 16;
      return out;
    }
    case 'I32': {
      const out = new Float64Array(count);
      for (let i = 0; i < count; i++) out[i] = view.getInt32(4 * i, true);
      return out;
    }
    case 'I64': {
      const out = new Float64Array(count);
      for (let i = 0; i < count; i++) {
        const v = view.getBigInt64(8 * i, true);
        if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < BigInt(Number.MIN_SAFE_INTEGER)) fail(`tensor '${name}': I64 value ${v} is not exact as a number`);
        out[i] = Number(v);
      }
      return out;
    }
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function nonNegativeInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** Names of the keys of a JSON object text, in order, duplicates included (JSON.parse keeps the last). */
function topLevelKeys(text: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  let i = 0;
  let expectKey = false;
  while (i < text.length) {
    const ch = text[i] as string;
    if (ch === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      if (depth === 1 && expectKey) keys.push(JSON.parse(text.slice(i, j + 1)) as string);
      expectKey = false;
      i = j + 1;
      continue;
    }
    if (ch === '{' || ch === '[') {
      depth++;
      expectKey = ch === '{' && depth === 1;
    } else if (ch === '}' || ch === ']') {
      depth--;
    } else if (ch === ',' && depth === 1) {
      expectKey = true;
    }
    i++;
  }
  return keys;
}

/**
 * Parses a whole safetensors file held in memory.
 * @throws SafetensorsError naming what is wrong (and the tensor, where there is one).
 */
export function readSafetensors(data: Uint8Array): SafetensorsFile {
  if (data.byteLength < 8) fail(`a safetensors file starts with 8 bytes of header length; this one has ${data.byteLength} bytes`);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const n64 = view.getBigUint64(0, true);
  if (n64 > BigInt(MAX_HEADER_BYTES)) fail(`header length ${n64} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  const n = Number(n64);
  if (8 + n > data.byteLength) fail(`header length ${n} runs past the end of the file (${data.byteLength} bytes)`);
  const headerBytes = data.subarray(8, 8 + n);
  if (headerBytes[0] !== 0x7b) fail('the header must begin with "{"');
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(headerBytes);
  } catch {
    fail('the header is not valid UTF-8');
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (error) {
    fail(`the header is not valid JSON: ${(error as Error).message}`);
  }
  if (!isPlainObject(header)) fail('the header must be a JSON object');
  const keys = topLevelKeys(text);
  const seen = new Set<string>();
  for (const k of keys) {
    if (seen.has(k)) fail(`the header names '${k}' twice`);
    seen.add(k);
  }

  const metadata: Record<string, string> = {};
  const raw = header['__metadata__'];
  if (raw !== undefined) {
    if (!isPlainObject(raw)) fail('__metadata__ must be an object of strings');
    for (const [k, v] of Object.entries(raw)) {
      if (typeof v !== 'string') fail(`__metadata__.${k} must be a string`);
      metadata[k] = v;
    }
  }

  const buffer = data.subarray(8 + n);
  const entries: Array<{ name: string; dtype: SafetensorsDtype; shape: number[]; begin: number; end: number }> = [];
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    if (!isPlainObject(info)) fail(`tensor '${name}': expected {dtype, shape, data_offsets}`);
    const { dtype, shape, data_offsets: offsets } = info;
    if (typeof dtype !== 'string') fail(`tensor '${name}': dtype must be a string`);
    if (!(dtype in SAFETENSORS_DTYPES)) {
      fail(KNOWN_OTHER.has(dtype) ? `tensor '${name}': dtype ${dtype} is not supported (float tensors F64/F32/F16/BF16, and I64/I32, are)` : `tensor '${name}': unknown dtype '${dtype}'`);
    }
    if (!Array.isArray(shape) || !shape.every(nonNegativeInt)) fail(`tensor '${name}': shape must be a list of non-negative integers`);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(nonNegativeInt)) fail(`tensor '${name}': data_offsets must be [begin, end]`);
    const [begin, end] = offsets as [number, number];
    if (end < begin) fail(`tensor '${name}': data_offsets end ${end} is before begin ${begin}`);
    entries.push({ name, dtype: dtype as SafetensorsDtype, shape: shape as number[], begin, end });
  }
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = 0;
  const tensors = new Map<string, SafetensorsTensor>();
  for (const e of entries) {
    if (e.begin !== at) {
      fail(e.begin < at ? `tensor '${e.name}' overlaps the tensor before it (offset ${e.begin} < ${at})` : `tensor '${e.name}' leaves a hole in the byte buffer (offset ${e.begin}, expected ${at})`);
    }
    const count = e.shape.reduce((a, b) => a * b, 1);
    if (!Number.isSafeInteger(count * SAFETENSORS_DTYPES[e.dtype])) fail(`tensor '${e.name}': shape too large`);
    const size = count * SAFETENSORS_DTYPES[e.dtype];
    if (e.end - e.begin !== size) fail(`tensor '${e.name}': ${e.dtype} [${e.shape.join(', ')}] needs ${size} bytes, data_offsets give ${e.end - e.begin}`);
    if (e.end > buffer.byteLength) fail(`tensor '${e.name}' runs past the end of the file`);
    tensors.set(e.name, { name: e.name, dtype: e.dtype, shape: e.shape, values: decode(e.dtype, buffer.subarray(e.begin, e.end), count, e.name) });
    at = e.end;
  }
  if (at !== buffer.byteLength) fail(`the byte buffer has ${buffer.byteLength - at} bytes that no tensor covers`);
  return { metadata, tensors };
}
