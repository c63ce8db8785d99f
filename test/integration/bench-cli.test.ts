/**
 * The benchmarks' command line for real (child processes, the documented `npm run -s` form):
 * `--json` prints exactly one JSON document on stdout, and a run without `--record` leaves the
 * git work tree as it found it.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const exec = promisify(execFile);

async function npmRun(script: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec('npm', ['run', '-s', script, '--', ...args], {
      cwd: root,
      maxBuffer: 64 * 2 ** 20,
      env: { ...process.env, NO_COLOR: '1' },
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

async function gitStatus(): Promise<string> {
  return (await exec('git', ['status', '--porcelain'], { cwd: root })).stdout;
}

describe('bench CLI (child processes)', () => {
  it('bench:engine --json prints one JSON document and leaves git status unchanged', async () => {
    const before = await gitStatus();
    const run = await npmRun('bench:engine', [
      '--quick',
      '--json',
      '--datasets',
      'sift5k',
      '--base',
      '600',
      '--queries',
      '30',
    ]);
    expect(run.code, run.stderr).toBe(0);
    const doc = JSON.parse(run.stdout) as {
      bench: string;
      quick: boolean;
      command: string;
      machine: { cpu: string; cores: number; node: string };
      parameters: { datasets: Array<{ name: string; base: number; queries: number }> };
      rows: Array<Record<string, unknown>>;
      filtered: unknown[];
    };
    expect(doc).toMatchObject({ bench: 'engine', quick: true });
    expect(doc.command).toBe('npm run bench:engine -- --quick --datasets sift5k --base 600 --queries 30');
    expect(doc.machine.cores).toBeGreaterThan(0);
    expect(doc.parameters.datasets).toEqual([{ name: 'sift5k', base: 600, queries: 30, dim: 128, metric: 'l2' }]);
    expect(new Set(doc.rows.map((r) => r.engine))).toEqual(new Set(['shoal', 'hnswlib-wasm', 'flat']));
    // 5 ef values × 2 graph engines + one exact row.
    expect(doc.rows).toHaveLength(11);
    for (const r of doc.rows) {
      expect(r).toMatchObject({ dataset: 'sift5k' });
      expect(r.ef === null || typeof r.ef === 'number').toBe(true);
      expect(r.recall).toBeGreaterThanOrEqual(0);
      expect(r.recall).toBeLessThanOrEqual(1);
      expect(r.qps).toBeGreaterThan(0);
      expect('buildVectorsPerSec' in r).toBe(true);
    }
    expect(doc.rows.find((r) => r.engine === 'flat')).toMatchObject({ ef: null, recall: 1, buildVectorsPerSec: null });
    expect(doc.filtered.length).toBeGreaterThan(0);
    expect(await gitStatus()).toBe(before);
  });

  it('bench:sequential --quick --json: one document with the scenarios as rows', async () => {
    const before = await gitStatus();
    const run = await npmRun('bench:sequential', ['--quick', '--json']);
    expect(run.code, run.stderr).toBe(0);
    const doc = JSON.parse(run.stdout) as { bench: string; quick: boolean; rows: unknown[]; power: unknown[] };
    expect(doc).toMatchObject({ bench: 'sequential', quick: true });
    expect(doc.rows).toHaveLength(2);
    expect(doc.rows[0]).toMatchObject({ runs: 100, pA: 0.1, pB: 0.1 });
    expect(doc.power).toHaveLength(12);
    expect(await gitStatus()).toBe(before);
  });

  it('bench:ivf-recall --json: probing every partition finds the whole exact top-10, fewer find less', async () => {
    const args = ['--rows', '24000', '--partitions', '3,8', '--grown-from', '6000', '--json'];
    const run = await npmRun('bench:ivf-recall', args);
    expect(run.code, run.stderr).toBe(0);
    const doc = JSON.parse(run.stdout) as {
      bench: string;
      rows: Array<{
        layoutRows: number;
        splits: number;
        partitions: number;
        recall: Record<string, number>;
        smallest: number;
        largest: number;
      }>;
    };
    expect(doc.bench).toBe('ivf-recall');
    expect(doc.rows.map((r) => [r.layoutRows, r.partitions])).toEqual([
      [24000, 3],
      [24000, 8],
      [6000, 2 + doc.rows[2].splits],
    ]);
    const [three, eight, grown] = doc.rows;
    // Laid out on 6,000 rows (2 partitions), grown 4× by splits: no partition past 2 × 5,000 rows.
    expect(grown.splits).toBeGreaterThan(0);
    expect(grown.largest).toBeLessThanOrEqual(10_000);
    expect(grown.recall['1']).toBeLessThan(grown.recall['2']);
    expect(eight.recall['8']).toBe(1);
    expect(eight.recall['1']).toBeLessThan(eight.recall['4']);
    expect(eight.recall['4']).toBeLessThanOrEqual(eight.recall['8']);
    expect(three.recall['2']).toBeLessThan(1);
    expect(eight.smallest).toBeGreaterThan(0);
  });

  it('bench:models --quick --json: both runtimes × both models, and the migration or null', async () => {
    const before = await gitStatus();
    const run = await npmRun('bench:models', ['--quick', '--json']);
    expect(run.code, run.stderr).toBe(0);
    const doc = JSON.parse(run.stdout) as {
      bench: string;
      quick: boolean;
      machine: { cpu: string; cores: number; node: string };
      rows: Array<{ model: string; runtime: string; batch: number; rowsPerSec: number; msPerBatch: number }>;
      migration: { rows: number; seconds: number; rowsPerSec: number } | null;
    };
    expect(doc).toMatchObject({ bench: 'models', quick: true });
    expect(doc.rows.map((r) => `${r.model}/${r.runtime}`)).toEqual([
      'PCA-32/node',
      'PCA-128/node',
      'PCA-32/wasm',
      'PCA-128/wasm',
    ]);
    for (const r of doc.rows) {
      expect(r.batch).toBe(256);
      expect(r.rowsPerSec).toBeGreaterThan(0);
      expect(r.msPerBatch).toBeGreaterThan(0);
      expect(r).toHaveProperty('loadMs');
    }
    // Null on a stack without the migration API (the bench says so on stderr), else the migrated rows.
    if (doc.migration === null) expect(run.stderr).toContain('migration API not available');
    else expect(doc.migration).toMatchObject({ rows: 2000, rowsPerSec: expect.any(Number) });
    expect(await gitStatus()).toBe(before);
  });

  it('--help prints the usage on stdout (exit 0)', async () => {
    const run = await npmRun('bench:sequential', ['--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('npm run -s bench:sequential -- [options]');
    expect(run.stdout).toContain('--record');
  });

  it('an unknown option is a usage error (exit 2), nothing on stdout', async () => {
    const run = await npmRun('bench:engine', ['--jsonn']);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain('unknown option "--jsonn"');
  });
});
