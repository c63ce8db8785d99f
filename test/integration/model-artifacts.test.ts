/**
 * Model artifacts uploaded straight to S3 (issue 6, item 1) against the embedded emulators:
 * presigned single PUTs and multipart uploads sent with plain `fetch`, sha256 verified by
 * streaming at commit, immutability after commit (no new URL, and an old still-valid URL
 * cannot change what the committed version points at), abort, and the inline path beside it.
 */
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConflictError, NotFoundError, ValidationError } from '../../shared/errors.js';
import { MIN_PART_BYTES } from '../../shared/lifecycle/models.js';
import { modelArtifactKey } from '../../shared/storage/keys.js';
import { LifecycleCore } from '../../shared/lifecycle/service.js';
import { ShardCache } from '../../shared/search/shard-cache.js';
import { lifecycleCores, startEmulatedStack, type EmulatedStack } from '../helpers/emulated-stack.js';
import { mulberry32 } from '../helpers/random.js';
import type { MultipartUpload, SingleUpload } from '../../shared/service-types.js';

let stack: EmulatedStack;
let life: LifecycleCore;
const clock = Date.parse('2030-01-01T00:00:00Z');
const alice = { actor: 'alice' };
const spec = { dimension: 8, metric: 'cosine' as const };

const sha256 = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

/** Seeded pseudo-random bytes (incompressible, deterministic). */
function bytes(n: number, seed: number): Uint8Array {
  const rng = mulberry32(seed);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.floor(rng() * 256);
  return out;
}

async function put(url: string, body: Uint8Array): Promise<Response> {
  return fetch(url, { method: 'PUT', body });
}

async function register(name: string): Promise<{ version: number; upload: SingleUpload }> {
  const { model, upload } = await life.registerModelVersion(name, spec, alice);
  return { version: model.version, upload: upload as unknown as SingleUpload };
}

beforeAll(async () => {
  stack = await startEmulatedStack({ bucket: 'shoal-models', now: () => clock });
  ({ life } = lifecycleCores(stack, () => clock));
}, 60_000);

afterAll(async () => {
  await stack?.stop();
});

describe('presigned single PUT', () => {
  it('uploads with fetch, refuses a wrong sha256, commits the right one, then stays immutable', async () => {
    const { version, upload } = await register('big');
    expect(upload).toMatchObject({ method: 'PUT', headers: {}, expiresAt: new Date(clock + 900_000).toISOString() });
    const url = new URL(upload.url);
    // Path-style against the local S3, a SigV4 query signature, and no checksum of an empty body baked in.
    expect(url.origin).toBe(new URL(stack.emulators.endpoints.s3).origin);
    expect(url.pathname).toBe(`/shoal-models/${modelArtifactKey('big', version)}`);
    expect(url.searchParams.get('X-Amz-Algorithm')).toBe('AWS4-HMAC-SHA256');
    expect(url.searchParams.get('X-Amz-Expires')).toBe('900');
    expect([...url.searchParams.keys()].filter((k) => k.toLowerCase().includes('checksum'))).toEqual([]);

    const artifact = bytes(300_000, 1);
    expect((await put(upload.url, artifact)).status).toBe(200);

    const wrong = await life.commitModelVersion('big', version, 'f'.repeat(64)).catch((e: unknown) => e);
    expect(wrong).toBeInstanceOf(ValidationError);
    expect(wrong).toMatchObject({ field: 'sha256', details: { actual: sha256(artifact), bytes: artifact.byteLength } });

    const ready = await life.commitModelVersion('big', version, sha256(artifact));
    expect(ready).toMatchObject({
      state: 'ready',
      artifact: { key: `models/big/${version}/${sha256(artifact)}`, sha256: sha256(artifact), bytes: 300_000 },
    });
    expect(sha256(await stack.objects.get(ready.artifact.key))).toBe(sha256(artifact));
    // The staging object is dropped once the committed copy exists.
    await expect(stack.objects.get(modelArtifactKey('big', version))).rejects.toBeInstanceOf(NotFoundError);

    // Immutable: no new URL (single or multipart), no inline upload, no other sha256.
    await expect(life.requestModelUpload('big', version, {})).rejects.toBeInstanceOf(ConflictError);
    await expect(life.requestModelUpload('big', version, { parts: 2 })).rejects.toBeInstanceOf(ConflictError);
    await expect(life.uploadModelArtifact('big', version, new Uint8Array([1]))).rejects.toBeInstanceOf(ConflictError);
    await expect(life.commitModelVersion('big', version, 'a'.repeat(64))).rejects.toBeInstanceOf(ConflictError);

    // The URL issued before commit is still valid: it can write the staging key, but the version
    // points at the content-addressed copy, which keeps its bytes; a re-commit stays idempotent.
    const evil = bytes(1000, 2);
    expect((await put(upload.url, evil)).status).toBe(200);
    expect(sha256(await stack.objects.get(modelArtifactKey('big', version)))).toBe(sha256(evil));
    const after = await life.getModelVersion('big', version);
    expect(after.artifact).toEqual(ready.artifact);
    expect(await stack.objects.hash(after.artifact.key)).toMatchObject({ sha256: sha256(artifact), bytes: 300_000 });
    expect(await life.commitModelVersion('big', version, sha256(artifact))).toEqual(ready);
    await expect(life.commitModelVersion('big', version, sha256(evil))).rejects.toBeInstanceOf(ConflictError);
  });

  it(
    'issues a fresh URL for a pending version with the asked lifetime; ' +
      'the last upload before commit is what gets verified',
    async () => {
      const { version } = await register('fresh');
      const fresh = (await life.requestModelUpload('fresh', version, { expiresIn: 120 })) as SingleUpload;
      expect(fresh).toMatchObject({ method: 'PUT', expiresAt: new Date(clock + 120_000).toISOString() });
      expect(new URL(fresh.url).searchParams.get('X-Amz-Expires')).toBe('120');
      expect((await put(fresh.url, bytes(10, 3))).status).toBe(200);
      const second = bytes(20, 4);
      expect((await put(fresh.url, second)).status).toBe(200);
      await expect(life.commitModelVersion('fresh', version, sha256(bytes(10, 3)))).rejects.toBeInstanceOf(
        ValidationError,
      );
      expect((await life.commitModelVersion('fresh', version, sha256(second))).artifact.bytes).toBe(20);
    },
  );

  it('refuses to commit a version nothing was uploaded for (409), and unknown versions (404)', async () => {
    const { version } = await register('empty');
    await expect(life.commitModelVersion('empty', version, 'a'.repeat(64))).rejects.toMatchObject({
      code: 'CONFLICT',
      field: 'artifact',
    });
    await expect(life.requestModelUpload('empty', version + 1, {})).rejects.toBeInstanceOf(NotFoundError);
  });
});

