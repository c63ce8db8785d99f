/**
 * The build queue's consumer (the index-builder function's SQS path), as Powertools partial batch
 * processing: each record succeeds or fails on its own, and only failed ones come back.
 */
import { BatchProcessor, EventType, processPartialResponse } from '@aws-lambda-powertools/batch';
import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import { NotFoundError } from '../errors.js';
import type { LifecycleService } from '../service.js';
import { logger } from '../log.js';
import { parseBuildMessage, parseBuildTaskQueueMessage, type BuildWork } from '../queue/messages.js';
import type { Indexer } from './indexer.js';

/**
 * Time a tune job keeps before the invocation's end to record that it ran out of time (60 s): above the
 * longest single step between its checks (one sweep setting of `sample` queries, or writing the job).
 */
export const TUNE_SAFETY_MARGIN_MS = 60_000;

type TuneWork = Extract<BuildWork, { kind: 'tune' }>;

export interface BuildQueueDeps {
  indexer: Pick<Indexer, 'buildNow' | 'maybeBuild'>;
  lifecycle: Pick<LifecycleService, 'verifyModelArtifact' | 'runTuneJob'>;
  /**
   * Hands a tune job to the build workers (the build-task queue): their 15 min fit a tune of 1M rows, the
   * builder's 5 min do not. Absent (no build-task queue): the builder runs it itself.
   */
  forwardTune?: (work: TuneWork) => Promise<void>;
}

/**
 * Runs a tune job until 60 s before the invocation ends (then it fails with LIMIT_EXCEEDED). A finished
 * job is left alone; errors of the tune end the job `failed` (runTuneJob). What still throws (storage
 * unavailable) fails the record: the redelivery runs the job again.
 */
async function runTune(
  lifecycle: Pick<LifecycleService, 'runTuneJob'>,
  msg: TuneWork,
  context: Context,
): Promise<void> {
  try {
    const deadline = Date.now() + context.getRemainingTimeInMillis() - TUNE_SAFETY_MARGIN_MS;
    const job = await lifecycle.runTuneJob(msg.collection, msg.jobId, { deadline });
    if (!job) logger.warn('tune job not found', { collection: msg.collection, jobId: msg.jobId });
    else logger.info('tune job', { collection: msg.collection, jobId: msg.jobId, status: job.status });
  } catch (err) {
    logger.error('running a tune job failed', { collection: msg.collection, jobId: msg.jobId, error: err as Error });
    throw err;
  }
}

export async function consumeBuildMessages(
  event: SQSEvent,
  context: Context,
  { indexer, lifecycle, forwardTune }: BuildQueueDeps,
): Promise<SQSBatchResponse> {
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
      // Dropped, not failed: no retry can make it parse.
      logger.error('dropping malformed build message', { messageId: record.messageId });
      return;
    }
    if (msg.kind === 'build') return build(msg.collection);
    if (msg.kind === 'tune') return forwardTune ? forwardTune(msg) : runTune(lifecycle, msg, context);
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
  // Records in order, so builds run one after another as before (a build holds large shards in memory).
  return processPartialResponse(event, handle, new BatchProcessor(EventType.SQS), {
    context,
    processInParallel: false,
    throwOnFullBatchFailure: false,
  });
}

/**
 * The build-task queue's consumer (the build-worker function): one plan task or tune job per record (batch size 1
 * on AWS: a task may take minutes). A failed task comes back after the visibility timeout, and after
 * maxReceiveCount lands in the DLQ; the plan's stall check re-sends it meanwhile if needed.
 */
export async function consumeBuildTasks(
  event: SQSEvent,
  context: Context,
  { indexer, lifecycle }: { indexer: Pick<Indexer, 'runTask'>; lifecycle: Pick<LifecycleService, 'runTuneJob'> },
): Promise<SQSBatchResponse> {
  const handle = async (record: SQSRecord): Promise<void> => {
    const msg = parseBuildTaskQueueMessage(record.body);
    if (!msg) {
      logger.error('dropping malformed build-task message', { messageId: record.messageId });
      return;
    }
    if (msg.kind === 'tune') return runTune(lifecycle, msg, context);
    try {
      await indexer.runTask(msg);
    } catch (err) {
      // A deleted collection's plan has nothing left to do.
      if (err instanceof NotFoundError) return;
      logger.error('build task failed', { ...msg, error: err as Error });
      throw err;
    }
  };
  return processPartialResponse(event, handle, new BatchProcessor(EventType.SQS), {
    context,
    processInParallel: false,
    throwOnFullBatchFailure: false,
  });
}
