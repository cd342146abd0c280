import { useCallback, useEffect, useLayoutEffect, useMemo, useRef, useState, type KeyboardEvent, type PointerEvent, type WheelEvent } from 'react';
import { classColour, packColour, schemeGradient, schemeTable, type ContinuousScheme } from './scatter-colours';

/**
 * A scatter of up to some 100k+ points drawn into an ImageData (canvas 2D), with pan and zoom by
 * mouse, wheel and keyboard, hover to identify and click to select.
 *
 * Written by hand rather than with a charting library: the Explorer must pan 100k points at under
 * 50 ms a frame in headless Chromium with --disable-gpu, where WebGL is software (SwiftShader) or
 * absent. Writing pixels into one Uint32Array and putting it once is a few ms a frame on the CPU
 * there; the same frame through WebGL gl.POINTS on SwiftShader was measured slower (numbers in the
 * closing note of this chart's commit and in bench/explorer.ts), and a library of canvas 2D arcs
 * (uPlot, Chart.js) strokes each point as a path, some 20× the work. The pixel buffer also serves as
 * the hover index: each pixel remembers the point drawn last on it, so finding the point under the
 * mouse is a look-up, not a search.
 *
 * Test and bench hooks: `data-points` (points with finite coordinates, all drawn when the view holds
 * them), `data-visible` (inside the current view), `data-ready="true"` once drawn, `data-frame-ms` (the
 * last frame's draw time), and `window.__explorerFrameTimes` (every frame's draw ms, the last 2000).
 */

export type ScatterColour =
  | { kind: 'class'; labels: ArrayLike<number>; names: readonly string[] }
  | { kind: 'continuous'; values: ArrayLike<number | null>; label: string; scheme?: ContinuousScheme };

export interface ScatterProps {
  x: ArrayLike<number>;
  y: ArrayLike<number>;
  colour: ScatterColour;
  /** Per point: 1 correct (a filled square), 0 incorrect (an ×); omitted or NaN draws a square. */
  correct?: ArrayLike<number>;
  xLabel: string;
  yLabel: string;
  /** What the chart shows, for screen readers. */
  label: string;
  height?: number;
  /** The hover text of point i. */
  describe?: (i: number) => string;
  selected?: number | null;
  onSelect?: (i: number) => void;
  testId?: string;
}

declare global {
  interface Window {
    __explorerFrameTimes?: number[];
  }
}

interface View {
  x0: number;
  x1: number;
  y0: number;
  y1: number;
}

const MARGIN = { left: 56, right: 12, top: 10, bottom: 40 };
const BACKGROUND = packColour('#ffffff');
const MISSING = packColour('#9a9a9a');
/** Points that a pixel's neighbourhood is searched over when hovering, in CSS px. */
const HOVER_RADIUS = 6;

function extent(values: ArrayLike<number>): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (!Number.isFinite(lo)) return [0, 1];
  if (lo === hi) return [lo - 0.5, hi + 0.5];
  const pad = (hi - lo) * 0.04;
  return [lo - pad, hi + pad];
}

/** Round tick values (1, 2, 5 × 10^k) over [lo, hi]; hand-written, it is ten lines. */
export function ticks(lo: number, hi: number, count: number): number[] {
  const span = hi - lo;
  if (!(span > 0) || !Number.isFinite(span)) return [lo];
  const raw = span / Math.max(1, count);
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  return out;
}

function tickLabel(v: number): string {
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(1);
  return String(Number(v.toPrecision(4)));
}

