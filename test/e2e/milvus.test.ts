/**
 * Milvus REST v2 compatibility end to end: a whole local Shoal (as `npm start`) driven only by
 * `@zilliz/milvus2-sdk-node`'s own HttpClient calls (docs/milvus.md).
 */
import { HttpClient } from '@zilliz/milvus2-sdk-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDataset, type Dataset } from '../../shared/io/datasets.js';
import { startHttpShoal, type HttpShoal } from '../helpers/local-http.js';

const N = 1000;
const NQ = 50;
const K = 10;
const C = 'sift_milvus';

let shoal: HttpShoal;
let client: HttpClient;
let ds: Dataset;

function row(i: number): number[] {
  return Array.from(ds.base.subarray(i * ds.dim, (i + 1) * ds.dim));
}

function query(q: number): number[] {
  return Array.from(ds.queries.subarray(q * ds.dim, (q + 1) * ds.dim));
}

/** Exact top-k row numbers by squared L2 over the inserted rows. */
function exact(q: number[], alive: (i: number) => boolean): number[] {
  const scored: Array<[number, number]> = [];
  for (let i = 0; i < N; i++) {
    if (!alive(i)) continue;
    let d = 0;
    for (let j = 0; j < ds.dim; j++) d += (ds.base[i * ds.dim + j] - q[j]) ** 2;
    scored.push([d, i]);
  }
  return scored
    .sort((a, b) => a[0] - b[0])
    .slice(0, K)
    .map(([, i]) => i);
}

beforeAll(async () => {
  ds = loadDataset('sift5k', { maxBase: N, maxQueries: NQ });
  shoal = await startHttpShoal('milvus');
  client = new HttpClient({ endpoint: shoal.shoal.url, token: shoal.shoal.apiKey });
}, 60_000);

afterAll(async () => {
  await shoal?.stop();
});

