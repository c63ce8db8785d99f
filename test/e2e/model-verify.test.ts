/**
 * Asynchronous commit of large model artifacts end to end: with SHOAL_ARTIFACT_SYNC_VERIFY_MB=1,
 * a 2 MiB artifact uploaded through a presigned PUT is committed with 202 `verifying`; the
 * index-builder function (woken through the emulated build queue) hashes it and the version
 * becomes `ready` at its content-addressed key.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startHttpShoal, type HttpShoal } from '../helpers/local-http.js';
import { mulberry32 } from '../helpers/random.js';

let server: HttpShoal;
const call: HttpShoal['call'] = (...args) => server.call(...args);
const saved = process.env.SHOAL_ARTIFACT_SYNC_VERIFY_MB;

beforeAll(async () => {
  process.env.SHOAL_ARTIFACT_SYNC_VERIFY_MB = '1';
  server = await startHttpShoal('verify');
}, 120_000);

afterAll(async () => {
  await server?.stop();
  if (saved === undefined) delete process.env.SHOAL_ARTIFACT_SYNC_VERIFY_MB;
  else process.env.SHOAL_ARTIFACT_SYNC_VERIFY_MB = saved;
});

describe('large model artifacts over HTTP', () => {
  it('commits with 202 verifying; the builder function verifies and the version becomes ready', async () => {
    const rng = mulberry32(3);
    const artifact = Uint8Array.from({ length: 2 * 2 ** 20 }, () => Math.floor(rng() * 256));
    const sha = createHash('sha256').update(artifact).digest('hex');
    const reg = await call('POST', '/v1/models/enc-xl/versions', { dimension: 8, metric: 'l2' });
    expect(reg.status).toBe(201);
    const put = await fetch(reg.json.upload.url, { method: 'PUT', body: artifact });
    expect(put.status).toBe(200);

    const commit = await call('POST', '/v1/models/enc-xl/versions/1/commit', { sha256: sha });
    expect(commit).toMatchObject({
      status: 202,
      json: { state: 'verifying', verification: { sha256: sha, bytes: 2 * 2 ** 20 } },
    });
    expect((await call('POST', '/v1/models/enc-xl/versions/1/upload', {})).status).toBe(409);

    const deadline = Date.now() + 30_000;
    let version = commit.json;
    while (version.state === 'verifying' && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      version = (await call('GET', '/v1/models/enc-xl/versions/1')).json;
    }
    expect(version).toMatchObject({
      state: 'ready',
      artifact: { key: `models/enc-xl/1/${sha}`, sha256: sha, bytes: 2 * 2 ** 20 },
    });
    // The retried commit is idempotent once ready.
    expect(await call('POST', '/v1/models/enc-xl/versions/1/commit', { sha256: sha })).toMatchObject({
      status: 200,
      json: { state: 'ready' },
    });
  });
});
