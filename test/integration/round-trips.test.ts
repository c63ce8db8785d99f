/**
 * Storage round trips of the write path on the emulators (docs/architecture.md §7.6), counted by the
 * request trace: the seq lease is taken while the meta item is read, the builder wake-up is debounced,
 * and a refused upsert gives its early lease back (an unreleased lease would hold the builder back).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CorruptDataError, NotFoundError, ValidationError } from '../../shared/errors.js';
import { ShoalCore } from '../../shared/core.js';
import { buildIndex } from '../../shared/indexing/builder.js';
import { WAKE_DEBOUNCE_MS, settled } from '../../shared/ingest/ingest.js';
import { ShardCache } from '../../shared/search/shard-cache.js';
import { TailCache } from '../../shared/search/tail-cache.js';
import { collectionKey } from '../../shared/storage/keys.js';
import { PARALLEL_GET } from '../../shared/storage/s3-objects.js';
import { traced } from '../../shared/storage/trace.js';
import { searchInput, startEmulatedStack, type EmulatedStack } from '../helpers/emulated-stack.js';
import { vectorInputs } from '../helpers/random.js';

let stack: EmulatedStack;
let wakes: string[] = [];
const now = (): number => Date.now();

function core(): ShoalCore {
  return new ShoalCore({
    catalog: stack.catalog,
    records: stack.records,
    objects: stack.objects,
    cache: new ShardCache({ objects: stack.objects, memoryBytes: 64 * 2 ** 20 }),
    slots: 1,
    tails: new TailCache(stack.catalog, stack.records),
    codeVersion: 'test',
    now,
    wake: async (c) => {
      wakes.push(c);
    },
  });
}

beforeAll(async () => {
  stack = await startEmulatedStack({ bucket: 'shoal-round-trips', now });
}, 60_000);

afterAll(async () => {
  await stack?.stop();
});

describe('upsert round trips', () => {
  it('reads the meta item and leases in one round trip, and wakes the builder once per window', async () => {
    const c = core();
    await c.createCollection({ name: 'rt', dimension: 4, metric: 'l2' });
    const [a, b] = vectorInputs(2, 4, 1, 'w');
    wakes = [];
    // The collection's first write also creates its seq counter's lease maps (two more calls, once).
    await c.upsert('rt', [a]);
    await settled();
    const before = await stack.catalog.seqState('rt');
    const second = await traced(() => c.upsert('rt', [b]));
    // meta ‖ write lease (it names the id: the write's log entry until settled), the row; the wake-up is
    // debounced (and the test's own function anyway). Settling (log entry, lease removed) follows, untraced.
    expect(second.trace.summary()).toMatchObject({ calls: 3, roundTrips: 2 });
    expect(second.trace.summary().ops).toEqual({
      'DynamoDB.GetItemCommand': 1,
      'DynamoDB.UpdateItemCommand': 1,
      'DynamoDB.BatchWriteItemCommand': 1,
    });
    expect(wakes).toEqual(['rt']);
    // Acknowledged: durable and visible to `get` and to a tail read at once, whether settled yet or not.
    const ck = collectionKey(await stack.catalog.getCollection('rt'));
    const state = await stack.catalog.seqState('rt');
    const tail = [];
    for await (const batch of stack.records.tail(ck, before.allocated, undefined, undefined, state.pending)) {
      tail.push(...batch);
    }
    expect(tail.map((r) => r.id)).toEqual([b.id]);
    await settled();
    expect(await stack.catalog.seqState('rt')).toEqual({
      stable: before.allocated + 1,
      allocated: before.allocated + 1,
    });
    const logged = [];
    for await (const batch of stack.records.tail(ck, before.allocated)) logged.push(...batch);
    expect(logged.map((r) => r.id)).toEqual([b.id]);
    await new Promise((r) => setTimeout(r, WAKE_DEBOUNCE_MS + 50));
    await c.upsert('rt', [b]);
    expect(wakes).toEqual(['rt', 'rt']);
    const got = await c.getVectors('rt', [a.id, b.id]);
    expect(got.map((v) => v.id).sort()).toEqual([a.id, b.id].sort());
  });

  it('leases early only for input that fits, and gives the lease back when the upsert is refused', async () => {
    const c = core();
    await c.createCollection({ name: 'refused', dimension: 4, metric: 'l2' });
    await c.upsert('refused', vectorInputs(3, 4, 2, 'ok'));
    await settled();
    const stable = await stack.catalog.stableSeq('refused');
    // Bad input against the collection this process has seen: refused before any lease, no seq consumed.
    await expect(c.upsert('refused', vectorInputs(2, 5, 3, 'bad'))).rejects.toBeInstanceOf(ValidationError);
    expect(await stack.catalog.stableSeq('refused')).toBe(stable);
    expect(await c.getVectors('refused', ['bad0', 'bad1'])).toEqual([]);
    // An unknown name: nothing leased either.
    await expect(c.upsert('never-created', vectorInputs(1, 4, 4, 'x'))).rejects.toBeInstanceOf(NotFoundError);
    expect(await stack.catalog.stableSeq('never-created')).toBe(0);

    // Deleted by another process after this one saw it: the early lease is taken, the write refused, and
    // the lease released — a held one would keep the re-created collection's builder waiting.
    await core().deleteCollection('refused');
    await expect(c.upsert('refused', vectorInputs(2, 4, 5, 'late'))).rejects.toBeInstanceOf(NotFoundError);
    await core().createCollection({ name: 'refused', dimension: 4, metric: 'l2' });
    const lease = await stack.catalog.leaseSeqs('refused', 1, 60_000);
    expect(await stack.catalog.stableSeq('refused')).toBe(lease.first - 1);
    await stack.catalog.releaseSeqs('refused', lease);
    expect(await stack.catalog.stableSeq('refused')).toBe(lease.last);
  });
});

describe('search round trips', () => {
  it('answers a strong search on a steady tail in one round trip, and still sees the next write', async () => {
    const c = core();
    await c.createCollection({ name: 'steady', dimension: 8, metric: 'l2' });
    const vs = vectorInputs(30, 8, 5, 's');
    await c.upsert('steady', vs.slice(0, 25));
    const cache = new ShardCache({ objects: stack.objects, memoryBytes: 64 * 2 ** 20 });
    await buildIndex({ ...stack, cache, codeVersion: 'test', now }, 'steady', { force: true });
    await c.upsert('steady', vs.slice(25, 28));
    const strong = (i: number) => traced(() => c.search('steady', searchInput(vs[i].values, { k: 1 })));

    expect((await strong(26)).result.results[0][0].id).toBe(vs[26].id); // reads the tail once
    const steady = await strong(3);
    expect(steady.result.results[0][0].id).toBe(vs[3].id);
    // The meta item and the seq counter, in parallel; the manifest is cached, the tail unchanged.
    expect(steady.trace.summary()).toMatchObject({ calls: 2, roundTrips: 1 });
    expect(steady.trace.summary().ops).toEqual({ 'DynamoDB.GetItemCommand': 2 });

    await c.upsert('steady', [vs[29]]);
    const fresh = await strong(29);
    expect(fresh.result.results[0][0].id).toBe(vs[29].id);
    // Something new was allocated: the log and the new row are read (two more round trips).
    expect(fresh.trace.summary().roundTrips).toBe(3);
    expect((await strong(29)).trace.summary().roundTrips).toBe(1);

    const eventual = await traced(() =>
      c.search('steady', searchInput(vs[5].values, { k: 1, consistency: 'eventual' })),
    );
    expect(eventual.result.results[0][0].id).toBe(vs[5].id);
    expect(eventual.trace.summary()).toMatchObject({ calls: 1, roundTrips: 1 });
  });

  it('searches an eventual query’s shards during the meta read, and never answers from a moved item', async () => {
    const cache = new ShardCache({ objects: stack.objects, memoryBytes: 64 * 2 ** 20 });
    let lookups = 0;
    const shard = cache.shard.bind(cache);
    cache.shard = (ref) => {
      lookups++;
      return shard(ref);
    };
    const c = new ShoalCore({
      catalog: stack.catalog,
      records: stack.records,
      objects: stack.objects,
      cache,
      slots: 1,
      codeVersion: 'test',
      now,
      wake: async () => undefined,
    });
    await c.createCollection({ name: 'spec', dimension: 8, metric: 'l2' });
    const vs = vectorInputs(40, 8, 9, 'p');
    await c.upsert('spec', vs.slice(0, 25));
    const builder = { ...stack, cache: new ShardCache({ objects: stack.objects, memoryBytes: 64 * 2 ** 20 }) };
    await buildIndex({ ...builder, codeVersion: 'test', now }, 'spec', { force: true });
    const eventual = async (i: number) => {
      lookups = 0;
      const out = await traced(() => c.search('spec', searchInput(vs[i].values, { k: 1, consistency: 'eventual' })));
      return { ...out, lookups };
    };
    await eventual(1); // reads and caches the manifest
    const warm = await eventual(2);
    expect(warm.result.results[0][0].id).toBe(vs[2].id);
    expect(warm.result.servedBy.version).toBe(1);
    // One search of the one shard: the speculative one, kept because the meta item had not moved.
    expect(warm.lookups).toBe(1);
    expect(warm.trace.summary()).toMatchObject({ calls: 1, roundTrips: 1 });

    // A new head version moves the meta item: the speculative answer (version 1) is dropped.
    await c.upsert('spec', vs.slice(25, 40));
    await buildIndex({ ...builder, codeVersion: 'test', now }, 'spec', { force: true });
    const moved = await eventual(33);
    expect(moved.result.servedBy.version).toBe(2);
    expect(moved.result.results[0][0].id).toBe(vs[33].id);
    // Version 1's shard speculatively, then version 2's shards after the read.
    expect(moved.lookups).toBe(1 + moved.result.stats.shardsSearched);
    const settled = await eventual(34);
    expect(settled.lookups).toBe(settled.result.stats.shardsSearched);

    // Strong reads never speculate (their tail is read after the meta item).
    lookups = 0;
    const strong = await c.search('spec', searchInput(vs[35].values, { k: 1 }));
    expect(lookups).toBe(strong.stats.shardsSearched);
  });

  it('gets rows in one round trip once the generation is known, never a re-created one’s old rows', async () => {
    const c = core();
    await c.createCollection({ name: 'getter', dimension: 4, metric: 'l2' });
    const vs = vectorInputs(3, 4, 7, 'g');
    await c.upsert('getter', vs);
    const reader = core(); // a process that has not seen the collection yet
    const first = await traced(() => reader.getVectors('getter', [vs[0].id]));
    expect(first.result.map((v) => v.id)).toEqual([vs[0].id]);
    expect(first.trace.summary().roundTrips).toBe(2);
    const warm = await traced(() => reader.getVectors('getter', [vs[1].id, 'absent']));
    expect(warm.result.map((v) => v.id)).toEqual([vs[1].id]);
    expect(warm.trace.summary()).toMatchObject({ calls: 2, roundTrips: 1 });
    // The writer saw the collection when it wrote: its first get is one round trip too.
    expect((await traced(() => c.getVectors('getter', [vs[2].id]))).trace.summary().roundTrips).toBe(1);

    // Deleted and re-created (a new generation) by another process: this one's hint is stale.
    const other = core();
    await other.deleteCollection('getter');
    await other.createCollection({ name: 'getter', dimension: 4, metric: 'l2' });
    expect(await reader.getVectors('getter', [vs[0].id, vs[1].id])).toEqual([]);
    const moved = { ...vs[2], values: vs[0].values };
    await other.upsert('getter', [moved]);
    const got = await reader.getVectors('getter', [vs[2].id]);
    expect(got).toHaveLength(1);
    expect(got[0].values).toEqual(Array.from(vs[0].values));
  });
});

describe('cold loads', () => {
  it('reads a large object of known size as parallel ranged GETs in one round trip', async () => {
    const size = 2 * PARALLEL_GET.PART_BYTES + 12_345;
    const bytes = new Uint8Array(size);
    for (let i = 0; i < size; i += 4096) bytes[i] = (i / 4096) % 251;
    bytes[size - 1] = 7;
    await stack.objects.putImmutable('bench/parallel-get.bin', bytes);

    const { result, trace } = await traced(() => stack.objects.get('bench/parallel-get.bin', size));
    expect(result.byteLength).toBe(size);
    expect(Buffer.from(result).equals(Buffer.from(bytes))).toBe(true);
    expect(trace.summary()).toMatchObject({ calls: 3, roundTrips: 1, ops: { 'S3.GetObjectCommand': 3 } });
    // Without a size (or below the threshold) it is one GET, as before.
    expect((await traced(() => stack.objects.get('bench/parallel-get.bin'))).trace.summary().calls).toBe(1);
    // A size the object does not have is caught part by part, never returned as data.
    await expect(stack.objects.get('bench/parallel-get.bin', size + 10)).rejects.toBeInstanceOf(CorruptDataError);
    await expect(stack.objects.get('bench/absent.bin', size)).rejects.toBeInstanceOf(NotFoundError);
  });
});
