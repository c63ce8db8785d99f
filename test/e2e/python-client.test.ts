/**
 * The Python client (`clients/python`, package `shoal`) end to end: its unittest suites run against a whole
 * local Shoal (`startLocalShoal`, as `npm start`), the live ones included, so CI (`npm test`) runs the README
 * quickstart through the Python client. The live tests skip themselves without SHOAL_URL/SHOAL_API_KEY, so
 * this file also proves from unittest's own report that they ran instead of being skipped.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from '../helpers/repo.js';
import { startHttpShoal, type HttpShoal } from '../helpers/local-http.js';

let server: HttpShoal;

beforeAll(async () => {
  server = await startHttpShoal('python');
}, 120_000);

afterAll(async () => {
  await server?.stop();
});

/** Live tests that must run and pass against a local Shoal (not skip). */
const MUST_RUN = [
  'test_quickstart',
  'test_typed_errors',
  'test_collections_list_get_and_multi_query_search',
  'test_aliases_experiment_and_feedback',
  'test_keys_create_list_revoke',
  'test_model_version_with_an_artifact',
  'test_import_of_an_object_in_s3',
  'test_list_vectors',
  'test_patch_metadata',
  'test_import_file_and_rejects',
  'test_tune_in_the_request_and_as_a_job',
];

/** Tests allowed to skip: the numpy paths on a machine without numpy. */
const MAY_SKIP = new Set([
  'test_numpy_round_trip',
  'test_upsert_and_search_take_numpy_arrays',
  'test_a_nan_in_an_array_is_named',
]);

function runPython(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  // Asynchronous on purpose: the shoal under test runs in this process, so a spawnSync would starve it.
  return new Promise((resolve, reject) => {
    const child = spawn('python3', ['-m', 'unittest', 'discover', '-s', 'clients/python/tests', '-v'], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (b: Buffer) => (output += b.toString()));
    child.stderr.on('data', (b: Buffer) => (output += b.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output }));
  });
}

/** `name -> outcome` from unittest's verbose lines: `test_x (module.Class.test_x) ... ok`. */
function outcomes(output: string): Map<string, string> {
  const result = new Map<string, string>();
  for (const m of output.matchAll(/^(test_\w+) \([\w.]+\) \.\.\. (ok|FAIL|ERROR|skipped.*|expected failure.*)$/gm)) {
    result.set(m[1], m[2]);
  }
  return result;
}

describe('Python client', () => {
  it('passes its unittest suites, the live README quickstart included, against a local Shoal', async () => {
    const { code, output } = await runPython({
      SHOAL_URL: server.shoal.url,
      SHOAL_API_KEY: server.shoal.apiKey,
      PYTHONPATH: path.join(ROOT, 'clients/python'),
      PYTHONDONTWRITEBYTECODE: '1',
    });
    expect(code, output).toBe(0);
    const ran = /^Ran (\d+) tests? in /m.exec(output);
    expect(ran, output).not.toBeNull();
    const byName = outcomes(output);
    for (const name of MUST_RUN) expect(byName.get(name), `${name}\n${output}`).toBe('ok');
    const skipped = [...byName].filter(([, outcome]) => outcome.startsWith('skipped')).map(([name]) => name);
    // Every test's line was parsed: "Ran N" counts skipped tests before Python 3.12.1 and leaves them out since.
    expect([byName.size, byName.size - skipped.length], output).toContain(Number(ran?.[1]));
    expect(skipped.filter((name) => !MAY_SKIP.has(name))).toEqual([]);
  }, 240_000);
});
