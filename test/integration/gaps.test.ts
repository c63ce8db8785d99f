/**
 * Listing vectors and patching their metadata on the real core against the embedded emulators: pages
 * follow the bySeq GSI with a cursor over several DynamoDB queries, a selective filter gives short pages
 * that still reach the end, deletes never show; a PATCH is a conditional rewrite through the write path
 * (a concurrent write makes it read again, a write that keeps winning makes it a 409).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LIST_MAX_QUERIES, ShoalCore, type CoreDeps } from '../../shared/core.js';
import { ConflictError, NotFoundError, ValidationError } from '../../shared/errors.js';
import { parseFilter } from '../../shared/filter/index.js';
import { ShardCache } from '../../shared/search/shard-cache.js';
import type { ListVectorsInput, VectorInput } from '../../shared/service.js';
import { collectionKey } from '../../shared/storage/keys.js';
import type { RecordStore, StoredRecord } from '../../shared/storage/types.js';
import { startEmulatedStack, type EmulatedStack } from '../helpers/emulated-stack.js';
import { vectorInputs } from '../helpers/random.js';

let stack: EmulatedStack;
const clock = Date.now();

function makeCore(records: RecordStore = stack.records): ShoalCore {
  const objects = stack.objects;
  const deps: CoreDeps = {
    catalog: stack.catalog,
    records,
    objects,
    cache: new ShardCache({ objects, memoryBytes: 64 * 2 ** 20, diskDir: stack.cacheDir, diskBytes: 64 * 2 ** 20 }),
    slots: 1,
    codeVersion: 'test',
    now: () => clock,
    wake: async () => undefined,
  };
  return new ShoalCore(deps);
}

const page = (extra: Partial<ListVectorsInput> = {}): ListVectorsInput => ({
  limit: 100,
  includeValues: false,
  includeMetadata: false,
  ...extra,
});

async function listAll(core: ShoalCore, name: string, extra: Partial<ListVectorsInput> = {}) {
  const pages: Array<{ ids: string[]; cursor: string | null }> = [];
  let cursor: string | undefined;
  for (;;) {
    const out = await core.listVectors(name, page({ ...extra, ...(cursor ? { cursor } : {}) }));
    pages.push({ ids: out.vectors.map((v) => v.id), cursor: out.nextCursor });
    if (out.nextCursor === null) return pages;
    cursor = out.nextCursor;
  }
}

const rows = (n: number, seed: number): VectorInput[] =>
  vectorInputs(n, 4, seed, 'r', (i) => ({ i, kind: i % 25 === 0 ? 'rare' : 'common' }));

beforeAll(async () => {
  stack = await startEmulatedStack({ bucket: 'shoal-gaps', now: () => clock });
}, 60_000);

afterAll(async () => {
  await stack?.stop();
});

describe('listing vectors', () => {
  it('pages through every live vector once, in the same order every time, without deleted ones', async () => {
    const core = makeCore();
    await core.createCollection({ name: 'list', dimension: 4, metric: 'l2' });
    const input = rows(250, 1);
    // Several writes, so that the order (by last write) is not the insertion order of one batch.
    await core.upsert('list', input.slice(0, 120));
    await core.upsert('list', input.slice(120));
    await core.upsert('list', [input[5]]);
    await core.deleteVectors('list', { ids: ['r7', 'r8'] });

    const first = await listAll(core, 'list');
    expect(first.map((p) => p.ids.length)).toEqual([100, 100, 48]);
    const ids = first.flatMap((p) => p.ids);
    expect(new Set(ids).size).toBe(248);
    expect(ids).not.toContain('r7');
    expect(ids.at(-1)).toBe('r5');
    expect((await listAll(core, 'list')).flatMap((p) => p.ids)).toEqual(ids);

    const withAll = await core.listVectors('list', page({ limit: 3, includeValues: true, includeMetadata: true }));
    expect(withAll.vectors).toHaveLength(3);
    const r0 = withAll.vectors.find((v) => v.id === 'r0')!;
    expect(r0.values).toEqual(Array.from(input[0].values));
    expect(r0.metadata).toEqual({ i: 0, kind: 'rare' });
    const idsOnly = await core.listVectors('list', page({ limit: 3 }));
    expect(idsOnly.vectors.every((v) => v.values === undefined && v.metadata === undefined)).toBe(true);
  });

  it('bounds the DynamoDB work of a page under a selective filter and still reaches the end', async () => {
    const reads: number[] = [];
    const counting: RecordStore = Object.assign(Object.create(stack.records) as RecordStore, {
      list: (ck: string, options: Parameters<RecordStore['list']>[1]) => {
        reads.push(options.limit);
        return stack.records.list(ck, options);
      },
    });
    const core = makeCore(counting);
    const filter = parseFilter('kind == "rare"')!;
    const pages = await listAll(core, 'list', { limit: 5, filter });
    const found = pages.flatMap((p) => p.ids).sort();
    const expected = rows(250, 1)
      .filter((_, i) => i % 25 === 0)
      .map((v) => v.id)
      .sort();
    expect(found).toEqual(expected);
    // 1 row in 25 matches: pages come back short, with a cursor, after LIST_MAX_QUERIES queries of ≤ 5 items.
    expect(pages.some((p) => p.ids.length < 5 && p.cursor !== null)).toBe(true);
    expect(reads.every((n) => n <= 5)).toBe(true);
    expect(reads.length).toBeLessThanOrEqual(pages.length * LIST_MAX_QUERIES);
    expect(reads.length).toBeGreaterThan(pages.length);
  });

  it('keeps a vector rewritten between pages (it moves to the end); refuses foreign or altered cursors', async () => {
    const core = makeCore();
    const p1 = await core.listVectors('list', page({ limit: 10 }));
    const later = (await listAll(core, 'list')).flatMap((p) => p.ids).slice(50, 51)[0];
    await core.upsert('list', [{ id: later, values: new Float32Array([1, 2, 3, 4]) }]);
    const rest = (await listAll(core, 'list', { cursor: p1.nextCursor! })).flatMap((p) => p.ids);
    expect(rest).toContain(later);
    expect(new Set([...p1.vectors.map((v) => v.id), ...rest]).size).toBe(248);

    // The item a cursor stopped at may itself move: the next page starts after its old position all the same.
    const p2 = await core.listVectors('list', page({ limit: 10, cursor: p1.nextCursor! }));
    const edge = p2.vectors.at(-1)!.id;
    await core.upsert('list', [{ id: edge, values: new Float32Array([4, 3, 2, 1]) }]);
    const p3 = await core.listVectors('list', page({ limit: 10, cursor: p2.nextCursor! }));
    expect(p3.vectors).toHaveLength(10);
    expect(p3.vectors.map((v) => v.id)).not.toContain(edge);
    expect(p2.vectors.map((v) => v.id)).not.toContain(p3.vectors[0].id);

    const cursor = p1.nextCursor!;
    const altered = `${cursor.slice(0, 3)}${cursor[3] === 'A' ? 'B' : 'A'}${cursor.slice(4)}`;
    for (const bad of [altered, 'garbage', `${cursor}x`]) {
      const err = await core.listVectors('list', page({ cursor: bad })).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ValidationError);
      expect((err as ValidationError).field).toBe('cursor');
    }
    await core.createCollection({ name: 'other', dimension: 4, metric: 'l2' });
    await expect(core.listVectors('other', page({ cursor }))).rejects.toMatchObject({ field: 'cursor' });
    // A re-created collection is another generation: old cursors do not apply to it.
    await core.deleteCollection('other');
    await core.createCollection({ name: 'other', dimension: 4, metric: 'l2' });
    const empty = await core.listVectors('other', page());
    expect(empty).toEqual({ vectors: [], nextCursor: null });
  });
});

describe('patching metadata', () => {
  it('merges keys, removes null ones, keeps the values, and is seen by a strong search at once', async () => {
    const core = makeCore();
    await core.createCollection({ name: 'patch', dimension: 4, metric: 'l2' });
    const v = { id: 'a', values: new Float32Array([0.1, 0.2, 0.3, 0.4]), metadata: { lang: 'en', year: 2021 } };
    await core.upsert('patch', [v, { id: 'b', values: new Float32Array([4, 3, 2, 1]) }]);
    expect(await core.patchVector('patch', 'a', { year: 2024, tag: 'x', lang: null })).toEqual({ upserted: 1 });
    const [got] = await core.getVectors('patch', ['a']);
    expect(got).toEqual({ id: 'a', values: Array.from(v.values), metadata: { year: 2024, tag: 'x' } });
    const hit = await core.search('patch', {
      queries: [v.values],
      k: 1,
      consistency: 'strong',
      includeMetadata: true,
      includeValues: false,
      filter: parseFilter('tag == "x"')!,
    });
    expect(hit.results[0]).toMatchObject([{ id: 'a', metadata: { year: 2024, tag: 'x' } }]);
    // Removing the last key leaves a vector without metadata.
    await core.patchVector('patch', 'a', { year: null, tag: null });
    expect((await core.getVectors('patch', ['a']))[0].metadata).toEqual({});
  });

  it('answers 404 for absent and deleted ids, and refuses a patch that breaks the metadata limits', async () => {
    const core = makeCore();
    await expect(core.patchVector('patch', 'nope', { a: 1 })).rejects.toBeInstanceOf(NotFoundError);
    await core.deleteVectors('patch', { ids: ['b'] });
    await expect(core.patchVector('patch', 'b', { a: 1 })).rejects.toMatchObject({ field: 'id' });
    const many = Object.fromEntries(Array.from({ length: 64 }, (_, i) => [`k${i}`, i]));
    await expect(core.patchVector('patch', 'a', many)).resolves.toEqual({ upserted: 1 });
    const err = await core.patchVector('patch', 'a', { one: 'more' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).field).toBe('metadata');
    expect(Object.keys((await core.getVectors('patch', ['a']))[0].metadata!)).toHaveLength(64);
  });

  it('reads again when a concurrent write lands between its read and its write, and gives up with 409', async () => {
    const core = makeCore();
    await core.upsert('patch', [{ id: 'c', values: new Float32Array([1, 1, 1, 1]), metadata: { n: 0 } }]);
    let interleave = 1;
    const racing: RecordStore = Object.assign(Object.create(stack.records) as RecordStore, {
      putIfSeq: async (record: StoredRecord, expected: number) => {
        if (interleave-- > 0) {
          // Another client's upsert of the same id lands first.
          await core.upsert('patch', [{ id: 'c', values: new Float32Array([2, 2, 2, 2]), metadata: { n: 1 } }]);
        }
        return stack.records.putIfSeq(record, expected);
      },
    });
    const patcher = makeCore(racing);
    await patcher.patchVector('patch', 'c', { seen: true });
    // The patch was applied to the row the concurrent write left, not to the one read first.
    expect(await core.getVectors('patch', ['c'])).toEqual([
      { id: 'c', values: [2, 2, 2, 2], metadata: { n: 1, seen: true } },
    ]);
    // The losing attempt's log entry names a seq no record has: the tail holds the row once, as written last.
    const meta = await stack.catalog.getCollection('patch');
    const tail: StoredRecord[] = [];
    for await (const batch of stack.records.tail(collectionKey(meta), 0)) tail.push(...batch);
    expect(tail.filter((r) => r.id === 'c')).toHaveLength(1);
    expect(tail.find((r) => r.id === 'c')!.metadata).toEqual({ n: 1, seen: true });

    interleave = Infinity;
    const err = await patcher.patchVector('patch', 'c', { lost: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConflictError);
    expect((err as ConflictError).field).toBe('id');
    expect((await core.getVectors('patch', ['c']))[0].metadata).toEqual({ n: 1 });
  });
});
