/**
 * The shard file: one immutable object in S3 holding everything a query needs for one
 * shard, so a cold start is a single GET.
 *
 * Byte layout v1 (integers little-endian):
 *
 *   0   8  magic "SHOALSHD"
 *   8   4  u32 format version (1)
 *   12  4  u32 header length H (UTF-8 JSON bytes)
 *   16  4  u32 CRC32 of the header JSON
 *   20  4  u32 reserved, 0
 *   24  H  header JSON: { engine, dim, metric, count, byteLength, params, meta?,
 *                         sections: { index|ids|seqs|columns: { offset, length, crc32 } } }
 *          sections in that order, each at an absolute 8-aligned offset, zero padding between:
 *            index    engine bytes, opaque (hnsw views float32 data straight out of it)
 *            ids      (count+1) × u32 byte offsets, then the UTF-8 blob
 *            seqs     count × f64
 *            columns  output of `encodeColumns`
 *   L-12 4  u32 CRC32 of bytes [0, L-12)
 *   L-8  8  end magic "SHOALEND"
 *
 * The header carries its own CRC so `readShardHeader` can trust a prefix of the file
 * (e.g. a ranged GET) without reading the rest.
 *
 * Verification cost: decoding computes each section's CRC once and derives the whole-file
 * CRC from them with crc32_combine, so the full check is a single pass over the bytes.
 * Measured (Node 20.20, x86-64, 2 shared vCPUs, `npx tsx` micro-bench, min/median of 21):
 * a 55 MB shard (100k × 125-dim float32 index = 50 MB, 100k ASCII ids, 100k seqs,
 * 4 metadata columns) decodes in 17 / 22 ms, of which the CRC pass is 13 / 15 ms and
 * the ids ~2–4 ms; encoding takes ~115 / 140 ms. Decode is under the ~30 ms budget and a
 * 'sections'-only mode would save nothing (the whole-file CRC comes from the section
 * CRCs for free), so full verification is always on.
 */
import { Buffer } from 'node:buffer';
import { crc32 } from 'node:zlib';
import { ENGINE_NAMES, type EngineName, type EngineParams } from '../engine/types.js';
import { CorruptDataError, UnsupportedFormatError, ValidationError } from '../errors.js';
import { METRICS, type Metric } from '../types.js';
import {
  align8,
  assertLittleEndian,
  checkOffsets,
  decodeUtf8Table,
  encodeUtf8Table,
  isWellFormed,
  readColumnsHeader,
} from './columns.js';

export const SHARD_MAGIC = 'SHOALSHD';
export const SHARD_END_MAGIC = 'SHOALEND';
export const SHARD_FORMAT_VERSION = 1;

const MAGIC = Buffer.from(SHARD_MAGIC, 'latin1');
const END_MAGIC = Buffer.from(SHARD_END_MAGIC, 'latin1');
const PREAMBLE = 24;
const TRAILER = 12;
const MAX_ID_BYTES = 512;
/** Rows are u32-addressable and addressed with int32 bit tricks by the column readers. */
const MAX_COUNT = 0x7fffffff;
const MAX_SEQ = 2 ** 53;
const SECTION_NAMES = ['index', 'ids', 'seqs', 'columns'] as const;
type SectionName = (typeof SECTION_NAMES)[number];

export type ShardMeta = Record<string, string | number | boolean>;

export interface ShardContents {
  engine: EngineName;
  dim: number;
  metric: Metric;
  count: number;
  params: EngineParams;
  /** Engine bytes, opaque. */
  index: Uint8Array;
  /** Row → id (UTF-8, each ≤ 512 bytes). */
  ids: string[];
  /** Row → write sequence number (integers ≤ 2^53). */
  seqs: Float64Array;
  /** Output of `encodeColumns`. */
  columns: Uint8Array;
  /** Free-form provenance (shardId, createdAt, collection, builder version). */
  meta?: ShardMeta;
}

export interface ShardHeader {
  engine: EngineName;
  dim: number;
  metric: Metric;
  count: number;
  params: EngineParams;
  formatVersion: number;
  byteLength: number;
  meta: ShardMeta | undefined;
}

interface SectionEntry {
  offset: number;
  length: number;
  crc32: number;
}

