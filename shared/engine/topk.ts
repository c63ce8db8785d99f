import type { RowHit } from '../types.js';

/**
 * Bounded top-k selector over (row, score) pairs, backed by typed arrays so a scan over
 * millions of rows allocates nothing per row.
 *
 * Internally every score is turned into a "key" where higher is always better
 * (key = score for cosine/ip, −score for squared L2). Negation is exact in IEEE 754, so
 * the original score is recovered bit-for-bit, and the hot comparison never branches on
 * the metric.
 *
 * The heap keeps the WORST kept entry at the root: a new candidate only has to beat the
 * root to get in, which for k ≪ n rejects almost every row with one comparison.
 *
 * Ordering is total and deterministic: higher key first, then LOWER row first. So two
 * scans that visit the same rows in a different order (a `rows` subset vs a full scan,
 * a batch vs a single query) return identical lists.
 *
 * NaN scores rank below everything (key −∞) so one corrupt vector cannot poison the
 * heap invariant; finite inputs never hit that path.
 */
export class TopK {
  readonly k: number;
  private readonly sign: number;
  private readonly keys: Float64Array;
  private readonly rows: Int32Array;
  private n = 0;

  constructor(k: number, higherIsBetter: boolean) {
    this.k = Math.max(0, Math.floor(k));
    this.sign = higherIsBetter ? 1 : -1;
    // At least one slot so `keys[0]` is always in bounds: an out-of-bounds typed-array
    // read would deoptimise the hot `offer` path.
    this.keys = new Float64Array(Math.max(1, this.k));
    this.rows = new Int32Array(Math.max(1, this.k));
    // With k = 0 the sentinel root (+∞, row −1) can never be beaten, so `offer` needs no
    // extra branch for that case.
    if (this.k === 0) {
      this.keys[0] = Infinity;
      this.rows[0] = -1;
    }
  }

  get size(): number {
    return this.n;
  }

  /** Offers one candidate; keeps it only if it belongs in the current top k. */
  offer(row: number, score: number): void {
    let key = score * this.sign;
    if (this.n < this.k) {
      if (key !== key) key = -Infinity;
      this.siftUp(this.n++, row, key);
      return;
    }
    const rootKey = this.keys[0];
    if (key > rootKey || (key === rootKey && row < this.rows[0])) {
      this.siftDown(row, key);
    }
  }

  /** Returns the kept hits best first and empties the selector so it can be reused. */
  drain(): RowHit[] {
    const out: RowHit[] = new Array<RowHit>(this.n);
    const sign = this.sign;
    // Popping the root yields worst first, so fill from the back.
    for (let i = this.n - 1; i >= 0; i--) {
      const row = this.rows[0];
      const key = this.keys[0];
      out[i] = { row, score: key * sign };
      const last = this.n - 1;
      this.n = last;
      if (last > 0) this.siftDown(this.rows[last], this.keys[last]);
    }
    return out;
  }

  /** Empties without producing results. */
  clear(): void {
    this.n = 0;
  }

  // `a` is worse than `b`: lower key, or equal key and higher row.
  private static worse(ka: number, ra: number, kb: number, rb: number): boolean {
    return ka < kb || (ka === kb && ra > rb);
  }

  private siftUp(pos: number, row: number, key: number): void {
    const keys = this.keys;
    const rows = this.rows;
    let i = pos;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const pk = keys[p];
      const pr = rows[p];
      if (!TopK.worse(key, row, pk, pr)) break;
      keys[i] = pk;
      rows[i] = pr;
      i = p;
    }
    keys[i] = key;
    rows[i] = row;
  }

  /** Replaces the root with (row, key) and restores the heap over the first `n` slots. */
  private siftDown(row: number, key: number): void {
    const keys = this.keys;
    const rows = this.rows;
    const n = this.n;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      let c = l;
      let ck = keys[l];
      let cr = rows[l];
      const r = l + 1;
      if (r < n) {
        const rk = keys[r];
        const rr = rows[r];
        if (TopK.worse(rk, rr, ck, cr)) {
          c = r;
          ck = rk;
          cr = rr;
        }
      }
      if (!TopK.worse(ck, cr, key, row)) break;
      keys[i] = ck;
      rows[i] = cr;
      i = c;
    }
    keys[i] = key;
    rows[i] = row;
  }
}
