/**
 * Project rule: no line over 120 characters in tracked source (TypeScript, JavaScript, the engine's C++ and
 * scripts). Prettier wraps code at 120 columns but leaves
 * comments, strings and template literals alone; this test catches those. Characters are Unicode code points.
 */
import { describe, expect, it } from 'vitest';
import { readRepoFile, trackedFiles } from '../helpers/repo.js';

const MAX = 120;

describe('line length', () => {
  it(`has no line over ${MAX} characters in tracked .ts, .tsx, .js, .mjs, .cpp and .sh files`, () => {
    const files = trackedFiles(['ts', 'tsx', 'js', 'mjs', 'cpp', 'sh']);
    expect(files.length).toBeGreaterThan(50);
    const offenders = files.flatMap((f) =>
      readRepoFile(f)
        .split(/\r?\n/)
        .flatMap((line, i) => {
          const length = [...line].length;
          return length > MAX ? [`${f}:${i + 1} (${length})`] : [];
        }),
    );
    expect(offenders).toEqual([]);
  });
});
