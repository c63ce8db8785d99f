/**
 * Creates the AWS resources the CDK stack would create, on the embedded emulators: the bucket, the
 * Catalog and Records tables (through `shared/storage/tables.ts`, the same definitions the stack
 * mirrors), and the SQS queues with their dead-letter queues. Idempotent: safe on every start, also on
 * a data dir that already has the bucket and tables (the queues live in memory and are new each time).
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  SetQueueAttributesCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { dropBuildLeases } from '../../shared/storage/dynamo-plans.js';
import { ensureBucket, ensureTables } from '../../shared/storage/tables.js';
import { QUEUE_SETTINGS_PLAIN } from '../cdk/settings.js';
import { makeClientConfig } from './aws-clients.js';
import type { EmulatorEndpoints } from './emulators.js';

export interface LocalResourceNames {
  bucket: string;
  catalogTable: string;
  recordsTable: string;
  /** Default `shoal-build` (DLQ `<name>-dlq`). */
  buildQueue?: string;
  /** Default `shoal-import` (DLQ `<name>-dlq`). */
  importQueue?: string;
  /** Default `shoal-build-task` (DLQ `<name>-dlq`). */
  buildTaskQueue?: string;
}

export interface LocalResources {
  bucket: string;
  catalogTable: string;
  recordsTable: string;
  buildQueueUrl: string;
  buildDlqUrl: string;
  importQueueUrl: string;
  importDlqUrl: string;
  buildTaskQueueUrl: string;
  buildTaskDlqUrl: string;
}

/** Queue settings: the CDK stack's own (infra/cdk/settings.ts), so local redelivery and redrive behave as on AWS. */
export const QUEUE_SETTINGS = {
  build: {
    visibilityTimeoutSeconds: QUEUE_SETTINGS_PLAIN.build.visibilityTimeoutSeconds,
    maxReceiveCount: QUEUE_SETTINGS_PLAIN.maxReceiveCount,
  },
  import: {
    visibilityTimeoutSeconds: QUEUE_SETTINGS_PLAIN.import.visibilityTimeoutSeconds,
    maxReceiveCount: QUEUE_SETTINGS_PLAIN.maxReceiveCount,
  },
  buildTask: {
    visibilityTimeoutSeconds: QUEUE_SETTINGS_PLAIN.buildTask.visibilityTimeoutSeconds,
    maxReceiveCount: QUEUE_SETTINGS_PLAIN.maxReceiveCount,
  },
  dlqRetentionSeconds: QUEUE_SETTINGS_PLAIN.dlqRetentionSeconds,
} as const;

export async function bootstrapLocalResources(opts: {
  endpoints: EmulatorEndpoints;
  names: LocalResourceNames;
}): Promise<LocalResources> {
  const { endpoints, names } = opts;
  const s3 = new S3Client(makeClientConfig(endpoints, 's3'));
  const ddb = new DynamoDBClient(makeClientConfig(endpoints, 'dynamodb'));
  const sqs = new SQSClient(makeClientConfig(endpoints, 'sqs'));
  try {
    const buildName = names.buildQueue ?? 'shoal-build';
    const importName = names.importQueue ?? 'shoal-import';
    const taskName = names.buildTaskQueue ?? 'shoal-build-task';
    const [, , build, imp, task] = await Promise.all([
      ensureBucket(s3, names.bucket),
      ensureTables(ddb, { catalog: names.catalogTable, records: names.recordsTable }).then(() =>
        // Every builder invocation of the previous run of this data dir is dead, as AWS's would be once
        // their leases expire: without this, a stop in the middle of a build holds the line up to 16 min.
        dropBuildLeases(ddb, names.catalogTable),
      ),
      ensureQueueWithDlq(sqs, buildName, QUEUE_SETTINGS.build),
      ensureQueueWithDlq(sqs, importName, QUEUE_SETTINGS.import),
      ensureQueueWithDlq(sqs, taskName, QUEUE_SETTINGS.buildTask),
    ]);
    return {
      bucket: names.bucket,
      catalogTable: names.catalogTable,
      recordsTable: names.recordsTable,
      buildQueueUrl: build.queueUrl,
      buildDlqUrl: build.dlqUrl,
      importQueueUrl: imp.queueUrl,
      importDlqUrl: imp.dlqUrl,
      buildTaskQueueUrl: task.queueUrl,
      buildTaskDlqUrl: task.dlqUrl,
    };
  } finally {
    s3.destroy();
    ddb.destroy();
    sqs.destroy();
  }
}

/** Creates `<name>-dlq` and `<name>` with a RedrivePolicy to it; returns both URLs. Idempotent. */
export async function ensureQueueWithDlq(
  sqs: SQSClient,
  name: string,
  settings: { visibilityTimeoutSeconds: number; maxReceiveCount: number },
): Promise<{ queueUrl: string; dlqUrl: string; dlqArn: string }> {
  const dlqUrl = await ensureQueue(sqs, `${name}-dlq`, {
    MessageRetentionPeriod: String(QUEUE_SETTINGS.dlqRetentionSeconds),
  });
  const dlqArn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlqUrl, AttributeNames: ['QueueArn'] })))
    .Attributes?.QueueArn;
  if (!dlqArn) throw new Error(`queue ${name}-dlq has no QueueArn`);
  const queueUrl = await ensureQueue(sqs, name, {
    VisibilityTimeout: String(settings.visibilityTimeoutSeconds),
    RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: settings.maxReceiveCount }),
  });
  return { queueUrl, dlqUrl, dlqArn };
}

/** CreateQueue; if the queue exists with other attributes, brings them in line instead. */
async function ensureQueue(sqs: SQSClient, name: string, attributes: Record<string, string>): Promise<string> {
  try {
    const res = await sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: attributes }));
    if (!res.QueueUrl) throw new Error(`CreateQueue ${name} returned no QueueUrl`);
    return res.QueueUrl;
  } catch (err) {
    const errName = (err as { name?: string }).name;
    if (errName !== 'QueueNameExists' && errName !== 'QueueAlreadyExists') throw err;
    const { QueueUrl } = await sqs.send(new GetQueueUrlCommand({ QueueName: name }));
    if (!QueueUrl) throw err;
    await sqs.send(new SetQueueAttributesCommand({ QueueUrl, Attributes: attributes }));
    return QueueUrl;
  }
}
