/**
 * Fashion-MNIST-like data without a download: 28×28 grayscale images (784 floats in [0, 1]) of ten
 * garment classes, drawn from soft-edged silhouettes (shirts, trousers, shoes, bags…) with a per-image
 * shift, scale, shape jitter, brightness and pixel noise. The tops (T-shirt, pullover, coat, shirt)
 * and the shoes (sandal, sneaker, ankle boot) differ by details a few pixels wide, so as in the real
 * data the classes overlap and a nearest-neighbour search is not trivially right.
 *
 * Everything comes from one seed (mulberry32): the same seed gives the same images, so the example's
 * accuracies and the tests are reproducible.
 */
import { mulberry32, normals } from '../../shared/random.js';

export const IMAGE_SIDE = 28;
export const IMAGE_PIXELS = IMAGE_SIDE * IMAGE_SIDE;
export const CLASS_NAMES = [
  'T-shirt',
  'trouser',
  'pullover',
  'dress',
  'coat',
  'sandal',
  'shirt',
  'sneaker',
  'bag',
  'ankle boot',
] as const;

export interface FashionData {
  /** One 784-float row per image (views into one buffer), row-major pixels, 0 = background. */
  rows: Float32Array[];
  /** Class of each row, 0–9 (CLASS_NAMES). */
  labels: number[];
}

export interface FashionOptions {
  /** Seed of everything random (default 1). Train and query sets should use different seeds. */
  seed?: number;
  /**
   * Standard deviation of the per-pixel Gaussian noise (default 0.08). Higher blurs the classes
   * into each other (lower kNN accuracy); 0 leaves only the geometric variation.
   */
  noise?: number;
  /**
   * Largest shift in pixels, each axis (default 2). Shifts are what makes raw-pixel neighbours
   * poor and a learnt projection worth having.
   */
  maxShift?: number;
}

/** Shape parameters of one image: the class template's knobs, jittered per image. */
type Jitter = (spread: number) => number;
/** A silhouette: intensity in [0, 1] at template coordinates (u, v) ∈ [-1, 1]², v pointing down. */
type Shape = (u: number, v: number) => number;

/** Soft edge over about one pixel: 1 inside, 0 outside (`d` is a signed distance in template units). */
const SOFT = IMAGE_SIDE / 2;
const edge = (d: number): number => Math.min(1, Math.max(0, 0.5 - d * SOFT));

function rect(u0: number, v0: number, u1: number, v1: number): Shape {
  const cu = (u0 + u1) / 2;
  const cv = (v0 + v1) / 2;
  const hu = Math.abs(u1 - u0) / 2;
  const hv = Math.abs(v1 - v0) / 2;
  return (u, v) => edge(Math.max(Math.abs(u - cu) - hu, Math.abs(v - cv) - hv));
}

function ellipse(cu: number, cv: number, ru: number, rv: number): Shape {
  return (u, v) => {
    const r = Math.hypot((u - cu) / ru, (v - cv) / rv);
    return edge((r - 1) * Math.min(ru, rv));
  };
}

/** A ring: an ellipse minus a smaller one (a bag's handle). */
function ring(cu: number, cv: number, ru: number, rv: number, width: number): Shape {
  const outer = ellipse(cu, cv, ru, rv);
  const inner = ellipse(cu, cv, ru - width, rv - width);
  return (u, v) => Math.max(0, outer(u, v) - inner(u, v));
}

/** A trapezoid widening downwards: half-width `top` at v0, `bottom` at v1. */
function trapezoid(v0: number, v1: number, top: number, bottom: number): Shape {
  return (u, v) => {
    const t = Math.min(1, Math.max(0, (v - v0) / (v1 - v0)));
    const half = top + (bottom - top) * t;
    return edge(Math.max(Math.abs(u) - half, Math.abs(v - (v0 + v1) / 2) - (v1 - v0) / 2));
  };
}

const union =
  (...shapes: Shape[]): Shape =>
  (u, v) => {
    let out = 0;
    for (const s of shapes) out = Math.max(out, s(u, v));
    return out;
  };

/** `base` with `marks` darkened to `depth` of its brightness (seams, buttons, zips). */
const carve =
  (base: Shape, depth: number, ...marks: Shape[]): Shape =>
  (u, v) => {
    const b = base(u, v);
    if (b === 0) return 0;
    let m = 0;
    for (const s of marks) m = Math.max(m, s(u, v));
    return b * (1 - (1 - depth) * m);
  };

/** Torso with sleeves of `sleeve` length (0 = none): the tops share it, as in Fashion-MNIST. */
function top(j: Jitter, sleeve: number, width: number): Shape {
  const w = width + j(0.06);
  const shoulder = -0.62 + j(0.05);
  const hem = 0.82 + j(0.06);
  const sleeveEnd = shoulder + sleeve + j(0.08);
  const parts = [rect(-w, shoulder, w, hem)];
  if (sleeve > 0) {
    const reach = w + 0.32 + j(0.05);
    parts.push(rect(-reach, shoulder, -w + 0.05, sleeveEnd), rect(w - 0.05, shoulder, reach, sleeveEnd));
  }
  return union(...parts);
}

