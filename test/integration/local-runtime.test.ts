/**
 * The local runtime's event plumbing against the embedded emulators (in memory): the SQS event source
 * (batches, partial failures, redrive, stop), the schedule, the Lambda Invoke emulator driven by the
 * real LambdaClient, and the resource bootstrap.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { InvokeCommand, LambdaClient, ResourceNotFoundException } from '@aws-sdk/client-lambda';
import { DescribeTableCommand, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { HeadBucketCommand, S3Client } from '@aws-sdk/client-s3';
import type { Context, ScheduledEvent, SQSEvent, SQSRecord } from 'aws-lambda';
import { startEmulators, type Emulators } from '../../infra/local/emulators.js';
import { makeClientConfig } from '../../infra/local/aws-clients.js';
import { startSqsPoller, type SqsPollerErrorContext } from '../../infra/local/sqs-poller.js';
import { startSchedule } from '../../infra/local/scheduler.js';
import { startLambdaEmulator, type LambdaEmulator } from '../../infra/local/lambda-emulator.js';
import { bootstrapLocalResources, ensureQueueWithDlq } from '../../infra/local/bootstrap.js';
import { startLocalShoal } from '../../infra/local/shoal.js';
import { QUEUE_SETTINGS as CDK_QUEUES } from '../../infra/cdk/settings.js';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

const md5 = (s: string) => createHash('md5').update(s, 'utf8').digest('hex');

let emulators: Emulators;
let sqs: SQSClient;
let queueSeq = 0;

async function newQueue(visibilityTimeout = 1): Promise<{ url: string; name: string }> {
  const name = `rt-${process.pid}-${++queueSeq}`;
  const res = await sqs.send(
    new CreateQueueCommand({ QueueName: name, Attributes: { VisibilityTimeout: String(visibilityTimeout) } }),
  );
  return { url: res.QueueUrl!, name };
}

async function queueCounts(url: string): Promise<{ visible: number; inFlight: number }> {
  const res = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: url,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  return {
    visible: Number(res.Attributes?.ApproximateNumberOfMessages ?? NaN),
    inFlight: Number(res.Attributes?.ApproximateNumberOfMessagesNotVisible ?? NaN),
  };
}

async function sendBodies(url: string, bodies: string[]): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < bodies.length; i += 10) {
    const chunk = bodies.slice(i, i + 10);
    const res = await sqs.send(
      new SendMessageBatchCommand({ QueueUrl: url, Entries: chunk.map((b, j) => ({ Id: String(j), MessageBody: b })) }),
    );
    expect(res.Failed ?? []).toEqual([]);
    const byId = new Map((res.Successful ?? []).map((s) => [s.Id, s.MessageId!]));
    chunk.forEach((_, j) => ids.push(byId.get(String(j))!));
  }
  return ids;
}

beforeAll(async () => {
  emulators = await startEmulators();
  sqs = new SQSClient(makeClientConfig(emulators.endpoints, 'sqs'));
});

afterAll(async () => {
  sqs?.destroy();
  await emulators?.stop();
});

describe('startSqsPoller (Lambda SQS event source mapping)', () => {
  it('delivers batches of at most batchSize with the fields Lambda sets, then deletes them', async () => {
    const { url, name } = await newQueue(30);
    const arn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] })))
      .Attributes?.QueueArn;
    const withAttrs = await sqs.send(
      new SendMessageCommand({
        QueueUrl: url,
        MessageBody: '{"collection":"c1"}',
        MessageAttributes: {
          kind: { DataType: 'String', StringValue: 'build' },
          n: { DataType: 'Number', StringValue: '42' },
          raw: { DataType: 'Binary', BinaryValue: Buffer.from([1, 2, 3]) },
        },
      }),
    );
    const sentAt = Date.now();
    const ids = [
      withAttrs.MessageId!,
      ...(await sendBodies(
        url,
        Array.from({ length: 24 }, (_, i) => `m${i}`),
      )),
    ];

    const events: SQSEvent[] = [];
    const poller = startSqsPoller({ sqs, queueUrl: url, batchSize: 7, handler: async (e) => void events.push(e) });
    try {
      await waitFor(() => events.flatMap((e) => e.Records).length >= 25, 10_000, '25 records');
    } finally {
      await poller.stop();
    }

    const records = events.flatMap((e) => e.Records);
    expect(records.map((r) => r.messageId).sort()).toEqual([...ids].sort());
    for (const e of events) expect(e.Records.length).toBeGreaterThan(0);
    for (const e of events) expect(e.Records.length).toBeLessThanOrEqual(7);

    for (const r of records) {
      expect(r.eventSource).toBe('aws:sqs');
      expect(r.eventSourceARN).toBe(`arn:aws:sqs:us-east-1:000000000000:${name}`);
      expect(r.eventSourceARN).toBe(arn);
      expect(r.awsRegion).toBe('us-east-1');
      expect(r.receiptHandle).toMatch(/\S/);
      expect(r.md5OfBody).toBe(md5(r.body));
      expect(r.attributes.ApproximateReceiveCount).toBe('1');
      expect(r.attributes.SenderId).toMatch(/\S/);
      expect(Number(r.attributes.SentTimestamp)).toBeGreaterThan(sentAt - 60_000);
      expect(Number(r.attributes.ApproximateFirstReceiveTimestamp)).toBeGreaterThanOrEqual(
        Number(r.attributes.SentTimestamp),
      );
    }
    const rich = records.find((r) => r.messageId === withAttrs.MessageId)!;
    expect(rich.body).toBe('{"collection":"c1"}');
    expect(rich.md5OfMessageAttributes).toBe(withAttrs.MD5OfMessageAttributes);
    expect(rich.messageAttributes).toEqual({
      kind: { dataType: 'String', stringValue: 'build', stringListValues: [], binaryListValues: [] },
      n: { dataType: 'Number', stringValue: '42', stringListValues: [], binaryListValues: [] },
      raw: {
        dataType: 'Binary',
        binaryValue: Buffer.from([1, 2, 3]).toString('base64'),
        stringListValues: [],
        binaryListValues: [],
      },
    });
    const plain = records.find((r) => r.body === 'm0')!;
    expect(plain.messageAttributes).toEqual({});

    expect(await queueCounts(url)).toEqual({ visible: 0, inFlight: 0 });
  });

  it('keeps exactly the reported batchItemFailures, which come back with ApproximateReceiveCount 2', async () => {
    const { url } = await newQueue(1);
    await sendBodies(url, ['ok-1', 'fail-1', 'ok-2', 'fail-2', 'ok-3']);
    const deliveries: SQSRecord[] = [];
    const poller = startSqsPoller({
      sqs,
      queueUrl: url,
      batchSize: 10,
      handler: async (e) => {
        deliveries.push(...e.Records);
        return {
          batchItemFailures: e.Records.filter(
            (r) => r.body.startsWith('fail') && r.attributes.ApproximateReceiveCount === '1',
          ).map((r) => ({ itemIdentifier: r.messageId })),
        };
      },
    });
    try {
      await waitFor(() => deliveries.length >= 7, 10_000, 'redelivery of the failed items');
      await sleep(1_500); // past another visibility timeout: nothing else may come back
    } finally {
      await poller.stop();
    }
    const first = deliveries.filter((r) => r.attributes.ApproximateReceiveCount === '1');
    const second = deliveries.filter((r) => r.attributes.ApproximateReceiveCount === '2');
    expect(first.map((r) => r.body).sort()).toEqual(['fail-1', 'fail-2', 'ok-1', 'ok-2', 'ok-3']);
    expect(second.map((r) => r.body).sort()).toEqual(['fail-1', 'fail-2']);
    expect(deliveries).toHaveLength(7);
    // Same messages, new receipt handles.
    for (const r of second) {
      const before = first.find((f) => f.messageId === r.messageId)!;
      expect(r.receiptHandle).not.toBe(before.receiptHandle);
      expect(r.attributes.ApproximateFirstReceiveTimestamp).toBe(before.attributes.ApproximateFirstReceiveTimestamp);
    }
    expect(await queueCounts(url)).toEqual({ visible: 0, inFlight: 0 });
  });

  it('deletes nothing when the handler throws, or reports an item that is not in the batch', async () => {
    const { url } = await newQueue(1);
    await sendBodies(url, ['a', 'b', 'c']);
    const counts: string[][] = [];
    const errors: SqsPollerErrorContext[] = [];
    // The handler's answer depends on the delivery count, not on how a busy machine happens
    // to split re-deliveries into batches: 1st delivery throws, 2nd names a foreign item, 3rd succeeds.
    const poller = startSqsPoller({
      sqs,
      queueUrl: url,
      handler: async (e) => {
        counts.push(e.Records.map((r) => `${r.body}:${r.attributes.ApproximateReceiveCount}`).sort());
        const delivery = Math.max(...e.Records.map((r) => Number(r.attributes.ApproximateReceiveCount)));
        if (delivery === 1) throw new Error('boom');
        if (delivery === 2) return { batchItemFailures: [{ itemIdentifier: 'not-in-this-batch' }] };
        return undefined;
      },
      onError: (_err, ctx) => void errors.push(ctx),
    });
    try {
      await waitFor(
        () => counts.flat().filter((c) => c.endsWith(':3')).length === 3,
        15_000,
        'three deliveries of each message',
      );
      await sleep(1_300);
    } finally {
      await poller.stop();
    }
    // Neither a thrown handler nor a malformed response deleted anything: every message came
    // back until the successful delivery, and none after it.
    expect(counts.flat().sort()).toEqual(['a:1', 'a:2', 'a:3', 'b:1', 'b:2', 'b:3', 'c:1', 'c:2', 'c:3']);
    expect(errors.filter((e) => e.phase === 'handler').flatMap((e) => e.messageIds)).toHaveLength(3);
    expect(await queueCounts(url)).toEqual({ visible: 0, inFlight: 0 });
  });

  it("moves a message that fails maxReceiveCount times to the DLQ (the queue's RedrivePolicy, as on AWS)", async () => {
    const { queueUrl, dlqUrl } = await ensureQueueWithDlq(sqs, `rt-redrive-${process.pid}`, {
      visibilityTimeoutSeconds: 1,
      maxReceiveCount: 3,
    });
    const [poisonId] = await sendBodies(queueUrl, ['poison']);
    await sendBodies(queueUrl, ['fine']);
    const seen: string[] = [];
    const poller = startSqsPoller({
      sqs,
      queueUrl,
      handler: async (e) => {
        seen.push(...e.Records.map((r) => `${r.body}:${r.attributes.ApproximateReceiveCount}`));
        return {
          batchItemFailures: e.Records.filter((r) => r.body === 'poison').map((r) => ({ itemIdentifier: r.messageId })),
        };
      },
    });
    let dlqMessages: { MessageId?: string; Body?: string }[] = [];
    try {
      await waitFor(
        async () => {
          const res = await sqs.send(
            new ReceiveMessageCommand({ QueueUrl: dlqUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }),
          );
          dlqMessages.push(...(res.Messages ?? []));
          return dlqMessages.length > 0;
        },
        15_000,
        'the poison message in the DLQ',
      );
    } finally {
      await poller.stop();
    }
    dlqMessages = dlqMessages.filter((m) => m.MessageId === poisonId);
    expect(dlqMessages).toHaveLength(1);
    expect(dlqMessages[0].Body).toBe('poison');
    expect(seen.filter((s) => s.startsWith('poison')).sort()).toEqual(['poison:1', 'poison:2', 'poison:3']);
    expect(seen.filter((s) => s.startsWith('fine'))).toEqual(['fine:1']);
    expect(await queueCounts(queueUrl)).toEqual({ visible: 0, inFlight: 0 });
  });

  it('stop() waits for the in-flight batch and its deletion; an idle stop() abandons the long poll at once', async () => {
    const { url } = await newQueue(30);
    await sendBodies(url, ['slow']);
    const started = deferred();
    const release = deferred();
    let finished = false;
    const poller = startSqsPoller({
      sqs,
      queueUrl: url,
      waitSeconds: 20,
      handler: async () => {
        started.resolve();
        await release.promise;
        finished = true;
      },
    });
    await started.promise;
    let stopped = false;
    const stopping = poller.stop().then(() => (stopped = true));
    await sleep(300);
    expect(stopped).toBe(false);
    release.resolve();
    await stopping;
    expect(finished).toBe(true);
    expect(await queueCounts(url)).toEqual({ visible: 0, inFlight: 0 });

    const idle = startSqsPoller({ sqs, queueUrl: url, waitSeconds: 20, handler: async () => undefined });
    await sleep(100);
    const t0 = Date.now();
    await idle.stop();
    expect(Date.now() - t0).toBeLessThan(1_000);
  });

  it('runs `concurrency` batches in parallel', async () => {
    const { url } = await newQueue(30);
    await sendBodies(
      url,
      Array.from({ length: 6 }, (_, i) => `p${i}`),
    );
    let active = 0;
    let maxActive = 0;
    let delivered = 0;
    const poller = startSqsPoller({
      sqs,
      queueUrl: url,
      batchSize: 1,
      concurrency: 3,
      handler: async (e) => {
        active++;
        maxActive = Math.max(maxActive, active);
        await sleep(150);
        active--;
        delivered += e.Records.length;
      },
    });
    try {
      await waitFor(() => delivered >= 6, 10_000, 'six deliveries');
    } finally {
      await poller.stop();
    }
    expect(maxActive).toBeGreaterThan(1);
    expect(maxActive).toBeLessThanOrEqual(3);
  });

  it('rejects a batch size Lambda would not deliver from one receive', () => {
    expect(() =>
      startSqsPoller({ sqs, queueUrl: 'http://x/000000000000/q', batchSize: 11, handler: async () => undefined }),
    ).toThrow(RangeError);
  });
});

describe('startSchedule (EventBridge rate rule)', () => {
  it('delivers Scheduled Events, never overlaps runs, survives errors, and stop() waits for a run', async () => {
    const events: ScheduledEvent[] = [];
    const errors: unknown[] = [];
    let active = 0;
    let maxActive = 0;
    let finished = 0;
    const schedule = startSchedule({
      name: 'shoal-test-tick',
      everyMs: 40,
      handler: async (e) => {
        events.push(e);
        active++;
        maxActive = Math.max(maxActive, active);
        await sleep(100); // longer than the period
        active--;
        finished++;
        if (events.length === 2) throw new Error('tick failed');
      },
      onError: (err) => void errors.push(err),
    });
    await waitFor(() => events.length >= 5, 5_000, 'five ticks');
    const startedBeforeStop = events.length;
    await schedule.stop();
    expect(finished).toBe(startedBeforeStop); // the run in progress was awaited
    await sleep(150);
    expect(events.length).toBe(startedBeforeStop); // and nothing ran after stop
    expect(maxActive).toBe(1);
    expect(errors).toHaveLength(1);

    const e = events[0];
    expect(e['detail-type']).toBe('Scheduled Event');
    expect(e.source).toBe('aws.events');
    expect(e.version).toBe('0');
    expect(e.account).toBe('000000000000');
    expect(e.resources).toEqual([`arn:aws:events:${e.region}:000000000000:rule/shoal-test-tick`]);
    expect(e.time).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(e.detail).toEqual({});
    expect(new Set(events.map((x) => x.id)).size).toBe(events.length);
  });

  it('waits one period before the first run unless runOnStart', async () => {
    let runs = 0;
    const late = startSchedule({ name: 'late', everyMs: 10_000, handler: async () => void runs++ });
    const early = startSchedule({
      name: 'early',
      everyMs: 10_000,
      runOnStart: true,
      handler: async () => void (runs += 100),
    });
    await sleep(100);
    await Promise.all([late.stop(), early.stop()]);
    expect(runs).toBe(100);
  });
});

describe('startLambdaEmulator with the real LambdaClient', () => {
  let emulator: LambdaEmulator;
  let lambda: LambdaClient;
  const asyncCalls: unknown[] = [];
  const asyncErrors: unknown[] = [];
  let lastContext: Context | undefined;

  beforeAll(async () => {
    emulator = await startLambdaEmulator({
      functions: {
        echo: {
          timeoutMs: 5_000,
          memoryMb: 2048,
          handler: async (payload, context) => {
            lastContext = context;
            return {
              payload,
              functionName: context.functionName,
              requestId: context.awsRequestId,
              remaining: context.getRemainingTimeInMillis(),
              memory: context.memoryLimitInMB,
              arn: context.invokedFunctionArn,
              custom: context.clientContext?.custom,
            };
          },
        },
        fail: async () => {
          class ShardLoadError extends Error {
            override name = 'ShardLoadError';
          }
          throw new ShardLoadError('shard 7 is corrupt');
        },
        slow: { timeoutMs: 200, handler: () => sleep(1_000).then(() => 'late') },
        background: async (payload) => {
          await sleep(50);
          asyncCalls.push(payload);
        },
        nothing: async () => undefined,
      },
      onError: (err) => void asyncErrors.push(err),
    });
    lambda = new LambdaClient({
      endpoint: emulator.endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
      maxAttempts: 1,
    });
  });

  afterAll(async () => {
    lambda?.destroy();
    await emulator?.stop();
  });

  const payloadOf = (res: { Payload?: Uint8Array }): unknown => JSON.parse(Buffer.from(res.Payload!).toString('utf8'));

  it('RequestResponse: the payload goes through JSON both ways, with a plausible Context', async () => {
    const input = { queries: [[0.1, 0.2]], k: 3, when: new Date(0), skip: undefined };
    const res = await lambda.send(
      new InvokeCommand({
        FunctionName: 'echo',
        Payload: Buffer.from(JSON.stringify(input)),
        ClientContext: Buffer.from(JSON.stringify({ custom: { slot: 2 } })).toString('base64'),
      }),
    );
    expect(res.StatusCode).toBe(200);
    expect(res.FunctionError).toBeUndefined();
    expect(res.ExecutedVersion).toBe('$LATEST');
    const out = payloadOf(res) as Record<string, unknown>;
    expect(out.payload).toEqual({ queries: [[0.1, 0.2]], k: 3, when: '1970-01-01T00:00:00.000Z' });
    expect(out.functionName).toBe('echo');
    expect(out.requestId).toBe(res.$metadata.requestId);
    expect(out.remaining).toBeGreaterThan(4_000);
    expect(out.remaining).toBeLessThanOrEqual(5_000);
    expect(out.memory).toBe('2048');
    expect(out.arn).toBe('arn:aws:lambda:us-east-1:000000000000:function:echo');
    expect(out.custom).toEqual({ slot: 2 });
    expect(lastContext?.logGroupName).toBe('/aws/lambda/echo');

    // ARN forms and $LATEST resolve to the same function; undefined results read as null.
    for (const name of [
      'arn:aws:lambda:us-east-1:000000000000:function:echo',
      '000000000000:function:echo',
      'echo:$LATEST',
    ]) {
      const r = await lambda.send(new InvokeCommand({ FunctionName: name, Payload: Buffer.from('{"x":1}') }));
      expect((payloadOf(r) as { payload: unknown }).payload).toEqual({ x: 1 });
    }
    const empty = await lambda.send(new InvokeCommand({ FunctionName: 'nothing' }));
    expect(payloadOf(empty)).toBeNull();
  });

  it("a thrown error: FunctionError 'Unhandled' and the Node runtime's error document", async () => {
    const res = await lambda.send(new InvokeCommand({ FunctionName: 'fail', Payload: Buffer.from('{}') }));
    expect(res.StatusCode).toBe(200);
    expect(res.FunctionError).toBe('Unhandled');
    const err = payloadOf(res) as { errorType: string; errorMessage: string; trace: string[] };
    expect(err.errorType).toBe('ShardLoadError');
    expect(err.errorMessage).toBe('shard 7 is corrupt');
    expect(Array.isArray(err.trace)).toBe(true);

    const slow = await lambda.send(new InvokeCommand({ FunctionName: 'slow' }));
    expect(slow.FunctionError).toBe('Unhandled');
    expect(payloadOf(slow)).toMatchObject({
      errorType: 'Sandbox.Timedout',
      errorMessage: expect.stringContaining('Task timed out after 0.20 seconds'),
    });
  });

  it('unknown function or qualifier: ResourceNotFoundException (404)', async () => {
    for (const name of ['nope', 'echo:live']) {
      const err = await lambda.send(new InvokeCommand({ FunctionName: name })).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(ResourceNotFoundException);
      expect((err as ResourceNotFoundException).$metadata.httpStatusCode).toBe(404);
      expect((err as Error).message).toContain('Function not found');
    }
  });

  it('Event invocations answer 202 at once and run in the background; DryRun answers 204; bad JSON is rejected', async () => {
    const res = await lambda.send(
      new InvokeCommand({ FunctionName: 'background', InvocationType: 'Event', Payload: Buffer.from('{"n":1}') }),
    );
    expect(res.StatusCode).toBe(202);
    expect(asyncCalls).toEqual([]);
    await waitFor(() => asyncCalls.length === 1, 2_000, 'the async invocation');
    expect(asyncCalls).toEqual([{ n: 1 }]);

    const dry = await lambda.send(new InvokeCommand({ FunctionName: 'echo', InvocationType: 'DryRun' }));
    expect(dry.StatusCode).toBe(204);

    const bad = await lambda.send(new InvokeCommand({ FunctionName: 'echo', Payload: Buffer.from('{not json') })).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(bad?.name).toBe('InvalidRequestContentException');
  });

  it('stop() waits for running invocations', async () => {
    let done = false;
    const own = await startLambdaEmulator({
      functions: { wait: () => sleep(300).then(() => (done = true)) },
    });
    const client = new LambdaClient({
      endpoint: own.endpoint,
      region: 'us-east-1',
      credentials: { accessKeyId: 'x', secretAccessKey: 'x' },
      maxAttempts: 1,
    });
    try {
      const call = client.send(new InvokeCommand({ FunctionName: 'wait' }));
      await sleep(50);
      await own.stop();
      expect(done).toBe(true);
      expect(payloadOf(await call)).toBe(true);
    } finally {
      client.destroy();
    }
  });
});

describe('bootstrapLocalResources', () => {
  it('creates bucket, tables and queues with DLQs, idempotently', async () => {
    const names = { bucket: 'shoal-boot', catalogTable: 'boot-catalog', recordsTable: 'boot-records' };
    const first = await bootstrapLocalResources({ endpoints: emulators.endpoints, names });
    const second = await bootstrapLocalResources({ endpoints: emulators.endpoints, names });
    expect(second).toEqual(first);
    expect(first.buildQueueUrl).toMatch(/\/shoal-build$/);
    expect(first.buildDlqUrl).toMatch(/\/shoal-build-dlq$/);
    expect(first.importQueueUrl).toMatch(/\/shoal-import$/);
    expect(first.importDlqUrl).toMatch(/\/shoal-import-dlq$/);

    // The CDK stack's queue settings, read in their CDK form: local redelivery and redrive match AWS.
    for (const [url, name, visibility] of [
      [first.buildQueueUrl, 'shoal-build', CDK_QUEUES.build.visibilityTimeout],
      [first.importQueueUrl, 'shoal-import', CDK_QUEUES.import.visibilityTimeout],
    ] as const) {
      const attrs = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['All'] })))
        .Attributes!;
      expect(attrs.VisibilityTimeout).toBe(String(visibility.toSeconds()));
      expect(JSON.parse(attrs.RedrivePolicy!)).toEqual({
        deadLetterTargetArn: `arn:aws:sqs:us-east-1:000000000000:${name}-dlq`,
        maxReceiveCount: CDK_QUEUES.maxReceiveCount,
      });
    }

    const s3 = new S3Client(makeClientConfig(emulators.endpoints, 's3'));
    const ddb = new DynamoDBClient(makeClientConfig(emulators.endpoints, 'dynamodb'));
    try {
      await s3.send(new HeadBucketCommand({ Bucket: 'shoal-boot' }));
      for (const t of ['boot-catalog', 'boot-records']) {
        const d = await ddb.send(new DescribeTableCommand({ TableName: t }));
        expect(d.Table?.TableStatus).toBe('ACTIVE');
      }
    } finally {
      s3.destroy();
      ddb.destroy();
    }
  });
});

describe('startLocalShoal (what `npm start` runs)', () => {
  it('wires gateway → api, build queue → builder, Lambda invoke → shard-search, and keeps state across a restart', async () => {
    const dataDir = await mkdtemp(path.join(tmpdir(), 'shoal-local-'));
    const envBefore = process.env.SHOAL_BUCKET;
    try {
      let shoal = await startLocalShoal({ dataDir, port: 0, silent: true, tickMs: 60_000 });
      const call = async (method: string, route: string, body?: unknown) => {
        const res = await fetch(`${shoal.url}${route}`, {
          method,
          headers: { authorization: `Bearer ${shoal.apiKey}`, 'content-type': 'application/json' },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
        return { status: res.status, json: (await res.json()) as Record<string, unknown> };
      };
      try {
        const key = shoal.apiKey;
        expect(key).toMatch(/^[A-Za-z0-9_-]{32}$/);
        expect((await stat(path.join(dataDir, 'api-key'))).mode & 0o777).toBe(0o600);
        expect(process.env.SHOAL_LAMBDA_ENDPOINT).toBe(shoal.endpoints.lambda);

        const health = await call('GET', '/v1/health');
        expect(health.status).toBe(200);
        expect(health.json.local).toMatchObject({
          s3Endpoint: shoal.endpoints.s3,
          bucket: 'shoal-local',
          region: 'us-east-1',
        });

        expect((await call('POST', '/v1/collections', { name: 'smoke', dimension: 2, metric: 'l2' })).status).toBe(201);
        const vectors = [
          { id: 'a', values: [0, 0] },
          { id: 'b', values: [1, 1] },
        ];
        expect((await call('POST', '/v1/collections/smoke/vectors', { vectors })).status).toBeLessThan(300);
        // A build request travels the build queue to the builder (the tick is a minute away;
        // two rows are below the batching policy, so the write's own wake-up builds nothing).
        expect((await call('POST', '/v1/collections/smoke/index')).status).toBe(202);
        await waitFor(
          async () => ((await call('GET', '/v1/collections/smoke')).json.stats as { indexed: number }).indexed === 2,
          15_000,
          'the build-queue build',
        );

        const lambda = new LambdaClient({
          endpoint: shoal.endpoints.lambda,
          region: shoal.endpoints.region,
          credentials: shoal.endpoints.credentials,
        });
        try {
          const res = await lambda.send(
            new InvokeCommand({
              FunctionName: 'shoal-shard-search',
              Payload: Buffer.from(JSON.stringify({ metric: 'l2', shards: [], queries: [[0, 0]], k: 1 })),
            }),
          );
          expect(res.FunctionError).toBeUndefined();
          expect(JSON.parse(Buffer.from(res.Payload!).toString())).toMatchObject({ results: [[]] });
        } finally {
          lambda.destroy();
        }

        await shoal.stop();
        expect(process.env.SHOAL_BUCKET).toBe(envBefore);

        shoal = await startLocalShoal({ dataDir, port: 0, silent: true, tickMs: 60_000 });
        expect(shoal.apiKey).toBe(key);
        const after = await call('POST', '/v1/collections/smoke/search', { vector: [0.9, 0.9], k: 1 });
        expect(after.status).toBe(200);
        expect(JSON.stringify(after.json)).toContain('"b"');
      } finally {
        await shoal.stop();
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
