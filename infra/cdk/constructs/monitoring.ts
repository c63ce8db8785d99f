/**
 * Dashboard and alarms. Built-in metrics (API Gateway, Lambda, SQS) work from the first deploy; the
 * Shoal metrics (builder lag, shard-cache hits) are EMF lines the functions emit under the `Shoal`
 * namespace — their names and dimensions are the contract in docs/operations.md ("Metrics").
 */
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import type * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import * as cw from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subs from 'aws-cdk-lib/aws-sns-subscriptions';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { serviceName, type FunctionRole, type ShoalSettings } from '../settings.js';
import { V1_ROUTES } from './api.js';
import { PSI_ALERT } from '../../../shared/models/drift.js';
import type { ShoalFunction } from './shoal-function.js';

/** The EMF metrics the dashboard and alarms read (namespace `Shoal`, dimension `service`). */
export const SHOAL_METRICS = {
  namespace: 'Shoal',
  /** index-builder, per tick and per build: max over collections of (last allocated seq − manifest watermark). */
  builderLag: 'BuilderLagSeq',
  /** shard-search and api (in-process search): shard loads served from memory / disk / S3. */
  cacheHit: 'ShardCacheHit',
  cacheMiss: 'ShardCacheMiss',
  /**
   * api, per drift flush: the PSI of a collection's hour window (dimension sets [Collection, Kind] and [Kind],
   * plus `service`); docs/drift.md.
   */
  embeddingDrift: 'EmbeddingDriftPSI',
  embeddingsObserved: 'EmbeddingsObserved',
  /** api, per slot part a search node did not answer (sent to the slot's Lambda instead; docs/architecture.md §7.7). */
  searchNodeFallback: 'SearchNodeFallback',
} as const;

/**
 * Search-node fallbacks per minute that page when sustained for 10 minutes (with `searchNodes=true`): a node
 * restarting or draining sends parts to its Lambda for seconds; ten minutes of it is a node that is gone,
 * and the searches it should serve pay an invoke each (correct answers, ~10 ms slower).
 */
export const SEARCH_NODE_FALLBACK_ALARM = { perMinute: 10, minutes: 10 } as const;

/** The drift alarm's period: three of them above PSI_ALERT (45 minutes of shifted queries) page. */
const DRIFT_ALARM_PERIOD = Duration.minutes(15);

export interface MonitoringProps {
  settings: ShoalSettings;
  httpApi: apigwv2.HttpApi;
  stage: apigwv2.HttpStage;
  functions: {
    api: ShoalFunction;
    indexBuilder: ShoalFunction;
    buildWorker: ShoalFunction;
    shardSearch: ShoalFunction[];
    importer: ShoalFunction;
    authorizer: ShoalFunction;
  };
  buildQueue: sqs.IQueue;
  buildDlq: sqs.IQueue;
  importQueue: sqs.IQueue;
  importDlq: sqs.IQueue;
  buildTaskQueue: sqs.IQueue;
  buildTaskDlq: sqs.IQueue;
}

/**
 * The build-task queue's age alarm: a plan's tasks wait at most a few task lengths (each ≤ 5 min by
 * sizing) when the workers keep up; older means too few workers for the plans in flight, or workers
 * that are not consuming.
 */
export const BUILD_TASK_AGE_ALARM_SECONDS = 30 * 60;

const MINUTE = Duration.minutes(1);
const FIVE_MINUTES = Duration.minutes(5);

export class Monitoring extends Construct {
  readonly dashboard: cw.Dashboard;
  readonly topic: sns.Topic;
  readonly alarms: Record<string, cw.Alarm> = {};