const TEMPLATES: Array<(j: Jitter) => Shape> = [
  // T-shirt: short sleeves, a neckline.
  (j) => carve(top(j, 0.32, 0.45), 0.2, ellipse(0, -0.62, 0.16 + j(0.03), 0.1)),
  // Trouser: two legs and a waistband, a gap between them.
  (j) => {
    const gap = 0.05 + Math.abs(j(0.03));
    const w = 0.4 + j(0.05);
    return union(rect(-w, -0.85, w, -0.55), rect(-w, -0.6, -gap, 0.9 + j(0.05)), rect(gap, -0.6, w, 0.9 + j(0.05)));
  },
  // Pullover: long sleeves, plain.
  (j) => top(j, 1.3, 0.48),
  // Dress: narrow at the top, flaring out.
  (j) => union(trapezoid(-0.8 + j(0.05), 0.9 + j(0.05), 0.2 + j(0.04), 0.55 + j(0.08)), rect(-0.12, -0.9, 0.12, -0.7)),
  // Coat: long sleeves, wider, a zip down the middle and pockets.
  (j) =>
    carve(
      top(j, 1.35, 0.52),
      0.35,
      rect(-0.03, -0.62, 0.03, 0.85),
      rect(-0.4, 0.3, -0.18, 0.36),
      rect(0.18, 0.3, 0.4, 0.36),
    ),
  // Sandal: thin straps over a sole, mostly background.
  (j) => {
    const y = 0.15 + j(0.06);
    return union(
      rect(-0.85, y + 0.35, 0.85, y + 0.45),
      rect(-0.6, y - 0.05, 0.5, y + 0.02),
      rect(-0.3, y - 0.25, 0.2, y - 0.18),
      rect(-0.5 + j(0.05), y - 0.25, -0.43, y + 0.4),
      rect(0.3, y - 0.05, 0.37, y + 0.4),
    );
  },
  // Shirt: long sleeves, a collar and a button placket (close to pullover and coat).
  (j) =>
    carve(
      union(top(j, 1.25, 0.46), ellipse(0, -0.62, 0.22, 0.12)),
      0.45,
      rect(-0.02, -0.5, 0.02, 0.85),
      ellipse(0.08, -0.2, 0.04, 0.04),
      ellipse(0.08, 0.2, 0.04, 0.04),
      ellipse(0.08, 0.55, 0.04, 0.04),
    ),
  // Sneaker: a low shoe with a bright sole and laces.
  (j) => {
    const y = 0.3 + j(0.06);
    return carve(
      union(ellipse(0.05, y - 0.05, 0.85 + j(0.05), 0.28 + j(0.04)), rect(-0.9, y + 0.1, 0.9, y + 0.3)),
      0.4,
      rect(-0.2, y - 0.25, -0.15, y - 0.05),
      rect(0, y - 0.25, 0.05, y - 0.05),
    );
  },
  // Bag: a box with a handle.
  (j) => {
    const t = -0.2 + j(0.08);
    const w = 0.72 + j(0.06);
    return union(rect(-w, t, w, 0.8 + j(0.05)), ring(0, t, 0.4 + j(0.05), 0.45 + j(0.06), 0.1));
  },
  // Ankle boot: a shaft and a foot.
  (j) => {
    const heel = 0.45 + j(0.05);
    return union(rect(-0.05, -0.75 + j(0.08), heel, 0.6), rect(-0.8 + j(0.06), 0.15, heel, 0.7 + j(0.04)));
  },
];

/** `count` images, classes in a seeded random order (about count/10 each). */
export function fashionData(count: number, options: FashionOptions = {}): FashionData {
  const rnd = mulberry32(options.seed ?? 1);
  const normal = normals(rnd);
  const noise = options.noise ?? 0.08;
  const maxShift = options.maxShift ?? 2;
  const buffer = new Float32Array(count * IMAGE_PIXELS);
  const rows: Float32Array[] = [];
  const labels: number[] = [];
  const jitter: Jitter = (spread) => (rnd() * 2 - 1) * spread;
  const half = (IMAGE_SIDE - 1) / 2;
  for (let n = 0; n < count; n++) {
    const label = Math.floor(rnd() * TEMPLATES.length);
    const shape = TEMPLATES[label]!(jitter);
    const dx = jitter(maxShift);
    const dy = jitter(maxShift);
    const scale = 0.85 + rnd() * 0.25;
    const brightness = 0.55 + rnd() * 0.45;
    const row = buffer.subarray(n * IMAGE_PIXELS, (n + 1) * IMAGE_PIXELS);
    for (let y = 0; y < IMAGE_SIDE; y++) {
      const v = (y - half - dy) / (half * scale);
      for (let x = 0; x < IMAGE_SIDE; x++) {
        const u = (x - half - dx) / (half * scale);
        const value = shape(u, v) * brightness + normal() * noise;
        row[y * IMAGE_SIDE + x] = Math.min(1, Math.max(0, value));
      }
    }
    rows.push(row);
    labels.push(label);
  }
  return { rows, labels };
}

/** An image as text (two characters per pixel), for a look at what the classes are. */
export function asciiImage(row: Float32Array): string {
  const ramp = ' .:-=+*#%@';
  const lines: string[] = [];
  for (let y = 0; y < IMAGE_SIDE; y++) {
    let line = '';
    for (let x = 0; x < IMAGE_SIDE; x++) {
      const c = ramp[Math.min(ramp.length - 1, Math.floor(row[y * IMAGE_SIDE + x]! * ramp.length))]!;
      line += c + c;
    }
    lines.push(line.trimEnd());
  }
  return lines.join('\n');
}