describe('multipart', () => {
  it('uploads ≥ 2 parts with fetch, completes at commit and verifies the sha256 of the whole', async () => {
    const { version } = await register('parts');
    const mp = (await life.requestModelUpload('parts', version, { parts: 2 })) as MultipartUpload;
    expect(mp).toMatchObject({ method: 'PUT', minPartBytes: MIN_PART_BYTES, headers: {} });
    expect(mp.parts.map((p) => p.partNumber)).toEqual([1, 2]);
    // Real S3 sizes: every part but the last ≥ 5 MiB (s3rver does not enforce it; S3 does).
    const whole = bytes(MIN_PART_BYTES + 12_345, 5);
    const chunks = [whole.subarray(0, MIN_PART_BYTES), whole.subarray(MIN_PART_BYTES)];
    // Part 2 first: parts may arrive in any order; the commit lists them in any order too.
    const etags: string[] = [];
    for (const i of [1, 0]) {
      const res = await put(mp.parts[i].url, chunks[i]);
      expect(res.status).toBe(200);
      etags[i] = res.headers.get('etag') ?? '';
      expect(etags[i]).not.toBe('');
    }
    const parts = [
      { partNumber: 2, etag: etags[1] },
      { partNumber: 1, etag: etags[0] },
    ].sort((a, b) => a.partNumber - b.partNumber);

    // A wrong hash is refused after the parts were assembled; the assembled object stays staged,
    // so a commit without uploadId verifies it again.
    await expect(
      life.commitModelVersion('parts', version, 'e'.repeat(64), { uploadId: mp.uploadId, parts }),
    ).rejects.toBeInstanceOf(ValidationError);
    await expect(
      life.commitModelVersion('parts', version, sha256(whole), { uploadId: mp.uploadId, parts }),
    ).rejects.toMatchObject({
      code: 'NOT_FOUND',
      field: 'uploadId',
    });
    const ready = await life.commitModelVersion('parts', version, sha256(whole));
    expect(ready).toMatchObject({ state: 'ready', artifact: { sha256: sha256(whole), bytes: whole.byteLength } });
    expect(await stack.objects.hash(ready.artifact.key)).toMatchObject({
      sha256: sha256(whole),
      bytes: whole.byteLength,
    });
  });

  it('refuses a commit that lists a part never uploaded (400 on parts; the local S3 would crash on it)', async () => {
    const { version } = await register('missing-part');
    const mp = (await life.requestModelUpload('missing-part', version, { parts: 2 })) as MultipartUpload;
    const res = await put(mp.parts[0].url, bytes(100, 8));
    const etag = res.headers.get('etag') ?? '';

    const err = await life
      .commitModelVersion('missing-part', version, 'a'.repeat(64), {
        uploadId: mp.uploadId,
        parts: [
          { partNumber: 1, etag },
          { partNumber: 2, etag },
        ],
      })
      .catch((e: unknown) => e);

    expect(err).toBeInstanceOf(ValidationError);
    expect(err).toMatchObject({ field: 'parts', details: { s3Code: 'InvalidPart' } });
    // The emulator is still up: the upload can still be aborted.
    expect(await life.abortModelUpload('missing-part', version, mp.uploadId)).toMatchObject({ aborted: true });
  });

  it('completes and commits in one call; fresh part URLs for the same upload; abort drops an upload', async () => {
    const { version } = await register('one-call');
    const mp = (await life.requestModelUpload('one-call', version, { parts: 1 })) as MultipartUpload;
    // More (and fresh) URLs for the same upload: parts 2..3.
    const more = (await life.requestModelUpload('one-call', version, {
      uploadId: mp.uploadId,
      parts: 2,
      firstPart: 2,
    })) as MultipartUpload;
    expect(more.uploadId).toBe(mp.uploadId);
    expect(more.parts.map((p) => p.partNumber)).toEqual([2, 3]);
    const whole = bytes(2 * MIN_PART_BYTES + 7, 6);
    const chunks = [
      whole.subarray(0, MIN_PART_BYTES),
      whole.subarray(MIN_PART_BYTES, 2 * MIN_PART_BYTES),
      whole.subarray(2 * MIN_PART_BYTES),
    ];
    const urls = [mp.parts[0].url, more.parts[0].url, more.parts[1].url];
    const parts = [];
    for (let i = 0; i < 3; i++) {
      const res = await put(urls[i], chunks[i]);
      expect(res.status).toBe(200);
      parts.push({ partNumber: i + 1, etag: res.headers.get('etag') ?? '' });
    }
    const ready = await life.commitModelVersion('one-call', version, sha256(whole), { uploadId: mp.uploadId, parts });
    expect(ready.artifact).toMatchObject({ sha256: sha256(whole), bytes: whole.byteLength });

    // Abort: a second version's upload is dropped; its parts can no longer be completed.
    const { version: v2 } = await register('one-call');
    const doomed = (await life.requestModelUpload('one-call', v2, { parts: 1 })) as MultipartUpload;
    const res = await put(doomed.parts[0].url, bytes(100, 7));
    expect(res.status).toBe(200);
    expect(await life.abortModelUpload('one-call', v2, doomed.uploadId)).toEqual({
      aborted: true,
      uploadId: doomed.uploadId,
    });
    const late = { uploadId: doomed.uploadId, parts: [{ partNumber: 1, etag: res.headers.get('etag') ?? '' }] };
    await expect(life.commitModelVersion('one-call', v2, sha256(bytes(100, 7)), late)).rejects.toMatchObject({
      code: 'NOT_FOUND',
      field: 'uploadId',
    });
    await expect(life.abortModelUpload('one-call', v2, doomed.uploadId)).rejects.toMatchObject({
      code: 'NOT_FOUND',
      field: 'uploadId',
    });
    expect((await life.getModelVersion('one-call', v2)).state).toBe('pending');
  }, 30_000);

  it('refuses part ranges past part 10000 and firstPart without parts, naming the field', async () => {
    const { version } = await register('bounds');
    await expect(life.requestModelUpload('bounds', version, { parts: 2, firstPart: 10_000 })).rejects.toMatchObject({
      code: 'VALIDATION_ERROR',
      field: 'parts',
    });
    await expect(life.requestModelUpload('bounds', version, { firstPart: 2 })).rejects.toMatchObject({
      code: 'VALIDATION_ERROR',
      field: 'parts',
    });
  });
});

