/**
 * A small UEA problem in the shape of JapaneseVowels, made by the tests that need one: three
 * channels, series of 7 to 15 steps (each line its own length, shared by its channels), three
 * classes, `@equalLength false`, comments. Deterministic, so failures reproduce.
 */
export interface VariableSeries {
  label: string;
  /** channels[c][t], as written to the file. */
  channels: number[][];
  /** The 1-based line of the file that holds it. */
  line: number;
}

export interface VariableFile {
  text: string;
  series: VariableSeries[];
  /** The 1-based line of `@equalLength false`. */
  equalLengthLine: number;
}

export const CLASSES = ['one', 'two', 'three'];
export const CHANNELS = 3;

/** `count` series with lengths cycling through 7…15 (so both shorter and longer than 12 occur). */
export function variableLengthUcr(count: number, seed = 1): VariableFile {
  let state = seed;
  // Park–Miller: values in [-4, 4) with four decimals, exact in the text and in float32 within 1e-6.
  const next = () => ((state = (state * 48_271) % 2_147_483_647) / 2_147_483_647) * 8 - 4;
  const header = [
    '#Like JapaneseVowels: each utterance has its own length.',
    '#Written by the test that reads it.',
    '@problemName VariableVowels',
    '@timeStamps false',
    '@missing false',
    '@univariate false',
    `@dimensions ${CHANNELS}`,
    '@equalLength false',
    `@classLabel true ${CLASSES.join(' ')}`,
    '@data',
  ];
  const series: VariableSeries[] = [];
  const lines = [...header];
  for (let i = 0; i < count; i++) {
    const length = 7 + ((i * 5) % 9);
    const channels = Array.from({ length: CHANNELS }, () => Array.from({ length }, () => Number(next().toFixed(4))));
    const label = CLASSES[i % CLASSES.length]!;
    lines.push(`${channels.map((c) => c.join(',')).join(':')}:${label}`);
    series.push({ label, channels, line: lines.length });
  }
  return { text: `${lines.join('\n')}\n`, series, equalLengthLine: header.indexOf('@equalLength false') + 1 };
}

/**
 * Piecewise-linear interpolation of samples fp taken at xp (increasing), read at x: written apart
 * from Tangent's resampler, to check it.
 */
function interp(x: number, xp: readonly number[], fp: readonly number[]): number {
  if (x <= xp[0]!) return fp[0]!;
  for (let j = 1; j < xp.length; j++) {
    if (x <= xp[j]!) return fp[j - 1]! + ((fp[j]! - fp[j - 1]!) * (x - xp[j - 1]!)) / (xp[j]! - xp[j - 1]!);
  }
  return fp[fp.length - 1]!;
}

/**
 * The expected LINEAR result, time-major: both series laid on [0, 1], the source's ends on the
 * result's ends, each channel interpolated.
 */
export function expectedLinear(channels: readonly number[][], target: number): number[] {
  const out: number[] = [];
  const length = channels[0]!.length;
  const xp = Array.from({ length }, (_, t) => (length === 1 ? 0 : t / (length - 1)));
  for (let i = 0; i < target; i++) {
    const x = target === 1 ? 0 : i / (target - 1);
    for (const channel of channels) out.push(interp(x, xp, channel));
  }
  return out;
}

/** The series time-major ([t][c]), as Tangent stores it. */
export function timeMajor(channels: readonly number[][]): number[] {
  const out: number[] = [];
  for (let t = 0; t < channels[0]!.length; t++) for (const channel of channels) out.push(channel[t]!);
  return out;
}

/** Asserts two series agree within `tolerance` everywhere, naming the first place they do not. */
export function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tolerance: number, what: string): void {
  if (actual.length !== expected.length) throw new Error(`${what}: ${actual.length} values, expected ${expected.length}`);
  for (let k = 0; k < expected.length; k++) {
    if (!(Math.abs(actual[k]! - expected[k]!) <= tolerance)) {
      throw new Error(`${what}: value ${k} is ${actual[k]}, expected ${expected[k]} (tolerance ${tolerance})`);
    }
  }
}
