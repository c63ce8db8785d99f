import { crc32 } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CorruptDataError, ShoalError, UnsupportedFormatError, ValidationError } from '../../shared/errors.js';
import { decodeColumns, encodeColumns } from '../../shared/shard/columns.js';
import {
  SHARD_FORMAT_VERSION,
  SHARD_MAGIC,
  crc32Combine,
  decodeShard,
  encodeShard,
  readShardHeader,
  type ShardContents,
} from '../../shared/shard/format.js';
import type { Metadata } from '../../shared/types.js';
import { mulberry32 } from '../helpers/random.js';

/** Deterministic PRNG so fixtures are identical on every run. */
const rng = mulberry32;

function makeShard(count: number, dim: number, seed = 1, meta: ShardContents['meta'] = undefined): ShardContents {
  const rand = rng(seed);
  const vectors = new Float32Array(count * dim).map(() => rand() * 2 - 1);
  const rows: Metadata[] = Array.from({ length: count }, (_, i) => ({
    n: i,
    s: ['a', 'ü', '猫'][i % 3],
    ...(i % 2 ? { j: { i, t: [i % 5] } } : {}),
  }));
  return {
    engine: 'flat',
    dim,
    metric: 'cosine',
    count,
    params: { m: 16, efConstruction: 200 },
    index: new Uint8Array(vectors.buffer),
    ids: Array.from({ length: count }, (_, i) => (i % 7 === 3 ? `doc-${i}-ß✓😀` : `doc-${i}`)),
    seqs: Float64Array.from({ length: count }, (_, i) => (i * 7919) % 100_003),
    columns: encodeColumns(rows),
    ...(meta === undefined ? {} : { meta }),
  };
}

const META = { shardId: 's-001', createdAt: '2026-11-29T08:00:00Z', collection: 'docs', builder: 3, sealed: true };

function expectTyped(act: () => unknown, type: new (...args: never[]) => ShoalError): void {
  let thrown: unknown;
  try {
    act();
  } catch (e) {
    thrown = e;
  }
  expect(thrown, 'expected a throw').toBeInstanceOf(type);
}

const u32 = (b: Uint8Array, at: number): number => new DataView(b.buffer, b.byteOffset).getUint32(at, true);
const setU32 = (b: Uint8Array, at: number, v: number): void =>
  new DataView(b.buffer, b.byteOffset).setUint32(at, v >>> 0, true);
const align8 = (n: number): number => Math.ceil(n / 8) * 8;

/** Re-signs header and file CRCs after editing header bytes or sections in place. */
function resign(b: Uint8Array): void {
  const len = u32(b, 12);
  setU32(b, 16, crc32(b.subarray(24, 24 + len)));
  setU32(b, b.length - 12, crc32(b.subarray(0, b.length - 12)));
}

/**
 * Rewrites the header JSON with valid checksums, padded with JSON whitespace to the same
 * length so the section layout is untouched. Lets tests reach the validation that sits
 * behind the CRCs.
 */
function forgeHeader(bytes: Uint8Array, mutate: (h: Record<string, unknown>) => void): Uint8Array {
  const b = bytes.slice();
  const len = u32(b, 12);
  const header = JSON.parse(new TextDecoder().decode(b.subarray(24, 24 + len))) as Record<string, unknown>;
  mutate(header);
  const json = Buffer.from(JSON.stringify(header));
  expect(json.length).toBeLessThanOrEqual(len);
  b.fill(0x20, 24, 24 + len);
  b.set(json, 24);
  resign(b);
  return b;
}

/**
 * An independent writer that follows the documented layout, used to check the encoder
 * byte for byte and to build files whose sections disagree with each other.
 */
