/**
 * Model registry (docs/architecture.md §8.1): versions of an embedding model, auto-numbered by an atomic
 * counter. A version starts `pending`; its artifact is uploaded to the staging key
 * `models/<name>/<version>/artifact` — straight to S3 through a presigned PUT (≤ 5 GiB) or
 * presigned multipart parts, or through the API as base64 JSON (≤ 4 MB). `commit` streams the
 * staged object through sha256, and when it matches copies it server-side to the
 * content-addressed key `models/<name>/<version>/<sha256>` and makes the version `ready`,
 * pointing at that copy.
 *
 * Why the copy: a presigned PUT URL cannot be revoked before it expires, so the staging key
 * stays writable by whoever holds one, even after commit. The final key is never signed for
 * anyone, so nothing issued by the API can overwrite a committed artifact; and the copy is
 * conditional on the ETag that was hashed, so an upload racing the commit cannot slip a different
 * object in between hash and copy. (Recording an S3 VersionId instead would also pin the bytes,
 * but needs bucket versioning — the local S3 has none — and leaves the served key overwritable.)
 */
import { createHash } from 'node:crypto';
import { ConflictError, LimitExceededError, NotFoundError, ValidationError } from '../errors.js';
import { logger } from '../log.js';
import type { ModelComparison, RegisterModelInput } from '../service.js';
import type { DirectUploads, ObjectStore } from '../storage/types.js';
import type { LifecycleStore } from './types.js';
import type {
  CompletedUpload,
  ModelSignature,
  ModelVersion,
  MultipartUpload,
  SingleUpload,
  UploadRequest,
} from '../service-types.js';
import { MAX_ONNX_ARTIFACT_BYTES, type Embedder } from '../models/embedder.js';
import { textEmbeddingIO } from '../models/runtime.js';
import { checkTokenizer } from '../models/tokenizer.js';
import { committedArtifactKey, modelArtifactKey } from '../storage/keys.js';

export const MAX_INLINE_ARTIFACT_BYTES = 4 * 1024 * 1024;
/**
 * Largest artifact: S3's limit for one PUT and for one server-side CopyObject (5 GiB). Bigger
 * objects would need a multipart copy (UploadPartCopy), which the local S3 lacks.
 */
export const MAX_ARTIFACT_BYTES = 5 * 1024 ** 3;
/**
 * Default lifetime of presigned upload URLs (15 min). Longer gives slow clients more time to
 * *start* the request (S3 checks expiry when a request begins, so a long PUT that began in time
 * completes); shorter narrows the window in which a leaked URL can write the staging key. A URL
 * signed with temporary credentials (a Lambda role) also dies when those credentials expire.
 */
export const DEFAULT_UPLOAD_URL_TTL_S = 900;
export const MIN_UPLOAD_URL_TTL_S = 60;
export const MAX_UPLOAD_URL_TTL_S = 12 * 3600;
/** S3 multipart rules: parts 1–10000; every part but the last ≥ 5 MiB. */
export const MAX_PART_NUMBER = 10_000;
export const MIN_PART_BYTES = 5 * 1024 * 1024;
/** Part URLs per request: 1000 URLs are ~0.7 MB of JSON, well inside the 6 MB Lambda response limit. */
export const MAX_PARTS_PER_REQUEST = 1000;

/**
 * Default size above which commit verifies asynchronously (256 MiB, env
 * SHOAL_ARTIFACT_SYNC_VERIFY_MB). Hashing streams the object at roughly S3's per-connection
 * throughput (~50–100 MB/s in Lambda), and API Gateway ends a request at 30 s: bigger artifacts
 * are hashed by the builder function (5 min timeout: ~5 GiB at S3 speeds) while the version shows
 * `verifying`. Lower = fewer requests near the 30 s edge; higher = more commits answered in one call.
 */
export const DEFAULT_SYNC_VERIFY_BYTES = 256 * 2 ** 20;

export interface ModelDeps {
  store: LifecycleStore;
  objects: ObjectStore & DirectUploads;
  now: () => number;
  /** Validates and loads `onnx` artifacts at commit; without it such versions cannot be committed. */
  embedder?: Embedder;
  /** Asynchronous verification of large artifacts; without it every commit hashes in the request. */
  verifyAsync?: { maxSyncBytes: number; enqueue: (name: string, version: number) => Promise<void> };
}

