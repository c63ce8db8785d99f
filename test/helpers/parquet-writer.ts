/**
 * A minimal Parquet writer for tests and benchmarks (no writer library is installed): PLAIN
 * encoding, no compression, one data page (v1) per column chunk, RLE levels. Columns: `string`
 * (optional UTF8, null allowed), `int32`, `double`, `floatList` (optional LIST<float>: null
 * vector allowed), `doubleList`, `fixed` (FIXED_LEN_BYTE_ARRAY). Enough to exercise hyparquet
 * and Shoal's reader on real row groups; not a general writer.
 */

export type ColumnKind = 'string' | 'int32' | 'double' | 'floatList' | 'doubleList' | 'fixed';

export interface ColumnSpec {
  name: string;
  kind: ColumnKind;
  /** For `fixed`: bytes per value. */
  typeLength?: number;
  values: unknown[];
}

class Bytes {
  private chunks: number[] = [];
  private bufs: Uint8Array[] = [];
  private len = 0;
  byte(b: number): void {
    this.chunks.push(b & 0xff);
    this.len++;
  }
  flush(): void {
    if (this.chunks.length) {
      this.bufs.push(Uint8Array.from(this.chunks));
      this.chunks = [];
    }
  }
  raw(b: Uint8Array): void {
    this.flush();
    this.bufs.push(b);
    this.len += b.byteLength;
  }
  varint(n: bigint | number): void {
    let v = BigInt(n);
    while (v >= 0x80n) {
      this.byte(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.byte(Number(v));
  }
  get length(): number {
    return this.len;
  }
  bytes(): Uint8Array {
    this.flush();
    const out = new Uint8Array(this.len);
    let at = 0;
    for (const b of this.bufs) {
      out.set(b, at);
      at += b.byteLength;
    }
    return out;
  }
}

/** Thrift compact protocol, only what the footer and page headers need. */
class Thrift {
  readonly out = new Bytes();
  private last: number[] = [0];
  private field(id: number, type: number): void {
    const delta = id - this.last[this.last.length - 1];
    if (delta > 0 && delta <= 15) this.out.byte((delta << 4) | type);
    else {
      this.out.byte(type);
      this.zigzag(id);
    }
    this.last[this.last.length - 1] = id;
  }
  private zigzag(n: number | bigint): void {
    const v = BigInt(n);
    this.out.varint(v >= 0n ? v << 1n : (-v << 1n) - 1n);
  }
  i32(id: number, v: number): void {
    this.field(id, 5);
    this.zigzag(v);
  }
  i64(id: number, v: number | bigint): void {
    this.field(id, 6);
    this.zigzag(v);
  }
  str(id: number, s: string): void {
    this.field(id, 8);
    const b = new TextEncoder().encode(s);
    this.out.varint(b.byteLength);
    this.out.raw(b);
  }
  struct(id: number, body: () => void): void {
    this.field(id, 12);
    this.last.push(0);
    body();
    this.out.byte(0);
    this.last.pop();
  }
  private listHeader(n: number, type: number): void {
    if (n < 15) this.out.byte((n << 4) | type);
    else {
      this.out.byte(0xf0 | type);
      this.out.varint(n);
    }
  }
  listStruct(id: number, items: Array<() => void>): void {
    this.field(id, 9);
    this.listHeader(items.length, 12);
    for (const body of items) {
      this.last.push(0);
      body();
      this.out.byte(0);
      this.last.pop();
    }
  }
  listI32(id: number, items: number[]): void {
    this.field(id, 9);
    this.listHeader(items.length, 5);
    for (const v of items) this.zigzag(v);
  }
  listStr(id: number, items: string[]): void {
    this.field(id, 9);
    this.listHeader(items.length, 8);
    for (const s of items) {
      const b = new TextEncoder().encode(s);
      this.out.varint(b.byteLength);
      this.out.raw(b);
    }
  }
  end(): void {
    this.out.byte(0);
  }
}

/** RLE runs (bit width ≤ 8), prefixed with their 4-byte length, as data page v1 wants. */
function levels(values: number[]): Uint8Array {
  const b = new Bytes();
  for (let i = 0; i < values.length; ) {
    let j = i;
    while (j < values.length && values[j] === values[i]) j++;
    b.varint((j - i) << 1);
    b.byte(values[i]);
    i = j;
  }
  const body = b.bytes();
  const out = new Uint8Array(4 + body.byteLength);
  new DataView(out.buffer).setUint32(0, body.byteLength, true);
  out.set(body, 4);
  return out;
}

const PHYSICAL: Record<ColumnKind, number> = { string: 6, int32: 1, double: 5, floatList: 4, doubleList: 5, fixed: 7 };

interface Encoded {
  page: Uint8Array;
  numValues: number;
}

function encodeColumn(col: ColumnSpec, from: number, to: number): Encoded {
  const rep: number[] = [];
  const def: number[] = [];
  const vals = new Bytes();
  const f32 = new DataView(new ArrayBuffer(8));
  const writeNum = (v: number, kind: 'f' | 'd' | 'i'): void => {
    if (kind === 'f') f32.setFloat32(0, v, true);
    else if (kind === 'd') f32.setFloat64(0, v, true);
    else f32.setInt32(0, v, true);
    vals.raw(new Uint8Array(f32.buffer.slice(0, kind === 'd' ? 8 : 4)));
  };
  let numValues = 0;
  for (let r = from; r < to; r++) {
    const v = col.values[r];
    switch (col.kind) {
      case 'string': {
        numValues++;
        if (v === null || v === undefined) def.push(0);
        else {
          def.push(1);
          const b = new TextEncoder().encode(String(v));
          const len = new Uint8Array(4);
          new DataView(len.buffer).setUint32(0, b.byteLength, true);
          vals.raw(len);
          vals.raw(b);
        }
        break;
      }
      case 'int32':
        numValues++;
        writeNum(v as number, 'i');
        break;
      case 'double':
        numValues++;
        writeNum(v as number, 'd');
        break;
      case 'fixed':
        numValues++;
        vals.raw(v as Uint8Array);
        break;
      case 'floatList':
      case 'doubleList': {
        const arr = v as ArrayLike<number> | null | undefined;
        if (arr === null || arr === undefined) {
          rep.push(0);
          def.push(0);
          numValues++;
        } else if (arr.length === 0) {
          rep.push(0);
          def.push(1);
          numValues++;
        } else {
          for (let j = 0; j < arr.length; j++) {
            rep.push(j === 0 ? 0 : 1);
            def.push(2);
            numValues++;
            writeNum(arr[j], col.kind === 'floatList' ? 'f' : 'd');
          }
        }
        break;
      }
    }
  }
  const parts: Uint8Array[] = [];
  if (col.kind === 'floatList' || col.kind === 'doubleList') parts.push(levels(rep));
  if (col.kind === 'string' || col.kind === 'floatList' || col.kind === 'doubleList') parts.push(levels(def));
  parts.push(vals.bytes());
  const size = parts.reduce((s, p) => s + p.byteLength, 0);
  const page = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    page.set(p, at);
    at += p.byteLength;
  }
  return { page, numValues };
}

function schema(t: Thrift, cols: ColumnSpec[]): void {
  const items: Array<() => void> = [
    () => {
      t.str(4, 'schema');
      t.i32(5, cols.length);
    },
  ];
  for (const c of cols) {
    if (c.kind === 'floatList' || c.kind === 'doubleList') {
      items.push(() => {
        t.i32(3, 1);
        t.str(4, c.name);
        t.i32(5, 1);
        t.i32(6, 3);
      });
      items.push(() => {
        t.i32(3, 2);
        t.str(4, 'list');
        t.i32(5, 1);
      });
      items.push(() => {
        t.i32(1, PHYSICAL[c.kind]);
        t.i32(3, 0);
        t.str(4, 'element');
      });
    } else {
      items.push(() => {
        t.i32(1, PHYSICAL[c.kind]);
        if (c.kind === 'fixed') t.i32(2, c.typeLength ?? 0);
        t.i32(3, c.kind === 'string' ? 1 : 0);
        t.str(4, c.name);
        if (c.kind === 'string') t.i32(6, 0);
      });
    }
  }
  t.listStruct(2, items);
}

/** Writes the columns (equal length) as a Parquet file with row groups of `rowGroupRows`. */
export function writeParquet(cols: ColumnSpec[], rowGroupRows = 10_000): Uint8Array {
  const rows = cols[0]?.values.length ?? 0;
  const out = new Bytes();
  out.raw(new TextEncoder().encode('PAR1'));
  const groups: Array<{
    rows: number;
    chunks: Array<{ col: ColumnSpec; offset: number; size: number; numValues: number }>;
  }> = [];
  for (let g = 0; g < rows || (g === 0 && rows === 0); g += rowGroupRows) {
    const to = Math.min(rows, g + rowGroupRows);
    const chunks: (typeof groups)[number]['chunks'] = [];
    for (const col of cols) {
      const { page, numValues } = encodeColumn(col, g, to);
      const h = new Thrift();
      h.i32(1, 0);
      h.i32(2, page.byteLength);
      h.i32(3, page.byteLength);
      h.struct(5, () => {
        h.i32(1, numValues);
        h.i32(2, 0);
        h.i32(3, 3);
        h.i32(4, 3);
      });
      h.end();
      const header = h.out.bytes();
      const offset = out.length;
      out.raw(header);
      out.raw(page);
      chunks.push({ col, offset, size: header.byteLength + page.byteLength, numValues });
    }
    groups.push({ rows: to - g, chunks });
    if (rows === 0) break;
  }
  const t = new Thrift();
  t.i32(1, 1);
  schema(t, cols);
  t.i64(3, rows);
  t.listStruct(
    4,
    groups.map((g) => () => {
      t.listStruct(
        1,
        g.chunks.map((c) => () => {
          t.i64(2, c.offset);
          t.struct(3, () => {
            t.i32(1, PHYSICAL[c.col.kind]);
            t.listI32(2, [0, 3]);
            t.listStr(
              3,
              c.col.kind === 'floatList' || c.col.kind === 'doubleList'
                ? [c.col.name, 'list', 'element']
                : [c.col.name],
            );
            t.i32(4, 0);
            t.i64(5, c.numValues);
            t.i64(6, c.size);
            t.i64(7, c.size);
            t.i64(9, c.offset);
          });
        }),
      );
      t.i64(
        2,
        g.chunks.reduce((s, c) => s + c.size, 0),
      );
      t.i64(3, g.rows);
    }),
  );
  t.str(6, 'shoal-test-writer');
  t.end();
  const footer = t.out.bytes();
  out.raw(footer);
  const len = new Uint8Array(4);
  new DataView(len.buffer).setUint32(0, footer.byteLength, true);
  out.raw(len);
  out.raw(new TextEncoder().encode('PAR1'));
  return out.bytes();
}

/** A `.npy` (v1.0) file of a rows × dim float32 array. */
export function writeNpy(data: Float32Array, rows: number, dim: number, descr = '<f4'): Uint8Array {
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${rows}, ${dim}), }`;
  const pad = 64 - ((10 + header.length + 1) % 64);
  header += ' '.repeat(pad % 64) + '\n';
  const out = new Uint8Array(10 + header.length + data.byteLength);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), 10 + header.length);
  return out;
}
