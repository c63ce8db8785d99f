/**
 * Raw model inputs kept beside the vectors they produced (docs/models.md): one S3 object per upsert
 * batch, content-addressed, so a later model version can re-embed the collection (migrations) without
 * the user sending the data again. A record names its row as `<sha256>/<row>`.
 *
 * Object layout (little-endian): magic `SHRI`, u32 format (1: tensors, 2: text), u32 rows, then for
 * format 1 u32 values per row and rows × values float32; for format 2 u32 0 and per row a u32 byte
 * length and that many bytes of UTF-8. One object per batch rather than per row: a 1,000-row batch is one PUT
 * (S3 charges per request; a migration reads a batch's rows with one GET), at the price of keeping a
 * batch's bytes alive while any of its rows is (collected with the collection's generation).
 */
import { createHash } from 'node:crypto';
import { CorruptDataError, NotFoundError } from '../errors.js';
import { inputsKey } from '../storage/keys.js';
import type { RawInput } from '../service.js';
import type { ObjectStore } from '../storage/types.js';

const MAGIC = 0x49524853; // 'SHRI' read as a little-endian u32
const FORMAT = 1;
const TEXT_FORMAT = 2;
const HEADER = 16;

function encodeText(rows: string[]): Uint8Array {
  const encoded = rows.map((r) => new TextEncoder().encode(r));
  const out = new Uint8Array(HEADER + encoded.reduce((n, b) => n + 4 + b.length, 0));
  const view = new DataView(out.buffer);
  view.setUint32(0, MAGIC, true);
  view.setUint32(4, TEXT_FORMAT, true);
  view.setUint32(8, rows.length, true);
  let at = HEADER;
  for (const b of encoded) {
    view.setUint32(at, b.length, true);
    out.set(b, at + 4);
    at += 4 + b.length;
  }
  return out;
}

function decodeText(bytes: Uint8Array, view: DataView, where: string): string[] {
  const rows = view.getUint32(8, true);
  const out: string[] = [];
  let at = HEADER;
  const decoder = new TextDecoder('utf-8', { fatal: true });
  for (let r = 0; r < rows; r++) {
    if (at + 4 > bytes.byteLength) throw new CorruptDataError(`raw-input object ${where} is cut short`);
    const n = view.getUint32(at, true);
    if (at + 4 + n > bytes.byteLength) throw new CorruptDataError(`raw-input object ${where} is cut short`);
    out.push(decoder.decode(bytes.subarray(at + 4, at + 4 + n)));
    at += 4 + n;
  }
  return out;
}

export function encodeInputs(rows: RawInput[], length: number): Uint8Array {
  if (rows.length && typeof rows[0] === 'string') {
    if (!rows.every((r) => typeof r === 'string')) throw new Error('a batch mixes text and tensor inputs');
    return encodeText(rows as string[]);
  }
  const out = new Uint8Array(HEADER + rows.length * length * 4);
  const view = new DataView(out.buffer);
  view.setUint32(0, MAGIC, true);
  view.setUint32(4, FORMAT, true);
  view.setUint32(8, rows.length, true);
  view.setUint32(12, length, true);
  let at = HEADER;
  for (const row of rows) {
    if (typeof row === 'string' || row.length !== length) throw new Error(`a bad input row in a batch of ${length}`);
    for (let i = 0; i < length; i++, at += 4) view.setFloat32(at, row[i]!, true);
  }
  return out;
}

export function decodeInputs(bytes: Uint8Array, where: string): RawInput[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const format = bytes.byteLength >= HEADER ? view.getUint32(4, true) : 0;
  if (bytes.byteLength < HEADER || view.getUint32(0, true) !== MAGIC || (format !== FORMAT && format !== TEXT_FORMAT)) {
    throw new CorruptDataError(`raw-input object ${where} has no SHRI header`);
  }
  if (format === TEXT_FORMAT) return decodeText(bytes, view, where);
  const rows = view.getUint32(8, true);
  const length = view.getUint32(12, true);
  if (bytes.byteLength !== HEADER + rows * length * 4) {
    throw new CorruptDataError(`raw-input object ${where}: ${bytes.byteLength} bytes for ${rows} × ${length}`);
  }
  const out: Float32Array[] = [];
  for (let r = 0; r < rows; r++) {
    const row = new Float32Array(length);
    for (let i = 0; i < length; i++) row[i] = view.getFloat32(HEADER + (r * length + i) * 4, true);
    out.push(row);
  }
  return out;
}

/** Writes a batch's raw inputs (once: content-addressed) and returns each row's reference. */
export async function storeInputs(
  objects: ObjectStore,
  ck: string,
  rows: RawInput[],
  length: number,
): Promise<string[]> {
  const bytes = encodeInputs(rows, length);
  const hash = createHash('sha256').update(bytes).digest('hex');
  await objects.putImmutable(inputsKey(ck, hash), bytes);
  return rows.map((_, i) => `${hash}/${i}`);
}

const REF = /^([0-9a-f]{64})\/(\d+)$/;

export function parseInputRef(ref: string): { hash: string; row: number } | undefined {
  const m = REF.exec(ref);
  return m ? { hash: m[1]!, row: Number(m[2]) } : undefined;
}

/**
 * Reads raw inputs by reference, one GET per distinct object (rows of one batch travel together).
 * Returns undefined for a reference that cannot be resolved (malformed, object or row missing), so a
 * migration can report the row instead of failing the whole batch.
 */
export async function loadInputs(
  objects: ObjectStore,
  ck: string,
  refs: string[],
): Promise<Array<RawInput | undefined>> {
  const parsed = refs.map(parseInputRef);
  const hashes = [...new Set(parsed.flatMap((p) => (p ? [p.hash] : [])))];
  const decoded = new Map<string, RawInput[] | undefined>();
  await Promise.all(
    hashes.map(async (hash) => {
      try {
        decoded.set(hash, decodeInputs(await objects.get(inputsKey(ck, hash)), hash));
      } catch (err) {
        // Gone or damaged: those rows are reported; anything else (throttling, network) is retried.
        if (!(err instanceof NotFoundError || err instanceof CorruptDataError)) throw err;
        decoded.set(hash, undefined);
      }
    }),
  );
  return parsed.map((p) => (p ? decoded.get(p.hash)?.[p.row] : undefined));
}