interface ParsedHeader extends ShardHeader {
  sections: Record<SectionName, SectionEntry>;
}

// ---------------------------------------------------------------------------------------
// CRC32 combination (port of zlib's crc32_combine; node:zlib does not expose it)

function gf2Times(mat: Uint32Array, vec: number): number {
  let sum = 0;
  for (let i = 0; vec !== 0; i++, vec >>>= 1) if (vec & 1) sum ^= mat[i];
  return sum >>> 0;
}

function gf2Square(square: Uint32Array, mat: Uint32Array): void {
  for (let n = 0; n < 32; n++) square[n] = gf2Times(mat, mat[n]);
}

/** CRC32 of A‖B from crc(A), crc(B) and |B|, in O(log |B|) without touching the bytes. */
export function crc32Combine(crc1: number, crc2: number, len2: number): number {
  if (len2 <= 0) return crc1 >>> 0;
  const even = new Uint32Array(32);
  const odd = new Uint32Array(32);
  odd[0] = 0xedb88320; // reflected CRC-32 polynomial: the operator for one zero bit
  for (let n = 1, row = 1; n < 32; n++, row <<= 1) odd[n] = row;
  gf2Square(even, odd); // two zero bits
  gf2Square(odd, even); // four zero bits
  let c = crc1 >>> 0;
  let len = len2;
  for (;;) {
    gf2Square(even, odd);
    if (len % 2) c = gf2Times(even, c);
    len = Math.floor(len / 2);
    if (len === 0) break;
    gf2Square(odd, even);
    if (len % 2) c = gf2Times(odd, c);
    len = Math.floor(len / 2);
    if (len === 0) break;
  }
  return (c ^ crc2) >>> 0;
}

// ---------------------------------------------------------------------------------------
// Encoding

function invalid(field: string, why: string): never {
  throw new ValidationError(`shard ${field}: ${why}`, { field });
}

const isPlainRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function validateContents(c: ShardContents): void {
  if (!ENGINE_NAMES.includes(c.engine)) invalid('engine', `unknown engine ${String(c.engine)}`);
  if (!METRICS.includes(c.metric)) invalid('metric', `unknown metric ${String(c.metric)}`);
  if (!Number.isSafeInteger(c.dim) || c.dim <= 0) invalid('dim', 'must be a positive integer');
  if (!Number.isSafeInteger(c.count) || c.count <= 0 || c.count > MAX_COUNT)
    invalid('count', 'must be a positive integer');
  if (!isPlainRecord(c.params)) invalid('params', 'must be an object');
  for (const [k, v] of Object.entries(c.params)) {
    if (typeof v !== 'number' || !Number.isFinite(v)) invalid(`params.${k}`, 'must be a finite number');
  }
  if (c.meta !== undefined) {
    if (!isPlainRecord(c.meta)) invalid('meta', 'must be an object');
    for (const [k, v] of Object.entries(c.meta)) {
      // JSON.stringify escapes lone surrogates, so any string survives the header.
      const ok = typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v));
      if (!ok) invalid(`meta.${k}`, 'must be a string, finite number or boolean');
    }
  }
  if (!(c.index instanceof Uint8Array)) invalid('index', 'must be a Uint8Array');
  if (!(c.columns instanceof Uint8Array)) invalid('columns', 'must be a Uint8Array');
  if (!(c.seqs instanceof Float64Array)) invalid('seqs', 'must be a Float64Array');
  if (c.seqs.length !== c.count) invalid('seqs', `has ${c.seqs.length} entries for ${c.count} rows`);
  for (let i = 0; i < c.count; i++) {
    const s = c.seqs[i];
    if (!Number.isInteger(s) || s < 0 || s > MAX_SEQ) invalid(`seqs[${i}]`, 'must be an integer in 0..2^53');
  }
  if (!Array.isArray(c.ids)) invalid('ids', 'must be an array');
  if (c.ids.length !== c.count) invalid('ids', `has ${c.ids.length} entries for ${c.count} rows`);
  const seen = new Set<string>();
  for (let i = 0; i < c.count; i++) {
    const id = c.ids[i];
    if (typeof id !== 'string' || id.length === 0) invalid(`ids[${i}]`, 'must be a non-empty string');
    if (!isWellFormed(id)) invalid(`ids[${i}]`, 'must be well-formed Unicode');
    if (id.length > MAX_ID_BYTES / 3 && Buffer.byteLength(id, 'utf8') > MAX_ID_BYTES) {
      invalid(`ids[${i}]`, `exceeds ${MAX_ID_BYTES} UTF-8 bytes`);
    }
    if (seen.has(id)) invalid(`ids[${i}]`, `duplicate id ${JSON.stringify(id)}`);
    seen.add(id);
  }
  let columnsCount: number;
  try {
    columnsCount = readColumnsHeader(c.columns).count;
  } catch (cause) {
    throw new ValidationError('shard columns: not a valid column blob', { field: 'columns', cause });
  }
  if (columnsCount !== c.count) invalid('columns', `has ${columnsCount} rows for ${c.count}`);
}

