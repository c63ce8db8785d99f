/**
 * Import format readers (shared/import/formats): each format incl. gzip, each kind of bad row
 * with its line/row number, unreadable files, and resume from every kind of checkpoint giving
 * exactly the rows of a straight run.
 */
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { detectFormat, isSidecar, openReader } from '../../shared/import/formats/index.js';
import { parseCsvRecord } from '../../shared/import/formats/csv.js';
import { memorySource } from '../../shared/import/s3-source.js';
import {
  UnreadableFileError,
  type ByteSource,
  type Checkpoint,
  type ImportFormat,
  type ImportRow,
} from '../../shared/import/types.js';
import { writeNpy, writeParquet } from '../helpers/parquet-writer.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

async function collect(
  format: ImportFormat,
  source: ByteSource,
  dimension: number,
  from?: Checkpoint,
  ids?: { source: ByteSource; kind: 'txt' | 'jsonl' },
): Promise<ImportRow[]> {
  const out: ImportRow[] = [];
  for await (const r of openReader(format, source, { dimension, from, ids })) out.push(r);
  return out;
}

/** Rows without their positions, for comparing runs. */
function plain(rows: ImportRow[]): unknown[] {
  return rows.map((r) => ({
    n: r.rowNumber,
    id: r.id,
    v: r.values && Array.from(r.values),
    m: r.metadata,
    e: r.error?.code,
  }));
}

/** Straight run vs. resume from every k-th checkpoint: the resumed tail equals the straight run's tail. */
async function expectResumable(
  format: ImportFormat,
  make: () => ByteSource,
  dimension: number,
  ids?: () => { source: ByteSource; kind: 'txt' | 'jsonl' },
): Promise<void> {
  const all = await collect(format, make(), dimension, undefined, ids?.());
  expect(all.length).toBeGreaterThan(3);
  for (let i = 0; i < all.length; i += Math.max(1, Math.floor(all.length / 7))) {
    const rest = await collect(format, make(), dimension, all[i].next, ids?.());
    expect(plain(rest)).toEqual(plain(all.slice(i + 1)));
  }
}

const JSONL = [
  '{"id": "a", "values": [1, 2, 3], "metadata": {"color": "red"}}',
  '{"id": 7, "vector": [4, 5, 6], "title": "flat fields become metadata"}',
  '',
  '{"id": "short", "values": [1, 2]}',
  '{"id": "nan", "values": [1, NaN, 3]}',
  '{"id": "inf", "values": [1, 1e999, 3]}',
  '{"values": [1, 2, 3]}',
  '{"id": "broken", "values": [1, 2, 3]',
  '{"id": "strings", "values": [1, "2", 3]}',
  '{"id": "novec"}',
  '{"id": "badmeta", "values": [1, 2, 3], "metadata": [1]}',
  '{"id": "ü-ok", "values": [0.5, -0.5, 0]}\r',
  '{"id": "last", "values": [9, 9, 9]}',
].join('\n');

describe('format detection', () => {
  it('maps extensions and recognises sidecars', () => {
    expect(detectFormat('imports/c/a.jsonl')).toBe('jsonl');
    expect(detectFormat('imports/c/a.JSONL.GZ')).toBe('jsonl.gz');
    expect(detectFormat('imports/c/a.csv.gz')).toBe('csv.gz');
    expect(detectFormat('imports/c/a.parquet')).toBe('parquet');
    expect(detectFormat('imports/c/a.npy')).toBe('npy');
    expect(detectFormat('imports/c/a.txt')).toBeUndefined();
    expect(isSidecar('imports/c/a.ids.txt')).toBe(true);
    expect(isSidecar('imports/c/a.jsonl')).toBe(false);
  });
});

