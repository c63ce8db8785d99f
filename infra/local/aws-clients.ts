/**
 * Client configuration for the AWS SDK v3 clients, either for real AWS or for the local emulators.
 *
 * Production code builds every client as `new S3Client(makeClientConfig(endpoints, 's3'))`: with
 * `endpoints` undefined the config is empty and the SDK resolves region, credentials and endpoint the
 * usual way (Lambda environment); with the emulators' endpoints it points at them.
 */
import type { DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import type { S3ClientConfig } from '@aws-sdk/client-s3';
import type { SQSClientConfig } from '@aws-sdk/client-sqs';
import type { EmulatorEndpoints } from './emulators.js';

export type AwsService = 's3' | 'dynamodb' | 'sqs';

export interface ClientConfigByService {
  s3: S3ClientConfig;
  dynamodb: DynamoDBClientConfig;
  sqs: SQSClientConfig;
}

export function makeClientConfig<S extends AwsService>(
  endpoints: EmulatorEndpoints | undefined,
  service: S,
): ClientConfigByService[S];
export function makeClientConfig(
  endpoints: EmulatorEndpoints | undefined,
  service: AwsService,
): S3ClientConfig | DynamoDBClientConfig | SQSClientConfig {
  if (!endpoints) return {};
  const common = {
    endpoint: endpoints[service],
    region: endpoints.region,
    credentials: { ...endpoints.credentials },
  };
  switch (service) {
    case 's3':
      return {
        ...common,
        // s3rver only serves path-style URLs here (no *.127.0.0.1 virtual hosts).
        forcePathStyle: true,
        // s3rver predates flexible checksums: with the SDK default (WHEN_SUPPORTED) a streamed body is
        // sent aws-chunked with a trailing checksum, which s3rver would store verbatim. Checksums are
        // then only sent where S3 requires them (e.g. DeleteObjects), and only validated where required.
        requestChecksumCalculation: 'WHEN_REQUIRED',
        responseChecksumValidation: 'WHEN_REQUIRED',
      } satisfies S3ClientConfig;
    case 'dynamodb':
      return common satisfies DynamoDBClientConfig;
    case 'sqs':
      return common satisfies SQSClientConfig;
  }
}
