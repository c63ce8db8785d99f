import { describe, expect, it } from 'vitest';
import { exactTopK } from '../../shared/engine/distance.js';
import {
  MAX_SHARD_HEAP_BYTES,
  estimateHnswHeapBytes,
  hnswEngine,
  resolveHnswParams,
} from '../../shared/engine/hnsw.js';
import { SPACE, loadShoalWasm } from '../../shared/engine/shoal-wasm.js';
import { CorruptDataError, LimitExceededError, ValidationError } from '../../shared/errors.js';
import type { Metric } from '../../shared/types.js';
import { mulberry32, randomVectors } from '../helpers/random.js';

const METRICS: Metric[] = ['l2', 'cosine', 'ip'];

describe('hnswEngine', () => {
  // The WASM kernels take 8 floats a step, then 4, then the last 1–3 as zero-extended loads; every
  // remainder (d mod 8 = 0…7) and a lone tail (d < 4) must give the distance plain arithmetic gives.
  it.each([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 50, 51, 130])(
    'scores every hit as exact search does at dim %i, for every metric',
    async (dim) => {
      for (const metric of METRICS) {
        // Prepare
        const count = 60;
        const vectors = randomVectors(mulberry32(dim * 31 + metric.length), count, dim);
        const view = { data: vectors, offset: 0, stride: dim, dim, count, normalized: false };
        const { bytes, params } = await hnswEngine.build({ dim, count, metric, vectors, params: {} });
        const index = await hnswEngine.load(bytes, { dim, count, metric, params });
        for (let q = 0; q < 5; q++) {
          // Act
          const query = vectors.subarray(q * dim, q * dim + dim);
          const got = index.search(query, { k: 20, ef: 100 });
          // Assess: each hit's score is its row's exact score (the rows found need not be the exact top 20).
          const exact = new Map(exactTopK(view, metric, query, count).map((h) => [h.row, h.score]));
          expect(got).toHaveLength(20);
          for (const hit of got) expect(hit.score, `${metric} row ${hit.row}`).toBeCloseTo(exact.get(hit.row)!, 4);
        }
        index.dispose();
      }
    },
  );

  it.each(METRICS)('builds, exports and reloads a %s index whose results match exact search', async (metric) => {
    // Prepare
    const dim = 16;
    const count = 500;
    const vectors = randomVectors(mulberry32(7), count, dim);
    // Act
    const { bytes, params } = await hnswEngine.build({ dim, count, metric, vectors, params: { efConstruction: 100 } });
    const index = await hnswEngine.load(bytes, { dim, count, metric, params });
    // Assess
    expect(params).toEqual({ m: 16, efConstruction: 100, efSearch: 64, seed: 100 });
    const view = index.vectors();
    let agree = 0;
    for (let q = 0; q < 50; q++) {
      const query = vectors.subarray(q * dim, q * dim + dim);
      const got = index.search(query, { k: 10, ef: 128 });
      const want = exactTopK(
        { data: vectors, offset: 0, stride: dim, dim, count, normalized: false },
        metric,
        query,
        10,
      );
      expect(got).toHaveLength(10);
      agree += got.filter((h) => want.some((w) => w.row === h.row)).length;
      // Scores use Shoal's convention (similarity for cosine/ip, squared distance for l2).
      const top = got[0];
      const ref = want.find((w) => w.row === top.row);
      if (ref) expect(top.score).toBeCloseTo(ref.score, 4);
      for (let i = 1; i < got.length; i++) {
        if (metric === 'l2') expect(got[i].score).toBeGreaterThanOrEqual(got[i - 1].score);
        else expect(got[i].score).toBeLessThanOrEqual(got[i - 1].score);
      }
    }
    expect(agree / 500).toBeGreaterThanOrEqual(0.98);
    // The vector view reads rows straight out of hnswlib's level 0 in the WASM heap.
    const row3 = Array.from(view.data.subarray(view.offset + 3 * view.stride, view.offset + 3 * view.stride + dim));
    const input3 = Array.from(vectors.subarray(3 * dim, 4 * dim));
    if (metric === 'cosine') {
      const norm = Math.hypot(...input3);
      row3.forEach((x, j) => expect(x).toBeCloseTo(input3[j] / norm, 5));
    } else {
      expect(row3).toEqual(input3);
    }
    index.dispose();
  });

  it('keeps no copy of the index bytes: exact scans read the heap, and survive the heap growing', async () => {
    // Prepare
    const dim = 8;
    const count = 300;
    const vectors = randomVectors(mulberry32(11), count, dim);
    const { bytes, params } = await hnswEngine.build({ dim, count, metric: 'l2', vectors, params: {} });
    const index = await hnswEngine.load(bytes, { dim, count, metric: 'l2', params });
    const wasm = await loadShoalWasm();
    const before = index.vectors();
    // Act: overwrite the caller's bytes (nothing may still read them), then grow the heap.
    bytes.fill(0);
    const big = wasm.alloc(wasm.heap().byteLength, 'test growth');
    const after = index.vectors();
    // Assess
    expect(after.data.buffer).toBe(wasm.heap().buffer);
    expect(before.data.length).toBe(0); // the old view was detached by the growth
    const row = (r: number) =>
      Array.from(after.data.subarray(after.offset + r * after.stride, after.offset + r * after.stride + dim));
    expect(row(0)).toEqual(Array.from(vectors.subarray(0, dim)));
    expect(row(count - 1)).toEqual(Array.from(vectors.subarray((count - 1) * dim, count * dim)));
    const exact = exactTopK(after, 'l2', vectors.subarray(5 * dim, 6 * dim), 1);
    expect(exact[0].row).toBe(5);
    wasm.free(big);
    index.dispose();
  });

  it.each(METRICS)(
    "exact(): the WASM scan returns exactTopK's rows and scores (%s), all rows or a subset",
    async (metric) => {
      // Prepare
      const dim = 13; // 8 + 4 + 1: every kernel tail
      const count = 400;
      const vectors = randomVectors(mulberry32(17), count, dim);
      const { bytes, params } = await hnswEngine.build({ dim, count, metric, vectors, params: {} });
      const index = await hnswEngine.load(bytes, { dim, count, metric, params });
      const subset = Int32Array.from({ length: 150 }, (_, i) => (i * 7) % count);
      for (let q = 0; q < 10; q++) {
        const query = randomVectors(mulberry32(100 + q), 1, dim);
        for (const rows of [undefined, subset]) {
          // Act
          const got = index.exact!(query, 10, rows);
          // Assess: the same rows in the same order; scores equal to float32 precision.
          const want = exactTopK(index.vectors(), metric, query, 10, rows ? { rows } : undefined);
          expect(got.map((h) => h.row)).toEqual(want.map((h) => h.row));
          got.forEach((h, i) => expect(h.score).toBeCloseTo(want[i].score, 5));
        }
      }
      index.dispose();
    },
  );

  it('exact(): ties go to the lower row, k above the rows returns them all, and a bad row is refused', async () => {
    // Prepare: small integers, so many l2 distances tie exactly (and are exact in float32 and float64).
    const dim = 3;
    const count = 64;
    const vectors = Float32Array.from({ length: count * dim }, (_, i) => Math.floor(i / dim) % 4);
    const { bytes, params } = await hnswEngine.build({ dim, count, metric: 'l2', vectors, params: {} });
    const index = await hnswEngine.load(bytes, { dim, count, metric: 'l2', params });
    const query = new Float32Array([1, 1, 1]);
    // Act / Assess: rows 1, 5, 9, … hold (1, 1, 1); the lowest five win.
    expect(index.exact!(query, 5)).toEqual([1, 5, 9, 13, 17].map((row) => ({ row, score: 0 })));
    expect(index.exact!(query, 5)).toEqual(exactTopK(index.vectors(), 'l2', query, 5));
    const rows = Int32Array.from([40, 2, 33]);
    expect(index.exact!(query, 10, rows).map((h) => h.row)).toEqual([33, 2, 40]);
    expect(index.exact!(query, 10, new Int32Array(0))).toEqual([]);
    expect(() => index.exact!(query, 3, Int32Array.from([0, count]))).toThrow(ValidationError);
    expect(() => index.exact!(new Float32Array(2), 3)).toThrow(ValidationError);
    index.dispose();
  });

  it('two loads of the same bytes answer identically (deterministic build with a fixed seed)', async () => {
    const dim = 8;
    const count = 300;
    const vectors = randomVectors(mulberry32(3), count, dim);
    const a = await hnswEngine.build({ dim, count, metric: 'l2', vectors });
    const b = await hnswEngine.build({ dim, count, metric: 'l2', vectors });
    expect(Buffer.from(a.bytes).equals(Buffer.from(b.bytes))).toBe(true);
  });

  it('returns every row when k exceeds the count, and honours allow', async () => {
    const dim = 4;
    const count = 40;
    const vectors = randomVectors(mulberry32(5), count, dim);
    const { bytes, params } = await hnswEngine.build({ dim, count, metric: 'l2', vectors });
    const index = await hnswEngine.load(bytes, { dim, count, metric: 'l2', params });
    const q = vectors.subarray(0, dim);
    expect(index.search(q, { k: 100 })).toHaveLength(count);
    const odd = index.search(q, { k: 5, allow: (row) => row % 2 === 1 });
    expect(odd).toHaveLength(5);
    expect(odd.every((h) => h.row % 2 === 1)).toBe(true);
    index.dispose();
  });

  it.each([1, 2, 7])('round-trips a tiny %i-row index', async (count) => {
    const dim = 3;
    const vectors = randomVectors(mulberry32(count), count, dim);
    const { bytes, params } = await hnswEngine.build({ dim, count, metric: 'l2', vectors });
    const index = await hnswEngine.load(bytes, { dim, count, metric: 'l2', params });
    expect(index.search(vectors.subarray(0, dim), { k: count })[0]).toEqual({ row: 0, score: 0 });
    index.dispose();
  });

  it('handles an empty shard', async () => {
    const { bytes, params } = await hnswEngine.build({
      dim: 4,
      count: 0,
      metric: 'cosine',
      vectors: new Float32Array(0),
    });
    const index = await hnswEngine.load(bytes, { dim: 4, count: 0, metric: 'cosine', params });
    expect(index.search(new Float32Array([1, 0, 0, 0]), { k: 3 })).toEqual([]);
    index.dispose();
  });

  it('rejects index bytes that do not describe the declared shape', async () => {
    const dim = 4;
    const count = 20;
    const { bytes, params } = await hnswEngine.build({
      dim,
      count,
      metric: 'l2',
      vectors: randomVectors(mulberry32(1), count, dim),
    });
    await expect(hnswEngine.load(bytes, { dim: 5, count, metric: 'l2', params })).rejects.toBeInstanceOf(
      CorruptDataError,
    );
    await expect(hnswEngine.load(bytes, { dim, count: count + 1, metric: 'l2', params })).rejects.toBeInstanceOf(
      CorruptDataError,
    );
    await expect(hnswEngine.load(bytes.subarray(0, 40), { dim, count, metric: 'l2', params })).rejects.toBeInstanceOf(
      CorruptDataError,
    );
    // A damaged link-list section is refused inside the WASM, before anything is read past its end.
    await expect(
      hnswEngine.load(bytes.subarray(0, bytes.length - 1), { dim, count, metric: 'l2', params }),
    ).rejects.toBeInstanceOf(CorruptDataError);
    const bad = bytes.slice();
    const perElement = new DataView(bytes.buffer, bytes.byteOffset).getUint32(12, true);
    // Row 0's upper-level list claims 7 bytes: not a whole number of levels.
    new DataView(bad.buffer).setUint32(56 + count * perElement, 7, true);
    await expect(hnswEngine.load(bad, { dim, count, metric: 'l2', params })).rejects.toBeInstanceOf(CorruptDataError);
  });

  it('refuses a shard that would not fit its share of the 4 GiB WASM heap, before allocating', async () => {
    // dim=1, m=128 makes each row ~1.1 KB of heap while the input stays small (8 MB).
    const count = 2 * Math.ceil(MAX_SHARD_HEAP_BYTES / estimateHnswHeapBytes(1, 1, 128));
    const vectors = new Float32Array(count);
    const err = await hnswEngine
      .build({ dim: 1, count, metric: 'l2', vectors, params: { m: 128 } })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LimitExceededError);
  });

  it('turns a real WASM out-of-memory into LimitExceededError and stays usable', async () => {
    // Prepare: indexes whose level-0 blocks exceed what the 4 GiB heap can hold (no vectors needed).
    const wasm = await loadShoalWasm();
    // Act: beyond wasm32's address space (refused before hnswlib's 32-bit size arithmetic wraps),
    // and within it but beyond what the heap can still grow to (a real failed malloc).
    const beyond = wasm.x.shoal_create(SPACE.l2, 128, 10_000_000, 16, 100, 1);
    const beyondError = wasm.failure('create');
    const first = wasm.x.shoal_create(SPACE.l2, 768, 1_000_000, 16, 100, 1);
    const second = first === 0 ? 0 : wasm.x.shoal_create(SPACE.l2, 768, 1_000_000, 16, 100, 1);
    const realError = wasm.failure('create');
    wasm.x.shoal_destroy(first);
    wasm.x.shoal_destroy(second);
    // Assess
    expect(beyond).toBe(0);
    expect(beyondError).toBeInstanceOf(LimitExceededError);
    expect(second).toBe(0);
    expect(realError).toBeInstanceOf(LimitExceededError);
    const { bytes, params } = await hnswEngine.build({
      dim: 2,
      count: 3,
      metric: 'l2',
      vectors: new Float32Array([0, 0, 1, 1, 2, 2]),
    });
    const index = await hnswEngine.load(bytes, { dim: 2, count: 3, metric: 'l2', params });
    expect(index.search(new Float32Array([1, 1]), { k: 1 })[0].row).toBe(1);
    index.dispose();
  });

  it('filters by an allowed-rows bitmap read inside the WASM, the same as the callback', async () => {
    const dim = 8;
    const count = 1000;
    const vectors = randomVectors(mulberry32(9), count, dim);
    const { bytes, params } = await hnswEngine.build({ dim, count, metric: 'cosine', vectors });
    const index = await hnswEngine.load(bytes, { dim, count, metric: 'cosine', params });
    const bits = new Uint8Array(Math.ceil(count / 8));
    for (let row = 0; row < count; row += 4) bits[row >>> 3] |= 1 << (row & 7);
    for (let q = 0; q < 20; q++) {
      const query = vectors.subarray(q * dim, q * dim + dim);
      const byBits = index.search(query, { k: 10, ef: 200, allowedBits: bits });
      const byCallback = index.search(query, { k: 10, ef: 200, allow: (row) => row % 4 === 0 });
      expect(byBits).toHaveLength(10);
      expect(byBits.every((h) => h.row % 4 === 0)).toBe(true);
      expect(byBits).toEqual(byCallback);
    }
    index.dispose();
  });

  it('C API: resize, mark-deleted, memory stats and byte round-trip', async () => {
    const wasm = await loadShoalWasm();
    const dim = 4;
    const vectors = randomVectors(mulberry32(21), 20, dim);
    const handle = wasm.x.shoal_create(SPACE.l2, dim, 10, 8, 50, 1);
    const buf = wasm.alloc(vectors.byteLength, 'test');
    wasm.f32(buf, vectors.length).set(vectors);
    expect(wasm.x.shoal_add(handle, buf, 10, 0)).toBe(10);
    // Full: the 11th row fails with a typed error, then fits after a resize.
    expect(wasm.x.shoal_add(handle, buf + 10 * dim * 4, 1, 10)).toBe(-1);
    expect(wasm.failure('add')).toBeInstanceOf(Error);
    expect(wasm.x.shoal_resize(handle, 20)).toBe(0);
    expect(wasm.x.shoal_add(handle, buf + 10 * dim * 4, 10, 10)).toBe(10);
    expect(wasm.x.shoal_count(handle)).toBe(20);
    expect(wasm.x.shoal_max_elements(handle)).toBe(20);
    expect(wasm.x.shoal_mark_deleted(handle, 3)).toBe(0);
    expect(wasm.x.shoal_deleted_count(handle)).toBe(1);
    expect(wasm.x.shoal_index_bytes(handle)).toBeGreaterThan(20 * (dim * 4 + 16 * 4));
    expect(wasm.heapUsedBytes()).toBeGreaterThan(0);
    expect(wasm.heapBytes()).toBeGreaterThanOrEqual(wasm.heapUsedBytes());
    const size = wasm.x.shoal_save_size(handle);
    const out = wasm.alloc(size, 'test');
    expect(wasm.x.shoal_save(handle, out)).toBe(size);
    const copy = wasm.x.shoal_load(SPACE.l2, dim, out, size, 0);
    expect(copy).not.toBe(0);
    expect(wasm.x.shoal_deleted_count(copy)).toBe(1);
    // Truncated bytes are refused as corrupt, not read past their end.
    expect(wasm.x.shoal_load(SPACE.l2, dim, out, size - 1, 0)).toBe(0);
    expect(wasm.failure('load')).toBeInstanceOf(CorruptDataError);
    for (const h of [handle, copy]) wasm.x.shoal_destroy(h);
    wasm.free(buf);
    wasm.free(out);
  });

  it('estimates the heap an index really uses (within 15 %)', async () => {
    const wasm = await loadShoalWasm();
    const dim = 32;
    const count = 20_000;
    const vectors = randomVectors(mulberry32(4), count, dim);
    const buf = wasm.alloc(vectors.byteLength, 'test');
    wasm.f32(buf, vectors.length).set(vectors);
    const before = wasm.heapUsedBytes();
    const tiny = wasm.x.shoal_create(SPACE.l2, dim, 1, 16, 20, 1);
    const fixed = wasm.heapUsedBytes() - before;
    wasm.x.shoal_destroy(tiny);
    const handle = wasm.x.shoal_create(SPACE.l2, dim, count, 16, 20, 1);
    expect(wasm.x.shoal_add(handle, buf, count, 0)).toBe(count);
    const used = wasm.heapUsedBytes() - before - fixed;
    wasm.x.shoal_destroy(handle);
    wasm.free(buf);
    const estimate = estimateHnswHeapBytes(count, dim, 16);
    expect(estimate / used).toBeGreaterThan(0.85);
    expect(estimate / used).toBeLessThan(1.15);
  });

  it('validates parameters and names the field', () => {
    expect(() => resolveHnswParams({ m: 1 })).toThrow(ValidationError);
    const err = (() => {
      try {
        resolveHnswParams({ efConstruction: 1.5 });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).field).toBe('index.efConstruction');
  });
});