describe('JSONL', () => {
  it('reads rows and rejects each kind of bad row with its line number', async () => {
    const rows = await collect('jsonl', memorySource(enc(JSONL), 'x.jsonl', 7), 3);
    const ok = rows.filter((r) => !r.error);
    expect(ok.map((r) => [r.rowNumber, r.id])).toEqual([
      [1, 'a'],
      [2, '7'],
      [12, 'ü-ok'],
      [13, 'last'],
    ]);
    expect(ok[0].metadata).toEqual({ color: 'red' });
    expect(ok[1].metadata).toEqual({ title: 'flat fields become metadata' });
    expect(Array.from(ok[1].values!)).toEqual([4, 5, 6]);
    const bad = rows.filter((r) => r.error).map((r) => [r.rowNumber, r.error!.code]);
    expect(bad).toEqual([
      [4, 'WRONG_DIMENSION'],
      [5, 'BAD_JSON'], // NaN is not JSON
      [6, 'NOT_FINITE'],
      [7, 'MISSING_ID'],
      [8, 'BAD_JSON'],
      [9, 'BAD_VECTOR'],
      [10, 'MISSING_VECTOR'],
      [11, 'BAD_METADATA'],
    ]);
    expect(rows.find((r) => r.rowNumber === 4)!.error!.message).toMatch(/2 dimensions; the collection has 3/);
  });

  it('reads gzip the same as plain, including multi-member streams', async () => {
    const plainRows = await collect('jsonl', memorySource(enc(JSONL)), 3);
    const half = JSONL.length >> 1;
    const cut = JSONL.indexOf('\n', half) + 1;
    const gz = Buffer.concat([gzipSync(enc(JSONL.slice(0, cut))), gzipSync(enc(JSONL.slice(cut)))]);
    const gzRows = await collect('jsonl.gz', memorySource(gz, 'x.jsonl.gz', 5), 3);
    expect(plain(gzRows)).toEqual(plain(plainRows));
    expect(gzRows.at(-1)!.bytesRead).toBe(gz.byteLength);
  });

  it('resumes from byte offsets (plain) and from line counts (gzip)', async () => {
    await expectResumable('jsonl', () => memorySource(enc(JSONL), 'x', 11), 3);
    const gz = gzipSync(enc(JSONL));
    await expectResumable('jsonl.gz', () => memorySource(gz, 'x', 9), 3);
  });

  it('fails unreadable files before any row', async () => {
    const binary = new Uint8Array([0x50, 0x4b, 0x03, 0x04, 0, 0, 1, 2, 3]);
    await expect(collect('jsonl', memorySource(binary), 3)).rejects.toThrow(UnreadableFileError);
    await expect(collect('jsonl.gz', memorySource(enc(JSONL)), 3)).rejects.toThrow(/not gzip/);
    const corrupt = gzipSync(enc(JSONL));
    corrupt[corrupt.length - 12] ^= 0xff;
    corrupt[20] ^= 0xff;
    await expect(collect('jsonl.gz', memorySource(corrupt), 3)).rejects.toThrow(UnreadableFileError);
  });
});

const CSV_VECTOR = [
  'id,vector,color,price,active',
  'a,"[1,2,3]",red,9.5,true',
  'b,"[4,5,6]","multi',
  'line, quoted ""text""",12,false',
  ',"[1,2,3]",blue,1,true',
  'c,"[1,2]",blue,1,true',
  'd,"[1,2,",blue,1,true',
  'e,"[1,2,3]",blue',
  'f,"[7,8,9]",,007,',
].join('\r\n');

const CSV_COLUMNS = [
  'id,v0,v1,v2,label',
  'a,1,2,3,x',
  'b,1,NaN,3,y',
  'c,1,,3,z',
  'd,1,abc,3,w',
  'e,1,Infinity,3,v',
  'f,0.5,0.25,-1e3,u',
  '',
].join('\n');

