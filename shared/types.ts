/** Distance metric of a collection. See `docs/architecture.md` for score semantics. */
export type Metric = 'cosine' | 'l2' | 'ip';
export const METRICS: readonly Metric[] = ['cosine', 'l2', 'ip'];

/**
 * Whether a higher score is better. cosine → cosine similarity, ip → inner product
 * (both higher is better); l2 → squared Euclidean distance (lower is better).
 */
export function higherIsBetter(metric: Metric): boolean {
  return metric !== 'l2';
}

/** A metadata value as stored and filtered: JSON. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type Metadata = { [key: string]: JsonValue };

/** One search hit inside an engine: the row number in the shard and its score. */
export interface RowHit {
  row: number;
  score: number;
}

/** One search hit after label → id mapping. */
export interface Hit {
  id: string;
  score: number;
  /** Sequence number of the write that produced this vector (for newest-wins merging). */
  seq: number;
}
