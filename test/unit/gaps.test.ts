/**
 * The pure parts of the listing, rejects, upload and PATCH routes: cursors (round trip, tampering,
 * scope), the metadata merge, upload filename rules, paging over report parts, the query parsers.
 */
import { describe, expect, it } from 'vitest';
import { parseListVectorsQuery, parseRejectsQuery, parseVectorId } from '../../shared/api/schemas.js';
import { mergeMetadata } from '../../shared/core.js';
import { ValidationError } from '../../shared/errors.js';
import { REPORT_PARTS_PER_PAGE, readReportPage, type RejectEntry } from '../../shared/import/report.js';
import { checkUploadFilename, uploadFolder } from '../../shared/import/uploads.js';
import { MemoryImportJobStore, newImportJob } from '../../shared/import/job.js';
import { ImportService, type ImportServiceDeps } from '../../shared/import/service.js';
import type { Catalog } from '../../shared/storage/types.js';
import { decodeCursor, encodeCursor } from '../../shared/storage/cursor.js';
import type { ObjectStore } from '../../shared/storage/types.js';

function fieldOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    if (err instanceof ValidationError || (err as { field?: string }).field) return (err as ValidationError).field;
    throw err;
  }
  return undefined;
}

describe('cursors', () => {
  it('round-trip within their scope and refuse altered, truncated or foreign ones', () => {
    const c = encodeCursor('docs@3', { s: 41, i: 'doc-9' });
    expect(decodeCursor('docs@3', c)).toEqual({ s: 41, i: 'doc-9' });
    expect(decodeCursor('docs@4', c)).toBeUndefined();
    expect(decodeCursor('docs@3', c.slice(0, -1))).toBeUndefined();
    for (let i = 0; i < c.length; i++) {
      if (c[i] === '.') continue;
      const flipped = `${c.slice(0, i)}${c[i] === 'a' ? 'b' : 'a'}${c.slice(i + 1)}`;
      expect(decodeCursor('docs@3', flipped), `position ${i}`).toBeUndefined();
    }
    for (const junk of ['', '.', 'x.y', 'a'.repeat(5000), '%%%.%%%%%%%%%%%%%%%%']) {
      expect(decodeCursor('docs@3', junk)).toBeUndefined();
    }
  });
});