function pending(mv: ModelVersion): ModelVersion {
  if (mv.state === 'verifying') {
    throw new ConflictError(
      `model ${mv.name} version ${mv.version} is being verified; uploads are closed until it is ready or fails`,
      { field: 'version' },
    );
  }
  if (mv.state !== 'pending')
    throw new ConflictError(`model ${mv.name} version ${mv.version} is committed and immutable`, { field: 'version' });
  return mv;
}

function checkSize(bytes: Uint8Array): void {
  if (bytes.byteLength > MAX_INLINE_ARTIFACT_BYTES) {
    throw new LimitExceededError(
      `artifact is ${bytes.byteLength} bytes; inline uploads are limited to ${MAX_INLINE_ARTIFACT_BYTES}`,
      {
        field: 'artifact',
        details: { bytes: bytes.byteLength, limit: MAX_INLINE_ARTIFACT_BYTES },
      },
    );
  }
}

export async function getModelVersion(deps: ModelDeps, name: string, version: number): Promise<ModelVersion> {
  const mv = await deps.store.getModelVersion(name, version);
  if (!mv) throw new NotFoundError(`model ${JSON.stringify(name)} version ${version} not found`, { field: 'version' });
  return mv;
}

export async function registerModelVersion(
  deps: ModelDeps,
  name: string,
  input: RegisterModelInput,
  by: string,
): Promise<ModelVersion> {
  if (input.artifact) checkSize(input.artifact);
  const version = await deps.store.nextModelVersion(name);
  const mv: ModelVersion = {
    name,
    version,
    state: 'pending',
    dimension: input.dimension,
    metric: input.metric,
    params: input.params ?? {},
    metrics: input.metrics ?? {},
    tags: input.tags ?? {},
    artifact: { key: modelArtifactKey(name, version) },
    createdAt: new Date(deps.now()).toISOString(),
    createdBy: by,
  };
  if (input.framework !== undefined) mv.framework = input.framework;
  if (input.format !== undefined) mv.format = input.format;
  if (input.tokenizer !== undefined) {
    if (input.format !== 'onnx') {
      throw new ValidationError('a tokenizer goes with format "onnx" (Shoal runs it before the model)', {
        field: 'tokenizer',
      });
    }
    checkTokenizer(input.tokenizer);
    mv.tokenizer = input.tokenizer;
  }
  if (input.description !== undefined) mv.description = input.description;
  // The object first: a version item whose artifact failed to upload simply stays pending.
  if (input.artifact) await deps.objects.putImmutable(mv.artifact.key, input.artifact);
  await deps.store.putModelVersion(mv);
  return mv;
}

export async function uploadArtifact(
  deps: ModelDeps,
  name: string,
  version: number,
  bytes: Uint8Array,
): Promise<ModelVersion> {
  checkSize(bytes);
  const mv = pending(await getModelVersion(deps, name, version));
  // Write-once through the API: a second inline upload keeps the first object (commit checks its hash).
  await deps.objects.putImmutable(modelArtifactKey(name, version), bytes);
  return mv;
}

/** A presigned PUT of the staging key for a pending version (409 once committed). */
export async function singleUpload(
  deps: ModelDeps,
  name: string,
  version: number,
  expiresIn = DEFAULT_UPLOAD_URL_TTL_S,
): Promise<SingleUpload> {
  pending(await getModelVersion(deps, name, version));
  const url = await deps.objects.presignPut(modelArtifactKey(name, version), expiresIn);
  return {
    method: 'PUT',
    url,
    expiresAt: new Date(deps.now() + expiresIn * 1000).toISOString(),
    headers: {},
    maxBytes: MAX_ARTIFACT_BYTES,
  };
}

/**
 * `POST .../upload`: without `parts` a single presigned PUT; with `parts` presigned UploadPart URLs
 * for parts firstPart … firstPart+parts−1 of a new multipart upload of the staging key, or of the
 * existing one `uploadId` (fresh URLs after expiry, or more parts). Pending versions only.
 */