function encodeIds(ids: readonly string[]): Uint8Array {
  const { offsets, blob } = encodeUtf8Table(ids);
  const out = new Uint8Array(offsets.byteLength + blob.length);
  out.set(new Uint8Array(offsets.buffer, offsets.byteOffset, offsets.byteLength), 0);
  out.set(blob, offsets.byteLength);
  return out;
}

export function encodeShard(c: ShardContents): Uint8Array {
  assertLittleEndian();
  validateContents(c);
  const bodies: Record<SectionName, Uint8Array> = {
    index: c.index,
    ids: encodeIds(c.ids),
    seqs: new Uint8Array(c.seqs.buffer, c.seqs.byteOffset, c.seqs.byteLength),
    columns: c.columns,
  };
  const crcs = SECTION_NAMES.map((name) => crc32(bodies[name]) >>> 0);

  // Offsets and byteLength live in the header, whose length moves the offsets: iterate
  // until the length is stable (monotonic, so it converges within a few rounds).
  let headerBytes = Buffer.alloc(0);
  let layout: { sections: Record<SectionName, SectionEntry>; byteLength: number } | undefined;
  for (let guess = 0, round = 0; ; round++) {
    if (round > 16) throw new Error('shard header length did not converge');
    let cursor = align8(PREAMBLE + guess);
    const sections = {} as Record<SectionName, SectionEntry>;
    SECTION_NAMES.forEach((name, i) => {
      sections[name] = { offset: cursor, length: bodies[name].length, crc32: crcs[i] };
      cursor = align8(cursor + bodies[name].length);
    });
    const last = sections.columns;
    const byteLength = last.offset + last.length + TRAILER;
    const header = {
      engine: c.engine,
      dim: c.dim,
      metric: c.metric,
      count: c.count,
      byteLength,
      params: c.params,
      ...(c.meta === undefined ? {} : { meta: c.meta }),
      sections,
    };
    headerBytes = Buffer.from(JSON.stringify(header), 'utf8');
    layout = { sections, byteLength };
    if (headerBytes.length === guess) break;
    guess = headerBytes.length;
  }

  const out = new Uint8Array(layout.byteLength);
  const dv = new DataView(out.buffer);
  out.set(MAGIC, 0);
  dv.setUint32(8, SHARD_FORMAT_VERSION, true);
  dv.setUint32(12, headerBytes.length, true);
  dv.setUint32(16, crc32(headerBytes) >>> 0, true);
  out.set(headerBytes, PREAMBLE);
  for (const name of SECTION_NAMES) out.set(bodies[name], layout.sections[name].offset);
  const trailer = layout.byteLength - TRAILER;
  // Computed directly (not combined) so the decoder's combine path is checked against it.
  dv.setUint32(trailer, crc32(out.subarray(0, trailer)) >>> 0, true);
  out.set(END_MAGIC, trailer + 4);
  return out;
}

// ---------------------------------------------------------------------------------------
// Decoding

function corrupt(why: string, cause?: unknown): never {
  throw new CorruptDataError(`shard: ${why}`, cause === undefined ? {} : { cause });
}

const isUint = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

