/**
 * The import side of Shoal: jobs from S3 events and from the API, job listing, and the queue
 * message handling the `import` function delegates to (docs/imports.md).
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { ConfigError, ConflictError, NotFoundError, ValidationError } from '../errors.js';
import { logger } from '../log.js';
import { detectFormat, isSidecar, sidecarKeys } from './formats/index.js';
import {
  DEFAULT_IMPORT_LIMITS,
  TERMINAL_STATES,
  jobIdFor,
  toView,
  type ImportJob,
  type ImportJobView,
  type ImportLimits,
  newImportJob,
} from './job.js';
import { runImportJob, type ImportDeps, type ImportJobMessage, type RunOutcome } from './runner.js';
import { headObject, S3Source } from './s3-source.js';
import { sweepDecision, sweepImports, type SweepResult } from './sweeper.js';
import { collectionOfImportKey, importUploadKey } from '../storage/keys.js';
import { decodeCursor, encodeCursor } from '../storage/cursor.js';
import { presignPutObject } from '../storage/s3-objects.js';
import { MAX_REPORTED_REJECTS, readReportPage, type RejectEntry, type ReportPosition } from './report.js';
import { IMPORT_UPLOAD_URL_TTL_S, checkUploadFilename, uploadFolder } from './uploads.js';

/** What the HTTP API needs. */
export interface ImportApi {
  /**
   * The job for the object (created once). An existing job that is stuck — queued or running with no
   * live lease — is re-announced (`resumed`): it continues from its checkpoint.
   */
  createImport(
    collection: string,
    uri: string,
    limits?: Partial<ImportLimits>,
  ): Promise<{ job: ImportJobView; created: boolean; resumed: boolean }>;
  listImports(collection: string): Promise<ImportJobView[]>;
  getImport(collection: string, jobId: string): Promise<ImportJobView>;
  /** Ends a queued or running job as `cancelled`; ConflictError when it already ended, NotFoundError when unknown. */
  cancelImport(collection: string, jobId: string): Promise<ImportJobView>;
  /** A page of the job's rejects, from its committed report parts (finished and running jobs alike). */
  listRejects(collection: string, jobId: string, page: { limit: number; cursor?: string }): Promise<RejectsPage>;
  /** A presigned PUT URL for a new file in the collection's drop folder. */
  requestUpload(collection: string, input: { filename: string; contentType?: string }): Promise<ImportUpload>;
}

/** `GET …/imports/{jobId}/rejects`: one page of the job's reject report. */
export interface RejectsPage {
  /** The entries exactly as the report stores them. */
  rejects: RejectEntry[];
  /** Null once the job has ended and every reported reject was returned. */
  nextCursor: string | null;
  /** Every reject of the job (committed so far, for a running job). */
  rowsRejected: number;
  /** How many of them the report holds (the first MAX_REPORTED_REJECTS). */
  reported: number;
}

/** `POST …/imports/uploads`: a presigned PUT into the collection's drop folder. */
export interface ImportUpload {
  uploadUrl: string;
  method: 'PUT';
  /** Headers the PUT must send (the signed `content-type`, when one was asked for). */
  headers: Record<string, string>;
  /** What to pass to `POST …/imports` once the PUT succeeded. */
  uri: string;
  expiresAt: string;
}

/** An object under `imports/<collection>/` named in an S3 event notification. */
export interface S3ObjectRef {
  bucket: string;
  /** Decoded key. */
  key: string;
  etag: string;
  size: number;
}

/** `s3://bucket/key` → parts (ValidationError otherwise). */
export function parseS3Uri(uri: string): { bucket: string; key: string } {
  const m = /^s3:\/\/([^/]+)\/(.+)$/.exec(uri);
  if (!m) throw new ValidationError('uri must look like s3://bucket/key', { field: 'uri' });
  return { bucket: m[1], key: m[2] };
}

export interface ImportServiceDeps extends Omit<ImportDeps, 'openSource' | 'findSidecar' | 'enqueue'> {
  s3: S3Client;
  /** Shoal's bucket. */
  bucket: string;
  /** Undefined: explicit imports are refused (the import queue is not configured). */
  enqueue?: ImportDeps['enqueue'];
  /** The sweeper's quiet period for jobs without a lease (default `DEFAULT_SWEEP_STALE_MS`). */
  sweepStaleMs?: number;
}