function assemble(
  h: { engine: string; dim: number; metric: string; count: number; params: object; meta?: object },
  bodies: { index: Uint8Array; ids: Uint8Array; seqs: Uint8Array; columns: Uint8Array },
): Uint8Array {
  const names = ['index', 'ids', 'seqs', 'columns'] as const;
  let headerLen = 0;
  for (;;) {
    let at = align8(24 + headerLen);
    const sections: Record<string, { offset: number; length: number; crc32: number }> = {};
    for (const n of names) {
      sections[n] = { offset: at, length: bodies[n].length, crc32: crc32(bodies[n]) };
      at = align8(at + bodies[n].length);
    }
    const end = sections.columns.offset + sections.columns.length;
    const { engine, dim, metric, count, params, meta } = h;
    const json = Buffer.from(
      JSON.stringify({ engine, dim, metric, count, byteLength: end + 12, params, ...(meta ? { meta } : {}), sections }),
    );
    if (json.length !== headerLen) {
      headerLen = json.length;
      continue;
    }
    const out = new Uint8Array(end + 12);
    out.set(Buffer.from('SHOALSHD'), 0);
    setU32(out, 8, 1);
    setU32(out, 12, json.length);
    setU32(out, 16, crc32(json));
    out.set(json, 24);
    for (const n of names) out.set(bodies[n], sections[n].offset);
    setU32(out, end, crc32(out.subarray(0, end)));
    out.set(Buffer.from('SHOALEND'), end + 4);
    return out;
  }
}

function idsBody(ids: string[]): Uint8Array {
  const blobs = ids.map((s) => Buffer.from(s));
  const offsets = new Uint32Array(ids.length + 1);
  blobs.forEach((b, i) => (offsets[i + 1] = offsets[i] + b.length));
  return Buffer.concat([Buffer.from(offsets.buffer), ...blobs]);
}

const seqBody = (s: Float64Array): Uint8Array => new Uint8Array(s.buffer, s.byteOffset, s.byteLength);

describe('encodeShard / decodeShard', () => {
  it('round-trips every field and re-encodes to identical bytes', () => {
    // Prepare
    const input = makeShard(50, 8, 1, META);

    // Act
    const bytes = encodeShard(input);
    const decoded = decodeShard(bytes);
    const again = encodeShard(decoded);

    // Assess
    expect(decoded.engine).toBe('flat');
    expect(decoded.dim).toBe(8);
    expect(decoded.metric).toBe('cosine');
    expect(decoded.count).toBe(50);
    expect(decoded.params).toEqual(input.params);
    expect(decoded.meta).toEqual(META);
    expect(Buffer.from(decoded.index).equals(Buffer.from(input.index))).toBe(true);
    expect(decoded.ids).toEqual(input.ids);
    expect(Array.from(decoded.seqs)).toEqual(Array.from(input.seqs));
    expect(Buffer.from(decoded.columns).equals(Buffer.from(input.columns))).toBe(true);
    expect(decodeColumns(decoded.columns).row(7)).toEqual({ n: 7, s: 'ü', j: { i: 7, t: [2] } });
    expect(Buffer.from(again).equals(Buffer.from(bytes))).toBe(true);
  });

  it('writes exactly the documented layout', () => {
    // Prepare
    const c = makeShard(9, 3, 2, META);

    // Act
    const bytes = encodeShard(c);
    const reference = assemble(c, { index: c.index, ids: idsBody(c.ids), seqs: seqBody(c.seqs), columns: c.columns });

    // Assess
    expect(Buffer.from(bytes.subarray(0, 8)).toString('latin1')).toBe(SHARD_MAGIC);
    expect(u32(bytes, 8)).toBe(SHARD_FORMAT_VERSION);
    expect(Buffer.from(bytes.subarray(bytes.length - 8)).toString('latin1')).toBe('SHOALEND');
    expect(Buffer.from(bytes).equals(Buffer.from(reference))).toBe(true);
  });

  it('omits meta when absent and keeps it absent', () => {
    // Prepare + Act
    const decoded = decodeShard(encodeShard(makeShard(3, 2)));

    // Assess
    expect('meta' in decoded).toBe(false);
  });

  it('returns the index as an 8-aligned view into the input, usable as Float32Array', () => {
    // Prepare
    const input = makeShard(20, 5, 3);
    const bytes = encodeShard(input);

    // Act
    const { index } = decodeShard(bytes);
    const floats = new Float32Array(index.buffer, index.byteOffset, index.length / 4);

    // Assess
    expect(index.buffer).toBe(bytes.buffer);
    expect((index.byteOffset - bytes.byteOffset) % 8).toBe(0);
    expect(index.byteOffset % 8).toBe(0);
    expect(Array.from(floats)).toEqual(Array.from(new Float32Array(input.index.buffer)));
  });

  it('copies once and still decodes when the input is misaligned', () => {
    // Prepare
    const bytes = encodeShard(makeShard(10, 4, 4));
    const holder = new Uint8Array(bytes.length + 5);
    holder.set(bytes, 5);

    // Act
    const decoded = decodeShard(holder.subarray(5));

    // Assess
    expect(decoded.index.byteOffset % 8).toBe(0);
    expect(Buffer.from(encodeShard(decoded)).equals(Buffer.from(bytes))).toBe(true);
  });

  it('reads the header alone, even from a prefix of the file', () => {
    // Prepare
    const bytes = encodeShard(makeShard(30, 4, 5, META));
    const headerEnd = 24 + u32(bytes, 12);

    // Act
    const full = readShardHeader(bytes);
    const prefix = readShardHeader(bytes.subarray(0, headerEnd));

    // Assess
    expect(full).toEqual({
      engine: 'flat',
      dim: 4,
      metric: 'cosine',
      count: 30,
      params: { m: 16, efConstruction: 200 },
      formatVersion: 1,
      byteLength: bytes.length,
      meta: META,
    });
    expect(prefix).toEqual(full);
    expectTyped(() => readShardHeader(bytes.subarray(0, headerEnd - 1)), CorruptDataError);
  });

  it('decodes a 100k-row shard (sanity, no timing asserts)', () => {
    // Prepare
    const count = 100_000;
    const input = makeShard(count, 16, 6);

    // Act
    const decoded = decodeShard(encodeShard(input));

    // Assess
    expect(decoded.ids.length).toBe(count);
    expect(decoded.ids[99_999]).toBe(input.ids[99_999]);
    expect(decoded.ids[3]).toBe('doc-3-ß✓😀');
  });
});