describe('CSV', () => {
  it('reads a JSON vector column, quoted multi-line fields and typed metadata', async () => {
    const rows = await collect('csv', memorySource(enc(CSV_VECTOR), 'x.csv', 6), 3);
    expect(rows.map((r) => [r.rowNumber, r.id ?? null, r.error?.code ?? null])).toEqual([
      [2, 'a', null],
      [3, 'b', null],
      [5, null, 'MISSING_ID'],
      [6, 'c', 'WRONG_DIMENSION'],
      [7, null, 'BAD_JSON'],
      [8, null, 'BAD_ROW'],
      [9, 'f', null],
    ]);
    expect(rows[0].metadata).toEqual({ color: 'red', price: 9.5, active: true });
    expect(rows[1].metadata).toEqual({ color: 'multi\nline, quoted "text"', price: 12, active: false });
    expect(rows[6].metadata).toEqual({ price: '007' });
  });

  it('reads v0..v{d-1} columns; NaN, Infinity, empty and text cells are rejected', async () => {
    const rows = await collect('csv', memorySource(enc(CSV_COLUMNS)), 3);
    expect(rows.map((r) => [r.rowNumber, r.id, r.error?.code ?? null])).toEqual([
      [2, 'a', null],
      [3, 'b', 'NOT_FINITE'],
      [4, 'c', 'BAD_VECTOR'],
      [5, 'd', 'BAD_VECTOR'],
      [6, 'e', 'NOT_FINITE'],
      [7, 'f', null],
    ]);
    expect(Array.from(rows[5].values!)).toEqual([0.5, 0.25, -1000]);
    expect(rows[0].metadata).toEqual({ label: 'x' });
  });

  it('reads gzip the same as plain and resumes from both kinds of checkpoint', async () => {
    const gz = gzipSync(enc(CSV_VECTOR));
    expect(plain(await collect('csv.gz', memorySource(gz, 'x', 3), 3))).toEqual(
      plain(await collect('csv', memorySource(enc(CSV_VECTOR)), 3)),
    );
    await expectResumable('csv', () => memorySource(enc(CSV_VECTOR), 'x', 5), 3);
    await expectResumable('csv.gz', () => memorySource(gz, 'x', 5), 3);
    await expectResumable('csv', () => memorySource(enc(CSV_COLUMNS), 'x', 4), 3);
  });

  it('fails bad headers before any row', async () => {
    await expect(collect('csv', memorySource(enc('name,vector\na,"[1,2,3]"')), 3)).rejects.toThrow(/no "id" column/);
    await expect(collect('csv', memorySource(enc('id,color\na,red')), 3)).rejects.toThrow(/no vector column/);
    await expect(collect('csv', memorySource(enc('id,v0,v1\na,1,2')), 3)).rejects.toThrow(
      /2 vector columns.*dimension 3/,
    );
    await expect(collect('csv', memorySource(enc('id,v0,v2,v3\na,1,2,3')), 3)).rejects.toThrow(/lacks column v1/);
    await expect(collect('csv', memorySource(enc('')), 3)).rejects.toThrow(/empty/);
    await expect(collect('csv', memorySource(new Uint8Array([0xff, 0xfe, 0, 0x41])), 3)).rejects.toThrow(
      UnreadableFileError,
    );
  });

  it('parses RFC 4180 records', () => {
    expect(parseCsvRecord('a,"b,c","d""e",')).toEqual(['a', 'b,c', 'd"e', '']);
    expect(parseCsvRecord('a,"b')).toBeUndefined();
    expect(parseCsvRecord('a,b"c')).toBeUndefined();
  });
});

function parquetFile(n: number, rowGroup: number): Uint8Array {
  return writeParquet(
    [
      { name: 'id', kind: 'string', values: Array.from({ length: n }, (_, i) => (i === 3 ? null : `p${i}`)) },
      {
        name: 'vector',
        kind: 'floatList',
        values: Array.from({ length: n }, (_, i) =>
          i === 5 ? null : i === 7 ? [1, NaN, 2] : i === 9 ? [1, 2] : [i, i / 2, -i],
        ),
      },
      { name: 'label', kind: 'int32', values: Array.from({ length: n }, (_, i) => i % 3) },
      { name: 'title', kind: 'string', values: Array.from({ length: n }, (_, i) => (i % 2 ? `t${i}` : null)) },
    ],
    rowGroup,
  );
}

describe('Parquet', () => {
  it('reads list<float> vectors and metadata columns; rejects bad rows by row number', async () => {
    const rows = await collect('parquet', memorySource(parquetFile(40, 16)), 3);
    expect(rows).toHaveLength(40);
    expect(rows.filter((r) => r.error).map((r) => [r.rowNumber, r.error!.code])).toEqual([
      [3, 'MISSING_ID'],
      [5, 'MISSING_VECTOR'],
      [7, 'NOT_FINITE'],
      [9, 'WRONG_DIMENSION'],
    ]);
    expect(rows[11]).toMatchObject({ id: 'p11', metadata: { label: 2, title: 't11' } });
    expect(Array.from(rows[11].values!)).toEqual([11, 5.5, -11]);
  });

  it('reads FIXED_LEN_BYTE_ARRAY float32 vectors', async () => {
    const vec = (i: number) => new Uint8Array(new Float32Array([i, 1, 2, 3]).buffer);
    const file = writeParquet([
      { name: 'id', kind: 'string', values: ['x', 'y'] },
      { name: 'embedding', kind: 'fixed', typeLength: 16, values: [vec(0), vec(1)] },
    ]);
    const rows = await collect('parquet', memorySource(file), 4);
    expect(rows.map((r) => Array.from(r.values!))).toEqual([
      [0, 1, 2, 3],
      [1, 1, 2, 3],
    ]);
    await expect(collect('parquet', memorySource(file), 3)).rejects.toThrow(/16 bytes per row; dimension 3 needs 12/);
  });

  it('resumes inside and across row groups', async () => {
    const file = parquetFile(50, 12);
    await expectResumable('parquet', () => memorySource(file), 3);
  });

  it('fails files that are not Parquet or lack the columns', async () => {
    await expect(collect('parquet', memorySource(enc(JSONL)), 3)).rejects.toThrow(/bad magic/);
    const noId = writeParquet([{ name: 'vector', kind: 'floatList', values: [[1, 2, 3]] }]);
    await expect(collect('parquet', memorySource(noId), 3)).rejects.toThrow(/no "id" column/);
    const intVec = writeParquet([
      { name: 'id', kind: 'string', values: ['a'] },
      { name: 'vector', kind: 'int32', values: [1] },
    ]);
    await expect(collect('parquet', memorySource(intVec), 3)).rejects.toThrow(/INT32/);
    const truncated = parquetFile(10, 5).slice(0, -3);
    await expect(collect('parquet', memorySource(truncated), 3)).rejects.toThrow(UnreadableFileError);
  });
});

