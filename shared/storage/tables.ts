/**
 * The physical schema of Shoal's DynamoDB tables and S3 bucket (docs/architecture.md §4), as data plus the
 * functions that create it. The local runtime's bootstrap and the tests call `ensureTables` /
 * `ensureBucket`; the CDK stack mirrors `CATALOG_TABLE` and `RECORDS_TABLE`.
 */
import {
  CreateTableCommand,
  DescribeTableCommand,
  waitUntilTableExists,
  type CreateTableCommandInput,
  type DynamoDBClient,
} from '@aws-sdk/client-dynamodb';
import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import {
  CreateBucketCommand,
  HeadBucketCommand,
  waitUntilBucketExists,
  type BucketLocationConstraint,
  type S3Client,
} from '@aws-sdk/client-s3';
import { awsErrorName, awsHttpStatus } from './clients.js';

/** Name of the Records table's GSI (`ck`, `seq`) that serves the tail scan and the builder. */
export const BY_SEQ_INDEX = 'bySeq';

export type TableDefinition = Omit<CreateTableCommandInput, 'TableName'>;

/** Catalog: single table, `pk` (S) / `sk` (S). */
export const CATALOG_TABLE: TableDefinition = {
  BillingMode: 'PAY_PER_REQUEST',
  AttributeDefinitions: [
    { AttributeName: 'pk', AttributeType: 'S' },
    { AttributeName: 'sk', AttributeType: 'S' },
  ],
  KeySchema: [
    { AttributeName: 'pk', KeyType: 'HASH' },
    { AttributeName: 'sk', KeyType: 'RANGE' },
  ],
};

/** Records: `pk` (S) = `<collectionKey>#<id>`; GSI bySeq: `ck` (S) = collectionKey, `seq` (N). */
export const RECORDS_TABLE: TableDefinition = {
  BillingMode: 'PAY_PER_REQUEST',
  AttributeDefinitions: [
    { AttributeName: 'pk', AttributeType: 'S' },
    { AttributeName: 'ck', AttributeType: 'S' },
    { AttributeName: 'seq', AttributeType: 'N' },
  ],
  KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
  GlobalSecondaryIndexes: [
    {
      IndexName: BY_SEQ_INDEX,
      KeySchema: [
        { AttributeName: 'ck', KeyType: 'HASH' },
        { AttributeName: 'seq', KeyType: 'RANGE' },
      ],
      Projection: { ProjectionType: 'ALL' },
    },
  ],
};

export interface TableNames {
  catalog: string;
  records: string;
}

/** The low-level client or a DocumentClient built on it (both send table commands). */
type AnyDynamoClient = DynamoDBClient | DynamoDBDocumentClient;

/** Creates the missing tables and waits until both are ACTIVE. Idempotent and race-safe. */
export async function ensureTables(ddb: AnyDynamoClient, names: TableNames): Promise<void> {
  // A DocumentClient shares the low-level client's config and handlers; table commands pass through it.
  const client = ddb as DynamoDBClient;
  await Promise.all([
    ensureTable(client, names.catalog, CATALOG_TABLE),
    ensureTable(client, names.records, RECORDS_TABLE),
  ]);
}

async function ensureTable(client: DynamoDBClient, name: string, def: TableDefinition): Promise<void> {
  let status: string | undefined;
  try {
    status = (await client.send(new DescribeTableCommand({ TableName: name }))).Table?.TableStatus;
  } catch (err) {
    if (awsErrorName(err) !== 'ResourceNotFoundException') throw err;
  }
  if (status === undefined) {
    try {
      await client.send(new CreateTableCommand({ ...def, TableName: name }));
    } catch (err) {
      // Another bootstrap created it in between: fine, wait for it below.
      if (awsErrorName(err) !== 'ResourceInUseException') throw err;
    }
  }
  if (status !== 'ACTIVE') {
    await waitUntilTableExists({ client, maxWaitTime: 120, minDelay: 1, maxDelay: 5 }, { TableName: name });
  }
}

/** Creates the bucket when missing. Idempotent. */
export async function ensureBucket(s3: S3Client, bucket: string): Promise<void> {
  try {
    await s3.send(new HeadBucketCommand({ Bucket: bucket }));
    return;
  } catch (err) {
    if (awsHttpStatus(err) !== 404 && awsErrorName(err) !== 'NotFound') throw err;
  }
  const region = await s3.config.region();
  try {
    await s3.send(
      new CreateBucketCommand({
        Bucket: bucket,
        // us-east-1 is the default location and must not be named.
        CreateBucketConfiguration:
          region && region !== 'us-east-1' ? { LocationConstraint: region as BucketLocationConstraint } : undefined,
      }),
    );
  } catch (err) {
    if (awsErrorName(err) !== 'BucketAlreadyOwnedByYou') throw err;
  }
  await waitUntilBucketExists({ client: s3, maxWaitTime: 60, minDelay: 1, maxDelay: 5 }, { Bucket: bucket });
}
