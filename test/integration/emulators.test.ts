/**
 * The embedded emulators (s3rver, dynalite, fauxqs) driven by the real AWS SDK v3 clients, exactly as
 * Shoal's handlers will use them under `npm start`, including persistence across a restart.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CreateBucketCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
} from '@aws-sdk/client-s3';
import { CreateTableCommand, DynamoDBClient, waitUntilTableExists } from '@aws-sdk/client-dynamodb';
import {
  BatchWriteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
  type BatchWriteCommandInput,
} from '@aws-sdk/lib-dynamodb';
import {
  CreateQueueCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { startEmulators, type Emulators } from '../../infra/local/emulators.js';
import { makeClientConfig } from '../../infra/local/aws-clients.js';
import { CATALOG_TABLE } from '../../shared/storage/tables.js';

const BUCKET = 'shoal-test';
const TABLE = 'shoal-test';

interface Clients {
  s3: S3Client;
  ddb: DynamoDBClient;
  doc: DynamoDBDocumentClient;
  sqs: SQSClient;
  destroy(): void;
}

function makeClients(emulators: Emulators): Clients {
  const s3 = new S3Client(makeClientConfig(emulators.endpoints, 's3'));
  const ddb = new DynamoDBClient(makeClientConfig(emulators.endpoints, 'dynamodb'));
  const doc = DynamoDBDocumentClient.from(ddb);
  const sqs = new SQSClient(makeClientConfig(emulators.endpoints, 'sqs'));
  return {
    s3,
    ddb,
    doc,
    sqs,
    destroy: () => {
      s3.destroy();
      ddb.destroy();
      sqs.destroy();
    },
  };
}

/** Settles a call now (no late-handled rejection) and returns what it threw, or undefined. */
function errorOf(call: Promise<unknown>): Promise<unknown> {
  return call.then(
    () => undefined,
    (err: unknown) => err,
  );
}

async function readObject(s3: S3Client, key: string, range?: string): Promise<string> {
  const res = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key, Range: range }));
  return res.Body!.transformToString();
}

