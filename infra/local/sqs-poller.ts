/**
 * The local stand-in for a Lambda SQS event source mapping (with `ReportBatchItemFailures`).
 *
 * Each worker long-polls the queue, turns the messages into the exact `SQSEvent` Lambda would deliver,
 * calls the handler, then deletes what succeeded:
 * - the handler resolves with nothing / an empty `batchItemFailures`: the whole batch is deleted;
 * - it resolves with `{ batchItemFailures: [{ itemIdentifier }] }`: every message but those is deleted,
 *   the failed ones are left alone and come back after their visibility timeout (receive count + 1);
 * - it throws, or names an item that is not in the batch (Lambda treats a malformed response as a
 *   failure of the whole batch): nothing is deleted.
 *
 * Redrive to a dead-letter queue is the queue's business, as on AWS: fauxqs applies the queue's
 * `RedrivePolicy` itself (on the receive that would exceed `maxReceiveCount` the message moves to the
 * DLQ instead of being delivered), so the poller has no redrive logic of its own.
 */
import {
  DeleteMessageBatchCommand,
  ReceiveMessageCommand,
  type Message,
  type MessageAttributeValue,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent, SQSMessageAttributes, SQSRecord, SQSRecordAttributes } from 'aws-lambda';

export type SqsBatchHandler = (event: SQSEvent) => Promise<SQSBatchResponse | void>;

export interface SqsPollerErrorContext {
  /** What failed: the receive call, the handler (whole batch failed), or the deletion of successes. */
  phase: 'receive' | 'handler' | 'delete';
  queueUrl: string;
  /** Message ids of the batch, when there was one. */
  messageIds?: string[];
}

export interface SqsPollerOptions {
  sqs: SQSClient;
  queueUrl: string;
  handler: SqsBatchHandler;
  /** Messages per event, 1..10 (one ReceiveMessage call per batch). Default 10. */
  batchSize?: number;
  /** Long-poll wait per receive, 0..20 s. Default 1. */
  waitSeconds?: number;
  /** Visibility timeout applied to received messages; undefined = the queue's own. */
  visibilityTimeoutSeconds?: number;
  /** Parallel receive/handle loops (Lambda's concurrent batches). Default 1. */
  concurrency?: number;
  /** Region for `awsRegion`/`eventSourceARN`; default: parsed from the queue URL, else the client's. */
  region?: string;
  /** Called for receive, handler and delete failures; default: `console.error`. Never throws through. */
  onError?: (err: unknown, context: SqsPollerErrorContext) => void;
  /** Pause after a failed receive before the next one (ms). Default 1000. */
  errorBackoffMs?: number;
}

export interface SqsPoller {
  /** Stops receiving (an open long poll is abandoned) and resolves once in-flight batches are finished. */
  stop(): Promise<void>;
}

export function startSqsPoller(opts: SqsPollerOptions): SqsPoller {
  const batchSize = opts.batchSize ?? 10;
  const waitSeconds = opts.waitSeconds ?? 1;
  const concurrency = opts.concurrency ?? 1;
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 10) {
    throw new RangeError(`batchSize must be an integer in [1, 10], got ${batchSize}`);
  }
  if (!Number.isInteger(waitSeconds) || waitSeconds < 0 || waitSeconds > 20) {
    throw new RangeError(`waitSeconds must be an integer in [0, 20], got ${waitSeconds}`);
  }
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new RangeError(`concurrency must be a positive integer, got ${concurrency}`);
  }
  const source = describeQueue(opts.queueUrl, opts.region);
  const onError =
    opts.onError ??
    ((err: unknown, ctx: SqsPollerErrorContext) => {
      console.error(`[sqs-poller ${source.name}] ${ctx.phase} failed`, err);
    });
  const reportError = (err: unknown, ctx: SqsPollerErrorContext): void => {
    try {
      onError(err, ctx);
    } catch {
      // an error reporter must not kill the loop
    }
  };
  const backoffMs = opts.errorBackoffMs ?? 1000;
  const abort = new AbortController();

  const processBatch = async (messages: Message[], region: string): Promise<void> => {
    const records = messages.map((m) => toRecord(m, source.arn(region), region));
    const messageIds = records.map((r) => r.messageId);
    let failed: Set<string>;
    try {
      const response = await opts.handler({ Records: records });
      failed = failedItems(response, messageIds);
    } catch (err) {
      reportError(err, { phase: 'handler', queueUrl: opts.queueUrl, messageIds });
      return; // nothing deleted: the whole batch comes back after the visibility timeout
    }
    const done = records.filter((r) => !failed.has(r.messageId));
    if (done.length === 0) return;
    try {
      const res = await opts.sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: opts.queueUrl,
          Entries: done.map((r, i) => ({ Id: String(i), ReceiptHandle: r.receiptHandle })),
        }),
      );
      if (res.Failed && res.Failed.length > 0) {
        const ids = res.Failed.map((f) => done[Number(f.Id)]?.messageId ?? f.Id ?? '?');
        reportError(
          new Error(
            `DeleteMessageBatch failed for ${res.Failed.length} message(s): ` +
              `${res.Failed[0].Message ?? res.Failed[0].Code}`,
          ),
          {
            phase: 'delete',
            queueUrl: opts.queueUrl,
            messageIds: ids,
          },
        );
      }
    } catch (err) {
      reportError(err, { phase: 'delete', queueUrl: opts.queueUrl, messageIds: done.map((r) => r.messageId) });
    }
  };

  const worker = async (): Promise<void> => {
    while (!abort.signal.aborted) {
      let messages: Message[];
      try {
        const res = await opts.sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: opts.queueUrl,
            MaxNumberOfMessages: batchSize,
            WaitTimeSeconds: waitSeconds,
            VisibilityTimeout: opts.visibilityTimeoutSeconds,
            MessageSystemAttributeNames: ['All'],
            MessageAttributeNames: ['All'],
          }),
          { abortSignal: abort.signal },
        );
        messages = res.Messages ?? [];
      } catch (err) {
        if (abort.signal.aborted) return;
        reportError(err, { phase: 'receive', queueUrl: opts.queueUrl });
        await sleep(backoffMs, abort.signal);
        continue;
      }
      if (messages.length === 0) continue;
      const region = source.region ?? (await opts.sqs.config.region());
      await processBatch(messages, region);
    }
  };

  const workers = Array.from({ length: concurrency }, () => worker());
  let stopping: Promise<void> | undefined;
  return {
    stop() {
      stopping ??= (async () => {
        abort.abort();
        await Promise.allSettled(workers);
      })();
      return stopping;
    },
  };
}

