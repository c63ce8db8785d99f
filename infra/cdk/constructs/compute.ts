/**
 * The functions: api (all v1 routes), index-builder (build queue + 1-minute tick), build-worker (tasks
 * of build plans), N shard-search slots, and the API-key authorizer. Each gets exactly the permissions
 * its code path uses:
 *
 * - api — DynamoDB: read/write Catalog (which includes managing API keys: Put/Delete/Query/Update on the
 *   `APIKEY#…` and `APIKEYS` items, `/v1/keys`), Records (+bySeq). S3: GetObject shards/ deletes/ imports/,
 *   ListBucket; Get/Put/Delete/AbortMultipartUpload models/. SQS / Lambda: SendMessage build + import
 *   queues; Invoke searcher slots.
 * - index-builder — DynamoDB: read/write Catalog, Records (+bySeq). S3: Get/Put/Delete shards/
 *   deletes/ centroids/, Get/Delete plans/ (abandoning a stalled plan), List those prefixes; Get/Put/Delete
 *   models/ (artifact verification). SQS / Lambda: consume build queue; SendMessage import queue (the
 *   tick's import sweeper re-announces stuck jobs) and build-task queue (plans it starts or redrives).
 * - build-worker — DynamoDB: read/write Catalog (plan items, the write log, the manifest commit), read
 *   Records (the tail's rows; not the bySeq index). S3: Get/Put/Delete plans/, Get/Put shards/ centroids/,
 *   Get deletes/, List plans/. SQS / Lambda: consume build-task queue; SendMessage build-task queue (the
 *   next stage's tasks).
 * - shard-search — DynamoDB: —. S3: GetObject shards/ deletes/. SQS / Lambda: —.
 * - import — DynamoDB: read/write Catalog, Records (+bySeq). S3: GetObject imports/, Get/Put reports/,
 *   ListBucket. SQS / Lambda: consume import queue; SendMessage import + build queues.
 * - authorizer — DynamoDB: GetItem Catalog, keys `APIKEY#…` only (read-only: `lastUsedAt` is the api
 *   function's write). S3: —. SQS / Lambda: —.
 */
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as s3 from 'aws-cdk-lib/aws-s3';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { acknowledge, acknowledgeFindings } from '../nag.js';
import { Construct } from 'constructs';
import { BY_SEQ_INDEX } from '../../../shared/storage/tables.js';
import {
  APIKEY_PREFIX,
  CENTROIDS_PREFIX,
  DELETES_PREFIX,
  IMPORTS_PREFIX,
  INDEX_PREFIXES,
  MANIFESTS_PREFIX,
  MILVUS_SCHEMAS_PREFIX,
  MODELS_OBJECT_PREFIX,
  INPUTS_PREFIX,
  PLANS_PREFIX,
  REPORTS_PREFIX,
  SHARDS_PREFIX,
} from '../../../shared/storage/keys.js';
import {
  BUILD_TICK,
  BUILDER_EVENT_SOURCE,
  FUNCTION_SIZING,
  IMPORT_SAFETY_MARGIN_S,
  IMPORTER_EVENT_SOURCE,
  QUEUE_SETTINGS,
  shardCacheMb,
  serviceName,
  shardDiskMb,
  type FunctionRole,
  type ShoalSettings,
} from '../settings.js';
import { SEARCH_NODE_SCATTER_MIN_MB, SearchNodes, searchNodeUrlTemplate } from './search-nodes.js';
import { ShoalFunction, type ShoalFunctionProps } from './shoal-function.js';

export interface ComputeProps {
  settings: ShoalSettings;
  bucket: s3.IBucket;
  catalogTable: dynamodb.ITable;
  recordsTable: dynamodb.ITable;
  buildQueue: sqs.IQueue;
  importQueue: sqs.IQueue;
  buildTaskQueue: sqs.IQueue;
}

