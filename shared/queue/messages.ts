/**
 * Every message on Shoal's two SQS queues, as zod schemas, and the one producer every sender
 * uses, so what is sent and what the consumers accept cannot drift apart.
 *
 *   build queue:  `{collection}` (a wake-up, one per write batch; duplicates and losses harmless),
 *                 `{collection, force: true}` (build regardless of the batching policy),
 *                 `{kind: 'verify-artifact', model, version}` (hash a large model artifact),
 *                 `{kind: 'tune', collection, version, jobId}` (an asynchronous tune job: the builder hands it
 *                 on to the build-task queue, whose workers have 15 min).
 *   import queue: `{type: 'migrate', collection, migrationId}` (a re-embedding migration's next step),
 *                 `{type: 'import' | 'continue', collection, jobId}` (an explicit job, a job's
 *                 continuation), S3 event notifications for `imports/` (and S3's test event).
 *   build-task queue: `{kind: 'build-task', collection, line, planId, stage, task}` (one task of a
 *                 build plan, docs/architecture.md §6.5; duplicates and redeliveries harmless).
 */
import { SendMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { z } from 'zod';
import { ConfigError } from '../errors.js';
import type { ImportJobMessage } from '../import/runner.js';
import type { S3ObjectRef } from '../import/service.js';
import type { BuildTaskMessage } from '../indexing/plan.js';
import { PLAN_STAGES } from '../storage/dynamo-plans.js';

export const BuildMessage = z.object({
  kind: z.literal('build').optional(),
  collection: z.string(),
  force: z.boolean().optional(),
});
export const VerifyArtifactMessage = z.object({
  kind: z.literal('verify-artifact'),
  model: z.string(),
  version: z.number().int().min(Number.MIN_SAFE_INTEGER).max(Number.MAX_SAFE_INTEGER),
});
export const TuneMessage = z.object({
  kind: z.literal('tune'),
  collection: z.string(),
  version: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  jobId: z.string(),
});
export const BuildQueueMessage = z.union([VerifyArtifactMessage, TuneMessage, BuildMessage]);
export type BuildQueueMessage = z.infer<typeof BuildQueueMessage>;

export const BuildTaskMessageSchema = z.object({
  kind: z.literal('build-task'),
  collection: z.string(),
  line: z.string(),
  planId: z.string(),
  stage: z.enum(PLAN_STAGES),
  task: z.number().int().nonnegative(),
}) satisfies z.ZodType<BuildTaskMessage>;

export const ImportJobMessageSchema = z.object({
  type: z.enum(['import', 'continue']),
  collection: z.string(),
  jobId: z.string(),
}) satisfies z.ZodType<ImportJobMessage>;

/** The part of an S3 event record the importer reads. */
// Loose: forwarded notifications keep every field S3 sent.
const S3Entity = z.looseObject({
  bucket: z.looseObject({ name: z.string() }),
  object: z.looseObject({ key: z.string(), eTag: z.string().optional(), size: z.number().optional() }),
});
export const S3EventNotification = z.object({
  Records: z.array(z.looseObject({ eventName: z.string(), s3: S3Entity })),
});
export type S3EventNotification = z.infer<typeof S3EventNotification>;
/** Sent once by S3 when a bucket notification is configured. */
const S3TestEvent = z.looseObject({ Event: z.literal('s3:TestEvent') });
/** Any notification's outer shape: each record is then checked on its own (deletes are skipped). */
const NotificationEnvelope = z.object({ Records: z.array(z.looseObject({ eventName: z.unknown() })) });

export const MigrationMessageSchema = z.object({
  type: z.literal('migrate'),
  collection: z.string(),
  migrationId: z.string(),
});

export const ImportQueueMessage = z.union([ImportJobMessageSchema, MigrationMessageSchema, S3EventNotification]);
export type ImportQueueMessage = z.infer<typeof ImportQueueMessage>;

/** The build-task queue carries plan tasks and tune jobs (both long: the build worker's 15 min). */
export const BuildTaskQueueMessage = z.union([BuildTaskMessageSchema, TuneMessage]);
export type BuildTaskQueueMessage = z.infer<typeof BuildTaskQueueMessage>;

export interface QueueMessages {
  build: BuildQueueMessage;
  import: ImportQueueMessage;
  buildTask: BuildTaskQueueMessage;
}
export type QueueName = keyof QueueMessages;

const SCHEMAS: { [Q in QueueName]: z.ZodType<QueueMessages[Q]> } = {
  build: BuildQueueMessage,
  import: ImportQueueMessage,
  buildTask: BuildTaskQueueMessage,
};

/** Sends a queue's messages; validated before sending, so a bad message fails its sender, not a consumer. */
export interface SendOptions {
  /** Hold the message back this many seconds (SQS DelaySeconds, 0–900). */
  delaySeconds?: number;
}

export interface QueueProducer {
  send<Q extends QueueName>(queue: Q, message: QueueMessages[Q], options?: SendOptions): Promise<void>;
}

/** The SQS producer; a queue without a URL fails its sends with a ConfigError. */
export function sqsQueueProducer(sqs: SQSClient, urls: { [Q in QueueName]?: string }): QueueProducer {
  return {
    async send(queue, message, options) {
      const url = urls[queue];
      if (!url) throw new ConfigError(`the ${queue} queue is not configured`);
      const body = SCHEMAS[queue].parse(message);
      const delay = options?.delaySeconds ? Math.min(900, Math.max(0, Math.round(options.delaySeconds))) : undefined;
      await sqs.send(
        new SendMessageCommand({
          QueueUrl: url,
          MessageBody: JSON.stringify(body),
          ...(delay ? { DelaySeconds: delay } : {}),
        }),
      );
    },
  };
}

function json(body: string): unknown {
  try {
    return JSON.parse(body);
  } catch {
    return undefined;
  }
}

export type BuildWork =
  | { kind: 'build'; collection: string; force: boolean }
  | { kind: 'verify-artifact'; model: string; version: number }
  | { kind: 'tune'; collection: string; version: number; jobId: string };

/** A build-queue message body; undefined when malformed. */
export function parseBuildMessage(body: string): BuildWork | undefined {
  const m = BuildQueueMessage.safeParse(json(body));
  if (!m.success) return undefined;
  return m.data.kind === 'verify-artifact' || m.data.kind === 'tune'
    ? m.data
    : { kind: 'build', collection: m.data.collection, force: m.data.force === true };
}

/** A plan task's message body; undefined when malformed (or a tune job). */
export function parseBuildTaskMessage(body: string): BuildTaskMessage | undefined {
  const m = BuildTaskMessageSchema.safeParse(json(body));
  return m.success ? m.data : undefined;
}

/** A build-task queue message body: a plan task or a tune job; undefined when malformed. */
export function parseBuildTaskQueueMessage(body: string): BuildTaskQueueMessage | undefined {
  const m = BuildTaskQueueMessage.safeParse(json(body));
  return m.success ? m.data : undefined;
}

/** `etag` without quotes, '' when the event carries none (s3:ObjectCreated:Copy). */
export type ImportWork =
  | { kind: 'object'; obj: S3ObjectRef }
  | { kind: 'job'; collection: string; jobId: string }
  | { kind: 'migration'; collection: string; migrationId: string };

/** S3 encodes keys in notifications like a form: `+` is a space, the rest percent-encoded. */
function decodeS3Key(key: string): string {
  return decodeURIComponent(key.replace(/\+/g, ' '));
}

/** An import-queue message body as the jobs it asks for; undefined when malformed. */
export function parseImportMessage(body: string): ImportWork[] | undefined {
  const msg = json(body);
  const job = ImportJobMessageSchema.safeParse(msg);
  if (job.success) return [{ kind: 'job', collection: job.data.collection, jobId: job.data.jobId }];
  const migration = MigrationMessageSchema.safeParse(msg);
  if (migration.success) {
    return [{ kind: 'migration', collection: migration.data.collection, migrationId: migration.data.migrationId }];
  }
  if (S3TestEvent.safeParse(msg).success) return [];
  const envelope = NotificationEnvelope.safeParse(msg);
  if (!envelope.success) return undefined;
  const work: ImportWork[] = [];
  for (const record of envelope.data.Records) {
    // Other events (deletes) on the same notification are not ours to act on.
    if (typeof record.eventName !== 'string' || !record.eventName.startsWith('ObjectCreated')) continue;
    const s3 = S3Entity.safeParse(record.s3);
    if (!s3.success) return undefined;
    const { bucket, object } = s3.data;
    work.push({
      kind: 'object',
      obj: {
        bucket: bucket.name,
        key: decodeS3Key(object.key),
        etag: object.eTag?.replace(/"/g, '') ?? '',
        size: object.size ?? 0,
      },
    });
  }
  return work;
}