describe('.npy', () => {
  const n = 30;
  const data = new Float32Array(n * 3).map((_, i) => i / 10);
  data[4 * 3 + 1] = NaN;
  data[6 * 3 + 2] = Infinity;
  const npy = writeNpy(data, n, 3);

  it('uses row numbers as ids without a sidecar; rejects non-finite rows', async () => {
    const rows = await collect('npy', memorySource(npy), 3);
    expect(rows).toHaveLength(n);
    expect(rows[0].id).toBe('0');
    expect(rows.filter((r) => r.error).map((r) => [r.rowNumber, r.error!.code])).toEqual([
      [4, 'NOT_FINITE'],
      [6, 'NOT_FINITE'],
    ]);
    expect(Array.from(rows[2].values!)).toEqual(Array.from(data.subarray(6, 9)));
  });

  it('takes ids (and metadata) from .ids.txt / .ids.jsonl sidecars', async () => {
    const txt = enc(Array.from({ length: n }, (_, i) => (i === 2 ? '' : `doc-${i}`)).join('\n') + '\n');
    const rows = await collect('npy', memorySource(npy), 3, undefined, {
      source: memorySource(txt, 'ids', 5),
      kind: 'txt',
    });
    expect(rows[1].id).toBe('doc-1');
    expect(rows[2].error?.code).toBe('MISSING_ID');
    const jsonl = enc(
      Array.from({ length: n - 2 }, (_, i) =>
        i % 2 ? JSON.stringify({ id: `j${i}`, metadata: { i } }) : JSON.stringify(`j${i}`),
      ).join('\n'),
    );
    const rows2 = await collect('npy', memorySource(npy), 3, undefined, { source: memorySource(jsonl), kind: 'jsonl' });
    expect(rows2[1]).toMatchObject({ id: 'j1', metadata: { i: 1 } });
    expect(rows2[n - 1].error?.message).toMatch(/fewer lines/);
    await expectResumable(
      'npy',
      () => memorySource(npy),
      3,
      () => ({ source: memorySource(txt, 'ids', 4), kind: 'txt' }),
    );
    await expectResumable('npy', () => memorySource(npy), 3);
  });

  it('fails bad magic, wrong dtype, wrong dimension and truncation before any row', async () => {
    await expect(collect('npy', memorySource(enc('not numpy at all')), 3)).rejects.toThrow(/bad magic/);
    await expect(collect('npy', memorySource(writeNpy(new Float32Array(6), 3, 2, '<f8')), 2)).rejects.toThrow(
      /dtype <f8/,
    );
    await expect(collect('npy', memorySource(npy), 4)).rejects.toThrow(/dimension 3; the collection has 4/);
    await expect(collect('npy', memorySource(npy.slice(0, -4)), 3)).rejects.toThrow(/truncated/);
  });
});

describe('gzip with backpressure', () => {
  it('reads a CSV header from a large gzip file and stops early without hanging', async () => {
    const lines = ['id,vector'];
    for (let i = 0; i < 40_000; i++) lines.push(`r${i},"[${i},${i + 1},${i + 2}]"`);
    const gz = gzipSync(enc(lines.join('\n')));
    const rows = await collect('csv.gz', memorySource(gz, 'big.csv.gz', 4096), 3);
    expect(rows).toHaveLength(40_000);
    expect(rows.at(-1)!.id).toBe('r39999');
    let n = 0;
    for await (const r of openReader('jsonl.gz', memorySource(gzipSync(enc(JSONL.repeat(2000))), 'x', 4096), {
      dimension: 3,
    })) {
      if (r && ++n === 5) break;
    }
    expect(n).toBe(5);
  });
});
