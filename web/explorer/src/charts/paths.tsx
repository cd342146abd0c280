import { useEffect, useRef, useState } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { navigate } from '../hash-location';
import { classColour } from './scatter-colours';

/**
 * Probability paths: π of the true class (or of every class) of each tracked sample across the run's
 * checkpoints, one line per sample (per sample and class with "all classes"), drawn with uPlot. The
 * line nearest the pointer is brought forward and named; a click opens that sample at the checkpoint
 * under the pointer (`#/samples/:id?checkpoint=…`). The same samples are listed under the chart as
 * links, for the keyboard.
 *
 * Hooks: `data-paths` (samples drawn), `data-lines` (lines drawn), `data-points` (checkpoints) and
 * `data-ready`.
 */

export interface PathSample {
  id: string;
  index: number;
  label: number;
  className: string;
}

export interface PathData {
  /** The points, in step order (P). */
  checkpoints: readonly { id: string; step: number }[];
  /** The samples (S). */
  samples: readonly PathSample[];
  classNames: readonly string[];
  /** π, sample-major: probs[(s·P + p)·V + c]; NaN where a value is missing. */
  probs: ArrayLike<number>;
}

export type PathMode = 'true' | 'all';

interface Line {
  sample: number;
  cls: number;
}

const fmt = (v: number) => v.toFixed(3);

export function ProbabilityPaths({ data, mode, testId = 'paths-chart', height = 320 }: { data: PathData; mode: PathMode; testId?: string; height?: number }) {
  const wrapRef = useRef<HTMLDivElement>(null);
  const tipRef = useRef<HTMLDivElement>(null);
  const [ready, setReady] = useState(false);
  const P = data.checkpoints.length;
  const V = data.classNames.length;
  const lines: Line[] = [];
  data.samples.forEach((s, i) => {
    if (mode === 'true') lines.push({ sample: i, cls: s.label });
    else for (let c = 0; c < V; c++) lines.push({ sample: i, cls: c });
  });

  useEffect(() => {
    const el = wrapRef.current;
    const tip = tipRef.current;
    if (!el || !tip || P === 0) return;
    const value = (line: Line, p: number) => {
      const v = data.probs[(line.sample * P + p) * V + line.cls];
      return v === undefined || Number.isNaN(v) ? null : v;
    };
    const plotData: uPlot.AlignedData = [Float64Array.from(data.checkpoints, (c) => c.step), ...lines.map((line) => Array.from({ length: P }, (_, p) => value(line, p)))];
    let focused: number | null = null;
    const showTip = (u: uPlot) => {
      const idx = u.cursor.idx;
      if (focused === null || idx === null || idx === undefined) {
        tip.hidden = true;
        return;
      }
      const line = lines[focused - 1]!;
      const sample = data.samples[line.sample]!;
      const v = value(line, idx);
      tip.hidden = false;
      tip.textContent = `sample #${sample.index} (${sample.className})${mode === 'all' ? ` · π(${data.classNames[line.cls]})` : ' · π(true)'} = ${v === null ? '—' : fmt(v)} at step ${data.checkpoints[idx]!.step}`;
      tip.style.left = `${(u.cursor.left ?? 0) + 14}px`;
      tip.style.top = `${(u.cursor.top ?? 0) + 8}px`;
      u.over.style.cursor = 'pointer';
    };
    const plot = new uPlot(
      {
        width: Math.max(240, el.clientWidth),
        height,
        scales: { x: { time: false }, y: { range: [0, 1] } },
        axes: [{ label: 'step' }, { label: mode === 'true' ? 'π of the true class' : 'π of each class', size: 60 }],
        legend: { show: false },
        cursor: { focus: { prox: 24 }, points: { size: 7 } },
        focus: { alpha: 0.25 },
        series: [
          {},
          ...lines.map((line) => ({
            label: `#${data.samples[line.sample]!.index}`,
            stroke: classColour(line.cls),
            width: 1.6,
            dash: mode === 'all' && line.cls !== data.samples[line.sample]!.label ? [5, 4] : undefined,
            points: { show: P <= 40, size: 4 },
          })),
        ],
        hooks: {
          setSeries: [
            (u, sidx) => {
              focused = sidx;
              showTip(u);
            },
          ],
          setCursor: [(u) => showTip(u)],
        },
      },
      plotData,
      el,
    );
    const open = () => {
      const idx = plot.cursor.idx;
      if (focused === null || idx === null || idx === undefined) return;
      const sample = data.samples[lines[focused - 1]!.sample]!;
      navigate(`/samples/${sample.id}?checkpoint=${data.checkpoints[idx]!.id}`);
    };
    plot.over.addEventListener('click', open);
    plot.over.addEventListener('mouseleave', () => (tip.hidden = true));
    setReady(true);
    const resize = new ResizeObserver(() => plot.setSize({ width: Math.max(240, el.clientWidth), height }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      plot.over.removeEventListener('click', open);
      plot.destroy();
      setReady(false);
    };
    // `lines` follows from data and mode.
  }, [data, mode, height]);

  return (
    <figure className="chart" aria-label={`Probability paths of ${data.samples.length} samples`}>
      <div
        ref={wrapRef}
        data-testid={testId}
        data-paths={data.samples.length}
        data-lines={lines.length}
        data-points={P}
        data-mode={mode}
        data-ready={ready ? 'true' : 'false'}
      />
      <div ref={tipRef} className="chart-tooltip" role="status" data-testid={`${testId}-tooltip`} hidden />
      <div className="legend" aria-hidden="true">
        {data.classNames.map((name, c) => (
          <span key={c}>
            <span className="swatch" style={{ background: classColour(c) }} />
            {name}
          </span>
        ))}
        {mode === 'all' && <span className="muted">dashed: a class other than the sample's own</span>}
      </div>
    </figure>
  );
}
