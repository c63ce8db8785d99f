import { describe, expect, it } from 'vitest';
import { exactTopK } from '../../shared/engine/distance.js';
import { OVERFETCH_MAX_TAIL_SHARE, supersedeBy } from '../../shared/search/coordinator.js';
import { isSuperseded } from '../../shared/search/merge.js';
import { packTail, tailSnapshot } from '../../shared/search/tail-cache.js';
import type { ShardRef, StoredRecord } from '../../shared/storage/types.js';

const rec = (id: string, seq: number, vector?: number[]): StoredRecord =>
  vector
    ? { collection: 'c@1', id, seq, deleted: false, vector: new Float32Array(vector) }
    : { collection: 'c@1', id, seq, deleted: true };

const shard = (count: number): ShardRef => ({ count }) as ShardRef;

describe('tailSnapshot', () => {
  it('knows the newest write of every id, tombstones included, whatever the record order', () => {
    // Prepare
    const records = [rec('a', 9, [1, 0]), rec('b', 4), rec('a', 3, [0, 1]), rec('c', 5, [2, 2])];
    // Act
    const snap = tailSnapshot(records, 2);
    // Assess
    expect([...snap.newest]).toEqual([
      ['a', { seq: 9, deleted: false }],
      ['b', { seq: 4, deleted: true }],
      ['c', { seq: 5, deleted: false }],
    ]);
    expect(snap.packed()).toBe(snap.packed());
  });

  it('packs cosine rows with their inverse norms, scoring as the scan without them does', () => {
    const records = [rec('a', 1, [3, 4]), rec('z', 2, [0, 0]), rec('d', 3), rec('b', 4, [1, -1])];
    // Act
    const packed = packTail(records, 2, 'cosine');
    // Assess
    expect(packed.live.map((r) => r.id)).toEqual(['a', 'z', 'b']);
    expect(Array.from(packed.invNorms!)).toEqual([Math.fround(1 / 5), 0, Math.fround(1 / Math.SQRT2)]);
    const view = { data: packed.data, offset: 0, stride: 2, dim: 2, count: 3, normalized: false };
    const q = new Float32Array([1, 1]);
    const fast = exactTopK(view, 'cosine', q, 3, { invNorms: packed.invNorms });
    const slow = exactTopK(view, 'cosine', q, 3);
    expect(fast.map((h) => h.row)).toEqual(slow.map((h) => h.row));
    fast.forEach((h, i) => expect(h.score).toBeCloseTo(slow[i].score, 6));
    expect(packTail(records, 2, 'l2').invNorms).toBeUndefined();
  });
});

describe('supersedeBy', () => {
  const newest = (n: number) =>
    new Map(Array.from({ length: n }, (_, i) => [`t${i}`, { seq: 100 + i, deleted: false }]));

  it('over-fetches in proportion to the share of the version the tail may supersede', () => {
    expect(supersedeBy(newest(100), 10, [shard(600), shard(400)]).fetchK).toBe(Math.ceil(20 / 0.9));
    expect(supersedeBy(newest(1), 10, [shard(1000)]).fetchK).toBe(21);
    expect(supersedeBy(newest(500), 10, [shard(1000)]).fetchK).toBe(40);
  });

  it('sends the ids instead when the tail could supersede more than half the rows', () => {
    const share = OVERFETCH_MAX_TAIL_SHARE;
    expect(supersedeBy(newest(Math.ceil(1000 * share) + 1), 10, [shard(1000)]).fetchK).toBeUndefined();
    expect(supersedeBy(newest(20), 10, [shard(10)]).fetchK).toBeUndefined();
    expect(supersedeBy(newest(1), 10, []).fetchK).toBeUndefined();
  });
});

describe('isSuperseded', () => {
  it('is stale under a newer write, or under a tombstone of the same write', () => {
    const n = new Map([
      ['a', { seq: 5, deleted: false }],
      ['b', { seq: 5, deleted: true }],
    ]);
    expect(isSuperseded({ id: 'a', score: 0, seq: 4 }, n)).toBe(true);
    expect(isSuperseded({ id: 'a', score: 0, seq: 5 }, n)).toBe(false);
    expect(isSuperseded({ id: 'b', score: 0, seq: 5 }, n)).toBe(true);
    expect(isSuperseded({ id: 'c', score: 0, seq: 1 }, n)).toBe(false);
  });
});