function checkKeys(
  o: Record<string, unknown>,
  required: readonly string[],
  optional: readonly string[],
  what: string,
): void {
  for (const k of required) if (!Object.prototype.hasOwnProperty.call(o, k)) corrupt(`${what} lacks ${k}`);
  for (const k of Object.keys(o)) {
    if (!required.includes(k) && !optional.includes(k)) corrupt(`${what} has unknown key ${k}`);
  }
}

/** Preamble + header, validated. Needs only a prefix of the file. */
function parseHeader(bytes: Uint8Array): ParsedHeader {
  if (bytes.length < PREAMBLE) corrupt(`truncated (${bytes.length} bytes)`);
  for (let i = 0; i < MAGIC.length; i++) if (bytes[i] !== MAGIC[i]) corrupt('not a shard (bad magic)');
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const version = dv.getUint32(8, true);
  if (version !== SHARD_FORMAT_VERSION) {
    throw new UnsupportedFormatError(
      `shard format version ${version} is not supported (expected ${SHARD_FORMAT_VERSION})`,
      {
        details: { version },
      },
    );
  }
  const headerLength = dv.getUint32(12, true);
  if (PREAMBLE + headerLength > bytes.length) corrupt('truncated header');
  const headerBytes = bytes.subarray(PREAMBLE, PREAMBLE + headerLength);
  if (crc32(headerBytes) >>> 0 !== dv.getUint32(16, true)) corrupt('header checksum mismatch');
  if (dv.getUint32(20, true) !== 0) corrupt('reserved preamble field is not zero');
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBytes));
  } catch (cause) {
    corrupt('header is not valid JSON', cause);
  }
  if (!isPlainRecord(raw)) corrupt('header is not an object');
  checkKeys(raw, ['engine', 'dim', 'metric', 'count', 'byteLength', 'params', 'sections'], ['meta'], 'header');
  const { engine, dim, metric, count, byteLength, params, meta, sections } = raw;
  if (!ENGINE_NAMES.includes(engine as EngineName)) corrupt(`unknown engine ${JSON.stringify(engine)}`);
  if (!METRICS.includes(metric as Metric)) corrupt(`unknown metric ${JSON.stringify(metric)}`);
  if (!isUint(dim) || dim === 0) corrupt('header dim is not a positive integer');
  if (!isUint(count) || count === 0 || count > MAX_COUNT) corrupt('header count is not a positive integer');
  if (!isUint(byteLength)) corrupt('header byteLength is not an integer');
  if (!isPlainRecord(params)) corrupt('header params is not an object');
  for (const [k, v] of Object.entries(params)) {
    if (typeof v !== 'number') corrupt(`header params.${k} is not a number`);
  }
  if (meta !== undefined) {
    if (!isPlainRecord(meta)) corrupt('header meta is not an object');
    for (const [k, v] of Object.entries(meta)) {
      if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean')
        corrupt(`header meta.${k} is not a scalar`);
    }
  }
  if (!isPlainRecord(sections)) corrupt('header sections is not an object');
  checkKeys(sections, SECTION_NAMES, [], 'header sections');
  let floor = align8(PREAMBLE + headerLength);
  const table = {} as Record<SectionName, SectionEntry>;
  for (const name of SECTION_NAMES) {
    const s = sections[name];
    if (!isPlainRecord(s)) corrupt(`section ${name} is not an object`);
    checkKeys(s, ['offset', 'length', 'crc32'], [], `section ${name}`);
    const { offset, length, crc32: crc } = s;
    if (!isUint(offset) || !isUint(length) || !isUint(crc) || crc > 0xffffffff)
      corrupt(`section ${name} has bad fields`);
    if (offset % 8 !== 0) corrupt(`section ${name} is not 8-aligned`);
    if (offset < floor) corrupt(`section ${name} overlaps what precedes it`);
    floor = offset + length;
    table[name] = { offset, length, crc32: crc };
  }
  if (floor + TRAILER !== byteLength) corrupt('sections do not end at the trailer');
  const c = count as number;
  if (table.seqs.length !== c * 8) corrupt(`seqs section holds ${table.seqs.length / 8} rows, header says ${c}`);
  if (table.ids.length < (c + 1) * 4) corrupt(`ids section too short for ${c} rows`);
  return {
    engine: engine as EngineName,
    dim: dim as number,
    metric: metric as Metric,
    count: c,
    params: params as EngineParams,
    formatVersion: version,
    byteLength: byteLength as number,
    meta: meta as ShardMeta | undefined,
    sections: table,
  };
}

