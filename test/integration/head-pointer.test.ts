/**
 * The head pointer on the collection's meta item (docs/architecture.md §7.6): the builder moves it after
 * each commit, readers fetch that manifest by number from a per-process cache, so an eventual search on
 * an unchanged collection is one read. The pointer may trail a commit (a crash between the two); a reader
 * on the older version must still see every write, so the builder purges tombstones and trims the log
 * only once the pointers are moved — provoked here by a catalog whose pointer update fails.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ShoalCore } from '../../shared/core.js';
import { buildIndex, type BuilderDeps } from '../../shared/indexing/builder.js';
import { ShardCache } from '../../shared/search/shard-cache.js';
import { TailCache } from '../../shared/search/tail-cache.js';
import { DynamoCatalog } from '../../shared/storage/dynamo-catalog.js';
import { traced } from '../../shared/storage/trace.js';
import type { Catalog } from '../../shared/storage/types.js';
import { searchInput, startEmulatedStack, type EmulatedStack } from '../helpers/emulated-stack.js';
import { vectorInputs } from '../helpers/random.js';

let stack: EmulatedStack;
let clock = Date.now();
const now = (): number => clock;

/** A fresh catalog (empty manifest cache), as a new container has. */
const freshCatalog = () => new DynamoCatalog({ ddb: stack.aws.ddb, table: 'catalog', now });

function core(catalog: Catalog = freshCatalog()): ShoalCore {
  return new ShoalCore({
    catalog,
    records: stack.records,
    objects: stack.objects,
    cache: new ShardCache({ objects: stack.objects, memoryBytes: 64 * 2 ** 20 }),
    slots: 1,
    tails: new TailCache(catalog, stack.records),
    codeVersion: 'test',
    now,
    wake: async () => {},
  });
}

function builder(catalog: Catalog = stack.catalog): BuilderDeps {
  return {
    catalog,
    records: stack.records,
    objects: stack.objects,
    cache: new ShardCache({ objects: stack.objects, memoryBytes: 64 * 2 ** 20 }),
    codeVersion: 'test',
    now,
  };
}

