/**
 * The bound on a Milvus query's work when a filter matches few rows of a large collection: at most
 * MAX_QUERY_PAGES listing pages per request, then a refusal (1100) that points at the v1 listing. A
 * collection big enough to reach it (256 000 rows) is out of reach of the local Shoal in a test, so the
 * listing here is a stand-in that never ends and never matches; test/e2e/milvus.test.ts pages real ones.
 */
import { describe, expect, it } from 'vitest';
import { MAX_QUERY_PAGES, createMilvusApi } from '../../shared/api/milvus/index.js';
import type { CollectionInfo, ListVectorsInput, ShoalService } from '../../shared/service.js';

function endlessListing(): { service: ShoalService; calls: ListVectorsInput[] } {
  const calls: ListVectorsInput[] = [];
  const info: CollectionInfo = {
    name: 'big',
    dimension: 2,
    metric: 'l2',
    index: { engine: 'hnsw' },
    createdAt: '2025-01-01T00:00:00.000Z',
  };
  const service = {
    getCollection: async () => info,
    listVectors: async (_name: string, input: ListVectorsInput) => {
      calls.push(input);
      return { vectors: [], nextCursor: `c${calls.length}` };
    },
  } as unknown as ShoalService;
  return { service, calls };
}

async function call(service: ShoalService, body: unknown): Promise<{ code: number; message?: string }> {
  const milvus = createMilvusApi({ service, authorize: () => true });
  const res = await milvus.handle({
    method: 'POST',
    path: '/v2/vectordb/entities/query',
    headers: { authorization: 'Bearer k' },
    body: JSON.stringify(body),
  });
  return JSON.parse(res.body) as { code: number; message?: string };
}

describe('entities/query over the listing', () => {
  it('reads at most MAX_QUERY_PAGES full pages, then refuses naming the v1 listing', async () => {
    const { service, calls } = endlessListing();
    const out = await call(service, { collectionName: 'big', filter: 'lang == "xx"', limit: 10, offset: 5 });
    expect(out.code).toBe(1100);
    expect(out.message).toMatch(/reads at most 256000 rows.*GET \/v1\/collections\/big\/vectors/);
    expect(calls).toHaveLength(MAX_QUERY_PAGES);
    expect(calls.every((c) => c.limit === 1000 && !c.includeValues)).toBe(true);
    expect(calls[1].cursor).toBe('c1');
  });

  it('bounds count(*) the same way', async () => {
    const { service, calls } = endlessListing();
    const out = await call(service, { collectionName: 'big', filter: 'lang == "xx"', outputFields: ['count(*)'] });
    expect(out.code).toBe(1100);
    expect(out.message).toMatch(/count\(\*\) with a filter reads at most 256000 rows/);
    expect(calls).toHaveLength(MAX_QUERY_PAGES);
  });

  it("refuses a window past Milvus's maxQueryResultWindow before reading anything", async () => {
    const { service, calls } = endlessListing();
    const out = await call(service, { collectionName: 'big', filter: 'a == 1', limit: 100, offset: 16_285 });
    expect(out).toMatchObject({ code: 1100, message: expect.stringMatching(/at most 16384 \(got 16385\)/) });
    expect(calls).toHaveLength(0);
  });
});