export class ImportService implements ImportApi {
  private readonly deps: ImportDeps;

  constructor(private readonly sdeps: ImportServiceDeps) {
    const s3 = sdeps.s3;
    this.deps = {
      ...sdeps,
      openSource: async (job) => new S3Source(s3, job.bucket, job.key, job.size, job.etag),
      findSidecar: async (job) => {
        for (const c of sidecarKeys(job.key)) {
          try {
            const h = await headObject(s3, job.bucket, c.key);
            return { source: new S3Source(s3, job.bucket, c.key, h.size, h.etag), kind: c.kind };
          } catch (err) {
            if (!(err instanceof NotFoundError)) throw err;
          }
        }
        return undefined;
      },
      enqueue: async (m, options) => {
        if (!sdeps.enqueue) throw new ConfigError('the import queue is not configured (SHOAL_IMPORT_QUEUE_URL)');
        await sdeps.enqueue(m, options);
      },
    };
  }

  private now(): number {
    return (this.sdeps.now ?? Date.now)();
  }

  /** The configured defaults, overridden by the request's fields. */
  private limitsFor(requested?: Partial<ImportLimits>): ImportLimits {
    const set = Object.entries(requested ?? {}).filter(([, v]) => v !== undefined);
    return { ...DEFAULT_IMPORT_LIMITS, ...this.sdeps.limits, ...Object.fromEntries(set) };
  }

  private view(job: ImportJob): ImportJobView {
    return toView(job, undefined, this.limitsFor());
  }

  /**
   * Creates (or finds) the job for an object; a job for an unsupported extension is created failed.
   * Limits are fixed at creation (an existing job keeps its own).
   */
  async jobFor(
    collection: string,
    obj: S3ObjectRef,
    limits?: Partial<ImportLimits>,
  ): Promise<{ job: ImportJob; created: boolean }> {
    const meta = await this.sdeps.catalog.getCollection(collection);
    const format = detectFormat(obj.key);
    const base = { collection, generation: meta.generation, bucket: obj.bucket, key: obj.key, etag: obj.etag };
    const job = newImportJob(base, {
      size: obj.size,
      ...(format ? { format } : {}),
      createdAt: this.now(),
      limits: this.limitsFor(limits),
    });
    const out = await this.sdeps.jobs.create(job);
    if (out.created && !format) {
      await this.sdeps.jobs.finish(
        collection,
        job.jobId,
        undefined,
        {
          state: 'failed',
          reason: 'UNSUPPORTED_FILE',
          error: `unsupported file type: ${obj.key} (supported: .jsonl, .jsonl.gz, .csv, .csv.gz, .parquet, .npy)`,
        },
        this.now(),
      );
      return { job: (await this.sdeps.jobs.get(collection, job.jobId)) ?? job, created: true };
    }
    return out;
  }

  async createImport(
    collection: string,
    uri: string,
    limits?: Partial<ImportLimits>,
  ): Promise<{ job: ImportJobView; created: boolean; resumed: boolean }> {
    const { bucket, key } = parseS3Uri(uri);
    await this.sdeps.catalog.getCollection(collection);
    if (isSidecar(key))
      throw new ValidationError(`${key} is an ids sidecar of an .npy file; import the .npy file`, { field: 'uri' });
    if (!this.sdeps.enqueue) throw new ConfigError('the import queue is not configured (SHOAL_IMPORT_QUEUE_URL)');
    const head = await headObject(this.sdeps.s3, bucket, key);
    const { job, created } = await this.jobFor(collection, { bucket, key, etag: head.etag, size: head.size }, limits);
    const message = { type: 'import', collection, jobId: job.jobId } as const;
    if (created) {
      if (job.state === 'queued') await this.deps.enqueue(message);
      return { job: this.view(job), created, resumed: false };
    }
    // An existing job with no live lease (never claimed, or its continuation lost) is re-announced:
    // a lost send from an earlier request or a crashed invocation cannot strand it. The requeue is
    // conditional on the heartbeat read here, so racing requests (and sweepers) send one message.
    const t = this.now();
    if (
      sweepDecision(job, t, 0).action === 'requeue' &&
      (await this.sdeps.jobs.requeue(collection, job.jobId, job.heartbeatAt, t))
    ) {
      await this.deps.enqueue(message);
      const now = await this.sdeps.jobs.get(collection, job.jobId);
      logger.info('import job resumed by a re-POST', { collection, job: job.jobId, state: job.state });
      return { job: this.view(now ?? job), created, resumed: true };
    }
    return { job: this.view(job), created, resumed: false };
  }

