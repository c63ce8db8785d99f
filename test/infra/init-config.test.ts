/**
 * Every function (and the search node's process) validates its configuration during init, so a bad
 * deployment fails its cold start (visible as an init error on the first invocation) instead of a request or
 * a queue message later. Each handler is loaded in a fresh Node process, as Lambda does, with no Shoal
 * variables set.
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROJECT_ROOT } from '../../infra/cdk/constructs/shoal-function.js';

const FUNCTIONS = readdirSync(path.join(PROJECT_ROOT, 'functions'));

function load(fn: string): Promise<{ code: number | null; stderr: string }> {
  // A Lambda's handler module, or a long-lived process's entry (the search node's main.ts).
  const dir = path.join(PROJECT_ROOT, 'functions', fn);
  const entry = path.join(dir, existsSync(path.join(dir, 'handler.ts')) ? 'handler.ts' : 'main.ts');
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', '--input-type=module', '-e', `await import(${JSON.stringify(entry)})`],
    // Only what Node needs to start: no AWS_*, no SHOAL_*.
    { cwd: PROJECT_ROOT, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' } },
  );
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stderr })));
}

describe('functions validate their configuration at init', () => {
  it('covers every function in functions/', () => {
    expect(FUNCTIONS.sort()).toEqual([
      'api',
      'authorizer',
      'build-worker',
      'import',
      'index-builder',
      'search-node',
      'shard-search',
    ]);
  });

  it.each(FUNCTIONS)(
    '%s: loading the handler without configuration fails with a ConfigError naming the variable',
    async (fn) => {
      const { code, stderr } = await load(fn);
      expect(code).not.toBe(0);
      expect(stderr).toMatch(/ConfigError: invalid Shoal configuration: SHOAL_[A-Z_]+: /);
    },
  );
});
