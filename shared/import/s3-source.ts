/**
 * ByteSources: S3 objects read with ranged GETs (`S3Source`) and bytes in memory (`memorySource`,
 * for tests and benchmarks). The S3 source pins the object version by ETag: every response's ETag
 * is compared with the job's (and `IfMatch` is sent), so a replaced object fails the job with
 * `ObjectChangedError` instead of mixing two versions.
 */
import { GetObjectCommand, HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { NotFoundError } from '../errors.js';
import { awsErrorName, awsHttpStatus } from '../storage/clients.js';
import { ObjectChangedError, type ByteSource } from './types.js';

export function normalizeEtag(etag: string | undefined): string {
  return (etag ?? '').replace(/^W\//, '').replace(/"/g, '');
}

export interface ObjectHead {
  size: number;
  etag: string;
}

/** HEAD of an object; NotFoundError when absent. */
export async function headObject(s3: S3Client, bucket: string, key: string): Promise<ObjectHead> {
  try {
    const res = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return { size: res.ContentLength ?? 0, etag: normalizeEtag(res.ETag) };
  } catch (err) {
    if (awsHttpStatus(err) === 404 || awsErrorName(err) === 'NotFound' || awsErrorName(err) === 'NoSuchKey') {
      throw new NotFoundError(`object s3://${bucket}/${key} not found`, { field: 'uri', cause: err });
    }
    throw err;
  }
}

export class S3Source implements ByteSource {
  readonly name: string;

  constructor(
    private readonly s3: S3Client,
    readonly bucket: string,
    readonly key: string,
    readonly size: number,
    readonly etag: string,
  ) {
    this.name = `s3://${bucket}/${key}`;
  }

  private async get(
    range: string,
  ): Promise<AsyncIterable<Uint8Array> & { transformToByteArray(): Promise<Uint8Array> }> {
    try {
      const res = await this.s3.send(
        new GetObjectCommand({
          Bucket: this.bucket,
          Key: this.key,
          Range: range,
          IfMatch: this.etag ? `"${this.etag}"` : undefined,
        }),
      );
      if (this.etag && res.ETag && normalizeEtag(res.ETag) !== this.etag) {
        throw new ObjectChangedError(
          `${this.name} changed while importing (ETag ${normalizeEtag(res.ETag)}, job is for ${this.etag})`,
        );
      }
      if (!res.Body) throw new Error(`GetObject ${this.name} returned no body`);
      return res.Body as unknown as AsyncIterable<Uint8Array> & { transformToByteArray(): Promise<Uint8Array> };
    } catch (err) {
      if (awsHttpStatus(err) === 412 || awsErrorName(err) === 'PreconditionFailed') {
        throw new ObjectChangedError(`${this.name} changed while importing (job is for ETag ${this.etag})`, {
          cause: err,
        });
      }
      if (awsErrorName(err) === 'NoSuchKey')
        throw new ObjectChangedError(`${this.name} was deleted while importing`, { cause: err });
      throw err;
    }
  }

  async range(start: number, end: number): Promise<Uint8Array> {
    const to = Math.min(end, this.size);
    if (to <= start) return new Uint8Array(0);
    const body = await this.get(`bytes=${start}-${to - 1}`);
    return body.transformToByteArray();
  }

  async *stream(start: number): AsyncIterable<Uint8Array> {
    if (start >= this.size) return;
    const body = await this.get(`bytes=${start}-`);
    for await (const chunk of body) yield chunk;
  }
}

/** Bytes in memory as a ByteSource; `chunkBytes` sets the stream's chunk size (tests cut lines at every boundary). */
export function memorySource(bytes: Uint8Array, name = '<memory>', chunkBytes = 64 * 1024): ByteSource {
  return {
    name,
    size: bytes.byteLength,
    async range(start, end) {
      return bytes.subarray(start, Math.min(end, bytes.byteLength));
    },
    async *stream(start) {
      for (let at = start; at < bytes.byteLength; at += chunkBytes)
        yield bytes.subarray(at, Math.min(at + chunkBytes, bytes.byteLength));
    },
  };
}