  async listImports(collection: string): Promise<ImportJobView[]> {
    const meta = await this.sdeps.catalog.getCollection(collection);
    return (await this.sdeps.jobs.list(collection))
      .filter((j) => j.generation === meta.generation)
      .map((j) => this.view(j));
  }

  private notFound(collection: string, jobId: string): NotFoundError {
    return new NotFoundError(
      `import job ${JSON.stringify(jobId)} not found in collection ${JSON.stringify(collection)}`,
      { field: 'jobId' },
    );
  }

  async getImport(collection: string, jobId: string): Promise<ImportJobView> {
    await this.sdeps.catalog.getCollection(collection);
    const job = /^[0-9a-f]{24}$/.test(jobId) ? await this.sdeps.jobs.get(collection, jobId) : undefined;
    if (!job) throw this.notFound(collection, jobId);
    return this.view(job);
  }

  /**
   * Cancels a queued or running job. A running invocation notices before its next batch (or its
   * next checkpoint) and stops; rows it wrote stay.
   */
  async cancelImport(collection: string, jobId: string): Promise<ImportJobView> {
    await this.sdeps.catalog.getCollection(collection);
    if (!/^[0-9a-f]{24}$/.test(jobId)) throw this.notFound(collection, jobId);
    const out = await this.sdeps.jobs.cancel(collection, jobId, this.now());
    if (out.outcome === 'missing') throw this.notFound(collection, jobId);
    if (out.outcome === 'ended') {
      throw new ConflictError(
        `import job ${JSON.stringify(jobId)} already ended (${out.job.state}); ` +
          'only queued or running jobs can be cancelled',
        { field: 'jobId' },
      );
    }
    logger.info('import job cancelled', { collection, job: jobId, rows: out.job.rowsWritten });
    return this.view(out.job);
  }

  async listRejects(collection: string, jobId: string, page: { limit: number; cursor?: string }): Promise<RejectsPage> {
    await this.sdeps.catalog.getCollection(collection);
    const job = /^[0-9a-f]{24}$/.test(jobId) ? await this.sdeps.jobs.get(collection, jobId) : undefined;
    if (!job) throw this.notFound(collection, jobId);
    // The committed parts, not the assembled report: the same entries in the same order, readable while the
    // job runs, and a page reads only the parts it needs.
    const parts = job.reportParts.length ? job.reportParts : job.report ? [job.report] : [];
    const scope = `rejects:${collection}:${jobId}`;
    const from = page.cursor === undefined ? { part: 0, line: 0 } : rejectsPosition(scope, page.cursor, parts.length);
    const { rejects, next } = await readReportPage(this.sdeps.objects, parts, from, page.limit);
    const done = next.part >= parts.length && TERMINAL_STATES.includes(job.state);
    return {
      rejects,
      nextCursor: done ? null : encodeCursor(scope, { p: next.part, l: next.line }),
      rowsRejected: job.rowsRejected,
      reported: Math.min(job.rowsRejected, MAX_REPORTED_REJECTS),
    };
  }

  async requestUpload(collection: string, input: { filename: string; contentType?: string }): Promise<ImportUpload> {
    const filename = checkUploadFilename(input.filename);
    await this.sdeps.catalog.getCollection(collection);
    const now = this.now();
    const key = importUploadKey(collection, uploadFolder(now), filename);
    const { s3, bucket } = this.sdeps;
    const uploadUrl = await presignPutObject(s3, bucket, key, IMPORT_UPLOAD_URL_TTL_S, input.contentType);
    return {
      uploadUrl,
      method: 'PUT',
      headers: input.contentType !== undefined ? { 'content-type': input.contentType } : {},
      uri: `s3://${bucket}/${key}`,
      expiresAt: new Date(now + IMPORT_UPLOAD_URL_TTL_S * 1000).toISOString(),
    };
  }