  constructor(scope: Construct, id: string, props: MonitoringProps) {
    super(scope, id);
    const { settings, httpApi, functions } = props;
    const prod = settings.stage === 'prod';

    // Alarm topic, encrypted with a key CloudWatch may use (the AWS-managed SNS key does not allow it).
    const key = new kms.Key(this, 'AlarmTopicKey', {
      description: `${settings.prefix} alarm topic encryption`,
      enableKeyRotation: true,
      removalPolicy: prod ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
    });
    key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AllowCloudWatchAlarms',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
      }),
    );
    this.topic = new sns.Topic(this, 'AlarmTopic', {
      displayName: `${settings.prefix} alarms`,
      masterKey: key,
      enforceSSL: true,
    });
    if (settings.alarmEmail) this.topic.addSubscription(new subs.EmailSubscription(settings.alarmEmail));
    const action = new cwActions.SnsAction(this.topic);

    const shoalMetric = (metricName: string, role: FunctionRole, statistic: string): cw.Metric =>
      new cw.Metric({
        namespace: SHOAL_METRICS.namespace,
        metricName,
        dimensionsMap: { service: serviceName(settings, role) },
        statistic,
        period: MINUTE,
      });
    const routeMetric = (route: (typeof V1_ROUTES)[number], statistic: string): cw.Metric =>
      new cw.Metric({
        namespace: 'AWS/ApiGateway',
        metricName: 'Latency',
        // Detailed (per-route) metrics of an HTTP API: ApiId, Stage, Method, Resource.
        dimensionsMap: {
          ApiId: httpApi.apiId,
          Stage: props.stage.stageName,
          Method: route.method,
          Resource: route.path,
        },
        statistic,
        period: MINUTE,
        label: `${route.method} ${route.path} ${statistic}`,
      });
    const dlqDepth = (q: sqs.IQueue, label?: string) =>
      q.metricApproximateNumberOfMessagesVisible({ statistic: 'Maximum', period: MINUTE, ...(label ? { label } : {}) });

    // --- Alarms.
    const add = (alarmId: string, alarm: cw.Alarm) => {
      alarm.addAlarmAction(action);
      alarm.addOkAction(action);
      this.alarms[alarmId] = alarm;
    };
    for (const [alarmId, q, what] of [
      ['BuildDlqNotEmpty', props.buildDlq, 'build'],
      ['ImportDlqNotEmpty', props.importDlq, 'import'],
      ['BuildTaskDlqNotEmpty', props.buildTaskDlq, 'build-task'],
    ] as const) {
      add(
        alarmId,
        new cw.Alarm(this, alarmId, {
          alarmName: `${settings.prefix}-${what}-dlq-not-empty`,
          alarmDescription: `Messages in the ${what} dead-letter queue (docs/operations.md#${what}-dlq-not-empty).`,
          metric: dlqDepth(q),
          threshold: 1,
          comparisonOperator: cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
          evaluationPeriods: 1,
          treatMissingData: cw.TreatMissingData.NOT_BREACHING,
        }),
      );
    }
    const requests = httpApi.metricCount({ period: FIVE_MINUTES, statistic: 'Sum' });
    const errors5xx = httpApi.metricServerError({ period: FIVE_MINUTES, statistic: 'Sum' });
    const rate5xx = new cw.MathExpression({
      // Ignore the rate while traffic is too thin to mean anything (< 20 requests in 5 minutes).
      expression: 'IF(requests >= 20, 100 * errors / requests, 0)',
      usingMetrics: { requests, errors: errors5xx },
      period: FIVE_MINUTES,
      label: '5xx rate (%)',
    });
    add(
      'Api5xxRate',
      new cw.Alarm(this, 'Api5xxRate', {
        alarmName: `${settings.prefix}-api-5xx-rate`,
        alarmDescription:
          'More than 1 % of API requests answered 5xx for 10 minutes (docs/operations.md#api-5xx-rate).',
        metric: rate5xx,
        threshold: 1,
        comparisonOperator: cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 2,
        treatMissingData: cw.TreatMissingData.NOT_BREACHING,
      }),
    );
    const builderLag = shoalMetric(SHOAL_METRICS.builderLag, 'indexBuilder', 'Maximum');
    add(
      'BuilderLag',
      new cw.Alarm(this, 'BuilderLag', {
        alarmName: `${settings.prefix}-builder-lag`,
        alarmDescription:
          `Unindexed rows (seq − watermark) above ${settings.builderLagAlarmRows} for 15 minutes ` +
          '(docs/operations.md#builder-lag).',
        metric: builderLag,
        threshold: settings.builderLagAlarmRows,
        comparisonOperator: cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 15,
        treatMissingData: cw.TreatMissingData.NOT_BREACHING,
      }),
    );
    add(
      'BuildQueueAge',
      new cw.Alarm(this, 'BuildQueueAge', {
        alarmName: `${settings.prefix}-build-queue-age`,
        alarmDescription:
          'The oldest build wake-up is older than 15 minutes: the builder is not keeping up ' +
          '(docs/operations.md#build-queue-age).',
        metric: props.buildQueue.metricApproximateAgeOfOldestMessage({ statistic: 'Maximum', period: MINUTE }),
        threshold: 15 * 60,
        comparisonOperator: cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 5,
        treatMissingData: cw.TreatMissingData.NOT_BREACHING,
      }),
    );
    add(
      'BuilderErrors',
      new cw.Alarm(this, 'BuilderErrors', {
        alarmName: `${settings.prefix}-builder-errors`,
        alarmDescription:
          'The index builder crashed or timed out in 3 of the last 5 minutes (docs/operations.md#builder-errors).',
        metric: functions.indexBuilder.fn.metricErrors({ period: MINUTE, statistic: 'Sum' }),
        threshold: 1,
        comparisonOperator: cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 5,
        datapointsToAlarm: 3,
        treatMissingData: cw.TreatMissingData.NOT_BREACHING,
      }),
    );
    add(
      'BuildTaskQueueAge',
      new cw.Alarm(this, 'BuildTaskQueueAge', {
        alarmName: `${settings.prefix}-build-task-queue-age`,
        alarmDescription:
          'The oldest build-plan task has waited more than 30 minutes: the build workers are not keeping up ' +
          '(docs/operations.md#build-task-queue-age).',
        metric: props.buildTaskQueue.metricApproximateAgeOfOldestMessage({ statistic: 'Maximum', period: MINUTE }),
        threshold: BUILD_TASK_AGE_ALARM_SECONDS,
        comparisonOperator: cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 5,
        treatMissingData: cw.TreatMissingData.NOT_BREACHING,
      }),
    );
    // A failing task is a batch-item failure, not a Lambda error; errors are crashes, out-of-memory and
    // timeouts. One task's message comes back only after the visibility timeout (90 min) or the tick's
    // stall redrive (20 min), so repeated failures are sparse: errors in 2 of the last six 5-minute
    // periods (a lone sandbox crash does not page, a task that keeps failing or several workers do).
    add(
      'BuildWorkerErrors',
      new cw.Alarm(this, 'BuildWorkerErrors', {
        alarmName: `${settings.prefix}-build-worker-errors`,
        alarmDescription:
          'Build workers crashed or timed out in 2 of the last six 5-minute periods ' +
          '(docs/operations.md#build-worker-errors).',
        metric: functions.buildWorker.fn.metricErrors({ period: FIVE_MINUTES, statistic: 'Sum' }),
        threshold: 1,
        comparisonOperator: cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 6,
        datapointsToAlarm: 2,
        treatMissingData: cw.TreatMissingData.NOT_BREACHING,
      }),
    );
    // The worker runs at its reserved concurrency whenever a large plan is in flight, so throttles at that
    // ceiling are expected under load: the event source's cap (compute.ts) keeps them rare, not absent (it
    // cannot go below 2, above buildWorkers=1). A burst costs little (Lambda retries the task while it is
    // in flight); sustained throttling holds tasks back for up to the visibility timeout (90 min), after
    // which each counts as a receive toward maxReceiveCount. Hence 10 of 15 minutes. The worker stays out
    // of function-throttles, which is about the account's limit: a reserved function is not throttled by it.
    add(
      'BuildWorkerThrottles',
      new cw.Alarm(this, 'BuildWorkerThrottles', {
        alarmName: `${settings.prefix}-build-worker-throttles`,
        alarmDescription:
          'Lambda throttled the build worker in 10 of the last 15 minutes (docs/operations.md#build-worker-throttles).',
        metric: functions.buildWorker.fn.metricThrottles({ period: MINUTE, statistic: 'Sum' }),
        threshold: 1,
        comparisonOperator: cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 15,
        datapointsToAlarm: 10,
        treatMissingData: cw.TreatMissingData.NOT_BREACHING,
      }),
    );
    // Queries only: ingest drift is expected during a migration or backfill, query drift means the clients'
    // embeddings no longer match the collection's (another model version, a preprocessing change).
    const queryDrift = new cw.Metric({
      namespace: SHOAL_METRICS.namespace,
      metricName: SHOAL_METRICS.embeddingDrift,
      dimensionsMap: { service: serviceName(settings, 'api'), Kind: 'query' },
      statistic: 'Maximum',
      period: DRIFT_ALARM_PERIOD,
    });
    add(
      'EmbeddingDrift',
      new cw.Alarm(this, 'EmbeddingDrift', {
        alarmName: `${settings.prefix}-embedding-drift`,
        alarmDescription:
          `Query embeddings drifted from a collection's reference (PSI > ${PSI_ALERT}) for 45 minutes ` +
          '(docs/operations.md#embedding-drift, docs/drift.md).',
        metric: queryDrift,
        threshold: PSI_ALERT,
        comparisonOperator: cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
        evaluationPeriods: 3,
        datapointsToAlarm: 3,
        treatMissingData: cw.TreatMissingData.NOT_BREACHING,
      }),
    );
    if (settings.searchNodes) {
      add(
        'SearchNodeFallbacks',
        new cw.Alarm(this, 'SearchNodeFallbacks', {
          alarmName: `${settings.prefix}-search-node-fallbacks`,
          alarmDescription:
            `More than ${SEARCH_NODE_FALLBACK_ALARM.perMinute} slot parts a minute went to the slot Lambdas ` +
            `instead of the search nodes for ${SEARCH_NODE_FALLBACK_ALARM.minutes} minutes ` +
            '(docs/operations.md#search-node-fallbacks).',
          metric: shoalMetric(SHOAL_METRICS.searchNodeFallback, 'api', 'Sum'),
          threshold: SEARCH_NODE_FALLBACK_ALARM.perMinute,
          comparisonOperator: cw.ComparisonOperator.GREATER_THAN_THRESHOLD,
          evaluationPeriods: SEARCH_NODE_FALLBACK_ALARM.minutes,
          treatMissingData: cw.TreatMissingData.NOT_BREACHING,
        }),
      );
    }
    const allFunctions = [
      functions.api,
      functions.indexBuilder,
      functions.buildWorker,
      functions.importer,
      ...functions.shardSearch,
      functions.authorizer,
    ];
    const throttleMetrics = Object.fromEntries(
      allFunctions
        .filter((f) => f !== functions.buildWorker)
        .map((f, i) => [`t${i}`, f.fn.metricThrottles({ period: MINUTE, statistic: 'Sum' })]),
    );
    const throttles = new cw.MathExpression({
      expression: Object.keys(throttleMetrics).join(' + '),
      usingMetrics: throttleMetrics,
      period: MINUTE,
      label: 'Lambda throttles (Shoal functions without reserved concurrency)',
    });
    add(
      'FunctionThrottles',
      new cw.Alarm(this, 'FunctionThrottles', {
        alarmName: `${settings.prefix}-function-throttles`,
        alarmDescription:
          'Lambda throttled Shoal functions in 3 of the last 5 minutes (docs/operations.md#function-throttles).',
        metric: throttles,
        threshold: 1,
        comparisonOperator: cw.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: 5,
        datapointsToAlarm: 3,
        treatMissingData: cw.TreatMissingData.NOT_BREACHING,
      }),
    );

    // --- Dashboard.
    const hits = shoalMetric(SHOAL_METRICS.cacheHit, 'shardSearch', 'Sum');
    const misses = shoalMetric(SHOAL_METRICS.cacheMiss, 'shardSearch', 'Sum');
    const apiHits = shoalMetric(SHOAL_METRICS.cacheHit, 'api', 'Sum');
    const apiMisses = shoalMetric(SHOAL_METRICS.cacheMiss, 'api', 'Sum');
    this.dashboard = new cw.Dashboard(this, 'Dashboard', {
      dashboardName: `${settings.prefix}`,
      defaultInterval: Duration.hours(3),
    });
    this.dashboard.addWidgets(
      new cw.TextWidget({
        markdown:
          `# Shoal ${settings.stage}\nRunbook: docs/operations.md. ` +
          `Alarms notify SNS topic \`${settings.prefix}\` alarms.`,
        width: 24,
        height: 2,
      }),
    );
    this.dashboard.addWidgets(
      new cw.GraphWidget({
        title: 'Latency p50 per route (ms)',
        left: V1_ROUTES.map((r) => routeMetric(r, 'p50')),
        width: 12,
        height: 8,
        legendPosition: cw.LegendPosition.RIGHT,
      }),
      new cw.GraphWidget({
        title: 'Latency p99 per route (ms)',
        left: V1_ROUTES.map((r) => routeMetric(r, 'p99')),
        width: 12,
        height: 8,
        legendPosition: cw.LegendPosition.RIGHT,
      }),
    );
    this.dashboard.addWidgets(
      new cw.GraphWidget({
        title: 'Requests and errors',
        left: [requests, httpApi.metricClientError({ period: FIVE_MINUTES, statistic: 'Sum' }), errors5xx],
        right: [rate5xx],
        width: 8,
      }),
      new cw.GraphWidget({
        title: 'Function errors',
        left: allFunctions.map((f) => f.fn.metricErrors({ period: MINUTE, statistic: 'Sum', label: f.node.id })),
        width: 8,
      }),
      new cw.GraphWidget({
        title: 'Function throttles',
        left: allFunctions.map((f) => f.fn.metricThrottles({ period: MINUTE, statistic: 'Sum', label: f.node.id })),
        width: 8,
      }),
    );
    this.dashboard.addWidgets(
      new cw.GraphWidget({
        title: 'Queues: DLQ depth and build backlog',
        left: [
          dlqDepth(props.buildDlq, 'build DLQ'),
          dlqDepth(props.importDlq, 'import DLQ'),
          dlqDepth(props.buildTaskDlq, 'build-task DLQ'),
        ],
        right: [
          props.buildQueue.metricApproximateNumberOfMessagesVisible({
            statistic: 'Maximum',
            period: MINUTE,
            label: 'build queue',
          }),
          props.importQueue.metricApproximateNumberOfMessagesVisible({
            statistic: 'Maximum',
            period: MINUTE,
            label: 'import queue',
          }),
          props.buildTaskQueue.metricApproximateNumberOfMessagesVisible({
            statistic: 'Maximum',
            period: MINUTE,
            label: 'build-task queue',
          }),
        ],
        width: 8,
      }),
      new cw.GraphWidget({
        title: 'Builder lag (rows = seq − watermark)',
        left: [builderLag],
        leftAnnotations: [{ value: settings.builderLagAlarmRows, label: 'alarm' }],
        right: [
          props.buildQueue.metricApproximateAgeOfOldestMessage({
            statistic: 'Maximum',
            period: MINUTE,
            label: 'oldest wake-up (s)',
          }),
        ],
        width: 8,
      }),
      new cw.GraphWidget({
        title: 'Shard-cache hit rate (%)',
        left: [
          new cw.MathExpression({
            expression: 'IF(h + m > 0, 100 * h / (h + m), 0)',
            usingMetrics: { h: hits, m: misses },
            period: MINUTE,
            label: 'searcher slots',
          }),
          new cw.MathExpression({
            expression: 'IF(ah + am > 0, 100 * ah / (ah + am), 0)',
            usingMetrics: { ah: apiHits, am: apiMisses },
            period: MINUTE,
            label: 'api (in-process)',
          }),
        ],
        leftYAxis: { min: 0, max: 100 },
        width: 8,
      }),
    );
    const worker = functions.buildWorker.fn;
    this.dashboard.addWidgets(
      new cw.GraphWidget({
        title: 'Build workers: busy vs. reserved',
        left: [worker.metric('ConcurrentExecutions', { period: MINUTE, statistic: 'Maximum', label: 'running' })],
        leftAnnotations: [{ value: settings.buildWorkers, label: 'reserved (buildWorkers)' }],
        right: [worker.metricThrottles({ period: MINUTE, statistic: 'Sum', label: 'throttles' })],
        width: 8,
      }),
      new cw.GraphWidget({
        title: 'Build tasks: waiting and running',
        left: [
          props.buildTaskQueue.metricApproximateNumberOfMessagesVisible({
            statistic: 'Maximum',
            period: MINUTE,
            label: 'waiting',
          }),
          props.buildTaskQueue.metricApproximateNumberOfMessagesNotVisible({
            statistic: 'Maximum',
            period: MINUTE,
            label: 'running (in flight)',
          }),
        ],
        right: [
          props.buildTaskQueue.metricApproximateAgeOfOldestMessage({
            statistic: 'Maximum',
            period: MINUTE,
            label: 'oldest task (s)',
          }),
        ],
        rightAnnotations: [{ value: BUILD_TASK_AGE_ALARM_SECONDS, label: 'alarm' }],
        width: 8,
      }),
      new cw.GraphWidget({
        title: 'Build workers: errors and duration p99 (ms)',
        left: [worker.metricErrors({ period: FIVE_MINUTES, statistic: 'Sum', label: 'errors (5 min)' })],
        right: [worker.metricDuration({ period: MINUTE, statistic: 'p99', label: 'duration p99' })],
        width: 8,
      }),
    );
    this.dashboard.addWidgets(
      new cw.GraphWidget({
        title: 'Embedding drift (PSI, max over collections)',
        left: [
          queryDrift.with({ label: 'queries' }),
          queryDrift.with({
            dimensionsMap: { service: serviceName(settings, 'api'), Kind: 'ingest' },
            label: 'upserts',
          }),
        ],
        leftAnnotations: [{ value: PSI_ALERT, label: 'alert' }],
        width: 24,
      }),
    );
    this.dashboard.addWidgets(
      new cw.GraphWidget({
        title: 'Function duration p99 (ms)',
        left: allFunctions.map((f) => f.fn.metricDuration({ period: MINUTE, statistic: 'p99', label: f.node.id })),
        width: 12,
      }),
      new cw.GraphWidget({
        title: 'Concurrent executions',
        left: allFunctions.map((f) =>
          f.fn.metric('ConcurrentExecutions', { period: MINUTE, statistic: 'Maximum', label: f.node.id }),
        ),
        width: 12,
      }),
      new cw.AlarmStatusWidget({ title: 'Alarms', alarms: Object.values(this.alarms), width: 24 }),
    );
  }
}
