import { describe, expect, it } from 'vitest';
import { hasSeq } from '../../shared/models/migration.js';

describe('hasSeq (the copy phase’s seq ranges the catch-up skips)', () => {
  const ranges: Array<[number, number]> = [
    [1, 100],
    [102, 102],
    [200, 300],
  ];
  it('finds seqs inside any range, including the ends', () => {
    for (const s of [1, 50, 100, 102, 200, 300]) expect(hasSeq(ranges, s), String(s)).toBe(true);
  });
  it('misses the gaps: a write the lagging listing skipped is applied by the catch-up', () => {
    for (const s of [0, 101, 103, 199, 301]) expect(hasSeq(ranges, s), String(s)).toBe(false);
    expect(hasSeq([], 1)).toBe(false);
  });
});
