/**
 * The CDK stacks, by assertion on the synthesized templates (dev with 3 searcher slots, prod with the
 * default 4): least-privilege IAM, encryption, PITR, public-access blocks, DLQs and redrive, the
 * S3 → import-queue filter, the tables mirroring shared/storage/tables.ts, the function environment
 * against shared/config.ts, the API routes and authorizer, alarms and dashboard, and cdk-nag
 * (AwsSolutions) with zero unacknowledged findings. Synthesized once per stage (bundling included).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { App, type Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { AUTHORIZER_IDENTITY_SOURCES, PUBLIC_ROUTES, V1_ROUTES } from '../../infra/cdk/constructs/api.js';
import { PROJECT_ROOT } from '../../infra/cdk/constructs/shoal-function.js';
import { nagFindings } from '../../infra/cdk/nag.js';
import {
  BUILDER_EVENT_SOURCE,
  FUNCTION_SIZING,
  IMPORTER_EVENT_SOURCE,
  VISIBILITY_FACTOR,
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
      // Writes by the api go to models/ and nowhere else.
      for (const st of api) {
        if (asArray(st.Action).some((a) => ['s3:PutObject', 's3:DeleteObject', 's3:AbortMultipartUpload'].includes(a)))
          expect(st.Sid).toBe('ModelArtifacts');
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
      for (const role of [stack.compute.importer.role, ...stack.compute.shardSearch.map((f) => f.role)]) {
        expect(JSON.stringify(policyOf(role))).not.toContain('/models/');
      }
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
    'puts every queue under SSE and TLS, with a DLQ redrive, ' + 'and the build queue visible ≥ 6× the builder timeout',
    () => {
      const s = get();
      const { data: stack } = s.stacks;
      const queues = s.data.findResources('AWS::SQS::Queue');
      expect(Object.keys(queues)).toHaveLength(4);
      for (const [id, q] of Object.entries(queues)) expect((q.Properties as Json).SqsManagedSseEnabled, id).toBe(true);
      for (const [queue, dlq] of [
        [stack.buildQueue, stack.buildDlq],
        [stack.importQueue, stack.importDlq],
      ] as const) {
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
      expect(resources(s.data, 'AWS::SQS::QueuePolicy')).toHaveLength(4);

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
        FUNCTION_SIZING[role.startsWith('shardSearch') ? 'shardSearch' : (role as 'api' | 'indexBuilder' | 'importer')]
          .memoryMb *
          2 ** 20,
      );
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
    s.service.resourceCountIs('AWS::Lambda::EventSourceMapping', 2);
    s.service.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'rate(1 minute)',
      State: 'ENABLED',
      Targets: [
        Match.objectLike({ Arn: { 'Fn::GetAtt': [logicalIdOf(stack, stack.compute.indexBuilder.fn), 'Arn'] } }),
      ],
    });
  });

  it("lets the builder's tick re-queue stalled imports: SendMessage on the import queue only", () => {
    const s = get();
    const stack = s.stacks.service;
    const policy = resources(s.service, 'AWS::IAM::Policy').find(([, p]) =>
      JSON.stringify(p.Properties?.Roles).includes(logicalIdOf(stack, stack.compute.indexBuilder.role)),
    );
    const statements = (policy?.[1].Properties?.PolicyDocument as { Statement: Statement[] }).Statement;
    const sqs = statements.filter((st) => asArray(st.Action).some((a) => a.startsWith('sqs:Send')));
    expect(sqs).toHaveLength(1);
    expect(sqs[0].Sid).toBe('RequeueStalledImports');
    expect(sqs[0].Action).toBe('sqs:SendMessage');
    expect(asArray(sqs[0].Resource)).toHaveLength(1);
    expect(JSON.stringify(sqs[0].Resource)).toMatch(/ImportQueue/);
    expect(JSON.stringify(sqs[0].Resource)).not.toMatch(/BuildQueue|Dlq/i);
    // The builder's runtime sends to the import queue named in its environment.
    const fns = s.service.findResources('AWS::Lambda::Function');
    const env = (
      fns[logicalIdOf(stack, stack.compute.indexBuilder.fn)].Properties as { Environment: { Variables: Json } }
    ).Environment.Variables;
    expect(env.SHOAL_IMPORT_QUEUE_URL).toBeDefined();
  });

  it('serves every v1 route behind the cached API-key authorizer, throttled, with access logs', () => {
    const s = get();
    const routes = resources(s.service, 'AWS::ApiGatewayV2::Route').map(([, r]) => r.Properties as Json);
    const keys = routes.map((r) => r.RouteKey).sort();
    expect(keys).toEqual(
      [...V1_ROUTES.map((r) => `${r.method} ${r.path}`), 'GET /healthz', '$default', 'OPTIONS /{proxy+}'].sort(),
    );
    for (const r of routes) {
      if (r.RouteKey === 'OPTIONS /{proxy+}' || r.RouteKey === 'GET /healthz') {
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
  it('match the router in shared/api/router.ts', () => {
    const source = readFileSync(path.join(PROJECT_ROOT, 'shared/api/router.ts'), 'utf8');
    const chunks = source.split(/segments:\s*/).slice(1);
    const fromRouter: string[] = [];
    for (const chunk of chunks) {
      const segs = /^\[([^\]]*)\]/.exec(chunk)?.[1];
      if (!segs) continue;
      const p =
        '/' +
        segs
          .split(',')
          .map((x) =>
            x
              .trim()
              .replace(/^'|'$/g, '')
              .replace(/^:(\w+)$/, '{$1}'),
          )
          .join('/');
      const methods = chunk.slice(0, chunk.search(/\n\s*\},?\n\s*\{|\n\s*\];/) >>> 0 || undefined);
      for (const m of methods.matchAll(/^\s+(GET|POST|PUT|PATCH|DELETE):/gm)) fromRouter.push(`${m[1]} ${p}`);
    }
    expect(fromRouter.length).toBeGreaterThan(10);
    expect(V1_ROUTES.map((r) => `${r.method} ${r.path}`).sort()).toEqual(fromRouter.sort());
  });

  it('leave only the liveness probe of the router without the authorizer', () => {
    const source = readFileSync(path.join(PROJECT_ROOT, 'shared/api/router.ts'), 'utf8');
    const livenessPath = /export const LIVENESS_PATH = '([^']+)'/.exec(source)?.[1];
    expect(PUBLIC_ROUTES.map((r) => `${r.method} ${r.path}`)).toEqual([`GET ${livenessPath}`]);
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

  it('rejects a bad stage or slot count', () => {
    expect(() => createShoal(new App({ context: { ...cdkContext, stage: 'qa' } }))).toThrow(/stage=qa/);
    expect(() => createShoal(new App({ context: { ...cdkContext, searchSlots: 0 } }))).toThrow(/searchSlots/);
  });
});
