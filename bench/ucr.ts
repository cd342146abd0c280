/**
 * Real inputs for the compute benchmark and tests: UCR series from datasets/ucr
 * (in the repository, read with the project's own reader), resampled to the length a
 * model takes and z-normalised.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readUcrFile } from '../src/io/ucr.js';

export const UCR_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'datasets', 'ucr');

/** Series (time-major [length × channels]) and labels of one file; throws naming the path when missing. */
export async function ucrSeries(name: string, split: 'TRAIN' | 'TEST'): Promise<{ series: Float32Array[]; labels: number[]; length: number; channels: number; classes: number }> {
  const file = path.join(UCR_DIR, `${name}_${split}.ts`);
  if (!existsSync(file)) throw new Error(`UCR data set missing: ${file} (datasets/ucr in the repository)`);
  const d = await readUcrFile(file);
  return { series: d.series.map((s) => s.values), labels: d.series.map((s) => s.label), length: d.length, channels: d.channels, classes: d.classNames.length };
}

/**
 * Linear resampling of one time-major series [length × channels] to `target` steps, keeping the
 * first `keep` channels, each z-normalised.
 */
export function resample(values: Float32Array, length: number, channels: number, target: number, keep = channels): Float32Array {
  const out = new Float32Array(target * keep);
  for (let c = 0; c < keep; c++) {
    let mean = 0;
    for (let i = 0; i < target; i++) {
      const pos = target === 1 ? 0 : (i * (length - 1)) / (target - 1);
      const lo = Math.floor(pos);
      const hi = Math.min(lo + 1, length - 1);
      const f = pos - lo;
      const v = (1 - f) * (values[lo * channels + c] as number) + f * (values[hi * channels + c] as number);
      out[i * keep + c] = v;
      mean += v;
    }
    mean /= target;
    let sd = 0;
    for (let i = 0; i < target; i++) sd += ((out[i * keep + c] as number) - mean) ** 2;
    sd = Math.sqrt(sd / target) || 1;
    for (let i = 0; i < target; i++) out[i * keep + c] = ((out[i * keep + c] as number) - mean) / sd;
  }
  return out;
}

/** n series (cycling through `pool`) resampled and packed as the engine's [n, length, channels]. */
export function pack(pool: { series: Float32Array[]; length: number; channels: number }, n: number, length: number, channels: number): Float32Array {
  const x = new Float32Array(n * length * channels);
  for (let i = 0; i < n; i++) {
    const s = pool.series[i % pool.series.length] as Float32Array;
    x.set(resample(s, pool.length, pool.channels, length, channels), i * length * channels);
  }
  return x;
}
