/**
 * Mulberry32: a tiny, fast, seeded 32-bit PRNG returning floats in [0, 1). Used wherever Shoal
 * needs reproducible sampling (evaluation queries, graph-tuning samples) and by the tests and
 * benchmarks for deterministic inputs. Not for cryptography.
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Deterministic sample of `n` distinct row numbers out of `count` (seeded partial Fisher–Yates). */
export function sampleRows(count: number, n: number, seed: number): number[] {
  const rnd = mulberry32(seed);
  const rows = Array.from({ length: count }, (_, i) => i);
  const take = Math.min(n, count);
  for (let i = 0; i < take; i++) {
    const j = i + Math.floor(rnd() * (count - i));
    [rows[i], rows[j]] = [rows[j], rows[i]];
  }
  return rows.slice(0, take);
}

/** Standard normals from a seeded uniform source (Box–Muller; the second value of each pair is kept). */
export function normals(rand: () => number): () => number {
  let spare: number | undefined;
  return () => {
    if (spare !== undefined) {
      const s = spare;
      spare = undefined;
      return s;
    }
    // 1 − u keeps log() away from 0: mulberry32 returns [0, 1).
    const r = Math.sqrt(-2 * Math.log(1 - rand()));
    const theta = 2 * Math.PI * rand();
    spare = r * Math.sin(theta);
    return r * Math.cos(theta);
  };
}
