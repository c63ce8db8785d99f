/**
 * Imports end to end on a whole local Shoal (`startLocalShoal`, as `npm start`): real SIFT vectors
 * written as JSONL and uploaded with the SDK to the embedded S3 (endpoint and credentials taken
 * from `GET /v1/health`) → S3 event → import queue → import function → job succeeded → a strong
 * search finds the rows. Also: the explicit API on the same object returns the same job, and a
 * .npy upload with an ids sidecar and a bad row ends `partial` with its report; a running import is
 * cancelled with `DELETE …/imports/{jobId}` (409 once ended, 404 when unknown); limits are validated.
 */
import path from 'node:path';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFvecs } from '../../shared/io/vecfiles.js';
import { datasetDir } from '../../shared/io/datasets.js';
import { parseReport } from '../../shared/import/report.js';
import { writeNpy } from '../helpers/parquet-writer.js';
import { startHttpShoal, type HttpShoal } from '../helpers/local-http.js';

let server: HttpShoal;
let s3: S3Client;
let bucket: string;

const call: HttpShoal['call'] = (...args) => server.call(...args);

// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function waitForJob(collection: string, uriSuffix: string, timeoutMs = 45_000): Promise<any> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const { json } = await call('GET', `/v1/collections/${collection}/imports`);
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    const job = json.jobs.find((j: any) => j.uri.endsWith(uriSuffix));
    if (job && ['succeeded', 'partial', 'failed'].includes(job.state)) return job;
    if (Date.now() > until) throw new Error(`import did not finish: ${JSON.stringify(job)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

beforeAll(async () => {
  server = await startHttpShoal('import');
  const health = (await call('GET', '/v1/health')).json;
  const local = health.local as {
    s3Endpoint: string;
    bucket: string;
    region: string;
    accessKeyId: string;
    secretAccessKey: string;
  };
  bucket = local.bucket;
  s3 = new S3Client({
    endpoint: local.s3Endpoint,
    region: local.region,
    credentials: { accessKeyId: local.accessKeyId, secretAccessKey: local.secretAccessKey },
    forcePathStyle: true,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}, 120_000);

afterAll(async () => {
  s3?.destroy();
  await server?.stop();
});

describe('imports on a local Shoal', () => {
  it('imports SIFT vectors uploaded as JSONL; strong search finds them', async () => {
    const sift = readFvecs(path.join(datasetDir(), 'sift5k', 'sift4500_base.fvecs'));
    const n = 2000;
    const lines: string[] = [];
    for (let i = 0; i < n; i++) {
      lines.push(
        JSON.stringify({
          id: `sift-${i}`,
          values: Array.from(sift.data.subarray(i * sift.dim, (i + 1) * sift.dim)),
          metadata: { row: i, half: i < n / 2 ? 'a' : 'b' },
        }),
      );
    }
    expect((await call('POST', '/v1/collections', { name: 'sift', dimension: sift.dim, metric: 'l2' })).status).toBe(
      201,
    );
    const key = 'imports/sift/sift base.jsonl';
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: lines.join('\n') + '\n' }));

    const job = await waitForJob('sift', 'sift base.jsonl');
    expect(job).toMatchObject({
      state: 'succeeded',
      rowsRead: n,
      rowsWritten: n,
      rowsRejected: 0,
      percent: 100,
      error: null,
      report: null,
    });
    expect(job.bytesTotal).toBeGreaterThan(0);
    const one = await call('GET', `/v1/collections/sift/imports/${job.jobId}`);
    expect(one.json.jobId).toBe(job.jobId);

    // The same object again through the API: the same job, nothing re-imported.
    const again = await call('POST', '/v1/collections/sift/imports', { uri: `s3://${bucket}/${key}` });
    expect(again.status).toBe(200);
    expect(again.json.jobId).toBe(job.jobId);

    for (const i of [0, 777, n - 1]) {
      const res = await call('POST', '/v1/collections/sift/search', {
        vector: Array.from(sift.data.subarray(i * sift.dim, (i + 1) * sift.dim)),
        k: 3,
        consistency: 'strong',
        include: ['metadata'],
      });
      expect(res.status).toBe(200);
      expect(res.json.results[0]).toMatchObject({ id: `sift-${i}`, score: 0, metadata: { row: i } });
    }
  });

  it('imports .npy with an ids sidecar; a NaN row makes the job partial with a report', async () => {
    expect(
      (await call('POST', '/v1/collections', { name: 'npy', dimension: 4, metric: 'l2', index: { engine: 'flat' } }))
        .status,
    ).toBe(201);
    const rows = 500;
    const data = new Float32Array(rows * 4).map((_, i) => Math.cos(i));
    data[42 * 4 + 3] = NaN;
    await s3.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: 'imports/npy/v.ids.txt',
        Body: Array.from({ length: rows }, (_, i) => `n${i}`).join('\n'),
      }),
    );
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'imports/npy/v.npy', Body: writeNpy(data, rows, 4) }));
    const job = await waitForJob('npy', 'v.npy');
    expect(job).toMatchObject({ state: 'partial', rowsRead: rows, rowsWritten: rows - 1, rowsRejected: 1 });
    const report = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: job.report }));
    expect(parseReport(await report.Body!.transformToByteArray())).toEqual([
      { row: 42, id: 'n42', code: 'NOT_FINITE', reason: 'vector[3] is NaN' },
    ]);
    const jobs = (await call('GET', '/v1/collections/npy/imports')).json.jobs;
    expect(jobs).toHaveLength(1); // the sidecar upload made no job
    const res = await call('POST', '/v1/collections/npy/search', {
      vector: Array.from(data.subarray(7 * 4, 8 * 4)),
      k: 1,
    });
    expect(res.json.results[0].id).toBe('n7');
  });

  it('validates the explicit import request', async () => {
    expect((await call('POST', '/v1/collections/sift/imports', { uri: 'http://x/y' })).status).toBe(400);
    expect(
      (await call('POST', '/v1/collections/sift/imports', { uri: `s3://${bucket}/imports/sift/missing.jsonl` })).status,
    ).toBe(404);
    expect((await call('GET', '/v1/collections/sift/imports/000000000000000000000000')).status).toBe(404);
    expect((await call('GET', '/v1/collections/nope/imports')).status).toBe(404);
  });

  it('cancels a running import over HTTP; a second cancel is a conflict; unknown jobs are 404', async () => {
    expect(
      (await call('POST', '/v1/collections', { name: 'cancel', dimension: 4, metric: 'l2', index: { engine: 'flat' } }))
        .status,
    ).toBe(201);
    // 100 000 rows: far more than the importer writes in the moment before the cancel lands.
    const lines: string[] = [];
    for (let i = 0; i < 100_000; i++) lines.push(JSON.stringify({ id: `c${i}`, values: [i, 1, 2, 3] }));
    const key = 'imports/cancel/big.jsonl';
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: lines.join('\n') + '\n' }));
    const created = await call('POST', '/v1/collections/cancel/imports', {
      uri: `s3://${bucket}/${key}`,
      maxRows: 1_000_000,
    });
    // The upload's S3 event may have created the job first: then the POST finds it.
    expect([200, 202]).toContain(created.status);
    const jobId = created.json.jobId as string;

    const cancelled = await call('DELETE', `/v1/collections/cancel/imports/${jobId}`);
    expect(cancelled.status).toBe(200);
    expect(cancelled.json).toMatchObject({ jobId, state: 'cancelled', reason: 'CANCELLED' });
    expect(cancelled.json.finishedAt).not.toBeNull();

    // The worker notices at its next batch and settles its counters; the job stays cancelled.
    let job = cancelled.json;
    for (let i = 0; i < 50; i++) {
      await new Promise((r) => setTimeout(r, 100));
      job = (await call('GET', `/v1/collections/cancel/imports/${jobId}`)).json;
    }
    expect(job).toMatchObject({ state: 'cancelled', reason: 'CANCELLED' });
    expect(job.rowsWritten).toBeLessThan(100_000);
    if (job.rowsWritten > 0) {
      const got = await call('POST', '/v1/collections/cancel/vectors/get', { ids: ['c0'] });
      expect(got.json.vectors.map((v: { id: string }) => v.id)).toEqual(['c0']);
    }

    const again = await call('DELETE', `/v1/collections/cancel/imports/${jobId}`);
    expect(again.status).toBe(409);
    expect(again.json.error.code).toBe('CONFLICT');
    expect(again.json.error.message).toMatch(/already ended \(cancelled\)/);
    // A re-POST returns the cancelled job; nothing resumes it.
    const repost = await call('POST', '/v1/collections/cancel/imports', { uri: `s3://${bucket}/${key}` });
    expect(repost.status).toBe(200);
    expect(repost.json).toMatchObject({ jobId, state: 'cancelled' });

    expect((await call('DELETE', '/v1/collections/cancel/imports/000000000000000000000000')).status).toBe(404);
    expect((await call('DELETE', '/v1/collections/cancel/imports/not-a-job')).status).toBe(404);
    expect((await call('DELETE', `/v1/collections/nope/imports/${jobId}`)).status).toBe(404);
  });

  it('validates the limits of an explicit import, naming the field', async () => {
    const uri = `s3://${bucket}/imports/sift/sift base.jsonl`;
    for (const [body, field] of [
      [{ uri, maxRows: 0 }, 'maxRows'],
      [{ uri, maxRows: 1.5 }, 'maxRows'],
      [{ uri, maxDurationSeconds: 10 }, 'maxDurationSeconds'],
      [{ uri, maxRejectRatio: 2 }, 'maxRejectRatio'],
      [{ uri, maxRejectRatio: '0.1' }, 'maxRejectRatio'],
    ] as const) {
      const res = await call('POST', '/v1/collections/sift/imports', body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.json.error).toMatchObject({ code: 'VALIDATION_ERROR', field });
    }
  });
});
