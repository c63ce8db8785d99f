/**
 * Stateful resources (docs/architecture.md §4): the bucket, the Catalog and Records tables, the build, build-task
 * and import queues with their dead-letter queues. Kept apart from the stateless service stack so that the
 * functions, the API and the dashboards can be redeployed or torn down without touching data.
 */
import { Aws, Duration, RemovalPolicy, Stack, type StackProps } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { acknowledge, acknowledgeFindings } from '../nag.js';
import type { Construct } from 'constructs';
import { BY_SEQ_INDEX } from '../../../shared/storage/tables.js';
import { IMPORTS_PREFIX, REPORTS_PREFIX } from '../../../shared/storage/keys.js';
import { QUEUE_SETTINGS, type ShoalSettings } from '../settings.js';

export interface DataStackProps extends StackProps {
  settings: ShoalSettings;
}

export class DataStack extends Stack {
  readonly bucket: s3.Bucket;
  readonly accessLogsBucket: s3.Bucket;
  readonly catalogTable: dynamodb.Table;
  readonly recordsTable: dynamodb.Table;
  readonly buildQueue: sqs.Queue;
  readonly buildDlq: sqs.Queue;
  readonly importQueue: sqs.Queue;
  readonly importDlq: sqs.Queue;
  /** Tasks of build plans (shared/indexing/plan.ts), consumed by the build-worker function. */
  readonly buildTaskQueue: sqs.Queue;
  readonly buildTaskDlq: sqs.Queue;

  constructor(scope: Construct, id: string, props: DataStackProps) {
    super(scope, id, props);
    const { settings } = props;
    const prod = settings.stage === 'prod';
    const removalPolicy = prod ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;

    // --- Queues: SSE (SQS-managed keys, which S3 event notifications can write to), TLS only, DLQs.
    const queueWithDlq = (name: string, visibilityTimeout: Duration): { queue: sqs.Queue; dlq: sqs.Queue } => {
      const dlq = new sqs.Queue(this, `${name}Dlq`, {
        encryption: sqs.QueueEncryption.SQS_MANAGED,
        enforceSSL: true,
        retentionPeriod: QUEUE_SETTINGS.dlqRetention,
        removalPolicy,
      });
      acknowledge(dlq, 'AwsSolutions-SQS3', 'This queue is itself a dead-letter queue; its depth is alarmed on.');
      const queue = new sqs.Queue(this, `${name}Queue`, {
        encryption: sqs.QueueEncryption.SQS_MANAGED,
        enforceSSL: true,
        visibilityTimeout,
        deadLetterQueue: { queue: dlq, maxReceiveCount: QUEUE_SETTINGS.maxReceiveCount },
        removalPolicy,
      });
      return { queue, dlq };
    };
    ({ queue: this.buildQueue, dlq: this.buildDlq } = queueWithDlq('Build', QUEUE_SETTINGS.build.visibilityTimeout));
    ({ queue: this.importQueue, dlq: this.importDlq } = queueWithDlq(
      'Import',
      QUEUE_SETTINGS.import.visibilityTimeout,
    ));
    ({ queue: this.buildTaskQueue, dlq: this.buildTaskDlq } = queueWithDlq(
      'BuildTask',
      QUEUE_SETTINGS.buildTask.visibilityTimeout,
    ));

    // --- Buckets.
    this.accessLogsBucket = new s3.Bucket(this, 'AccessLogs', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      lifecycleRules: [{ id: 'expire-access-logs', expiration: Duration.days(prod ? 365 : 30) }],
      removalPolicy,
      autoDeleteObjects: !prod,
    });
    acknowledge(
      this.accessLogsBucket,
      'AwsSolutions-S1',
      'This is the server-access-log target bucket; logging it to itself would loop.',
    );