export async function requestUpload(
  deps: ModelDeps,
  name: string,
  version: number,
  req: UploadRequest,
): Promise<SingleUpload | MultipartUpload> {
  const expiresIn = req.expiresIn ?? DEFAULT_UPLOAD_URL_TTL_S;
  if (req.parts === undefined) {
    if (req.uploadId !== undefined || req.firstPart !== undefined) {
      throw new ValidationError('parts is required with uploadId or firstPart (multipart upload)', { field: 'parts' });
    }
    return singleUpload(deps, name, version, expiresIn);
  }
  const first = req.firstPart ?? 1;
  const last = first + req.parts - 1;
  if (last > MAX_PART_NUMBER) {
    throw new ValidationError(`parts ${first}…${last} go past part number ${MAX_PART_NUMBER}`, {
      field: 'parts',
      details: { firstPart: first, parts: req.parts, maxPartNumber: MAX_PART_NUMBER },
    });
  }
  pending(await getModelVersion(deps, name, version));
  const key = modelArtifactKey(name, version);
  const uploadId = req.uploadId ?? (await deps.objects.createMultipart(key));
  const numbers = Array.from({ length: req.parts }, (_, i) => first + i);
  const parts = await Promise.all(
    numbers.map(async (partNumber) => ({
      partNumber,
      url: await deps.objects.presignPart(key, uploadId, partNumber, expiresIn),
    })),
  );
  return {
    method: 'PUT',
    uploadId,
    parts,
    expiresAt: new Date(deps.now() + expiresIn * 1000).toISOString(),
    headers: {},
    minPartBytes: MIN_PART_BYTES,
    maxBytes: MAX_ARTIFACT_BYTES,
  };
}

/**
 * Drops a multipart upload and its parts. Allowed in any state: it can only discard parts,
 * never change a committed artifact, and lets clients clean up after a commit.
 */
export async function abortUpload(
  deps: ModelDeps,
  name: string,
  version: number,
  uploadId: string,
): Promise<{ aborted: true; uploadId: string }> {
  await getModelVersion(deps, name, version);
  await deps.objects.abortMultipart(modelArtifactKey(name, version), uploadId);
  return { aborted: true, uploadId };
}

/**
 * Commits a version: completes a named multipart upload, then verifies the staged bytes against
 * `sha256` — in this call, or (above `verifyAsync.maxSyncBytes`) by the builder function, the
 * version showing `verifying` meanwhile (the API answers 202; poll the version).
 */
export async function commitModelVersion(
  deps: ModelDeps,
  name: string,
  version: number,
  sha256: string,
  multipart?: CompletedUpload,
): Promise<ModelVersion> {
  const mv = await getModelVersion(deps, name, version);
  const expected = sha256.toLowerCase();
  if (mv.state === 'ready') {
    if (mv.artifact.sha256 === expected) return mv; // idempotent retry
    throw new ConflictError(`model ${name} version ${version} is already committed with another sha256`, {
      field: 'sha256',
      details: { committed: mv.artifact.sha256 },
    });
  }
  if (mv.state === 'verifying') {
    if (mv.verification?.sha256 !== expected) {
      throw new ConflictError(`model ${name} version ${version} is being verified against another sha256`, {
        field: 'sha256',
        details: { verifying: mv.verification?.sha256 },
      });
    }
    // A retry (perhaps after a lost queue message): ask again; the worker ignores duplicates.
    await deps.verifyAsync?.enqueue(name, version);
    return mv;
  }
  const staging = modelArtifactKey(name, version);
  if (multipart) await deps.objects.completeMultipart(staging, multipart.uploadId, multipart.parts);
  if (deps.verifyAsync) {
    const staged = await deps.objects.head(staging).catch((err: unknown) => {
      if (err instanceof NotFoundError)
        throw new ConflictError(`no artifact has been uploaded for model ${name} version ${version}`, {
          field: 'artifact',
        });
      throw err;
    });
    checkArtifactSize(staged.bytes);
    if (staged.bytes > deps.verifyAsync.maxSyncBytes) {
      const verifying: ModelVersion = {
        ...mv,
        state: 'verifying',
        verification: { sha256: expected, bytes: staged.bytes, requestedAt: new Date(deps.now()).toISOString() },
      };
      if (!(await deps.store.transitionModelVersion(verifying, ['pending'])))
        return commitModelVersion(deps, name, version, sha256);
      await deps.verifyAsync.enqueue(name, version);
      return verifying;
    }
  }
  return verifyAndCommit(deps, mv, expected);
}

