/**
 * Bringing series of any length to one length N at import, per channel, on time-major series
 * ([length × channels] values, value (t, c) at t·channels + c):
 *
 * - `linear`: linear interpolation to N steps with both ends kept: step i of the result sits at
 *   position i·(L−1)/(N−1) of the source (position 0 when N = 1), so a series of length 1 becomes
 *   N copies of its value. This is how Mantis brings its inputs to 512 steps.
 * - `pad`: series shorter than N get zeros after their last step (zero padding at the end, as
 *   aeon's and sktime's padding transformers do by default); a longer one is refused.
 * - `truncate`: the first N steps are kept; a shorter one is refused, since inventing steps is
 *   what `pad` and `linear` are for and should be asked for by name.
 */
export type Resample = 'linear' | 'pad' | 'truncate';

export const RESAMPLES: readonly Resample[] = ['linear', 'pad', 'truncate'];

export interface LengthPolicy {
  /** The length every series is brought to. */
  length: number;
  resample: Resample;
}

/** A series the policy cannot bring to its length (a pad that would cut, a truncate that would invent). */
export class LengthPolicyError extends Error {
  constructor(
    message: string,
    readonly length: number,
  ) {
    super(message);
    this.name = 'LengthPolicyError';
  }
}

/**
 * One time-major series of `length` steps × `channels`, brought to `policy.length` steps. Returns
 * a new array of policy.length × channels values; the input is never changed.
 */
export function applyLengthPolicy(values: Float32Array, length: number, channels: number, policy: LengthPolicy): Float32Array {
  const target = policy.length;
  if (values.length !== length * channels) throw new RangeError(`expected ${length} × ${channels} values, got ${values.length}`);
  if (!Number.isInteger(target) || target < 1) throw new RangeError(`the target length must be a positive integer, got ${target}`);
  switch (policy.resample) {
    case 'linear':
      if (length < 1) throw new LengthPolicyError('an empty series cannot be interpolated', length);
      return resampleLinear(values, length, channels, target);
    case 'pad': {
      if (length > target) throw new LengthPolicyError(`the series has ${length} steps, more than ${target}; pad only adds steps (truncate or linear shorten it)`, length);
      const out = new Float32Array(target * channels);
      out.set(values);
      return out;
    }
    case 'truncate':
      if (length < target) throw new LengthPolicyError(`the series has ${length} steps, fewer than ${target}; truncate only removes steps (pad or linear lengthen it)`, length);
      return values.slice(0, target * channels);
  }
}

/** Linear interpolation of each channel to `target` steps, endpoints kept (see the file's comment). */
export function resampleLinear(values: Float32Array, length: number, channels: number, target: number): Float32Array {
  const out = new Float32Array(target * channels);
  const scale = target === 1 ? 0 : (length - 1) / (target - 1);
  for (let i = 0; i < target; i++) {
    const position = i * scale;
    const lo = Math.min(Math.floor(position), length - 1);
    const hi = Math.min(lo + 1, length - 1);
    const f = position - lo;
    for (let c = 0; c < channels; c++) {
      const a = values[lo * channels + c]!;
      const b = values[hi * channels + c]!;
      out[i * channels + c] = a + f * (b - a);
    }
  }
  return out;
}