describe('Milvus REST v2 through the SDK HttpClient', () => {
  it('creates a collection (schema form), inserts 1 000 SIFT vectors and searches with recall ≥ 0.95', async () => {
    const created = await client.createCollection({
      collectionName: C,
      schema: {
        autoID: false,
        enabledDynamicField: true,
        fields: [
          { fieldName: 'pk', dataType: 'Int64', isPrimary: true },
          { fieldName: 'vec', dataType: 'FloatVector', elementTypeParams: { dim: 128 } },
          { fieldName: 'bucket', dataType: 'Int32' },
        ],
      } as never,
      indexParams: [{ fieldName: 'vec', indexName: 'vec', metricType: 'L2' }],
    });
    expect(created).toMatchObject({ code: 0 });

    for (let start = 0; start < N; start += 500) {
      const data = Array.from({ length: 500 }, (_, j) => ({
        pk: start + j,
        vec: row(start + j),
        bucket: (start + j) % 10,
      }));
      const ins = await client.insert({ collectionName: C, data });
      expect(ins.code).toBe(0);
      expect(ins.data.insertCount).toBe(500);
      // The SDK sends Accept-Type-Allow-Int64: false, so int64 keys come back as decimal strings.
      expect((ins.data.insertIds as unknown as string[])[0]).toBe(String(start));
    }
    expect((await client.getCollectionStatistics({ collectionName: C })).data.rowCount).toBe(N);

    const recallOf = async (): Promise<number> => {
      let hitsFound = 0;
      for (let q = 0; q < NQ; q++) {
        const res = await client.search({
          collectionName: C,
          data: [query(q)],
          annsField: 'vec',
          limit: K,
          outputFields: ['bucket'],
          searchParams: { metricType: 'L2', params: { ef: 64 } },
        } as never);
        expect(res.code).toBe(0);
        const hits = res.data as unknown as Array<{ id: string; distance: number; bucket: number }>;
        expect(hits).toHaveLength(K);
        const truth = new Set(exact(query(q), () => true));
        for (const h of hits) if (truth.has(Number(h.id))) hitsFound++;
        if (q === 0) {
          // Milvus's L2 distance is the squared Euclidean distance, as Shoal's score.
          const i = Number(hits[0].id);
          const d = query(0).reduce((s, x, j) => s + (x - ds.base[i * ds.dim + j]) ** 2, 0);
          expect(hits[0].distance).toBeCloseTo(d, 0);
          expect(hits[0].bucket).toBe(i % 10);
        }
      }
      return hitsFound / (NQ * K);
    };
    // Unindexed (the strong read scans the tail exactly), then after an index build.
    expect(await recallOf()).toBeGreaterThanOrEqual(0.95);
    expect(
      (
        await client.createIndex({
          collectionName: C,
          indexParams: [{ fieldName: 'vec', indexName: 'vec', metricType: 'L2' }],
        } as never)
      ).code,
    ).toBe(0);
    const deadline = Date.now() + 60_000;
    for (;;) {
      const d = await client.describeIndex({ collectionName: C, indexName: 'vec' });
      expect(d.code).toBe(0);
      if (d.data[0].indexedRows === N && d.data[0].pendingRows === 0) break;
      if (Date.now() > deadline) throw new Error(`index not built: ${JSON.stringify(d.data)}`);
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(await recallOf()).toBeGreaterThanOrEqual(0.95);

    // Several queries: one list per query (the SDK splits the flat answer by `topks`).
    const multi = await client.search({ collectionName: C, data: [query(0), query(1)], limit: 5 } as never);
    expect(multi.code).toBe(0);
    expect(multi.data).toHaveLength(2);
    expect((multi.data as unknown as unknown[][])[1]).toHaveLength(5);
  }, 240_000);

  it('queries with a filter, output fields, limit and offset', async () => {
    const page1 = await client.query({
      collectionName: C,
      filter: 'bucket == 3 and pk < 200',
      outputFields: ['pk', 'bucket'],
      limit: 10,
    });
    expect(page1.code).toBe(0);
    expect(page1.data).toHaveLength(10);
    for (const r of page1.data) {
      expect(r.bucket).toBe(3);
      expect(Number(r.pk)).toBeLessThan(200);
      expect(r.vec).toBeUndefined();
    }
    const page2 = await client.query({
      collectionName: C,
      filter: 'bucket == 3 and pk < 200',
      outputFields: ['pk'],
      limit: 10,
      offset: 10,
    });
    expect(page2.data).toHaveLength(10);
    const all = new Set([...page1.data, ...page2.data].map((r) => String(r.pk)));
    expect(all.size).toBe(20);

    const byPk = await client.query({ collectionName: C, filter: 'pk in [5, 7]', outputFields: ['*'] });
    expect(byPk.data.map((r) => String(r.pk)).sort()).toEqual(['5', '7']);
    expect(byPk.data[0].vec).toHaveLength(128);

    const got = await client.get({ collectionName: C, id: [1, 2], outputFields: ['pk', 'bucket'] });
    expect(got.code).toBe(0);
    expect(got.data.map((r) => r.bucket).sort()).toEqual([1, 2]);
  });

  it('pages a query through the whole collection: offsets past the first page, over 1 000 matches', async () => {
    const M = 'many';
    expect((await client.createCollection({ collectionName: M, dimension: 4, metricType: 'L2' })).code).toBe(0);
    const total = 2500;
    for (let start = 0; start < total; start += 1000) {
      const data = Array.from({ length: Math.min(1000, total - start) }, (_, j) => {
        const i = start + j;
        return { id: i, vector: [i, 1, 0, -1], g: i % 5 };
      });
      expect((await client.insert({ collectionName: M, data })).code).toBe(0);
    }
    // 2 000 rows match; the listing's pages hold 1 000 rows, so offsets past 1 000 skip whole pages.
    const filter = 'g != 4';
    const ids = async (offset: number, limit: number): Promise<string[]> => {
      const res = await client.query({ collectionName: M, filter, outputFields: ['id', 'g'], limit, offset });
      expect(res.code, res.message).toBe(0);
      for (const r of res.data) expect(r.g).not.toBe(4);
      return res.data.map((r) => String(r.id));
    };
    const wide = await ids(0, 1200);
    expect(wide).toHaveLength(1200);
    const beyond = await ids(1500, 100);
    expect(beyond).toHaveLength(100);
    const tail = await ids(1900, 500);
    expect(tail).toHaveLength(100);
    const middle = await ids(1200, 300);
    const rest = await ids(1600, 300);
    const all = [...wide, ...middle, ...beyond, ...rest, ...tail];
    expect(new Set(all).size).toBe(2000);
    expect(all).toEqual(await ids(0, 2000));
    expect(await ids(2000, 10)).toEqual([]);

    // Without a limit a filtered query returns every match (more than 1 000 now).
    const every = await client.query({ collectionName: M, filter: 'g == 0 or g == 1 or g == 2', outputFields: ['g'] });
    expect(every.code).toBe(0);
    expect(every.data).toHaveLength(1500);
    const count = await client.query({ collectionName: M, filter, outputFields: ['count(*)'] });
    expect(count.data).toEqual([{ 'count(*)': 2000 }]);

    // Values come back for the window only, past the first page too.
    const withVectors = await client.query({
      collectionName: M,
      filter: 'g == 3',
      outputFields: ['*'],
      limit: 2,
      offset: 450,
    });
    expect(withVectors.data).toHaveLength(2);
    for (const r of withVectors.data) expect(r.vector).toEqual([Number(r.id), 1, 0, -1]);

    const tooDeep = await client.query({ collectionName: M, filter, outputFields: ['id'], limit: 100, offset: 16_300 });
    expect(tooDeep.code).toBe(1100);
    expect(tooDeep.message).toMatch(/16384/);
    expect((await client.dropCollection({ collectionName: M })).code).toBe(0);
  }, 120_000);

  it('upserts (visible at once) and deletes by ids and by filter', async () => {
    const up = await client.upsert({ collectionName: C, data: [{ pk: 1, vec: row(500), bucket: 42 }] });
    expect(up).toMatchObject({ code: 0, data: { upsertCount: 1, upsertIds: ['1'] } });
    const after = await client.query({ collectionName: C, filter: 'bucket == 42', outputFields: ['pk'], limit: 5 });
    expect(after.data.map((r) => String(r.pk))).toEqual(['1']);

    expect((await client.delete({ collectionName: C, filter: 'pk in [2, 3]' })).code).toBe(0);
    expect((await client.get({ collectionName: C, id: [2, 3], outputFields: ['pk'] })).data).toHaveLength(0);
    expect((await client.delete({ collectionName: C, filter: 'bucket == 9' })).code).toBe(0);
    const nine = await client.query({ collectionName: C, filter: 'bucket == 9', outputFields: ['pk'], limit: 10 });
    expect(nine.data).toHaveLength(0);
    // 100 rows had bucket 9; rows 2 and 3 were deleted by id.
    expect((await client.getCollectionStatistics({ collectionName: C })).data.rowCount).toBe(N - 102);
  });

  it('manages aliases and searches through one', async () => {
    expect((await client.createAlias({ collectionName: C, aliasName: 'current' })).code).toBe(0);
    expect((await client.describeAlias({ aliasName: 'current' } as never)).data).toMatchObject({
      aliasName: 'current',
      collectionName: C,
    });
    expect((await client.listAliases({ collectionName: C } as never)).data).toEqual(['current']);
    const s = await client.search({ collectionName: 'current', data: [query(0)], limit: 3 } as never);
    expect(s.code).toBe(0);
    expect(s.data).toHaveLength(3);
    expect((await client.createCollection({ collectionName: 'other', dimension: 128, metricType: 'L2' })).code).toBe(0);
    expect((await client.alterAlias({ collectionName: 'other', aliasName: 'current' })).code).toBe(0);
    expect((await client.describeAlias({ aliasName: 'current' } as never)).data.collectionName).toBe('other');
    expect((await client.createAlias({ collectionName: C, aliasName: 'current' })).code).toBe(1602);
    expect((await client.dropAlias({ aliasName: 'current' })).code).toBe(0);
    expect((await client.describeAlias({ aliasName: 'current' } as never)).code).toBe(1600);
  });

  it('describes, lists, loads and reports on collections, indexes and partitions', async () => {
    const d = await client.describeCollection({ collectionName: C });
    expect(d.code).toBe(0);
    expect(d.data.collectionName).toBe(C);
    expect(d.data.fields.map((f) => (f as unknown as { name: string }).name)).toEqual(['pk', 'vec', 'bucket']);
    expect(d.data.fields[0]).toMatchObject({ primaryKey: true, type: 'Int64' });
    expect(d.data.indexes[0]).toMatchObject({ fieldName: 'vec', metricType: 'L2' });
    expect((await client.listCollections()).data).toEqual(expect.arrayContaining([C, 'other']));
    expect((await client.hasCollection({ collectionName: C } as never)).data).toEqual({ has: true });
    expect((await client.hasCollection({ collectionName: 'nope' } as never)).data).toEqual({ has: false });
    expect((await client.loadCollection({ collectionName: C })).code).toBe(0);
    expect((await client.getCollectionLoadState({ collectionName: C })).data.loadState).toBe('LoadStateLoaded');
    expect((await client.releaseCollection({ collectionName: C })).code).toBe(0);
    expect((await client.listIndexes({ collectionName: C } as never)).data).toEqual(['vec']);
    expect((await client.listPartitions({ collectionName: C } as never)).data).toEqual(['_default']);

    // Quick form: Milvus's defaults (id Int64, vector, COSINE, dynamic field on).
    const quick = await client.describeCollection({ collectionName: 'other' });
    expect(quick.data.fields.map((f) => (f as unknown as { name: string }).name)).toEqual(['id', 'vector']);
    expect(quick.data.enableDynamicField).toBe(true);
    expect((await client.dropCollection({ collectionName: 'other' })).code).toBe(0);
    expect((await client.hasCollection({ collectionName: 'other' } as never)).data).toEqual({ has: false });
  });

  it('answers errors as HTTP 200 Milvus envelopes', async () => {
    const missing = await client.describeCollection({ collectionName: 'nope' });
    expect(missing.code).toBe(100);
    expect(missing.message).toMatch(/nope/);

    const badKey = new HttpClient({ endpoint: shoal.shoal.url, token: 'not-a-key' });
    const denied = await badKey.listCollections();
    expect(denied.code).toBe(1800);

    const otherDb = await client.listCollections({ dbName: 'analytics' });
    expect(otherDb.code).toBe(800);
    expect(otherDb.message).toMatch(/only the default database/);

    const hybrid = await client.hybridSearch({
      collectionName: C,
      search: [{ data: [query(0)], limit: 3 }],
      rerank: {},
    } as never);
    expect(hybrid.code).toBe(10);
    expect(hybrid.message).toMatch(/hybrid search/);

    const users = await client.listUsers();
    expect(users.code).toBe(10);
    expect(users.message).toMatch(/API keys/);

    const badFilter = await client.query({ collectionName: C, filter: 'bucket ==', outputFields: ['pk'], limit: 1 });
    expect(badFilter.code).toBe(1100);

    const wrongDim = await client.insert({ collectionName: C, data: [{ pk: 5000, vec: [1, 2, 3], bucket: 1 }] });
    expect(wrongDim.code).toBe(1100);
    expect((await client.get({ collectionName: C, id: [5000], outputFields: ['pk'] })).data).toHaveLength(0);
  });
});