  /** The sweeper's pass (the index builder's scheduled tick): re-announces jobs whose continuation was lost. */
  async sweep(): Promise<SweepResult> {
    return sweepImports({
      jobs: this.sdeps.jobs,
      catalog: this.sdeps.catalog,
      enqueue: this.deps.enqueue,
      ...(this.sdeps.now ? { now: this.sdeps.now } : {}),
      ...(this.sdeps.sweepStaleMs !== undefined ? { staleMs: this.sdeps.sweepStaleMs } : {}),
    });
  }

  /** Runs a job until done or the deadline (then it continues through the queue). */
  async run(collection: string, jobId: string, deadline: number): Promise<{ outcome: RunOutcome; job?: ImportJob }> {
    const started = Date.now();
    const out = await runImportJob(this.deps, collection, jobId, { deadline });
    // One line per step: a long job shows as a few `continued` steps, then its terminal state.
    logger.info('import step', {
      collection,
      job: jobId,
      outcome: out.outcome,
      ...(out.job ? { state: out.job.state, rows: out.job.rowsWritten, rejected: out.job.rowsRejected } : {}),
      ms: Date.now() - started,
    });
    return out;
  }

  /**
   * An S3 ObjectCreated record: the job for the object (created once), then run. Undefined when the key is not
   * an import.
   */
  async onObjectCreated(
    obj: S3ObjectRef,
    deadline: number,
  ): Promise<{ outcome: RunOutcome | 'ignored'; job?: ImportJob }> {
    const collection = collectionOfImportKey(obj.key);
    if (!collection || obj.key.endsWith('/') || isSidecar(obj.key)) return { outcome: 'ignored' };
    let created: { job: ImportJob };
    try {
      created = await this.jobFor(collection, obj);
    } catch (err) {
      if (err instanceof NotFoundError) {
        logger.error('import ignored: the collection does not exist', {
          collection,
          object: `s3://${obj.bucket}/${obj.key}`,
        });
        return { outcome: 'ignored' };
      }
      throw err;
    }
    return this.run(collection, created.job.jobId, deadline);
  }

  /** Fills in ETag and size from a HEAD (events without an ETag). */
  async complete(obj: S3ObjectRef): Promise<S3ObjectRef> {
    const h = await headObject(this.sdeps.s3, obj.bucket, obj.key);
    return { ...obj, etag: h.etag, size: h.size };
  }

  /** Marks a job failed unless it already ended (poison messages). */
  async markFailed(collection: string, jobId: string, reason: string): Promise<boolean> {
    return this.sdeps.jobs.finish(
      collection,
      jobId,
      undefined,
      { state: 'failed', error: reason, reason: 'GAVE_UP' },
      this.now(),
    );
  }

  /** The job a message or S3 object refers to (for poison handling). */
  async jobIdOf(obj: S3ObjectRef): Promise<{ collection: string; jobId: string } | undefined> {
    const collection = collectionOfImportKey(obj.key);
    if (!collection) return undefined;
    try {
      const meta = await this.sdeps.catalog.getCollection(collection);
      return {
        collection,
        jobId: jobIdFor({ collection, generation: meta.generation, bucket: obj.bucket, key: obj.key, etag: obj.etag }),
      };
    } catch {
      return undefined;
    }
  }
}

export type { ImportJobMessage };

/** A rejects cursor back to its position (ValidationError on `cursor` when it is not one of this job's). */
function rejectsPosition(scope: string, cursor: string, parts: number): ReportPosition {
  const raw = decodeCursor(scope, cursor);
  if (
    typeof raw === 'object' &&
    raw !== null &&
    'p' in raw &&
    'l' in raw &&
    Number.isSafeInteger(raw.p) &&
    Number.isSafeInteger(raw.l) &&
    (raw.p as number) >= 0 &&
    (raw.p as number) <= parts &&
    (raw.l as number) >= 0
  ) {
    return { part: raw.p as number, line: raw.l as number };
  }
  throw new ValidationError('cursor is not a nextCursor of this import job', { field: 'cursor' });
}
