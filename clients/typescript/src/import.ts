/**
 * Importing bytes into a collection through the bulk-import pipeline (docs/imports.md): ask for a presigned
 * upload under the import prefix, PUT the bytes straight to S3 (they never pass through the API's 6 MB limit),
 * start the job for that object, and follow it to the end. Browser-safe: the bytes come as a Blob, a
 * Uint8Array or a sized stream; reading a local file by path is `importFile` of `@shoal/client/node`.
 */
import { ShoalApiError, ShoalTimeoutError } from './errors.js';
import type { FetchLike } from './http.js';
import { sleep } from './retry.js';
import type { CreateImportInput, ImportJob, ImportState, ImportUpload, UploadRequestInput } from './types.js';

export const TERMINAL_IMPORT_STATES: readonly ImportState[] = ['succeeded', 'partial', 'failed', 'cancelled'];

/** What `importData` and `importFile` need of a collection handle. */
export interface ImportTarget {
  readonly name: string;
  readonly imports: {
    requestUpload(input: UploadRequestInput): Promise<ImportUpload>;
    create(input: CreateImportInput): Promise<ImportJob>;
    get(jobId: string): Promise<ImportJob>;
  };
  /** The fetch that PUTs to the presigned URL (no API key goes there). */
  readonly uploadFetch: FetchLike;
}

export type ImportProgress =
  | { phase: 'upload'; bytesSent: number; bytesTotal: number }
  | { phase: 'import'; job: ImportJob };

export interface ImportFileOptions extends Omit<CreateImportInput, 'uri'> {
  /** The object's name under the import prefix (default: the file's base name; its extension picks the format). */
  filename?: string;
  contentType?: string;
  onProgress?: (progress: ImportProgress) => void;
  /** false: resolve to the job as soon as it is started (default true: follow it to its end). */
  follow?: boolean;
  /** Job poll period, default 1 000 ms. */
  pollMs?: number;
  /** Give up following the job after this long (default 6 h, the server's own default limit). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/**
 * The bytes to import. A stream needs its size: S3 refuses chunked uploads to a presigned PUT, so the length
 * is sent up front (streaming request bodies need Node's fetch; browsers take a Blob or a Uint8Array).
 */
export type ImportSource = Blob | Uint8Array | { stream: ReadableStream<Uint8Array>; size: number };

const CONTENT_TYPES: Record<string, string> = {
  '.jsonl': 'application/x-ndjson',
  '.csv': 'text/csv',
  '.gz': 'application/gzip',
  '.parquet': 'application/vnd.apache.parquet',
  '.npy': 'application/octet-stream',
};

const extension = (filename: string): string => /\.[^./]*$/.exec(filename)?.[0].toLowerCase() ?? '';

/**
 * Uploads `source` as `options.filename` (its extension picks the format), starts its import and resolves to
 * the job once it has ended (any final state; see `follow`).
 */
export async function importData(
  target: ImportTarget,
  source: ImportSource,
  options: ImportFileOptions & { filename: string },
): Promise<ImportJob> {
  const { filename } = options;
  const contentType = options.contentType ?? CONTENT_TYPES[extension(filename)];
  const upload = await target.imports.requestUpload(contentType ? { filename, contentType } : { filename });
  await putBytes(target.uploadFetch, upload, source, options);

  const { maxRows, maxDurationSeconds, maxRejectRatio } = options;
  const job = await target.imports.create({ uri: upload.uri, maxRows, maxDurationSeconds, maxRejectRatio });
  if (options.follow === false) return job;
  return followImport(target, job.jobId, { ...options, first: job });
}

/** Polls a job until it ends, reporting each state; resolves to the final job. */
export async function followImport(
  target: Pick<ImportTarget, 'name' | 'imports'>,
  jobId: string,
  options: Pick<ImportFileOptions, 'onProgress' | 'pollMs' | 'timeoutMs' | 'signal'> & { first?: ImportJob } = {},
): Promise<ImportJob> {
  const pollMs = options.pollMs ?? 1000;
  const timeoutMs = options.timeoutMs ?? 6 * 3600_000;
  const started = Date.now();
  let job = options.first ?? (await target.imports.get(jobId));
  for (;;) {
    options.onProgress?.({ phase: 'import', job });
    if (TERMINAL_IMPORT_STATES.includes(job.state)) return job;
    if (Date.now() - started + pollMs > timeoutMs) {
      throw new ShoalTimeoutError(`import ${jobId} into ${target.name} still ${job.state} after ${timeoutMs} ms`);
    }
    await sleep(pollMs, options.signal);
    job = await target.imports.get(jobId);
  }
}

async function putBytes(
  fetchImpl: FetchLike,
  upload: ImportUpload,
  source: ImportSource,
  options: ImportFileOptions & { filename: string },
): Promise<void> {
  const progress = (bytesSent: number, bytesTotal: number) =>
    options.onProgress?.({ phase: 'upload', bytesSent, bytesTotal });
  let init: RequestInit;
  let size: number;
  const whole = source instanceof Blob || source instanceof Uint8Array;
  if (whole) {
    // fetch sets the length itself (browsers refuse a content-length header); no progress mid-body then.
    size = source instanceof Blob ? source.size : source.byteLength;
    // TypeScript's BodyInit takes only ArrayBuffer-backed views; a SharedArrayBuffer-backed one is the caller's risk.
    const body = source as Blob | Uint8Array<ArrayBuffer>;
    init = { method: upload.method, headers: upload.headers, body, signal: options.signal };
  } else {
    size = source.size;
    let sent = 0;
    const counter = new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        sent += chunk.byteLength;
        progress(sent, size);
        controller.enqueue(chunk);
      },
    });
    init = {
      method: upload.method,
      headers: { ...upload.headers, 'content-length': String(size) },
      body: source.stream.pipeThrough(counter),
      duplex: 'half',
      signal: options.signal,
    } as RequestInit;
  }
  progress(0, size);
  const response = await fetchImpl(upload.uploadUrl, init);
  if (!response.ok) {
    const text = await response.text();
    throw new ShoalApiError({
      status: response.status,
      code: 'UPLOAD_FAILED',
      message: `PUT of ${options.filename} to the presigned URL answered ${response.status}: ${text.slice(0, 300)}`,
      method: 'PUT',
      path: new URL(upload.uploadUrl).pathname,
    });
  }
  await response.arrayBuffer().catch(() => undefined);
  if (whole) progress(size, size);
}
