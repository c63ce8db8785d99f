/**
 * ObjectStore on S3 (docs/architecture.md §3.2): every object is written once under a content- or
 * version-addressed key and never overwritten. Also DirectUploads: presigned requests that
 * let clients upload model artifacts straight to S3, and the multipart/copy steps around them.
 */
import { createHash } from 'node:crypto';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectsCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { ConflictError, CorruptDataError, NotFoundError, ValidationError } from '../errors.js';
import type { DirectUploads, ObjectStore, UploadedPart } from './types.js';
import {
  StorageUnavailableError,
  awsErrorName,
  awsHttpStatus,
  backoffDelayMs,
  chunk,
  forEachLimit,
  sleep,
} from './retry.js';

/**
 * Large objects of known size (shards on a cold load) are read as parallel ranged GETs
 * (docs/architecture.md §7.6): one S3 connection delivers ~90 MB/s, so a 190 MB shard is ~2 s on one
 * GET and a fraction of that on eight. Defaults: objects of 16 MiB or more, in parts of 8 MiB, 8 at a
 * time. Smaller parts or more at once = faster cold loads for more requests (each GET is billed) and
 * connections; objects below the threshold cost one GET as before.
 */
export const PARALLEL_GET = { MIN_BYTES: 16 * 2 ** 20, PART_BYTES: 8 * 2 ** 20, CONCURRENCY: 8 };

/** Retries of a create-only put that S3 answered with 409 ConditionalRequestConflict. */
const CONFLICT_ATTEMPTS = 5;

export interface S3ObjectStoreOptions {
  s3: S3Client;
  bucket: string;
}

/**
 * A client that signs URLs for `s3`'s bucket and endpoint, minus flexible checksums. With the
 * SDK default (`requestChecksumCalculation: 'WHEN_SUPPORTED'`) a presigned PutObject/UploadPart
 * carries `x-amz-checksum-crc32` of the *empty* body it was signed without (`AAAAAA==`), and S3
 * then rejects every real upload as a checksum mismatch. `'WHEN_REQUIRED'` leaves it out; the
 * artifact's integrity is checked by the sha256 at commit instead. Only this client changes: the
 * one that writes shards keeps its checksums.
 */
function presigningClient(s3: S3Client): S3Client {
  const c = s3.config;
  return new S3Client({
    region: c.region,
    credentials: c.credentials,
    ...(c.endpoint ? { endpoint: c.endpoint } : {}),
    forcePathStyle: c.forcePathStyle,
    useFipsEndpoint: c.useFipsEndpoint,
    useDualstackEndpoint: c.useDualstackEndpoint,
    useAccelerateEndpoint: c.useAccelerateEndpoint,
    requestChecksumCalculation: 'WHEN_REQUIRED',
  });
}

const signers = new WeakMap<S3Client, S3Client>();

/**
 * A presigned single PUT of `bucket/key` (import uploads). With `contentType` the header is signed, so
 * the PUT must send exactly that `content-type`.
 */
export function presignPutObject(
  s3: S3Client,
  bucket: string,
  key: string,
  expiresInSeconds: number,
  contentType?: string,
): Promise<string> {
  let signer = signers.get(s3);
  if (!signer) signers.set(s3, (signer = presigningClient(s3)));
  const command = new PutObjectCommand({
    Bucket: bucket,
    Key: key,
    ...(contentType !== undefined ? { ContentType: contentType } : {}),
  });
  return getSignedUrl(signer, command, { expiresIn: expiresInSeconds });
}

/** S3 error codes of a CompleteMultipartUpload whose part list S3 refuses. */
const BAD_PART_ERRORS = new Set(['InvalidPart', 'InvalidPartOrder', 'EntityTooSmall', 'MalformedXML']);

export class S3ObjectStore implements ObjectStore, DirectUploads {
  private readonly s3: S3Client;
  private readonly bucket: string;
  private signer: S3Client | undefined;

  constructor(opts: S3ObjectStoreOptions) {
    this.s3 = opts.s3;
    this.bucket = opts.bucket;
  }

  private presigner(): S3Client {
    this.signer ??= presigningClient(this.s3);
    return this.signer;
  }

