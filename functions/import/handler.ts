/**
 * Import function: an SQS batch handler (ReportBatchItemFailures) on the import queue. A message
 * is either an S3 event notification (`Records[].s3`, keys URL-encoded with `+` for spaces, as S3
 * sends them), an explicit job from the API (`{"type":"import"}`) or a continuation
 * (`{"type":"continue"}`). Each job runs until the invocation's remaining time minus a safety
 * margin, then checkpoints and re-enqueues itself. A message that keeps failing is retried by SQS;
 * on its last receive (`ApproximateReceiveCount` ≥ `SHOAL_IMPORT_MAX_RECEIVE`) the job is marked
 * failed with the reason before the message moves to the DLQ.
 */
import middy from '@middy/core';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import type { S3ObjectRef } from '../../shared/import/service.js';
import { getRuntime } from '../../shared/runtime.js';

interface Work {
  jobs: Array<{ kind: 'object'; obj: S3ObjectRef } | { kind: 'job'; collection: string; jobId: string }>;
}

/** S3 encodes keys in notifications like a form: `+` is a space, the rest percent-encoded. */
export function decodeS3Key(key: string): string {
  return decodeURIComponent(key.replace(/\+/g, ' '));
}

export function parseImportMessage(body: string): Work | undefined {
  let msg: unknown;
  try {
    msg = JSON.parse(body);
  } catch {
    return undefined;
  }
  if (typeof msg !== 'object' || msg === null) return undefined;
  const m = msg as Record<string, unknown>;
  if (
    (m.type === 'import' || m.type === 'continue') &&
    typeof m.collection === 'string' &&
    typeof m.jobId === 'string'
  ) {
    return { jobs: [{ kind: 'job', collection: m.collection, jobId: m.jobId }] };
  }
  if (m.Event === 's3:TestEvent') return { jobs: [] };
  if (Array.isArray(m.Records)) {
    const jobs: Work['jobs'] = [];
    for (const r of m.Records as Array<Record<string, unknown>>) {
      const s3 = r?.s3 as
        | { bucket?: { name?: unknown }; object?: { key?: unknown; eTag?: unknown; size?: unknown } }
        | undefined;
      if (typeof r?.eventName !== 'string' || !r.eventName.startsWith('ObjectCreated')) continue;
      if (typeof s3?.bucket?.name !== 'string' || typeof s3.object?.key !== 'string') return undefined;
      jobs.push({
        kind: 'object',
        obj: {
          bucket: s3.bucket.name,
          key: decodeS3Key(s3.object.key),
          etag: typeof s3.object.eTag === 'string' ? s3.object.eTag.replace(/"/g, '') : '',
          size: typeof s3.object.size === 'number' ? s3.object.size : 0,
        },
      });
    }
    return { jobs };
  }
  return undefined;
}

async function handleRecord(record: SQSRecord, deadline: number, maxReceive: number): Promise<boolean> {
  const { imports } = await getRuntime();
  const work = parseImportMessage(record.body);
  const receiveCount = Number(record.attributes.ApproximateReceiveCount ?? '1');
  if (!work) {
    console.error(
      `import message ${record.messageId} is malformed; it goes to the DLQ after ${maxReceive} receives: ${record.body.slice(0, 200)}`,
    );
    return false;
  }
  for (const item of work.jobs) {
    try {
      if (item.kind === 'object') {
        // An S3 event: head the object only when the event lacks an ETag (s3:ObjectCreated:Copy).
        await imports.onObjectCreated(item.obj.etag ? item.obj : await imports.complete(item.obj), deadline);
      } else {
        await imports.run(item.collection, item.jobId, deadline);
      }
    } catch (err) {
      const reason = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
      console.error(`import message ${record.messageId} failed (receive ${receiveCount} of ${maxReceive}):`, err);
      if (receiveCount >= maxReceive) {
        const target = item.kind === 'job' ? item : await imports.jobIdOf(item.obj);
        if (target)
          await imports
            .markFailed(target.collection, target.jobId, `gave up after ${receiveCount} attempts: ${reason}`)
            .catch(() => undefined);
      }
      return false;
    }
  }
  return true;
}

export async function importHandler(event: SQSEvent, context: Context): Promise<SQSBatchResponse> {
  const { config } = await getRuntime();
  const deadline = Date.now() + context.getRemainingTimeInMillis() - config.importSafetyMarginMs;
  const failures: string[] = [];
  for (const record of event.Records) {
    if (!(await handleRecord(record, deadline, config.importMaxReceive))) failures.push(record.messageId);
  }
  return { batchItemFailures: failures.map((itemIdentifier) => ({ itemIdentifier })) };
}

export const handler = middy(importHandler);