describe('decodeShard rejects damaged files', () => {
  const small = encodeShard(makeShard(3, 2, 7, { shardId: 'x' }));

  it('rejects a truncation at every byte boundary of a small shard', () => {
    for (let len = 0; len < small.length; len++) {
      // Act + Assess
      expectTyped(() => decodeShard(small.subarray(0, len)), CorruptDataError);
    }
  });

  it('rejects truncations at random offsets of a bigger shard', () => {
    // Prepare
    const big = encodeShard(makeShard(2_000, 32, 8));
    const rand = rng(42);

    for (let i = 0; i < 200; i++) {
      const len = Math.floor(rand() * big.length);
      // Act + Assess
      expectTyped(() => decodeShard(big.subarray(0, len)), CorruptDataError);
    }
  });

  it('rejects extra bytes after the end', () => {
    // Prepare
    const longer = new Uint8Array(small.length + 8);
    longer.set(small);

    // Act + Assess
    expectTyped(() => decodeShard(longer), CorruptDataError);
  });

  it('never decodes a file with any single byte flipped', () => {
    fc.assert(
      fc.property(fc.nat({ max: small.length - 1 }), fc.integer({ min: 1, max: 255 }), (pos, mask) => {
        // Prepare
        const b = small.slice();
        b[pos] ^= mask;
        // Act
        let thrown: unknown;
        try {
          decodeShard(b);
        } catch (e) {
          thrown = e;
        }
        // Assess
        expect(thrown instanceof CorruptDataError || thrown instanceof UnsupportedFormatError).toBe(true);
      }),
      { seed: 42, numRuns: 400 },
    );
  });

  it('rejects an unknown format version with UnsupportedFormatError naming it', () => {
    // Prepare
    const b = small.slice();
    setU32(b, 8, 2);

    // Act
    let thrown: unknown;
    try {
      decodeShard(b);
    } catch (e) {
      thrown = e;
    }

    // Assess
    expect(thrown).toBeInstanceOf(UnsupportedFormatError);
    expect((thrown as UnsupportedFormatError).message).toContain('2');
    expect((thrown as UnsupportedFormatError).details).toEqual({ version: 2 });
    expectTyped(() => readShardHeader(b), UnsupportedFormatError);
  });

  it('rejects wrong magic', () => {
    // Prepare
    const b = small.slice();
    b[0] = 0x58;

    // Act + Assess
    expectTyped(() => decodeShard(b), CorruptDataError);
    expectTyped(() => decodeShard(new Uint8Array(4096)), CorruptDataError);
  });

  it('rejects section checksum mismatches even when the file checksum is re-signed', () => {
    // Prepare
    const b = small.slice();
    const lastSectionByte = b.length - 13;
    b[lastSectionByte] ^= 1;
    resign(b);

    // Act + Assess
    expectTyped(() => decodeShard(b), CorruptDataError);
  });

  const forged: [string, (h: Record<string, unknown>) => void][] = [
    ['unknown engine', (h) => (h.engine = 'faiss')],
    ['unknown metric', (h) => (h.metric = 'dot')],
    ['dim as string', (h) => (h.dim = '2')],
    ['dim zero', (h) => (h.dim = 0)],
    ['count too high', (h) => (h.count = 4)],
    ['count too low', (h) => (h.count = 2)],
    ['count fractional', (h) => (h.count = 2.5)],
    ['byteLength wrong', (h) => (h.byteLength = (h.byteLength as number) + 8)],
    ['params not numbers', (h) => (h.params = { m: '16' })],
    ['params array', (h) => (h.params = [1])],
    ['meta nested', (h) => (h.meta = { a: { b: 1 } })],
    ['unknown key', (h) => (h.extra = 1)],
    ['missing params', (h) => delete h.params],
    ['section missing', (h) => delete (h.sections as Record<string, unknown>).seqs],
    ['section extra', (h) => ((h.sections as Record<string, unknown>).more = { offset: 0, length: 0, crc32: 0 })],
    [
      'section misaligned',
      (h) => {
        const s = (h.sections as Record<string, { offset: number }>).columns;
        s.offset += 4;
      },
    ],
    ['section crc wrong', (h) => ((h.sections as Record<string, { crc32: number }>).ids.crc32 ^= 1)],
    ['section crc not a number', (h) => ((h.sections as Record<string, Record<string, unknown>>).ids.crc32 = 'x')],
    [
      'sections overlapping',
      (h) => {
        const s = h.sections as Record<string, { offset: number; length: number }>;
        s.seqs.offset = s.ids.offset;
      },
    ],
    ['sections an array', (h) => (h.sections = [])],
  ];
  for (const [name, mutate] of forged) {
    it(`rejects a header with valid checksums but ${name}`, () => {
      // Prepare
      const b = forgeHeader(encodeShard(makeShard(3, 2, 7, { shardId: 'x', pad: 'p'.repeat(64) })), (h) => {
        (h.meta as Record<string, unknown>).pad = '';
        mutate(h);
      });

      // Act + Assess
      expectTyped(() => decodeShard(b), CorruptDataError);
    });
  }

  it('rejects header JSON that does not parse, with valid checksums', () => {
    // Prepare
    const b = small.slice();
    b[24] = 0x5b; // '[' makes the JSON unbalanced
    resign(b);

    // Act + Assess
    expectTyped(() => decodeShard(b), CorruptDataError);
  });

  it('rejects sections that disagree on the row count', () => {
    // Prepare
    const c = makeShard(4, 2, 9);
    const h = { engine: c.engine, dim: c.dim, metric: c.metric, count: c.count, params: c.params };
    const ok = { index: c.index, ids: idsBody(c.ids), seqs: seqBody(c.seqs), columns: c.columns };
    const variants = {
      idsShort: { ...ok, ids: idsBody(c.ids.slice(0, 3)) },
      idsLong: { ...ok, ids: idsBody([...c.ids, 'extra']) },
      seqsShort: { ...ok, seqs: seqBody(c.seqs.subarray(0, 3)) },
      columnsShort: { ...ok, columns: encodeColumns([{ a: 1 }]) },
      columnsGarbage: { ...ok, columns: new Uint8Array(32) },
      idEmpty: { ...ok, ids: idsBody(['a', '', 'c', 'd']) },
      idTooLong: { ...ok, ids: idsBody(['a', 'b', 'c', 'x'.repeat(513)]) },
      idBadUtf8: {
        ...ok,
        ids: Buffer.concat([
          Buffer.from(new Uint32Array([0, 1, 2, 3, 4]).buffer),
          Buffer.from([0x61, 0x62, 0xff, 0x64]),
        ]),
      },
      seqFraction: { ...ok, seqs: seqBody(Float64Array.from([1, 2, 3.5, 4])) },
      seqNegative: { ...ok, seqs: seqBody(Float64Array.from([1, 2, -3, 4])) },
    };

    // Act + Assess
    expect(decodeShard(assemble(h, ok)).count).toBe(4);
    for (const [name, bodies] of Object.entries(variants)) {
      let thrown: unknown;
      try {
        decodeShard(assemble(h, bodies));
      } catch (e) {
        thrown = e;
      }
      expect(thrown, name).toBeInstanceOf(CorruptDataError);
    }
  });

  it('rejects an id table whose offsets split a UTF-8 sequence', () => {
    // Prepare: 'é' is two bytes; put the boundary between them.
    const c = makeShard(2, 2, 10);
    const ids = Buffer.concat([Buffer.from(new Uint32Array([0, 2, 4]).buffer), Buffer.from('aéb')]);
    const bytes = assemble(c, { index: c.index, ids, seqs: seqBody(c.seqs), columns: c.columns });

    // Act + Assess
    expectTyped(() => decodeShard(bytes), CorruptDataError);
  });
});

