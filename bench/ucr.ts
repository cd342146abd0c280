/**
 * Reads the UCR/UEA `.ts` files in ../shared/datasets/ucr (relative to the project root) for
 * benchmarks and tests: real series, resampled when a model needs another length.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const UCR_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'shared', 'datasets', 'ucr');

export interface UcrSet {
  name: string;
  /** Series, each [length][channels]. */
  series: number[][][];
  /** Class index per series (0-based, in the order of @classLabel). */
  labels: number[];
  classes: string[];
}

/** Parses one `.ts` file, e.g. readUcr('GunPoint', 'TRAIN'). Throws with the path when missing. */
export function readUcr(name: string, split: 'TRAIN' | 'TEST'): UcrSet {
  const file = path.join(UCR_DIR, `${name}_${split}.ts`);
  if (!existsSync(file)) throw new Error(`UCR data set missing: ${file} (expected the shared datasets folder next to the project)`);
  const lines = readFileSync(file, 'utf8').split(/\r?\n/);
  let classes: string[] = [];
  const series: number[][][] = [];
  const labels: number[] = [];
  let inData = false;
  for (const raw of lines) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    if (!inData) {
      const lower = line.toLowerCase();
      if (lower.startsWith('@classlabel')) classes = line.split(/\s+/).slice(2);
      if (lower.startsWith('@data')) inData = true;
      continue;
    }
    const dims = line.split(':');
    const label = dims.pop() as string;
    const channels = dims.map((d) => d.split(',').map(Number));
    const length = channels[0]?.length ?? 0;
    series.push(Array.from({ length }, (_, t) => channels.map((c) => c[t] as number)));
    labels.push(classes.indexOf(label.trim()));
  }
  return { name, series, labels, classes };
}

/** Linear resampling of one series to `length` steps, then z-normalisation per channel. */
export function resample(s: number[][], length: number): number[][] {
  const n = s.length;
  const channels = s[0]?.length ?? 0;
  const out = Array.from({ length }, (_, i) => {
    const pos = length === 1 ? 0 : (i * (n - 1)) / (length - 1);
    const lo = Math.floor(pos);
    const hi = Math.min(lo + 1, n - 1);
    const f = pos - lo;
    return Array.from({ length: channels }, (_, c) => (1 - f) * (s[lo]?.[c] as number) + f * (s[hi]?.[c] as number));
  });
  for (let c = 0; c < channels; c++) {
    const mean = out.reduce((a, r) => a + (r[c] as number), 0) / length;
    const sd = Math.sqrt(out.reduce((a, r) => a + ((r[c] as number) - mean) ** 2, 0) / length) || 1;
    for (const r of out) r[c] = ((r[c] as number) - mean) / sd;
  }
  return out;
}

/** Packs series into the engine's Float32Array [n, length, channels]. */
export function pack(series: number[][][], length: number, channels: number): Float32Array {
  const x = new Float32Array(series.length * length * channels);
  series.forEach((s, i) => {
    const r = s.length === length && (s[0]?.length ?? 0) === channels ? s : resample(s, length);
    for (let t = 0; t < length; t++) for (let c = 0; c < channels; c++) x[(i * length + t) * channels + c] = r[t]?.[c] as number;
  });
  return x;
}
