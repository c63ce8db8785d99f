import { MAX_SHARD_HEAP_BYTES, estimateHnswHeapBytes } from '../engine/hnsw.js';
import { NotFoundError } from '../errors.js';
import { collectionKey } from '../ingest/ingest.js';
import { sha256, type ShardCache } from '../search/shard-cache.js';
import { buildShard } from '../shard/shard.js';
import type { Catalog, CollectionMeta, Manifest, ObjectStore, RecordStore, ShardRef, StoredRecord } from '../storage/types.js';
import type { Metadata } from '../types.js';

/**
 * Builder policy. Every knob trades index freshness and shard count (search fan-out)
 * against build work:
 * - `DELTA_MIN_ROWS` (default 1000): a scheduled/woken build makes a delta shard once the
 *   unindexed tail has this many writes... Lower = fresher shards, more small shards.
 * - `DELTA_MAX_AGE_MS` (default 60 s): ...or once the last version is this old. Strong
 *   searches see the tail anyway; this bounds how long eventual searches lag.
 * - `MAX_SHARDS` (default 12): above this many shards the smallest are merged (compaction),
 *   down to `COMPACT_TO` (default 6). More shards = more parallel fan-out, more per-query overhead.
 * - `REWRITE_DELETED_FRACTION` (default 0.3): a shard with more deleted rows than this is rewritten.
 * - `SHARD_HEAP_SHARE` (default 0.5): a shard's hnsw index may use at most this share of the
 *   per-shard WASM heap limit, which caps rows per shard (e.g. ~80k rows at 768-d, m=16).
 * - `KEEP_VERSIONS` (default 10) and `GC_GRACE_MS` (default 1 h): objects referenced by the
 *   newest KEEP_VERSIONS manifests are kept (rollback targets); others are deleted once older
 *   than the grace period, so in-flight searches of an older version never lose a shard.
 */
export const BUILD_POLICY = {
  DELTA_MIN_ROWS: 1000,
  DELTA_MAX_AGE_MS: 60_000,
  MAX_SHARDS: 12,
  COMPACT_TO: 6,
  REWRITE_DELETED_FRACTION: 0.3,
  SHARD_HEAP_SHARE: 0.5,
  KEEP_VERSIONS: 10,
  GC_GRACE_MS: 60 * 60_000,
};

export interface BuilderDeps {
  catalog: Catalog;
  records: RecordStore;
  objects: ObjectStore;
  cache: ShardCache;
  codeVersion: string;
  now?: () => number;
  /** Deployment overrides of BUILD_POLICY (from configuration). */
  policy?: Partial<typeof BUILD_POLICY>;
  /** Index versions of a collection that aliases pin: the collector keeps their objects, however old. */
  pinnedVersions?: (collection: string) => Promise<number[]>;
}

export interface BuildResult {
  built: boolean;
  version: number;
  kind?: Manifest['stats']['kind'];
  shards: number;
  watermark: number;
  /** Why nothing was built, when built = false. */
  reason?: 'up-to-date' | 'waiting-for-more' | 'lost-race';
}

interface Row {
  id: string;
  seq: number;
  vector: Float32Array;
  metadata?: Metadata;
}

function maxRowsPerShard(meta: CollectionMeta): number {
  if (meta.index.engine !== 'hnsw') return 250_000;
  const perRow = estimateHnswHeapBytes(1, meta.dimension, meta.index.params.m ?? 16);
  return Math.max(1000, Math.floor((MAX_SHARD_HEAP_BYTES * BUILD_POLICY.SHARD_HEAP_SHARE) / perRow));
}

function setBit(bits: Uint8Array, row: number): void {
  bits[row >>> 3] |= 1 << (row & 7);
}

function isSet(bits: Uint8Array | undefined, row: number): boolean {
  return bits !== undefined && (bits[row >>> 3] & (1 << (row & 7))) !== 0;
}

async function collectTail(records: RecordStore, ck: string, after: number, upTo: number): Promise<StoredRecord[]> {
  const out: StoredRecord[] = [];
  for await (const batch of records.tail(ck, after, upTo)) out.push(...batch);
  return out;
}