describe('encodeShard validates its input', () => {
  const base = (): ShardContents => makeShard(3, 2, 11);
  const cases: [string, (c: ShardContents) => void, string][] = [
    ['dim zero', (c) => (c.dim = 0), 'dim'],
    ['dim fractional', (c) => (c.dim = 1.5), 'dim'],
    ['count zero', (c) => (c.count = 0), 'count'],
    ['count mismatch', (c) => (c.count = 4), 'seqs'],
    ['unknown engine', (c) => (c.engine = 'faiss' as ShardContents['engine']), 'engine'],
    ['unknown metric', (c) => (c.metric = 'dot' as ShardContents['metric']), 'metric'],
    ['param NaN', (c) => (c.params = { m: Number.NaN }), 'params.m'],
    ['meta object', (c) => (c.meta = { x: {} as unknown as string }), 'meta.x'],
    ['seqs short', (c) => (c.seqs = c.seqs.subarray(0, 2)), 'seqs'],
    ['seq negative', (c) => (c.seqs[1] = -1), 'seqs[1]'],
    ['seq fractional', (c) => (c.seqs[2] = 0.5), 'seqs[2]'],
    ['seq too big', (c) => (c.seqs[0] = 2 ** 53 + 2), 'seqs[0]'],
    ['ids short', (c) => c.ids.pop(), 'ids'],
    ['ids duplicate', (c) => (c.ids[2] = c.ids[0]), 'ids[2]'],
    ['id empty', (c) => (c.ids[1] = ''), 'ids[1]'],
    ['id too long', (c) => (c.ids[0] = '€'.repeat(171)), 'ids[0]'],
    ['id lone surrogate', (c) => (c.ids[0] = 'a\uD800'), 'ids[0]'],
    ['id not a string', (c) => (c.ids[0] = 5 as unknown as string), 'ids[0]'],
    ['columns wrong count', (c) => (c.columns = encodeColumns([{ a: 1 }])), 'columns'],
    ['columns garbage', (c) => (c.columns = new Uint8Array(40)), 'columns'],
    ['index not bytes', (c) => (c.index = [1, 2] as unknown as Uint8Array), 'index'],
  ];
  for (const [name, mutate, field] of cases) {
    it(`rejects ${name} with ValidationError on ${field}`, () => {
      // Prepare
      const c = base();
      mutate(c);

      // Act
      let thrown: unknown;
      try {
        encodeShard(c);
      } catch (e) {
        thrown = e;
      }

      // Assess
      expect(thrown).toBeInstanceOf(ValidationError);
      expect((thrown as ValidationError).field).toBe(field);
    });
  }

  it('accepts an id of exactly 512 UTF-8 bytes and seq 2^53', () => {
    // Prepare
    const c = base();
    c.ids[0] = '€'.repeat(170) + 'ab';
    c.seqs[0] = 2 ** 53;

    // Act
    const decoded = decodeShard(encodeShard(c));

    // Assess
    expect(decoded.ids[0]).toBe(c.ids[0]);
    expect(decoded.seqs[0]).toBe(2 ** 53);
  });
});

describe('crc32Combine', () => {
  it('equals the CRC of the concatenation', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.uint8Array({ maxLength: 300 }), (a, b) => {
        const both = Buffer.concat([a, b]);
        expect(crc32Combine(crc32(a), crc32(b), b.length)).toBe(crc32(both));
      }),
      { seed: 42, numRuns: 200 },
    );
  });
});
