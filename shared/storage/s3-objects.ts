/**
 * ObjectStore on S3 (DESIGN §3.2): every object is written once under a content- or
 * version-addressed key and never overwritten.
 */
import {
  DeleteObjectsCommand,
  GetObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { NotFoundError } from '../errors.js';
import type { ObjectStore } from './types.js';
import { StorageUnavailableError, awsErrorName, awsHttpStatus, backoffDelayMs, chunk, sleep } from './clients.js';

/** Retries of a create-only put that S3 answered with 409 ConditionalRequestConflict. */
const CONFLICT_ATTEMPTS = 5;

export interface S3ObjectStoreOptions {
  s3: S3Client;
  bucket: string;
}

export class S3ObjectStore implements ObjectStore {
  private readonly s3: S3Client;
  private readonly bucket: string;

  constructor(opts: S3ObjectStoreOptions) {
    this.s3 = opts.s3;
    this.bucket = opts.bucket;
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

  async get(key: string): Promise<Uint8Array> {
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
          `DeleteObjects on ${this.bucket}: ${errors.length} key(s) not deleted (first: ${first.Key ?? '?'}: ${first.Code ?? ''} ${first.Message ?? ''})`,
          { details: { bucket: this.bucket, failed: errors.map((e) => ({ key: e.Key, code: e.Code })) } },
        );
      }
    }
  }
}
