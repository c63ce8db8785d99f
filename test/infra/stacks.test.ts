/**
 * The CDK stacks, by assertion on the synthesized templates (dev with 3 searcher slots, prod with the
 * default 4): least-privilege IAM, encryption, PITR, public-access blocks, DLQs and redrive, the
 * S3 → import-queue filter, the tables mirroring shared/storage/tables.ts, the function environment
 * against shared/config.ts, the API routes and authorizer, the build workers and their queue, alarms
 * and dashboard, and cdk-nag (AwsSolutions) with zero unacknowledged findings. Synthesized once per
 * stage (bundling included); the `buildWorkers` context check synthesizes without bundling.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { App, type Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { AUTHORIZER_IDENTITY_SOURCES, PUBLIC_ROUTES, V1_ROUTES } from '../../infra/cdk/constructs/api.js';
import { CONSOLE_ROUTES } from '../../shared/api/console.js';
import { MILVUS_ROUTES } from '../../shared/api/milvus/index.js';
import { OPENAPI_PATH } from '../../shared/api/openapi.js';
import { LIVENESS_PATH } from '../../shared/api/router.js';
import { PUBLIC_ROUTES as ROUTER_PUBLIC_ROUTES, ROUTES } from '../../shared/api/routes.js';
import { PROJECT_ROOT } from '../../infra/cdk/constructs/shoal-function.js';
import {
  BUILD_WORKER_EVENT_SOURCE,
  RECORDS_READ_ACTIONS,
  TABLE_RW_ACTIONS,
  buildWorkerMaxConcurrency,
} from '../../infra/cdk/constructs/compute.js';
import { BUILD_TASK_AGE_ALARM_SECONDS } from '../../infra/cdk/constructs/monitoring.js';
import { PSI_ALERT } from '../../shared/models/drift.js';
import { nagFindings } from '../../infra/cdk/nag.js';
import {
  BUILDER_EVENT_SOURCE,
  FUNCTION_SIZING,
  IMPORTER_EVENT_SOURCE,
  VISIBILITY_FACTOR,
  type FunctionRole,
} from '../../infra/cdk/settings.js';
import { createShoal, type ShoalStacks } from '../../infra/cdk/shoal.js';
import { parseConfig } from '../../shared/config.js';
import { CATALOG_TABLE, RECORDS_TABLE, type TableDefinition } from '../../shared/storage/tables.js';

type Json = Record<string, unknown>;
interface Resource {
  Type: string;
  Properties?: Json;
  DeletionPolicy?: string;
  UpdateReplacePolicy?: string;
}
interface Statement {
  Effect: string;
  Action: string | string[];
  Resource?: unknown;
  Condition?: Json;
  Sid?: string;
}

const cdkContext = (JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'cdk.json'), 'utf8')) as { context: Json }).context;

interface Synth {
  app: App;
  stacks: ShoalStacks;
  data: Template;
  service: Template;
  slots: number;
}

function synth(context: Json): Synth {
  const app = new App({ context: { ...cdkContext, ...context } });
  const stacks = createShoal(app);
  return {
    app,
    stacks,
    data: Template.fromStack(stacks.data),
    service: Template.fromStack(stacks.service),
    slots: stacks.settings.searchSlots,
  };
}

const asArray = <T>(x: T | T[] | undefined): T[] => (x === undefined ? [] : Array.isArray(x) ? x : [x]);
const resources = (t: Template, type: string): Array<[string, Resource]> =>
  Object.entries(t.findResources(type) as Record<string, Resource>);
const logicalIdOf = (stack: Stack, construct: { node: { defaultChild?: unknown } }): string =>
  stack.resolve((stack as Stack).getLogicalId(construct.node.defaultChild as never)) as string;
/** The statements of a role's (one) inline policy in the service stack. */
const statementsOf = (s: Synth, role: { node: { defaultChild?: unknown } }): Statement[] => {
  const id = logicalIdOf(s.stacks.service, role);
  const policies = resources(s.service, 'AWS::IAM::Policy').filter(([, p]) =>
    JSON.stringify(p.Properties?.Roles).includes(id),
  );
  expect(policies).toHaveLength(1);
  return (policies[0][1].Properties?.PolicyDocument as { Statement: Statement[] }).Statement;
};
const envOf = (s: Synth, fn: { node: { defaultChild?: unknown } }): Json =>
  (
    s.service.findResources('AWS::Lambda::Function')[logicalIdOf(s.stacks.service, fn)].Properties as {
      Environment: { Variables: Json };
    }
  ).Environment.Variables;

/** X-Ray (active tracing) is the one documented exception: its actions take no resource ARNs. */
const RESOURCE_STAR_ALLOWED = new Set(['xray:PutTraceSegments', 'xray:PutTelemetryRecords']);

let dev: Synth;
let prod: Synth;

beforeAll(() => {
  dev = synth({ stage: 'dev', searchSlots: 3 });
  prod = synth({ stage: 'prod' });
}, 240_000);