/**
 * Header fields only, validated against the header CRC. Works on any prefix that
 * contains the header, so callers can read it with a small ranged GET.
 */
export function readShardHeader(bytes: Uint8Array): ShardHeader {
  const { sections: _sections, ...header } = parseHeader(bytes);
  return header;
}

function decodeIds(section: Uint8Array, count: number): string[] {
  const offsets = new Uint32Array(section.buffer, section.byteOffset, count + 1);
  const blob = section.subarray((count + 1) * 4);
  checkOffsets(offsets, blob.length, 'shard ids');
  for (let i = 0; i < count; i++) {
    const len = offsets[i + 1] - offsets[i];
    if (len === 0 || len > MAX_ID_BYTES) corrupt(`id ${i} has length ${len}`);
  }
  return decodeUtf8Table(offsets, blob, 'shard ids');
}

/**
 * Validates and decodes a shard. The index, seqs and columns are views into `bytes`
 * (no copy), except that a misaligned input is copied once, because engines and
 * the seqs view need 8-aligned typed-array views. Throws CorruptDataError or
 * UnsupportedFormatError rather than ever returning unverified content.
 */
export function decodeShard(input: Uint8Array): ShardContents {
  assertLittleEndian();
  // Buffers from the S3 SDK and Buffer.concat start 8-aligned; odd slices are rare.
  const bytes = input.byteOffset % 8 === 0 ? input : input.slice();
  if (bytes.length < PREAMBLE + TRAILER) corrupt(`truncated (${bytes.length} bytes)`);
  const h = parseHeader(bytes);
  if (bytes.length < h.byteLength) corrupt(`truncated (${bytes.length} of ${h.byteLength} bytes)`);
  if (bytes.length > h.byteLength) corrupt(`${bytes.length - h.byteLength} unexpected bytes after the end`);
  const trailer = h.byteLength - TRAILER;
  for (let i = 0; i < END_MAGIC.length; i++) {
    if (bytes[trailer + 4 + i] !== END_MAGIC[i]) corrupt('missing end magic (truncated?)');
  }

  // One pass: CRC each section, check it, and fold it into the whole-file CRC together
  // with the CRCs of the gaps (preamble, header, padding).
  let fileCrc = 0;
  let pos = 0;
  const body = {} as Record<SectionName, Uint8Array>;
  for (const name of SECTION_NAMES) {
    const { offset, length, crc32: expected } = h.sections[name];
    fileCrc = crc32(bytes.subarray(pos, offset), fileCrc) >>> 0;
    const section = bytes.subarray(offset, offset + length);
    const actual = crc32(section) >>> 0;
    if (actual !== expected) corrupt(`section ${name} checksum mismatch`);
    fileCrc = crc32Combine(fileCrc, actual, length);
    body[name] = section;
    pos = offset + length;
  }
  fileCrc = crc32(bytes.subarray(pos, trailer), fileCrc) >>> 0;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  if (fileCrc !== dv.getUint32(trailer, true)) corrupt('file checksum mismatch');

  const count = h.count;
  const ids = decodeIds(body.ids, count);
  const seqs = new Float64Array(bytes.buffer, bytes.byteOffset + h.sections.seqs.offset, count);
  for (let i = 0; i < count; i++) {
    const s = seqs[i];
    if (!Number.isInteger(s) || s < 0 || s > MAX_SEQ) corrupt(`seq of row ${i} is not an integer in 0..2^53`);
  }
  let columnsCount: number;
  try {
    columnsCount = readColumnsHeader(body.columns).count;
  } catch (cause) {
    corrupt('columns section is invalid', cause);
  }
  if (columnsCount !== count) corrupt(`columns hold ${columnsCount} rows, header says ${count}`);

  const out: ShardContents = {
    engine: h.engine,
    dim: h.dim,
    metric: h.metric,
    count,
    params: h.params,
    index: body.index,
    ids,
    seqs,
    columns: body.columns,
  };
  if (h.meta !== undefined) out.meta = h.meta;
  return out;
}