/** The real catalog, except that moving a head pointer fails (a builder dying right after its commit). */
function pointerFails(catalog: DynamoCatalog): Catalog {
  return new Proxy(catalog, {
    get(target, prop) {
      if (prop === 'setHead') return async () => Promise.reject(new Error('builder died before the pointer moved'));
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}

beforeAll(async () => {
  stack = await startEmulatedStack({ bucket: 'shoal-heads', now });
}, 60_000);

afterAll(async () => {
  await stack?.stop();
});

beforeEach(() => {
  clock += 10 * 60_000;
});

describe('head pointer', () => {
  it('only moves forward, only within its generation, and creates its map on first use', async () => {
    const { catalog } = stack;
    await core().createCollection({ name: 'hp', dimension: 4, metric: 'l2' });
    const meta = await catalog.getCollection('hp');
    expect((await catalog.getCollection('hp')).heads).toBeUndefined();
    expect(await catalog.setHead('hp', meta.generation, 'main', 3)).toBe(true);
    expect(await catalog.setHead('hp', meta.generation, 'main', 2)).toBe(false);
    expect(await catalog.setHead('hp', meta.generation, 'main', 3)).toBe(false);
    expect(await catalog.setHead('hp', meta.generation + 1, 'main', 9)).toBe(false);
    expect(await catalog.setHead('hp', meta.generation, 'hnsw-m32', 4)).toBe(true);
    expect((await catalog.getCollection('hp')).heads).toEqual({ main: 3, 'hnsw-m32': 4 });
    expect(await catalog.setHead('missing', 1, 'main', 1)).toBe(false);

    await core().deleteCollection('hp');
    await core().createCollection({ name: 'hp', dimension: 4, metric: 'l2' });
    const again = await catalog.getCollection('hp');
    expect((await catalog.getCollection('hp')).heads).toBeUndefined();
    expect(await catalog.setHead('hp', meta.generation, 'main', 5)).toBe(false);
    expect(await catalog.setHead('hp', again.generation, 'main', 1)).toBe(true);
  });

  it('serves an eventual search on an unchanged collection from one read', async () => {
    const c = core();
    await c.createCollection({ name: 'one-read', dimension: 8, metric: 'l2' });
    const vs = vectorInputs(40, 8, 11, 'r');
    await c.upsert('one-read', vs);
    await buildIndex(builder(), 'one-read', { force: true });
    expect((await stack.catalog.getCollection('one-read')).heads).toEqual({ main: 1 });

    const reader = core();
    const search = () => reader.search('one-read', searchInput(vs[3].values, { consistency: 'eventual' }));
    const first = await traced(search);
    expect(first.result.results[0][0].id).toBe(vs[3].id);
    // The first read of a version: the meta item, then the manifest it names (and the shard from S3).
    expect(first.trace.summary().ops).toEqual({ 'DynamoDB.GetItemCommand': 2, 'S3.GetObjectCommand': 1 });
    const warm = await traced(search);
    expect(warm.result.results[0][0].id).toBe(vs[3].id);
    expect(warm.trace.summary()).toMatchObject({ calls: 1, roundTrips: 1, ops: { 'DynamoDB.GetItemCommand': 1 } });

    // A new version is visible to the next search: the pointer moved with the commit.
    await c.upsert('one-read', vectorInputs(5, 8, 12, 'late'));
    await buildIndex(builder(), 'one-read', { force: true });
    expect((await search()).servedBy.version).toBe(2);
  });

  it('keeps a reader on a trailing pointer correct, and the next build moves it', async () => {
    const c = core();
    await c.createCollection({ name: 'trailing', dimension: 8, metric: 'l2' });
    const vs = vectorInputs(60, 8, 21, 'r');
    await c.upsert('trailing', vs.slice(0, 40));
    await buildIndex(builder(), 'trailing', { force: true });

    // Writes after v1: an update, a delete, new rows. Then a build that commits v2 and dies before the pointer.
    const moved = { ...vs[0], values: vs[50].values.map((x) => x + 0.001) };
    await c.upsert('trailing', [moved, ...vs.slice(40, 50)]);
    await c.deleteVectors('trailing', { ids: [vs[1].id] });
    clock += 10 * 60_000;
    await buildIndex(builder(pointerFails(stack.catalog)), 'trailing', { force: true });
    const [v2] = await stack.catalog.listManifests('trailing', 1);
    expect(v2.version).toBe(2);
    expect((await stack.catalog.getCollection('trailing')).heads).toEqual({ main: 1 });

    // Readers still use v1: eventual searches see v1, strong ones v1 plus the log after its watermark —
    // which the failed run neither trimmed nor purged of the delete's tombstone.
    const reader = core();
    expect(
      (await reader.search('trailing', searchInput(vs[45].values, { consistency: 'eventual' }))).servedBy.version,
    ).toBe(1);
    const strong = (v: Float32Array) => reader.search('trailing', searchInput(v, { k: 3 }));
    expect((await strong(vs[45].values)).results[0][0].id).toBe(vs[45].id);
    expect((await strong(vs[1].values)).results[0].map((h) => h.id)).not.toContain(vs[1].id);
    expect((await strong(vs[50].values)).results[0][0].id).toBe(vs[0].id);
    expect(await reader.getVectors('trailing', [vs[1].id])).toEqual([]);

    // The next run has nothing to build, and moves the pointer to what is committed.
    clock += 10 * 60_000;
    expect(await buildIndex(builder(), 'trailing')).toMatchObject({ built: false });
    expect((await stack.catalog.getCollection('trailing')).heads).toEqual({ main: 2 });
    const after = await strong(vs[1].values);
    expect(after.servedBy.version).toBe(2);
    expect(after.results[0].map((h) => h.id)).not.toContain(vs[1].id);
    expect((await strong(vs[50].values)).results[0][0].id).toBe(vs[0].id);
  });
});