/**
 * The builder function's half of an asynchronous commit: hashes the staged artifact of a
 * `verifying` version and makes it ready, or returns it to `pending` with the reason (a wrong
 * hash, an upload racing the copy, a missing object) so the client can upload again. Transient
 * failures throw (the queue retries). Duplicate messages find the version no longer verifying.
 */
export async function verifyModelArtifact(
  deps: ModelDeps,
  name: string,
  version: number,
): Promise<ModelVersion | undefined> {
  const mv = await deps.store.getModelVersion(name, version);
  if (!mv || mv.state !== 'verifying' || !mv.verification) return mv;
  try {
    return await verifyAndCommit(deps, mv, mv.verification.sha256);
  } catch (err) {
    if (!(err instanceof ValidationError || err instanceof ConflictError || err instanceof LimitExceededError))
      throw err;
    const failed: ModelVersion = {
      ...mv,
      state: 'pending',
      verification: { ...mv.verification, error: err.message, finishedAt: new Date(deps.now()).toISOString() },
    };
    if (!(await deps.store.transitionModelVersion(failed, ['verifying'])))
      return deps.store.getModelVersion(name, version);
    logger.warn('model verification failed', { model: name, version, reason: err.message });
    return failed;
  }
}

function checkArtifactSize(bytes: number): void {
  if (bytes > MAX_ARTIFACT_BYTES) {
    throw new LimitExceededError(`artifact is ${bytes} bytes; the limit is ${MAX_ARTIFACT_BYTES} (5 GiB)`, {
      field: 'artifact',
      details: { bytes, limit: MAX_ARTIFACT_BYTES },
    });
  }
}

/** Hash the staged object, compare, copy it to its content-addressed key, mark the version ready. */
async function verifyAndCommit(deps: ModelDeps, mv: ModelVersion, expected: string): Promise<ModelVersion> {
  const { name, version } = mv;
  const staging = modelArtifactKey(name, version);
  // A concurrent commit of the same bytes may finish (and drop the staging object) while this
  // one runs: losing the object then is that commit's success, not a missing upload.
  const committedMeanwhile = async (err: unknown): Promise<ModelVersion> => {
    if (!(err instanceof NotFoundError)) throw err;
    const now = await getModelVersion(deps, name, version);
    if (now.state === 'ready' && now.artifact.sha256 === expected) return now;
    throw new ConflictError(`no artifact has been uploaded for model ${name} version ${version}`, {
      field: 'artifact',
    });
  };
  let staged: { sha256: string; bytes: number; etag: string };
  try {
    staged = await deps.objects.hash(staging);
  } catch (err) {
    return committedMeanwhile(err);
  }
  if (staged.sha256 !== expected) {
    throw new ValidationError(`sha256 ${expected} does not match the uploaded artifact`, {
      field: 'sha256',
      details: { expected, actual: staged.sha256, bytes: staged.bytes },
    });
  }
  checkArtifactSize(staged.bytes);
  const signature = mv.format === 'onnx' ? await validateOnnx(deps, mv, staging, staged) : undefined;
  const key = committedArtifactKey(name, version, staged.sha256);
  try {
    // Only the object version that was hashed; ConflictError if an upload replaced it meanwhile.
    await deps.objects.copyIfMatch(staging, key, staged.etag);
  } catch (err) {
    return committedMeanwhile(err);
  }
  const { verification } = mv;
  const ready: ModelVersion = {
    ...mv,
    state: 'ready',
    artifact: { key, sha256: staged.sha256, bytes: staged.bytes },
    ...(signature ? { signature } : {}),
    committedAt: new Date(deps.now()).toISOString(),
    ...(verification
      ? {
          verification: {
            sha256: verification.sha256,
            bytes: verification.bytes,
            requestedAt: verification.requestedAt,
            finishedAt: new Date(deps.now()).toISOString(),
          },
        }
      : {}),
  };
  if (!(await deps.store.transitionModelVersion(ready, [mv.state]))) {
    const now = await getModelVersion(deps, name, version);
    if (now.state === 'ready' && now.artifact.sha256 === staged.sha256) return now;
    throw new ConflictError(`model ${name} version ${version} was committed concurrently`, { field: 'version' });
  }
  // The staging copy is garbage now. Best effort: a failure only leaves an unreferenced object,
  // and a still-valid presigned URL can re-create it anyway (it is never read again).
  await deps.objects
    .delete([staging])
    .catch((err: unknown) =>
      logger.warn('model staging object not deleted', { model: name, version, error: err as Error }),
    );
  return ready;
}

