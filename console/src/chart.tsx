/**
 * uPlot in a Preact component: the chart is created once per mount and rebuilt when its options key
 * changes; its box has a fixed height so nothing below it moves when it draws. A table of the same
 * numbers sits beside every chart for screen readers (the canvas itself is not readable).
 */
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';

export interface ChartProps {
  label: string;
  options: Omit<uPlot.Options, 'width' | 'height'>;
  data: uPlot.AlignedData;
  height?: number;
  /** Changing it rebuilds the chart (series or scales changed); data alone is updated in place. */
  shapeKey: string;
}

export function Chart({ label, options, data, height = 260, shapeKey }: ChartProps) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const width = Math.max(320, el.clientWidth || 640);
    // A static legend by default: the canvas's box never changes height under the cursor.
    plot.current = new uPlot({ legend: { live: false }, ...options, width, height }, data, el);
    return () => {
      plot.current?.destroy();
      plot.current = null;
    };
    // Data changes go through setData below; only a new shape rebuilds.
  }, [shapeKey, height]);
  useEffect(() => {
    plot.current?.setData(data);
  }, [data]);
  return <div ref={box} class="chart" role="img" aria-label={label} style={{ minHeight: `${height + 40}px` }} />;
}

/** Colours that read on light and dark backgrounds. */
export const COLORS = { champion: '#2f6fdf', challenger: '#d9622b', neutral: '#6b7280', accent: '#1a9b5b' };

/**
 * A uPlot draw hook that strokes vertical interval bars: `intervals[i]` per series, per x index,
 * `[lo, hi]` or null; `offsets` shifts each series sideways (CSS px) so bars of a pair do not overlap.
 */
export function intervalBars(
  intervals: Array<Array<[number, number] | null>>,
  colors: string[],
  offsets: number[],
): (u: uPlot) => void {
  return (u) => {
    const { ctx } = u;
    const dpr = devicePixelRatio || 1;
    ctx.save();
    ctx.lineWidth = 2 * dpr;
    intervals.forEach((series, s) => {
      ctx.strokeStyle = colors[s];
      series.forEach((iv, i) => {
        if (!iv) return;
        const x = u.valToPos(u.data[0][i], 'x', true) + offsets[s] * dpr;
        const y0 = u.valToPos(iv[0], 'y', true);
        const y1 = u.valToPos(iv[1], 'y', true);
        ctx.beginPath();
        ctx.moveTo(x, y0);
        ctx.lineTo(x, y1);
        ctx.moveTo(x - 6 * dpr, y0);
        ctx.lineTo(x + 6 * dpr, y0);
        ctx.moveTo(x - 6 * dpr, y1);
        ctx.lineTo(x + 6 * dpr, y1);
        ctx.stroke();
      });
    });
    ctx.restore();
  };
}
