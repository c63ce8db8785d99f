/**
 * The model development loop of examples/models as a user runs it (`npm run -s example:models --
 * --quick --json`, a child process with its own local stack): exactly one JSON document on stdout,
 * both PCA versions registered, the migration done with its evaluation report, the 128-d model at
 * least about as accurate as the 32-d one, and the collection alias on v2 after the promotion and
 * back on v1 after the one-call rollback.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { LoopReport } from '../../examples/models/loop.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const exec = promisify(execFile);

describe('examples/models: the model development loop', () => {
  it('runs --quick --json end to end', { timeout: 180_000 }, async () => {
    let stdout = '';
    let stderr = '';
    try {
      ({ stdout, stderr } = await exec('npm', ['run', '-s', 'example:models', '--', '--quick', '--json'], {
        cwd: root,
        maxBuffer: 64 * 2 ** 20,
        env: { ...process.env, NO_COLOR: '1' },
      }));
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string };
      throw new Error(`example:models exited ${e.code}:\n${e.stderr ?? ''}`);
    }
    const report = JSON.parse(stdout) as LoopReport;
    expect(report.models).toEqual([
      expect.objectContaining({ name: 'fashion-pca', version: 1, dimension: 32 }),
      expect.objectContaining({ name: 'fashion-pca', version: 2, dimension: 128 }),
    ]);
    for (const m of report.models) expect(m.bytes).toBeGreaterThan(m.dimension * 784 * 4);
    expect(report.data).toMatchObject({ train: 2000, queries: 200 });
    // Ten classes: chance is 0.1; the PCA neighbours are far better, and v2 no worse than v1 to noise.
    expect(report.accuracy.v1).toBeGreaterThan(0.5);
    expect(report.accuracy.v2).toBeGreaterThanOrEqual(report.accuracy.v1 - 0.05);

    expect(report.migration.state).toBe('done');
    expect(report.migration.rows).toBeGreaterThanOrEqual(2000);
    expect(report.migration.rowsPerSec).toBeGreaterThan(0);
    // Writes that landed on the source while it ran reached the target.
    expect(report.migration.carriedOver).toBe(report.data.late);
    expect(report.overlap).toBeGreaterThanOrEqual(0);
    expect(report.overlap).toBeLessThanOrEqual(1);
    expect(report.labelAgreement).not.toBeNull();
    for (const side of ['source', 'target'] as const) {
      expect(report.labelAgreement![side]).toBeGreaterThan(0.5);
      expect(report.labelAgreement![side]).toBeLessThanOrEqual(1);
    }

    expect(report.experiment.state).toBe('promoted');
    expect(report.experiment.champion.collection).toBe('fashion-v1');
    expect(report.experiment.challenger.collection).toBe('fashion-v2');
    expect(report.experiment.champion.requests + report.experiment.challenger.requests).toBe(200);
    expect(['champion', 'challenger', 'inconclusive']).toContain(report.experiment.verdict);
    expect(report.aliasAfterPromote).toBe('fashion-v2');
    expect(report.aliasAfterRollback).toBe('fashion-v1');
    // Progress went to stderr, not into the document.
    expect(stderr).toContain('kNN label accuracy');
  });
});
