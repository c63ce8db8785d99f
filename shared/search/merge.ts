/**
 * Merges per-shard (and tail) top-k lists into one answer.
 *
 * An id can appear in several places at once: an old version in a sealed shard, a newer
 * one in a later shard or in the tail, a tombstone in the tail. Only the newest write
 * (highest `seq`) is the truth, whatever its score — otherwise an update that moved a
 * vector away from the query would leave the old, closer version visible.
 */
import { higherIsBetter, type Metric } from '../types.js';

export interface Candidate {
  id: string;
  score: number;
  /** Sequence number of the write that produced this candidate; higher is newer. */
  seq: number;
  /** A tombstone: the id was deleted by write `seq`. */
  deleted?: boolean;
}

/** Newest known write per id, e.g. from the tail, which may not appear in any top-k list. */
export type NewestWrites = ReadonlyMap<string, { seq: number; deleted: boolean }>;

/**
 * Whether a newer write (or a tombstone of the same write) known from `newest` makes the candidate
 * stale: the rule mergeTopK applies, usable on one list before merging.
 */
export function isSuperseded(c: Candidate, newest: NewestWrites): boolean {
  const n = newest.get(c.id);
  return n !== undefined && (n.seq > c.seq || (n.seq === c.seq && n.deleted));
}

/** Whether `a` should replace `b` as the representative of their (shared) id. */
function supersedes(a: Candidate, b: Candidate, hib: boolean): boolean {
  if (a.seq !== b.seq) return a.seq > b.seq;
  // Same write seen twice (e.g. a shard and its compacted successor both still listed):
  // a tombstone wins so a delete is never undone, then the better score, so the choice
  // does not depend on list order.
  if (!!a.deleted !== !!b.deleted) return !!a.deleted;
  return hib ? a.score > b.score : a.score < b.score;
}

/**
 * Best first for the metric, ties by id (code-unit order) so equal scores come back in the
 * same order on every call. NaN scores sort last rather than breaking the sort.
 */
export function compareCandidates(a: Candidate, b: Candidate, metric: Metric): number {
  const an = Number.isNaN(a.score);
  const bn = Number.isNaN(b.score);
  if (an !== bn) return an ? 1 : -1;
  if (!an && a.score !== b.score) {
    const better = higherIsBetter(metric) ? a.score > b.score : a.score < b.score;
    return better ? -1 : 1;
  }
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

/**
 * Merges candidate lists into the best `k` live ids:
 * 1. per id, the candidate with the highest `seq` wins, regardless of score;
 * 2. if `newest` knows a newer write for that id than the winner, the winner is stale and
 *    dropped (the newer version, if it matched, would itself be in the lists and have won);
 * 3. tombstones — a winning candidate with `deleted`, or a `newest` entry at least as new
 *    as the winner that says deleted — remove the id;
 * 4. survivors are ordered best first (ties by id) and cut to k.
 * Each id appears at most once.
 */
export function mergeTopK(
  lists: ReadonlyArray<ReadonlyArray<Candidate>>,
  k: number,
  metric: Metric,
  newest?: NewestWrites,
): Candidate[] {
  if (!(k > 0)) return [];
  const hib = higherIsBetter(metric);
  const winners = new Map<string, Candidate>();
  for (const list of lists) {
    for (const c of list) {
      const cur = winners.get(c.id);
      if (cur === undefined || supersedes(c, cur, hib)) winners.set(c.id, c);
    }
  }
  const live: Candidate[] = [];
  for (const c of winners.values()) {
    if (c.deleted || (newest !== undefined && isSuperseded(c, newest))) continue;
    live.push(c);
  }
  live.sort((a, b) => compareCandidates(a, b, metric));
  if (live.length > k) live.length = Math.floor(k);
  return live;
}
