/**
 * Reject reports. S3 objects are immutable (docs/architecture.md §3.2), so each invocation writes its rejects as
 * one part object per checkpoint, `reports/imports/<jobId>/<fromRow>-<token>.jsonl`, under a key no
 * other invocation uses; only parts named in the job item (committed with the checkpoint) count.
 * When the job ends with rejects, the committed parts are concatenated, in order, into
 * `reports/imports/<jobId>.jsonl`. Orphan parts of a crashed invocation are never read.
 *
 * Each line: `{"line": 17, "id": "doc-9", "code": "WRONG_DIMENSION", "reason": "..."}` (`line`
 * for text formats, 1-based; `row` for Parquet and .npy, 0-based). At most
 * `MAX_REPORTED_REJECTS` lines are kept per job; `rowsRejected` still counts every reject.
 */
import { CorruptDataError } from '../errors.js';
import type { ObjectStore } from '../storage/types.js';
import type { ImportFormat, ImportRow } from './types.js';
import { importReportKey } from '../storage/keys.js';

export const MAX_REPORTED_REJECTS = 100_000;

export interface RejectEntry {
  line?: number;
  row?: number;
  id?: string;
  code: string;
  reason: string;
}

export function isTextFormat(format: ImportFormat): boolean {
  return format !== 'parquet' && format !== 'npy';
}

export function rejectEntry(format: ImportFormat, row: ImportRow): RejectEntry {
  const where = isTextFormat(format) ? { line: row.rowNumber } : { row: row.rowNumber };
  return {
    ...where,
    ...(row.id !== undefined ? { id: row.id } : {}),
    code: row.error?.code ?? 'BAD_ROW',
    reason: row.error?.message ?? 'rejected',
  };
}

function encode(entries: RejectEntry[]): Uint8Array {
  return new TextEncoder().encode(entries.map((e) => JSON.stringify(e)).join('\n') + '\n');
}

export async function writePart(objects: ObjectStore, key: string, entries: RejectEntry[]): Promise<void> {
  await objects.putImmutable(key, encode(entries));
}

/** Concatenates the committed parts into the final report; returns its key. */
export async function assembleReport(objects: ObjectStore, jobId: string, parts: string[]): Promise<string> {
  const bodies = await Promise.all(parts.map((p) => objects.get(p)));
  const total = bodies.reduce((s, b) => s + b.byteLength, 0);
  const out = new Uint8Array(total);
  let at = 0;
  for (const b of bodies) {
    out.set(b, at);
    at += b.byteLength;
  }
  const key = importReportKey(jobId);
  await objects.putImmutable(key, out);
  return key;
}

/** Reads a report (or part) back as entries (tests, tools, the rejects route). */
export function parseReport(bytes: Uint8Array): RejectEntry[] {
  return new TextDecoder()
    .decode(bytes)
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      try {
        return JSON.parse(l) as RejectEntry;
      } catch (err) {
        throw new CorruptDataError('a reject report line is not JSON', { cause: err });
      }
    });
}

/** Where a paged read of a report stands: the next entry is line `line` (0-based) of part `part`. */
export interface ReportPosition {
  part: number;
  line: number;
}

/**
 * Report parts read by one page at most: a job with many small parts (a reject or two per checkpoint)
 * then gives a short page and a cursor rather than one GET per reject.
 */
export const REPORT_PARTS_PER_PAGE = 16;

/**
 * Up to `limit` entries of the report made of `parts` (in order), from `from`; `next` is the position after
 * the last one returned (`part === parts.length` once every part was read).
 */
export async function readReportPage(
  objects: ObjectStore,
  parts: readonly string[],
  from: ReportPosition,
  limit: number,
): Promise<{ rejects: RejectEntry[]; next: ReportPosition }> {
  const rejects: RejectEntry[] = [];
  let { part, line } = from;
  for (let read = 0; part < parts.length && rejects.length < limit && read < REPORT_PARTS_PER_PAGE; read++) {
    const entries = parseReport(await objects.get(parts[part]));
    const take = entries.slice(line, line + (limit - rejects.length));
    rejects.push(...take);
    line += take.length;
    if (line >= entries.length) {
      part++;
      line = 0;
    }
  }
  return { rejects, next: { part, line } };
}
