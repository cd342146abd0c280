/**
 * Shared pieces of the safetensors tests: a small writer (to make valid and broken files), the
 * committed PyTorch fixtures (test/fixtures/torch) and the live PyTorch reference
 * (bench/torch_models.py) when /usr/bin/python3 has torch.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readSafetensors } from '../../src/io/safetensors.js';
import type { SafetensorsFile } from '../../src/io/safetensors.js';
import type { TorchArchitecture } from '../../src/io/torch-import.js';

export const FIXTURES = fileURLToPath(new URL('../fixtures/torch/', import.meta.url));
export const TORCH_MODELS = fileURLToPath(new URL('../../bench/torch_models.py', import.meta.url));

/** One tensor to write: values in the given dtype (floats rounded as that dtype stores them). */
export interface TensorSpec {
  dtype: 'F32' | 'F64' | 'F16' | 'BF16' | 'I64' | 'I32' | 'U8';
  shape: number[];
  values: ArrayLike<number>;
}

const WIDTH = { F32: 4, F64: 8, F16: 2, BF16: 2, I64: 8, I32: 4, U8: 1 } as const;

function floatToHalf(v: number): number {
  const f = new Float32Array([v]);
  const x = new Uint32Array(f.buffer)[0] as number;
  const sign = (x >>> 16) & 0x8000;
  const exp = ((x >>> 23) & 0xff) - 127 + 15;
  const mant = x & 0x7fffff;
  if (exp <= 0) return sign | Math.round((mant | 0x800000) / 2 ** (14 - exp));
  if (exp >= 31) return sign | 0x7c00;
  return sign | (exp << 10) | Math.round(mant / 0x2000);
}

/** Bytes of one tensor, little-endian. */
export function tensorBytes(t: TensorSpec): Buffer {
  const n = t.values.length;
  const b = Buffer.alloc(n * WIDTH[t.dtype]);
  for (let i = 0; i < n; i++) {
    const v = t.values[i] as number;
    switch (t.dtype) {
      case 'F32':
        b.writeFloatLE(v, 4 * i);
        break;
      case 'F64':
        b.writeDoubleLE(v, 8 * i);
        break;
      case 'F16':
        b.writeUInt16LE(floatToHalf(v), 2 * i);
        break;
      case 'BF16': {
        const f = Buffer.alloc(4);
        f.writeFloatLE(v);
        b.writeUInt16LE(f.readUInt16LE(2), 2 * i);
        break;
      }
      case 'I64':
        b.writeBigInt64LE(BigInt(v), 8 * i);
        break;
      case 'I32':
        b.writeInt32LE(v, 4 * i);
        break;
      case 'U8':
        b.writeUInt8(v, i);
        break;
    }
  }
  return b;
}

/**
 * A safetensors file. `header` may override or add raw header entries (to make broken files);
 * `tail` bytes are appended after the tensors.
 */
export function writeSafetensors(
  tensors: Record<string, TensorSpec>,
  opts: { metadata?: Record<string, unknown>; header?: Record<string, unknown>; tail?: Buffer; pad?: boolean } = {},
): Buffer {
  const header: Record<string, unknown> = {};
  if (opts.metadata) header['__metadata__'] = opts.metadata;
  const data: Buffer[] = [];
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    const bytes = tensorBytes(t);
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes.byteLength] };
    data.push(bytes);
    offset += bytes.byteLength;
  }
  Object.assign(header, opts.header ?? {});
  let text = Buffer.from(JSON.stringify(header), 'utf8');
  if (opts.pad !== false) text = Buffer.concat([text, Buffer.alloc((8 - (text.byteLength % 8)) % 8, 0x20)]);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(text.byteLength));
  return Buffer.concat([len, text, ...data, opts.tail ?? Buffer.alloc(0)]);
}

/** A file's tensors back as writer specs (float32 values), to edit and write again. */
export function specsOf(file: SafetensorsFile): Record<string, TensorSpec> {
  const out: Record<string, TensorSpec> = {};
  for (const [name, t] of file.tensors) {
    out[name] = { dtype: t.dtype === 'I64' || t.dtype === 'I32' ? t.dtype : 'F32', shape: t.shape, values: t.values };
  }
  return out;
}

/** A reference model made by bench/torch_models.py: its spec, weights file, inputs and PyTorch's numbers. */
export interface TorchCase {
  name: string;
  architecture: TorchArchitecture;
  config: Record<string, unknown>;
  subsets: string[];
  bytes: Buffer;
  file: SafetensorsFile;
  /** [n, length, channels] float32 */
  x: Float32Array;
  n: number;
  expected: { logits: number[]; classes: number; kNorm: Record<string, number[]>; parameters: Record<string, number>; torch: string };
}

function readCase(dir: string, name: string): TorchCase {
  const spec = JSON.parse(readFileSync(path.join(dir, 'spec.json'), 'utf8')) as { architecture: TorchArchitecture; config: Record<string, unknown>; n: number; subsets: string[] };
  const bytes = readFileSync(path.join(dir, 'weights.safetensors'));
  const xb = readFileSync(path.join(dir, 'x.bin'));
  const x = new Float32Array(xb.buffer.slice(xb.byteOffset, xb.byteOffset + xb.byteLength));
  return {
    name,
    architecture: spec.architecture,
    config: spec.config,
    subsets: spec.subsets,
    bytes,
    file: readSafetensors(bytes),
    x,
    n: spec.n,
    expected: JSON.parse(readFileSync(path.join(dir, 'expected.json'), 'utf8')) as TorchCase['expected'],
  };
}

/** The committed fixtures, by folder name. */
export function fixtureCases(): TorchCase[] {
  return readdirSync(FIXTURES, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => readCase(path.join(FIXTURES, d.name), d.name))
    .sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * The PyTorch version when /usr/bin/python3 can import torch and functorch, else null.
 * TANGENT_TEST_NO_TORCH=1 answers null, to run the suite as a machine without PyTorch does.
 */
export function torchVersion(): string | null {
  if (process.env['TANGENT_TEST_NO_TORCH'] === '1') return null;
  const r = spawnSync('/usr/bin/python3', ['-c', 'import torch, functorch; print(torch.__version__)'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

/** A fresh reference model from PyTorch now (random weights of `seed`), read back as a case. */
export function liveCase(name: string, spec: { architecture: TorchArchitecture; config: Record<string, unknown>; seed: number; n: number; subsets: string[]; dtype?: string }): TorchCase {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tangent-torch-'));
  try {
    writeFileSync(path.join(dir, 'spec.json'), JSON.stringify(spec));
    const r = spawnSync('/usr/bin/python3', [TORCH_MODELS, 'make', dir], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`bench/torch_models.py failed: ${r.stderr}`);
    return readCase(dir, name);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** max |a − b| / max |b|. */
export function maxRel(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  let m = 0;
  for (let i = 0; i < b.length; i++) {
    d = Math.max(d, Math.abs((a[i] as number) - (b[i] as number)));
    m = Math.max(m, Math.abs(b[i] as number));
  }
  return d / m;
}
