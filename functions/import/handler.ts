/**
 * Import function: an SQS batch handler (ReportBatchItemFailures) on the import queue. A message
 * is either an S3 event notification (`Records[].s3`, keys URL-encoded with `+` for spaces, as S3
 * sends them), an explicit job from the API (`{"type":"import"}`) or a continuation
 * (`{"type":"continue"}`), or a re-embedding migration's step (`{"type":"migrate"}`); the schemas are in
 * `shared/queue/messages.ts`. Each job runs until the
 * invocation's remaining time minus a safety margin, then checkpoints and re-enqueues itself. A
 * message that keeps failing is retried by SQS; on its last receive (`ApproximateReceiveCount` ≥
 * `SHOAL_IMPORT_MAX_RECEIVE`) the job is marked failed with the reason before the message moves to
 * the DLQ.
 */
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import middy from '@middy/core';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { ValidationError } from '../../shared/errors.js';
import { logger } from '../../shared/log.js';
import { parseImportMessage } from '../../shared/queue/messages.js';
import { getRuntime } from '../../shared/runtime.js';

// Configuration is validated during init: a bad deployment fails its cold start, not its first message.
await getRuntime();

async function handleRecord(record: SQSRecord, deadline: number, maxReceive: number): Promise<void> {
  const { imports, migrations } = await getRuntime();
  const work = parseImportMessage(record.body);
  const receiveCount = Number(record.attributes.ApproximateReceiveCount ?? '1');
  if (!work) {
    logger.error('malformed import message; it goes to the DLQ after its last receive', {
      messageId: record.messageId,
      maxReceive,
      body: record.body.slice(0, 200),
    });
    throw new ValidationError(`import message ${record.messageId} is malformed`);
  }
  for (const item of work) {
    try {
      if (item.kind === 'migration') {
        await migrations.run(item.collection, item.migrationId, deadline);
      } else if (item.kind === 'object') {
        // An S3 event: head the object only when the event lacks an ETag (s3:ObjectCreated:Copy).
        await imports.onObjectCreated(item.obj.etag ? item.obj : await imports.complete(item.obj), deadline);
      } else {
        await imports.run(item.collection, item.jobId, deadline);
      }
    } catch (err) {
      const reason = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
      logger.error('import message failed', { messageId: record.messageId, receiveCount, maxReceive, error: reason });
      if (receiveCount >= maxReceive && item.kind === 'migration') {
        await migrations
          .fail(item.collection, item.migrationId, `gave up after ${receiveCount} attempts: ${reason}`)
          .catch(() => undefined);
      } else if (receiveCount >= maxReceive && item.kind !== 'migration') {
        const target = item.kind === 'job' ? item : await imports.jobIdOf(item.obj);
        if (target)
          await imports
            .markFailed(target.collection, target.jobId, `gave up after ${receiveCount} attempts: ${reason}`)
            .catch(() => undefined);
      }
      throw err;
    }
  }
}

export async function importHandler(event: SQSEvent, context: Context): Promise<SQSBatchResponse> {
  const { config } = await getRuntime();
  const deadline = Date.now() + context.getRemainingTimeInMillis() - config.importSafetyMarginMs;
  // A processor per invocation (the local server runs two at once in one process); records in order,
  // each job using the time the previous one left.
  return processPartialResponse(
    event,
    (record: SQSRecord) => handleRecord(record, deadline, config.importMaxReceive),
    new BatchProcessor(EventType.SQS),
    { context, processInParallel: false, throwOnFullBatchFailure: false },
  );
}

export const handler = middy(importHandler).use(injectLambdaContext(logger));