/**
 * An `onnx` version commits only if the model loads (docs/models.md): its bytes are read, hashed again (the
 * staging object could have been replaced since it was hashed; then this commit loses, as a changed ETag
 * would make the copy lose), parsed and loaded; the signature goes into the committed version.
 */
async function validateOnnx(
  deps: ModelDeps,
  mv: ModelVersion,
  staging: string,
  staged: { sha256: string; bytes: number },
): Promise<ModelSignature> {
  const { sha256 } = staged;
  if (!deps.embedder) {
    throw new ValidationError('this deployment cannot run ONNX models (no model runtime configured)', {
      field: 'format',
    });
  }
  if (staged.bytes > MAX_ONNX_ARTIFACT_BYTES) {
    throw new ValidationError(`ONNX artifacts are limited to ${MAX_ONNX_ARTIFACT_BYTES} bytes`, { field: 'artifact' });
  }
  const bytes = await deps.objects.get(staging);
  if (createHash('sha256').update(bytes).digest('hex') !== sha256) {
    throw new ConflictError(`the artifact of model ${mv.name} version ${mv.version} changed while it was committed`, {
      field: 'artifact',
    });
  }
  const signature = await deps.embedder.validateArtifact(bytes, sha256);
  // A text model: its inputs must take what the tokenizer gives (ids, and a mask if it has a second input).
  if (mv.tokenizer) textEmbeddingIO(signature, mv.dimension, mv.tokenizer.maxLength, 'tokenizer');
  if (!signature.outputs.some((o) => o.dtype === 'float32' && o.shape.at(-1) === mv.dimension)) {
    throw new ValidationError(
      `no float32 output of the model ends in the version's dimension ${mv.dimension} ` +
        `(outputs: ${signature.outputs.map((o) => `${o.name} [${o.shape.join(', ')}]`).join('; ')})`,
      { field: 'dimension' },
    );
  }
  return signature;
}

export function compareVersions(a: ModelVersion, b: ModelVersion): ModelComparison {
  const params: ModelComparison['params'] = {};
  for (const key of new Set([...Object.keys(a.params), ...Object.keys(b.params)])) {
    if (JSON.stringify(a.params[key]) !== JSON.stringify(b.params[key]))
      params[key] = { a: a.params[key] ?? null, b: b.params[key] ?? null };
  }
  const metrics: ModelComparison['metrics'] = {};
  for (const key of new Set([...Object.keys(a.metrics), ...Object.keys(b.metrics)])) {
    const x = a.metrics[key];
    const y = b.metrics[key];
    if (x !== y)
      metrics[key] = { a: x ?? null, b: y ?? null, delta: x !== undefined && y !== undefined ? y - x : null };
  }
  const tags: ModelComparison['tags'] = {};
  for (const key of new Set([...Object.keys(a.tags), ...Object.keys(b.tags)])) {
    if (a.tags[key] !== b.tags[key]) tags[key] = { a: a.tags[key] ?? null, b: b.tags[key] ?? null };
  }
  return {
    name: a.name,
    a: a.version,
    b: b.version,
    dimension: a.dimension !== b.dimension ? { a: a.dimension, b: b.dimension } : null,
    metric: a.metric !== b.metric ? { a: a.metric, b: b.metric } : null,
    params,
    metrics,
    tags,
  };
}
