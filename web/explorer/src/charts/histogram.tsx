import { useEffect, useRef, useState } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { classColour } from './scatter-colours';

/**
 * Histograms of one term per class over shared bins (the API's `termStats.byClass[].histogram`, whose
 * default range is shared by every class so their bins line up), drawn with uPlot as one stepped,
 * lightly filled line per class: overlaid steps stay readable with many classes where grouped bars
 * would shrink to slivers. Beside it, the counts as a table (what a screen reader reads, and what
 * the tests compare with the API), in a <details> so it does not crowd the page.
 *
 * Hooks: `data-bins`, `data-classes`, `data-total` (the sum of every drawn count) and `data-ready`.
 */

export interface HistogramBin {
  lower: number;
  upper: number;
  count: number;
}

export interface ClassHistogram {
  label: number | null;
  name: string;
  bins: readonly HistogramBin[];
}

export interface HistogramProps {
  classes: readonly ClassHistogram[];
  xLabel: string;
  /** What the chart shows, for screen readers. */
  label: string;
  height?: number;
  testId?: string;
}

function fmt(v: number): string {
  return String(Number(v.toPrecision(4)));
}

export function Histogram({ classes, xLabel, label, height = 260, testId }: HistogramProps) {
  const wrapRef = useRef<HTMLDivElement>(null);
  const [ready, setReady] = useState(false);
  const bins = classes[0]?.bins ?? [];
  const total = classes.reduce((sum, c) => sum + c.bins.reduce((s, b) => s + b.count, 0), 0);

  useEffect(() => {
    const el = wrapRef.current;
    if (!el || bins.length === 0) return;
    // A step after each bin's lower edge, closed at the last bin's upper edge.
    const xs = [...bins.map((b) => b.lower), bins[bins.length - 1]!.upper];
    const data: uPlot.AlignedData = [xs, ...classes.map((c) => [...c.bins.map((b) => b.count), c.bins[c.bins.length - 1]?.count ?? 0])];
    const stepped = uPlot.paths.stepped!({ align: 1 });
    const plot = new uPlot(
      {
        width: Math.max(240, el.clientWidth),
        height,
        scales: { x: { time: false } },
        axes: [{ label: xLabel }, { label: 'samples' }],
        // The legend names the classes; the counts are in the table below, so no live values.
        legend: { show: true, live: false },
        cursor: { drag: { x: false, y: false } },
        series: [
          { label: xLabel, value: (_u, v) => (v == null ? '' : fmt(v)) },
          ...classes.map((c, i) => {
            const colour = classColour(c.label ?? i);
            return { label: c.name, stroke: colour, fill: `${colour}33`, width: 1.5, paths: stepped, points: { show: false } };
          }),
        ],
        hooks: { draw: [() => setReady(true)] },
      },
      data,
      el,
    );
    const observer = new ResizeObserver(() => plot.setSize({ width: Math.max(240, el.clientWidth), height }));
    observer.observe(el);
    return () => {
      observer.disconnect();
      plot.destroy();
      setReady(false);
    };
  }, [classes, bins, height, xLabel]);

  return (
    <figure className="chart histogram" data-testid={testId} data-bins={bins.length} data-classes={classes.length} data-total={total} data-ready={ready ? 'true' : 'false'}>
      <div ref={wrapRef} role="img" aria-label={label} />
      <details>
        <summary>Bin counts</summary>
        <table className="histogram-table" data-testid={testId ? `${testId}-table` : undefined}>
          <thead>
            <tr>
              <th scope="col">{xLabel} bin</th>
              {classes.map((c, i) => (
                <th scope="col" key={i}>
                  {c.name}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {bins.map((b, j) => (
              <tr key={j}>
                <th scope="row">
                  [{fmt(b.lower)}, {fmt(b.upper)}
                  {j === bins.length - 1 ? ']' : ')'}
                </th>
                {classes.map((c, i) => (
                  <td key={i} data-testid={`bin-${c.label ?? 'all'}-${j}`}>
                    {c.bins[j]?.count ?? ''}
                  </td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </details>
    </figure>
  );
}