describe('mergeMetadata', () => {
  it('sets top-level keys, removes null ones, replaces nested objects whole', () => {
    expect(mergeMetadata({ a: 1, b: { x: 1, y: 2 }, c: 'keep' }, { a: 2, b: { x: 9 }, d: null })).toEqual({
      a: 2,
      b: { x: 9 },
      c: 'keep',
    });
    expect(mergeMetadata(undefined, { a: null })).toBeUndefined();
    expect(mergeMetadata({ a: 1 }, { a: null })).toBeUndefined();
    expect(mergeMetadata(undefined, { n: [1, null] })).toEqual({ n: [1, null] });
  });

  it('keeps a __proto__ key as data and refuses a result over the limits', () => {
    const patch = JSON.parse('{"__proto__": {"polluted": true}}') as Record<string, never>;
    const out = mergeMetadata({}, patch)!;
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(Object.keys(out)).toEqual(['__proto__']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    const big = Object.fromEntries(Array.from({ length: 64 }, (_, i) => [`k${i}`, i]));
    expect(fieldOf(() => mergeMetadata(big, { extra: 1 }))).toBe('metadata');
    expect(fieldOf(() => mergeMetadata({ a: 'x'.repeat(30_000) }, { b: 'y'.repeat(20_000) }))).toBe('metadata');
  });
});

describe('upload filenames', () => {
  it('accept a plain name with an import extension', () => {
    for (const ok of ['rows.jsonl', 'My Rows (2).CSV', 'a.csv.gz', 'x.parquet', 'v.npy', 'é.ndjson.gz']) {
      expect(checkUploadFilename(ok)).toBe(ok);
    }
    expect(uploadFolder(Date.UTC(2026, 0, 2, 3, 4, 5, 678))).toMatch(/^20260102T030405Z-[0-9a-f]{12}$/);
  });

  it('refuse paths, control characters, sidecars and unknown extensions, naming filename', () => {
    for (const bad of ['', 'a/b.jsonl', '..\\x.csv', 'a\nb.csv', 'rows.txt', 'rows', 'v.ids.txt', 'v.ids.jsonl']) {
      expect(
        fieldOf(() => checkUploadFilename(bad)),
        JSON.stringify(bad),
      ).toBe('filename');
    }
    expect(fieldOf(() => checkUploadFilename(`${'a'.repeat(300)}.csv`))).toBe('filename');
    expect(fieldOf(() => checkUploadFilename('a\ud800.csv'))).toBe('filename');
  });
});

describe('report pages', () => {
  const part = (from: number, n: number): RejectEntry[] =>
    Array.from({ length: n }, (_, i) => ({ line: from + i, code: 'BAD_JSON', reason: `line ${from + i}` }));
  const store = (parts: RejectEntry[][]): { objects: ObjectStore; gets: string[] } => {
    const gets: string[] = [];
    const objects = {
      get: async (key: string) => {
        gets.push(key);
        const body = parts[Number(key)].map((e) => JSON.stringify(e)).join('\n') + '\n';
        return new TextEncoder().encode(body);
      },
    } as unknown as ObjectStore;
    return { objects, gets };
  };

  it('pages across parts in order, every entry once', async () => {
    const parts = [part(1, 3), part(10, 5), part(20, 1)];
    const { objects } = store(parts);
    const keys = ['0', '1', '2'];
    const seen: RejectEntry[] = [];
    let at = { part: 0, line: 0 };
    const sizes: number[] = [];
    while (at.part < keys.length) {
      const page = await readReportPage(objects, keys, at, 4);
      sizes.push(page.rejects.length);
      seen.push(...page.rejects);
      at = page.next;
    }
    expect(sizes).toEqual([4, 4, 1]);
    expect(seen).toEqual(parts.flat());
  });

  it('reads at most REPORT_PARTS_PER_PAGE parts for one page', async () => {
    const parts = Array.from({ length: REPORT_PARTS_PER_PAGE + 4 }, (_, i) => part(i * 10, 1));
    const { objects, gets } = store(parts);
    const keys = parts.map((_, i) => String(i));
    const page = await readReportPage(objects, keys, { part: 0, line: 0 }, 1000);
    expect(gets).toHaveLength(REPORT_PARTS_PER_PAGE);
    expect(page.rejects).toHaveLength(REPORT_PARTS_PER_PAGE);
    expect(page.next).toEqual({ part: REPORT_PARTS_PER_PAGE, line: 0 });
  });
});

describe('ImportService.listRejects', () => {
  it("pages a running job's committed parts with a cursor that stays open until the job ends", async () => {
    const parts: Record<string, RejectEntry[]> = {
      p0: [
        { line: 2, code: 'BAD_JSON', reason: 'x' },
        { line: 5, id: 'a', code: 'BAD_ID', reason: 'y' },
      ],
      p1: [{ line: 9, code: 'BAD_JSON', reason: 'z' }],
    };
    const objects = {
      get: async (key: string) => new TextEncoder().encode(parts[key].map((e) => JSON.stringify(e)).join('\n')),
    } as unknown as ObjectStore;
    const jobs = new MemoryImportJobStore();
    const source = { collection: 'docs', generation: 1, bucket: 'b', key: 'imports/docs/r.jsonl', etag: 'e' };
    const job = newImportJob(source, { size: 10, format: 'jsonl', createdAt: 0 });
    await jobs.create({ ...job, state: 'running', reportParts: ['p0'], rowsRejected: 2 });
    const catalog = { getCollection: async () => ({ name: 'docs', generation: 1 }) } as unknown as Catalog;
    const service = new ImportService({ catalog, jobs, objects } as unknown as ImportServiceDeps);

    const first = await service.listRejects('docs', job.jobId, { limit: 1 });
    expect(first).toMatchObject({ rejects: [parts.p0[0]], rowsRejected: 2, reported: 2 });
    const second = await service.listRejects('docs', job.jobId, { limit: 5, cursor: first.nextCursor! });
    expect(second.rejects).toEqual([parts.p0[1]]);
    // Running: the end of the committed parts is not the end of the report.
    expect(second.nextCursor).not.toBeNull();
    const j = jobs.jobs.get(`docs\u0000${job.jobId}`)!;
    Object.assign(j, { state: 'partial', reportParts: ['p0', 'p1'], rowsRejected: 3 });
    const third = await service.listRejects('docs', job.jobId, { limit: 5, cursor: second.nextCursor! });
    expect(third).toEqual({ rejects: parts.p1, nextCursor: null, rowsRejected: 3, reported: 3 });

    const other = newImportJob({ ...source, etag: 'f' }, { size: 1, format: 'jsonl', createdAt: 0 });
    await jobs.create(other);
    await expect(
      service.listRejects('docs', other.jobId, { limit: 5, cursor: first.nextCursor! }),
    ).rejects.toMatchObject({ field: 'cursor' });
    await expect(service.listRejects('docs', 'f'.repeat(24), { limit: 5 })).rejects.toMatchObject({
      field: 'jobId',
    });
  });
});

describe('query parsing', () => {
  const q = (s: string) => new URLSearchParams(s);

  it('reads limit, cursor, filter and include with their defaults', () => {
    expect(parseListVectorsQuery(q(''))).toEqual({ limit: 100, includeValues: false, includeMetadata: false });
    const parsed = parseListVectorsQuery(
      q('limit=1000&cursor=abc&include=metadata,values&filter=lang%20%3D%3D%20"en"'),
    );
    expect(parsed).toMatchObject({ limit: 1000, cursor: 'abc', includeValues: true, includeMetadata: true });
    expect(parsed.filter).toBeDefined();
    expect(parseRejectsQuery(q('limit=7'))).toEqual({ limit: 7 });
    expect(parseVectorId('doc 1')).toBe('doc 1');
  });

  it('names the field it refuses', () => {
    for (const [query, field] of [
      ['limit=0', 'limit'],
      ['limit=1001', 'limit'],
      ['limit=1.5', 'limit'],
      ['limit=', 'limit'],
      ['cursor=', 'cursor'],
      ['include=vectors', 'include'],
      ['filter=lang%20%3D%3D', 'filter'],
    ] as const) {
      expect(
        fieldOf(() => parseListVectorsQuery(q(query))),
        query,
      ).toBe(field);
    }
    expect(fieldOf(() => parseVectorId('x'.repeat(600)))).toBe('id');
  });
});
