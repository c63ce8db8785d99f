import { describe, expect, it } from 'vitest';
import { mergeTopK, type Candidate } from '../../shared/search/merge.js';

const c = (id: string, score: number, seq: number, deleted?: boolean): Candidate =>
  deleted === undefined ? { id, score, seq } : { id, score, seq, deleted };

const ids = (cs: Candidate[]): string[] => cs.map((x) => x.id);

describe('mergeTopK', () => {
  it('keeps the newest write of an id even when an older one scores better', () => {
    // Prepare: shard A has an old, close version of "a"; shard B the newer, farther one
    const shardA = [c('a', 0.99, 1), c('b', 0.5, 2)];
    const shardB = [c('a', 0.1, 7), c('c', 0.4, 3)];
    // Act
    const merged = mergeTopK([shardA, shardB], 10, 'cosine');
    // Assess
    expect(merged).toEqual([c('b', 0.5, 2), c('c', 0.4, 3), c('a', 0.1, 7)]);
  });

  it('removes ids whose newest entry in the lists is a tombstone', () => {
    const merged = mergeTopK([[c('a', 0.9, 1), c('b', 0.8, 1)], [c('a', 0, 5, true)]], 10, 'ip');
    expect(ids(merged)).toEqual(['b']);
  });

  it('keeps an id re-inserted after its tombstone', () => {
    const merged = mergeTopK([[c('a', 0, 3, true)], [c('a', 0.7, 4)]], 10, 'ip');
    expect(merged).toEqual([c('a', 0.7, 4)]);
  });

  it('drops shard hits superseded by a newer write known only to the newest map', () => {
    // Prepare: the tail rewrote "a" (its new vector did not make the top k) and deleted "b"
    const shard = [c('a', 0.95, 1), c('b', 0.9, 2), c('c', 0.5, 3), c('d', 0.4, 4)];
    const newest = new Map([
      ['a', { seq: 10, deleted: false }],
      ['b', { seq: 11, deleted: true }],
      ['c', { seq: 3, deleted: false }], // same write as the shard hit: keep
    ]);
    // Act
    const merged = mergeTopK([shard], 10, 'cosine', newest);
    // Assess
    expect(ids(merged)).toEqual(['c', 'd']);
  });

  it('keeps the newer candidate when it is present alongside the newest map entry', () => {
    // Prepare: the tail's own candidate for "a" (seq 10) is in the lists
    const shard = [c('a', 0.95, 1)];
    const tail = [c('a', 0.2, 10)];
    const newest = new Map([['a', { seq: 10, deleted: false }]]);
    // Act / Assess
    expect(mergeTopK([shard, tail], 10, 'cosine', newest)).toEqual([c('a', 0.2, 10)]);
  });

  it('treats a newest-map tombstone of the same seq as a delete', () => {
    const newest = new Map([['a', { seq: 4, deleted: true }]]);
    expect(mergeTopK([[c('a', 1, 4)]], 10, 'ip', newest)).toEqual([]);
  });

  it('truncates to k after removing stale and deleted ids', () => {
    // Prepare
    const list = [c('a', 9, 1), c('b', 8, 1), c('c', 7, 1), c('d', 6, 1), c('e', 5, 1)];
    const newest = new Map([['a', { seq: 2, deleted: true }]]);
    // Act / Assess
    expect(ids(mergeTopK([list], 3, 'ip', newest))).toEqual(['b', 'c', 'd']);
    expect(mergeTopK([list], 0, 'ip')).toEqual([]);
  });

  it('orders l2 ascending and cosine/ip descending, ties by id', () => {
    // Prepare
    const list = [c('z', 2, 1), c('m', 1, 1), c('b', 3, 1), c('a', 2, 1)];
    // Act / Assess
    expect(ids(mergeTopK([list], 10, 'l2'))).toEqual(['m', 'a', 'z', 'b']);
    expect(ids(mergeTopK([list], 10, 'cosine'))).toEqual(['b', 'a', 'z', 'm']);
    expect(ids(mergeTopK([list], 10, 'ip'))).toEqual(['b', 'a', 'z', 'm']);
  });

  it('never returns an id twice, even when the same write appears in several lists', () => {
    // Prepare: "a" seq 3 listed by two shards (e.g. mid-compaction) with slightly different scores
    const lists = [
      [c('a', 0.3, 3), c('b', 0.2, 1)],
      [c('a', 0.31, 3), c('b', 0.2, 1), c('c', 0.1, 2)],
      [c('c', 0.1, 2)],
    ];
    // Act
    const merged = mergeTopK(lists, 10, 'l2');
    // Assess
    expect(ids(merged)).toEqual(['c', 'b', 'a']);
    expect(merged.find((x) => x.id === 'a')?.score).toBe(0.3);
    // and list order does not change the pick
    expect(mergeTopK([...lists].reverse(), 10, 'l2')).toEqual(merged);
  });

  it('sorts NaN scores last instead of scrambling the order', () => {
    const merged = mergeTopK([[c('x', Number.NaN, 1), c('y', 1, 1), c('z', 2, 1)]], 10, 'ip');
    expect(ids(merged)).toEqual(['z', 'y', 'x']);
  });
});
