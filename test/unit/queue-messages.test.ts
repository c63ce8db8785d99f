/**
 * Queue messages (shared/queue/messages.ts) and the build queue's consumer: what each queue accepts,
 * what senders may send, and how a batch of build messages maps to builds and partial failures.
 */
import type { SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { describe, expect, it } from 'vitest';
import { makeLambdaContext } from '../../infra/local/lambda-emulator.js';
import { NotFoundError } from '../../shared/errors.js';
import { consumeBuildMessages, consumeBuildTasks } from '../../shared/indexing/build-queue.js';
import { parseBuildMessage, parseImportMessage, sqsQueueProducer } from '../../shared/queue/messages.js';
import type { BuildResult } from '../../shared/indexing/builder.js';
import { sqsEvent } from '../helpers/sqs.js';

const context = makeLambdaContext({ functionName: 'shoal-index-builder', timeoutMs: 60_000, region: 'us-east-1' });

const buildEvent = (bodies: string[]) => sqsEvent(bodies, { queue: 'shoal-build' });

const built: BuildResult = { version: 1, built: true, shards: 1, watermark: 1 };

describe('build queue messages', () => {
  it('parses wake-ups, forced builds, artifact verifications and tune jobs; anything else is malformed', () => {
    expect(parseBuildMessage('{"collection":"a"}')).toEqual({ kind: 'build', collection: 'a', force: false });
    expect(parseBuildMessage('{"collection":"a","force":true}')).toEqual({
      kind: 'build',
      collection: 'a',
      force: true,
    });
    expect(parseBuildMessage('{"kind":"verify-artifact","model":"m","version":3}')).toEqual({
      kind: 'verify-artifact',
      model: 'm',
      version: 3,
    });
    expect(parseBuildMessage('{"kind":"tune","collection":"c","version":2,"jobId":"j"}')).toEqual({
      kind: 'tune',
      collection: 'c',
      version: 2,
      jobId: 'j',
    });
    for (const bad of [
      'not json',
      '{}',
      '{"collection":5}',
      '{"kind":"verify-artifact","model":"m","version":1.5}',
      '{"kind":"tune","collection":"c","version":2}',
    ])
      expect(parseBuildMessage(bad)).toBeUndefined();
  });
});

describe('import queue messages', () => {
  it('parses jobs, continuations and S3 notifications (form-encoded keys, quoted ETags); skips other events', () => {
    expect(parseImportMessage('{"type":"continue","collection":"c","jobId":"j"}')).toEqual([
      { kind: 'job', collection: 'c', jobId: 'j' },
    ]);
    expect(parseImportMessage('{"Event":"s3:TestEvent","Bucket":"b"}')).toEqual([]);
    const notification = {
      Records: [
        { eventName: 'ObjectRemoved:Delete', s3: {} },
        {
          eventName: 'ObjectCreated:Put',
          s3: { bucket: { name: 'b' }, object: { key: 'imports/c/a+b%2Bc.jsonl', eTag: '"e1"', size: 9 } },
        },
        { eventName: 'ObjectCreated:Copy', s3: { bucket: { name: 'b' }, object: { key: 'imports/c/x.csv' } } },
      ],
    };
    expect(parseImportMessage(JSON.stringify(notification))).toEqual([
      { kind: 'object', obj: { bucket: 'b', key: 'imports/c/a b+c.jsonl', etag: 'e1', size: 9 } },
      { kind: 'object', obj: { bucket: 'b', key: 'imports/c/x.csv', etag: '', size: 0 } },
    ]);
  });

  it('calls a message malformed when it is no job, or an ObjectCreated record lacks bucket or key', () => {
    for (const bad of [
      '{',
      '{"type":"import","collection":"c"}',
      '{"Records":[{"eventName":"ObjectCreated:Put","s3":{"bucket":{"name":"b"},"object":{}}}]}',
    ])
      expect(parseImportMessage(bad)).toBeUndefined();
  });
});

describe('the queue producer', () => {
  it('sends valid messages as JSON to their queue and refuses invalid ones before sending', async () => {
    const sent: Array<{ QueueUrl?: string; MessageBody?: string }> = [];
    const sqs = { send: async (c: SendMessageCommand) => void sent.push(c.input) } as unknown as SQSClient;
    const queues = sqsQueueProducer(sqs, { build: 'https://q/build' });
    await queues.send('build', { collection: 'a', force: true });
    expect(sent).toEqual([{ QueueUrl: 'https://q/build', MessageBody: '{"collection":"a","force":true}' }]);
    await expect(queues.send('build', { collection: 7 } as unknown as { collection: string })).rejects.toThrow();
    await expect(queues.send('import', { type: 'import', collection: 'c', jobId: 'j' })).rejects.toThrow(
      /import queue is not configured/,
    );
    expect(sent).toHaveLength(1);
  });
});

describe('the build queue consumer', () => {
  it(
    'builds each collection once per batch, ' + 'forced if any message asks, and fails all its messages together',
    async () => {
      const calls: string[] = [];
      const indexer = {
        buildNow: async (c: string) => {
          calls.push(`now:${c}`);
          if (c === 'broken') throw new Error('disk full');
          return built;
        },
        maybeBuild: async (c: string) => {
          calls.push(`maybe:${c}`);
          if (c === 'gone') throw new NotFoundError('collection gone not found');
          return built;
        },
      };
      const verified: string[] = [];
      const tuned: string[] = [];
      const lifecycle = {
        verifyModelArtifact: async (model: string, version: number) => {
          verified.push(`${model}@${version}`);
          if (model === 'bad') throw new Error('digest mismatch');
          return undefined;
        },
        runTuneJob: async (collection: string, jobId: string) => {
          tuned.push(`${collection}/${jobId}`);
          if (jobId === 'flaky') throw new Error('storage unavailable');
          return undefined;
        },
      };
      const res = await consumeBuildMessages(
        buildEvent([
          '{"collection":"a"}', // m0
          '{"collection":"broken","force":true}', // m1
          '{"collection":"a","force":true}', // m2
          'garbage', // m3: dropped, not retried
          '{"collection":"broken"}', // m4: fails with m1's build
          '{"collection":"gone"}', // m5: a deleted collection, done
          '{"kind":"verify-artifact","model":"bad","version":2}', // m6
          '{"kind":"verify-artifact","model":"ok","version":1}', // m7
          '{"kind":"tune","collection":"a","version":1,"jobId":"j1"}', // m8
          '{"kind":"tune","collection":"a","version":1,"jobId":"flaky"}', // m9: comes back, runs again
        ]),
        context,
        { indexer, lifecycle },
      );
      expect(calls).toEqual(['now:a', 'now:broken', 'maybe:gone']);
      expect(verified).toEqual(['bad@2', 'ok@1']);
      expect(tuned).toEqual(['a/j1', 'a/flaky']);
      expect(res.batchItemFailures.map((f) => f.itemIdentifier).sort()).toEqual(['m1', 'm4', 'm6', 'm9']);
    },
  );

  it('reports every message failed when the whole batch fails (no throw: SQS retries exactly those)', async () => {
    const failing = async (): Promise<BuildResult> => {
      throw new Error('throttled');
    };
    const res = await consumeBuildMessages(buildEvent(['{"collection":"a"}', '{"collection":"b"}']), context, {
      indexer: { buildNow: failing, maybeBuild: failing },
      lifecycle: { verifyModelArtifact: async () => undefined, runTuneJob: async () => undefined },
    });
    expect(res.batchItemFailures.map((f) => f.itemIdentifier)).toEqual(['m0', 'm1']);
  });

  it('hands tune jobs to the build workers, which run them beside plan tasks', async () => {
    const tune = '{"kind":"tune","collection":"a","version":1,"jobId":"j1"}';
    const forwarded: unknown[] = [];
    const never = async (): Promise<never> => {
      throw new Error('the builder must not run a tune it can forward');
    };
    const res = await consumeBuildMessages(buildEvent([tune]), context, {
      indexer: { buildNow: async () => built, maybeBuild: async () => built },
      lifecycle: { verifyModelArtifact: async () => undefined, runTuneJob: never },
      forwardTune: async (work) => void forwarded.push(work),
    });
    expect(res.batchItemFailures).toEqual([]);
    expect(forwarded).toEqual([{ kind: 'tune', collection: 'a', version: 1, jobId: 'j1' }]);

    const ran: Array<{ jobId: string; deadline?: number }> = [];
    const tasks: unknown[] = [];
    const task = '{"kind":"build-task","collection":"a","line":"main","planId":"p","stage":"scan","task":0}';
    const worker = await consumeBuildTasks(sqsEvent([tune, task, 'garbage'], { queue: 'shoal-build-task' }), context, {
      indexer: {
        runTask: async (msg) => {
          tasks.push(msg);
          return 'done' as const;
        },
      },
      lifecycle: {
        runTuneJob: async (_c: string, jobId: string, opts?: { deadline?: number }) => {
          ran.push({ jobId, deadline: opts?.deadline });
          return undefined;
        },
      },
    });
    expect(worker.batchItemFailures).toEqual([]);
    expect(ran.map((r) => r.jobId)).toEqual(['j1']);
    // The deadline leaves TUNE_SAFETY_MARGIN_MS of the invocation's time (60 s here, so it is now or past).
    expect(ran[0].deadline).toBeLessThanOrEqual(Date.now());
    expect(tasks).toEqual([{ kind: 'build-task', collection: 'a', line: 'main', planId: 'p', stage: 'scan', task: 0 }]);
  });
});