/** The DynamoDB actions the storage adapters issue (shared/storage/dynamo-*.ts). */
export const TABLE_RW_ACTIONS = [
  'dynamodb:GetItem',
  'dynamodb:BatchGetItem',
  'dynamodb:Query',
  'dynamodb:PutItem',
  'dynamodb:BatchWriteItem',
  'dynamodb:UpdateItem',
  'dynamodb:DeleteItem',
  'dynamodb:ConditionCheckItem',
];

/** What the build worker may do on the Records table: read by key (the tail's rows come by BatchGetItem). */
export const RECORDS_READ_ACTIONS = ['dynamodb:GetItem', 'dynamodb:BatchGetItem', 'dynamodb:Query'];

/**
 * The build worker's SQS event source. One task per invocation: a task may run for a third of the
 * 15-minute timeout and hold ~150 MB of vectors, so a second message in the batch would only wait
 * (its visibility clock running); parallelism comes from concurrency instead.
 */
export const BUILD_WORKER_EVENT_SOURCE = { batchSize: 1 } as const;

/**
 * The event source's maximum concurrency for `buildWorkers` of reserved concurrency. An SQS event
 * source does not see reserved concurrency: left alone it receives more tasks than the workers can
 * take, and each throttled task sits in flight while Lambda retries it, up to the visibility timeout
 * (6 × 15 min), after which it counts as a receive toward maxReceiveCount. Capping the event source at
 * the reservation avoids that; SQS event sources accept no less than 2.
 */
export function buildWorkerMaxConcurrency(settings: ShoalSettings): number {
  return Math.max(2, settings.buildWorkers);
}

/** The searcher function name template (SHOAL_SHARD_SEARCH_FUNCTION); `{slot}` is 0..N-1. */
export function shardSearchFunctionTemplate(settings: ShoalSettings): string {
  return `${settings.prefix}-shard-search-{slot}`;
}

/** Data-bucket folders some role is granted `<folder>/*` on (acknowledged for cdk-nag IAM5 below). */
const OBJECT_WILDCARD_FOLDERS = [
  'shards',
  'deletes',
  'centroids',
  'plans',
  'imports',
  'reports',
  'models',
  'milvus',
  'manifests',
  'inputs',
];

/** The functions that run ONNX models and so ship onnxruntime-node (docs/models.md). */
const MODEL_ROLES: ReadonlySet<FunctionRole> = new Set<FunctionRole>(['api', 'importer', 'indexBuilder']);

export class Compute extends Construct {
  readonly api: ShoalFunction;
  readonly indexBuilder: ShoalFunction;
  readonly buildWorker: ShoalFunction;
  readonly shardSearch: ShoalFunction[];
  readonly importer: ShoalFunction;
  readonly authorizer: ShoalFunction;
  /** Resident search nodes and their VPC (context `searchNodes=true`), else undefined. */
  readonly searchNodes?: SearchNodes;
  /** Every Shoal-config function (not the authorizer), by role. */
  readonly all: Record<string, ShoalFunction>;

