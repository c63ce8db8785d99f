/**
 * The `shoal` binary, spawned as a user would run it (`node bin/shoal.mjs …`, the sources through tsx),
 * against a whole local Shoal: the README quickstart with `--json`, file upserts (JSONL, CSV, .npy), the
 * table output, the paged listing, an import through the presigned upload with its reject summary, exit codes.
 * The local Shoal runs in this process, so the binary is spawned asynchronously.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttpShoal, type HttpShoal } from '../../../test/helpers/local-http.js';

const BIN = fileURLToPath(new URL('../bin/shoal.mjs', import.meta.url));

let local: HttpShoal;
let dir: string;

beforeAll(async () => {
  local = await startHttpShoal('cli');
  dir = await mkdtemp(path.join(tmpdir(), 'shoal-cli-'));
});
afterAll(async () => {
  await local?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the binary in an empty directory with no config file, so only the given env configures it. */
function shoal(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      {
        cwd: dir,
        env: {
          PATH: process.env.PATH ?? '',
          HOME: dir,
          SHOAL_URL: local.shoal.url,
          SHOAL_API_KEY: local.shoal.apiKey,
          ...env,
        },
        timeout: 60_000,
      },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

// Bodies are checked field by field below; typing them would restate the API.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function json(args: string[], env?: Record<string, string>): Promise<any> {
  const r = await shoal([...args, '--json'], env);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout);
}

