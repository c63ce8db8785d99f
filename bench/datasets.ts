/**
 * Helpers the dataset benches share (engine, filter-plan).
 */

/**
 * A uniform random attribute per row, `{ r: 0..99 999 }`, from a fixed seed: the filter
 * `r < s·100000` then has selectivity s. The same rows on every run and in every bench.
 */
export function filterAttribute(n: number): Array<{ r: number }> {
  let seed = 12345;
  const rand = () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32;
  return Array.from({ length: n }, () => ({ r: Math.floor(rand() * 100_000) }));
}
