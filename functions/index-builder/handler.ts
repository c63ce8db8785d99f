/**
 * Index builder: woken by the build queue (one message per write batch, duplicates and
 * losses harmless) and by a scheduled tick that sweeps every collection. The same queue
 * carries `verify-artifact` messages: model artifacts too large to hash inside an API
 * request are verified here (the builder has the long timeout). The tick also runs the
 * import sweeper first (cheap; docs/imports.md): import jobs whose invocation died are
 * re-announced on the import queue, so they resume from their checkpoint.
 */
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context, ScheduledEvent, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { consumeBuildMessages } from '../../shared/indexing/build-queue.js';
import { logger } from '../../shared/log.js';
import { metrics, recordBuilderLag } from '../../shared/metrics.js';
import { getRuntime } from '../../shared/runtime.js';

function isSqs(event: SQSEvent | ScheduledEvent): event is SQSEvent {
  return Array.isArray((event as SQSEvent).Records);
}

// Configuration is validated during init: a bad deployment fails its cold start.
await getRuntime();

async function run(event: SQSEvent | ScheduledEvent, context: Context): Promise<SQSBatchResponse | void> {
  const runtime = await getRuntime();
  if (isSqs(event)) return consumeBuildMessages(event, context, runtime);
  // Before the builds (which may take minutes): a stuck import is re-queued on every tick. A failing
  // sweep is logged and never stops the builds.
  try {
    const swept = await runtime.imports.sweep();
    if (swept.requeued.length) logger.info('import sweep', { active: swept.active, requeued: swept.requeued.length });
  } catch (err) {
    logger.error('import sweep failed', { error: err as Error });
  }
  recordBuilderLag(await runtime.indexer.sweep());
}

export const handler = middy(run).use(injectLambdaContext(logger)).use(logMetrics(metrics));
