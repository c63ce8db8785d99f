/** SQS events as Lambda receives them, for handler tests that feed a batch by hand. */
import type { SQSEvent } from 'aws-lambda';

export interface SqsEventOptions {
  /** Queue name in the record's ARN. */
  queue: string;
  /** `ApproximateReceiveCount` of every record (default 1). */
  receiveCount?: number;
  /** Message id of record i (default `m<i>`). */
  messageId?: (i: number) => string;
}

/** One event whose records carry `bodies` (strings as they are, anything else as JSON). */
export function sqsEvent(bodies: readonly unknown[], opts: SqsEventOptions): SQSEvent {
  return {
    Records: bodies.map((b, i) => ({
      messageId: opts.messageId?.(i) ?? `m${i}`,
      receiptHandle: 'r',
      body: typeof b === 'string' ? b : JSON.stringify(b),
      attributes: {
        ApproximateReceiveCount: String(opts.receiveCount ?? 1),
        SentTimestamp: '0',
        SenderId: 'x',
        ApproximateFirstReceiveTimestamp: '0',
      },
      messageAttributes: {},
      md5OfBody: '',
      eventSource: 'aws:sqs',
      eventSourceARN: `arn:aws:sqs:us-east-1:000000000000:${opts.queue}`,
      awsRegion: 'us-east-1',
    })),
  };
}