describe.each([
  ['dev', () => dev],
  ['prod', () => prod],
])('%s', (_stage, get) => {
  it('has no IAM policy with a "*" action, and "*" resources only for X-Ray', () => {
    const s = get();
    let statements = 0;
    for (const t of [s.data, s.service]) {
      for (const [id, policy] of resources(t, 'AWS::IAM::Policy')) {
        const doc = policy.Properties?.PolicyDocument as { Statement: Statement[] };
        for (const st of doc.Statement) {
          statements++;
          const actions = asArray(st.Action);
          for (const a of actions) expect(a, `${id}: action ${a}`).not.toContain('*');
          if (asArray(st.Resource).includes('*')) {
            expect(
              actions.every((a) => RESOURCE_STAR_ALLOWED.has(a)),
              `${id}: ${actions.join(',')} on *`,
            ).toBe(true);
          }
        }
      }
    }
    expect(statements).toBeGreaterThan(10);
  });

  it('attaches no AWS managed policies to Shoal roles', () => {
    const s = get();
    for (const [id, role] of resources(s.service, 'AWS::IAM::Role')) {
      expect(role.Properties?.ManagedPolicyArns, id).toBeUndefined();
    }
  });

  it('lets the api invoke exactly the searcher slots, named from SHOAL_SHARD_SEARCH_FUNCTION', () => {
    const s = get();
    const stack = s.stacks.service;
    const { compute } = stack;
    expect(compute.shardSearch).toHaveLength(s.slots);
    const apiPolicy = resources(s.service, 'AWS::IAM::Policy').find(([, p]) =>
      asArray(p.Properties?.Roles as unknown[]).some((r) =>
        JSON.stringify(r).includes(logicalIdOf(stack, compute.api.role)),
      ),
    );
    const invoke = (apiPolicy?.[1].Properties?.PolicyDocument as { Statement: Statement[] }).Statement.filter((st) =>
      asArray(st.Action).includes('lambda:InvokeFunction'),
    );
    expect(invoke).toHaveLength(1);
    const expected = compute.shardSearch.map((f) => ({ 'Fn::GetAtt': [logicalIdOf(stack, f.fn), 'Arn'] }));
    expect(asArray(invoke[0].Resource)).toEqual(expected);

    const prefix = stack.compute.node.tryGetContext('stage') === 'prod' ? 'shoal-prod' : 'shoal-dev';
    const template = `${prefix}-shard-search-{slot}`;
    const fns = s.service.findResources('AWS::Lambda::Function');
    for (let slot = 0; slot < s.slots; slot++) {
      const props = fns[logicalIdOf(stack, compute.shardSearch[slot].fn)].Properties as Json;
      expect(props.FunctionName).toBe(template.replace('{slot}', String(slot)));
    }
    for (const f of Object.values(compute.all)) {
      const env = (fns[logicalIdOf(stack, f.fn)].Properties as { Environment: { Variables: Json } }).Environment
        .Variables;
      expect(env.SHOAL_SHARD_SEARCH_FUNCTION).toBe(template);
      expect(env.SHOAL_SEARCH_SLOTS).toBe(String(s.slots));
    }
    // The api searches in process up to half its shard cache (1,769 MB → 884 MiB cache → 442 MiB) and
    // scatters above: an invoke costs more than searching a few hundred MB of shards itself.
    const apiEnv = (fns[logicalIdOf(stack, compute.api.fn)].Properties as { Environment: { Variables: Json } })
      .Environment.Variables;
    expect(apiEnv.SHOAL_SHARD_CACHE_MB).toBe('884');
    expect(apiEnv.SHOAL_SCATTER_MIN_MB).toBe('442');
  });

  it('scopes the authorizer to GetItem on API-key items of the catalog', () => {
    const s = get();
    const stack = s.stacks.service;
    const policy = resources(s.service, 'AWS::IAM::Policy').find(([, p]) =>
      JSON.stringify(p.Properties?.Roles).includes(logicalIdOf(stack, stack.compute.authorizer.role)),
    );
    const statements = (policy?.[1].Properties?.PolicyDocument as { Statement: Statement[] }).Statement;
    const ddb = statements.filter((st) => asArray(st.Action).some((a) => a.startsWith('dynamodb:')));
    expect(ddb).toHaveLength(1);
    expect(ddb[0].Action).toBe('dynamodb:GetItem');
    expect(ddb[0].Condition).toEqual({ 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['APIKEY#*'] } });
    expect(JSON.stringify(ddb[0].Resource)).toContain('Catalog');
    // Nothing else but its logs and X-Ray.
    for (const st of statements) {
      for (const a of asArray(st.Action))
        expect(a).toMatch(/^(dynamodb:GetItem|logs:CreateLogStream|logs:PutLogEvents|xray:Put.*)$/);
    }
  });

  it('lets the api manage API keys in the catalog (get, put, delete, query, update), not the authorizer', () => {
    const s = get();
    const stack = s.stacks.service;
    const apiPolicy = resources(s.service, 'AWS::IAM::Policy').find(([, p]) =>
      asArray(p.Properties?.Roles as unknown[]).some((r) =>
        JSON.stringify(r).includes(logicalIdOf(stack, stack.compute.api.role)),
      ),
    );
    const statements = (apiPolicy?.[1].Properties?.PolicyDocument as { Statement: Statement[] }).Statement;
    const onCatalog = statements.filter(
      (st) => st.Effect === 'Allow' && JSON.stringify(st.Resource).includes('Catalog') && st.Condition === undefined,
    );
    const actions = new Set(onCatalog.flatMap((st) => asArray(st.Action)));
    for (const a of [
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'dynamodb:DeleteItem',
      'dynamodb:Query',
      'dynamodb:UpdateItem',
    ])
      expect(actions.has(a), a).toBe(true);
    // The api function's environment carries the default per-key rate limit.
    const fns = s.service.findResources('AWS::Lambda::Function');
    const vars = (fns[logicalIdOf(stack, stack.compute.api.fn)].Properties as { Environment: { Variables: Json } })
      .Environment.Variables;
    expect(vars).toMatchObject({ SHOAL_RATE_LIMIT_RPS: '50', SHOAL_RATE_LIMIT_BURST: '100' });
  });

  it('gives the searchers read access to index objects only (shards/, deletes/, centroids/)', () => {
    const s = get();
    const stack = s.stacks.service;
    for (const f of stack.compute.shardSearch) {
      const policy = resources(s.service, 'AWS::IAM::Policy').find(([, p]) =>
        JSON.stringify(p.Properties?.Roles).includes(logicalIdOf(stack, f.role)),
      );
      const statements = (policy?.[1].Properties?.PolicyDocument as { Statement: Statement[] }).Statement;
      const actions = statements.flatMap((st) => asArray(st.Action));
      expect(actions.filter((a) => !a.startsWith('logs:') && !a.startsWith('xray:'))).toEqual(['s3:GetObject']);
      const s3 = statements.find((st) => asArray(st.Action).includes('s3:GetObject'));
      const text = JSON.stringify(s3?.Resource);
      expect(text).toContain('/shards/*');
      expect(text).toContain('/deletes/*');
      expect(text).toContain('/centroids/*');
      expect(asArray(s3?.Resource)).toHaveLength(3);
    }
  });

  it(
    'lets the api write model artifacts (and what its presigned uploads need) under models/ only; ' +
      'only the builder (verification) also touches models/',
    () => {
      const s = get();
      const stack = s.stacks.service;
      const policyOf = (role: { node: { defaultChild?: unknown } }): Statement[] =>
        (
          resources(s.service, 'AWS::IAM::Policy').find(([, p]) =>
            JSON.stringify(p.Properties?.Roles).includes(logicalIdOf(stack, role)),
          )?.[1].Properties?.PolicyDocument as { Statement: Statement[] }
        ).Statement;
      const api = policyOf(stack.compute.api.role);
      const models = api.filter((st) => JSON.stringify(st.Resource).includes('/models/*'));
      expect(models).toHaveLength(1);
      expect(models[0].Sid).toBe('ModelArtifacts');
      expect(asArray(models[0].Action).sort()).toEqual([
        's3:AbortMultipartUpload',
        's3:DeleteObject',
        's3:GetObject',
        's3:PutObject',
      ]);
      expect(asArray(models[0].Resource)).toHaveLength(1);
      expect(models[0].Condition).toBeUndefined();
      // Writes by the api go to models/ and nowhere else, but for the import uploads it presigns (PUT only) and
      // the Milvus schema objects (milvus/ only).
      for (const st of api) {
        if (asArray(st.Action).some((a) => ['s3:PutObject', 's3:DeleteObject', 's3:AbortMultipartUpload'].includes(a)))
          expect(st.Sid).toMatch(
            /^(ModelArtifacts|PresignImportUploads|MilvusSchemas|ManifestObjects|RawModelInputs)$/,
          );
        // Embedding functions keep raw inputs (docs/models.md): inputs/ only, get and put, never delete.
        if (st.Sid === 'RawModelInputs') {
          expect(asArray(st.Action).sort()).toEqual(['s3:GetObject', 's3:PutObject']);
          expect(asArray(st.Resource)).toHaveLength(1);
          expect(JSON.stringify(st.Resource)).toContain('/inputs/*');
        }
        if (st.Sid === 'MilvusSchemas') {
          expect(asArray(st.Resource)).toHaveLength(1);
          expect(JSON.stringify(st.Resource)).toContain('/milvus/*');
        }
        // Spilled manifests: read, and deleted with their collection; never written by the api.
        if (st.Sid === 'ManifestObjects') {
          expect(asArray(st.Action).sort()).toEqual(['s3:DeleteObject', 's3:GetObject']);
          expect(asArray(st.Resource)).toHaveLength(1);
          expect(JSON.stringify(st.Resource)).toContain('/manifests/*');
        }
        if (st.Sid === 'PresignImportUploads') {
          expect(asArray(st.Action)).toEqual(['s3:PutObject']);
          expect(asArray(st.Resource)).toHaveLength(1);
          expect(JSON.stringify(st.Resource)).toContain('/imports/*');
        }
      }
      // The builder verifies large artifacts asynchronously: hash, copy, delete the staging object — no multipart,
      // nothing else.
      const builderModels = policyOf(stack.compute.indexBuilder.role).filter((st) =>
        JSON.stringify(st.Resource).includes('/models/'),
      );
      expect(builderModels).toHaveLength(1);
      expect(builderModels[0].Sid).toBe('VerifyModelArtifacts');
      expect(asArray(builderModels[0].Action).sort()).toEqual(['s3:DeleteObject', 's3:GetObject', 's3:PutObject']);
      expect(asArray(builderModels[0].Resource)).toHaveLength(1);
      expect(JSON.stringify(builderModels[0].Resource)).toContain('/models/*');
      for (const role of stack.compute.shardSearch.map((f) => f.role)) {
        expect(JSON.stringify(policyOf(role))).not.toContain('/models/');
        expect(JSON.stringify(policyOf(role))).not.toContain('/inputs/');
      }
      // The importer runs migrations: it reads models (never writes them) and reads and writes raw inputs.
      const importer = policyOf(stack.compute.importer.role);
      const importerModels = importer.filter((st) => JSON.stringify(st.Resource).includes('/models/'));
      expect(importerModels.map((st) => [st.Sid, asArray(st.Action)])).toEqual([
        ['MigrationModelsAndInputs', ['s3:GetObject']],
      ]);
      const importerInputs = importer.filter((st) => JSON.stringify(st.Resource).includes('/inputs/'));
      expect(importerInputs.map((st) => [st.Sid, asArray(st.Action).sort()])).toEqual([
        ['MigrationRawInputs', ['s3:GetObject', 's3:PutObject']],
      ]);
      // Spilled manifests (docs/architecture.md §4.1): the committers write them, the importer's tail cap only
      // reads them, the shard searchers (given shard refs, never manifests) have no access.
      const manifestActions = (role: { node: { defaultChild?: unknown } }): string[] =>
        policyOf(role)
          .filter((st) => JSON.stringify(st.Resource).includes('/manifests/'))
          .flatMap((st) => asArray(st.Action))
          .sort();
      for (const role of [stack.compute.indexBuilder.role, stack.compute.buildWorker.role]) {
        expect(manifestActions(role)).toEqual(['s3:DeleteObject', 's3:GetObject', 's3:PutObject']);
      }
      expect(manifestActions(stack.compute.importer.role)).toEqual(['s3:GetObject']);
      for (const fn of stack.compute.shardSearch) expect(manifestActions(fn.role)).toEqual([]);
    },
  );

  it('encrypts, versions and closes the data bucket, TLS only, with lifecycle for imports/ and reports/', () => {
    const s = get();
    const buckets = resources(s.data, 'AWS::S3::Bucket');
    expect(buckets).toHaveLength(2);
    for (const [id, b] of buckets) {
      const p = b.Properties as Json;
      expect(p.BucketEncryption, id).toEqual({
        ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
      });
      expect(p.PublicAccessBlockConfiguration, id).toEqual({
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      });
    }
    const dataId = logicalIdOf(s.stacks.data, s.stacks.data.bucket);
    const data = s.data.findResources('AWS::S3::Bucket')[dataId].Properties as Json;
    expect(data.VersioningConfiguration).toEqual({ Status: 'Enabled' });
    expect(data.LoggingConfiguration).toBeDefined();
    const rules = (data.LifecycleConfiguration as { Rules: Json[] }).Rules;
    expect(rules).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ Prefix: 'imports/', Status: 'Enabled', ExpirationInDays: expect.any(Number) }),
        expect.objectContaining({ Prefix: 'reports/', Status: 'Enabled', ExpirationInDays: expect.any(Number) }),
      ]),
    );
    // Every bucket policy denies non-TLS requests.
    const policies = resources(s.data, 'AWS::S3::BucketPolicy');
    expect(policies).toHaveLength(2);
    for (const [id, p] of policies) {
      const st = (p.Properties?.PolicyDocument as { Statement: Statement[] }).Statement;
      expect(
        st.some(
          (x) =>
            x.Effect === 'Deny' &&
            JSON.stringify(x.Condition) === JSON.stringify({ Bool: { 'aws:SecureTransport': 'false' } }),
        ),
        id,
      ).toBe(true);
    }
  });

  it('notifies the import queue for imports/ only, natively (no custom resource)', () => {
    const s = get();
    const { data: stack } = s.stacks;
    const dataId = logicalIdOf(stack, stack.bucket);
    const bucket = s.data.findResources('AWS::S3::Bucket')[dataId] as Resource & { DependsOn?: string[] };
    expect((bucket.Properties as Json).NotificationConfiguration).toEqual({
      QueueConfigurations: [
        {
          Event: 's3:ObjectCreated:*',
          Queue: { 'Fn::GetAtt': [logicalIdOf(stack, stack.importQueue), 'Arn'] },
          Filter: { S3Key: { Rules: [{ Name: 'prefix', Value: 'imports/' }] } },
        },
      ],
    });
    s.data.resourceCountIs('Custom::S3BucketNotifications', 0);
    // The queue policy lets S3 send, from this bucket and account only, and exists before the bucket.
    const importPolicy = resources(s.data, 'AWS::SQS::QueuePolicy').find(([, p]) =>
      JSON.stringify(p.Properties?.Queues).includes(logicalIdOf(stack, stack.importQueue)),
    );
    expect(importPolicy).toBeDefined();
    expect(bucket.DependsOn).toContain(importPolicy?.[0]);
    const allow = (importPolicy?.[1].Properties?.PolicyDocument as { Statement: Statement[] }).Statement.find(
      (x) => x.Sid === 'AllowS3ImportNotifications',
    );
    expect(allow?.Action).toBe('sqs:SendMessage');
    expect(Object.keys(allow?.Condition ?? {}).sort()).toEqual(['ArnEquals', 'StringEquals']);
  });

  it('mirrors shared/storage/tables.ts: on demand, PITR, encrypted, the bySeq GSI', () => {
    const s = get();
    const { data: stack } = s.stacks;
    const tables = s.data.findResources('AWS::DynamoDB::Table');
    const sortBy = <T extends Json>(xs: T[], k: string) =>
      [...xs].sort((a, b) => String(a[k]).localeCompare(String(b[k])));
    const check = (id: string, def: TableDefinition) => {
      const p = tables[id].Properties as Json;
      expect(p.BillingMode).toBe(def.BillingMode);
      expect(p.KeySchema).toEqual(def.KeySchema);
      expect(sortBy(p.AttributeDefinitions as Json[], 'AttributeName')).toEqual(
        sortBy((def.AttributeDefinitions ?? []) as unknown as Json[], 'AttributeName'),
      );
      const gsis = (p.GlobalSecondaryIndexes ?? []) as Json[];
      expect(gsis.map((g) => ({ IndexName: g.IndexName, KeySchema: g.KeySchema, Projection: g.Projection }))).toEqual(
        def.GlobalSecondaryIndexes ?? [],
      );
      expect(p.PointInTimeRecoverySpecification).toEqual({ PointInTimeRecoveryEnabled: true });
      expect(p.SSESpecification).toEqual({ SSEEnabled: true });
    };
    expect(Object.keys(tables)).toHaveLength(2);
    check(logicalIdOf(stack, stack.catalogTable), CATALOG_TABLE);
    check(logicalIdOf(stack, stack.recordsTable), RECORDS_TABLE);
  });

  it(
    'puts every queue under SSE and TLS, with a DLQ redrive, and the build and build-task queues visible ≥ 6× ' +
      'their consumers’ timeouts',
    () => {
      const s = get();
      const { data: stack } = s.stacks;
      const queues = s.data.findResources('AWS::SQS::Queue');
      const pairs = [
        [stack.buildQueue, stack.buildDlq],
        [stack.importQueue, stack.importDlq],
        [stack.buildTaskQueue, stack.buildTaskDlq],
      ] as const;
      // Every queue is one of these (a queue without a DLQ would fail here).
      expect(Object.keys(queues).sort()).toEqual(
        pairs
          .flat()
          .map((q) => logicalIdOf(stack, q))
          .sort(),
      );
      for (const [id, q] of Object.entries(queues)) expect((q.Properties as Json).SqsManagedSseEnabled, id).toBe(true);
      for (const [queue, dlq] of pairs) {
        const p = queues[logicalIdOf(stack, queue)].Properties as Json;
        expect(p.RedrivePolicy).toEqual({
          deadLetterTargetArn: { 'Fn::GetAtt': [logicalIdOf(stack, dlq), 'Arn'] },
          maxReceiveCount: 5,
        });
        expect((queues[logicalIdOf(stack, dlq)].Properties as Json).MessageRetentionPeriod).toBe(14 * 24 * 3600);
      }
      for (const [id, p] of resources(s.data, 'AWS::SQS::QueuePolicy')) {
        const st = (p.Properties?.PolicyDocument as { Statement: Statement[] }).Statement;
        expect(
          st.some((x) => x.Effect === 'Deny' && JSON.stringify(x.Condition).includes('aws:SecureTransport')),
          id,
        ).toBe(true);
      }
      // Each queue has a policy (the TLS-only deny above).
      const withPolicy = resources(s.data, 'AWS::SQS::QueuePolicy').flatMap(([, p]) =>
        asArray(p.Properties?.Queues as unknown[]).map((q) => JSON.stringify(q)),
      );
      for (const q of pairs.flat()) expect(withPolicy).toContain(JSON.stringify({ Ref: logicalIdOf(stack, q) }));

      const builder =
        s.service.findResources('AWS::Lambda::Function')[
          logicalIdOf(s.stacks.service, s.stacks.service.compute.indexBuilder.fn)
        ];
      const timeout = (builder.Properties as Json).Timeout as number;
      expect(timeout).toBe(FUNCTION_SIZING.indexBuilder.timeout.toSeconds());
      const visibility = (queues[logicalIdOf(stack, stack.buildQueue)].Properties as Json).VisibilityTimeout as number;
      expect(visibility).toBeGreaterThanOrEqual(VISIBILITY_FACTOR * timeout);
      const importer =
        s.service.findResources('AWS::Lambda::Function')[
          logicalIdOf(s.stacks.service, s.stacks.service.compute.importer.fn)
        ];
      const importVisibility = (queues[logicalIdOf(stack, stack.importQueue)].Properties as Json)
        .VisibilityTimeout as number;
      expect(importVisibility).toBeGreaterThanOrEqual(
        VISIBILITY_FACTOR * ((importer.Properties as Json).Timeout as number),
      );
      const worker =
        s.service.findResources('AWS::Lambda::Function')[
          logicalIdOf(s.stacks.service, s.stacks.service.compute.buildWorker.fn)
        ];
      const workerTimeout = (worker.Properties as Json).Timeout as number;
      expect(workerTimeout).toBe(FUNCTION_SIZING.buildWorker.timeout.toSeconds());
      const taskVisibility = (queues[logicalIdOf(stack, stack.buildTaskQueue)].Properties as Json)
        .VisibilityTimeout as number;
      expect(taskVisibility).toBeGreaterThanOrEqual(VISIBILITY_FACTOR * workerTimeout);
    },
  );

  it('runs every function on nodejs22.x arm64 with its own log group, tracing and a validated environment', () => {
    const s = get();
    const stack = s.stacks.service;
    const fns = s.service.findResources('AWS::Lambda::Function');
    const ours = [...Object.values(stack.compute.all), stack.compute.authorizer];
    expect(Object.keys(fns)).toHaveLength(ours.length);
    const logGroups = s.service.findResources('AWS::Logs::LogGroup');
    for (const f of ours) {
      const p = fns[logicalIdOf(stack, f.fn)].Properties as Json & { Environment: { Variables: Json } };
      expect(p.Runtime).toBe('nodejs22.x');
      expect(p.Architectures).toEqual(['arm64']);
      expect(p.Handler).toBe('index.handler');
      expect(p.TracingConfig).toEqual({ Mode: 'Active' });
      const lg = logicalIdOf(stack, f.logGroup);
      expect(p.LoggingConfig).toEqual(expect.objectContaining({ LogGroup: { Ref: lg } }));
      expect((logGroups[lg].Properties as Json).RetentionInDays).toBe(
        stack.compute.node.tryGetContext('stage') === 'prod' ? 90 : 14,
      );
      expect(p.Environment.Variables.AWS_REGION).toBeUndefined(); // reserved; Lambda sets it
    }
    // shared/config.ts accepts each Shoal function's environment (references replaced by sample values).
    const sample = (key: string, v: unknown): string =>
      typeof v === 'string'
        ? v
        : key.endsWith('_URL')
          ? 'https://sqs.eu-west-1.amazonaws.com/123456789012/q'
          : `sample-${key.toLowerCase()}`;
    for (const [role, f] of Object.entries(stack.compute.all)) {
      const vars = (fns[logicalIdOf(stack, f.fn)].Properties as { Environment: { Variables: Json } }).Environment
        .Variables;
      for (const k of ['SHOAL_BUCKET', 'SHOAL_CATALOG_TABLE', 'SHOAL_RECORDS_TABLE', 'SHOAL_BUILD_QUEUE_URL'])
        expect(vars[k], `${role} ${k}`).toBeDefined();
      for (const k of Object.keys(vars)) expect(k, role).toMatch(/^(SHOAL_|POWERTOOLS_|NODE_OPTIONS$)/);
      // Local-only variables stay unset on AWS.
      for (const k of [
        'SHOAL_S3_ENDPOINT',
        'SHOAL_DYNAMODB_ENDPOINT',
        'SHOAL_SQS_ENDPOINT',
        'SHOAL_LAMBDA_ENDPOINT',
        'SHOAL_LOCAL_INFO',
        'SHOAL_API_KEY',
      ]) {
        expect(vars[k], `${role} ${k}`).toBeUndefined();
      }
      const env = Object.fromEntries(Object.entries(vars).map(([k, v]) => [k, sample(k, v)]));
      const cfg = parseConfig({ AWS_REGION: 'eu-west-1', ...env });
      expect(cfg.endpoints).toBeUndefined();
      expect(cfg.searchSlots).toBe(s.slots);
      expect(cfg.shardCacheBytes).toBeLessThan(
        FUNCTION_SIZING[role.startsWith('shardSearch') ? 'shardSearch' : (role as FunctionRole)].memoryMb * 2 ** 20,
      );
      // Plans: the planner (index-builder) and the workers know the build-task queue; nobody else plans.
      if (role === 'indexBuilder' || role === 'buildWorker') expect(cfg.buildTaskQueueUrl, role).toBeDefined();
      else expect(vars.SHOAL_BUILD_TASK_QUEUE_URL, role).toBeUndefined();
      // The import job gives up on the receive that moves its message to the DLQ.
      expect(cfg.importMaxReceive).toBe(5);
      expect(cfg.importQueueUrl).toBeDefined();
    }
    const authEnv = (
      fns[logicalIdOf(stack, stack.compute.authorizer.fn)].Properties as { Environment: { Variables: Json } }
    ).Environment.Variables;
    expect(Object.keys(authEnv).sort()).toEqual(['NODE_OPTIONS', 'SHOAL_CATALOG_TABLE']);
  });

  it('feeds the builder from the build queue (partial failures, bounded concurrency) and a 1-minute tick', () => {
    const s = get();
    const stack = s.stacks.service;
    const builderRef = { Ref: logicalIdOf(stack, stack.compute.indexBuilder.fn) };
    s.service.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: builderRef,
      BatchSize: BUILDER_EVENT_SOURCE.batchSize,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ScalingConfig: { MaximumConcurrency: BUILDER_EVENT_SOURCE.maxConcurrency },
    });
    s.service.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: logicalIdOf(stack, stack.compute.importer.fn) },
      BatchSize: IMPORTER_EVENT_SOURCE.batchSize,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ScalingConfig: { MaximumConcurrency: IMPORTER_EVENT_SOURCE.maxConcurrency },
    });
    // One mapping per queue: each queue has exactly one consumer.
    const sources = resources(s.service, 'AWS::Lambda::EventSourceMapping').map(([, m]) =>
      JSON.stringify((m.Properties as Json).EventSourceArn),
    );
    expect(sources).toHaveLength(new Set(sources).size);
    s.service.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(1 minute)',
      State: 'ENABLED',
      Targets: [
        Match.objectLike({ Arn: { 'Fn::GetAtt': [logicalIdOf(stack, stack.compute.indexBuilder.fn), 'Arn'] } }),
      ],
    });
  });

  it("lets the builder's tick re-queue stalled imports and send build tasks: SendMessage on those queues only", () => {
    const s = get();
    const stack = s.stacks.service;
    const statements = statementsOf(s, stack.compute.indexBuilder.role);
    const sqs = statements.filter((st) => asArray(st.Action).some((a) => a.startsWith('sqs:Send')));
    expect(sqs.map((st) => st.Sid).sort()).toEqual(['RequeueStalledImports', 'SendBuildTasks']);
    for (const st of sqs) {
      expect(st.Action).toBe('sqs:SendMessage');
      expect(asArray(st.Resource)).toHaveLength(1);
    }
    const imports = sqs.find((st) => st.Sid === 'RequeueStalledImports');
    expect(JSON.stringify(imports?.Resource)).toMatch(/ImportQueue/);
    expect(JSON.stringify(imports?.Resource)).not.toMatch(/BuildQueue|BuildTask|Dlq/i);
    const tasks = sqs.find((st) => st.Sid === 'SendBuildTasks');
    expect(JSON.stringify(tasks?.Resource)).toContain(logicalIdOf(s.stacks.data, s.stacks.data.buildTaskQueue));
    expect(JSON.stringify(tasks?.Resource)).not.toMatch(/Dlq/i);
    // The builder's runtime sends to the queues named in its environment.
    const env = envOf(s, stack.compute.indexBuilder.fn);
    expect(env.SHOAL_IMPORT_QUEUE_URL).toBeDefined();
    expect(JSON.stringify(env.SHOAL_BUILD_TASK_QUEUE_URL)).toContain(
      logicalIdOf(s.stacks.data, s.stacks.data.buildTaskQueue),
    );
  });

  it('lets the builder abandon stalled plans: Get/Delete and List under plans/, not Put', () => {
    const s = get();
    const statements = statementsOf(s, s.stacks.service.compute.indexBuilder.role);
    const onPlans = statements.filter((st) => JSON.stringify(st.Resource).includes('/plans/'));
    expect(onPlans).toHaveLength(1);
    expect(asArray(onPlans[0].Action).sort()).toEqual(['s3:DeleteObject', 's3:GetObject']);
    expect(asArray(onPlans[0].Resource)).toHaveLength(1);
    expect(JSON.stringify(onPlans[0].Resource)).toContain('/plans/*');
    const list = statements.filter((st) => asArray(st.Action).includes('s3:ListBucket'));
    expect(list).toHaveLength(1);
    expect(list[0].Condition).toEqual({
      StringLike: { 's3:prefix': ['shards/*', 'deletes/*', 'centroids/*', 'plans/*'] },
    });
  });

  it('runs build workers from the build-task queue: one task at a time each, partial failures, reserved', () => {
    const s = get();
    const stack = s.stacks.service;
    const { buildWorker } = stack.compute;
    const fn = s.service.findResources('AWS::Lambda::Function')[logicalIdOf(stack, buildWorker.fn)];
    const props = fn.Properties as Json & { Environment: { Variables: Json } };
    // Default context: 10 workers.
    expect(s.stacks.settings.buildWorkers).toBe(10);
    expect(props.ReservedConcurrentExecutions).toBe(10);
    expect(props.MemorySize).toBe(FUNCTION_SIZING.buildWorker.memoryMb);
    expect(props.Timeout).toBe(FUNCTION_SIZING.buildWorker.timeout.toSeconds());
    expect(props.EphemeralStorage).toEqual({ Size: FUNCTION_SIZING.buildWorker.ephemeralMb });
    expect(props.Environment.Variables.POWERTOOLS_SERVICE_NAME).toBe(`${s.stacks.settings.prefix}-build-worker`);
    const taskQueue = logicalIdOf(s.stacks.data, s.stacks.data.buildTaskQueue);
    // Same tables, bucket and queues as the builder, plus the build-task queue.
    const builderEnv = envOf(s, stack.compute.indexBuilder.fn);
    for (const k of [
      'SHOAL_BUCKET',
      'SHOAL_CATALOG_TABLE',
      'SHOAL_RECORDS_TABLE',
      'SHOAL_BUILD_QUEUE_URL',
      'SHOAL_IMPORT_QUEUE_URL',
      'SHOAL_BUILD_TASK_QUEUE_URL',
    ])
      expect(props.Environment.Variables[k], k).toEqual(builderEnv[k]);
    expect(JSON.stringify(props.Environment.Variables.SHOAL_BUILD_TASK_QUEUE_URL)).toContain(taskQueue);

    const mappings = resources(s.service, 'AWS::Lambda::EventSourceMapping').filter(
      ([, m]) =>
        JSON.stringify((m.Properties as Json).FunctionName) ===
        JSON.stringify({ Ref: logicalIdOf(stack, buildWorker.fn) }),
    );
    expect(mappings).toHaveLength(1);
    const m = mappings[0][1].Properties as Json;
    expect(m.BatchSize).toBe(1);
    expect(BUILD_WORKER_EVENT_SOURCE.batchSize).toBe(1);
    expect(m.FunctionResponseTypes).toEqual(['ReportBatchItemFailures']);
    // The pollers stop at the reservation, so messages are not throttled back into the queue.
    expect(m.ScalingConfig).toEqual({ MaximumConcurrency: 10 });
    expect(JSON.stringify(m.EventSourceArn)).toContain(taskQueue);
  });

  it('gives the build worker plans/, shards/, centroids/, deletes/, manifests/ objects only, not the bucket', () => {
    const s = get();
    const statements = statementsOf(s, s.stacks.service.compute.buildWorker.role);
    const bucketArn = JSON.stringify(s.stacks.service.resolve(s.stacks.data.bucket.bucketArn) as unknown);
    // Object grants by key prefix: every object resource is `<bucket arn>/<prefix>/*`.
    const byPrefix = new Map<string, Set<string>>();
    for (const st of statements.filter((x) => asArray(x.Action).some((a) => a.startsWith('s3:')))) {
      expect(st.Effect).toBe('Allow');
      for (const r of asArray(st.Resource)) {
        const text = JSON.stringify(r);
        if (text === bucketArn) {
          // The bucket itself: listing plan objects only.
          expect(st.Action).toBe('s3:ListBucket');
          expect(st.Condition).toEqual({ StringLike: { 's3:prefix': ['plans/*'] } });
          continue;
        }
        const suffix = /^\{"Fn::Join":\["",\[(.*),"([^"]*)"\]\]\}$/.exec(text);
        expect(suffix?.[1], text).toBe(bucketArn);
        const prefix = suffix?.[2] ?? '';
        expect(prefix, 'object grants name a prefix').toMatch(/^\/[a-z]+\/\*$/);
        const actions = byPrefix.get(prefix) ?? new Set<string>();
        for (const a of asArray(st.Action)) actions.add(a);
        byPrefix.set(prefix, actions);
      }
    }
    const sorted = Object.fromEntries([...byPrefix].map(([p, a]) => [p, [...a].sort()]));
    expect(sorted).toEqual({
      '/plans/*': ['s3:DeleteObject', 's3:GetObject', 's3:PutObject'],
      '/shards/*': ['s3:GetObject', 's3:PutObject'],
      '/centroids/*': ['s3:GetObject', 's3:PutObject'],
      '/deletes/*': ['s3:GetObject'],
      '/manifests/*': ['s3:DeleteObject', 's3:GetObject', 's3:PutObject'],
    });
  });

  it('lets the build worker write the catalog, read (not write) records, and send build tasks', () => {
    const s = get();
    const { data } = s.stacks;
    const statements = statementsOf(s, s.stacks.service.compute.buildWorker.role);
    const ref = (attr: string) => JSON.stringify(s.stacks.service.resolve(attr) as unknown);
    const catalog = ref(data.catalogTable.tableArn);
    const records = ref(data.recordsTable.tableArn);
    const ddb = statements.filter((st) => asArray(st.Action).some((a) => a.startsWith('dynamodb:')));
    const actionsOn = (arn: string) =>
      new Set(
        ddb
          .filter((st) => asArray(st.Resource).some((r) => JSON.stringify(r) === arn))
          .flatMap((st) => asArray(st.Action)),
      );
    expect([...actionsOn(catalog)].sort()).toEqual([...TABLE_RW_ACTIONS].sort());
    expect([...actionsOn(records)].sort()).toEqual([...RECORDS_READ_ACTIONS].sort());
    for (const a of actionsOn(records)) expect(a).toMatch(/^dynamodb:(GetItem|BatchGetItem|Query)$/);
    // Nothing else: no bySeq index (full scans are the builder's), no other table.
    for (const st of ddb) for (const r of asArray(st.Resource)) expect([catalog, records]).toContain(JSON.stringify(r));

    const taskQueue = ref(data.buildTaskQueue.queueArn);
    const sqs = statements.filter((st) => asArray(st.Action).some((a) => a.startsWith('sqs:')));
    for (const st of sqs) expect(asArray(st.Resource).map((r) => JSON.stringify(r))).toEqual([taskQueue]);
    const send = sqs.filter((st) => asArray(st.Action).includes('sqs:SendMessage'));
    expect(send.map((st) => st.Sid)).toEqual(['SendBuildTasks']);
    // Consuming its queue (the event source's grant).
    expect(sqs.flatMap((st) => asArray(st.Action))).toEqual(
      expect.arrayContaining(['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:ChangeMessageVisibility']),
    );
    // And nothing beyond DynamoDB, S3, SQS, its logs and X-Ray.
    for (const st of statements) for (const a of asArray(st.Action)) expect(a).toMatch(/^(dynamodb|s3|sqs|logs|xray):/);
  });

  it('serves every v1 route behind the cached API-key authorizer, throttled, with access logs', () => {
    const s = get();
    const routes = resources(s.service, 'AWS::ApiGatewayV2::Route').map(([, r]) => r.Properties as Json);
    const keys = routes.map((r) => r.RouteKey).sort();
    const open = PUBLIC_ROUTES.map((r) => `${r.method} ${r.path}`);
    expect(open).toEqual(['GET /healthz', 'GET /v1/openapi.json']);
    // Milvus REST v2 authenticates in the function, answering refusals in Milvus's envelope (docs/milvus.md).
    // So do the console's static pages (the key is entered in the page and sent with each API call).
    const keyless = [...MILVUS_ROUTES.map((r) => `${r.method} ${r.path}`), ...CONSOLE_ROUTES];
    expect(keyless).toEqual(['POST /v2/vectordb/{proxy+}', 'GET /console', 'GET /console/{proxy+}']);
    expect(keys).toEqual(
      [...V1_ROUTES.map((r) => `${r.method} ${r.path}`), ...open, ...keyless, '$default', 'OPTIONS /{proxy+}'].sort(),
    );
    for (const r of routes) {
      if (
        r.RouteKey === 'OPTIONS /{proxy+}' ||
        open.includes(String(r.RouteKey)) ||
        keyless.includes(String(r.RouteKey))
      ) {
        expect(r.AuthorizationType, String(r.RouteKey)).toBe('NONE');
        expect(r.AuthorizerId, String(r.RouteKey)).toBeUndefined();
      } else expect(r.AuthorizationType, String(r.RouteKey)).toBe('CUSTOM');
    }
    s.service.hasResourceProperties('AWS::ApiGatewayV2::Authorizer', {
      AuthorizerType: 'REQUEST',
      EnableSimpleResponses: true,
      AuthorizerPayloadFormatVersion: '2.0',
      AuthorizerResultTtlInSeconds: 300,
      // The answer depends on the route and the collection in the path, so they are part of the cache key.
      IdentitySource: ['$request.header.Authorization', '$context.httpMethod', '$context.path'],
    });
    expect(AUTHORIZER_IDENTITY_SOURCES).toEqual([
      '$request.header.Authorization',
      '$context.httpMethod',
      '$context.path',
    ]);
    s.service.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      StageName: '$default',
      AutoDeploy: true,
      DefaultRouteSettings: Match.objectLike({
        DetailedMetricsEnabled: true,
        ThrottlingRateLimit: Match.anyValue(),
        ThrottlingBurstLimit: Match.anyValue(),
      }),
      AccessLogSettings: Match.objectLike({
        DestinationArn: Match.anyValue(),
        Format: Match.stringLikeRegexp('routeKey'),
      }),
    });
    s.service.hasResourceProperties('AWS::ApiGatewayV2::Api', {
      ProtocolType: 'HTTP',
      CorsConfiguration: Match.objectLike({ AllowHeaders: ['Authorization', 'Content-Type'] }),
    });
  });

  it('has the alarms (DLQs, 5xx rate, builder lag, …) wired to an encrypted topic, and the dashboard', () => {
    const s = get();
    const alarms = resources(s.service, 'AWS::CloudWatch::Alarm').map(([, a]) => a.Properties as Json);
    const names = alarms.map((a) => JSON.stringify(a.AlarmName));
    for (const suffix of [
      'build-dlq-not-empty',
      'import-dlq-not-empty',
      'api-5xx-rate',
      'builder-lag',
      'build-queue-age',
      'builder-errors',
      'function-throttles',
      'build-task-dlq-not-empty',
      'build-task-queue-age',
      'build-worker-errors',
      'build-worker-throttles',
      'embedding-drift',
    ]) {
      expect(
        names.some((n) => n.includes(suffix)),
        suffix,
      ).toBe(true);
    }
    for (const a of alarms) expect(asArray(a.AlarmActions as unknown[])).toHaveLength(1);
    const dlqAlarm = alarms.find((a) => JSON.stringify(a.AlarmName).includes('build-dlq-not-empty'));
    expect(dlqAlarm).toMatchObject({
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Namespace: 'AWS/SQS',
      Threshold: 1,
    });
    const lag = alarms.find((a) => JSON.stringify(a.AlarmName).includes('builder-lag'));
    expect(lag).toMatchObject({ MetricName: 'BuilderLagSeq', Namespace: 'Shoal' });

    // Build plans: the build-task DLQ and queue age, the worker's errors and (sustained) throttles.
    const { data, service } = s.stacks;
    const ref = (token: string) => service.resolve(token) as unknown;
    const alarm = (suffix: string) => alarms.find((a) => a.AlarmName === `${s.stacks.settings.prefix}-${suffix}`);
    expect(alarm('build-task-dlq-not-empty')).toMatchObject({
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Dimensions: [{ Name: 'QueueName', Value: ref(data.buildTaskDlq.queueName) }],
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
    });
    expect(alarm('build-task-queue-age')).toMatchObject({
      Namespace: 'AWS/SQS',
      MetricName: 'ApproximateAgeOfOldestMessage',
      Dimensions: [{ Name: 'QueueName', Value: ref(data.buildTaskQueue.queueName) }],
      Threshold: BUILD_TASK_AGE_ALARM_SECONDS,
      ComparisonOperator: 'GreaterThanThreshold',
    });
    expect(BUILD_TASK_AGE_ALARM_SECONDS).toBe(30 * 60);
    const worker = { Ref: logicalIdOf(service, service.compute.buildWorker.fn) };
    expect(alarm('build-worker-errors')).toMatchObject({
      Namespace: 'AWS/Lambda',
      MetricName: 'Errors',
      Dimensions: [{ Name: 'FunctionName', Value: worker }],
      Statistic: 'Sum',
    });
    const throttles = alarm('build-worker-throttles');
    expect(throttles).toMatchObject({
      Namespace: 'AWS/Lambda',
      MetricName: 'Throttles',
      Dimensions: [{ Name: 'FunctionName', Value: worker }],
      Statistic: 'Sum',
    });
    // Sustained only: most of a long window, not a blip.
    expect(throttles?.EvaluationPeriods as number).toBeGreaterThanOrEqual(10);
    expect(throttles?.DatapointsToAlarm as number).toBeGreaterThan((throttles?.EvaluationPeriods as number) / 2);
    // The account-limit throttle alarm leaves the reserved worker out.
    expect(JSON.stringify(alarm('function-throttles'))).not.toContain(worker.Ref);
    // Embedding drift: the collection-free dimension set (service, Kind=query) the api's EMF lines carry
    // (shared/metrics.ts recordDrift), 3 of 3 quarter hours above PSI_ALERT, on the alarm topic.
    const drift = alarm('embedding-drift');
    expect(drift).toMatchObject({
      Namespace: 'Shoal',
      MetricName: 'EmbeddingDriftPSI',
      Statistic: 'Maximum',
      Period: 900,
      Threshold: PSI_ALERT,
      ComparisonOperator: 'GreaterThanThreshold',
      EvaluationPeriods: 3,
      DatapointsToAlarm: 3,
      TreatMissingData: 'notBreaching',
    });
    expect(PSI_ALERT).toBe(0.25);
    expect(drift?.Dimensions).toEqual([
      { Name: 'Kind', Value: 'query' },
      { Name: 'service', Value: `${s.stacks.settings.prefix}-api` },
    ]);
    const topic = { Ref: logicalIdOf(service, service.monitoring.topic) };
    expect(drift?.AlarmActions).toEqual([topic]);
    expect(drift?.OKActions).toEqual([topic]);
    s.service.hasResourceProperties('AWS::SNS::Topic', { KmsMasterKeyId: Match.anyValue() });
    s.service.hasResourceProperties('AWS::KMS::Key', { EnableKeyRotation: true });
    s.service.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
    const body = JSON.stringify(s.service.findResources('AWS::CloudWatch::Dashboard'));
    for (const needle of [
      'Latency',
      'p99',
      'ApproximateNumberOfMessagesVisible',
      'BuilderLagSeq',
      'ShardCacheHit',
      'Throttles',
      '5xx',
      'ApproximateAgeOfOldestMessage',
      'build-task queue',
      'build-task DLQ',
      'Build workers',
      'EmbeddingDriftPSI',
    ]) {
      expect(body, needle).toContain(needle);
    }
  });

  it('outputs the API URL, the bucket and a command that creates an API key', () => {
    const s = get();
    const outputs = s.service.findOutputs('*');
    expect(Object.keys(outputs)).toEqual(
      expect.arrayContaining(['ApiUrl', 'BucketName', 'CreateApiKeyCommand', 'CatalogTableName']),
    );
    const cmd = JSON.stringify(outputs.CreateApiKeyCommand.Value);
    expect(cmd).toContain('aws dynamodb put-item');
    expect(cmd).toContain('APIKEY#$HASH');
    expect(cmd).toContain('openssl dgst -sha256');
  });

  it('passes cdk-nag AwsSolutions with every finding acknowledged in code', () => {
    const s = get();
    const findings = nagFindings(s.app).map(
      (v) => `${v.ruleName} @ ${v.violatingResources.map((r) => r.constructPath).join(', ')}`,
    );
    expect(findings).toEqual([]);
    for (const stack of [s.stacks.data, s.stacks.service]) {
      expect(Annotations.fromStack(stack).findError('*', Match.stringLikeRegexp('AwsSolutions-.*'))).toEqual([]);
      expect(Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp('AwsSolutions-.*'))).toEqual([]);
    }
  });
});

