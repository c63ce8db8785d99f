/**
 * Model artifacts end to end over HTTP against a whole local Shoal (`startLocalShoal`): the
 * registration's presigned URL works from a plain HTTP client against the embedded S3, commit
 * verifies the sha256, a committed version answers 409 to new upload URLs; multipart through
 * `POST .../upload {parts}` and `commit {uploadId, parts}`; abort; validation errors name the field.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mulberry32 } from '../helpers/random.js';
import { startHttpShoal, type HttpShoal } from '../helpers/local-http.js';

const MIB = 1024 * 1024;

let server: HttpShoal;

const call: HttpShoal['call'] = (...args) => server.call(...args);

function bytes(n: number, seed: number): Buffer {
  const rng = mulberry32(seed);
  return Buffer.from(Uint8Array.from({ length: n }, () => Math.floor(rng() * 256)));
}

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

beforeAll(async () => {
  server = await startHttpShoal('models', { apiKey: 'model-key' });
}, 120_000);

afterAll(async () => {
  await server?.stop();
});

describe('model artifacts over HTTP', () => {
  it('uploads through the presigned URL of the registration, commits, and refuses new URLs afterwards', async () => {
    const reg = await call('POST', '/v1/models/enc/versions', { dimension: 16, metric: 'cosine', framework: 'onnx' });
    expect(reg.status).toBe(201);
    expect(reg.json.upload).toMatchObject({
      uploaded: false,
      method: 'PUT',
      headers: {},
      paths: {
        upload: '/v1/models/enc/versions/1/upload',
        commit: '/v1/models/enc/versions/1/commit',
        inline: '/v1/models/enc/versions/1/artifact',
      },
    });
    const artifact = bytes(200_000, 11);
    const put = await fetch(reg.json.upload.url, {
      method: 'PUT',
      body: artifact,
      headers: { 'content-type': 'application/octet-stream' },
    });
    expect(put.status).toBe(200);

    const bad = await call('POST', '/v1/models/enc/versions/1/commit', { sha256: '0'.repeat(64) });
    expect(bad.status).toBe(400);
    expect(bad.json.error).toMatchObject({
      code: 'VALIDATION_ERROR',
      field: 'sha256',
      details: { actual: sha256(artifact) },
    });
    const ok = await call('POST', '/v1/models/enc/versions/1/commit', { sha256: sha256(artifact) });
    expect(ok.status).toBe(200);
    expect(ok.json).toMatchObject({
      state: 'ready',
      artifact: { key: `models/enc/1/${sha256(artifact)}`, bytes: 200_000 },
    });

    const again = await call('POST', '/v1/models/enc/versions/1/upload');
    expect(again.status).toBe(409);
    expect(again.json.error).toMatchObject({ code: 'CONFLICT', field: 'version' });
    // The old URL still writes the staging key, but the committed version does not move.
    expect((await fetch(reg.json.upload.url, { method: 'PUT', body: bytes(10, 12) })).status).toBe(200);
    expect((await call('GET', '/v1/models/enc/versions/1')).json.artifact).toEqual(ok.json.artifact);
  }, 60_000);

  it(
    'multipart: two parts PUT with fetch, ' + 'completed and verified by one commit; abort; bad input names the field',
    async () => {
      expect((await call('POST', '/v1/models/enc/versions', { dimension: 16, metric: 'cosine' })).status).toBe(201);
      const mp = await call('POST', '/v1/models/enc/versions/2/upload', { parts: 2, expiresIn: 600 });
      expect(mp.status).toBe(200);
      expect(mp.json).toMatchObject({ method: 'PUT', uploadId: expect.any(String), minPartBytes: 5 * MIB });
      const whole = bytes(5 * MIB + 1000, 13);
      const chunks = [whole.subarray(0, 5 * MIB), whole.subarray(5 * MIB)];
      const parts = [];
      for (let i = 0; i < 2; i++) {
        const res = await fetch(mp.json.parts[i].url, { method: 'PUT', body: chunks[i] });
        expect(res.status).toBe(200);
        parts.push({ partNumber: i + 1, etag: res.headers.get('etag') });
      }
      const missing = await call('POST', '/v1/models/enc/versions/2/commit', {
        sha256: sha256(whole),
        uploadId: mp.json.uploadId,
      });
      expect(missing.status).toBe(400);
      expect(missing.json.error).toMatchObject({ code: 'VALIDATION_ERROR', field: 'parts' });
      const done = await call('POST', '/v1/models/enc/versions/2/commit', {
        sha256: sha256(whole),
        uploadId: mp.json.uploadId,
        parts,
      });
      expect(done.status).toBe(200);
      expect(done.json).toMatchObject({ state: 'ready', artifact: { sha256: sha256(whole), bytes: whole.byteLength } });

      expect((await call('POST', '/v1/models/enc/versions', { dimension: 16, metric: 'cosine' })).status).toBe(201);
      const doomed = await call('POST', '/v1/models/enc/versions/3/upload', { parts: 1 });
      const aborted = await call('POST', '/v1/models/enc/versions/3/upload/abort', { uploadId: doomed.json.uploadId });
      expect({ status: aborted.status, json: aborted.json }).toEqual({
        status: 200,
        json: { aborted: true, uploadId: doomed.json.uploadId },
      });
      const gone = await call('POST', '/v1/models/enc/versions/3/upload/abort', { uploadId: doomed.json.uploadId });
      expect(gone.status).toBe(404);
      expect(gone.json.error).toMatchObject({ code: 'NOT_FOUND', field: 'uploadId' });

      const tooMany = await call('POST', '/v1/models/enc/versions/3/upload', { parts: 1001 });
      expect(tooMany.status).toBe(400);
      expect(tooMany.json.error).toMatchObject({ code: 'VALIDATION_ERROR', field: 'parts' });
      const shortTtl = await call('POST', '/v1/models/enc/versions/3/upload', { expiresIn: 5 });
      expect(shortTtl.json.error).toMatchObject({ code: 'VALIDATION_ERROR', field: 'expiresIn' });
    },
    60_000,
  );
});