export function Scatter(props: ScatterProps) {
  const { x, y, colour, correct, xLabel, yLabel, label, height = 420, describe, selected, onSelect, testId } = props;
  const wrapRef = useRef<HTMLDivElement>(null);
  const canvasRef = useRef<HTMLCanvasElement>(null);
  const [width, setWidth] = useState(640);
  const home = useMemo<View>(() => {
    const [x0, x1] = extent(finiteOnly(x));
    const [y0, y1] = extent(finiteOnly(y));
    return { x0, x1, y0, y1 };
  }, [x, y]);
  const view = useRef<View>(home);
  const frame = useRef(0);
  const pickRef = useRef<Int32Array>(new Int32Array(0));
  const [hover, setHover] = useState<{ i: number; left: number; top: number } | null>(null);
  const [ready, setReady] = useState(false);
  const [visible, setVisible] = useState(0);
  const drag = useRef<{ x: number; y: number; moved: boolean } | null>(null);

  const pointCount = useMemo(() => {
    let n = 0;
    for (let i = 0; i < x.length; i++) if (Number.isFinite(x[i]!) && Number.isFinite(y[i]!)) n++;
    return n;
  }, [x, y]);

  // Each point's packed colour, computed once per data and colour choice, not per frame.
  const colours = useMemo(() => {
    const out = new Uint32Array(x.length);
    if (colour.kind === 'class') {
      const table = colour.names.map((_, c) => packColour(classColour(c)));
      for (let i = 0; i < out.length; i++) out[i] = table[colour.labels[i]!] ?? MISSING;
    } else {
      const table = schemeTable(colour.scheme ?? 'viridis');
      const [lo, hi] = valueRange(colour.values);
      const scale = hi > lo ? 255 / (hi - lo) : 0;
      for (let i = 0; i < out.length; i++) {
        const v = colour.values[i];
        out[i] = v == null || !Number.isFinite(v) ? MISSING : table[Math.round((v - lo) * scale)]!;
      }
    }
    return out;
  }, [colour, x.length]);

  useLayoutEffect(() => {
    const el = wrapRef.current;
    if (!el) return;
    const measure = () => setWidth(Math.max(240, Math.floor(el.clientWidth)));
    measure();
    const observer = new ResizeObserver(measure);
    observer.observe(el);
    return () => observer.disconnect();
  }, []);

  const draw = useCallback(() => {
    frame.current = 0;
    const canvas = canvasRef.current;
    if (!canvas) return;
    const started = performance.now();
    const dpr = window.devicePixelRatio || 1;
    const ctx = canvas.getContext('2d');
    if (!ctx) return;
    const pw = Math.max(1, Math.round((width - MARGIN.left - MARGIN.right) * dpr));
    const ph = Math.max(1, Math.round((height - MARGIN.top - MARGIN.bottom) * dpr));
    const image = ctx.createImageData(pw, ph);
    const pixels = new Uint32Array(image.data.buffer);
    pixels.fill(BACKGROUND);
    let pick = pickRef.current;
    if (pick.length !== pw * ph) pick = pickRef.current = new Int32Array(pw * ph);
    pick.fill(-1);
    const v = view.current;
    const sx = pw / (v.x1 - v.x0);
    const sy = ph / (v.y1 - v.y0);
    const s = Math.max(1, Math.round(dpr));
    const n = x.length;
    let shown = 0;
    for (let i = 0; i < n; i++) {
      const px = Math.floor((x[i]! - v.x0) * sx);
      const py = Math.floor((v.y1 - y[i]!) * sy);
      // NaN fails both comparisons, so a missing coordinate is skipped here too.
      if (!(px >= 0 && px < pw && py >= 0 && py < ph)) continue;
      shown++;
      const c = colours[i]!;
      if (correct && correct[i] === 0) {
        // An × of half-width 2s: the incorrect points.
        for (let d = -2 * s; d <= 2 * s; d++) {
          const xa = px + d;
          if (xa < 0 || xa >= pw) continue;
          const ya = py + d;
          const yb = py - d;
          if (ya >= 0 && ya < ph) {
            pixels[ya * pw + xa] = c;
            pick[ya * pw + xa] = i;
          }
          if (yb >= 0 && yb < ph) {
            pixels[yb * pw + xa] = c;
            pick[yb * pw + xa] = i;
          }
        }
      } else {
        // A filled square of side 3s: the correct (or unmarked) points.
        const xa = Math.max(0, px - s);
        const xb = Math.min(pw - 1, px + s);
        const ya = Math.max(0, py - s);
        const yb = Math.min(ph - 1, py + s);
        for (let yy = ya; yy <= yb; yy++) {
          const row = yy * pw;
          for (let xx = xa; xx <= xb; xx++) {
            pixels[row + xx] = c;
            pick[row + xx] = i;
          }
        }
      }
    }
    const cw = Math.round(width * dpr);
    const ch = Math.round(height * dpr);
    // Resizing a canvas reallocates it: only when the size changed, else clear what the axes drew.
    if (canvas.width !== cw || canvas.height !== ch) {
      canvas.width = cw;
      canvas.height = ch;
    } else ctx.clearRect(0, 0, cw, ch);
    ctx.putImageData(image, Math.round(MARGIN.left * dpr), Math.round(MARGIN.top * dpr));
    ctx.save();
    ctx.scale(dpr, dpr);
    drawAxes(ctx, v, width, height, xLabel, yLabel);
    if (selected != null && selected >= 0 && selected < n && Number.isFinite(x[selected]!)) {
      const cx = MARGIN.left + (x[selected]! - v.x0) * (sx / dpr);
      const cy = MARGIN.top + (v.y1 - y[selected]!) * (sy / dpr);
      ctx.strokeStyle = '#000';
      ctx.lineWidth = 2;
      ctx.beginPath();
      ctx.arc(cx, cy, 7, 0, Math.PI * 2);
      ctx.stroke();
    }
    ctx.restore();
    const ms = performance.now() - started;
    const times = (window.__explorerFrameTimes ??= []);
    times.push(ms);
    if (times.length > 2000) times.splice(0, times.length - 2000);
    canvas.dataset.frameMs = ms.toFixed(2);
    canvas.dataset.frames = String(Number(canvas.dataset.frames ?? 0) + 1);
    setVisible(shown);
    setReady(true);
  }, [width, height, x, y, colours, correct, selected, xLabel, yLabel]);

  // The frame runs the latest draw (a size or data change while a frame is pending must not draw the old one).
  const drawRef = useRef(draw);
  drawRef.current = draw;
  const schedule = useCallback(() => {
    if (!frame.current) frame.current = requestAnimationFrame(() => drawRef.current());
  }, []);

  useEffect(() => {
    view.current = home;
  }, [home]);
  useEffect(() => {
    schedule();
  }, [draw, schedule]);
  useEffect(() => () => cancelAnimationFrame(frame.current), []);

  const pan = (dxCss: number, dyCss: number) => {
    const v = view.current;
    const kx = (v.x1 - v.x0) / (width - MARGIN.left - MARGIN.right);
    const ky = (v.y1 - v.y0) / (height - MARGIN.top - MARGIN.bottom);
    view.current = { x0: v.x0 - dxCss * kx, x1: v.x1 - dxCss * kx, y0: v.y0 + dyCss * ky, y1: v.y1 + dyCss * ky };
    schedule();
  };

  const zoom = (factor: number, fx = 0.5, fy = 0.5) => {
    const v = view.current;
    const cx = v.x0 + (v.x1 - v.x0) * fx;
    const cy = v.y1 - (v.y1 - v.y0) * fy;
    view.current = { x0: cx - (cx - v.x0) * factor, x1: cx + (v.x1 - cx) * factor, y0: cy - (cy - v.y0) * factor, y1: cy + (v.y1 - cy) * factor };
    schedule();
  };

  const pointAt = (clientX: number, clientY: number): number => {
    const canvas = canvasRef.current;
    if (!canvas) return -1;
    const rect = canvas.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    const pw = Math.max(1, Math.round((width - MARGIN.left - MARGIN.right) * dpr));
    const ph = Math.max(1, Math.round((height - MARGIN.top - MARGIN.bottom) * dpr));
    const px = Math.round((clientX - rect.left - MARGIN.left) * dpr);
    const py = Math.round((clientY - rect.top - MARGIN.top) * dpr);
    const pick = pickRef.current;
    if (pick.length !== pw * ph) return -1;
    const r = Math.round(HOVER_RADIUS * dpr);
    let best = -1;
    let bestD = Infinity;
    for (let dy = -r; dy <= r; dy++) {
      const yy = py + dy;
      if (yy < 0 || yy >= ph) continue;
      for (let dx = -r; dx <= r; dx++) {
        const xx = px + dx;
        if (xx < 0 || xx >= pw) continue;
        const i = pick[yy * pw + xx]!;
        const d = dx * dx + dy * dy;
        if (i >= 0 && d < bestD) {
          best = i;
          bestD = d;
        }
      }
    }
    return best;
  };

  const onPointerDown = (e: PointerEvent<HTMLCanvasElement>) => {
    e.currentTarget.setPointerCapture(e.pointerId);
    drag.current = { x: e.clientX, y: e.clientY, moved: false };
  };
  const onPointerMove = (e: PointerEvent<HTMLCanvasElement>) => {
    const d = drag.current;
    if (d) {
      const dx = e.clientX - d.x;
      const dy = e.clientY - d.y;
      if (dx !== 0 || dy !== 0) {
        d.moved = d.moved || Math.abs(dx) + Math.abs(dy) > 2;
        d.x = e.clientX;
        d.y = e.clientY;
        pan(dx, dy);
        setHover(null);
      }
      return;
    }
    const i = pointAt(e.clientX, e.clientY);
    const rect = e.currentTarget.getBoundingClientRect();
    setHover(i >= 0 ? { i, left: e.clientX - rect.left, top: e.clientY - rect.top } : null);
  };
  const onPointerUp = (e: PointerEvent<HTMLCanvasElement>) => {
    const d = drag.current;
    drag.current = null;
    if (d && !d.moved && onSelect) {
      const i = pointAt(e.clientX, e.clientY);
      if (i >= 0) onSelect(i);
    }
  };
  const onWheel = (e: WheelEvent<HTMLCanvasElement>) => {
    const rect = e.currentTarget.getBoundingClientRect();
    const fx = (e.clientX - rect.left - MARGIN.left) / (width - MARGIN.left - MARGIN.right);
    const fy = (e.clientY - rect.top - MARGIN.top) / (height - MARGIN.top - MARGIN.bottom);
    zoom(Math.exp(Math.max(-1, Math.min(1, e.deltaY * 0.002))), fx, fy);
  };
  const onKeyDown = (e: KeyboardEvent<HTMLCanvasElement>) => {
    const step = 40;
    switch (e.key) {
      case 'ArrowLeft':
        pan(step, 0);
        break;
      case 'ArrowRight':
        pan(-step, 0);
        break;
      case 'ArrowUp':
        pan(0, step);
        break;
      case 'ArrowDown':
        pan(0, -step);
        break;
      case '+':
      case '=':
        zoom(0.8);
        break;
      case '-':
      case '_':
        zoom(1.25);
        break;
      case '0':
      case 'Home':
        view.current = home;
        schedule();
        break;
      case 'Enter': {
        // Selects the point nearest the view's centre: keyboard users pan a point to the middle.
        const rect = e.currentTarget.getBoundingClientRect();
        const i = pointAt(rect.left + MARGIN.left + (width - MARGIN.left - MARGIN.right) / 2, rect.top + MARGIN.top + (height - MARGIN.top - MARGIN.bottom) / 2);
        if (i >= 0) onSelect?.(i);
        break;
      }
      default:
        return;
    }
    e.preventDefault();
  };

  // The wheel must not scroll the page while zooming: React's onWheel is passive, so prevent it natively.
  useEffect(() => {
    const canvas = canvasRef.current;
    if (!canvas) return;
    const stop = (e: globalThis.WheelEvent) => e.preventDefault();
    canvas.addEventListener('wheel', stop, { passive: false });
    return () => canvas.removeEventListener('wheel', stop);
  }, []);

  return (
    <figure className="chart scatter" data-testid={testId}>
      <div ref={wrapRef} className="scatter-wrap" style={{ position: 'relative', height }}>
        <canvas
          ref={canvasRef}
          style={{ width, height, display: 'block', touchAction: 'none', cursor: drag.current ? 'grabbing' : 'crosshair' }}
          role="img"
          aria-label={`${label}. Drag or use the arrow keys to pan, the wheel or + and − to zoom, 0 to reset, Enter to select the point at the centre.`}
          tabIndex={0}
          data-points={pointCount}
          data-visible={visible}
          data-ready={ready ? 'true' : 'false'}
          onPointerDown={onPointerDown}
          onPointerMove={onPointerMove}
          onPointerUp={onPointerUp}
          onPointerLeave={() => setHover(null)}
          onWheel={onWheel}
          onKeyDown={onKeyDown}
        />
        {hover && (
          <div className="chart-tooltip" role="status" style={{ position: 'absolute', left: hover.left + 12, top: hover.top + 12, pointerEvents: 'none' }}>
            {describe ? describe(hover.i) : `#${hover.i}`}
          </div>
        )}
      </div>
      <figcaption>
        <ScatterLegend colour={colour} marked={!!correct} />
      </figcaption>
    </figure>
  );
}