/** Which items the handler reported as failed; a malformed response fails the whole batch, as on Lambda. */
function failedItems(response: SQSBatchResponse | void, messageIds: string[]): Set<string> {
  const all = new Set(messageIds);
  if (response === undefined || response === null) return new Set();
  const failures = (response as Partial<SQSBatchResponse>).batchItemFailures;
  if (failures === undefined || failures === null) return new Set();
  if (!Array.isArray(failures)) return all;
  const failed = new Set<string>();
  for (const f of failures) {
    const id = (f as { itemIdentifier?: unknown } | null)?.itemIdentifier;
    if (typeof id !== 'string' || id === '' || !all.has(id)) return all;
    failed.add(id);
  }
  return failed;
}

interface QueueSource {
  name: string;
  /** Region parsed from the queue URL host (sqs.<region>.…), if any. */
  region?: string;
  arn(region: string): string;
}

/** Queue name, account and region from a queue URL (`https://sqs.<region>.amazonaws.com/<account>/<name>`). */
function describeQueue(queueUrl: string, regionOverride?: string): QueueSource {
  const url = new URL(queueUrl);
  const parts = url.pathname.split('/').filter(Boolean);
  if (parts.length < 2) throw new Error(`not an SQS queue URL: ${queueUrl}`);
  const [account, name] = parts.slice(-2);
  const hostRegion = /^sqs\.([a-z0-9-]+)\./.exec(url.hostname)?.[1];
  const region = regionOverride ?? hostRegion;
  return {
    name,
    region,
    arn: (r) => `arn:aws:sqs:${r}:${account}:${name}`,
  };
}

function toRecord(m: Message, eventSourceARN: string, awsRegion: string): SQSRecord {
  const a = m.Attributes ?? {};
  const attributes: SQSRecordAttributes = {
    ...a,
    ApproximateReceiveCount: a.ApproximateReceiveCount ?? '1',
    SentTimestamp: a.SentTimestamp ?? String(Date.now()),
    SenderId: a.SenderId ?? '000000000000',
    ApproximateFirstReceiveTimestamp: a.ApproximateFirstReceiveTimestamp ?? String(Date.now()),
  };
  const record: SQSRecord = {
    messageId: m.MessageId ?? '',
    receiptHandle: m.ReceiptHandle ?? '',
    body: m.Body ?? '',
    attributes,
    messageAttributes: toMessageAttributes(m.MessageAttributes),
    md5OfBody: m.MD5OfBody ?? '',
    eventSource: 'aws:sqs',
    eventSourceARN,
    awsRegion,
  };
  if (m.MD5OfMessageAttributes) record.md5OfMessageAttributes = m.MD5OfMessageAttributes;
  return record;
}

/** SDK `MessageAttributeValue`s to Lambda's camel-cased shape (binary values base64, list fields empty). */
function toMessageAttributes(attrs: Record<string, MessageAttributeValue> | undefined): SQSMessageAttributes {
  const out: SQSMessageAttributes = {};
  for (const [name, v] of Object.entries(attrs ?? {})) {
    out[name] = {
      dataType: v.DataType ?? 'String',
      ...(v.StringValue !== undefined ? { stringValue: v.StringValue } : {}),
      ...(v.BinaryValue !== undefined ? { binaryValue: Buffer.from(v.BinaryValue).toString('base64') } : {}),
      stringListValues: v.StringListValues ?? [],
      binaryListValues: (v.BinaryListValues ?? []).map((b) => Buffer.from(b).toString('base64')),
    };
  }
  return out;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
