/**
 * `importFile`: a local file into a collection through the bulk-import pipeline (docs/imports.md) — ask for
 * a presigned upload under the import prefix, PUT the bytes straight to S3 (they never pass through the
 * API's 6 MB limit), start the job for that object, and follow it to the end.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Transform } from 'node:stream';
import { ShoalApiError, ShoalTimeoutError } from './errors.js';
import type { FetchLike } from './http.js';
import { sleep } from './retry.js';
import type { CreateImportInput, ImportJob, ImportState, ImportUpload, UploadRequestInput } from './types.js';

export const TERMINAL_IMPORT_STATES: readonly ImportState[] = ['succeeded', 'partial', 'failed', 'cancelled'];

/** What `importFile` needs of a collection handle. */
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

const CONTENT_TYPES: Record<string, string> = {
  '.jsonl': 'application/x-ndjson',
  '.csv': 'text/csv',
  '.gz': 'application/gzip',
  '.parquet': 'application/vnd.apache.parquet',
  '.npy': 'application/octet-stream',
};

/** Uploads `filePath`, starts its import and resolves to the job once it has ended (any final state; see `follow`). */
export async function importFile(
  target: ImportTarget,
  filePath: string,
  options: ImportFileOptions = {},
): Promise<ImportJob> {
  const { size } = await stat(filePath);
  const filename = options.filename ?? path.basename(filePath);
  const contentType = options.contentType ?? CONTENT_TYPES[path.extname(filename).toLowerCase()];
  const upload = await target.imports.requestUpload(contentType ? { filename, contentType } : { filename });
  await putFile(target.uploadFetch, upload, filePath, size, options);

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

async function putFile(
  fetchImpl: FetchLike,
  upload: ImportUpload,
  filePath: string,
  size: number,
  options: ImportFileOptions,
): Promise<void> {
  let sent = 0;
  options.onProgress?.({ phase: 'upload', bytesSent: 0, bytesTotal: size });
  const counter = new Transform({
    transform(chunk: Buffer, _enc, done) {
      sent += chunk.length;
      options.onProgress?.({ phase: 'upload', bytesSent: sent, bytesTotal: size });
      done(null, chunk);
    },
  });
  const stream = createReadStream(filePath).pipe(counter);
  // S3 refuses chunked uploads to a presigned PUT: the length is sent up front and the body streamed.
  const response = await fetchImpl(upload.uploadUrl, {
    method: upload.method ?? 'PUT',
    headers: { ...upload.headers, 'content-length': String(size) },
    body: Readable.toWeb(stream) as ReadableStream<Uint8Array>,
    duplex: 'half',
    signal: options.signal,
  } as RequestInit);
  if (!response.ok) {
    const text = await response.text();
    throw new ShoalApiError({
      status: response.status,
      code: 'UPLOAD_FAILED',
      message: `PUT of ${filePath} to the presigned URL answered ${response.status}: ${text.slice(0, 300)}`,
      method: 'PUT',
      path: new URL(upload.uploadUrl).pathname,
    });
  }
  await response.arrayBuffer().catch(() => undefined);
}
