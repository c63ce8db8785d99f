/**
 * The design lives in the repository: no tracked file cites a document outside it, and every
 * `docs/architecture.md §N` citation in the source names a section that exists.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

function trackedFiles(): string[] {
  return execFileSync('git', ['ls-files'], { cwd: ROOT, encoding: 'utf8' })
    .split('\n')
    .filter(
      (f) => /\.(ts|js|mjs|md|json|yml)$/.test(f) && !f.startsWith('bench/results/') && f !== 'package-lock.json',
    );
}

describe('design citations', () => {
  const files = trackedFiles().map((f) => ({ f, text: readFileSync(join(ROOT, f), 'utf8') }));

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
    const page = readFileSync(join(ROOT, 'docs/architecture.md'), 'utf8');
    const sections = new Set([...page.matchAll(/^#{2,3} (\d+(?:\.\d+)?)\.? /gm)].map((m) => m[1]));
    expect(sections.size).toBeGreaterThan(10);
    const cited = files.flatMap(({ f, text }) =>
      [...text.matchAll(/architecture\.md §(\d+(?:\.\d+)?)/g)].map((m) => ({ f, section: m[1] })),
    );
    expect(cited.length).toBeGreaterThan(10);
    expect(cited.filter(({ section }) => !sections.has(section))).toEqual([]);
  });
});
