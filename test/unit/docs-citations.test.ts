/**
 * The design lives in the repository: no tracked file cites a document outside it, and every
 * `docs/architecture.md §N` citation in the source names a section that exists.
 */
import { describe, expect, it } from 'vitest';
import { readRepoFile, trackedFiles } from '../helpers/repo.js';

describe('design citations', () => {
  const files = trackedFiles(['ts', 'js', 'mjs', 'md', 'json', 'yml']).map((f) => ({ f, text: readRepoFile(f) }));

  it('cites no design document outside the repository', () => {
    const self = 'test/unit/docs-citations.test.ts';
    // Built from parts so this file does not match itself.
    const outside = [new RegExp(['DESIGN', ' §'].join('')), new RegExp(['\\.\\./shared/', 'DESIGN'].join(''))];
    const offenders = files
      .filter(({ f }) => f !== self)
      .flatMap(({ f, text }) =>
        text.split('\n').flatMap((line, i) => (outside.some((re) => re.test(line)) ? [`${f}:${i + 1}`] : [])),
      );
    expect(offenders).toEqual([]);
  });

  it('every docs/architecture.md §N cited in the tree is a section of that page', () => {
    const page = readRepoFile('docs/architecture.md');
    const sections = new Set([...page.matchAll(/^#{2,3} (\d+(?:\.\d+)?)\.? /gm)].map((m) => m[1]));
    expect(sections.size).toBeGreaterThan(10);
    const cited = files.flatMap(({ f, text }) =>
      [...text.matchAll(/architecture\.md §(\d+(?:\.\d+)?)/g)].map((m) => ({ f, section: m[1] })),
    );
    expect(cited.length).toBeGreaterThan(10);
    expect(cited.filter(({ section }) => !sections.has(section))).toEqual([]);
  });
});
