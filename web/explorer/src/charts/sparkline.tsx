import { useEffect, useRef } from 'react';

/**
 * A tiny line of a sample's series, for a row of the ranked table. A plain canvas path rather than a
 * charting library: one polyline per channel with no axes, and a page of the table draws dozens of
 * them, where a library instance each (uPlot's DOM, cursor and legend) would cost more than the line.
 * The series is time-major (length × channels); each channel is scaled to its own range.
 */

const CHANNEL_COLOURS = ['#0072B2', '#D55E00', '#009E73', '#CC79A7'];

export interface SparklineProps {
  series: ArrayLike<number>;
  channels?: number;
  width?: number;
  height?: number;
  label: string;
}

export function Sparkline({ series, channels = 1, width = 120, height = 28, label }: SparklineProps) {
  const ref = useRef<HTMLCanvasElement>(null);
  const length = Math.floor(series.length / Math.max(1, channels));

  useEffect(() => {
    const canvas = ref.current;
    const ctx = canvas?.getContext('2d');
    if (!canvas || !ctx) return;
    const dpr = window.devicePixelRatio || 1;
    canvas.width = Math.round(width * dpr);
    canvas.height = Math.round(height * dpr);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, height);
    if (length < 2) return;
    for (let c = 0; c < Math.min(channels, CHANNEL_COLOURS.length); c++) {
      let lo = Infinity;
      let hi = -Infinity;
      for (let t = 0; t < length; t++) {
        const v = series[t * channels + c]!;
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      const span = hi > lo ? hi - lo : 1;
      ctx.strokeStyle = CHANNEL_COLOURS[c]!;
      ctx.lineWidth = 1;
      ctx.beginPath();
      for (let t = 0; t < length; t++) {
        const px = (t / (length - 1)) * (width - 2) + 1;
        const py = height - 1 - ((series[t * channels + c]! - lo) / span) * (height - 2);
        if (t === 0) ctx.moveTo(px, py);
        else ctx.lineTo(px, py);
      }
      ctx.stroke();
    }
  }, [series, channels, width, height, length]);

  return <canvas ref={ref} className="sparkline" style={{ width, height, display: 'block' }} role="img" aria-label={label} data-length={length} />;
}