async function writeShards(deps: BuilderDeps, meta: CollectionMeta, rows: Row[], kind: string): Promise<ShardRef[]> {
  const refs: ShardRef[] = [];
  const perShard = maxRowsPerShard(meta);
  const ck = collectionKey(meta);
  for (let start = 0; start < rows.length; start += perShard) {
    const part = rows.slice(start, start + perShard);
    const vectors = new Float32Array(part.length * meta.dimension);
    part.forEach((r, i) => vectors.set(r.vector, i * meta.dimension));
    const bytes = await buildShard({
      engine: meta.index.engine,
      dim: meta.dimension,
      metric: meta.metric,
      ids: part.map((r) => r.id),
      vectors,
      seqs: part.map((r) => r.seq),
      metadata: part.map((r) => r.metadata),
      params: meta.index.params,
      meta: { collection: meta.name, generation: meta.generation, kind, createdAt: new Date(deps.now?.() ?? Date.now()).toISOString() },
    });
    const hash = sha256(bytes);
    const key = `shards/${ck}/${hash.slice(0, 32)}.shard`;
    await deps.objects.putImmutable(key, bytes);
    refs.push({
      id: hash.slice(0, 32),
      key,
      bytes: bytes.byteLength,
      count: part.length,
      live: part.length,
      engine: meta.index.engine,
      sha256: hash,
      minSeq: part.reduce((m, r) => Math.min(m, r.seq), Infinity),
      maxSeq: part.reduce((m, r) => Math.max(m, r.seq), 0),
    });
  }
  return refs;
}

/** Live rows of shards, read back from the shards themselves (vectors, seqs, filterable metadata). */
async function liveRows(deps: BuilderDeps, refs: ShardRef[]): Promise<Row[]> {
  const rows: Row[] = [];
  for (const ref of refs) {
    const [shard, bits] = await Promise.all([deps.cache.shard(ref), deps.cache.bitmap(ref)]);
    for (let row = 0; row < shard.count; row++) {
      if (isSet(bits, row)) continue;
      rows.push({ id: shard.ids[row], seq: shard.seqs[row], vector: shard.vectorOf(row).slice(), metadata: shard.metadataOf(row) });
    }
  }
  return rows;
}

/**
 * Brings the index up to the collection's stable seq: applies the unindexed tail as
 * deletion bitmaps on existing shards plus a delta shard, compacts when there are too
 * many or too sparse shards, and commits the next manifest with one conditional write.
 * Everything it uploads is immutable and content addressed, so a crash at any step or a
 * lost race leaves only unreferenced objects (collected by `collectGarbage`) and no
 * change to what searches see.
 */
