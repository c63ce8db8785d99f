/**
 * Presigned artifact uploads as signed for AWS (no network): the SDK default client adds
 * flexible checksums, which in a presigned URL means the CRC32 of the empty body it was signed
 * without — S3 would reject every real upload. S3ObjectStore must sign without them.
 */
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { describe, expect, it } from 'vitest';
import { S3ObjectStore } from '../../shared/storage/s3-objects.js';

const s3 = new S3Client({
  region: 'eu-west-1',
  credentials: { accessKeyId: 'AKID', secretAccessKey: 'secret', sessionToken: 'token' },
});
const objects = new S3ObjectStore({ s3, bucket: 'shoal-data' });
const checksumParams = (url: URL): string[] =>
  [...url.searchParams.keys()].filter((k) => k.toLowerCase().includes('checksum'));

describe('S3ObjectStore presigning on AWS', () => {
  it('signs PutObject and UploadPart for the key and lifetime asked, without checksum parameters', async () => {
    const put = new URL(await objects.presignPut('models/enc/1/artifact', 900));
    expect(`${put.origin}${put.pathname}`).toBe('https://shoal-data.s3.eu-west-1.amazonaws.com/models/enc/1/artifact');
    expect(put.searchParams.get('X-Amz-Expires')).toBe('900');
    expect(put.searchParams.get('X-Amz-SignedHeaders')).toBe('host');
    expect(put.searchParams.get('X-Amz-Security-Token')).toBe('token');
    expect(checksumParams(put)).toEqual([]);

    const part = new URL(await objects.presignPart('models/enc/1/artifact', 'upload-1', 7, 120));
    expect(part.searchParams.get('partNumber')).toBe('7');
    expect(part.searchParams.get('uploadId')).toBe('upload-1');
    expect(part.searchParams.get('X-Amz-Expires')).toBe('120');
    expect(checksumParams(part)).toEqual([]);
  });

  it('leaves the data-path client alone: it still adds checksums (the baseline this guards against)', async () => {
    const url = new URL(
      await getSignedUrl(s3, new PutObjectCommand({ Bucket: 'shoal-data', Key: 'k' }), { expiresIn: 60 }),
    );
    expect(checksumParams(url)).not.toEqual([]);
  });
});
