/** The repository as the source-scanning tests see it: its root and the files git tracks. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/**
 * Tracked files whose names end in one of `extensions` (e.g. `['ts', 'md']`), without recorded
 * benchmark results and the lockfile (generated, not written by hand).
 */
export function trackedFiles(extensions: readonly string[]): string[] {
  const suffix = new RegExp(`\\.(${extensions.join('|')})$`);
  return execFileSync('git', ['ls-files'], { cwd: ROOT, encoding: 'utf8' })
    .split('\n')
    .filter((f) => suffix.test(f) && !f.startsWith('bench/results/') && f !== 'package-lock.json');
}

export function readRepoFile(file: string): string {
  return readFileSync(join(ROOT, file), 'utf8');
}
