import { useEffect, useRef, useState } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';

/**
 * Lines over the checkpoints of a run (x: the optimizer step), drawn with uPlot (canvas: a few kB,
 * and fast). A value the API did not give (a term still pending, a split without rows) is a gap
 * (null), never a zero. Beside the chart, its values as a table in a <details>: what a screen reader
 * reads and what the tests compare with the API.
 *
 * Hooks: `data-series` (lines drawn), `data-points` (non-null values drawn) and `data-ready`.
 */

export interface LineSeries {
  label: string;
  values: readonly (number | null)[];
  colour: string;
  dash?: number[];
}

export interface LineChartProps {
  x: readonly number[];
  xLabel: string;
  yLabel: string;
  series: readonly LineSeries[];
  /** What the chart shows, for screen readers. */
  label: string;
  testId: string;
  height?: number;
  /** Format of a value in the table. */
  format?: (v: number) => string;
  /** Log-scale y axis (for terms spanning decades, like Tr H). */
  logY?: boolean;
}

const fmt = (v: number) => String(Number(v.toPrecision(4)));

/** Tick labels with as many decimals as the tick spacing needs (uPlot's default rounds 0.491 and 0.495 both to 0.5). */
export function tickValues(_u: uPlot, splits: number[], _axis: number, _space: number, increment: number): string[] {
  const decimals = Math.min(12, Math.max(0, -Math.floor(Math.log10(Math.abs(increment) || 1))));
  return splits.map((v) => (v === null ? '' : v.toFixed(decimals)));
}

export function LineChart({ x, xLabel, yLabel, series, label, testId, height = 240, format = fmt, logY = false }: LineChartProps) {
  const wrapRef = useRef<HTMLDivElement>(null);
  const [ready, setReady] = useState(false);
  const points = series.reduce((n, s) => n + s.values.filter((v) => v !== null && Number.isFinite(v)).length, 0);

  useEffect(() => {
    const el = wrapRef.current;
    if (!el || x.length === 0) return;
    const data: uPlot.AlignedData = [Float64Array.from(x), ...series.map((s) => s.values.map((v) => (v === null || !Number.isFinite(v) || (logY && v <= 0) ? null : v)))];
    const plot = new uPlot(
      {
        width: Math.max(240, el.clientWidth),
        height,
        scales: { x: { time: false }, y: logY ? { distr: 3 } : {} },
        axes: [{ label: xLabel }, { label: yLabel, size: 70, values: logY ? undefined : tickValues }],
        series: [{ label: xLabel }, ...series.map((s) => ({ label: s.label, stroke: s.colour, width: 2, dash: s.dash, points: { show: true, size: 6 }, spanGaps: false }))],
      },
      data,
      el,
    );
    setReady(true);
    const resize = new ResizeObserver(() => plot.setSize({ width: Math.max(240, el.clientWidth), height }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      plot.destroy();
      setReady(false);
    };
  }, [x, series, xLabel, yLabel, height, logY]);

  return (
    <figure className="chart" aria-label={label}>
      <div ref={wrapRef} data-testid={testId} data-series={series.length} data-points={points} data-ready={ready ? 'true' : 'false'} />
      <details>
        <summary>Values</summary>
        <table className="data" data-testid={`${testId}-table`}>
          <thead>
            <tr>
              <th className="num">{xLabel}</th>
              {series.map((s) => (
                <th key={s.label} className="num">
                  {s.label}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {x.map((xv, i) => (
              <tr key={i}>
                <td className="num">{xv}</td>
                {series.map((s) => {
                  const v = s.values[i];
                  return (
                    <td key={s.label} className="num" data-value={v ?? ''}>
                      {v === null || v === undefined ? <span className="pending">—</span> : format(v)}
                    </td>
                  );
                })}
              </tr>
            ))}
          </tbody>
        </table>
      </details>
    </figure>
  );
}