describe('routes', () => {
  it('are the route table the router serves (shared/api/routes.ts), imported, not restated', () => {
    const fromTable = ROUTES.map((r) => r.key);
    expect(fromTable.length).toBeGreaterThan(40);
    expect(V1_ROUTES.map((r) => `${r.method} ${r.path}`).sort()).toEqual([...fromTable].sort());
  });

  it('leave only the liveness probe and the OpenAPI document of the router without the authorizer', () => {
    expect(PUBLIC_ROUTES.map((r) => `${r.method} ${r.path}`)).toEqual([`GET ${LIVENESS_PATH}`, `GET ${OPENAPI_PATH}`]);
    expect(ROUTER_PUBLIC_ROUTES.map((r) => r.key)).toEqual(PUBLIC_ROUTES.map((r) => `${r.method} ${r.path}`));
  });
});

describe('stage differences', () => {
  it('prod retains data and protects it from deletion; dev destroys it', () => {
    for (const [id, t] of Object.entries(prod.data.findResources('AWS::DynamoDB::Table'))) {
      expect(t.DeletionPolicy, id).toBe('Retain');
      expect((t.Properties as Json).DeletionProtectionEnabled, id).toBe(true);
    }
    for (const [id, b] of Object.entries(prod.data.findResources('AWS::S3::Bucket')))
      expect(b.DeletionPolicy, id).toBe('Retain');
    expect(prod.stacks.data.terminationProtection).toBe(true);
    prod.data.resourceCountIs('Custom::S3AutoDeleteObjects', 0);

    for (const [id, t] of Object.entries(dev.data.findResources('AWS::DynamoDB::Table'))) {
      expect(t.DeletionPolicy, id).toBe('Delete');
      expect((t.Properties as Json).DeletionProtectionEnabled, id).toBe(false);
    }
    expect(dev.stacks.data.terminationProtection).toBe(false);
  });

  it('names resources per stage and keeps the account and region unresolved (offline synth)', () => {
    expect(dev.stacks.data.stackName).toBe('Shoal-dev-Data');
    expect(prod.stacks.service.stackName).toBe('Shoal-prod-Service');
    for (const s of [dev, prod]) {
      expect(s.stacks.data.account).toMatch(/^\$\{Token\[AWS\.AccountId/);
      expect(s.stacks.data.region).toMatch(/^\$\{Token\[AWS\.Region/);
    }
  });

  it('rejects a bad stage, slot count or worker count', () => {
    expect(() => createShoal(new App({ context: { ...cdkContext, stage: 'qa' } }))).toThrow(/stage=qa/);
    expect(() => createShoal(new App({ context: { ...cdkContext, searchSlots: 0 } }))).toThrow(/searchSlots/);
    expect(() => createShoal(new App({ context: { ...cdkContext, buildWorkers: 0 } }))).toThrow(/buildWorkers/);
  });

  it('reserves -c buildWorkers=N for the build worker and caps its event source at N', () => {
    // Only the template matters here: skip bundling (CDK's own switch) to keep this synth cheap.
    const app = new App({ context: { ...cdkContext, buildWorkers: '25', 'aws:cdk:bundling-stacks': [] } });
    const stacks = createShoal(app);
    expect(stacks.settings.buildWorkers).toBe(25);
    const t = Template.fromStack(stacks.service);
    const worker = logicalIdOf(stacks.service, stacks.service.compute.buildWorker.fn);
    expect((t.findResources('AWS::Lambda::Function')[worker].Properties as Json).ReservedConcurrentExecutions).toBe(25);
    t.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      FunctionName: { Ref: worker },
      BatchSize: 1,
      ScalingConfig: { MaximumConcurrency: 25 },
    });
    // The event source accepts no less than 2; the other functions stay unreserved.
    expect(buildWorkerMaxConcurrency({ ...stacks.settings, buildWorkers: 1 })).toBe(2);
    const reserved = Object.entries(t.findResources('AWS::Lambda::Function')).filter(
      ([, f]) => (f.Properties as Json).ReservedConcurrentExecutions !== undefined,
    );
    expect(reserved.map(([id]) => id)).toEqual([worker]);
  }, 120_000);
});