describe('copy guard', () => {
  it('copies only the object version that was hashed (CopySourceIfMatch → 409 when it changed)', async () => {
    await stack.objects.putImmutable('models/guard/1/artifact', new Uint8Array([1, 2, 3]));
    const { etag } = await stack.objects.hash('models/guard/1/artifact');
    await fetch(await stack.objects.presignPut('models/guard/1/artifact', 60), {
      method: 'PUT',
      body: new Uint8Array([4, 5, 6]),
    });
    await expect(
      stack.objects.copyIfMatch('models/guard/1/artifact', 'models/guard/1/final', etag),
    ).rejects.toBeInstanceOf(ConflictError);
    await expect(stack.objects.get('models/guard/1/final')).rejects.toBeInstanceOf(NotFoundError);
    const now = await stack.objects.hash('models/guard/1/artifact');
    await stack.objects.copyIfMatch('models/guard/1/artifact', 'models/guard/1/final', now.etag);
    expect(Array.from(await stack.objects.get('models/guard/1/final'))).toEqual([4, 5, 6]);
  });
});

describe('asynchronous verification of large artifacts', () => {
  /** A lifecycle whose commits above 100 kB hand the hashing to the builder (a queue we drain by hand). */
  function asyncLife(): { life: LifecycleCore; queue: Array<{ name: string; version: number }> } {
    const queue: Array<{ name: string; version: number }> = [];
    const cache = new ShardCache({ objects: stack.objects, memoryBytes: 16 * 2 ** 20 });
    const life = new LifecycleCore({
      catalog: stack.catalog,
      objects: stack.objects,
      cache,
      store: stack.lifecycle,
      getCollection: async () => {
        throw new Error('not used');
      },
      verifyArtifacts: { maxSyncBytes: 100_000, enqueue: async (name, version) => void queue.push({ name, version }) },
      now: () => clock,
    });
    return { life, queue };
  }

  it(
    'answers verifying, closes uploads, and the builder makes it ready; ' + 'small artifacts still commit in the call',
    async () => {
      const { life: alife, queue } = asyncLife();
      const { model } = await alife.registerModelVersion('huge', spec, alice);
      const url = (await alife.requestModelUpload('huge', model.version, {})) as SingleUpload;
      const artifact = bytes(250_000, 7);
      expect((await put(url.url, artifact)).status).toBe(200);

      const verifying = await alife.commitModelVersion('huge', model.version, sha256(artifact).toUpperCase());
      expect(verifying).toMatchObject({
        state: 'verifying',
        verification: { sha256: sha256(artifact), bytes: 250_000 },
      });
      expect(queue).toEqual([{ name: 'huge', version: model.version }]);
      expect((await alife.getModelVersion('huge', model.version)).state).toBe('verifying');
      // Nothing can change the bytes while they are being verified, and nobody can commit another hash.
      await expect(alife.requestModelUpload('huge', model.version, {})).rejects.toThrow(/being verified/);
      await expect(alife.commitModelVersion('huge', model.version, 'a'.repeat(64))).rejects.toBeInstanceOf(
        ConflictError,
      );
      // A retried commit (e.g. a lost message) asks again; the worker ignores the duplicate.
      expect(await alife.commitModelVersion('huge', model.version, sha256(artifact))).toMatchObject({
        state: 'verifying',
      });
      expect(queue).toHaveLength(2);

      const ready = await alife.verifyModelArtifact('huge', model.version);
      expect(ready).toMatchObject({
        state: 'ready',
        artifact: { key: `models/huge/${model.version}/${sha256(artifact)}`, bytes: 250_000 },
      });
      expect(ready?.verification?.finishedAt).toBeDefined();
      // duplicate message
      expect(await alife.verifyModelArtifact('huge', model.version)).toMatchObject({ state: 'ready' });
      expect(sha256(await stack.objects.get(ready!.artifact.key))).toBe(sha256(artifact));

      const { model: small } = await alife.registerModelVersion('huge', spec, alice);
      const tiny = bytes(5_000, 8);
      await alife.uploadModelArtifact('huge', small.version, tiny);
      expect(await alife.commitModelVersion('huge', small.version, sha256(tiny))).toMatchObject({ state: 'ready' });
      expect(queue).toHaveLength(2);
    },
  );

  it('returns a mismatching artifact to pending with the reason, then accepts a corrected upload', async () => {
    const { life: alife, queue } = asyncLife();
    const { model } = await alife.registerModelVersion('bad', spec, alice);
    const url = (await alife.requestModelUpload('bad', model.version, {})) as SingleUpload;
    const artifact = bytes(200_000, 9);
    await put(url.url, artifact);
    expect(await alife.commitModelVersion('bad', model.version, 'c'.repeat(64))).toMatchObject({ state: 'verifying' });
    const failed = await alife.verifyModelArtifact('bad', model.version);
    expect(failed).toMatchObject({
      state: 'pending',
      verification: { sha256: 'c'.repeat(64), error: expect.stringMatching(/does not match/) },
    });
    expect(queue).toHaveLength(1);

    // Upload again (uploads are open again) and commit the right hash.
    const again = (await alife.requestModelUpload('bad', model.version, {})) as SingleUpload;
    await put(again.url, artifact);
    expect(await alife.commitModelVersion('bad', model.version, sha256(artifact))).toMatchObject({
      state: 'verifying',
    });
    expect(await alife.verifyModelArtifact('bad', model.version)).toMatchObject({
      state: 'ready',
      artifact: { sha256: sha256(artifact) },
    });
    await expect(alife.commitModelVersion('bad', model.version, sha256(artifact))).resolves.toMatchObject({
      state: 'ready',
    });
  });
});
