import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CorruptDataError, UnsupportedFormatError, ValidationError } from '../../shared/errors.js';
import type { FieldRef } from '../../shared/filter/ast.js';
import { decodeColumns, encodeColumns } from '../../shared/shard/columns.js';
import type { JsonValue, Metadata } from '../../shared/types.js';

const ref = (field: string, ...path: (string | number)[]): FieldRef => ({ field, path });

/** What `row()` must give back: the input minus top-level null/undefined values. */
function expected(m: Metadata | undefined, fields?: readonly string[]): Metadata {
  const out: Metadata = {};
  if (m === undefined) return out;
  for (const [k, v] of Object.entries(m)) {
    if (v === null || v === undefined || (fields !== undefined && !fields.includes(k))) continue;
    Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

function column(rows: ReadonlyArray<Metadata | undefined>, field: string): unknown[] {
  const set = decodeColumns(encodeColumns(rows));
  const get = set.getter(ref(field));
  return rows.map((_, r) => get(r));
}

/** Helpers to corrupt a column blob in place without re-deriving offsets. */
function headerOf(bytes: Uint8Array): { count: number; columns: Record<string, [number, number] | string>[] } {
  const len = new DataView(bytes.buffer, bytes.byteOffset).getUint32(8, true);
  return JSON.parse(new TextDecoder().decode(bytes.subarray(16, 16 + len)));
}
function dataStart(bytes: Uint8Array): number {
  const len = new DataView(bytes.buffer, bytes.byteOffset).getUint32(8, true);
  return Math.ceil((16 + len) / 8) * 8;
}

describe('encodeColumns / decodeColumns', () => {
  it('stores numbers in a number column, exactly (including -0 and extremes)', () => {
    // Prepare
    const values = [0, -0, 1.5, -42, 1e308, Number.MIN_VALUE, 2 ** 53, 0.1 + 0.2];
    const rows: Metadata[] = values.map((v) => ({ n: v }));
    rows.push({}, { n: null }, { other: 1 });

    // Act
    const set = decodeColumns(encodeColumns(rows));
    const got = rows.map((_, r) => set.getter(ref('n'))(r));

    // Assess
    expect(set.fieldType('n')).toBe('number');
    expect(got).toEqual([...values, undefined, undefined, undefined]);
    expect(Object.is(got[1], -0)).toBe(true);
    expect(set.row(9)).toEqual({});
  });

  it('stores strings in a dictionary column, unicode and empty strings included', () => {
    // Prepare
    const values = ['', 'plain', 'é', '漢字', '👍🏽 family 👨‍👩‍👧', 'e\u0301', 'plain', '\u0000nul', 'x'.repeat(10_000)];
    const rows: (Metadata | undefined)[] = values.map((s) => ({ s }));
    rows.push(undefined, { s: null });

    // Act
    const set = decodeColumns(encodeColumns(rows));

    // Assess
    expect(set.fieldType('s')).toBe('string');
    expect(rows.map((_, r) => set.getter(ref('s'))(r))).toEqual([...values, undefined, undefined]);
  });

  it('stores booleans in a bool column', () => {
    // Prepare
    const rows: Metadata[] = [{ b: true }, { b: false }, {}, { b: null }, { b: true }];

    // Act
    const got = column(rows, 'b');

    // Assess
    expect(decodeColumns(encodeColumns(rows)).fieldType('b')).toBe('bool');
    expect(got).toEqual([true, false, undefined, undefined, true]);
  });

  it('falls back to json for mixed types, objects and arrays, and round-trips them', () => {
    // Prepare
    const rows: Metadata[] = [
      { mixed: 1, obj: { a: { b: [1, 'two', null] } }, arr: [1, 2] },
      { mixed: 'one', obj: { a: null }, arr: [] },
      { mixed: true, obj: {}, arr: [[{ deep: -0 }]] },
      { mixed: null },
      {},
    ];

    // Act
    const set = decodeColumns(encodeColumns(rows));

    // Assess
    expect(set.fieldType('mixed')).toBe('json');
    expect(set.fieldType('obj')).toBe('json');
    expect(set.fieldType('arr')).toBe('json');
    rows.forEach((m, r) => expect(set.row(r)).toEqual(expected(m)));
    expect(Object.is((set.row(2).arr as { deep: number }[][])[0][0].deep, -0)).toBe(true);
  });

  it('walks nested paths through json columns and only there', () => {
    // Prepare
    const rows: Metadata[] = [
      { meta: JSON.parse('{"a":{"b":7},"tags":["x","y"],"n":null,"__proto__":5}') as JsonValue, s: 'str' },
      { meta: [10, { k: 'v' }], s: 'str' },
      { meta: 'scalar', s: 'str' },
    ];
    const set = decodeColumns(encodeColumns(rows));
    const read = (...path: (string | number)[]) => rows.map((_, r) => set.getter(ref('meta', ...path))(r));

    // Act + Assess
    expect(read('a', 'b')).toEqual([7, undefined, undefined]);
    expect(read('tags', 1)).toEqual(['y', undefined, undefined]);
    expect(read('tags', '0')).toEqual(['x', undefined, undefined]);
    expect(read('tags', 2)).toEqual([undefined, undefined, undefined]);
    expect(read('tags', 'length')).toEqual([undefined, undefined, undefined]);
    expect(read('n')).toEqual([null, undefined, undefined]);
    expect(read('__proto__')).toEqual([5, undefined, undefined]);
    expect(read('toString')).toEqual([undefined, undefined, undefined]);
    expect(read(1, 'k')).toEqual([undefined, 'v', undefined]);
    expect(read('a', 'b', 'c')).toEqual([undefined, undefined, undefined]);
    expect(read()).toEqual([rows[0].meta, rows[1].meta, 'scalar']);
    expect(set.getter(ref('s', 'x'))(0)).toBeUndefined();
    expect(set.getter(ref('nope'))(0)).toBeUndefined();
    expect(set.getter(ref('s'))(-1)).toBeUndefined();
    expect(set.getter(ref('s'))(3)).toBeUndefined();
  });

  it('keeps strings with lone surrogates exact by storing them as json', () => {
    // Prepare
    const rows: Metadata[] = [{ s: 'ok' }, { s: 'bad\uD800' }, { s: '\uDC00' }];

    // Act
    const set = decodeColumns(encodeColumns(rows));

    // Assess
    expect(set.fieldType('s')).toBe('json');
    expect(rows.map((_, r) => set.getter(ref('s'))(r))).toEqual(['ok', 'bad\uD800', '\uDC00']);
  });

  it('treats a top-level "__proto__" field as data', () => {
    // Prepare
    const rows = [JSON.parse('{"__proto__": "p", "x": 1}') as Metadata];

    // Act
    const set = decodeColumns(encodeColumns(rows));
    const row = set.row(0);

    // Assess
    expect(set.fields).toEqual(['__proto__', 'x']);
    expect(Object.getPrototypeOf(row)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(row, '__proto__')?.value).toBe('p');
  });

  it('restricts and orders columns by `fields`, with never-seen fields all missing', () => {
    // Prepare
    const rows: Metadata[] = [{ a: 1, b: 'x', c: true }, { b: 'y' }];

    // Act
    const set = decodeColumns(encodeColumns(rows, ['c', 'b', 'ghost']));

    // Assess
    expect(set.fields).toEqual(['c', 'b', 'ghost']);
    expect(set.row(0)).toEqual({ c: true, b: 'x' });
    expect(set.getter(ref('a'))(0)).toBeUndefined();
    expect(set.getter(ref('ghost'))(1)).toBeUndefined();
  });

  it('handles zero rows and rows without metadata', () => {
    // Prepare + Act
    const empty = decodeColumns(encodeColumns([]));
    const bare = decodeColumns(encodeColumns([undefined, undefined]));

    // Assess
    expect(empty.count).toBe(0);
    expect(empty.fields).toEqual([]);
    expect(bare.count).toBe(2);
    expect(bare.row(1)).toEqual({});
  });

  it('returns fresh objects from row() so callers cannot poison the cache', () => {
    // Prepare
    const set = decodeColumns(encodeColumns([{ o: { a: 1 } }]));

    // Act
    (set.row(0).o as Record<string, number>).a = 99;

    // Assess
    expect(set.row(0)).toEqual({ o: { a: 1 } });
    expect(set.getter(ref('o', 'a'))(0)).toBe(1);
  });

  it('round-trips arbitrary JSON metadata (property)', () => {
    const meta = fc.dictionary(fc.string({ unit: 'binary', maxLength: 6 }), fc.jsonValue({ maxDepth: 3 }), {
      maxKeys: 5,
    });
    const rows = fc.array(fc.option(meta, { nil: undefined }), { maxLength: 20 });
    fc.assert(
      fc.property(rows, (input) => {
        // Act
        const set = decodeColumns(encodeColumns(input as (Metadata | undefined)[]));
        // Assess
        input.forEach((m, r) => expect(set.row(r)).toEqual(expected(m as Metadata | undefined)));
      }),
      { seed: 42, numRuns: 300 },
    );
  });

  it('decodes from misaligned input by copying only the misaligned views', () => {
    // Prepare
    const bytes = encodeColumns([
      { n: 1.25, s: 'a', j: [1] },
      { n: 2, s: 'b', j: { x: 1 } },
    ]);
    const shifted = new Uint8Array(bytes.length + 3);
    shifted.set(bytes, 3);

    // Act
    const set = decodeColumns(shifted.subarray(3));

    // Assess
    expect(set.row(0)).toEqual({ n: 1.25, s: 'a', j: [1] });
    expect(set.row(1)).toEqual({ n: 2, s: 'b', j: { x: 1 } });
  });

  it('aligns every section to 8 bytes', () => {
    // Prepare
    const bytes = encodeColumns([{ b: true, n: 1, s: 'abc', j: [1] }, { b: false, n: 2, s: 'de', j: 'x' }, {}]);

    // Act
    const header = headerOf(bytes);

    // Assess
    expect(dataStart(bytes) % 8).toBe(0);
    for (const col of header.columns) {
      for (const [key, value] of Object.entries(col)) {
        if (key !== 'name' && key !== 'type') expect((value as number[])[0] % 8).toBe(0);
      }
    }
  });

  it('rejects values that are not JSON and bad field lists with ValidationError', () => {
    const cases: [() => unknown, string][] = [
      [() => encodeColumns([{ n: Number.NaN }]), 'n'],
      [() => encodeColumns([{ n: 1 }, { n: Number.POSITIVE_INFINITY }]), 'n'],
      [() => encodeColumns([{ j: { deep: [Number.NaN] } }]), 'j'],
      [() => encodeColumns([{ d: new Date(0) as unknown as JsonValue }]), 'd'],
      [() => encodeColumns([{ a: 1 }], ['a', 'a']), 'fields'],
      [() => encodeColumns([[1] as unknown as Metadata]), 'metadata'],
    ];
    for (const [act, field] of cases) {
      expect(act).toThrow(ValidationError);
      try {
        act();
      } catch (e) {
        expect((e as ValidationError).field).toBe(field);
      }
    }
  });

  it('rejects corrupt blobs with typed errors', () => {
    // Prepare
    const good = encodeColumns([
      { s: 'a', b: true },
      { s: 'b', b: false },
    ]);
    const header = headerOf(good);
    const start = dataStart(good);
    const codesAt = start + (header.columns[0].codes as [number, number])[0];
    const boolAt = start + (header.columns[1].values as [number, number])[0];
    const mutate = (f: (b: Uint8Array) => void): Uint8Array => {
      const b = good.slice();
      f(b);
      return b;
    };

    // Act + Assess
    expect(() => decodeColumns(mutate((b) => (b[0] = 0)))).toThrow(CorruptDataError);
    expect(() => decodeColumns(mutate((b) => (b[4] = 2)))).toThrow(UnsupportedFormatError);
    expect(() => decodeColumns(mutate((b) => (b[codesAt] = 7)))).toThrow(CorruptDataError);
    expect(() => decodeColumns(mutate((b) => (b[boolAt] = 3)))).toThrow(CorruptDataError);
    expect(() => decodeColumns(mutate((b) => (b[17] = 0x7b)))).toThrow(CorruptDataError);
    for (let len = 0; len < good.length; len++) {
      expect(() => decodeColumns(good.subarray(0, len)), `prefix ${len}`).toThrow(CorruptDataError);
    }
  });

  it('encodes and decodes 100k rows of mixed columns', () => {
    // Prepare
    const n = 100_000;
    const colors = ['red', 'green', 'blue', '青'];
    const rows: Metadata[] = Array.from({ length: n }, (_, i) => ({
      price: i * 0.5,
      color: colors[i % 4],
      uniq: `u-${i}`,
      active: i % 3 === 0,
      tags: i % 10 === 0 ? null : { n: i, t: [colors[i % 4]] },
    }));

    // Act
    const bytes = encodeColumns(rows);
    const set = decodeColumns(bytes);
    const tag = set.getter(ref('tags', 't', 0));
    const uniq = set.getter(ref('uniq'));
    let blue = 0;
    for (let r = 0; r < n; r++) if (tag(r) === 'blue') blue++;

    // Assess
    expect(set.count).toBe(n);
    expect(set.fields).toEqual(['price', 'color', 'uniq', 'active', 'tags']);
    expect(blue).toBe(n / 4 - n / 20);
    expect(uniq(n - 1)).toBe(`u-${n - 1}`);
    expect(set.row(12_345)).toEqual(expected(rows[12_345]));
  });
});
