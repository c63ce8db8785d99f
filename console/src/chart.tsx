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
    // The axes are drawn on the canvas, so the scales are mirrored as data-x-min… attributes: the only way a
    // test (or anyone inspecting the page) can tell a sensible range from one of years.
    const exposeScale = (u: uPlot, key: string) => {
      const sc = u.scales[key];
      if (key !== 'x' && key !== 'y') return;
      el.setAttribute(`data-${key}-min`, String(sc.min));
      el.setAttribute(`data-${key}-max`, String(sc.max));
    };
    const hooks = { ...options.hooks, setScale: [...(options.hooks?.setScale ?? []), exposeScale] };
    // A static legend by default: the canvas's box never changes height under the cursor.
    plot.current = new uPlot({ legend: { live: false }, ...options, hooks, width, height }, data, el);
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

/**
 * An x range from the data itself, at least `minPad` either side and 5 % of the span otherwise. uPlot's own
 * choice for a single x value on a time scale is 86 400 / ms seconds past it, about 2.7 years with second
 * timestamps; the min and max it passes in can therefore not be trusted, and a chart using this range must
 * not offer drag-to-zoom (a zoom would arrive through the same arguments and be undone).
 */
export function paddedRange(minPad: number): uPlot.Range.Function {
  return (u, min, max) => {
    const xs = (u.data[0] as Array<number | null>).filter((v): v is number => v !== null && Number.isFinite(v));
    if (!xs.length) return [min, max];
    const lo = Math.min(...xs);
    const hi = Math.max(...xs);
    const pad = Math.max(minPad, (hi - lo) * 0.05);
    return [lo - pad, hi + pad];
  };
}

/**
 * A draw hook for horizontal reference lines (a threshold, a target) across the whole plot, labelled at the
 * right end. A series of constant values would do only from two x values on: with one point it draws nothing.
 */
export function referenceLines(lines: Array<{ value: number; label: string; color: string }>): (u: uPlot) => void {
  return (u) => {
    const { ctx, bbox } = u;
    const dpr = devicePixelRatio || 1;
    ctx.save();
    ctx.lineWidth = dpr;
    ctx.setLineDash([4 * dpr, 4 * dpr]);
    ctx.font = `${12 * dpr}px system-ui, sans-serif`;
    ctx.textAlign = 'right';
    for (const line of lines) {
      const y = Math.round(u.valToPos(line.value, 'y', true));
      ctx.strokeStyle = line.color;
      ctx.fillStyle = line.color;
      ctx.beginPath();
      ctx.moveTo(bbox.left, y);
      ctx.lineTo(bbox.left + bbox.width, y);
      ctx.stroke();
      // The label goes on the side of the line with more room, so a line near an edge keeps it inside the plot.
      const upper = y < bbox.top + bbox.height / 2;
      ctx.textBaseline = upper ? 'top' : 'bottom';
      ctx.fillText(line.label, bbox.left + bbox.width - 4 * dpr, y + (upper ? 3 : -3) * dpr);
    }
    ctx.restore();
  };
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