export async function buildIndex(deps: BuilderDeps, name: string, options: { force?: boolean } = {}): Promise<BuildResult> {
  const now = deps.now?.() ?? Date.now();
  const policy = { ...BUILD_POLICY, ...deps.policy };
  const meta = await deps.catalog.getCollection(name);
  const ck = collectionKey(meta);
  const latest = await deps.catalog.latestManifest(name);
  // A slow builder of a deleted collection may have committed into the re-created one's
  // manifest range: its version number is taken, but its content is not ours.
  const current = latest && latest.generation === meta.generation ? latest : undefined;
  const from = current?.watermark ?? 0;
  const stable = await deps.catalog.stableSeq(name);
  const base = { version: current?.version ?? 0, shards: current?.shards.length ?? 0, watermark: from };

  const tail = stable > from ? await collectTail(deps.records, ck, from, stable) : [];
  let refs = current?.shards ?? [];
  const needsCompaction =
    refs.length > policy.MAX_SHARDS || refs.some((r) => r.count > 0 && 1 - r.live / r.count > policy.REWRITE_DELETED_FRACTION);
  if (tail.length === 0 && !needsCompaction) return { built: false, reason: 'up-to-date', ...base };
  // Pending writes are at most as old as the last version (or the collection, before one).
  const fresh = now - Date.parse(current?.createdAt ?? meta.createdAt) < policy.DELTA_MAX_AGE_MS;
  if (!options.force && !needsCompaction && tail.length < policy.DELTA_MIN_ROWS && fresh) {
    return { built: false, reason: 'waiting-for-more', ...base };
  }
  const started = performance.now();
  const version = (latest?.version ?? 0) + 1;

  // 1. Rows superseded or deleted by the tail disappear from older shards via new bitmaps.
  const tailIds = new Set(tail.map((r) => r.id));
  const updated: ShardRef[] = [];
  for (const ref of refs) {
    const [shard, oldBits] = await Promise.all([deps.cache.shard(ref), deps.cache.bitmap(ref)]);
    let bits: Uint8Array | undefined;
    let removed = 0;
    for (const id of tailIds) {
      const row = shard.rowOf(id);
      if (row === undefined || isSet(oldBits, row)) continue;
      bits ??= oldBits ? oldBits.slice() : new Uint8Array(Math.ceil(shard.count / 8));
      setBit(bits, row);
      removed++;
    }
    if (!bits) {
      updated.push(ref);
      continue;
    }
    const hash = sha256(bits);
    const key = `deletes/${ck}/${ref.id}/${hash.slice(0, 32)}.bits`;
    await deps.objects.putImmutable(key, bits);
    updated.push({ ...ref, live: ref.live - removed, deletes: { key, count: ref.count - ref.live + removed, sha256: hash } });
  }
  refs = updated.filter((r) => r.live > 0);

  // 2. The tail's live rows become a delta shard.
  const upserts: Row[] = tail.filter((r) => !r.deleted && r.vector).map((r) => ({ id: r.id, seq: r.seq, vector: r.vector!, metadata: r.metadata }));
  let kind: Manifest['stats']['kind'] = current ? (upserts.length ? 'delta' : 'deletes') : 'initial';
  refs = [...refs, ...(await writeShards(deps, meta, upserts, kind))];

  // 3. Compaction: rewrite sparse shards and merge the smallest while there are too many.
  const sparse = refs.filter((r) => r.count > 0 && 1 - r.live / r.count > policy.REWRITE_DELETED_FRACTION);
  let merge = [...sparse];
  if (refs.length > policy.MAX_SHARDS) {
    const bySize = refs.filter((r) => !sparse.includes(r)).sort((a, b) => a.live - b.live);
    const excess = refs.length - policy.COMPACT_TO + 1;
    merge = [...merge, ...bySize.slice(0, Math.max(0, excess - sparse.length))];
  }
  if (merge.length) {
    const rows = await liveRows(deps, merge);
    const merged = await writeShards(deps, meta, rows, 'compaction');
    refs = [...refs.filter((r) => !merge.includes(r)), ...merged];
    kind = 'compaction';
  }

  const manifest: Manifest = {
    collection: name,
    generation: meta.generation,
    version,
    parent: current?.version ?? 0,
    watermark: Math.max(stable, from),
    engine: meta.index.engine,
    params: meta.index.params,
    shards: refs,
    createdAt: new Date(now).toISOString(),
    codeVersion: deps.codeVersion,
    ...(meta.model ? { model: { ...meta.model } } : {}),
    stats: {
      rows: refs.reduce((s, r) => s + r.count, 0),
      liveRows: refs.reduce((s, r) => s + r.live, 0),
      bytes: refs.reduce((s, r) => s + r.bytes, 0),
      buildMs: Math.round(performance.now() - started),
      kind,
    },
  };
  if (!(await deps.catalog.commitManifest(manifest))) {
    // Another builder committed this version first; our uploads are garbage for the collector.
    const winner = await deps.catalog.latestManifest(name);
    return { built: false, reason: 'lost-race', version: winner?.version ?? version, shards: winner?.shards.length ?? 0, watermark: winner?.watermark ?? from };
  }
  // Tombstones now covered by the watermark are no longer needed as rows (bitmaps hold them).
  const tombstones = tail.filter((r) => r.deleted).map((r) => ({ id: r.id, seq: r.seq }));
  if (tombstones.length) {
    await deps.records.purge(ck, tombstones).catch((err) => console.warn(`purging tombstones of ${name} failed (harmless):`, err));
  }
  return { built: true, version, kind, shards: refs.length, watermark: manifest.watermark };
}

/**
 * Deletes shard and bitmap objects of a collection that no recent manifest references,
 * once they are older than the grace period. Returns the keys deleted.
 */
export async function collectGarbage(deps: BuilderDeps, name: string): Promise<string[]> {
  const now = deps.now?.() ?? Date.now();
  const meta = await deps.catalog.getCollection(name);
  const ck = collectionKey(meta);
  const manifests = await deps.catalog.listManifests(name, BUILD_POLICY.KEEP_VERSIONS);
  // Versions pinned by aliases stay servable, whatever their age.
  const recent = new Set(manifests.map((m) => m.version));
  for (const v of (await deps.pinnedVersions?.(name)) ?? []) {
    if (v > 0 && !recent.has(v)) {
      const pinned = await deps.catalog.getManifest(name, v).catch((err: unknown) => {
        // Only a manifest that is really gone may be skipped; any other failure stops the collection.
        if (err instanceof NotFoundError) return undefined;
        throw err;
      });
      if (pinned && pinned.generation === meta.generation) manifests.push(pinned);
    }
  }
  const keep = new Set<string>();
  for (const m of manifests) {
    for (const s of m.shards) {
      keep.add(s.key);
      if (s.deletes) keep.add(s.deletes.key);
    }
  }
  const doomed: string[] = [];
  for (const prefix of [`shards/${ck}/`, `deletes/${ck}/`]) {
    for await (const page of deps.objects.list(prefix)) {
      for (const o of page) {
        if (!keep.has(o.key) && now - o.lastModified.getTime() > BUILD_POLICY.GC_GRACE_MS) doomed.push(o.key);
      }
    }
  }
  if (doomed.length) await deps.objects.delete(doomed);
  return doomed;
}