  async putImmutable(key: string, bytes: Uint8Array): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.s3.send(
          new PutObjectCommand({
            Bucket: this.bucket,
            Key: key,
            Body: bytes,
            ContentLength: bytes.byteLength,
            ContentType: 'application/octet-stream',
            IfNoneMatch: '*',
          }),
        );
        return;
      } catch (err) {
        // 412: the key exists. Keys are content/version addressed, so it already holds these bytes.
        if (awsHttpStatus(err) === 412 || awsErrorName(err) === 'PreconditionFailed') return;
        // 409: a concurrent create-only put of the same key is in flight on S3; retry to learn the outcome.
        if (awsHttpStatus(err) === 409 && attempt + 1 < CONFLICT_ATTEMPTS) {
          await sleep(backoffDelayMs(attempt + 1));
          continue;
        }
        throw err;
      }
    }
  }

  async get(key: string, size?: number): Promise<Uint8Array> {
    if (size !== undefined && size >= PARALLEL_GET.MIN_BYTES) return this.getRanges(key, size);
    try {
      const res = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      if (!res.Body) return new Uint8Array(0);
      return await res.Body.transformToByteArray();
    } catch (err) {
      if (awsErrorName(err) === 'NoSuchKey' || awsErrorName(err) === 'NotFound') {
        throw new NotFoundError(`object ${JSON.stringify(key)} not found`, { field: 'key', cause: err });
      }
      throw err;
    }
  }

  /** `size` bytes of an immutable object in parallel parts; a part of the wrong length is corrupt data. */
  private async getRanges(key: string, size: number): Promise<Uint8Array> {
    const out = new Uint8Array(size);
    const starts = Array.from(
      { length: Math.ceil(size / PARALLEL_GET.PART_BYTES) },
      (_, i) => i * PARALLEL_GET.PART_BYTES,
    );
    await forEachLimit(starts, PARALLEL_GET.CONCURRENCY, async (start) => {
      const end = Math.min(size, start + PARALLEL_GET.PART_BYTES) - 1;
      let part: Uint8Array;
      try {
        const res = await this.s3.send(
          new GetObjectCommand({ Bucket: this.bucket, Key: key, Range: `bytes=${start}-${end}` }),
        );
        part = res.Body ? await res.Body.transformToByteArray() : new Uint8Array(0);
      } catch (err) {
        if (awsErrorName(err) === 'NoSuchKey' || awsErrorName(err) === 'NotFound') {
          throw new NotFoundError(`object ${JSON.stringify(key)} not found`, { field: 'key', cause: err });
        }
        throw err;
      }
      if (part.byteLength !== end - start + 1) {
        throw new CorruptDataError(
          `object ${JSON.stringify(key)}: bytes ${start}-${end} came back as ${part.byteLength} bytes`,
        );
      }
      out.set(part, start);
    });
    return out;
  }

  async hash(key: string): Promise<{ sha256: string; bytes: number; etag: string }> {
    try {
      const res = await this.s3.send(new GetObjectCommand({ Bucket: this.bucket, Key: key }));
      const digest = createHash('sha256');
      let bytes = 0;
      // The Node body is a Readable: chunks are hashed and dropped, so memory stays flat for any size.
      for await (const part of (res.Body ?? []) as AsyncIterable<Uint8Array>) {
        digest.update(part);
        bytes += part.byteLength;
      }
      return { sha256: digest.digest('hex'), bytes, etag: res.ETag ?? '' };
    } catch (err) {
      if (awsErrorName(err) === 'NoSuchKey' || awsErrorName(err) === 'NotFound') {
        throw new NotFoundError(`object ${JSON.stringify(key)} not found`, { field: 'key', cause: err });
      }
      throw err;
    }
  }

  async head(key: string): Promise<{ bytes: number; etag: string }> {
    try {
      const res = await this.s3.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return { bytes: res.ContentLength ?? 0, etag: res.ETag ?? '' };
    } catch (err) {
      if (awsErrorName(err) === 'NoSuchKey' || awsErrorName(err) === 'NotFound' || awsHttpStatus(err) === 404) {
        throw new NotFoundError(`object ${JSON.stringify(key)} not found`, { field: 'key', cause: err });
      }
      throw err;
    }
  }

  presignPut(key: string, expiresInSeconds: number): Promise<string> {
    return getSignedUrl(this.presigner(), new PutObjectCommand({ Bucket: this.bucket, Key: key }), {
      expiresIn: expiresInSeconds,
    });
  }

  async createMultipart(key: string): Promise<string> {
    const res = await this.s3.send(
      new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: key, ContentType: 'application/octet-stream' }),
    );
    if (!res.UploadId)
      throw new StorageUnavailableError(`CreateMultipartUpload on ${this.bucket}/${key} returned no UploadId`);
    return res.UploadId;
  }

  presignPart(key: string, uploadId: string, partNumber: number, expiresInSeconds: number): Promise<string> {
    return getSignedUrl(
      this.presigner(),
      new UploadPartCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId, PartNumber: partNumber }),
      {
        expiresIn: expiresInSeconds,
      },
    );
  }

  async completeMultipart(key: string, uploadId: string, parts: UploadedPart[]): Promise<void> {
    try {
      await this.s3.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key: key,
          UploadId: uploadId,
          MultipartUpload: { Parts: parts.map((p) => ({ PartNumber: p.partNumber, ETag: p.etag })) },
        }),
      );
    } catch (err) {
      throw uploadError(err, uploadId) ?? err;
    }
  }

  async abortMultipart(key: string, uploadId: string): Promise<void> {
    try {
      await this.s3.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }));
    } catch (err) {
      throw uploadError(err, uploadId) ?? err;
    }
  }

  async copyIfMatch(from: string, to: string, ifMatch: string): Promise<void> {
    try {
      await this.s3.send(
        new CopyObjectCommand({
          Bucket: this.bucket,
          Key: to,
          CopySource: `${this.bucket}/${from.split('/').map(encodeURIComponent).join('/')}`,
          CopySourceIfMatch: ifMatch,
          ContentType: 'application/octet-stream',
          MetadataDirective: 'REPLACE',
        }),
      );
    } catch (err) {
      if (awsHttpStatus(err) === 412 || awsErrorName(err) === 'PreconditionFailed') {
        throw new ConflictError(`object ${JSON.stringify(from)} changed while it was being copied`, {
          field: 'artifact',
          cause: err,
        });
      }
      if (awsErrorName(err) === 'NoSuchKey' || awsErrorName(err) === 'NotFound') {
        throw new NotFoundError(`object ${JSON.stringify(from)} not found`, { field: 'key', cause: err });
      }
      throw err;
    }
  }

  async *list(prefix: string): AsyncIterable<Array<{ key: string; size: number; lastModified: Date }>> {
    let token: string | undefined;
    do {
      const res = await this.s3.send(
        new ListObjectsV2Command({ Bucket: this.bucket, Prefix: prefix, ContinuationToken: token }),
      );
      const page = (res.Contents ?? []).flatMap((o) =>
        o.Key === undefined ? [] : [{ key: o.Key, size: o.Size ?? 0, lastModified: o.LastModified ?? new Date(0) }],
      );
      if (page.length > 0) yield page;
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token);
  }

  async delete(keys: string[]): Promise<void> {
    for (const batch of chunk([...new Set(keys)], 1000)) {
      const res = await this.s3.send(
        new DeleteObjectsCommand({
          Bucket: this.bucket,
          Delete: { Objects: batch.map((Key) => ({ Key })), Quiet: true },
        }),
      );
      const errors = res.Errors ?? [];
      if (errors.length > 0) {
        const first = errors[0];
        throw new StorageUnavailableError(
          `DeleteObjects on ${this.bucket}: ${errors.length} key(s) not deleted ` +
            `(first: ${first.Key ?? '?'}: ${first.Code ?? ''} ${first.Message ?? ''})`,
          { details: { bucket: this.bucket, failed: errors.map((e) => ({ key: e.Key, code: e.Code })) } },
        );
      }
    }
  }
}

/** The typed error for a multipart call S3 refused because of the caller's upload id or part list. */
function uploadError(err: unknown, uploadId: string): Error | undefined {
  const name = awsErrorName(err) ?? '';
  if (name === 'NoSuchUpload') {
    return new NotFoundError(
      `multipart upload ${JSON.stringify(uploadId)} does not exist (unknown, completed or aborted)`,
      { field: 'uploadId', cause: err },
    );
  }
  if (BAD_PART_ERRORS.has(name))
    return new ValidationError(`S3 refused the part list: ${name}`, {
      field: 'parts',
      cause: err,
      details: { s3Code: name },
    });
  return undefined;
}
