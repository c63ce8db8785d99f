/**
 * Project rule: no line over 120 characters in tracked source. Prettier wraps code at 120 columns but leaves
 * comments, strings and template literals alone; this test catches those. Characters are Unicode code points.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const MAX = 120;

// TEMPORARY — PENDING: files owned by the engine work (shared/engine/**, bench/**,
// infra/cdk/constructs/shoal-function.ts, test/unit/hnsw*.test.ts) that still have long lines. They are wrapped
// on that branch; remove this list (and its use below) once that work is merged.
const PENDING = new Set(['shared/engine/hnsw.ts']);

function trackedFiles(): string[] {
  return execFileSync('git', ['ls-files', '*.ts', '*.js', '*.mjs'], { cwd: ROOT, encoding: 'utf8' })
    .split('\n')
    .filter((f) => f !== '' && !f.startsWith('bench/results/') && f !== 'package-lock.json');
}

describe('line length', () => {
  it(`has no line over ${MAX} characters in tracked .ts, .js and .mjs files`, () => {
    const files = trackedFiles();
    expect(files.length).toBeGreaterThan(50);
    const offenders = files
      .filter((f) => !PENDING.has(f))
      .flatMap((f) =>
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
