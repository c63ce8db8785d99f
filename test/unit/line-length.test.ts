/**
 * Project rule: no line over 120 characters in tracked source (TypeScript, JavaScript, the engine's C++ and
 * scripts). Prettier wraps code at 120 columns but leaves
 * comments, strings and template literals alone; this test catches those. Characters are Unicode code points.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const MAX = 120;

function trackedFiles(): string[] {
  return execFileSync('git', ['ls-files', '*.ts', '*.js', '*.mjs', '*.cpp', '*.sh'], { cwd: ROOT, encoding: 'utf8' })
    .split('\n')
    .filter((f) => f !== '' && !f.startsWith('bench/results/') && f !== 'package-lock.json');
}

describe('line length', () => {
  it(`has no line over ${MAX} characters in tracked .ts, .js, .mjs, .cpp and .sh files`, () => {
    const files = trackedFiles();
    expect(files.length).toBeGreaterThan(50);
    const offenders = files.flatMap((f) =>
      readFileSync(join(ROOT, f), 'utf8')
        .split(/\r?\n/)
        .flatMap((line, i) => {
          const length = [...line].length;
          return length > MAX ? [`${f}:${i + 1} (${length})`] : [];
        }),
    );
    expect(offenders).toEqual([]);
  });
});