describe('local AWS emulators', () => {
  let dataDir: string;
  let emulators: Emulators | undefined;
  let clients: Clients | undefined;

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(tmpdir(), 'shoal-emulators-'));
    emulators = await startEmulators({ dataDir });
    clients = makeClients(emulators);
  });

  afterAll(async () => {
    clients?.destroy();
    await emulators?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('serves endpoints on 127.0.0.1 with ephemeral ports', () => {
    // Assess
    const { endpoints } = emulators!;
    for (const url of [endpoints.s3, endpoints.dynamodb, endpoints.sqs]) {
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    }
    expect(new Set([endpoints.s3, endpoints.dynamodb, endpoints.sqs]).size).toBe(3);
  });

  it('S3: puts, gets, ranges, lists with continuation and refuses a second create-only put', async () => {
    // Prepare
    const { s3 } = clients!;
    await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));

    // Act
    const put = await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'docs/hello.txt', Body: 'hello world' }));
    for (let i = 0; i < 5; i++) {
      await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: `shards/${i}.bin`, Body: `shard-${i}` }));
    }
    const keys: string[] = [];
    let pages = 0;
    let token: string | undefined;
    do {
      const page = await s3.send(
        new ListObjectsV2Command({ Bucket: BUCKET, Prefix: 'shards/', MaxKeys: 2, ContinuationToken: token }),
      );
      pages++;
      keys.push(...(page.Contents ?? []).map((c) => c.Key!));
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    const createOnly = await errorOf(
      s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: 'docs/hello.txt', Body: 'clobbered', IfNoneMatch: '*' })),
    );

    // Assess
    expect(put.ETag).toMatch(/^"[0-9a-f]{32}"$/);
    expect(await readObject(s3, 'docs/hello.txt')).toBe('hello world');
    expect(await readObject(s3, 'docs/hello.txt', 'bytes=6-10')).toBe('world');
    const head = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: 'docs/hello.txt' }));
    expect(head.ContentLength).toBe(11);
    expect(pages).toBe(3);
    expect(keys).toEqual([0, 1, 2, 3, 4].map((i) => `shards/${i}.bin`));
    expect(createOnly).toMatchObject({ name: 'PreconditionFailed', $metadata: { httpStatusCode: 412 } });
    expect(await readObject(s3, 'docs/hello.txt')).toBe('hello world');
  });

  it('DynamoDB: conditional put, atomic counter, GSI query and batch write', async () => {
    // Prepare
    const { ddb, doc } = clients!;
    await ddb.send(
      new CreateTableCommand({
        TableName: TABLE,
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: [
          { AttributeName: 'pk', AttributeType: 'S' },
          { AttributeName: 'sk', AttributeType: 'S' },
          { AttributeName: 'status', AttributeType: 'S' },
        ],
        KeySchema: [
          { AttributeName: 'pk', KeyType: 'HASH' },
          { AttributeName: 'sk', KeyType: 'RANGE' },
        ],
        GlobalSecondaryIndexes: [
          {
            IndexName: 'byStatus',
            KeySchema: [
              { AttributeName: 'status', KeyType: 'HASH' },
              { AttributeName: 'sk', KeyType: 'RANGE' },
            ],
            Projection: { ProjectionType: 'ALL' },
          },
        ],
      }),
    );
    await waitUntilTableExists({ client: ddb, maxWaitTime: 10, minDelay: 1 }, { TableName: TABLE });
    const createIndex = new PutCommand({
      TableName: TABLE,
      Item: { pk: 'index#a', sk: 'meta', status: 'building' },
      ConditionExpression: 'attribute_not_exists(pk)',
    });
    const bump = new UpdateCommand({
      TableName: TABLE,
      Key: { pk: 'counter', sk: 'epoch' },
      UpdateExpression: 'ADD n :one',
      ExpressionAttributeValues: { ':one': 1 },
      ReturnValues: 'UPDATED_NEW',
    });
    const batch: BatchWriteCommandInput = {
      RequestItems: {
        [TABLE]: Array.from({ length: 25 }, (_, i) => ({
          PutRequest: { Item: { pk: 'index#b', sk: `shard#${String(i).padStart(2, '0')}`, status: 'ready' } },
        })),
      },
    };

    // Act
    await doc.send(createIndex);
    const duplicate = await errorOf(doc.send(createIndex));
    const first = await doc.send(bump);
    const second = await doc.send(bump);
    let unprocessed = batch.RequestItems;
    for (let attempt = 0; unprocessed && Object.keys(unprocessed).length > 0 && attempt < 5; attempt++) {
      unprocessed = (await doc.send(new BatchWriteCommand({ RequestItems: unprocessed }))).UnprocessedItems;
    }
    const building = await doc.send(
      new QueryCommand({
        TableName: TABLE,
        IndexName: 'byStatus',
        KeyConditionExpression: '#s = :s',
        ExpressionAttributeNames: { '#s': 'status' },
        ExpressionAttributeValues: { ':s': 'building' },
      }),
    );
    const ready = await doc.send(
      new QueryCommand({
        TableName: TABLE,
        IndexName: 'byStatus',
        KeyConditionExpression: '#s = :s AND begins_with(sk, :p)',
        ExpressionAttributeNames: { '#s': 'status' },
        ExpressionAttributeValues: { ':s': 'ready', ':p': 'shard#' },
        Select: 'COUNT',
      }),
    );

    // Assess
    expect(duplicate).toMatchObject({ name: 'ConditionalCheckFailedException' });
    expect(first.Attributes).toEqual({ n: 1 });
    expect(second.Attributes).toEqual({ n: 2 });
    expect(unprocessed ?? {}).toEqual({});
    expect(building.Items).toEqual([{ pk: 'index#a', sk: 'meta', status: 'building' }]);
    expect(ready.Count).toBe(25);
  });

  it('DynamoDB: queries close their LevelDB iterators, so compaction frees the files it replaced', async () => {
    // An open iterator pins the files of the version it started on; dynalite left every Query's open
    // (infra/local/emulators.ts), and the data dir grew without bound under churn.
    const { ddb, doc } = clients!;
    const table = 'shoal-churn';
    // Shaped as Shoal's catalog table (pk / sk), the one under the heaviest query churn.
    await ddb.send(new CreateTableCommand({ TableName: table, ...CATALOG_TABLE }));
    await waitUntilTableExists({ client: ddb, maxWaitTime: 30 }, { TableName: table });
    const blob = 'x'.repeat(2000);
    const ldbFiles = async () => (await readdir(path.join(dataDir, 'dynamodb'))).filter((f) => f.endsWith('.ldb'));
    for (let round = 0; round < 12; round++) {
      for (let b = 0; b < 40; b++) {
        const items = Array.from({ length: 25 }, (_, i) => ({
          PutRequest: { Item: { pk: 'churn', sk: String(b * 25 + i).padStart(6, '0'), v: `${blob}${round}` } },
        }));
        await doc.send(new BatchWriteCommand({ RequestItems: { [table]: items } }));
        const page = await doc.send(
          new QueryCommand({
            TableName: table,
            KeyConditionExpression: 'pk = :p',
            ExpressionAttributeValues: { ':p': 'churn' },
            Limit: b % 2 ? 1 : undefined,
            ConsistentRead: true,
          }),
        );
        expect(page.Items!.length).toBeGreaterThan(0);
      }
    }
    // 12 rewrites of 2.5 MB: with every iterator left open this dir held 10 files and kept growing.
    expect((await ldbFiles()).length).toBeLessThanOrEqual(6);
  }, 120_000);

  it('SQS: long poll, re-delivery after the visibility timeout, redrive to a DLQ, delete', async () => {
    // Prepare
    const { sqs } = clients!;
    const dlq = await sqs.send(new CreateQueueCommand({ QueueName: 'shoal-jobs-dlq' }));
    const dlqArn = (
      await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlq.QueueUrl, AttributeNames: ['QueueArn'] }))
    ).Attributes!.QueueArn!;
    const queue = await sqs.send(
      new CreateQueueCommand({
        QueueName: 'shoal-jobs',
        Attributes: {
          VisibilityTimeout: '1',
          RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: 2 }),
        },
      }),
    );
    const receive = (queueUrl: string, waitTimeSeconds: number) =>
      sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: queueUrl,
          WaitTimeSeconds: waitTimeSeconds,
          MessageSystemAttributeNames: ['ApproximateReceiveCount'],
        }),
      );

    // Act: a long poll that is already waiting when the message is sent
    const polling = receive(queue.QueueUrl!, 5);
    await new Promise((r) => setTimeout(r, 200));
    await sqs.send(new SendMessageCommand({ QueueUrl: queue.QueueUrl, MessageBody: 'job-1' }));
    const firstDelivery = await polling;
    // not deleted: visible again after 1 s
    const secondDelivery = await receive(queue.QueueUrl!, 3);
    // third receive exceeds maxReceiveCount=2: moved to the DLQ instead
    const exhausted = await receive(queue.QueueUrl!, 2);
    const deadLetter = await receive(dlq.QueueUrl!, 1);
    await sqs.send(
      new DeleteMessageCommand({ QueueUrl: dlq.QueueUrl, ReceiptHandle: deadLetter.Messages![0].ReceiptHandle }),
    );
    const drained = await receive(dlq.QueueUrl!, 0);

    // Assess
    expect(firstDelivery.Messages?.map((m) => m.Body)).toEqual(['job-1']);
    expect(firstDelivery.Messages![0].Attributes?.ApproximateReceiveCount).toBe('1');
    expect(secondDelivery.Messages?.map((m) => m.Body)).toEqual(['job-1']);
    expect(secondDelivery.Messages![0].Attributes?.ApproximateReceiveCount).toBe('2');
    expect(secondDelivery.Messages![0].MessageId).toBe(firstDelivery.Messages![0].MessageId);
    expect(exhausted.Messages ?? []).toEqual([]);
    expect(deadLetter.Messages?.map((m) => m.Body)).toEqual(['job-1']);
    expect(drained.Messages ?? []).toEqual([]);
  });

  it('keeps S3 objects and DynamoDB items after a restart on the same data dir', async () => {
    // Prepare
    clients!.destroy();
    await emulators!.stop();

    // Act
    emulators = await startEmulators({ dataDir });
    clients = makeClients(emulators);
    const { s3, doc } = clients;
    const meta = await doc.send(new GetCommand({ TableName: TABLE, Key: { pk: 'index#a', sk: 'meta' } }));
    const counter = await doc.send(new GetCommand({ TableName: TABLE, Key: { pk: 'counter', sk: 'epoch' } }));
    const shards = await doc.send(
      new QueryCommand({
        TableName: TABLE,
        KeyConditionExpression: 'pk = :pk',
        ExpressionAttributeValues: { ':pk': 'index#b' },
        Select: 'COUNT',
      }),
    );

    // Assess
    expect(await readObject(s3, 'docs/hello.txt')).toBe('hello world');
    expect(await readObject(s3, 'shards/4.bin')).toBe('shard-4');
    expect(meta.Item).toEqual({ pk: 'index#a', sk: 'meta', status: 'building' });
    expect(counter.Item?.n).toBe(2);
    expect(shards.Count).toBe(25);
  });
});
