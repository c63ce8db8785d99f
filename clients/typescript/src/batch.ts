/**
 * Upserting more rows than one request holds: batches bounded by rows (the API's 1 000) and by bytes
 * (API Gateway's 6 MB body limit), each row serialized once so the body size is known before sending.
 */
import type { UpsertResult, VectorInput } from './types.js';

/** API Gateway refuses bodies over 6 MB; the margin covers the envelope and a `modelVersion`. */
export const MAX_BODY_BYTES = 6 * 1024 * 1024 - 4096;
export const MAX_BATCH_ROWS = 1000;

// TextEncoder, not Buffer: the SDK also runs in browsers (the console bundles it).
const utf8 = new TextEncoder();

/**
 * One vector as JSON. Float32Array values are written with 9 significant digits, which round-trip
 * every float32 exactly and are about half the length of the doubles `Array.from` would print.
 */
export function vectorJson(v: VectorInput): string {
  const values =
    v.values instanceof Float32Array
      ? `[${Array.from(v.values, (x) => String(Number(x.toPrecision(9)))).join(',')}]`
      : JSON.stringify(Array.from(v.values));
  const id = JSON.stringify(v.id);
  return v.metadata === undefined
    ? `{"id":${id},"values":${values}}`
    : `{"id":${id},"values":${values},"metadata":${JSON.stringify(v.metadata)}}`;
}

export interface UpsertAllOptions {
  /** Rows per request, 1–1000 (default 500). */
  batchSize?: number;
  /** Body bytes per request (default just under 6 MB). */
  maxBytes?: number;
  /** Requests in flight at once (default 2: the next batch is sent while one is in flight). */
  concurrency?: number;
  /** Called after each acknowledged batch with the running total. */
  onProgress?: (progress: { rows: number; batches: number; bytes: number }) => void;
}

/** Sends `body` (a complete upsert request, `rows` vectors) and resolves to the API's answer. */
export type SendBatch = (body: string, rows: number) => Promise<UpsertResult>;

/** Upserts every row of `rows` in batches; resolves to the total upserted. */
export async function upsertAll(
  send: SendBatch,
  rows: Iterable<VectorInput> | AsyncIterable<VectorInput>,
  options: UpsertAllOptions = {},
): Promise<UpsertResult & { batches: number }> {
  const batchSize = options.batchSize ?? 500;
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > MAX_BATCH_ROWS) {
    throw new RangeError(`batchSize must be an integer in [1, ${MAX_BATCH_ROWS}], got ${batchSize}`);
  }
  const maxBytes = options.maxBytes ?? MAX_BODY_BYTES;
  const concurrency = Math.max(1, options.concurrency ?? 2);
  const inFlight = new Set<Promise<void>>();
  let failure: unknown;
  let upserted = 0;
  let batches = 0;
  let bytes = 0;

  const flush = async (parts: string[], size: number): Promise<void> => {
    while (inFlight.size >= concurrency) await Promise.race(inFlight);
    if (failure !== undefined) throw failure;
    const body = `{"vectors":[${parts.join(',')}]}`;
    const p = send(body, parts.length).then(
      (r) => {
        upserted += r.upserted;
        batches++;
        bytes += size;
        options.onProgress?.({ rows: upserted, batches, bytes });
      },
      (err: unknown) => {
        failure ??= err;
      },
    );
    const tracked = p.finally(() => inFlight.delete(tracked));
    inFlight.add(tracked);
  };

  let parts: string[] = [];
  let size = 16;
  try {
    await fillAndSend();
  } catch (err) {
    // The batches already sent still land (or fail) before the caller hears of the bad row.
    await Promise.allSettled(inFlight);
    throw err;
  }
  await Promise.all(inFlight);
  if (failure !== undefined) throw failure;
  return { upserted, batches };

  async function fillAndSend(): Promise<void> {
    for await (const row of rows) {
      const json = vectorJson(row);
      const rowBytes = utf8.encode(json).byteLength + 1;
      if (rowBytes + 16 > maxBytes) {
        throw new RangeError(
          `row ${JSON.stringify(row.id)} alone is ${rowBytes} bytes, over the ${maxBytes}-byte body`,
        );
      }
      if (parts.length > 0 && (parts.length >= batchSize || size + rowBytes > maxBytes)) {
        await flush(parts, size);
        parts = [];
        size = 16;
      }
      parts.push(json);
      size += rowBytes;
    }
    if (parts.length > 0) await flush(parts, size);
  }
}
