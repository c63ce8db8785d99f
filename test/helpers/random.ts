import { mulberry32 } from '../../shared/random.js';
import type { VectorInput } from '../../shared/service.js';
import type { Metadata } from '../../shared/types.js';

/**
 * Seeded randomness for tests: every "random" test input is reproducible from its seed,
 * so a failure seen once can be replayed exactly.
 */

/** Mulberry32 (shared/random.ts): the seeded PRNG behind every helper here. */
export { mulberry32 };

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
