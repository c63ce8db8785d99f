/**
 * Build worker: runs the tasks of build plans (docs/architecture.md §6.5) from the build-task queue —
 * scan, train, assign, build, commit — so a large layout is built by many workers at once. Its
 * reserved concurrency (CDK context `buildWorkers`) is how many tasks run in parallel.
 */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { consumeBuildTasks } from '../../shared/indexing/build-queue.js';
import { logger } from '../../shared/log.js';
import { metrics } from '../../shared/metrics.js';
import { getRuntime } from '../../shared/runtime.js';

// Configuration is validated during init: a bad deployment fails its cold start.
await getRuntime();

async function run(event: SQSEvent, context: Context): Promise<SQSBatchResponse> {
  return consumeBuildTasks(event, context, await getRuntime());
}

export const handler = middy(run).use(injectLambdaContext(logger)).use(logMetrics(metrics));