    // A deterministic name, so the import queue's policy can name the bucket (aws:SourceArn) without a
    // reference to it, and the bucket can carry a native notification configuration (no custom resource).
    const bucketName = `${settings.prefix}-data-${Aws.ACCOUNT_ID}-${Aws.REGION}`;
    const bucketArn = `arn:${Aws.PARTITION}:s3:::${bucketName}`;
    this.bucket = new s3.Bucket(this, 'Data', {
      bucketName,
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      minimumTLSVersion: 1.2,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      versioned: true,
      serverAccessLogsBucket: this.accessLogsBucket,
      serverAccessLogsPrefix: 'data/',
      lifecycleRules: [
        // User uploads are consumed once by the import job; the job's report stays longer.
        {
          id: 'expire-imports',
          prefix: IMPORTS_PREFIX,
          expiration: Duration.days(30),
          noncurrentVersionExpiration: Duration.days(1),
        },
        {
          id: 'expire-reports',
          prefix: REPORTS_PREFIX,
          expiration: Duration.days(90),
          noncurrentVersionExpiration: Duration.days(1),
        },
        // Shards and bitmaps are immutable; a noncurrent version exists only after garbage collection
        // deleted it, and is kept a week as an undo window.
        {
          id: 'noncurrent-and-multipart',
          noncurrentVersionExpiration: Duration.days(7),
          abortIncompleteMultipartUploadAfter: Duration.days(1),
        },
      ],
      removalPolicy,
      autoDeleteObjects: !prod,
    });

    // S3 → import queue for `imports/` only.
    this.importQueue.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AllowS3ImportNotifications',
        principals: [new iam.ServicePrincipal('s3.amazonaws.com')],
        actions: ['sqs:SendMessage'],
        resources: [this.importQueue.queueArn],
        conditions: {
          ArnEquals: { 'aws:SourceArn': bucketArn },
          StringEquals: { 'aws:SourceAccount': Aws.ACCOUNT_ID },
        },
      }),
    );
    const cfnBucket = this.bucket.node.defaultChild as s3.CfnBucket;
    cfnBucket.notificationConfiguration = {
      queueConfigurations: [
        {
          event: 's3:ObjectCreated:*',
          queue: this.importQueue.queueArn,
          filter: { s3Key: { rules: [{ name: 'prefix', value: IMPORTS_PREFIX }] } },
        },
      ],
    };
    // S3 checks that it may write to the queue when the configuration is put.
    const importQueuePolicy = this.importQueue.node.tryFindChild('Policy');
    if (!(importQueuePolicy instanceof sqs.QueuePolicy)) throw new Error('import queue has no resource policy');
    cfnBucket.addResourceDependency(importQueuePolicy.node.defaultChild as sqs.CfnQueuePolicy);

    // --- Tables: mirror shared/storage/tables.ts (CATALOG_TABLE, RECORDS_TABLE) exactly.
    const tableDefaults = {
      billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
      encryption: dynamodb.TableEncryption.AWS_MANAGED,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      deletionProtection: prod,
      removalPolicy,
    } as const;
    this.catalogTable = new dynamodb.Table(this, 'Catalog', {
      ...tableDefaults,
      partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'sk', type: dynamodb.AttributeType.STRING },
      // queryId → experiment arm items (feedback attribution) expire on their own.
      timeToLiveAttribute: 'ttl',
    });
    this.recordsTable = new dynamodb.Table(this, 'Records', {
      ...tableDefaults,
      partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
    });
    this.recordsTable.addGlobalSecondaryIndex({
      indexName: BY_SEQ_INDEX,
      partitionKey: { name: 'ck', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'seq', type: dynamodb.AttributeType.NUMBER },
      projectionType: dynamodb.ProjectionType.ALL,
    });

    const autoDelete = this.node.tryFindChild('Custom::S3AutoDeleteObjectsCustomResourceProvider');
    if (autoDelete) {
      acknowledgeFindings(autoDelete, [
        {
          pattern: new RegExp(
            '^AwsSolutions-IAM4\\[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/' +
              'AWSLambdaBasicExecutionRole\\]$',
          ),
          reason:
            'dev only: the CDK-managed provider that empties the buckets on `cdk destroy` logs through ' +
            'AWSLambdaBasicExecutionRole; prod keeps its buckets (RETAIN) and has no such provider.',
        },
        {
          pattern: /^AwsSolutions-L1$/,
          reason:
            'dev only: the runtime of the CDK-managed auto-delete provider is chosen by aws-cdk-lib, not by Shoal.',
        },
      ]);
    }
  }
}