describe('shoal CLI', () => {
  it('runs the README quickstart with --json', async () => {
    expect(await json(['collections', 'create', 'docs', '--dimension', '4', '--metric', 'cosine'])).toMatchObject({
      name: 'docs',
      dimension: 4,
    });
    const rows = [
      { id: 'a', values: [0.1, 0.2, 0.3, 0.4], metadata: { lang: 'en', year: 2021 } },
      { id: 'b', values: [0.4, 0.3, 0.2, 0.1], metadata: { lang: 'de', year: 2023 } },
      { id: 'c', values: [0.1, 0.2, 0.3, 0.5], metadata: { lang: 'en', year: 2024 } },
    ];
    expect(await json(['upsert', 'docs', '--data', JSON.stringify(rows)])).toMatchObject({ upserted: 3 });

    const found = await json([
      'search',
      'docs',
      '--vector',
      '0.1,0.2,0.3,0.4',
      '-k',
      '2',
      '--filter',
      'lang == "en" and year >= 2021',
      '--include',
      'metadata',
    ]);
    expect(found.results.map((r: { id: string }) => r.id)).toEqual(['a', 'c']);
    expect(found.results[1].metadata).toEqual({ lang: 'en', year: 2024 });

    expect(await json(['delete', 'docs', 'b'])).toEqual({ deleted: 1 });
    expect(await json(['delete', 'docs', '--filter', '{"year":{"$lt":2022}}'])).toEqual({ deleted: 1 });
    expect(await json(['list', 'docs'])).toEqual({ vectors: [{ id: 'c' }] });

    const built = await json(['index', 'docs']);
    expect(built.build.queued).toBe(true);
    expect(built.stats).toMatchObject({ pending: 0, count: 1 });
    const version = built.stats.version as number;
    expect(version).toBeGreaterThanOrEqual(1);

    const { versions } = await json(['versions', 'docs']);
    expect(versions[0].version).toBe(version);
    expect((await json(['collections', 'get', 'docs'])).stats).toMatchObject({ count: 1, pending: 0, version });
    expect((await json(['get', 'docs', 'c', 'b'])).vectors.map((v: { id: string }) => v.id)).toEqual(['c']);

    const key = await json(['keys', 'create', '--name', 'search app', '--role', 'read', '--collections', 'docs']);
    expect(key.key).toMatch(/^shoal_/);
    const asReader = { SHOAL_API_KEY: key.key as string };
    const readerHits = await json(['search', 'docs', '--vector', '[0.1,0.2,0.3,0.5]', '-k', '1'], asReader);
    expect(readerHits.results.map((r: { id: string }) => r.id)).toEqual(['c']);

    const denied = await shoal(['upsert', 'docs', '--data', '{"id":"d","values":[1,0,0,0]}', '--json'], asReader);
    expect(denied.code).toBe(1);
    expect(denied.stderr).toContain('403 FORBIDDEN');
    expect(JSON.parse(denied.stdout).error).toMatchObject({ status: 403, code: 'FORBIDDEN' });

    const { keys } = await json(['keys', 'list']);
    expect(keys.map((k: { name: string }) => k.name)).toContain('search app');
  });

  it('upserts JSONL, CSV and .npy files in batches', async () => {
    await json(['collections', 'create', 'files', '--dimension', '3', '--metric', 'l2']);
    const jsonl = path.join(dir, 'rows.jsonl');
    const lines = Array.from({ length: 25 }, (_, i) =>
      JSON.stringify({ id: `j${i}`, values: [i, i + 1, i + 2], metadata: { n: i }, tag: 'top' }),
    );
    await writeFile(jsonl, `${lines.join('\n')}\n\n`);
    const fromJsonl = await json(['upsert', 'files', '--file', jsonl, '--batch-size', '10']);
    expect(fromJsonl).toMatchObject({ upserted: 25, batches: 3, format: 'jsonl' });

    const csv = path.join(dir, 'rows.csv');
    await writeFile(csv, 'id,vector,lang,year\r\nc1,"[1,2,3]",en,2021\r\nc2,"[4,5,6]","de, at",007\r\n');
    expect(await json(['upsert', 'files', '--file', csv])).toMatchObject({ upserted: 2, format: 'csv' });

    // Deterministic values: row r is (r, r + 0.5, -r).
    const rows = 40;
    const header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${rows}, 3), }`;
    const padded = header.padEnd(Math.ceil((10 + header.length + 1) / 64) * 64 - 10 - 1, ' ') + '\n';
    const head = Buffer.alloc(10);
    Buffer.from([0x93]).copy(head, 0);
    head.write('NUMPY', 1, 'latin1');
    head.writeUInt8(1, 6);
    head.writeUInt8(0, 7);
    head.writeUInt16LE(padded.length, 8);
    const data = Buffer.alloc(rows * 12);
    for (let r = 0; r < rows; r++) {
      data.writeFloatLE(r, r * 12);
      data.writeFloatLE(r + 0.5, r * 12 + 4);
      data.writeFloatLE(-r, r * 12 + 8);
    }
    const npy = path.join(dir, 'vecs.npy');
    await writeFile(npy, Buffer.concat([head, Buffer.from(padded, 'latin1'), data]));
    const fromNpy = await shoal([
      'upsert',
      'files',
      '--file',
      npy,
      '--id-prefix',
      'n',
      '--batch-size',
      '16',
      '--json',
      '--progress',
    ]);
    expect(fromNpy.code).toBe(0);
    expect(JSON.parse(fromNpy.stdout)).toMatchObject({ upserted: 40, batches: 3, format: 'npy' });
    // Off a terminal, --progress prints lines (the final one at least) on stderr, never on stdout.
    expect(fromNpy.stderr).toMatch(/upsert files {2}40\/40 rows {2}100\.0%/);

    const info = await json(['collections', 'get', 'files']);
    expect(info.stats.count).toBe(25 + 2 + 40);
    const got = await json(['get', 'files', 'n7', 'c2', 'j3']);
    const byId = Object.fromEntries(got.vectors.map((v: { id: string }) => [v.id, v]));
    expect(byId.n7.values).toEqual([7, 7.5, -7]);
    expect(byId.c2.metadata).toEqual({ lang: 'de, at', year: '007' });
    expect(byId.j3.metadata).toEqual({ n: 3, tag: 'top' });
  });

  it('lists a collection through its pages, filtered, as JSON and as a table', async () => {
    await json(['collections', 'create', 'listed', '--dimension', '2', '--metric', 'l2']);
    const rows = Array.from({ length: 9 }, (_, i) => ({ id: `l${i}`, values: [i, 0], metadata: { n: i } }));
    await json(['upsert', 'listed', '--data', JSON.stringify(rows)]);

    const all = await json(['list', 'listed', '--page-size', '2', '--include', 'metadata,values']);
    expect(all.vectors).toHaveLength(9);
    expect(all.vectors.find((v: { id: string }) => v.id === 'l4')).toEqual({
      id: 'l4',
      values: [4, 0],
      metadata: { n: 4 },
    });
    const filtered = await json(['list', 'listed', '--page-size', '2', '--filter', 'n >= 6']);
    expect(filtered.vectors.map((v: { id: string }) => v.id).sort()).toEqual(['l6', 'l7', 'l8']);
    const byObject = await json(['list', 'listed', '--filter', '{"n":{"$lt":2}}']);
    expect(byObject.vectors.map((v: { id: string }) => v.id).sort()).toEqual(['l0', 'l1']);
    expect((await json(['list', 'listed', '--limit', '4', '--page-size', '3'])).vectors).toHaveLength(4);

    const r = await shoal(['list', 'listed', '--filter', 'n == 3']);
    expect(r.code).toBe(0);
    expect(r.stdout.trimEnd().split('\n')).toEqual([expect.stringMatching(/^ID\s+METADATA$/), 'l3  {"n":3}']);
  });

  it('imports a file through the presigned upload and summarizes its rejects', async () => {
    await json(['collections', 'create', 'imp', '--dimension', '4', '--metric', 'cosine']);
    const file = path.join(dir, 'import.jsonl');
    const lines = Array.from({ length: 6 }, (_, i) =>
      JSON.stringify({ id: `i${i}`, values: i === 4 ? [1, 2, 3] : [i + 1, 0, 1, 0], metadata: { i } }),
    );
    await writeFile(file, `${lines.join('\n')}\n`);
    const out = await json(['import', 'imp', file]);
    expect(out.job).toMatchObject({ state: 'partial', rowsRead: 6, rowsWritten: 5, rowsRejected: 1 });
    expect(out.job.uri).toMatch(/^s3:\/\/[^/]+\/imports\/imp\/[^/]+\/import\.jsonl$/);
    expect(out.rejects).toEqual([{ line: 5, id: 'i4', code: 'WRONG_DIMENSION', reason: expect.any(String) }]);
    expect((await json(['collections', 'get', 'imp'])).stats.count).toBe(5);

    const followed = await shoal(['import', 'imp', '--job', out.job.jobId]);
    expect(followed.code).toBe(0);
    const text = followed.stdout.trimEnd().split('\n');
    expect(text[0]).toBe(`job ${out.job.jobId}: partial`);
    expect(text[1]).toBe('rows read 6, written 5, rejected 1');
    expect(text[2]).toBe('error: 1 of 6 rows were rejected (see the report)');
    expect(text[3]).toMatch(/^LINE\/ROW\s+ID\s+CODE\s+REASON$/);
    expect(text[4]).toMatch(/^5\s+i4\s+WRONG_DIMENSION\s+\S/);
  });

  it('prints search results as a table', async () => {
    await json(['collections', 'create', 'tbl', '--dimension', '2', '--metric', 'ip']);
    await json([
      'upsert',
      'tbl',
      '--data',
      '[{"id":"x","values":[1,0],"metadata":{"lang":"en"}},{"id":"y","values":[0,1]}]',
    ]);
    const r = await shoal(['search', 'tbl', '--vector', '1,0.1', '-k', '2']);
    expect(r.code).toBe(0);
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^ID\s+SCORE\s+METADATA$/);
    expect(lines[1]).toMatch(/^x\s+1\s+\{"lang":"en"\}$/);
    expect(lines[2]).toMatch(/^y\s+0\.1\s+\{\}$/);
  });

  it('exits 2 on usage errors and 1 on API errors naming the code', async () => {
    const unknown = await shoal(['frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown command');

    const badFlag = await shoal(['search', 'docs', '--bogus']);
    expect(badFlag.code).toBe(2);
    expect(badFlag.stdout).toBe('');

    const noVector = await shoal(['search', 'docs']);
    expect(noVector.code).toBe(2);
    expect(noVector.stderr).toContain('--vector');

    const missing = await shoal(['collections', 'get', 'nope']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain('404 NOT_FOUND');

    await json(['collections', 'create', 'dims', '--dimension', '3', '--metric', 'cosine']);
    const wrongDim = await shoal(['upsert', 'dims', '--data', '{"id":"a","values":[1,2]}']);
    expect(wrongDim.code).toBe(1);
    expect(wrongDim.stderr).toMatch(/400 VALIDATION_ERROR \(field: vectors\[0\]\.values\)/);

    const noKey = await shoal(['collections'], { SHOAL_API_KEY: '' });
    expect(noKey.code).toBe(1);
    expect(noKey.stderr).toContain('401 UNAUTHORIZED');
  });

  it('takes the URL and key from the config file when neither flag nor env gives them', async () => {
    const config = path.join(dir, 'config.json');
    await writeFile(config, JSON.stringify({ url: local.shoal.url, apiKey: local.shoal.apiKey }));
    const out = await json(['collections'], { SHOAL_URL: '', SHOAL_API_KEY: '', SHOAL_CONFIG: config });
    expect(out.collections.map((c: { name: string }) => c.name)).toContain('docs');
    const flags = await shoal(['collections', '--url', 'http://127.0.0.1:9', '--json'], { SHOAL_CONFIG: config });
    expect(flags.code).toBe(1);
  });
});