  constructor(scope: Construct, id: string, props: ComputeProps) {
    super(scope, id);
    const { settings, bucket, catalogTable, recordsTable, buildQueue, importQueue, buildTaskQueue } = props;
    const prod = settings.stage === 'prod';
    const logRetention = prod ? logs.RetentionDays.THREE_MONTHS : logs.RetentionDays.TWO_WEEKS;
    const removalPolicy = prod ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY;
    const template = shardSearchFunctionTemplate(settings);
    const nodeSettings = settings.searchNodes;
    if (nodeSettings) {
      this.searchNodes = new SearchNodes(this, 'SearchNodes', {
        settings: { ...settings, searchNodes: nodeSettings },
        logRetention,
        removalPolicy,
      });
    }

    // shared/config.ts: every function parses the whole schema at its first request (and fails the
    // cold start on a missing or malformed variable), so each gets the required set.
    const baseEnv = (role: FunctionRole): Record<string, string> => {
      const sizing = FUNCTION_SIZING[role];
      return {
        SHOAL_BUCKET: bucket.bucketName,
        SHOAL_CATALOG_TABLE: catalogTable.tableName,
        SHOAL_RECORDS_TABLE: recordsTable.tableName,
        SHOAL_BUILD_QUEUE_URL: buildQueue.queueUrl,
        SHOAL_IMPORT_QUEUE_URL: importQueue.queueUrl,
        SHOAL_IMPORT_SAFETY_MARGIN_S: String(IMPORT_SAFETY_MARGIN_S),
        // The job is marked failed on the receive that would send its message to the DLQ.
        SHOAL_IMPORT_MAX_RECEIVE: String(QUEUE_SETTINGS.maxReceiveCount),
        // Search in process up to half the shard cache; scatter only bigger shard sets (shared/config.ts).
        SHOAL_SCATTER_MIN_MB: String(Math.floor(shardCacheMb(sizing.memoryMb) / 2)),
        SHOAL_SHARD_SEARCH_FUNCTION: template,
        SHOAL_SEARCH_SLOTS: String(settings.searchSlots),
        SHOAL_SHARD_CACHE_MB: String(shardCacheMb(sizing.memoryMb)),
        SHOAL_SHARD_CACHE_DIR: '/tmp/shoal-shards',
        SHOAL_SHARD_DISK_MB: String(shardDiskMb(sizing.ephemeralMb)),
        SHOAL_BUILD_DELTA_MIN_ROWS: '1000',
        SHOAL_BUILD_DELTA_MAX_AGE_S: '60',
        // Per-key token bucket of the api function, per container (docs/security.md): 50 req/s, burst 100.
        SHOAL_RATE_LIMIT_RPS: '50',
        SHOAL_RATE_LIMIT_BURST: '100',
        ...(settings.gitSha ? { SHOAL_GIT_SHA: settings.gitSha } : {}),
        // For the EMF metrics (docs/operations.md): Powertools reads these.
        POWERTOOLS_METRICS_NAMESPACE: 'Shoal',
        POWERTOOLS_SERVICE_NAME: serviceName(settings, role),
      };
    };
    const make = (
      idPart: string,
      role: FunctionRole,
      entry: string,
      description: string,
      extra?: {
        functionName?: string;
        environment?: Record<string, string>;
        reservedConcurrency?: number;
        vpc?: ShoalFunctionProps['vpc'];
      },
    ) => {
      const sizing = FUNCTION_SIZING[role];
      return new ShoalFunction(this, idPart, {
        entry,
        description,
        memoryMb: sizing.memoryMb,
        timeout: sizing.timeout,
        ephemeralMb: sizing.ephemeralMb,
        environment: extra?.environment ?? baseEnv(role),
        logRetention,
        removalPolicy,
        ...(extra?.functionName ? { functionName: extra.functionName } : {}),
        ...(extra?.reservedConcurrency !== undefined ? { reservedConcurrency: extra.reservedConcurrency } : {}),
        ...(extra?.vpc ? { vpc: extra.vpc } : {}),
        // Embedding functions (api), migrations (import) and checks of large ONNX artifacts (builder).
        models: MODEL_ROLES.has(role),
      });
    };

    const nodes = this.searchNodes;
    this.api = make(
      'Api',
      'api',
      'functions/api/handler.ts',
      'Shoal HTTP API v1 (all routes) and search coordinator',
      nodes
        ? {
            // Slot parts go to the resident nodes, the slot functions only when a node does not answer. A part
            // then costs ~1 ms, about one 768-d shard's search, so scattering pays from a few shards up, not
            // from the ~400 MiB that justify a ~10 ms invoke.
            environment: {
              ...baseEnv('api'),
              SHOAL_SEARCH_NODES: searchNodeUrlTemplate(settings),
              SHOAL_SCATTER_MIN_MB: String(SEARCH_NODE_SCATTER_MIN_MB),
            },
            vpc: {
              vpc: nodes.vpc,
              securityGroups: [nodes.apiSecurityGroup],
              subnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
            },
          }
        : undefined,
    );
    // The planner and its workers share the build-task queue; without its URL every build runs in the
    // builder invocation (shared/config.ts), so only these two get it.
    const withBuildTasks = (role: FunctionRole) => ({
      ...baseEnv(role),
      SHOAL_BUILD_TASK_QUEUE_URL: buildTaskQueue.queueUrl,
    });
    this.indexBuilder = make(
      'IndexBuilder',
      'indexBuilder',
      'functions/index-builder/handler.ts',
      'Shoal index builder (build queue + tick)',
      { environment: withBuildTasks('indexBuilder') },
    );
    this.buildWorker = make(
      'BuildWorker',
      'buildWorker',
      'functions/build-worker/handler.ts',
      'Shoal build worker (tasks of build plans)',
      // Reserved: how many tasks run at once (docs/operations.md §3), guaranteed even when the api's
      // fan-out uses up the account's concurrency, and a ceiling on the DynamoDB and S3 load of all plans.
      { environment: withBuildTasks('buildWorker'), reservedConcurrency: settings.buildWorkers },
    );
    this.shardSearch = [];
    for (let slot = 0; slot < settings.searchSlots; slot++) {
      this.shardSearch.push(
        make(`ShardSearch${slot}`, 'shardSearch', 'functions/shard-search/handler.ts', `Shoal searcher slot ${slot}`, {
          functionName: template.replace('{slot}', String(slot)),
        }),
      );
    }
    nodes?.addSlots(settings.searchSlots, baseEnv('shardSearch'));
    this.importer = make(
      'Import',
      'importer',
      'functions/import/handler.ts',
      'Shoal bulk import (S3 uploads and API import jobs)',
    );
    this.authorizer = make(
      'Authorizer',
      'authorizer',
      'functions/authorizer/handler.ts',
      'Shoal API-key authorizer (hashed keys in the catalog)',
      {
        environment: { SHOAL_CATALOG_TABLE: catalogTable.tableName },
      },
    );
    this.all = {
      api: this.api,
      indexBuilder: this.indexBuilder,
      buildWorker: this.buildWorker,
      importer: this.importer,
      ...Object.fromEntries(this.shardSearch.map((f, i) => [`shardSearch${i}`, f])),
    };

    // --- Permissions.
    const recordsIndexArn = `${recordsTable.tableArn}/index/${BY_SEQ_INDEX}`;
    const objectArns = (prefixes: readonly string[]) => prefixes.map((p) => bucket.arnForObjects(`${p}*`));
    const tablesRw = new iam.PolicyStatement({
      sid: 'TablesReadWrite',
      actions: TABLE_RW_ACTIONS,
      resources: [catalogTable.tableArn, recordsTable.tableArn, recordsIndexArn],
    });
    const readIndexObjects = new iam.PolicyStatement({
      sid: 'ReadIndexObjects',
      actions: ['s3:GetObject'],
      resources: objectArns(INDEX_PREFIXES),
    });

    // S3 answers HeadObject on a missing key with 404 (not 403) only to callers that may list the
    // bucket; the import path relies on that (sidecar probing, "no such upload" errors).
    const listBucket = new iam.PolicyStatement({
      sid: 'ListBucketForHeadObject404',
      actions: ['s3:ListBucket'],
      resources: [bucket.bucketArn],
    });

    // Manifests over the item budget live in S3 (docs/architecture.md §4.1, "Manifest size"): everyone who
    // reads manifests (search, tail cap, builders) gets them; the committers (index builder, plan tasks) write
    // them and delete a lost race's copy; the api deletes them with their collection.
    const manifestObjects = (sid: string, actions: string[]): iam.PolicyStatement =>
      new iam.PolicyStatement({ sid, actions, resources: objectArns([MANIFESTS_PREFIX]) });
    this.api.role.addToPolicy(manifestObjects('ManifestObjects', ['s3:GetObject', 's3:DeleteObject']));
    this.importer.role.addToPolicy(manifestObjects('ReadManifestObjects', ['s3:GetObject']));
    for (const fn of [this.indexBuilder, this.buildWorker]) {
      fn.role.addToPolicy(manifestObjects('ManifestObjects', ['s3:GetObject', 's3:PutObject', 's3:DeleteObject']));
    }

    // api: rows and catalog, shards for in-process search, import jobs, wake the builder and the importer,
    // invoke the searcher slots.
    this.api.role.addToPolicy(tablesRw);
    this.api.role.addToPolicy(readIndexObjects);
    this.api.role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'HeadUploads',
        actions: ['s3:GetObject'],
        resources: objectArns([IMPORTS_PREFIX]),
      }),
    );
    // `POST …/imports/uploads` presigns PUTs into the drop folders (they act with this role's permissions);
    // `GET …/imports/{jobId}/rejects` reads the reject reports.
    this.api.role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'PresignImportUploads',
        actions: ['s3:PutObject'],
        resources: objectArns([IMPORTS_PREFIX]),
      }),
    );
    this.api.role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ReadImportReports',
        actions: ['s3:GetObject'],
        resources: objectArns([REPORTS_PREFIX]),
      }),
    );
    // The Milvus REST layer keeps each collection's Milvus schema as one small object (docs/milvus.md).
    this.api.role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'MilvusSchemas',
        actions: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'],
        resources: objectArns([MILVUS_SCHEMAS_PREFIX]),
      }),
    );
    this.api.role.addToPolicy(listBucket);
    // Model artifacts: inline puts, hashing (GetObject), the conditional copy to the committed key
    // (Get on the source + Put on the target), dropping the staging object, and — through URLs it
    // presigns, which act with this role's permissions — client PUTs and multipart parts
    // (s3:PutObject covers Create/UploadPart/CompleteMultipartUpload) and aborts.
    this.api.role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ModelArtifacts',
        actions: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject', 's3:AbortMultipartUpload'],
        resources: objectArns([MODELS_OBJECT_PREFIX]),
      }),
    );
    // Embedding functions keep each upsert batch's raw model inputs (docs/models.md); the model itself is read
    // through ModelArtifacts above.
    this.api.role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'RawModelInputs',
        actions: ['s3:GetObject', 's3:PutObject'],
        resources: objectArns([INPUTS_PREFIX]),
      }),
    );
    this.api.role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'WakeBuilderAndImporter',
        actions: ['sqs:SendMessage'],
        resources: [buildQueue.queueArn, importQueue.queueArn],
      }),
    );
    this.api.role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'InvokeSearcherSlots',
        actions: ['lambda:InvokeFunction'],
        resources: this.shardSearch.map((f) => f.fn.functionArn),
      }),
    );

    // index-builder: rows and catalog, writes and collects shards and bitmaps.
    this.indexBuilder.role.addToPolicy(tablesRw);
    this.indexBuilder.role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'WriteIndexObjects',
        actions: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'],
        resources: objectArns(INDEX_PREFIXES),
      }),
    );
    // Asynchronous commits of large model artifacts: hash the staged object, copy it to its
    // content-addressed key (GetObject on the source, PutObject on the target), drop the staging copy.
    this.indexBuilder.role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'VerifyModelArtifacts',
        actions: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'],
        resources: objectArns([MODELS_OBJECT_PREFIX]),
      }),
    );
    // Abandoning a stalled build plan (its tick) lists and deletes the plan's intermediate objects.
    this.indexBuilder.role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'AbandonPlanObjects',
        actions: ['s3:GetObject', 's3:DeleteObject'],
        resources: objectArns([PLANS_PREFIX]),
      }),
    );
    // Garbage collection lists index objects, plan abandonment the plan's; nothing else of the bucket.
    this.indexBuilder.role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ListIndexObjects',
        actions: ['s3:ListBucket'],
        resources: [bucket.bucketArn],
        conditions: { StringLike: { 's3:prefix': [...INDEX_PREFIXES, PLANS_PREFIX].map((p) => `${p}*`) } },
      }),
    );
    // The planner sends a plan's first tasks; the tick re-sends a stalled stage's.
    this.indexBuilder.role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'SendBuildTasks',
        actions: ['sqs:SendMessage'],
        resources: [buildTaskQueue.queueArn],
      }),
    );
    this.indexBuilder.fn.addEventSource(
      new SqsEventSource(buildQueue, {
        batchSize: BUILDER_EVENT_SOURCE.batchSize,
        maxConcurrency: BUILDER_EVENT_SOURCE.maxConcurrency,
        reportBatchItemFailures: true,
      }),
    );
    // The tick's import sweeper re-announces import jobs whose invocation died (docs/imports.md):
    // SendMessage on the import queue only (job items are in the catalog it already writes).
    this.indexBuilder.role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'RequeueStalledImports',
        actions: ['sqs:SendMessage'],
        resources: [importQueue.queueArn],
      }),
    );
    new events.Rule(this, 'BuildTick', {
      description: 'Shoal index-builder catch-up tick and import sweeper',
      schedule: events.Schedule.rate(BUILD_TICK),
      targets: [
        new targets.LambdaFunction(this.indexBuilder.fn, { retryAttempts: 0, maxEventAge: Duration.minutes(1) }),
      ],
    });

    // build-worker: one plan task per invocation (scan → train → assign → build → commit).
    this.buildWorker.role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'CatalogReadWrite',
        actions: TABLE_RW_ACTIONS,
        resources: [catalogTable.tableArn],
      }),
    );
    // Scan tasks read the tail through the write log (in the Catalog) and then the rows by key; full-table
    // scans (the bySeq index) stay with the index builder.
    this.buildWorker.role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ReadRecords',
        actions: RECORDS_READ_ACTIONS,
        resources: [recordsTable.tableArn],
      }),
    );
    // Intermediate objects of a plan: row chunks, samples, per-partition chunks, results; the commit
    // task deletes them.
    this.buildWorker.role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'PlanObjects',
        actions: ['s3:GetObject', 's3:PutObject', 's3:DeleteObject'],
        resources: objectArns([PLANS_PREFIX]),
      }),
    );
    // Build tasks write shards, the train task the centroid table; scan tasks read the old head's shards.
    // Deleting index objects is garbage collection, the builder's.
    this.buildWorker.role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'WriteShardsAndCentroids',
        actions: ['s3:GetObject', 's3:PutObject'],
        resources: objectArns([SHARDS_PREFIX, CENTROIDS_PREFIX]),
      }),
    );
    // Scan tasks skip the old head's deleted rows (its delete bitmaps).
    this.buildWorker.role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ReadDeleteBitmaps',
        actions: ['s3:GetObject'],
        resources: objectArns([DELETES_PREFIX]),
      }),
    );
    this.buildWorker.role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ListPlanObjects',
        actions: ['s3:ListBucket'],
        resources: [bucket.bucketArn],
        conditions: { StringLike: { 's3:prefix': [`${PLANS_PREFIX}*`] } },
      }),
    );
    // The task that finishes a stage sends the next stage's tasks.
    this.buildWorker.role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'SendBuildTasks',
        actions: ['sqs:SendMessage'],
        resources: [buildTaskQueue.queueArn],
      }),
    );
    this.buildWorker.fn.addEventSource(
      new SqsEventSource(buildTaskQueue, {
        batchSize: BUILD_WORKER_EVENT_SOURCE.batchSize,
        maxConcurrency: buildWorkerMaxConcurrency(settings),
        reportBatchItemFailures: true,
      }),
    );

    // import: reads uploads, writes reject reports, writes rows like the API, continues itself through its queue.
    this.importer.role.addToPolicy(tablesRw);
    this.importer.role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ReadUploads',
        actions: ['s3:GetObject'],
        resources: objectArns([IMPORTS_PREFIX]),
      }),
    );
    this.importer.role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'WriteReports',
        actions: ['s3:GetObject', 's3:PutObject'],
        resources: objectArns([REPORTS_PREFIX]),
      }),
    );
    this.importer.role.addToPolicy(listBucket);
    // Re-embedding migrations (docs/models.md) run here: they read the model, the source's raw inputs and
    // write the target's, and search both collections for the comparison report (shards, searcher slots).
    this.importer.role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'MigrationModelsAndInputs',
        actions: ['s3:GetObject'],
        resources: objectArns([MODELS_OBJECT_PREFIX]),
      }),
    );
    this.importer.role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'MigrationRawInputs',
        actions: ['s3:GetObject', 's3:PutObject'],
        resources: objectArns([INPUTS_PREFIX]),
      }),
    );
    this.importer.role.addToPolicy(readIndexObjects);
    this.importer.role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'MigrationSearchSlots',
        actions: ['lambda:InvokeFunction'],
        resources: this.shardSearch.map((f) => f.fn.functionArn),
      }),
    );
    this.importer.role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'WakeBuilderAndContinue',
        actions: ['sqs:SendMessage'],
        resources: [buildQueue.queueArn, importQueue.queueArn],
      }),
    );
    this.importer.fn.addEventSource(
      new SqsEventSource(importQueue, {
        batchSize: IMPORTER_EVENT_SOURCE.batchSize,
        maxConcurrency: IMPORTER_EVENT_SOURCE.maxConcurrency,
        reportBatchItemFailures: true,
      }),
    );

    // shard-search: shards and bitmaps, nothing else.
    for (const f of this.shardSearch) f.role.addToPolicy(readIndexObjects);
    // search nodes: the same, and nothing else (their execution roles pull the image and write logs).
    nodes?.taskRole.addToPolicy(readIndexObjects);

    // authorizer: one GetItem on API-key items.
    this.authorizer.role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'ReadApiKeys',
        actions: ['dynamodb:GetItem'],
        resources: [catalogTable.tableArn],
        conditions: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': [`${APIKEY_PREFIX}*`] } },
      }),
    );

    // --- cdk-nag: the wildcards that remain are scoped to one resource each.
    for (const f of [
      this.api,
      this.indexBuilder,
      this.buildWorker,
      this.importer,
      ...this.shardSearch,
      this.authorizer,
    ]) {
      acknowledgeFindings(f.role, [
        {
          // The function's own log group ARN ends in ":*" (its log streams).
          pattern: new RegExp(
            [
              '^AwsSolutions-IAM5\\[Resource::<[A-Za-z0-9]+Logs[A-Za-z0-9]+\\.Arn>\\]$',
              '^AwsSolutions-IAM5\\[Resource::.*:\\*\\]$',
            ].join('|'),
          ),
          reason: "Log-stream wildcard of the function's own log group only (CreateLogStream/PutLogEvents).",
        },
        {
          pattern: new RegExp(`^AwsSolutions-IAM5\\[Resource::.*/(${OBJECT_WILDCARD_FOLDERS.join('|')})/\\*\\]$`),
          reason:
            'Object-prefix wildcards of the data bucket (shards/*, deletes/*, centroids/*, plans/*, imports/*, ' +
            'the reports/*, models/*, milvus/* and manifests/* folders): shard, bitmap, centroid-table, ' +
            'model-artifact and spilled-manifest keys are content-addressed, build-plan objects are named by plan ' +
            'id, uploads, reports, model names and Milvus schemas are chosen by users and jobs; none is known in ' +
            'advance.',
        },
        {
          pattern: /^AwsSolutions-IAM5\[Resource::\*\]$/,
          reason:
            'X-Ray PutTraceSegments/PutTelemetryRecords (active tracing) and, for the api function in the search ' +
            "nodes' VPC, Lambda's network-interface actions support no resource-level permissions; the only " +
            'statements with Resource "*".',
        },
      ]);
      acknowledge(
        f.fn,
        'AwsSolutions-L1',
        'nodejs22.x is the runtime Shoal is built and tested for; moving to nodejs24.x is a deliberate, tested change.',
      );
    }
  }
}
