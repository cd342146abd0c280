import { interpolateCividis, interpolateViridis } from 'd3-scale-chromatic';

/**
 * Colour scales of the checkpoint charts, readable by colour-blind people: Okabe–Ito for classes
 * (their eight colours are told apart under every common colour-vision deficiency), then Paul Tol's
 * "muted" scheme for data sets with more classes (no scheme keeps more than about nine classes
 * distinguishable, so past 17 the colours repeat and hover names the class); viridis or cividis
 * (perceptually uniform, monotone in lightness) for a continuous term.
 */
export const CLASS_COLOURS: readonly string[] = [
  '#E69F00', '#56B4E9', '#009E73', '#F0E442', '#0072B2', '#D55E00', '#CC79A7', '#000000',
  '#CC6677', '#332288', '#DDCC77', '#117733', '#88CCEE', '#882255', '#44AA99', '#999933', '#AA4499',
];

export function classColour(label: number): string {
  return CLASS_COLOURS[((label % CLASS_COLOURS.length) + CLASS_COLOURS.length) % CLASS_COLOURS.length]!;
}

export type ContinuousScheme = 'viridis' | 'cividis';

export function schemeColour(scheme: ContinuousScheme, t: number): string {
  const f = scheme === 'cividis' ? interpolateCividis : interpolateViridis;
  return f(Math.min(1, Math.max(0, t)));
}

/** A CSS gradient of the scheme, for legends. */
export function schemeGradient(scheme: ContinuousScheme): string {
  const stops = Array.from({ length: 11 }, (_, i) => schemeColour(scheme, i / 10));
  return `linear-gradient(to right, ${stops.join(', ')})`;
}

/** `#rrggbb` or `rgb(r, g, b)` as one little-endian RGBA pixel of an ImageData's Uint32Array view. */
export function packColour(css: string): number {
  let r = 0;
  let g = 0;
  let b = 0;
  const hex = /^#([0-9a-f]{6})$/i.exec(css);
  if (hex) {
    const n = parseInt(hex[1]!, 16);
    r = (n >> 16) & 255;
    g = (n >> 8) & 255;
    b = n & 255;
  } else {
    const m = /rgb\((\d+),\s*(\d+),\s*(\d+)\)/.exec(css);
    if (m) [r, g, b] = [Number(m[1]), Number(m[2]), Number(m[3])];
  }
  return ((255 << 24) | (b << 16) | (g << 8) | r) >>> 0;
}

/** 256 packed pixels of a scheme, so a renderer colours 100k points by table look-up. */
export function schemeTable(scheme: ContinuousScheme): Uint32Array {
  const table = new Uint32Array(256);
  for (let i = 0; i < 256; i++) table[i] = packColour(schemeColour(scheme, i / 255));
  return table;
}
