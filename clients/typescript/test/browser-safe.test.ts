/**
 * The main entry runs in browsers (the console bundles it): no `node:` module, no Node global, byte counts in
 * UTF-8 without `Buffer`, and imports from bytes in hand. `importFile(path)` is in `./node`, checked end to end
 * by sdk.test.ts.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build, type Metafile } from 'esbuild';
import { describe, expect, it } from 'vitest';
import {
  importData,
  upsertAll,
  type ImportJob,
  type ImportProgress,
  type ImportTarget,
  type ImportUpload,
} from '../src/index.js';

const SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../src');

describe('the main entry', () => {
  it('bundles for the browser with no node: module and no Node global', async () => {
    const result = await build({
      entryPoints: [path.join(SRC, 'index.ts')],
      bundle: true,
      write: false,
      format: 'esm',
      platform: 'browser',
      metafile: true,
      logLevel: 'silent',
    });
    const inputs = Object.keys((result.metafile as Metafile).inputs);
    expect(inputs.some((f) => f.endsWith('src/collection.ts'))).toBe(true);
    expect(inputs.filter((f) => f.startsWith('node:') || f.endsWith('src/node.ts'))).toEqual([]);
    expect(result.outputFiles[0].text).not.toMatch(/\b(Buffer|process|require)\b/);
  });
});

describe('upsertAll', () => {
  it('counts the body in UTF-8 bytes, not in string length', async () => {
    // 'é' is one UTF-16 unit and two UTF-8 bytes: by string length three rows would fit, by bytes only two.
    const rows = Array.from({ length: 6 }, (_, i) => ({ id: `r${i}`, values: [i], metadata: { t: 'é'.repeat(100) } }));
    const rowBytes = new TextEncoder().encode(JSON.stringify(rows[0])).byteLength;
    const bodies: string[] = [];
    const maxBytes = 16 + 3 * (rowBytes + 1) - 150;
    const out = await upsertAll(
      async (body, n) => {
        bodies.push(body);
        return { upserted: n };
      },
      rows,
      { maxBytes },
    );
    expect(out).toEqual({ upserted: 6, batches: 3 });
    for (const body of bodies) expect(new TextEncoder().encode(body).byteLength).toBeLessThanOrEqual(maxBytes);
  });
});

describe('importData', () => {
  const upload: ImportUpload = {
    uploadUrl: 'https://bucket.example/imports/docs/rows.jsonl?X-Amz-Signature=x',
    method: 'PUT',
    headers: { 'x-amz-meta-shoal': '1' },
    uri: 's3://bucket/imports/docs/rows.jsonl',
    expiresAt: '2030-01-01T00:00:00Z',
  };
  const job = { jobId: 'j1', state: 'succeeded' } as ImportJob;

  function target(puts: Array<{ url: string; init: RequestInit; bytes: number }>): ImportTarget {
    return {
      name: 'docs',
      imports: {
        requestUpload: async () => upload,
        create: async (input) => {
          expect(input.uri).toBe(upload.uri);
          return job;
        },
        get: async () => job,
      },
      uploadFetch: async (url, init) => {
        puts.push({ url, init, bytes: (await new Response(init.body).arrayBuffer()).byteLength });
        return new Response(null, { status: 200 });
      },
    };
  }

  it('PUTs a Blob as it is, letting fetch set the length', async () => {
    const puts: Array<{ url: string; init: RequestInit; bytes: number }> = [];
    const progress: ImportProgress[] = [];
    const blob = new Blob(['{"id":"a","values":[1]}\n'.repeat(100)]);
    const done = await importData(target(puts), blob, { filename: 'rows.jsonl', onProgress: (p) => progress.push(p) });
    expect(done).toBe(job);
    expect(puts).toHaveLength(1);
    expect(puts[0].init.body).toBe(blob);
    expect(puts[0].init.headers).toEqual(upload.headers);
    expect(puts[0].bytes).toBe(blob.size);
    expect(progress.flatMap((p) => (p.phase === 'upload' ? [p.bytesSent] : []))).toEqual([0, blob.size]);
  });

  it('streams a sized stream behind its content-length, reporting each chunk', async () => {
    const puts: Array<{ url: string; init: RequestInit; bytes: number }> = [];
    const progress: ImportProgress[] = [];
    const chunks = [new Uint8Array(10), new Uint8Array(20), new Uint8Array(5)];
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        for (const c of chunks) controller.enqueue(c);
        controller.close();
      },
    });
    await importData(
      target(puts),
      { stream, size: 35 },
      { filename: 'rows.jsonl', follow: false, onProgress: (p) => progress.push(p) },
    );
    expect(puts[0].init.headers).toEqual({ ...upload.headers, 'content-length': '35' });
    expect(puts[0].bytes).toBe(35);
    expect(progress.flatMap((p) => (p.phase === 'upload' ? [p.bytesSent] : []))).toEqual([0, 10, 30, 35]);
  });
});
