import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CorruptDataError } from '../errors.js';
import { decodeCentroids, type Centroids } from '../engine/ivf.js';
import { Shard } from '../shard/shard.js';
import type { ObjectStore, PartitionTable, ShardRef } from '../storage/types.js';

export interface ShardCacheOptions {
  objects: ObjectStore;
  /** In-memory budget (bytes of loaded shard files). Evicted shards free their WASM memory. */
  memoryBytes: number;
  /** Disk tier directory (Lambda: /tmp); undefined disables it. */
  diskDir?: string;
  /** Disk tier budget in bytes. */
  diskBytes?: number;
}

export interface ShardCacheStats {
  hits: number;
  diskHits: number;
  misses: number;
  evictions: number;
  residentBytes: number;
  resident: number;
}

interface Entry {
  shard: Shard;
  bytes: number;
}

/**
 * Loaded shards, LRU by bytes, with a disk tier. Objects are immutable and content
 * addressed, so a cached copy is never stale and needs no invalidation: a new index
 * version simply names other keys. Checksums are verified on every load from S3 or disk
 * (the shard file's own CRCs, plus the manifest's sha256 on download).
 */
export class ShardCache {
  private readonly entries = new Map<string, Entry>();
  private readonly loading = new Map<string, Promise<Shard>>();
  private readonly bitmaps = new Map<string, Uint8Array>();
  private readonly centroidTables = new Map<string, Promise<Centroids>>();
  private residentBytes = 0;
  private diskUsed = 0;
  private readonly diskFiles = new Map<string, number>();
  private readonly counters = { hits: 0, diskHits: 0, misses: 0, evictions: 0 };

  constructor(private readonly options: ShardCacheOptions) {}

  stats(): ShardCacheStats {
    return { ...this.counters, residentBytes: this.residentBytes, resident: this.entries.size };
  }

  async shard(ref: ShardRef): Promise<Shard> {
    const hit = this.entries.get(ref.key);
    if (hit) {
      // Map iteration order is insertion order: re-inserting marks it most recently used.
      this.entries.delete(ref.key);
      this.entries.set(ref.key, hit);
      this.counters.hits++;
      return hit.shard;
    }
    let pending = this.loading.get(ref.key);
    if (!pending) {
      pending = this.load(ref).finally(() => this.loading.delete(ref.key));
      this.loading.set(ref.key, pending);
    }
    return pending;
  }

  /** Deletion bitmap of a shard in a version (small; kept until the process ends or 4096 are cached). */
  async bitmap(ref: ShardRef): Promise<Uint8Array | undefined> {
    if (!ref.deletes) return undefined;
    const cached = this.bitmaps.get(ref.deletes.key);
    if (cached) return cached;
    const bytes = await this.options.objects.get(ref.deletes.key);
    if (sha256(bytes) !== ref.deletes.sha256)
      throw new CorruptDataError(`deletion bitmap ${ref.deletes.key} fails its checksum`);
    if (this.bitmaps.size >= 4096) this.bitmaps.delete(this.bitmaps.keys().next().value as string);
    this.bitmaps.set(ref.deletes.key, bytes);
    return bytes;
  }

  /**
   * A partitioned version's centroid table (≤ 4,096 × dim float32; 12.6 MB at 768-d). The newest 8
   * tables are kept: a coordinator routes every query of a version through its table.
   */
  async centroids(table: PartitionTable): Promise<Centroids> {
    const cached = this.centroidTables.get(table.key);
    if (cached) return cached;
    const loading = this.options.objects.get(table.key).then((bytes) => {
      if (sha256(bytes) !== table.sha256)
        throw new CorruptDataError(`centroid table ${table.key} fails its manifest checksum`);
      return decodeCentroids(bytes, table.count, table.dim);
    });
    // A failed load is not cached: the next query tries again.
    loading.catch(() => this.centroidTables.delete(table.key));
    if (this.centroidTables.size >= 8) this.centroidTables.delete(this.centroidTables.keys().next().value as string);
    this.centroidTables.set(table.key, loading);
    return loading;
  }

  private async load(ref: ShardRef): Promise<Shard> {
    let bytes = await this.readDisk(ref);
    if (bytes) this.counters.diskHits++;
    else {
      this.counters.misses++;
      bytes = await this.options.objects.get(ref.key, ref.bytes);
      if (sha256(bytes) !== ref.sha256) throw new CorruptDataError(`shard ${ref.key} fails its manifest checksum`);
      await this.writeDisk(ref, bytes);
    }
    const shard = await Shard.open(bytes);
    this.entries.set(ref.key, { shard, bytes: bytes.byteLength });
    this.residentBytes += bytes.byteLength;
    this.evict(ref.key);
    return shard;
  }

  private evict(keep: string): void {
    for (const [key, entry] of this.entries) {
      if (this.residentBytes <= this.options.memoryBytes) break;
      if (key === keep) continue;
      this.entries.delete(key);
      this.residentBytes -= entry.bytes;
      this.counters.evictions++;
      // A search may still hold this shard for the current request; free after it yields.
      setTimeout(() => entry.shard.dispose(), 1000).unref();
    }
  }

  private diskPath(ref: ShardRef): string | undefined {
    if (!this.options.diskDir || !this.options.diskBytes) return undefined;
    return path.join(this.options.diskDir, `${ref.sha256}.shard`);
  }

  private async readDisk(ref: ShardRef): Promise<Uint8Array | undefined> {
    const file = this.diskPath(ref);
    if (!file) return undefined;
    try {
      const bytes = new Uint8Array(await readFile(file));
      // A torn or tampered file is dropped and fetched again.
      if (sha256(bytes) === ref.sha256) return bytes;
      await rm(file, { force: true });
    } catch {
      // Not cached on disk.
    }
    return undefined;
  }

  private async writeDisk(ref: ShardRef, bytes: Uint8Array): Promise<void> {
    const file = this.diskPath(ref);
    const budget = this.options.diskBytes ?? 0;
    if (!file || bytes.byteLength > budget) return;
    try {
      await mkdir(path.dirname(file), { recursive: true });
      while (this.diskUsed + bytes.byteLength > budget && this.diskFiles.size > 0) {
        const [oldest, size] = this.diskFiles.entries().next().value as [string, number];
        this.diskFiles.delete(oldest);
        this.diskUsed -= size;
        await rm(oldest, { force: true });
      }
      // Write then rename, so a crash never leaves a partial file under the final name.
      const tmp = `${file}.${process.pid}.tmp`;
      await writeFile(tmp, bytes);
      await rename(tmp, file);
      const size = (await stat(file)).size;
      this.diskFiles.set(file, size);
      this.diskUsed += size;
    } catch {
      // The disk tier is an optimisation; a full /tmp must not fail the search.
    }
  }

  /** Frees everything (tests, shutdown). */
  clear(): void {
    for (const entry of this.entries.values()) entry.shard.dispose();
    this.entries.clear();
    this.residentBytes = 0;
    this.bitmaps.clear();
    this.centroidTables.clear();
  }
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
