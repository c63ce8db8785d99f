/**
 * Index builder: woken by the build queue (one message per write batch, duplicates and
 * losses harmless) and by a scheduled tick that sweeps every collection. The same queue
 * carries `verify-artifact` messages: model artifacts too large to hash inside an API
 * request are verified here (the builder has the long timeout).
 */
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
import middy from '@middy/core';
import type { Context, ScheduledEvent, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { NotFoundError } from '../../shared/errors.js';
import { logger } from '../../shared/log.js';
import { metrics, recordBuilderLag } from '../../shared/metrics.js';
import { parseBuildMessage, type BuildWork } from '../../shared/queue/messages.js';
import { getRuntime } from '../../shared/runtime.js';

function isSqs(event: SQSEvent | ScheduledEvent): event is SQSEvent {
  return Array.isArray((event as SQSEvent).Records);
}

// Configuration is validated during init: a bad deployment fails its cold start.
await getRuntime();

async function onMessages(event: SQSEvent, context: Context): Promise<SQSBatchResponse> {
  const { indexer, lifecycle } = await getRuntime();
  const work = new Map<string, BuildWork | undefined>(
    event.Records.map((r) => [r.messageId, parseBuildMessage(r.body)]),
  );
  // Many messages name the same collection: build each once (forced if any message asks), and
  // every message of the collection awaits that one build, so they succeed or fail together.
  const forced = new Set<string>();
  for (const w of work.values()) if (w?.kind === 'build' && w.force) forced.add(w.collection);
  const builds = new Map<string, Promise<void>>();
  const build = (collection: string): Promise<void> => {
    let done = builds.get(collection);
    if (!done) {
      done = (forced.has(collection) ? indexer.buildNow(collection) : indexer.maybeBuild(collection)).then(
        () => undefined,
        (err: unknown) => {
          // A deleted collection has nothing left to build: its wake-ups are done.
          if (err instanceof NotFoundError) return;
          logger.error('build failed', { collection, error: err as Error });
          throw err;
        },
      );
      builds.set(collection, done);
    }
    return done;
  };
  const handle = async (record: SQSRecord): Promise<void> => {
    const msg = work.get(record.messageId);
    if (!msg) {
      // Dropped, not failed: a retry cannot make it parse.
      logger.error('dropping malformed build message', { messageId: record.messageId });
      return;
    }
    if (msg.kind === 'build') return build(msg.collection);
    try {
      await lifecycle.verifyModelArtifact(msg.model, msg.version);
    } catch (err) {
      logger.error('verifying a model artifact failed', {
        model: msg.model,
        version: msg.version,
        error: err as Error,
      });
      throw err;
    }
  };
  // A processor per invocation: the local server may run several invocations at once in one process.
  // In order, so builds run one after another as before (a builder holds large shards in memory).
  return processPartialResponse(event, handle, new BatchProcessor(EventType.SQS), {
    context,
    processInParallel: false,
    throwOnFullBatchFailure: false,
  });
}

async function run(event: SQSEvent | ScheduledEvent, context: Context): Promise<SQSBatchResponse | void> {
  if (isSqs(event)) return onMessages(event, context);
  const { indexer } = await getRuntime();
  recordBuilderLag(await indexer.sweep());
}

export const handler = middy(run).use(injectLambdaContext(logger)).use(logMetrics(metrics));
