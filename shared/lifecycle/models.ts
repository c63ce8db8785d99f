/**
 * Model registry (DESIGN §6): versions of an embedding model, auto-numbered by an atomic
 * counter, with the artifact in S3 at `models/<name>/<version>/artifact`. A version starts
 * `pending`; `commit` checks the stored object's sha256 and makes it `ready` (immutable:
 * no further upload or commit changes it). No S3 presigner is installed in this project,
 * so the artifact travels in the JSON body as base64 (≤ 4 MB decoded), either with the
 * registration or with a separate upload call before commit.
 */
import { createHash } from 'node:crypto';
import { ConflictError, LimitExceededError, NotFoundError, ValidationError } from '../errors.js';
import type { ModelComparison, RegisterModelInput } from '../service.js';
import type { ObjectStore } from '../storage/types.js';
import type { LifecycleStore, ModelVersion } from './types.js';

export const MAX_INLINE_ARTIFACT_BYTES = 4 * 1024 * 1024;

export interface ModelDeps {
  store: LifecycleStore;
  objects: ObjectStore;
  now: () => number;
}

export function artifactKey(name: string, version: number): string {
  return `models/${name}/${version}/artifact`;
}

function checkSize(bytes: Uint8Array): void {
  if (bytes.byteLength > MAX_INLINE_ARTIFACT_BYTES) {
    throw new LimitExceededError(`artifact is ${bytes.byteLength} bytes; inline uploads are limited to ${MAX_INLINE_ARTIFACT_BYTES}`, {
      field: 'artifact',
      details: { bytes: bytes.byteLength, limit: MAX_INLINE_ARTIFACT_BYTES },
    });
  }
}

export async function getModelVersion(deps: ModelDeps, name: string, version: number): Promise<ModelVersion> {
  const mv = await deps.store.getModelVersion(name, version);
  if (!mv) throw new NotFoundError(`model ${JSON.stringify(name)} version ${version} not found`, { field: 'version' });
  return mv;
}

export async function registerModelVersion(deps: ModelDeps, name: string, input: RegisterModelInput, by: string): Promise<ModelVersion> {
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
    artifact: { key: artifactKey(name, version) },
    createdAt: new Date(deps.now()).toISOString(),
    createdBy: by,
  };
  if (input.framework !== undefined) mv.framework = input.framework;
  if (input.description !== undefined) mv.description = input.description;
  // The object first: a version item whose artifact failed to upload simply stays pending.
  if (input.artifact) await deps.objects.putImmutable(mv.artifact.key, input.artifact);
  await deps.store.putModelVersion(mv);
  return mv;
}

export async function uploadArtifact(deps: ModelDeps, name: string, version: number, bytes: Uint8Array): Promise<ModelVersion> {
  checkSize(bytes);
  const mv = await getModelVersion(deps, name, version);
  if (mv.state !== 'pending') throw new ConflictError(`model ${name} version ${version} is committed and immutable`, { field: 'version' });
  // Write-once key: a second upload to a pending version keeps the first object (commit checks its hash).
  await deps.objects.putImmutable(mv.artifact.key, bytes);
  return mv;
}

export async function commitModelVersion(deps: ModelDeps, name: string, version: number, sha256: string): Promise<ModelVersion> {
  const mv = await getModelVersion(deps, name, version);
  const expected = sha256.toLowerCase();
  if (mv.state === 'ready') {
    if (mv.artifact.sha256 === expected) return mv; // idempotent retry
    throw new ConflictError(`model ${name} version ${version} is already committed with another sha256`, {
      field: 'sha256',
      details: { committed: mv.artifact.sha256 },
    });
  }
  let bytes: Uint8Array;
  try {
    bytes = await deps.objects.get(mv.artifact.key);
  } catch (err) {
    if (err instanceof NotFoundError) throw new ConflictError(`no artifact has been uploaded for model ${name} version ${version}`, { field: 'artifact' });
    throw err;
  }
  const actual = createHash('sha256').update(bytes).digest('hex');
  if (actual !== expected) {
    throw new ValidationError(`sha256 ${expected} does not match the uploaded artifact`, { field: 'sha256', details: { expected, actual, bytes: bytes.byteLength } });
  }
  const ready: ModelVersion = { ...mv, state: 'ready', artifact: { ...mv.artifact, sha256: actual, bytes: bytes.byteLength }, committedAt: new Date(deps.now()).toISOString() };
  if (!(await deps.store.commitModelVersion(ready))) {
    const now = await getModelVersion(deps, name, version);
    if (now.state === 'ready' && now.artifact.sha256 === actual) return now;
    throw new ConflictError(`model ${name} version ${version} was committed concurrently`, { field: 'version' });
  }
  return ready;
}

export function compareVersions(a: ModelVersion, b: ModelVersion): ModelComparison {
  const params: ModelComparison['params'] = {};
  for (const key of new Set([...Object.keys(a.params), ...Object.keys(b.params)])) {
    if (JSON.stringify(a.params[key]) !== JSON.stringify(b.params[key])) params[key] = { a: a.params[key] ?? null, b: b.params[key] ?? null };
  }
  const metrics: ModelComparison['metrics'] = {};
  for (const key of new Set([...Object.keys(a.metrics), ...Object.keys(b.metrics)])) {
    const x = a.metrics[key];
    const y = b.metrics[key];
    if (x !== y) metrics[key] = { a: x ?? null, b: y ?? null, delta: x !== undefined && y !== undefined ? y - x : null };
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
