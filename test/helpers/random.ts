import type { VectorInput } from '../../shared/service.js';
import type { Metadata } from '../../shared/types.js';

/**
 * Seeded randomness for tests: every "random" test input is reproducible from its seed,
 * so a failure seen once can be replayed exactly.
 */

/** Mulberry32: a tiny, fast 32-bit PRNG. Returns floats in [0, 1). Not for cryptography. */
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

/** count × dim row-major vectors with components uniform in [-1, 1). */
export function randomVectors(rng: () => number, count: number, dim: number): Float32Array {
  const out = new Float32Array(count * dim);
  for (let i = 0; i < out.length; i++) out[i] = rng() * 2 - 1;
  return out;
}

/** n seeded vectors as upsert inputs with ids `<prefix>0..`, with optional per-row metadata. */
export function vectorInputs(
  n: number,
  dim: number,
  seed: number,
  prefix = 'v',
  metadata?: (i: number) => Metadata,
): VectorInput[] {
  const data = randomVectors(mulberry32(seed), n, dim);
  return Array.from({ length: n }, (_, i) => ({
    id: `${prefix}${i}`,
    values: data.slice(i * dim, (i + 1) * dim),
    ...(metadata ? { metadata: metadata(i) } : {}),
  }));
}