function finiteOnly(values: ArrayLike<number>): number[] {
  const out: number[] = [];
  for (let i = 0; i < values.length; i++) if (Number.isFinite(values[i]!)) out.push(values[i]!);
  return out;
}

function valueRange(values: ArrayLike<number | null>): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v == null || !Number.isFinite(v)) continue;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return Number.isFinite(lo) ? [lo, hi] : [0, 1];
}

function drawAxes(ctx: CanvasRenderingContext2D, v: View, width: number, height: number, xLabel: string, yLabel: string) {
  const pw = width - MARGIN.left - MARGIN.right;
  const ph = height - MARGIN.top - MARGIN.bottom;
  ctx.strokeStyle = '#555';
  ctx.lineWidth = 1;
  ctx.strokeRect(MARGIN.left - 0.5, MARGIN.top - 0.5, pw + 1, ph + 1);
  ctx.fillStyle = '#222';
  ctx.font = '11px system-ui, sans-serif';
  ctx.textAlign = 'center';
  ctx.textBaseline = 'top';
  for (const t of ticks(v.x0, v.x1, Math.max(2, Math.floor(pw / 90)))) {
    const px = MARGIN.left + ((t - v.x0) / (v.x1 - v.x0)) * pw;
    ctx.fillRect(Math.round(px), MARGIN.top + ph, 1, 4);
    ctx.fillText(tickLabel(t), px, MARGIN.top + ph + 6);
  }
  ctx.textAlign = 'right';
  ctx.textBaseline = 'middle';
  for (const t of ticks(v.y0, v.y1, Math.max(2, Math.floor(ph / 60)))) {
    const py = MARGIN.top + ((v.y1 - t) / (v.y1 - v.y0)) * ph;
    ctx.fillRect(MARGIN.left - 4, Math.round(py), 4, 1);
    ctx.fillText(tickLabel(t), MARGIN.left - 6, py);
  }
  ctx.textAlign = 'center';
  ctx.textBaseline = 'bottom';
  ctx.fillText(xLabel, MARGIN.left + pw / 2, height - 2);
  ctx.save();
  ctx.translate(12, MARGIN.top + ph / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.textBaseline = 'middle';
  ctx.fillText(yLabel, 0, 0);
  ctx.restore();
}

const SWATCH = { display: 'inline-block', width: 10, height: 10, verticalAlign: 'middle' } as const;

export function ScatterLegend({ colour, marked }: { colour: ScatterColour; marked: boolean }) {
  return (
    <div className="chart-legend">
      {colour.kind === 'class' ? (
        <ul className="legend-classes" aria-label="Classes" style={{ display: 'flex', flexWrap: 'wrap', gap: '0.3em 1em', listStyle: 'none', padding: 0, margin: 0 }}>
          {colour.names.map((name, c) => (
            <li key={c}>
              <span className="swatch" style={{ ...SWATCH, background: classColour(c) }} aria-hidden="true" /> {name}
            </li>
          ))}
        </ul>
      ) : (
        <ContinuousLegend values={colour.values} label={colour.label} scheme={colour.scheme ?? 'viridis'} />
      )}
      {marked && (
        <span className="legend-markers">
          ■ correct&nbsp;&nbsp;× incorrect
        </span>
      )}
    </div>
  );
}

function ContinuousLegend({ values, label, scheme }: { values: ArrayLike<number | null>; label: string; scheme: ContinuousScheme }) {
  const [lo, hi] = valueRange(values);
  return (
    <span className="legend-continuous">
      {label}: {tickLabel(lo)}{' '}
      <span className="gradient" style={{ background: schemeGradient(scheme), display: 'inline-block', width: 120, height: 10 }} aria-hidden="true" /> {tickLabel(hi)}{' '}
      <span className="swatch" style={{ ...SWATCH, background: '#9a9a9a' }} aria-hidden="true" /> no value
    </span>
  );
}
